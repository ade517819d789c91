"""Node agents end to end, with real processes: API server, controller-manager, node fleet and
two agent processes (EndpointSlices with one counting agent; legacy Endpoints), driven by the
real kubectl. The API server is killed and restarted on the same store mid-way."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.harness import FIXTURES, Kubectl, Proc, free_port, wait_for

pytestmark = pytest.mark.e2e


def _sliceplane(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sliceplane", *args], capture_output=True, text=True, timeout=60)


def _snapshot(state_dir: Path, node: str) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / f"{node}.json").read_text())
    except (OSError, ValueError):
        return None


def _reviews_ready(state_dir: Path, node: str) -> list[str]:
    snap = _snapshot(state_dir, node) or {}
    for entry in snap.get("table") or []:
        if entry["servicePort"] == "default/reviews:http":
            return sorted(f"{e['address']}:{e['port']}" for e in entry["endpoints"] if e["ready"])
    return []


def _live_pod(k: Kubectl, selector: str) -> str:
    """A pod that is not already terminating (an old rollout's pods may vanish any moment)."""
    pods = k.json("get", "pods", "-l", selector)["items"]
    return next(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    apiserver = Proc("apiserver", "--port", str(port), "--store", f"sqlite://{tmp_path / 'state.db'}",
                     "--kubeconfig", str(kubeconfig))
    procs = [apiserver.start()]
    try:
        procs.append(Proc("controller-manager", "--kubeconfig", str(kubeconfig)).start())
        procs.append(Proc("nodes", "--kubeconfig", str(kubeconfig), "--count", "3", "--max-grace-period", "1").start())
        slices_dir, endpoints_dir = tmp_path / "agents", tmp_path / "agents-ep"
        procs.append(Proc("agents", "--kubeconfig", str(kubeconfig), "--count", "3", "--counting", "--full", "2",
                          "--state-dir", str(slices_dir)).start())
        procs.append(Proc("agents", "--kubeconfig", str(kubeconfig), "--count", "3", "--source", "endpoints",
                          "--state-dir", str(endpoints_dir)).start())
        yield {"kubeconfig": kubeconfig, "apiserver": apiserver, "slices": slices_dir, "endpoints": endpoints_dir,
               "kubectl": Kubectl(kubeconfig)}
    finally:
        for p in reversed(procs):
            p.stop()


def _verify(c: dict[str, Any], state_dir: Path) -> str:
    r = _sliceplane("verify", "--kubeconfig", str(c["kubeconfig"]), "--state-dir", str(state_dir), "--timeout", "15")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_agents_follow_bookinfo_through_rollout_and_apiserver_restart(cluster: dict[str, Any]) -> None:
    c, k = cluster, cluster["kubectl"]
    k.run("apply", "-f", str(FIXTURES / "bookinfo.yaml"))
    for state_dir, nodes in ((c["slices"], ("node-0", "node-1")), (c["endpoints"], ("node-0", "node-1", "node-2"))):
        for node in nodes:
            eps = wait_for(lambda d=state_dir, n=node: len(_reviews_ready(d, n)) == 3 and _reviews_ready(d, n),
                           60, what=f"{node} in {state_dir.name}: reviews with 3 ready endpoints")
            assert all(e.endswith(":9080") for e in eps)

    table = _sliceplane("table", "--kubeconfig", str(c["kubeconfig"]), "--node", "node-0",
                        "--state-dir", str(c["slices"]), "--stats")
    assert table.returncode == 0, table.stderr
    assert "default/reviews:http" in table.stdout and "ready 3 used 3" in table.stdout
    assert "network programming latency: n=" in table.stdout

    k.run("scale", "deployment/reviews-v1", "--replicas=30")
    k.run("rollout", "status", "deployment/reviews-v1", "--timeout=120s")
    k.run("rollout", "restart", "deployment/reviews-v1")
    k.run("rollout", "status", "deployment/reviews-v1", "--timeout=120s")
    k.run("delete", "pod", _live_pod(k, "app=reviews,version=v1"), "--wait=false")
    for state_dir in (c["slices"], c["endpoints"]):
        out = _verify(c, state_dir)
        assert "0 with differences" in out
    snap = _snapshot(c["slices"], "node-0")
    assert snap is not None and snap["metrics"]["latency"]["count"] > 0
    assert snap["metrics"]["latency"]["p99"] is not None

    def counted() -> dict[str, Any] | None:
        """A counting agent publishes on its heartbeat only (every 5 s), not on every event."""
        snap = _snapshot(c["slices"], "node-2")
        slices = (snap or {}).get("metrics", {}).get("resources", {}).get("endpointslices.discovery.k8s.io", {})
        return snap if slices.get("eventsTotal") else None

    counting = wait_for(counted, 15, what="the counting agent's snapshot with slice events")
    assert counting["mode"] == "counting" and counting["table"] == []
    slices_counted = counting["metrics"]["resources"]["endpointslices.discovery.k8s.io"]
    assert slices_counted["eventsTotal"] > 0 and slices_counted["bytes"] > 0
    assert slices_counted["decodeSeconds"] == 0

    # The API server dies and comes back on the same store: agents reconnect by themselves.
    c["apiserver"].stop(signal.SIGKILL)
    c["apiserver"].start()
    k.run("delete", "pod", _live_pod(k, "app=reviews,version=v1"), "--wait=false")
    k.run("scale", "deployment/ratings-v1", "--replicas=2")
    for state_dir in (c["slices"], c["endpoints"]):
        out = _verify(c, state_dir)
        assert "0 with differences" in out
    after = _snapshot(c["slices"], "node-0")
    assert after is not None
    resumed = after["metrics"]["resources"]["endpointslices.discovery.k8s.io"]
    assert resumed["reconnects"] + resumed["relists"] > 0
