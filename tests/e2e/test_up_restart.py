"""State survives a restart of `sliceplane up`, and a converged cluster is not rewritten."""

from __future__ import annotations

import time

import pytest

from harness import FIXTURES, Kubectl, Up, all_pods_ready, free_port, ready_endpoints, slices_of, wait_for

pytestmark = pytest.mark.e2e


def _snapshot(k: Kubectl, kinds: str) -> dict[tuple[str, str, str], str]:
    items = k.json("get", kinds, "-A")["items"]
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o["metadata"]["resourceVersion"]
        for o in items
    }


def test_restart_keeps_state_and_rewrites_nothing(tmp_path) -> None:
    data = tmp_path / "data"
    up = Up(data, free_port(), nodes=3)
    up.start()
    k = Kubectl(up.kubeconfig)
    try:
        k.run("apply", "-f", str(FIXTURES / "guestbook-all-in-one.yaml"))
        wait_for(lambda: all_pods_ready(k) and len(k.json("get", "pods")["items"]) == 6, 30, what="pods ready")
        wait_for(lambda: len(ready_endpoints(slices_of(k, "frontend"))) == 3, 15, what="frontend slices")
        time.sleep(2)  # let status writes settle
        # Nodes are left out: a restarted kubelet reports a fresh heartbeat, as real kubelets do.
        kinds = "namespaces,services,endpoints,endpointslices,deployments,replicasets,pods"
        before = _snapshot(k, kinds)
        nodes_before = {n["metadata"]["name"] for n in k.json("get", "nodes")["items"]}
    finally:
        assert up.stop() == 0, up.logs()

    up.start()
    try:
        k = Kubectl(up.kubeconfig)
        time.sleep(5)  # controllers and fleet re-list and resync
        after = _snapshot(k, kinds)
        assert set(after) == set(before)
        assert {n["metadata"]["name"] for n in k.json("get", "nodes")["items"]} == nodes_before
        changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
        assert changed == {}, f"objects rewritten after restart: {changed}"
        assert len(ready_endpoints(slices_of(k, "frontend"))) == 3
    finally:
        assert up.stop() == 0, up.logs()
