"""Fault tests: real processes on a real 3-member etcd (and SQLite), killed with SIGKILL mid-work.

1. One of two API servers dies during a rolling update of 500 pods: everything carries on through
   the other; agents' tables are right (`sliceplane verify`); each Service has one set of slices
   covering every endpoint once.
2. The leading controller-manager dies: the standby takes over within the lease duration; slices
   converge with no duplicates.
3. One etcd member of three dies during writes: every acknowledged write is there afterwards.
4. `sliceplane up` on SQLite dies during a write storm: after a restart every acknowledged write is
   there and `PRAGMA integrity_check` is ok.
Also: a leader that cannot renew exits (for its supervisor to restart it), and two `sliceplane up
--store etcd://` processes share one leader and hand over at once on SIGTERM.

Controller-managers run supervised (restarted when they exit), as in a real deployment: a leader
that loses its lease exits by design.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etcd_cluster import EtcdCluster, free_port, requires_etcd
from sliceplane.api.errors import StatusError
from sliceplane.api.meta import parse_time
from sliceplane.api.registry import (
    CONFIG_MAPS,
    DEPLOYMENTS,
    ENDPOINT_SLICES,
    LEASES,
    PODS,
    SERVICES,
)
from sliceplane.client.kubeconfig import write_kubeconfig
from sliceplane.client.rest import RESTClient

pytestmark = [pytest.mark.e2e]

Obj = dict[str, Any]

# Short leader-election settings, so a takeover happens within seconds.
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 3.0, 2.0, 0.5
LEASE_FLAGS = [
    "--leader-elect-lease-duration", str(LEASE_DURATION),
    "--leader-elect-renew-deadline", str(RENEW_DEADLINE),
    "--leader-elect-retry-period", str(RETRY_PERIOD),
]


# --- processes -------------------------------------------------------------------------------------


class Role:
    """One `python -m sliceplane ...` process with its output in a log file."""

    def __init__(self, name: str, args: list[str], log_dir: Path, *, supervised: bool = False) -> None:
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        self.supervised = supervised  # restarted whenever it exits, as systemd's Restart=always would
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0, ready: str = "ready") -> Role:
        argv = [sys.executable, "-m", "sliceplane", *self.args]
        if self.supervised:
            argv = ["sh", "-c", 'while true; do "$@"; sleep 0.5; done', "supervise", *argv]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while ready not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.tail()}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the process and every descendant (a crash, no clean shutdown)."""
        if self.proc is None:
            return
        kill_tree(self.proc.pid)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.supervised:
            self.kill()
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()


def descendants(pid: int) -> list[int]:
    """Every descendant of pid, from /proc/<pid>/task/*/children."""
    found: list[int] = []
    stack = [pid]
    while stack:
        p = stack.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                continue
            found.extend(kids)
            stack.extend(kids)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL pid first (so it restarts nothing), then its descendants, by PID."""
    kids = descendants(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for k in kids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(k, signal.SIGKILL)


@contextlib.contextmanager
def roles() -> Iterator[list[Role]]:
    """Collect started roles; stop them all, by PID, at the end."""
    started: list[Role] = []
    try:
        yield started
    finally:
        for r in reversed(started):
            with contextlib.suppress(Exception):
                r.stop()
            with contextlib.suppress(Exception):
                r.kill()


async def poll(check: Any, timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
            if last:
                return last
        except (StatusError, ConnectionError, TimeoutError) as e:
            last = e
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: last={last!r}")


# --- objects ---------------------------------------------------------------------------------------


def deployment(name: str, replicas: int) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                    {"name": "web", "image": "registry.k8s.io/pause:3.9",
                     "ports": [{"containerPort": 8080, "name": "http"}]}]},
            },
        },
    }


def service(name: str) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }


def configmap(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}}


async def rollout_complete(client: RESTClient, name: str, replicas: int) -> bool:
    d = await client.get(DEPLOYMENTS, name, "default")
    st = d.get("status") or {}
    return (
        st.get("observedGeneration", 0) >= d["metadata"].get("generation", 0)
        and st.get("updatedReplicas") == replicas
        and st.get("replicas") == replicas
        and st.get("readyReplicas") == replicas
        and st.get("availableReplicas") == replicas
    )


async def slices_match_pods(client: RESTClient, service_name: str, app: str) -> tuple[bool, str]:
    """The Service's slices hold every ready pod's address exactly once, and nothing else."""
    pods = (await client.list_all(PODS, "default", label_selector=f"app={app}"))["items"]
    want = sorted(
        p["status"]["podIP"] for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and (p.get("status") or {}).get("podIP")
        and any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or [])
    )
    slices = (await client.list_all(
        ENDPOINT_SLICES, "default", label_selector=f"kubernetes.io/service-name={service_name}"))["items"]
    got = [a for s in slices for ep in s.get("endpoints") or [] for a in ep.get("addresses") or []]
    dup = [a for a, n in Counter(got).items() if n > 1]
    if dup:
        return False, f"{len(dup)} addresses in more than one slice, e.g. {dup[:3]}"
    ready = sorted(
        a for s in slices for ep in s.get("endpoints") or []
        if (ep.get("conditions") or {}).get("ready") is True for a in ep.get("addresses") or []
    )
    if ready != want:
        return False, f"{len(ready)} ready endpoints in {len(slices)} slices, {len(want)} ready pods"
    managers = {(s["metadata"].get("labels") or {}).get("endpointslice.kubernetes.io/managed-by") for s in slices}
    if managers != {"endpointslice-controller.k8s.io"}:
        return False, f"slices managed by {managers}"
    owners = {tuple((o.get("kind"), o.get("name")) for o in s["metadata"].get("ownerReferences") or [])
              for s in slices}
    if owners != {(("Service", service_name),)}:
        return False, f"slice owners {owners}"
    return True, f"{len(ready)} endpoints in {len(slices)} slices"


# --- 1. API server killed --------------------------------------------------------------------------


@requires_etcd
@pytest.mark.timeout(300)
async def test_apiserver_killed_during_rolling_update_of_500_pods(tmp_path: Path) -> None:
    replicas, node_count = 500, 4
    with EtcdCluster(3) as etcd, roles() as running:
        ports = [free_port(), free_port()]
        apis = [Role(f"apiserver-{i}", ["apiserver", "--store", etcd.url, "--port", str(p)], tmp_path)
                for i, p in enumerate(ports)]
        for a in apis:
            running.append(a.start())
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        kc_ab, kc_ba = tmp_path / "ab.kubeconfig", tmp_path / "ba.kubeconfig"
        write_kubeconfig(kc_ab, urls)
        write_kubeconfig(kc_ba, urls[::-1])
        state = tmp_path / "agents"
        # The API server that will die is the first choice of the fleet, one controller-manager and the agents.
        for i, kc in enumerate((kc_ab, kc_ba)):
            running.append(Role(f"cm-{i}", ["controller-manager", "--kubeconfig", str(kc)], tmp_path,
                                supervised=True).start())
        running.append(Role("nodes", ["nodes", "--kubeconfig", str(kc_ab), "--count", str(node_count),
                                      "--pod-ready-delay", "0.1", "--max-grace-period", "0.2"], tmp_path).start())
        running.append(Role("agents", ["agents", "--kubeconfig", str(kc_ab), "--count", str(node_count),
                                       "--state-dir", str(state)], tmp_path).start())
        async with RESTClient(urls[::-1]) as client:
            await client.create(SERVICES, service("web"), "default")
            await client.create(DEPLOYMENTS, deployment("web", replicas), "default")
            await poll(lambda: rollout_complete(client, "web", replicas), 150, "500 pods ready")

            patched = await client.patch(DEPLOYMENTS, "web", {"spec": {"template": {"metadata": {
                "annotations": {"sliceplane.io/restartedAt": "1"}}}}}, namespace="default")
            generation = patched["metadata"]["generation"]

            async def half_rolled() -> bool:
                st = (await client.get(DEPLOYMENTS, "web", "default")).get("status") or {}
                return st.get("observedGeneration") == generation and st.get("updatedReplicas", 0) >= replicas // 4

            await poll(half_rolled, 60, "the rollout under way", interval=0.1)
            apis[0].kill()
            at_kill = (await client.get(DEPLOYMENTS, "web", "default"))["status"]
            assert at_kill.get("updatedReplicas", 0) < replicas, "the API server should die mid-rollout"
            old_pods = [p for p in (await client.list_all(PODS, "default", label_selector="app=web"))["items"]
                        if not p["metadata"].get("deletionTimestamp")
                        and "sliceplane.io/restartedAt" not in (p["metadata"].get("annotations") or {})]
            assert old_pods, "old pods should remain when the API server dies"
            await poll(lambda: rollout_complete(client, "web", replicas), 180, "the rollout to finish")
            await poll(lambda: _ok(slices_match_pods(client, "web", "web")), 60, "slices to match the pods")
            ok, detail = await slices_match_pods(client, "web", "web")
            assert ok, detail
            pods = [p for p in (await client.list_all(PODS, "default", label_selector="app=web"))["items"]
                    if not p["metadata"].get("deletionTimestamp")]
            assert len(pods) == replicas
            assert all("sliceplane.io/restartedAt" in (p["metadata"].get("annotations") or {}) for p in pods)
        verify = subprocess.run(
            [sys.executable, "-m", "sliceplane", "verify", "--kubeconfig", str(kc_ba), "--state-dir", str(state),
             "--timeout", "60"], capture_output=True, text=True, timeout=120,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert f"{node_count} agents, 0 with differences" in verify.stdout


async def _ok(result: Any) -> bool:
    ok, _ = await result
    return bool(ok)


# --- 2. leader killed ------------------------------------------------------------------------------


@requires_etcd
@pytest.mark.timeout(180)
async def test_leading_controller_manager_killed_standby_takes_over(tmp_path: Path) -> None:
    with EtcdCluster(3) as etcd, roles() as running:
        port = free_port()
        running.append(Role("apiserver", ["apiserver", "--store", etcd.url, "--port", str(port)], tmp_path).start())
        url = f"http://127.0.0.1:{port}"
        kc = tmp_path / "kubeconfig"
        write_kubeconfig(kc, url)
        cms = [Role(f"cm-{i}", ["controller-manager", "--kubeconfig", str(kc), *LEASE_FLAGS], tmp_path,
                    supervised=True) for i in range(2)]
        for cm in cms:
            running.append(cm.start())
        running.append(Role("nodes", ["nodes", "--kubeconfig", str(kc), "--count", "2", "--pod-ready-delay", "0.1",
                                      "--max-grace-period", "0.2"], tmp_path).start())
        async with RESTClient(url) as client:
            await client.create(SERVICES, service("web"), "default")
            await client.create(DEPLOYMENTS, deployment("web", 40), "default")
            await poll(lambda: rollout_complete(client, "web", 40), 90, "40 pods ready")
            await poll(lambda: _ok(slices_match_pods(client, "web", "web")), 60, "slices to converge")

            before = (await client.get(LEASES, "kube-controller-manager", "kube-system"))["spec"]
            holding = [cm for cm in cms if f"as {before['holderIdentity']}" in cm.log()]
            assert len(holding) == 1, "the lease holder should be one of the two controller-managers"
            leader = holding[0]
            standby = next(cm for cm in cms if cm is not leader)

            # Churn the leader is in the middle of, then the crash.
            await client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 70}}, namespace="default")
            await asyncio.sleep(0.3)
            leader.kill()
            last = (await client.get(LEASES, "kube-controller-manager", "kube-system"))["spec"]
            assert last["holderIdentity"] == before["holderIdentity"]

            async def taken_over() -> Obj | None:
                spec = (await client.get(LEASES, "kube-controller-manager", "kube-system"))["spec"]
                return spec if spec["holderIdentity"] != before["holderIdentity"] else None

            after = await poll(taken_over, 30, "the standby to take the lease", interval=0.1)
            assert f"as {after['holderIdentity']}" in standby.log()
            assert after["leaseTransitions"] == last["leaseTransitions"] + 1
            # The lease's own clock: from the dead leader's last renewal to the standby's acquisition
            # is the lease duration, plus up to a (jittered) retry period each for noticing the last
            # renewal and for acting on the expiry, plus slack for a loaded machine.
            gap = parse_time(after["acquireTime"]) - parse_time(last["renewTime"])
            assert gap <= LEASE_DURATION + 2 * RETRY_PERIOD * 1.2 + 2.0, gap

            await poll(lambda: rollout_complete(client, "web", 70), 90, "70 pods ready under the new leader")
            await poll(lambda: _ok(slices_match_pods(client, "web", "web")), 60, "slices to converge")
            ok, detail = await slices_match_pods(client, "web", "web")
            assert ok, detail
            # 70 endpoints fit one slice (100 per slice): a second would be a duplicate set.
            slices = (await client.list_all(
                ENDPOINT_SLICES, "default", label_selector="kubernetes.io/service-name=web"))["items"]
            assert len(slices) == 1, [s["metadata"]["name"] for s in slices]


# --- 3. etcd member killed -------------------------------------------------------------------------


async def write_storm(url: str, prefix: str, stop: asyncio.Event, concurrency: int = 16) -> tuple[set[str], int]:
    """Create ConfigMaps until `stop`; return the names whose create was acknowledged (201), and failures."""
    acked: set[str] = set()
    failed = 0
    counter = iter(range(10**9))

    async def worker(client: RESTClient) -> None:
        nonlocal failed
        while not stop.is_set():
            name = f"{prefix}-{next(counter)}"
            try:
                await client.create(CONFIG_MAPS, configmap(name), "default")
                acked.add(name)
            except (StatusError, ConnectionError, TimeoutError):
                failed += 1
                await asyncio.sleep(0.05)

    async with RESTClient(url, timeout=10) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return acked, failed


async def configmap_names(url: str) -> set[str]:
    async with RESTClient(url) as client:
        items = (await client.list_all(CONFIG_MAPS, "default"))["items"]
    return {i["metadata"]["name"] for i in items}


@requires_etcd
@pytest.mark.timeout(120)
async def test_etcd_member_killed_during_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    with EtcdCluster(3) as etcd, roles() as running:
        port = free_port()
        running.append(Role("apiserver", ["apiserver", "--store", etcd.url, "--port", str(port)], tmp_path).start())
        url = f"http://127.0.0.1:{port}"
        stop = asyncio.Event()
        storm = asyncio.create_task(write_storm(url, "cm", stop))
        await asyncio.sleep(2)
        victim = etcd.leader_index()
        etcd.kill(victim)
        await asyncio.sleep(3)
        stop.set()
        acked, _ = await storm
        after_kill = len(acked)
        assert after_kill > 0
        present = await configmap_names(url)
        assert acked - present == set()
        etcd.restart(victim)
        # The restarted member caught up: a fresh API server reading only from it sees every write.
        solo = free_port()
        running.append(Role("apiserver-solo", ["apiserver", "--store", f"etcd://{etcd.members[victim].endpoint}",
                                               "--port", str(solo)], tmp_path).start())
        assert acked - await configmap_names(f"http://127.0.0.1:{solo}") == set()


# --- 4. SQLite crash -------------------------------------------------------------------------------


@pytest.mark.timeout(150)
async def test_sqlite_up_killed_during_write_storm_loses_nothing_and_is_not_corrupt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    args = ["up", "--data-dir", str(data), "--port", str(port), "--nodes", "0"]
    url = f"http://127.0.0.1:{port}"
    with roles() as running:
        up = Role("up-1", args, tmp_path)
        running.append(up.start(ready="sliceplane ready"))
        children = descendants(up.proc.pid)  # type: ignore[union-attr]
        assert children, "up should run the controller-manager as a child"
        stop = asyncio.Event()
        storm = asyncio.create_task(write_storm(url, "cm", stop, concurrency=32))
        await asyncio.sleep(3)
        up.kill()

        async def children_gone() -> bool:
            return all(_gone(c) for c in children)

        await poll(children_gone, 10, "up's children to die with it", interval=0.05)
        await asyncio.sleep(0.5)
        stop.set()
        acked, _ = await storm
        assert len(acked) > 50
        again = Role("up-2", args, tmp_path)
        running.append(again.start(ready="sliceplane ready"))
        present = await configmap_names(url)
        assert acked - present == set()
        again.stop()
    with contextlib.closing(sqlite3.connect(data / "state.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _gone(pid: int) -> bool:
    """Dead: no such process, or a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


# --- 5. a leader cut off from every API server stops ----------------------------------------------


@pytest.mark.timeout(60)
async def test_leader_that_cannot_renew_exits_for_its_supervisor_to_restart(tmp_path: Path) -> None:
    with roles() as running:
        port = free_port()
        api = Role("apiserver", ["apiserver", "--port", str(port)], tmp_path).start()
        running.append(api)
        kc = tmp_path / "kubeconfig"
        write_kubeconfig(kc, f"http://127.0.0.1:{port}")
        cm = Role("cm", ["controller-manager", "--kubeconfig", str(kc), *LEASE_FLAGS], tmp_path)
        running.append(cm.start(ready="successfully acquired lease"))
        api.kill()
        assert cm.proc is not None
        code = await asyncio.to_thread(cm.proc.wait, 30)
        assert code != 0
        assert "leaderelection lost" in cm.log()


# --- 6. `sliceplane up --store etcd://` -----------------------------------------------------------


@requires_etcd
@pytest.mark.timeout(120)
async def test_two_up_processes_on_one_etcd_share_one_leader_and_hand_over_on_sigterm(tmp_path: Path) -> None:
    with EtcdCluster(3) as etcd, roles() as running:
        ports = [free_port(), free_port()]
        ups = [Role(f"up-{i}", ["up", "--store", etcd.url, "--data-dir", str(tmp_path / f"data-{i}"),
                                "--port", str(p), "--nodes", "0"], tmp_path)
               for i, p in enumerate(ports)]
        for u in ups:
            running.append(u.start(ready="sliceplane ready"))
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        kc = tmp_path / "kubeconfig"
        write_kubeconfig(kc, urls)
        running.append(Role("nodes", ["nodes", "--kubeconfig", str(kc), "--count", "2", "--pod-ready-delay", "0.1",
                                      "--max-grace-period", "0.2"], tmp_path).start())
        async with RESTClient(urls[::-1]) as client:
            # Written through one up, served to the other's fleet and controllers through etcd.
            await client.create(SERVICES, service("web"), "default")
            await client.create(DEPLOYMENTS, deployment("web", 10), "default")
            await poll(lambda: rollout_complete(client, "web", 10), 60, "10 pods ready")
            await poll(lambda: _ok(slices_match_pods(client, "web", "web")), 60, "slices to converge")

            async def lease() -> Obj:
                return (await client.get(LEASES, "kube-controller-manager", "kube-system"))["spec"]

            before = await lease()
            holding = [u for u in ups if f"as {before['holderIdentity']}" in u.log()]
            assert len(holding) == 1
            other = next(u for u in ups if u is not holding[0])
            holding[0].stop()  # SIGTERM: its controller-manager stops its controllers, then releases the lease

            async def taken_over() -> Obj | None:
                spec = await lease()
                return spec if spec["holderIdentity"] not in ("", before["holderIdentity"]) else None

            after = await poll(taken_over, 30, "the other up's controller-manager to lead", interval=0.1)
            assert f"as {after['holderIdentity']}" in other.log()
            assert "released lease" in holding[0].log()
            # A released lease is taken at the next retry, not after the 15 s lease duration.
            assert parse_time(after["acquireTime"]) - parse_time(before["renewTime"]) < 15
            await client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 4}}, namespace="default")
            await poll(lambda: rollout_complete(client, "web", 4), 60, "the new leader to scale down to 4")
            await poll(lambda: _ok(slices_match_pods(client, "web", "web")), 60, "slices to converge")
            ok, detail = await slices_match_pods(client, "web", "web")
            assert ok and detail.startswith("4 endpoints"), detail
