"""kubectl cordon, taint, drain and uncordon on the fleet's nodes, as an operator would do them
before node maintenance: the cordon taints the node, new pods avoid it, drain evicts what runs
there through the eviction API, and the Service's endpoints move to the other nodes. A NoExecute
taint evicts the pods that do not tolerate it (after their tolerationSeconds when they do)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import Kubectl, Proc, free_port, ready_endpoints, slices_of, wait_for, web_app

pytestmark = pytest.mark.e2e


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[Kubectl]:
    kubeconfig = tmp_path / "kubeconfig"
    port = free_port()
    procs = [Proc("apiserver", "--port", str(port), "--store", "memory://", "--kubeconfig", str(kubeconfig)).start()]
    try:
        # The API server's URL alone (no kubeconfig) is enough for the controller-manager.
        procs.append(Proc("controller-manager", "--server", f"http://127.0.0.1:{port}", "--no-leader-elect",
                          "--node-monitor-period", "0.5").start())
        procs.append(Proc("nodes", "--kubeconfig", str(kubeconfig), "--count", "3", "--pod-ready-delay", "0",
                          "--max-grace-period", "1").start())
        yield Kubectl(kubeconfig)
    finally:
        for p in reversed(procs):
            p.stop()


def _taints(k: Kubectl, node: str) -> list[tuple[str, str]]:
    return sorted((t["key"], t["effect"]) for t in k.json("get", "node", node)["spec"].get("taints") or [])


def _nodes_of_ready_endpoints(k: Kubectl) -> list[str]:
    return sorted(ep["nodeName"] for ep in ready_endpoints(slices_of(k, "web")))


def test_drain_moves_the_endpoints_off_the_node(kubectl: Kubectl) -> None:
    k = kubectl
    k.run("apply", "-f", "-", input=web_app(6))
    wait_for(lambda: _nodes_of_ready_endpoints(k) == ["node-0"] * 2 + ["node-1"] * 2 + ["node-2"] * 2, 60,
             what="6 ready endpoints, 2 per node")

    r = k.run("drain", "node-0", "--ignore-daemonsets", "--timeout=60s", timeout=90)
    out = r.stdout + r.stderr
    assert "node/node-0 cordoned" in out and "node/node-0 drained" in out
    assert out.count("evicting pod default/web-") == 2 and out.count("evicted") == 2, out
    wait_for(lambda: _taints(k, "node-0") == [("node.kubernetes.io/unschedulable", "NoSchedule")], 30,
             what="the unschedulable taint")
    pods = k.json("get", "pods", "-l", "app=web")["items"]
    assert "node-0" not in {p["spec"]["nodeName"] for p in pods}
    wait_for(lambda: len(_nodes_of_ready_endpoints(k)) == 6 and "node-0" not in _nodes_of_ready_endpoints(k),
             60, what="6 ready endpoints, none on node-0")

    # A NoSchedule taint on another node: the next pods go to the one left.
    k.run("taint", "nodes", "node-1", "dedicated=db:NoSchedule")
    k.run("scale", "deployment", "web", "--replicas=8")
    wait_for(lambda: _nodes_of_ready_endpoints(k).count("node-2") == 5, 60, what="the new pods on node-2")

    k.run("uncordon", "node-0")
    wait_for(lambda: _taints(k, "node-0") == [], 30, what="the unschedulable taint gone")
    k.run("taint", "nodes", "node-1", "dedicated=db:NoSchedule-")
    k.run("scale", "deployment", "web", "--replicas=10")
    wait_for(lambda: _nodes_of_ready_endpoints(k).count("node-0") == 2, 60, what="node-0 takes the new pods")


def _pod_on(name: str, node: str, toleration: dict[str, object]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"nodeSelector": {"kubernetes.io/hostname": node}, "tolerations": [toleration],
                                "containers": [{"name": "c", "image": "nginx"}]}})


def test_no_execute_taint_evicts_what_does_not_tolerate_it(kubectl: Kubectl) -> None:
    k = kubectl
    k.run("apply", "-f", "-", input=web_app(6))
    for name, seconds in (("for-a-while", {"tolerationSeconds": 3}), ("forever", {})):
        k.run("apply", "-f", "-", input=_pod_on(name, "node-0", {"key": "maintenance", "operator": "Exists",
                                                                  "effect": "NoExecute", **seconds}))
    wait_for(lambda: _nodes_of_ready_endpoints(k).count("node-0") == 2, 60, what="2 web endpoints on node-0")
    wait_for(lambda: all(p["status"].get("phase") == "Running" for p in k.json("get", "pods")["items"]), 60,
             what="every pod running")

    k.run("taint", "nodes", "node-0", "maintenance=true:NoExecute")
    # The web pods tolerate only the default not-ready/unreachable taints: evicted at once, replaced elsewhere.
    wait_for(lambda: len(_nodes_of_ready_endpoints(k)) == 6 and "node-0" not in _nodes_of_ready_endpoints(k),
             60, what="6 ready endpoints, none on node-0")
    wait_for(lambda: "for-a-while" not in {p["metadata"]["name"] for p in k.json("get", "pods")["items"]}, 30,
             what="the pod tolerating 3 s gone")
    assert k.json("get", "pod", "forever")["status"]["phase"] == "Running"
    evicted = {e["involvedObject"]["name"] for e in k.json("get", "events")["items"]
               if e["reason"] == "TaintManagerEviction"}
    assert "for-a-while" in evicted and "forever" not in evicted
    assert sum(name.startswith("web-") for name in evicted) == 2
