"""A node fleet that dies or freezes: its nodes go Unknown, their pods' endpoints go not ready, and
all of it comes back when the fleet does. Short leases and grace periods keep it to seconds.

Killed, the fleet comes back as a new process that reads the pods afresh; frozen (SIGSTOP), the
same process wakes up, finds its nodes marked Unknown and puts its pods' Ready back itself. One
node's kubelet stopped (an annotation) is a partial failure: that node gets the NoExecute taint
and its pods are evicted once their toleration runs out."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import Kubectl, Proc, free_port, ready_endpoints, slices_of, wait_for, web_app

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    kubeconfig = tmp_path / "kubeconfig"
    procs = [Proc("apiserver", "--port", str(free_port()), "--store", f"sqlite://{tmp_path / 'state.db'}",
                  "--kubeconfig", str(kubeconfig)).start()]
    fleet = Proc("nodes", "--kubeconfig", str(kubeconfig), "--count", "2", "--node-lease-duration-seconds", "1",
                 "--max-grace-period", "1")
    try:
        procs.append(Proc("controller-manager", "--kubeconfig", str(kubeconfig), "--no-leader-elect",
                          "--node-monitor-period", "0.5", "--node-monitor-grace-period", "3").start())
        procs.append(fleet.start())
        yield {"kubectl": Kubectl(kubeconfig), "fleet": fleet}
    finally:
        for p in reversed(procs):
            p.stop()


def _node_state(k: Kubectl) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Ready status and taints (key, effect) by node name."""
    out = {}
    for n in k.json("get", "nodes")["items"]:
        ready = next(c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready")
        out[n["metadata"]["name"]] = (ready, sorted((t["key"], t["effect"]) for t in n["spec"].get("taints") or []))
    return out


def _pods_ready(k: Kubectl) -> list[str]:
    return sorted(next(c["status"] for c in p["status"].get("conditions") or [] if c["type"] == "Ready")
                  for p in k.json("get", "pods", "-l", "app=web")["items"])


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_silent_fleet_takes_its_endpoints_out_and_back(cluster: dict[str, Any], fault: str) -> None:
    k, fleet = cluster["kubectl"], cluster["fleet"]
    k.run("apply", "-f", "-", input=web_app(4))
    wait_for(lambda: len(ready_endpoints(slices_of(k, "web"))) == 4, 60, what="4 ready endpoints")
    leases = k.json("get", "leases", "-n", "kube-node-lease")["items"]
    assert sorted((lease["metadata"]["name"], lease["spec"]["holderIdentity"], lease["spec"]["leaseDurationSeconds"],
                   lease["metadata"]["ownerReferences"][0]["kind"]) for lease in leases) == [
        ("node-0", "node-0", 1, "Node"), ("node-1", "node-1", 1, "Node")]

    if fault == "killed":
        fleet.stop(signal.SIGKILL)  # every kubelet gone at once
    else:
        fleet.send(signal.SIGSTOP)
    unreachable = [("node.kubernetes.io/unreachable", "NoSchedule")]  # no NoExecute: every node is down
    wait_for(lambda: _node_state(k) == {"node-0": ("Unknown", unreachable), "node-1": ("Unknown", unreachable)},
             30, what="both nodes Unknown with the unreachable taint")
    wait_for(lambda: _pods_ready(k) == ["False"] * 4, 30, what="the pods not ready")
    slices = wait_for(lambda: (s := slices_of(k, "web")) and not ready_endpoints(s) and s, 30,
                      what="no ready endpoints")
    endpoints = [ep for s in slices for ep in s["endpoints"]]
    assert [ep["conditions"] for ep in endpoints] == [{"ready": False, "serving": False, "terminating": False}] * 4
    reasons = {(e["involvedObject"]["kind"], e["reason"], e["message"])
               for e in k.json("get", "events", "-A")["items"] if e["source"].get("component") == "node-controller"}
    assert {("Node", "NodeNotReady", "Node node-0 status is now: NodeNotReady"),
            ("Pod", "NodeNotReady", "Node is not ready")} <= reasons

    # the kubelets come back: Ready again, taints gone, endpoints ready
    if fault == "killed":
        fleet.start()
    else:
        fleet.send(signal.SIGCONT)
    wait_for(lambda: _node_state(k) == {"node-0": ("True", []), "node-1": ("True", [])}, 30,
             what="both nodes Ready without taints")
    wait_for(lambda: len(ready_endpoints(slices_of(k, "web"))) == 4, 30, what="4 ready endpoints again")
    assert _pods_ready(k) == ["True"] * 4


UNREACHABLE = "node.kubernetes.io/unreachable"
TOLERATE_2S = f", tolerations: [{{key: {UNREACHABLE}, operator: Exists, effect: NoExecute, tolerationSeconds: 2}}]"


def _endpoints_by_node(k: Kubectl) -> list[tuple[str, bool, bool, bool]]:
    """(node, ready, serving, terminating) of every endpoint of the web Service, sorted."""
    return sorted((ep["nodeName"], ep["conditions"]["ready"], ep["conditions"]["serving"],
                   ep["conditions"]["terminating"]) for s in slices_of(k, "web") for ep in s["endpoints"])


def test_one_stopped_kubelet_loses_its_pods_to_the_other_node(cluster: dict[str, Any]) -> None:
    k = cluster["kubectl"]
    k.run("apply", "-f", "-", input=web_app(4, TOLERATE_2S))
    ready = ("node-1", True, True, False)
    wait_for(lambda: _endpoints_by_node(k) == [("node-0", True, True, False)] * 2 + [ready] * 2, 60,
             what="2 ready endpoints per node")

    k.run("annotate", "node", "node-0", "sliceplane.io/kubelet-stopped=true")
    wait_for(lambda: _node_state(k) == {"node-0": ("Unknown", [(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")]),
                                        "node-1": ("True", [])}, 30, what="node-0 alone Unknown, with NoExecute")
    # Evicted after 2 s, the pods stay Terminating (their kubelet is gone) and their endpoints stay,
    # terminating and not serving; their replacements run on node-1.
    gone = ("node-0", False, False, True)
    wait_for(lambda: _endpoints_by_node(k) == [gone] * 2 + [ready] * 4, 60,
             what="node-0's endpoints terminating, 4 ready on node-1")
    events = {(e["reason"], e["source"].get("component")) for e in k.json("get", "events")["items"]}
    assert ("TaintManagerEviction", "taint-eviction-controller") in events

    # A restarted fleet keeps that kubelet dead: no status, no Lease renewal.
    renewed = k.json("get", "lease", "node-0", "-n", "kube-node-lease")["spec"]["renewTime"]
    fleet = cluster["fleet"]
    fleet.stop()
    fleet.start()
    time.sleep(2)  # eight renewal periods of the 1 s leases
    assert k.json("get", "lease", "node-0", "-n", "kube-node-lease")["spec"]["renewTime"] == renewed
    assert _node_state(k)["node-0"] == ("Unknown", [(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")])
    assert _endpoints_by_node(k) == [gone] * 2 + [ready] * 4

    k.run("annotate", "node", "node-0", "sliceplane.io/kubelet-stopped-")
    wait_for(lambda: _node_state(k)["node-0"] == ("True", []), 30, what="node-0 Ready, untainted")
    wait_for(lambda: _endpoints_by_node(k) == [ready] * 4, 30, what="the terminated pods gone")
