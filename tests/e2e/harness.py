"""Run sliceplane and the real kubectl as a user would, for end-to-end tests and scripts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Unmodified copies of the shared fixtures (tests/fixtures/SOURCES.md); test_fixtures.py checks they match.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.25, what: str = "") -> Any:
    """Poll `check` until it returns a truthy value; raise with its last answer after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
            last_exc = None
            if last:
                return last
        except Exception as e:
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r} exc={last_exc!r}")


@dataclass
class Up:
    """A running `sliceplane up` process."""

    data_dir: Path
    port: int
    nodes: int = 3
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        argv = [
            sys.executable, "-m", "sliceplane", "up", "--data-dir", str(self.data_dir),
            "--port", str(self.port), "--nodes", str(self.nodes), *self.extra,
        ]
        self.output = []
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line.rstrip())
                if "ready" in line and "sliceplane ready" in line:
                    ready.set()

        self._reader = threading.Thread(target=pump, daemon=True)
        self._reader.start()
        if not ready.wait(timeout):
            self.stop()
            raise AssertionError("sliceplane up did not print ready:\n" + "\n".join(self.output[-50:]))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        code = end_process(self.proc, sig, timeout)
        if self._reader is not None:
            self._reader.join(5)
        self.proc = None
        return code

    def logs(self) -> str:
        return "\n".join(self.output[-200:])


def end_process(proc: subprocess.Popen[str], sig: int, timeout: float) -> int:
    """Send `sig` (a frozen process is woken to act on it); kill it if it is not gone in `timeout`."""
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.send_signal(signal.SIGCONT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Proc:
    """One `python -m sliceplane ...` process; `start()` waits for its ready line."""

    def __init__(self, *args: str) -> None:
        self.argv = [sys.executable, "-m", "sliceplane", *args]
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 60.0) -> Proc:
        self.output = []
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line.rstrip())
                if line.startswith("sliceplane ") and "ready" in line:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise AssertionError(f"{self.argv[3]} did not get ready:\n" + "\n".join(self.output[-40:]))
        return self

    def send(self, sig: int) -> None:
        assert self.proc is not None and self.proc.poll() is None, f"{self.argv[3]} is not running"
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        code, self.proc = end_process(self.proc, sig, 20.0), None
        return code


class Kubectl:
    """The real kubectl with a private HOME, so no discovery cache leaks between servers."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.home = tempfile.mkdtemp(prefix="kubectl-home-")

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": self.home, "KUBECONFIG": str(self.kubeconfig)}

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            ["kubectl", *args], input=input, capture_output=True, text=True, env=self.env(), timeout=timeout
        )
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    @contextlib.contextmanager
    def stream(self, *args: str) -> Iterator[subprocess.Popen[str]]:
        """A long-running kubectl (for example `get -w`), stopped on exit."""
        p = subprocess.Popen(
            ["kubectl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env()
        )
        try:
            yield p
        finally:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def slices_of(k: Kubectl, service: str, namespace: str = "default") -> list[dict[str, Any]]:
    out = k.json("get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}")
    return out["items"]


def ready_endpoints(slices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        ep for s in slices for ep in (s.get("endpoints") or [])
        if (ep.get("conditions") or {}).get("ready") is True
    ]


def all_pods_ready(k: Kubectl, namespace: str = "default") -> bool:
    pods = k.json("get", "pods", "-n", namespace)["items"]
    if not pods:
        return False
    for p in pods:
        if p["metadata"].get("deletionTimestamp"):
            return False
        conds = {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}
        if p.get("status", {}).get("phase") != "Running" or conds.get("Ready") != "True":
            return False
    return True


def web_app(replicas: int, pod_spec: str = "") -> str:
    """A Deployment `web` of `replicas` pods and its Service `web` (port 80), as one YAML stream;
    `pod_spec` adds flow-style fields to the pod template's spec (", tolerations: [...]")."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: nginx, ports: [{{containerPort: 80}}]}}]{pod_spec}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{selector: {{app: web}}, ports: [{{port: 80}}]}}
"""
