"""The node lifecycle controller's pure core: when a node counts as silent, and what that does."""

from __future__ import annotations

from typing import Any

import pytest

from sliceplane.api.meta import rfc3339, rfc3339_micro
from sliceplane.api.taints import NOT_READY_TAINT, UNREACHABLE_TAINT, UNSCHEDULABLE_TAINT
from sliceplane.controllers.nodelifecycle import (
    NodeHealthPlan,
    Probe,
    fully_disrupted,
    observe_probe,
    plan_node_health,
    pod_not_ready,
)

T0 = 1_700_000_000.0
GRACE, STARTUP = 50.0, 60.0


def node(ready: str | None = "True", heartbeat: float = T0, taints: list[dict[str, Any]] | None = None,
         cordoned: bool = False) -> dict:
    pressure = "Unknown" if ready == "Unknown" else "False"
    conds = [] if ready is None else [
        {"type": ctype, "status": status, "lastHeartbeatTime": rfc3339(heartbeat),
         "lastTransitionTime": rfc3339(T0 - 100), "reason": "Kubelet", "message": "as the kubelet says"}
        for ctype, status in (("MemoryPressure", pressure), ("DiskPressure", pressure), ("PIDPressure", pressure),
                              ("Ready", ready))
    ]
    spec: dict[str, Any] = {"taints": taints} if taints else {}
    if cordoned:
        spec["unschedulable"] = True
    return {"metadata": {"name": "n1", "uid": "u1", "creationTimestamp": rfc3339(T0 - 200)},
            "spec": spec, "status": {"conditions": conds}}


def lease(renew: float) -> dict:
    return {"spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": rfc3339_micro(renew)}}


def pod(name: str, ready: bool = True, deleting: bool = False) -> dict:
    md: dict[str, Any] = {"name": name, "namespace": "default"}
    if deleting:
        md["deletionTimestamp"] = rfc3339(T0)
    return {"metadata": md, "spec": {"nodeName": "n1"},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": rfc3339(T0 - 50)}]}}


@pytest.mark.parametrize(("old_at", "lease_then", "lease_now", "node_now", "want_at"), [
    (None, None, T0, node(), T0 + 5),  # first sight: a fresh grace period from now
    (T0, T0, T0, node(), T0),  # nothing new: the clock keeps running
    (T0, T0, T0 + 10, node(), T0 + 5),  # a renewal is a heartbeat
    (T0, T0 + 10, T0, node(), T0),  # an older renewTime (a lagging cache) is not
    (T0, T0, T0, node(heartbeat=T0 + 3), T0 + 5),  # so is a new Ready condition
], ids=["first-sight", "silent", "renewed", "older-renewal", "status-written"])
def test_observe_probe(old_at: float | None, lease_then: float | None, lease_now: float, node_now: dict,
                       want_at: float) -> None:
    old = None if old_at is None else Probe(node()["status"]["conditions"][3], rfc3339_micro(lease_then or T0), old_at)
    assert observe_probe(old, node_now, lease(lease_now), T0 + 5).at == want_at


def test_a_node_that_never_reported_gets_the_startup_grace_from_its_creation() -> None:
    probe = observe_probe(None, node(ready=None), None, T0)
    assert (probe.ready, probe.at) == (None, T0 - 200)
    within = plan_node_health(node(ready=None), probe, [pod("a")], T0 - 200 + STARTUP - 1, grace=GRACE,
                              startup_grace=STARTUP, all_not_ready=False)
    assert within == NodeHealthPlan()  # no status, no taints, its pods untouched
    past = plan_node_health(node(ready=None), probe, [pod("a")], T0 - 200 + STARTUP + 1, grace=GRACE,
                            startup_grace=STARTUP, all_not_ready=False)
    assert _taints(past.taints) == [(UNREACHABLE_TAINT, "NoSchedule"), (UNREACHABLE_TAINT, "NoExecute")]
    assert [p["metadata"]["name"] for p in past.pods_not_ready] == ["a"]
    status = past.status
    assert status is not None
    assert {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}["Ready"] == (
        "Unknown", "NodeStatusNeverUpdated", "Kubelet never posted node status.")


def _taints(plan_taints: list[dict] | None) -> list[tuple[str, str]] | None:
    return None if plan_taints is None else [(t["key"], t["effect"]) for t in plan_taints]


@pytest.mark.parametrize(("the_node", "silent_for", "all_not_ready", "want"), [
    # Within the grace period: nothing.
    (node(), GRACE - 1, False, (None, None, [], False)),
    # Past it: Unknown, the pods not ready, unreachable taints, one event.
    (node(), GRACE + 1, False, ("Unknown", [(UNREACHABLE_TAINT, "NoSchedule"), (UNREACHABLE_TAINT, "NoExecute")],
                                ["a", "b", "d"], True)),
    # Every node down: no NoExecute taint (master disruption mode).
    (node(), GRACE + 1, True, ("Unknown", [(UNREACHABLE_TAINT, "NoSchedule")], ["a", "b", "d"], True)),
    # Already Unknown and tainted: the pods are (re)marked, nothing else changes.
    (node(ready="Unknown", taints=[{"key": UNREACHABLE_TAINT, "effect": "NoSchedule"},
                                   {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": "x"}]),
     GRACE + 60, False, (None, None, ["a", "b", "d"], False)),
    # The kubelet says Ready=False itself: not-ready taints, pods not ready, conditions kept.
    (node(ready="False"), 1, False, (None, [(NOT_READY_TAINT, "NoSchedule"), (NOT_READY_TAINT, "NoExecute")],
                                     ["a", "b", "d"], False)),
    # Back to Ready: the health taints go, other taints stay.
    (node(taints=[{"key": UNREACHABLE_TAINT, "effect": "NoSchedule"}, {"key": "dedicated", "effect": "NoSchedule"}]),
     1, False, (None, [("dedicated", "NoSchedule")], [], False)),
    # Cordoned (kubectl cordon): the unschedulable taint, and it goes with the cordon.
    (node(cordoned=True), 1, False, (None, [(UNSCHEDULABLE_TAINT, "NoSchedule")], [], False)),
    (node(taints=[{"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}]), 1, False, (None, [], [], False)),
    # Cordoned and silent: both kinds of taint, the health ones first.
    (node(cordoned=True), GRACE + 1, True, ("Unknown", [(UNREACHABLE_TAINT, "NoSchedule"),
                                                        (UNSCHEDULABLE_TAINT, "NoSchedule")], ["a", "b", "d"], True)),
], ids=["within-grace", "silent", "all-silent", "still-silent", "kubelet-not-ready", "recovered", "cordoned",
        "uncordoned", "cordoned-and-silent"])
def test_plan_node_health(the_node: dict, silent_for: float, all_not_ready: bool, want: tuple) -> None:
    pods = [pod("a"), pod("b"), pod("c", ready=False), pod("d", deleting=True)]
    probe = Probe({"type": "Ready"}, "", T0)
    plan = plan_node_health(the_node, probe, pods, T0 + silent_for, grace=GRACE, startup_grace=STARTUP,
                            all_not_ready=all_not_ready)
    ready = None if plan.status is None else {c["type"]: c for c in plan.status["conditions"]}["Ready"]["status"]
    got = (ready, _taints(plan.taints), [p["metadata"]["name"] for p in plan.pods_not_ready], plan.became_not_ready)
    assert got == want
    if plan.status is not None:
        for c in plan.status["conditions"]:
            assert (c["status"], c["reason"], c["message"]) == (
                "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
            assert c["lastHeartbeatTime"] == rfc3339(T0)  # the last one the kubelet wrote
            assert c["lastTransitionTime"] == rfc3339(T0 + silent_for)


@pytest.mark.parametrize(("nodes", "want"), [
    ([], False),
    ([(node("True"), False), (node("True"), True)], False),
    ([(node("True"), True), (node("True"), True)], True),  # the last ones fall silent in this pass
    ([(node("Unknown"), False), (node("False"), False)], True),
    ([(node("Unknown"), False), (node(None), False)], True),  # never reported
], ids=["no-nodes", "one-still-ready", "all-falling-silent-now", "none-ready", "none-reported"])
def test_fully_disrupted(nodes: list[tuple[dict, bool]], want: bool) -> None:
    assert fully_disrupted(nodes) is want


def test_pod_not_ready_flips_only_the_ready_condition() -> None:
    before = pod("a")
    after = pod_not_ready(before, T0)
    assert after["status"]["conditions"] == [{"type": "Ready", "status": "False", "lastTransitionTime": rfc3339(T0)}]
    assert before["status"]["conditions"][0]["status"] == "True"  # the input is left alone
