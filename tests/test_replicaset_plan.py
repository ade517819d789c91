"""Table tests of the ReplicaSet controller's pure core."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sliceplane.api.meta import rfc3339
from sliceplane.controllers.replicaset import (
    Expectations,
    available_requeue_after,
    calculate_status,
    deletion_order,
    plan_replicas,
    pod_from_template,
    slow_start_batches,
    status_changed,
)
from sliceplane.controllers.workload_util import plan_claims, selector_matches

NOW = 1_700_000_000.0


def new_rs(replicas: int = 3, *, min_ready: int = 0, generation: int = 1, status: dict | None = None) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-abc", "namespace": "ns", "uid": "rs-uid", "generation": generation},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "fe"}, "annotations": {"a": "1"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
        "status": status or {"replicas": 0},
    }


def new_pod(
    name: str,
    *,
    node: str = "",
    phase: str = "Running",
    ready: bool | None = None,
    ready_since: float = NOW - 3600,
    created: float = NOW - 7200,
    restarts: int = 0,
    cost: int | None = None,
    labels: dict | None = None,
    owner: str | None = "rs-uid",
    deleting: bool = False,
) -> dict[str, Any]:
    if ready is None:
        ready = phase == "Running"
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": f"uid-{name}",
        "labels": {"app": "web", "tier": "fe"} if labels is None else labels,
        "creationTimestamp": rfc3339(created),
    }
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                                    "uid": owner, "controller": True}]
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    if deleting:
        meta["deletionTimestamp"] = rfc3339(NOW)
    conds = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": rfc3339(ready_since)}]
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conds, "containerStatuses": [{"restartCount": restarts}]},
    }


@pytest.mark.parametrize(
    ("count", "batches"),
    [(0, []), (1, [1]), (3, [1, 2]), (10, [1, 2, 4, 3]), (500, [1, 2, 4, 8, 16, 32, 64, 128, 245])],
    ids=["none", "one", "three", "ten", "burst"],
)
def test_slow_start_batches(count: int, batches: list[int]) -> None:
    assert slow_start_batches(count) == batches
    assert sum(batches) == count


@pytest.mark.parametrize(
    ("replicas", "pods", "create", "delete"),
    [
        (3, [], 3, []),
        (3, ["a", "b", "c"], 0, []),
        (1, ["a", "b", "c"], 0, 2),
        (0, ["a"], 0, 1),
        (1000, [], 500, []),
    ],
    ids=["create-all", "steady", "scale-down", "to-zero", "burst-cap"],
)
def test_plan_replicas_counts(replicas: int, pods: list[str], create: int, delete: int | list) -> None:
    objs = [new_pod(p, node="n1") for p in pods]
    plan = plan_replicas(new_rs(replicas), objs, objs, NOW)
    assert plan.create == create
    assert len(plan.delete) == (delete if isinstance(delete, int) else len(delete))


@pytest.mark.parametrize(
    ("pods", "first"),
    [
        ([new_pod("assigned", node="n1"), new_pod("unassigned", phase="Pending")], "unassigned"),
        ([new_pod("running", node="n1"), new_pod("pending", node="n1", phase="Pending")], "pending"),
        ([new_pod("unknown", node="n1", phase="Unknown"), new_pod("pending", node="n1", phase="Pending")],
         "pending"),
        ([new_pod("ready", node="n1"), new_pod("notready", node="n1", ready=False)], "notready"),
        ([new_pod("cheap", node="n1", cost=-5), new_pod("dear", node="n1", cost=10)], "cheap"),
        ([new_pod("alone", node="n2", ready_since=NOW - 5), new_pod("double1", node="n1"),
          new_pod("double2", node="n1", ready_since=NOW - 100_000)], "double1"),
        ([new_pod("old-ready", node="n1", ready_since=NOW - 10_000),
          new_pod("new-ready", node="n2", ready_since=NOW - 5)], "new-ready"),
        ([new_pod("calm", node="n1", restarts=0), new_pod("crashy", node="n2", restarts=4)], "crashy"),
        ([new_pod("older", node="n1", created=NOW - 100_000, ready=False),
          new_pod("newer", node="n2", created=NOW - 10, ready=False)], "newer"),
    ],
    ids=["unassigned-first", "pending-before-running", "pending-before-unknown", "not-ready-first",
         "lower-deletion-cost", "doubled-up-node", "ready-shorter", "more-restarts", "newer-first"],
)
def test_deletion_preference(pods: list[dict], first: str) -> None:
    frozen = copy.deepcopy(pods)
    ordered = deletion_order(pods, pods, NOW)
    assert ordered[0]["metadata"]["name"] == first
    # the inputs are not mutated, and the reverse input order gives the same answer
    assert pods == frozen
    assert deletion_order(list(reversed(pods)), pods, NOW)[0]["metadata"]["name"] == first


def test_ready_times_in_same_log_bucket_tie_break_on_uid() -> None:
    a = new_pod("a", node="n1", ready_since=NOW - 1000.0)
    b = new_pod("b", node="n2", ready_since=NOW - 1000.5)
    assert [p["metadata"]["name"] for p in deletion_order([b, a], [a, b], NOW)] == ["a", "b"]


def test_scale_down_deletes_the_least_valuable_pods() -> None:
    pods = [
        new_pod("r1", node="n1"),
        new_pod("r2", node="n2"),
        new_pod("pending", node="n3", phase="Pending"),
        new_pod("unbound", phase="Pending"),
    ]
    plan = plan_replicas(new_rs(2), pods, pods, NOW)
    assert [p["metadata"]["name"] for p in plan.delete] == ["unbound", "pending"]


def test_pod_from_template() -> None:
    rs = new_rs()
    pod = pod_from_template(rs)
    assert pod["metadata"]["generateName"] == "web-abc-"
    assert pod["metadata"]["namespace"] == "ns"
    assert pod["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert pod["metadata"]["annotations"] == {"a": "1"}
    assert pod["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "rs-uid",
        "controller": True, "blockOwnerDeletion": True,
    }]
    assert pod["spec"] == rs["spec"]["template"]["spec"]
    pod["spec"]["containers"][0]["image"] = "changed"
    assert rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"


@pytest.mark.parametrize(
    ("min_ready", "pods", "expected"),
    [
        (0, [], {"replicas": 0, "observedGeneration": 4}),
        (0, [new_pod("a"), new_pod("b", ready=False), new_pod("c", labels={"app": "web"})],
         {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
          "observedGeneration": 4}),
        (30, [new_pod("a", ready_since=NOW - 10), new_pod("b", ready_since=NOW - 60)],
         {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1,
          "observedGeneration": 4}),
    ],
    ids=["empty", "ready-and-labels", "min-ready-seconds"],
)
def test_calculate_status(min_ready: int, pods: list[dict], expected: dict) -> None:
    status = calculate_status(new_rs(3, min_ready=min_ready, generation=4), pods, NOW)
    assert status == expected


def test_status_failure_condition_set_then_cleared() -> None:
    rs = new_rs()
    failed = calculate_status(rs, [], NOW, ("FailedCreate", "pods is forbidden"))
    assert failed["conditions"] == [{"type": "ReplicaFailure", "status": "True", "lastTransitionTime":
                                     rfc3339(NOW), "reason": "FailedCreate", "message": "pods is forbidden"}]
    rs["status"] = failed
    # a later failure keeps the first transition time
    assert calculate_status(rs, [], NOW + 50, ("FailedCreate", "again"))["conditions"] == failed["conditions"]
    assert "conditions" not in calculate_status(rs, [], NOW + 60)


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        ({"replicas": 0}, {"replicas": 0}, False),
        ({}, {"replicas": 0}, False),
        ({"replicas": 2, "readyReplicas": 0}, {"replicas": 2}, False),
        ({"replicas": 2}, {"replicas": 2, "readyReplicas": 1}, True),
        ({"replicas": 2, "observedGeneration": 1}, {"replicas": 2, "observedGeneration": 2}, True),
    ],
    ids=["same", "missing-is-zero", "explicit-zero", "ready-changed", "generation-changed"],
)
def test_status_changed(old: dict, new: dict, changed: bool) -> None:
    assert status_changed(old, new) is changed


def test_available_requeue_after() -> None:
    rs = new_rs(2, min_ready=10)
    assert available_requeue_after(rs, {"replicas": 2, "readyReplicas": 2, "availableReplicas": 1}) == 10.0
    assert available_requeue_after(rs, {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}) is None
    assert available_requeue_after(new_rs(2), {"replicas": 2, "readyReplicas": 2}) is None


def test_expectations_block_until_observed() -> None:
    exp = Expectations(ttl=300)
    assert exp.satisfied("ns/a", NOW)
    exp.expect_creations("ns/a", 2, NOW)
    assert not exp.satisfied("ns/a", NOW)
    exp.creation_observed("ns/a")
    assert not exp.satisfied("ns/a", NOW)
    exp.creation_observed("ns/a")
    assert exp.satisfied("ns/a", NOW)
    exp.expect_deletions("ns/a", ["ns/p1", "ns/p2"], NOW)
    exp.deletion_observed("ns/a", "ns/other")
    exp.deletion_observed("ns/a", "ns/p1")
    assert exp.pending("ns/a") == (0, 1)
    assert not exp.satisfied("ns/a", NOW)
    # an expectation lost for longer than the TTL no longer blocks
    assert exp.satisfied("ns/a", NOW + 301)
    exp.deletion_observed("ns/a", "ns/p2")
    assert exp.satisfied("ns/a", NOW)


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        (None, {"a": "1"}, False),
        ({}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
    ],
    ids=["none", "empty", "labels", "labels-mismatch", "in", "notin", "exists", "does-not-exist"],
)
def test_selector_matches(selector: dict | None, labels: dict, matches: bool) -> None:
    assert selector_matches(selector, labels) is matches


def test_claims_adopt_release_and_ignore() -> None:
    rs = new_rs()
    mine = new_pod("mine")
    orphan = new_pod("orphan", owner=None)
    orphan_terminating = new_pod("orphan-t", owner=None, deleting=True)
    other = new_pod("other", owner="someone-else")
    mislabeled = new_pod("mislabeled", labels={"app": "db"})
    stranger = new_pod("stranger", owner=None, labels={"app": "db"})
    plan = plan_claims(rs, rs["spec"]["selector"], [mine, orphan, orphan_terminating, other, mislabeled, stranger])
    assert [p["metadata"]["name"] for p in plan.owned] == ["mine"]
    assert [p["metadata"]["name"] for p in plan.adopt] == ["orphan"]
    assert [p["metadata"]["name"] for p in plan.release] == ["mislabeled"]
    rs["metadata"]["deletionTimestamp"] = rfc3339(NOW)
    deleting = plan_claims(rs, rs["spec"]["selector"], [mine, orphan, mislabeled])
    assert ([p["metadata"]["name"] for p in deleting.owned], deleting.adopt, deleting.release) == (["mine"], [], [])


def test_write_tracker_waits_for_the_cache_to_catch_up() -> None:
    from sliceplane.controllers.workload_util import WriteTracker

    t = WriteTracker(ttl=30)
    assert not t.stale("ns/a", None, NOW)
    t.wrote("ns/a", {"metadata": {"resourceVersion": "10"}}, NOW)
    assert t.stale("ns/a", {"metadata": {"resourceVersion": "9"}}, NOW)
    assert t.stale("ns/a", None, NOW)  # created by us, not cached yet
    assert not t.stale("ns/a", {"metadata": {"resourceVersion": "10"}}, NOW)
    # once caught up, the entry is gone: an older copy later is not our business
    assert not t.stale("ns/a", {"metadata": {"resourceVersion": "9"}}, NOW)
    t.wrote("ns/b", "5", NOW)
    assert not t.stale("ns/b", None, NOW + 31)  # the event was lost: give up waiting
