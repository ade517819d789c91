"""A real etcd cluster for tests: 1 or 3 members on free loopback ports, in a temp dir, stopped by PID.

    with EtcdCluster(3) as cluster:
        store = EtcdStore(cluster.endpoints)
        cluster.kill(0)       # SIGKILL one member
        cluster.restart(0)    # start it again on the same ports and data dir

Data lives under /dev/shm when it exists (fsync is free there, so tests stay fast; a SIGKILL still
loses nothing that was acknowledged, as the page cache survives the process). Pass `base_dir` to
put it on a real disk (the benchmark does).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest


def etcd_binary() -> str | None:
    """The etcd server to run: /usr/bin/etcd, else `etcd` on PATH; None when there is none."""
    if os.access("/usr/bin/etcd", os.X_OK):
        return "/usr/bin/etcd"
    return shutil.which("etcd")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class EtcdCluster:
    """Starts `size` etcd members; `endpoints` are "127.0.0.1:port" strings for EtcdStore."""

    def __init__(
        self,
        size: int = 1,
        *,
        base_dir: str | None = None,
        max_request_bytes: int | None = None,
        binary: str | None = None,
    ) -> None:
        found = binary or etcd_binary()
        if found is None:
            raise RuntimeError("no etcd binary (/usr/bin/etcd or etcd on PATH)")
        self.binary = found
        if base_dir is None and os.path.isdir("/dev/shm"):
            base_dir = "/dev/shm"
        self.root = Path(tempfile.mkdtemp(prefix="sliceplane-etcd-", dir=base_dir))
        self.max_request_bytes = max_request_bytes
        self.token = f"sliceplane-{os.getpid()}-{self.root.name}"
        self.members = [
            Member(f"m{i}", free_port(), free_port(), self.root / f"m{i}", self.root / f"m{i}.log")
            for i in range(size)
        ]

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    @property
    def url(self) -> str:
        """The `open_store` URL of the whole cluster."""
        return "etcd://" + ",".join(self.endpoints)

    def start(self, timeout: float = 30.0) -> EtcdCluster:
        for i in range(len(self.members)):
            self._spawn(i, state="new")
        self.wait_healthy(timeout)
        return self

    def _spawn(self, i: int, *, state: str) -> None:
        m = self.members[i]
        initial = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        args = [
            self.binary,
            "--name", m.name,
            "--data-dir", str(m.data_dir),
            "--listen-client-urls", f"http://{m.endpoint}",
            "--advertise-client-urls", f"http://{m.endpoint}",
            "--listen-peer-urls", m.peer_url,
            "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", initial,
            "--initial-cluster-state", state,
            "--initial-cluster-token", self.token,
            "--heartbeat-interval", "50",
            "--election-timeout", "500",
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]
        if self.max_request_bytes is not None:
            args += ["--max-request-bytes", str(self.max_request_bytes)]
        log = open(m.log_path, "ab")  # noqa: SIM115 - the child owns it after Popen
        try:
            m.process = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def member_healthy(self, i: int) -> bool:
        """The member answers /health with a leader and quorum (etcd's own definition)."""
        m = self.members[i]
        if not m.alive:
            return False
        try:
            with urllib.request.urlopen(f"http://{m.endpoint}/health", timeout=1) as resp:
                return b'"health":"true"' in resp.read()
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            live = [i for i, m in enumerate(self.members) if m.process is not None]
            for i in live:
                if not self.members[i].alive:
                    raise RuntimeError(f"etcd member {i} exited:\n{self.log_tail(i)}")
            if all(self.member_healthy(i) for i in live):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("etcd cluster not healthy:\n" + "\n".join(self.log_tail(i) for i in live))
            time.sleep(0.05)

    def status(self, i: int) -> dict[str, object]:
        """Member i's maintenance status (etcd's JSON gateway): member id, leader id, revision..."""
        req = urllib.request.Request(
            f"http://{self.members[i].endpoint}/v3/maintenance/status", data=b"{}", method="POST"
        )
        with urllib.request.urlopen(req, timeout=2) as resp:
            return dict(json.load(resp))

    def leader_index(self, timeout: float = 10.0) -> int:
        """The index of the member the live members agree is the leader."""
        deadline = time.monotonic() + timeout
        while True:
            ids: dict[str, int] = {}
            leaders: set[str] = set()
            for i, m in enumerate(self.members):
                if not m.alive:
                    continue
                try:
                    st = self.status(i)
                except OSError:
                    continue
                ids[str(st["header"]["member_id"])] = i  # type: ignore[index]
                leaders.add(str(st.get("leader", "0")))
            if len(leaders) == 1 and (leader := leaders.pop()) in ids:
                return ids[leader]
            if time.monotonic() > deadline:
                raise TimeoutError("etcd members do not agree on a leader")
            time.sleep(0.05)

    def kill(self, i: int) -> None:
        """SIGKILL member i (a crash: no clean shutdown) and reap it."""
        m = self.members[i]
        if m.process is not None and m.process.poll() is None:
            os.kill(m.process.pid, signal.SIGKILL)
            m.process.wait()
        m.process = None

    def pause(self, i: int) -> None:
        """SIGSTOP member i: it keeps its connections but answers nothing (a hung member)."""
        m = self.members[i]
        assert m.process is not None
        os.kill(m.process.pid, signal.SIGSTOP)

    def resume(self, i: int) -> None:
        m = self.members[i]
        assert m.process is not None
        os.kill(m.process.pid, signal.SIGCONT)

    def restart(self, i: int, timeout: float = 30.0) -> None:
        """Start a killed member again on its ports and data dir and wait for the cluster's health."""
        self.kill(i)
        self._spawn(i, state="existing")
        self.wait_healthy(timeout)

    def log_tail(self, i: int, lines: int = 20) -> str:
        try:
            text = self.members[i].log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGKILL every member (the data dir is deleted anyway) and remove the temp dir."""
        for i in range(len(self.members)):
            self.kill(i)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


requires_etcd = pytest.mark.skipif(etcd_binary() is None, reason="etcd is not installed")


def etcd_cluster_fixture(size: int = 1, scope: str = "module", **kwargs: object):  # type: ignore[no-untyped-def]
    """A pytest fixture factory: `cluster = etcd_cluster_fixture(3)` at module level."""

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def _cluster():  # type: ignore[no-untyped-def]
        if etcd_binary() is None:
            pytest.skip("etcd is not installed")
        with EtcdCluster(size, **kwargs) as cluster:  # type: ignore[arg-type]
            yield cluster

    return _cluster
