"""Table tests of the Deployment controller's pure core, and simulated rollouts over it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sliceplane.api.meta import rfc3339
from sliceplane.controllers.deployment import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    calculate_status,
    collision_status,
    equal_ignore_hash,
    get_condition,
    max_surge,
    max_unavailable,
    needs_pods,
    new_rs_name,
    plan_deployment,
    pod_template_hash,
    resolve_fenceposts,
    scaled_value,
)

NOW = 1_700_000_000.0


def new_deployment(
    replicas: int = 10,
    *,
    image: str = "nginx:1",
    strategy: dict | None = None,
    paused: bool = False,
    generation: int = 1,
    history: int | None = 10,
    status: dict | None = None,
    annotations: dict | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]},
        },
        "strategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "revisionHistoryLimit": history,
        "progressDeadlineSeconds": 600,
    }
    if paused:
        spec["paused"] = True
    meta: dict[str, Any] = {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": generation}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec, "status": status or {}}


class Cluster:
    """The objects one Deployment sync sees, with plans applied as the API server would."""

    def __init__(self, d: dict) -> None:
        self.d = d
        self.rss: list[dict] = []
        self.clock = NOW
        self.serial = 0
        self.writes = 0

    def sync(self) -> Any:
        plan = plan_deployment(self.d, copy.deepcopy(self.rss), {}, self.clock)
        self.apply(plan)
        return plan

    def apply(self, plan: Any) -> None:
        if plan.create is not None:
            rs = copy.deepcopy(plan.create)
            self.serial += 1
            rs["metadata"].update(uid=f"rs-{self.serial}", creationTimestamp=rfc3339(self.clock + self.serial),
                                  generation=1)
            rs["status"] = {"replicas": 0}
            self.rss.append(rs)
            self.writes += 1
        for upd in plan.updates:
            idx = next(i for i, rs in enumerate(self.rss) if rs["metadata"]["name"] == upd["metadata"]["name"])
            upd = copy.deepcopy(upd)
            if upd["spec"] != self.rss[idx]["spec"]:
                upd["metadata"]["generation"] = upd["metadata"].get("generation", 1) + 1
            self.rss[idx] = upd
            self.writes += 1
        for gone in plan.deletes:
            self.rss = [rs for rs in self.rss if rs["metadata"]["name"] != gone["metadata"]["name"]]
            self.writes += 1
        if plan.revision is not None:
            self.d["metadata"].setdefault("annotations", {})[REVISION] = plan.revision
            self.writes += 1
        if plan.status is not None:
            self.d["status"] = copy.deepcopy(plan.status)
            self.writes += 1

    def run_replicasets(self, available_lag: bool = True) -> None:
        """The RS controller and kubelets: pods exist at once, become available one tick later."""
        for rs in self.rss:
            n = rs["spec"]["replicas"]
            st = rs["status"]
            prev = st.get("replicas", 0)
            avail = min(n, prev) if available_lag else n
            rs["status"] = {"replicas": n, "readyReplicas": avail, "availableReplicas": avail,
                            "fullyLabeledReplicas": n, "observedGeneration": rs["metadata"].get("generation", 1)}

    def converge(self, max_ticks: int = 100, samples: list | None = None) -> int:
        for tick in range(max_ticks):
            self.clock += 1
            plan = self.sync()
            self.run_replicasets()
            if samples is not None:
                samples.append([(rs["spec"]["replicas"], rs["status"].get("availableReplicas", 0))
                                for rs in self.rss])
            settled = all(rs["status"]["replicas"] == rs["spec"]["replicas"] and
                          rs["status"].get("availableReplicas", 0) == rs["spec"]["replicas"] for rs in self.rss)
            if plan.empty and settled and plan_deployment(self.d, self.rss, {}, self.clock).empty:
                return tick
        raise AssertionError("did not converge")


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [(3, 10, True, 3), ("25%", 10, True, 3), ("25%", 10, False, 2), ("0%", 10, True, 0), ("100%", 7, False, 7),
     ("33%", 3, True, 1), ("33%", 3, False, 0), ("5", 10, True, 5)],
    ids=["int", "pct-up", "pct-down", "zero", "whole", "third-up", "third-down", "numeric-string"],
)
def test_scaled_value(value: Any, total: int, round_up: bool, expected: int) -> None:
    assert scaled_value(value, total, round_up) == expected


@pytest.mark.parametrize("bad", ["abc", "x%", True], ids=["word", "bad-percent", "bool"])
def test_scaled_value_rejects_garbage(bad: Any) -> None:
    with pytest.raises(ValueError):
        scaled_value(bad, 10, True)


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [("25%", "25%", 10, (3, 2)), (0, 0, 10, (0, 1)), ("25%", "25%", 1, (1, 0)), (None, None, 4, (1, 1)),
     (2, "50%", 3, (2, 1))],
    ids=["defaults-10", "both-zero", "one-replica", "unset-defaults", "mixed"],
)
def test_resolve_fenceposts(surge: Any, unavailable: Any, desired: int, expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


def test_max_surge_and_unavailable_by_strategy() -> None:
    assert (max_surge(new_deployment(10)), max_unavailable(new_deployment(10))) == (3, 2)
    recreate = new_deployment(10, strategy={"type": "Recreate"})
    assert (max_surge(recreate), max_unavailable(recreate)) == (0, 0)
    assert max_unavailable(new_deployment(0)) == 0
    big = new_deployment(2, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 5}})
    assert max_unavailable(big) == 2


def test_pod_template_hash_is_stable_and_spelled_as_kubernetes() -> None:
    t = new_deployment()["spec"]["template"]
    h = pod_template_hash(t)
    assert h == pod_template_hash(copy.deepcopy(t))
    assert set(h) <= set("456789bcdf")
    assert pod_template_hash(t, 1) != h
    assert pod_template_hash(t, 0) != h  # a collision count of 0 still takes part
    other = new_deployment(image="nginx:2")["spec"]["template"]
    assert pod_template_hash(other) != h
    # key order does not matter
    reordered = {"spec": t["spec"], "metadata": t["metadata"]}
    assert pod_template_hash(reordered) == h


def test_null_and_empty_fields_are_semantically_absent() -> None:
    t = new_deployment()["spec"]["template"]
    undo = copy.deepcopy(t)
    undo["metadata"]["creationTimestamp"] = None  # as `kubectl rollout undo` sends it
    undo["spec"]["volumes"] = []
    assert equal_ignore_hash(t, undo)
    assert pod_template_hash(undo) == pod_template_hash(t)


def test_equal_ignore_hash() -> None:
    t = new_deployment()["spec"]["template"]
    hashed = copy.deepcopy(t)
    hashed["metadata"]["labels"]["pod-template-hash"] = "abc"
    assert equal_ignore_hash(t, hashed)
    changed = copy.deepcopy(hashed)
    changed["spec"]["containers"][0]["image"] = "x"
    assert not equal_ignore_hash(t, changed)


def test_first_sync_creates_the_replicaset() -> None:
    d = new_deployment(10, annotations={"kubernetes.io/change-cause": "first",
                                        "kubectl.kubernetes.io/last-applied-configuration": "{}"})
    plan = plan_deployment(d, [], {}, NOW)
    rs = plan.create
    h = pod_template_hash(d["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{h}" == new_rs_name(d)
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": h}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["replicas"] == 10
    assert rs["metadata"]["annotations"] == {
        REVISION: "1", DESIRED_REPLICAS: "10", MAX_REPLICAS: "13", "kubernetes.io/change-cause": "first"}
    assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                  "uid": "d-uid", "controller": True, "blockOwnerDeletion": True}]
    assert plan.revision == "1"
    progressing = get_condition(plan.status, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "True", "NewReplicaSetCreated", f'Created new replica set "web-{h}"')
    available = get_condition(plan.status, "Available")
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
    assert plan.status["observedGeneration"] == 1
    assert "updatedReplicas" not in plan.status


def test_rollout_completes_with_kubectl_rollout_status_fields() -> None:
    c = Cluster(new_deployment(10))
    c.converge()
    st = c.d["status"]
    assert {k: st.get(k) for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                                    "availableReplicas", "unavailableReplicas")} == {
        "observedGeneration": 1, "replicas": 10, "updatedReplicas": 10, "readyReplicas": 10,
        "availableReplicas": 10, "unavailableReplicas": None}
    conds = {cd["type"]: (cd["status"], cd["reason"]) for cd in st["conditions"]}
    assert conds == {"Available": ("True", "MinimumReplicasAvailable"),
                     "Progressing": ("True", "NewReplicaSetAvailable")}
    assert [cd["type"] for cd in st["conditions"]] == ["Available", "Progressing"]
    rs_name = c.rss[0]["metadata"]["name"]
    assert get_condition(st, "Progressing")["message"] == f'ReplicaSet "{rs_name}" has successfully progressed.'


def test_converged_deployment_plans_no_writes() -> None:
    c = Cluster(new_deployment(10))
    c.converge()
    for _ in range(3):
        c.clock += 1000
        plan = plan_deployment(c.d, c.rss, {}, c.clock)
        assert plan.empty
        assert plan.requeue_after is None


@pytest.mark.parametrize(
    ("replicas", "strategy", "max_total", "min_available"),
    [
        (10, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}, 13, 8),
        (10, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}, 11, 10),
        (10, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 3}}, 10, 7),
        (4, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": "50%"}}, 6, 2),
    ],
    ids=["defaults", "surge-only", "unavailable-only", "half"],
)
def test_rolling_update_honours_surge_and_unavailable(replicas: int, strategy: dict, max_total: int,
                                                       min_available: int) -> None:
    c = Cluster(new_deployment(replicas, strategy=strategy))
    c.converge()
    first = c.rss[0]["metadata"]["name"]
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    c.d["metadata"]["generation"] = 2
    samples: list = []
    c.converge(samples=samples)
    for sample in samples:
        assert sum(spec for spec, _ in sample) <= max_total, sample
        assert sum(avail for _, avail in sample) >= min_available, sample
    names = {rs["metadata"]["name"]: rs for rs in c.rss}
    assert names[first]["spec"]["replicas"] == 0
    new = next(rs for n, rs in names.items() if n != first)
    assert new["spec"]["replicas"] == replicas
    assert new["metadata"]["annotations"][REVISION] == "2"
    assert c.d["metadata"]["annotations"][REVISION] == "2"
    assert c.d["status"]["updatedReplicas"] == replicas
    assert c.d["status"]["observedGeneration"] == 2


def test_first_rolling_step_numbers() -> None:
    c = Cluster(new_deployment(10))
    c.converge()
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    plan = c.sync()
    assert plan.create["spec"]["replicas"] == 3
    assert [(u["metadata"]["name"], u["spec"]["replicas"]) for u in plan.updates] == [
        (c.rss[0]["metadata"]["name"], 8)]
    new_name = plan.create["metadata"]["name"]
    assert plan.events == [
        ("Normal", "ScalingReplicaSet", f"Scaled up replica set {new_name} to 3"),
        ("Normal", "ScalingReplicaSet", f"Scaled down replica set {c.rss[0]['metadata']['name']} to 8 from 10"),
    ]


def test_recreate_scales_down_then_waits_for_pods_then_creates() -> None:
    d = new_deployment(3, strategy={"type": "Recreate"})
    c = Cluster(d)
    c.converge()
    old = c.rss[0]
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    plan = plan_deployment(c.d, c.rss, {}, NOW)
    assert plan.create is None
    assert [(u["metadata"]["name"], u["spec"]["replicas"]) for u in plan.updates] == [(old["metadata"]["name"], 0)]
    c.apply(plan)
    c.run_replicasets()
    # the old RS reports 0 but a pod of it is still running: wait
    pod = {"metadata": {"name": "p"}, "status": {"phase": "Running"}}
    waiting = plan_deployment(c.d, c.rss, {old["metadata"]["uid"]: [pod]}, NOW)
    assert waiting.create is None and not waiting.updates
    assert waiting.waiting_for_pods
    assert needs_pods(c.d, c.rss)
    # it finished: create the new RS at full size
    done = plan_deployment(c.d, c.rss, {old["metadata"]["uid"]: [{**pod, "status": {"phase": "Succeeded"}}]}, NOW)
    assert done.create["spec"]["replicas"] == 3
    assert not done.waiting_for_pods
    c.apply(done)
    c.run_replicasets()
    assert not needs_pods(c.d, c.rss)  # the new RS is at full size: nothing to wait for


def test_only_recreate_waiting_on_old_replicasets_needs_pods() -> None:
    rolling = Cluster(new_deployment(3))
    rolling.converge()
    rolling.d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert not needs_pods(rolling.d, rolling.rss)
    recreate = Cluster(new_deployment(3, strategy={"type": "Recreate"}))
    recreate.converge()
    assert not needs_pods(recreate.d, recreate.rss)  # converged, no old RS
    recreate.d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert not needs_pods(recreate.d, recreate.rss)  # the old RS still reports its pods


def test_scale_event_resizes_the_active_replicaset() -> None:
    c = Cluster(new_deployment(10))
    c.converge()
    c.d["spec"]["replicas"] = 4
    plan = c.sync()
    assert plan.create is None
    assert [(u["spec"]["replicas"], u["metadata"]["annotations"][DESIRED_REPLICAS],
             u["metadata"]["annotations"][MAX_REPLICAS]) for u in plan.updates] == [(4, "4", "5")]


def test_proportional_scaling_mid_rollout() -> None:
    c = Cluster(new_deployment(10))
    c.converge()
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    c.sync()
    c.run_replicasets(available_lag=True)
    sizes_before = sorted(rs["spec"]["replicas"] for rs in c.rss)
    assert sizes_before == [3, 8]
    c.d["spec"]["replicas"] = 20
    plan = c.sync()
    after = sorted(rs["spec"]["replicas"] for rs in c.rss)
    # 25 allowed (20 + 5 surge), 14 to add: each RS grows by 25/13 of its size (max-replicas was 13),
    # old 8 -> 15, new 3 -> 6, and the 4 left over go to the largest
    assert after == [6, 19]
    assert all(u["metadata"]["annotations"][DESIRED_REPLICAS] == "20" for u in plan.updates)


def test_paused_deployment_does_not_roll_out() -> None:
    c = Cluster(new_deployment(3))
    c.converge()
    c.d["spec"]["paused"] = True
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    plan = c.sync()
    assert plan.create is None and not plan.updates
    cond = get_condition(c.d["status"], "Progressing")
    assert (cond["status"], cond["reason"], cond["message"]) == ("Unknown", "DeploymentPaused", "Deployment is paused")
    c.d["spec"]["paused"] = False
    plan = c.sync()
    assert plan.create is not None
    assert get_condition(c.d["status"], "Progressing")["reason"] == "NewReplicaSetCreated"


def test_old_replicasets_cleaned_to_revision_history_limit() -> None:
    c = Cluster(new_deployment(2, history=2))
    for i in range(5):
        c.d["spec"]["template"]["spec"]["containers"][0]["image"] = f"nginx:{i}"
        c.converge()
    revisions = sorted(int(rs["metadata"]["annotations"][REVISION]) for rs in c.rss)
    assert revisions == [3, 4, 5]


def test_progress_deadline_exceeded() -> None:
    c = Cluster(new_deployment(2))
    c.sync()  # RS created; no pod ever becomes available
    for rs in c.rss:
        rs["status"] = {"replicas": 2}
    c.clock += 10
    c.sync()
    plan = plan_deployment(c.d, c.rss, {}, c.clock + 5)
    assert plan.status is None
    assert 590 < plan.requeue_after <= 601
    timed_out = plan_deployment(c.d, c.rss, {}, c.clock + 700)
    cond = get_condition(timed_out.status, "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cond["message"] == f'ReplicaSet "{c.rss[0]["metadata"]["name"]}" has timed out progressing.'


def test_rollback_to_an_old_template_reuses_its_replicaset() -> None:
    c = Cluster(new_deployment(2))
    c.converge()
    first = c.rss[0]["metadata"]["name"]
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    c.converge()
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1"
    c.converge()
    assert len(c.rss) == 2
    back = next(rs for rs in c.rss if rs["metadata"]["name"] == first)
    assert back["spec"]["replicas"] == 2
    assert back["metadata"]["annotations"][REVISION] == "3"
    assert back["metadata"]["annotations"][REVISION_HISTORY] == "1"
    assert c.d["metadata"]["annotations"][REVISION] == "3"


def test_restart_rollout_via_template_annotation() -> None:
    c = Cluster(new_deployment(3))
    c.converge()
    c.d["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
    plan = c.sync()
    assert plan.create is not None
    assert plan.create["spec"]["template"]["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}


def test_collision_status_bumps_count_and_hash() -> None:
    d = new_deployment()
    assert collision_status(d)["collisionCount"] == 1
    d["status"] = collision_status(d)
    assert new_rs_name(d) != new_rs_name(new_deployment())
    assert plan_deployment(d, [], {}, NOW).create["metadata"]["name"] == new_rs_name(d)


def test_calculate_status_available_threshold() -> None:
    d = new_deployment(10)
    rs = {"metadata": {"name": "a"}, "spec": {"replicas": 10}, "status": {"replicas": 10, "availableReplicas": 8}}
    st = calculate_status([rs], rs, d, NOW)
    assert get_condition(st, "Available")["status"] == "True"
    assert st["unavailableReplicas"] == 2
    rs["status"]["availableReplicas"] = 7
    assert get_condition(calculate_status([rs], rs, d, NOW), "Available")["reason"] == "MinimumReplicasUnavailable"


def test_deleting_deployment_only_updates_status() -> None:
    c = Cluster(new_deployment(3))
    c.converge()
    c.d["metadata"]["deletionTimestamp"] = rfc3339(NOW)
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    plan = plan_deployment(c.d, c.rss, {}, NOW)
    assert plan.create is None and not plan.updates and not plan.deletes
