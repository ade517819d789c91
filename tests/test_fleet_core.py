"""The fleet's pure core: lifecycle tables and planning, address management, scheduling, objects."""

from __future__ import annotations

import ipaddress

import pytest

from sliceplane.api.meta import parse_time, rfc3339
from sliceplane.api.taints import tolerates
from sliceplane.fleet.ipam import (
    CIDRExhaustedError,
    ClusterCIDRs,
    IPAMError,
    NodeIPAM,
    node_internal_ip,
    sort_pod_ips,
)
from sliceplane.fleet.lifecycle import (
    NODE_TRANSITIONS,
    POD_TRANSITIONS,
    Action,
    IllegalTransition,
    NodeEvent,
    NodeState,
    PodEvent,
    PodState,
    node_transition,
    observe,
    plan_pod,
    pod_transition,
    pod_transitions,
    ready_time,
    termination_deadline,
)
from sliceplane.fleet.objects import (
    NodeShape,
    container_id,
    image_id,
    node_metadata_patch,
    node_object,
    node_status,
    normalize_image,
    pod_status,
    qos_class,
)
from sliceplane.fleet.scheduler import NodeFit, pick_node, unschedulable_message

T0 = 1_700_000_000.0

# --- lifecycle tables ------------------------------------------------------------------------

P, E = PodState, PodEvent


@pytest.mark.parametrize(
    ("state", "events", "end"),
    [
        (P.PENDING, (E.BIND, E.START, E.BECOME_READY), P.READY),
        (P.SCHEDULED, (E.START, E.BECOME_READY), P.READY),
        (P.READY, (E.TERMINATE, E.FINISH), P.GONE),
        (P.RUNNING, (E.TERMINATE,), P.TERMINATING),
        (P.PENDING, (E.TERMINATE, E.FINISH), P.GONE),
        (P.SCHEDULED, (E.REMOVE,), P.GONE),
        (P.TERMINATING, (E.REMOVE,), P.GONE),
    ],
    ids=["full-start", "bound-start", "graceful-delete", "terminate-not-ready", "unbound-delete",
         "removed-before-start", "removed-while-terminating"],
)
def test_pod_paths(state: PodState, events: tuple[PodEvent, ...], end: PodState) -> None:
    assert pod_transitions(state, events) == end


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (P.PENDING, E.START),
        (P.PENDING, E.BECOME_READY),
        (P.SCHEDULED, E.BIND),
        (P.READY, E.START),
        (P.READY, E.BECOME_READY),
        (P.TERMINATING, E.BECOME_READY),
        (P.TERMINATING, E.TERMINATE),
        (P.GONE, E.REMOVE),
        (P.GONE, E.BIND),
        (P.RUNNING, E.FINISH),
    ],
    ids=["start-unbound", "ready-unbound", "rebind", "restart-ready", "ready-twice", "ready-while-terminating",
         "terminate-twice", "remove-twice", "bind-gone", "finish-without-terminate"],
)
def test_pod_illegal_transitions_raise(state: PodState, event: PodEvent) -> None:
    with pytest.raises(IllegalTransition) as exc:
        pod_transition(state, event)
    assert (exc.value.state, exc.value.event) == (state, event)


def test_every_pod_state_is_reachable_and_gone_is_final() -> None:
    reachable = {P.PENDING}
    for _ in range(len(P)):
        reachable |= {dst for (src, _), dst in POD_TRANSITIONS.items() if src in reachable}
    assert reachable == set(P)
    assert not [k for k in POD_TRANSITIONS if k[0] == P.GONE]


@pytest.mark.parametrize(
    ("events", "end"),
    [
        ((NodeEvent.REGISTER, NodeEvent.REPORT_READY), NodeState.READY),
        ((NodeEvent.REGISTER, NodeEvent.REPORT_READY, NodeEvent.HEARTBEAT, NodeEvent.REMOVE), NodeState.ABSENT),
    ],
    ids=["register", "heartbeat-remove"],
)
def test_node_paths(events: tuple[NodeEvent, ...], end: NodeState) -> None:
    state = NodeState.ABSENT
    for e in events:
        state = node_transition(state, e)
    assert state == end


def test_node_illegal_transition() -> None:
    with pytest.raises(IllegalTransition):
        node_transition(NodeState.ABSENT, NodeEvent.HEARTBEAT)
    assert (NodeState.ABSENT, NodeEvent.REPORT_READY) not in NODE_TRANSITIONS


def pod(name: str = "p", *, node: str = "", phase: str = "", ready: bool | None = None, deleting: str = "",
        grace: int | None = None, spec_grace: int | None = None, scheduler: str | None = None) -> dict:
    meta: dict = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if deleting:
        meta["deletionTimestamp"] = deleting
    if grace is not None:
        meta["deletionGracePeriodSeconds"] = grace
    spec: dict = {"containers": [{"name": "c", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    if spec_grace is not None:
        spec["terminationGracePeriodSeconds"] = spec_grace
    if scheduler is not None:
        spec["schedulerName"] = scheduler
    status: dict = {}
    if phase:
        status["phase"] = phase
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": meta, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("obj", "state"),
    [
        (pod(), P.PENDING),
        (pod(node="n"), P.SCHEDULED),
        (pod(node="n", phase="Pending"), P.SCHEDULED),
        (pod(node="n", phase="Running", ready=False), P.RUNNING),
        (pod(node="n", phase="Running"), P.RUNNING),
        (pod(node="n", phase="Running", ready=True), P.READY),
        (pod(node="n", phase="Running", ready=True, deleting=rfc3339(T0)), P.READY),
    ],
    ids=["unbound", "bound", "bound-pending", "running", "running-no-conditions", "ready", "ready-deleting"],
)
def test_observe(obj: dict, state: PodState) -> None:
    assert observe(obj) == state


@pytest.mark.parametrize(
    ("obj", "max_grace", "deadline"),
    [
        (pod(deleting=rfc3339(T0 + 30), grace=30), None, T0 + 30),
        (pod(deleting=rfc3339(T0 + 30), grace=30), 2.0, T0 + 2),
        (pod(deleting=rfc3339(T0 + 1), grace=1), 5.0, T0 + 1),
        (pod(deleting=rfc3339(T0), grace=0), None, T0),
        (pod(deleting=rfc3339(T0 + 10), spec_grace=10), None, T0 + 10),
        (pod(), 3.0, T0 + 100 + 3),
    ],
    ids=["full-grace", "capped", "grace-below-cap", "zero-grace", "spec-grace", "no-timestamp"],
)
def test_termination_deadline(obj: dict, max_grace: float | None, deadline: float) -> None:
    assert termination_deadline(obj, max_grace, T0 + 100) == deadline


@pytest.mark.parametrize(
    ("started_at", "delay", "ready_at"),
    [
        (T0 + 0.2, 0.5, T0 + 1.0),
        (T0 + 0.6, 0.5, T0 + 1.1),
        (T0, 2.0, T0 + 2.0),
        (T0 + 0.9, 0.0, T0 + 0.9),
        (T0 + 0.999, 0.001, T0 + 1.0),
    ],
    ids=["pushed-to-next-second", "already-next-second", "long-delay", "no-delay", "edge"],
)
def test_ready_time(started_at: float, delay: float, ready_at: float) -> None:
    assert ready_time(started_at, delay) == pytest.approx(ready_at)
    if delay > 0:
        assert rfc3339(ready_time(started_at, delay)) != rfc3339(started_at)


A = Action


@pytest.mark.parametrize(
    ("state", "obj", "now", "ready_at", "finish_at", "action", "events", "wake_at"),
    [
        (P.PENDING, pod(), T0, T0 + 1, None, A.BIND, (E.BIND,), None),
        (P.SCHEDULED, pod(), T0, T0 + 1, None, A.WRITE_RUNNING, (E.START,), T0 + 1),
        (P.SCHEDULED, pod(), T0, T0, None, A.WRITE_READY, (E.START, E.BECOME_READY), None),
        (P.RUNNING, pod(), T0, T0 + 1, None, A.NOTHING, (), T0 + 1),
        (P.RUNNING, pod(), T0 + 1, T0 + 1, None, A.WRITE_READY, (E.BECOME_READY,), None),
        (P.READY, pod(), T0, T0, None, A.NOTHING, (), None),
        (P.READY, pod(deleting="x"), T0, T0, T0 + 5, A.WRITE_TERMINATED, (E.TERMINATE,), T0 + 5),
        (P.RUNNING, pod(deleting="x"), T0, T0 + 9, T0 + 5, A.WRITE_TERMINATED, (E.TERMINATE,), T0 + 5),
        (P.TERMINATING, pod(deleting="x"), T0, T0, T0 + 5, A.NOTHING, (), T0 + 5),
        (P.TERMINATING, pod(deleting="x"), T0 + 5, T0, T0 + 5, A.DELETE, (E.FINISH,), None),
        (P.PENDING, pod(deleting="x"), T0, T0, T0 + 30, A.DELETE, (E.TERMINATE, E.FINISH), None),
        (P.READY, None, T0, T0, None, A.FORGET, (E.REMOVE,), None),
        (P.TERMINATING, None, T0, T0, None, A.FORGET, (E.REMOVE,), None),
        (P.GONE, pod(deleting="x"), T0, T0, T0, A.NOTHING, (), None),
        (P.GONE, None, T0, T0, None, A.NOTHING, (), None),
    ],
    ids=["bind", "start-not-ready", "start-ready-at-once", "wait-for-ready", "become-ready", "steady",
         "delete-ready", "delete-running", "grace-period", "grace-over", "delete-unbound", "vanished",
         "vanished-terminating", "gone-echo", "gone-deleted"],
)
def test_plan_pod(state: PodState, obj: dict | None, now: float, ready_at: float, finish_at: float | None,
                  action: Action, events: tuple[PodEvent, ...], wake_at: float | None) -> None:
    plan = plan_pod(state, obj, now, ready_at=ready_at, finish_at=finish_at)
    assert (plan.action, plan.events, plan.wake_at) == (action, events, wake_at)
    pod_transitions(state, plan.events)  # every plan is legal in the table


@pytest.mark.parametrize(
    ("resync_ready", "ready", "action"),
    [(True, False, A.WRITE_READY), (False, False, A.NOTHING), (True, True, A.NOTHING)],
    ids=["node-back-pod-marked-not-ready", "readiness-flipped-by-a-client", "node-back-pod-ready"],
)
def test_ready_pod_shown_not_ready(resync_ready: bool, ready: bool, action: Action) -> None:
    """A pod we made Ready that the API shows not ready gets Ready again only when its node has
    just come back (the node lifecycle controller marked it); otherwise the write stands, as a
    failing readiness probe."""
    plan = plan_pod(P.READY, pod(node="n", phase="Running", ready=ready), T0, ready_at=T0, finish_at=None,
                    resync_ready=resync_ready)
    assert (plan.action, plan.events) == (action, ())


# --- ipam ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "mask", "reserved", "expected"),
    [
        ("10.128.0.0/9", 19, [], ["10.128.0.0/19", "10.128.32.0/19", "10.128.64.0/19"]),
        ("10.128.0.0/9", 19, ["10.128.32.0/19"], ["10.128.0.0/19", "10.128.64.0/19", "10.128.96.0/19"]),
        ("10.128.0.0/9", 24, ["10.0.0.0/24", "10.128.0.0/19"], ["10.128.0.0/24", "10.128.1.0/24", "10.128.2.0/24"]),
        ("fd00:10:244::/48", 64, ["fd00:10:244::/64"], ["fd00:10:244:1::/64", "fd00:10:244:2::/64",
                                                         "fd00:10:244:3::/64"]),
    ],
    ids=["fresh", "skips-reserved", "foreign-and-other-size-ignored", "ipv6"],
)
def test_cluster_cidrs(cidr: str, mask: int, reserved: list[str], expected: list[str]) -> None:
    pool = ClusterCIDRs(cidr, mask)
    for r in reserved:
        pool.reserve(r)
    assert [pool.allocate() for _ in expected] == expected


def test_cluster_cidrs_exhaust_and_release() -> None:
    pool = ClusterCIDRs("10.0.0.0/23", 24)
    assert pool.size == 2
    got = [pool.allocate(), pool.allocate()]
    with pytest.raises(CIDRExhaustedError):
        pool.allocate()
    pool.release(got[0])
    assert pool.allocate() == got[0]
    with pytest.raises(IPAMError):
        ClusterCIDRs("10.0.0.0/16", 8)


@pytest.mark.parametrize(
    ("cidr", "ops", "expected"),
    [
        ("10.0.0.0/29", ["a", "a", "a"], ["10.0.0.2", "10.0.0.3", "10.0.0.4"]),
        # round-robin: a freed address is not handed out again until the range wraps
        ("10.0.0.0/29", ["a", "a", "r10.0.0.2", "a", "a", "a", "a"],
         ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.2"]),
        # reserved (from existing pods after a restart) are skipped
        ("10.0.0.0/29", ["s10.0.0.2", "s10.0.0.4", "a", "a"], ["10.0.0.3", "10.0.0.5"]),
        # network, gateway and broadcast are never handed out; outside addresses are refused
        ("10.0.0.0/29", ["s10.0.0.0", "s10.0.0.1", "s10.0.0.7", "s10.0.1.5", "a"], ["10.0.0.2"]),
        ("fd00:10:244:5::/64", ["a", "a"], ["fd00:10:244:5::2", "fd00:10:244:5::3"]),
    ],
    ids=["sequential", "round-robin-reuse", "restart-reserved", "reserved-addresses", "ipv6"],
)
def test_node_ipam(cidr: str, ops: list[str], expected: list[str]) -> None:
    ipam = NodeIPAM(cidr)
    got = []
    for op in ops:
        if op == "a":
            got.append(ipam.allocate())
        elif op.startswith("r"):
            ipam.release(op[1:])
        else:
            ipam.reserve(op[1:])
    assert got == expected


def test_node_ipam_exhausts_then_frees() -> None:
    ipam = NodeIPAM("10.0.0.0/29")
    got = {ipam.allocate() for _ in range(ipam.capacity)}
    assert len(got) == ipam.capacity == 5
    with pytest.raises(CIDRExhaustedError):
        ipam.allocate()
    ipam.release("10.0.0.4")
    assert ipam.allocate() == "10.0.0.4"


def test_node_ipam_large_node_distinct() -> None:
    ipam = NodeIPAM("10.128.0.0/19")
    ips = [ipam.allocate() for _ in range(5000)]
    assert len(set(ips)) == 5000
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.128.0.0/19") for ip in ips)


@pytest.mark.parametrize(
    ("index", "family", "ip"),
    [(0, 4, "192.168.0.1"), (255, 4, "192.168.1.0"), (0, 6, "fc00:f853:ccd:e793::1")],
    ids=["first", "crosses-octet", "ipv6"],
)
def test_node_internal_ip(index: int, family: int, ip: str) -> None:
    assert node_internal_ip(index, family) == ip


def test_sort_pod_ips_puts_ipv4_first() -> None:
    assert sort_pod_ips(["fd00::2", "10.0.0.2"]) == ["10.0.0.2", "fd00::2"]


# --- scheduling ------------------------------------------------------------------------------

NODES3 = [NodeFit("n0", {"zone": "a"}, 3), NodeFit("n1", {"zone": "b"}, 3), NodeFit("n2", {"zone": "c"}, 3)]


@pytest.mark.parametrize(
    ("obj", "counts", "expected"),
    [
        (pod(), {}, "n0"),
        (pod(), {"n0": 1}, "n1"),
        (pod(), {"n0": 1, "n1": 1, "n2": 1}, "n0"),
        (pod(), {"n0": 2, "n1": 0, "n2": 1}, "n1"),
        (pod(), {"n0": 3, "n1": 3, "n2": 3}, None),
        ({"spec": {"nodeSelector": {"zone": "c"}}}, {"n2": 2}, "n2"),
        ({"spec": {"nodeSelector": {"zone": "x"}}}, {}, None),
    ],
    ids=["empty", "fewest", "tie-node-order", "fewest-middle", "all-full", "selector", "selector-none"],
)
def test_pick_node(obj: dict, counts: dict, expected: str | None) -> None:
    assert pick_node(obj, NODES3, counts) == expected


def test_pick_node_skips_cordoned() -> None:
    nodes = [NodeFit("n0", unschedulable=True), NodeFit("n1")]
    assert pick_node(pod(), nodes, {}) == "n1"


DEDICATED = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}


@pytest.mark.parametrize(("toleration", "taint", "want"), [
    ({"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}, DEDICATED, True),
    ({"key": "dedicated", "value": "db"}, DEDICATED, True),  # Equal by default, any effect
    ({"key": "dedicated", "value": "web"}, DEDICATED, False),
    ({"key": "dedicated", "operator": "Exists"}, DEDICATED, True),
    ({"operator": "Exists"}, DEDICATED, True),  # empty key with Exists: every taint
    ({"operator": "Exists", "effect": "NoExecute"}, DEDICATED, False),
    ({"key": "other", "operator": "Exists"}, DEDICATED, False),
    ({"key": "", "value": ""}, DEDICATED, False),  # empty key with Equal matches only an empty key
], ids=["equal", "equal-default", "other-value", "exists", "exists-all", "other-effect", "other-key", "empty-equal"])
def test_tolerates(toleration: dict, taint: dict, want: bool) -> None:
    assert tolerates(toleration, taint) is want


def _tolerating(*tolerations: dict) -> dict:
    return {"spec": {"tolerations": list(tolerations)}}


@pytest.mark.parametrize(("obj", "expected"), [
    (pod(), "n2"),  # n3 is emptier, but its PreferNoSchedule taint is not tolerated
    (_tolerating({"operator": "Exists"}), "n0"),
    (_tolerating({"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}), "n1"),
    (_tolerating({"key": "soft", "operator": "Exists"}), "n3"),
], ids=["untolerated", "tolerates-everything", "tolerates-cordon", "tolerates-prefer-no-schedule"])
def test_pick_node_respects_taints(obj: dict, expected: str) -> None:
    soft = {"key": "soft", "effect": "PreferNoSchedule"}
    nodes = [NodeFit("n0", taints=(DEDICATED,)), NodeFit("n1", unschedulable=True), NodeFit("n2"),
             NodeFit("n3", taints=(soft,))]
    assert pick_node(obj, nodes, {"n0": 0, "n1": 0, "n2": 5, "n3": 0}) == expected


def test_unschedulable_message_counts_reasons_in_order() -> None:
    nodes = [NodeFit("n0", taints=(DEDICATED,)), NodeFit("n1", unschedulable=True, taints=(DEDICATED,)),
             NodeFit("n2", {"zone": "a"}, max_pods=1), NodeFit("n3", {"zone": "b"})]
    obj = {"spec": {"nodeSelector": {"zone": "a"}}}
    assert unschedulable_message(obj, nodes, {"n2": 1}) == (
        "0/4 nodes are available: 1 Too many pods, 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {dedicated: db}, 1 node(s) were unschedulable. "
        "preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.")


# --- objects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "normalized"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("redis:6.0.5", "docker.io/library/redis:6.0.5"),
        ("istio/examples-bookinfo-reviews-v1:1.20.2", "docker.io/istio/examples-bookinfo-reviews-v1:1.20.2"),
        ("gcr.io/google-samples/gb-frontend:v5", "gcr.io/google-samples/gb-frontend:v5"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("nginx@sha256:abc", "docker.io/library/nginx@sha256:abc"),
    ],
    ids=["bare", "tag", "user-repo", "registry", "registry-port", "digest"],
)
def test_normalize_image(image: str, normalized: str) -> None:
    assert normalize_image(image) == normalized


def test_ids_are_stable_and_distinct() -> None:
    assert container_id("u1", "c") == container_id("u1", "c")
    assert container_id("u1", "c") != container_id("u2", "c")
    assert container_id("u1", "c").startswith("containerd://") and len(container_id("u1", "c")) == 13 + 64
    assert image_id("nginx").startswith("docker.io/library/nginx@sha256:")


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ([{}], "BestEffort"),
        ([{"requests": {"cpu": "100m"}}], "Burstable"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
    ],
    ids=["none", "requests-only", "limits-only", "equal", "one-guaranteed-one-empty"],
)
def test_qos_class(resources: list[dict], qos: str) -> None:
    obj = {"spec": {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}}
    assert qos_class(obj) == qos


def _cond(status: dict, type_: str) -> dict:
    return next(c for c in status["conditions"] if c["type"] == type_)


@pytest.mark.parametrize(
    ("phase", "ready", "container_state", "ready_to_start"),
    [("running", "False", "running", "True"), ("ready", "True", "running", "True"),
     ("terminated", "False", "terminated", "False")],
    ids=["running", "ready", "terminated"],
)
def test_pod_status(phase: str, ready: str, container_state: str, ready_to_start: str) -> None:
    p = pod(node="n0")
    st = pod_status(p, phase, host_ips=["192.168.0.1"], pod_ips=["10.128.0.2", "fd00::2"],  # type: ignore[arg-type]
                    started_at=T0, now=T0 + 2)
    assert st["phase"] == "Running"
    assert [c["type"] for c in st["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert _cond(st, "Ready")["status"] == ready == _cond(st, "ContainersReady")["status"]
    assert _cond(st, "PodReadyToStartContainers")["status"] == ready_to_start
    if ready == "False":
        assert _cond(st, "Ready")["reason"] == "ContainersNotReady"
        assert _cond(st, "Ready")["message"] == "containers with unready status: [c]"
    assert (st["podIP"], st["podIPs"]) == ("10.128.0.2", [{"ip": "10.128.0.2"}, {"ip": "fd00::2"}])
    assert (st["hostIP"], st["hostIPs"]) == ("192.168.0.1", [{"ip": "192.168.0.1"}])
    assert parse_time(st["startTime"]) == T0
    (cs,) = st["containerStatuses"]
    assert list(cs["state"]) == [container_state]
    assert cs["ready"] is (ready == "True")
    assert cs["image"] == "docker.io/library/nginx:latest"
    assert cs["containerID"] == container_id("uid-p", "c")
    assert st["qosClass"] == "BestEffort"


def test_pod_status_keeps_transition_times_of_unchanged_conditions() -> None:
    p = pod(node="n0")
    running = pod_status(p, "running", host_ips=["h"], pod_ips=["10.0.0.2"], started_at=T0, now=T0)
    p["status"] = running
    ready = pod_status(p, "ready", host_ips=["h"], pod_ips=["10.0.0.2"], started_at=T0, now=T0 + 7)
    assert parse_time(_cond(ready, "PodScheduled")["lastTransitionTime"]) == T0
    assert parse_time(_cond(ready, "Ready")["lastTransitionTime"]) == T0 + 7


def test_node_object() -> None:
    shape = NodeShape("node-4", "zone-b", "region-1", ("192.168.0.5",), ("10.128.128.0/19",), max_pods=8189)
    node = node_object(shape, T0)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "node-4"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["topology.kubernetes.io/zone"] == "zone-b"
    assert labels["topology.kubernetes.io/region"] == "region-1"
    assert node["spec"] == {"podCIDR": "10.128.128.0/19", "podCIDRs": ["10.128.128.0/19"]}
    st = node["status"]
    assert _cond(st, "Ready")["status"] == "True"
    assert st["allocatable"]["pods"] == "8189" and st["capacity"]["cpu"] == "8"
    assert st["addresses"] == [{"type": "InternalIP", "address": "192.168.0.5"},
                               {"type": "Hostname", "address": "node-4"}]
    assert st["nodeInfo"]["kubeletVersion"] == "v1.32.0"
    again = node_status(shape, T0 + 60, st)
    assert _cond(again, "Ready")["lastTransitionTime"] == _cond(st, "Ready")["lastTransitionTime"]
    assert _cond(again, "Ready")["lastHeartbeatTime"] == rfc3339(T0 + 60)


SHAPE = NodeShape("node-0", "zone-a", "region-1", ("192.168.0.1",), ("10.128.0.0/19",))


def _existing(**changes: object) -> dict:
    node = node_object(SHAPE, T0)
    node["metadata"]["labels"]["extra"] = "kept"  # labels someone else added are left alone
    for path, value in changes.items():
        section, key = path.split("__")
        node[section if section != "meta" else "metadata"][key] = value
    return node


@pytest.mark.parametrize(
    ("existing", "patch"),
    [
        (_existing(), {}),
        (_existing(meta__labels={"kubernetes.io/os": "linux"}),
         {"metadata": {"labels": {k: v for k, v in node_object(SHAPE, T0)["metadata"]["labels"].items()
                                  if k != "kubernetes.io/os"}}}),
        (_existing(meta__annotations={}), {"metadata": {"annotations": {"sliceplane.io/fleet": "sliceplane"}}}),
        (_existing(spec__podCIDRs=[]), {"spec": {"podCIDR": "10.128.0.0/19", "podCIDRs": ["10.128.0.0/19"]}}),
    ],
    ids=["converged", "labels-missing", "annotation-missing", "cidrs-missing"],
)
def test_node_metadata_patch(existing: dict, patch: dict) -> None:
    assert node_metadata_patch(existing, SHAPE) == patch
