"""Table-driven tests of the pure EndpointSlice planner, in the manner of reconciler_test.go.

The factories below (`new_service`, `new_pod`, `new_nodes`, `FakeServer`) are shared with the
other test_endpointslice_* modules.
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from typing import Any

import pytest

from sliceplane.controllers.endpointslice.reconciler import SlicePlan, reconcile
from sliceplane.controllers.endpointslice.triggertime import format_trigger_time
from sliceplane.controllers.endpointslice.values import (
    ANNOTATION_TRIGGER_TIME,
    CONTROLLER_NAME,
    LABEL_HEADLESS,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    SliceValue,
)

NS = "default"
T0 = 1_700_000_000.0

Obj = dict[str, Any]


def iso(ts: float) -> str:
    return format_trigger_time(ts)


def new_service(
    name: str = "svc",
    *,
    ns: str = NS,
    ports: list[Obj] | None = None,
    selector: dict[str, str] | None = None,
    ip_families: tuple[str, ...] = ("IPv4",),
    cluster_ip: str | None = "10.96.0.10",
    labels: dict[str, str] | None = None,
    publish_not_ready: bool = False,
    type_: str = "ClusterIP",
    uid: str | None = None,
    created: float = T0,
) -> Obj:
    spec: Obj = {
        "type": type_,
        "ports": [{"name": "", "port": 80, "targetPort": 80, "protocol": "TCP"}] if ports is None else ports,
        "selector": {"app": "web"} if selector is None else selector,
        "ipFamilies": list(ip_families),
        "publishNotReadyAddresses": publish_not_ready,
    }
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid or f"uid-svc-{name}", "labels": labels or {},
            "creationTimestamp": iso(created), "resourceVersion": "1",
        },
        "spec": spec,
    }


def new_pod(
    i: int,
    ns: str = NS,
    ready: bool = True,
    *,
    terminating: bool = False,
    ips: list[str] | None = None,
    node: str = "node-1",
    labels: dict[str, str] | None = None,
    hostname: str | None = None,
    subdomain: str | None = None,
    phase: str = "Running",
    container_ports: list[Obj] | None = None,
    ready_time: float = T0,
    name: str | None = None,
) -> Obj:
    ips = ips if ips is not None else [f"10.0.{i // 250}.{i % 250 + 1}"]
    spec: Obj = {"nodeName": node, "containers": [{"name": "c", "ports": container_ports or []}]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    meta: Obj = {"name": name or f"pod{i}", "namespace": ns, "uid": f"uid-pod-{name or i}",
                 "labels": {"app": "web"} if labels is None else labels, "resourceVersion": "1"}
    if terminating:
        meta["deletionTimestamp"] = iso(T0 + 5)
    status: Obj = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                        "lastTransitionTime": iso(ready_time)}],
    }
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def new_nodes(*names: str, zone: str = "zone-a") -> dict[str, Obj]:
    names = names or ("node-1",)
    return {n: {"kind": "Node", "metadata": {"name": n, "labels": {"topology.kubernetes.io/zone": zone}}}
            for n in names}


class FakeServer:
    """Applies plans the way the API server would: names from generateName, uids, revisions."""

    def __init__(self) -> None:
        self.slices: dict[str, Obj] = {}
        self._rv = itertools.count(100)
        self._names = itertools.count(1)
        self.writes = Counter[str]()

    def apply(self, plan: SlicePlan) -> None:
        for s in plan.to_create:
            obj = s.to_dict()
            meta = obj["metadata"]
            meta["name"] = f"{meta.pop('generateName')}{next(self._names):05d}"
            meta["uid"] = f"uid-slice-{meta['name']}"
            meta["resourceVersion"] = str(next(self._rv))
            assert meta["name"] not in self.slices
            self.slices[meta["name"]] = obj
            self.writes["create"] += 1
        for s in plan.to_update:
            obj = s.to_dict()
            cur = self.slices[s.name]
            assert obj["metadata"]["resourceVersion"] == cur["metadata"]["resourceVersion"], "stale update"
            obj["metadata"]["resourceVersion"] = str(next(self._rv))
            self.slices[s.name] = obj
            self.writes["update"] += 1
        for s in plan.to_delete:
            del self.slices[s.name]
            self.writes["delete"] += 1

    def list(self) -> list[Obj]:
        return [copy.deepcopy(o) for o in self.slices.values()]


def sizes(slices: tuple[SliceValue, ...] | list[Obj]) -> list[int]:
    out = []
    for s in slices:
        out.append(len(s.endpoints) if isinstance(s, SliceValue) else len(s.get("endpoints") or []))
    return sorted(out, reverse=True)


def converge(service: Obj, pods: list[Obj], nodes: dict[str, Obj], server: FakeServer, max_eps: int = 100,
             trigger: float | None = None) -> SlicePlan:
    plan = reconcile(service, pods, nodes, server.list(), max_eps, trigger)
    server.apply(plan)
    return plan


# ---- plan shapes --------------------------------------------------------------------------

SHAPES = [
    # (id, number of pods, max per slice, pre-existing pods converged first, expected create/update/delete sizes)
    ("no-pods-placeholder", 0, 100, None, ([0], [], [])),
    ("one-pod", 1, 100, None, ([1], [], [])),
    ("250-pods-100", 250, 100, None, ([100, 100, 50], [], [])),
    ("exactly-full", 200, 100, None, ([100, 100], [], [])),
    ("max-1", 3, 1, None, ([1, 1, 1], [], [])),
    ("placeholder-reused", 5, 100, 0, ([], [5], [])),
    ("add-one-fills-partial", 251, 100, 250, ([], [51], [])),
    ("add-50-fills-partial-exactly", 300, 100, 250, ([], [100], [])),
    ("add-60-no-fit-new-slice", 360, 100, 300, ([60], [], [])),
    ("converged-no-writes", 250, 100, 250, ([], [], [])),
    ("shrink-to-placeholder", 0, 100, 30, ([], [0], [])),
    ("max-1000", 1500, 1000, None, ([1000, 500], [], [])),
]


@pytest.mark.parametrize("n, max_eps, before, expected", [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_plan_shapes(n: int, max_eps: int, before: int | None, expected: tuple[list[int], ...]) -> None:
    svc = new_service()
    nodes = new_nodes()
    server = FakeServer()
    if before is not None:
        converge(svc, [new_pod(i) for i in range(before)], nodes, server, max_eps)
    plan = reconcile(svc, [new_pod(i) for i in range(n)], nodes, server.list(), max_eps)
    assert (sizes(plan.to_create), sizes(plan.to_update), sizes(plan.to_delete)) == expected
    server.apply(plan)
    assert sum(sizes(server.list())) == n
    again = reconcile(svc, [new_pod(i) for i in range(n)], nodes, server.list(), max_eps)
    assert again.empty, "a converged Service must plan no writes"


def test_removing_pods_updates_in_place_and_deletes_emptied_slices() -> None:
    svc, nodes, server = new_service(), new_nodes(), FakeServer()
    converge(svc, [new_pod(i) for i in range(250)], nodes, server)
    by_pod = {e["targetRef"]["name"]: s["metadata"]["name"] for s in server.list() for e in s["endpoints"]}
    first_slice = by_pod["pod0"]
    gone = {p for p, s in by_pod.items() if s == first_slice}
    keep = [new_pod(i) for i in range(250) if f"pod{i}" not in gone and i != 249]
    plan = reconcile(svc, keep, nodes, server.list())
    assert [s.name for s in plan.to_delete] == [first_slice]
    assert plan.to_create == ()
    assert len(plan.to_update) == 1 and by_pod["pod249"] == plan.to_update[0].name
    server.apply(plan)
    assert sum(sizes(server.list())) == len(keep)


def test_ordering_is_ignored_when_comparing() -> None:
    svc = new_service(ports=[{"name": "a", "port": 80, "targetPort": 80, "protocol": "TCP"},
                             {"name": "b", "port": 81, "targetPort": 81, "protocol": "TCP"}])
    nodes, server = new_nodes(), FakeServer()
    pods = [new_pod(i) for i in range(10)]
    converge(svc, pods, nodes, server)
    (name,) = server.slices
    obj = server.slices[name]
    obj["endpoints"].reverse()
    obj["ports"].reverse()
    obj["endpoints"][0]["targetRef"]["resourceVersion"] = "999"
    assert reconcile(svc, list(reversed(pods)), nodes, server.list()).empty


# ---- endpoint content ---------------------------------------------------------------------

CONDITIONS = [
    # (id, pod kwargs, publishNotReadyAddresses, expected (ready, serving, terminating) or None if excluded)
    ("ready", {"ready": True}, False, (True, True, False)),
    ("not-ready", {"ready": False}, False, (False, False, False)),
    ("terminating-ready", {"ready": True, "terminating": True}, False, (False, True, True)),
    ("terminating-not-ready", {"ready": False, "terminating": True}, False, (False, False, True)),
    ("publish-not-ready", {"ready": False}, True, (True, False, False)),
    ("publish-terminating", {"ready": False, "terminating": True}, True, (True, False, True)),
    ("succeeded-excluded", {"phase": "Succeeded"}, False, None),
    ("failed-excluded", {"phase": "Failed"}, False, None),
    ("no-ip-excluded", {"ips": []}, False, None),
]


@pytest.mark.parametrize("pod_kw, publish, expected", [c[1:] for c in CONDITIONS], ids=[c[0] for c in CONDITIONS])
def test_endpoint_conditions(pod_kw: Obj, publish: bool, expected: tuple[bool, bool, bool] | None) -> None:
    svc = new_service(publish_not_ready=publish)
    plan = reconcile(svc, [new_pod(1, **pod_kw)], new_nodes(), [])
    (created,) = plan.to_create
    if expected is None:
        assert created.endpoints == () and created.ports == ()  # just the placeholder
        return
    (ep,) = created.endpoints
    assert (ep.ready, ep.serving, ep.terminating) == expected
    d = ep.to_dict()
    assert d["conditions"] == dict(zip(("ready", "serving", "terminating"), expected, strict=True))


def test_endpoint_fields_target_ref_node_zone() -> None:
    svc = new_service()
    plan = reconcile(svc, [new_pod(7, node="n7")], new_nodes("n7", zone="zone-b"), [])
    (s,) = plan.to_create
    (ep,) = s.to_dict()["endpoints"]
    assert ep == {
        "addresses": ["10.0.0.8"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": NS, "name": "pod7", "uid": "uid-pod-7"},
        "nodeName": "n7",
        "zone": "zone-b",
    }


HOSTNAMES = [
    ("subdomain-matches", {"hostname": "h1", "subdomain": "svc"}, "h1"),
    ("subdomain-other", {"hostname": "h1", "subdomain": "other"}, None),
    ("no-subdomain", {"hostname": "h1"}, None),
    ("no-hostname", {"subdomain": "svc"}, None),
]


@pytest.mark.parametrize("pod_kw, expected", [h[1:] for h in HOSTNAMES], ids=[h[0] for h in HOSTNAMES])
def test_hostname(pod_kw: Obj, expected: str | None) -> None:
    plan = reconcile(new_service(), [new_pod(1, **pod_kw)], new_nodes(), [])
    (ep,) = plan.to_create[0].endpoints
    assert ep.hostname == expected


def test_missing_node_skips_pod_and_reports_it() -> None:
    plan = reconcile(new_service(), [new_pod(1, node="ghost"), new_pod(2)], new_nodes(), [])
    assert plan.missing_nodes == ("ghost",)
    assert [e.pod_name for e in plan.to_create[0].endpoints] == ["pod2"]
    published = reconcile(new_service(publish_not_ready=True), [new_pod(1, node="ghost")], new_nodes(), [])
    assert [e.pod_name for e in published.to_create[0].endpoints] == ["pod1"]
    assert published.to_create[0].endpoints[0].zone is None


def test_pods_not_selected_are_ignored() -> None:
    pods = [new_pod(1), new_pod(2, labels={"app": "other"}), new_pod(3, ns="elsewhere")]
    plan = reconcile(new_service(), pods, new_nodes(), [])
    assert [e.pod_name for e in plan.to_create[0].endpoints] == ["pod1"]


# ---- ports ------------------------------------------------------------------------------------

def _named_port_service() -> Obj:
    return new_service(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])


def test_named_target_port_resolved_per_pod_and_grouped_by_mapping() -> None:
    pods = [new_pod(i, container_ports=[{"name": "web", "containerPort": 8080, "protocol": "TCP"}]) for i in range(3)]
    pods += [new_pod(i, container_ports=[{"name": "web", "containerPort": 9090, "protocol": "TCP"}])
             for i in range(3, 5)]
    pods += [new_pod(5, container_ports=[{"name": "web", "containerPort": 7070, "protocol": "UDP"}])]
    plan = reconcile(_named_port_service(), pods, new_nodes(), [])
    by_ports = {tuple(p.port for p in s.ports): sorted(e.pod_name for e in s.endpoints) for s in plan.to_create}
    assert by_ports == {
        (8080,): ["pod0", "pod1", "pod2"],
        (9090,): ["pod3", "pod4"],
        (): ["pod5"],  # protocol differs: the pod lacks the port, so it has none
    }
    s8080 = next(s for s in plan.to_create if s.ports and s.ports[0].port == 8080)
    assert s8080.to_dict()["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080}]


def test_port_mapping_change_moves_endpoints_and_drops_old_slice() -> None:
    svc, nodes, server = _named_port_service(), new_nodes(), FakeServer()
    old = [new_pod(i, container_ports=[{"name": "web", "containerPort": 8080}]) for i in range(3)]
    converge(svc, old, nodes, server)
    new = [new_pod(i, container_ports=[{"name": "web", "containerPort": 9090}]) for i in range(3)]
    plan = reconcile(svc, new, nodes, server.list())
    # the old slice is reused for the new mapping rather than deleted and a new one created
    assert (len(plan.to_create), len(plan.to_update), len(plan.to_delete)) == (0, 1, 0)
    assert [p.port for p in plan.to_update[0].ports] == [9090]
    server.apply(plan)
    assert reconcile(svc, new, nodes, server.list()).empty


def test_headless_service_without_ports() -> None:
    svc = new_service(ports=[], cluster_ip="None")
    plan = reconcile(svc, [new_pod(1)], new_nodes(), [])
    (s,) = plan.to_create
    assert s.ports == () and len(s.endpoints) == 1
    assert s.labels[LABEL_HEADLESS] == ""
    assert "ports" not in s.to_dict()


def test_app_protocol_is_copied() -> None:
    svc = new_service(ports=[{"name": "h2", "port": 80, "targetPort": 80, "protocol": "TCP", "appProtocol": "h2c"}])
    (s,) = reconcile(svc, [new_pod(1)], new_nodes(), []).to_create
    assert s.to_dict()["ports"] == [{"name": "h2", "protocol": "TCP", "port": 80, "appProtocol": "h2c"}]


# ---- address families -----------------------------------------------------------------------

def test_dual_stack_one_slice_set_per_family() -> None:
    svc = new_service(ip_families=("IPv4", "IPv6"))
    pods = [new_pod(i, ips=[f"10.0.0.{i + 1}", f"fd00::{i + 1:x}"]) for i in range(3)]
    pods.append(new_pod(9, ips=["10.0.0.99"]))  # single stack pod: only in the IPv4 slice
    plan = reconcile(svc, pods, new_nodes(), [])
    by_type = {s.address_type: sorted(a for e in s.endpoints for a in e.addresses) for s in plan.to_create}
    assert by_type == {
        "IPv4": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.99"],
        "IPv6": ["fd00::1", "fd00::2", "fd00::3"],
    }


def test_ipv6_only_service_and_family_removal() -> None:
    pods = [new_pod(i, ips=[f"10.0.0.{i + 1}", f"fd00::{i + 1:x}"]) for i in range(2)]
    server, nodes = FakeServer(), new_nodes()
    converge(new_service(ip_families=("IPv4", "IPv6")), pods, nodes, server)
    plan = reconcile(new_service(ip_families=("IPv6",)), pods, nodes, server.list())
    assert [s.address_type for s in plan.to_delete] == ["IPv4"]
    assert plan.to_create == () and plan.to_update == ()


def test_address_families_without_ip_families_follow_cluster_ip() -> None:
    svc = new_service(ip_families=(), cluster_ip="fd00:96::10")
    pods = [new_pod(1, ips=["10.0.0.1", "fd00::0:1"])]
    (s,) = reconcile(svc, pods, new_nodes(), []).to_create
    assert s.address_type == "IPv6" and s.endpoints[0].addresses == ("fd00::1",)
    headless = new_service(ip_families=(), cluster_ip="None")
    types = sorted(s.address_type for s in reconcile(headless, pods, new_nodes(), []).to_create)
    assert types == ["IPv4", "IPv6"]


# ---- metadata ---------------------------------------------------------------------------------

def test_new_slice_metadata() -> None:
    svc = new_service(labels={"team": "a", LABEL_SERVICE_NAME: "spoof", LABEL_MANAGED_BY: "me"})
    (s,) = reconcile(svc, [new_pod(1)], new_nodes(), [], trigger_time=T0 + 1.5).to_create
    meta = s.to_dict()["metadata"]
    assert meta["generateName"] == "svc-" and "name" not in meta
    assert meta["namespace"] == NS
    assert meta["labels"] == {"team": "a", LABEL_SERVICE_NAME: "svc", LABEL_MANAGED_BY: CONTROLLER_NAME}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "svc",
                                        "uid": "uid-svc-svc", "controller": True, "blockOwnerDeletion": True}]
    assert meta["annotations"] == {ANNOTATION_TRIGGER_TIME: "2023-11-14T22:13:21.5Z"}
    assert s.to_dict()["addressType"] == "IPv4"
    assert s.to_dict()["apiVersion"] == "discovery.k8s.io/v1"


def test_service_label_change_updates_every_slice_labels_only() -> None:
    server, nodes = FakeServer(), new_nodes()
    pods = [new_pod(i) for i in range(150)]
    converge(new_service(labels={"v": "1"}), pods, nodes, server)
    plan = reconcile(new_service(labels={"v": "2"}), pods, nodes, server.list(), trigger_time=None)
    assert sizes(plan.to_update) == [100, 50] and plan.to_create == () and plan.to_delete == ()
    assert all(s.labels["v"] == "2" for s in plan.to_update)
    assert all(ANNOTATION_TRIGGER_TIME not in s.annotations for s in plan.to_update)


def test_trigger_time_only_on_written_slices() -> None:
    server, nodes = FakeServer(), new_nodes()
    converge(new_service(), [new_pod(i) for i in range(150)], nodes, server, trigger=T0)
    pods = [new_pod(i) for i in range(150)]
    pods[0] = new_pod(0, ready=False, ready_time=T0 + 60)
    plan = reconcile(new_service(), pods, nodes, server.list(), trigger_time=T0 + 60)
    (upd,) = plan.to_update
    assert upd.annotations[ANNOTATION_TRIGGER_TIME] == iso(T0 + 60)
    server.apply(plan)
    untouched = [s for s in server.list() if s["metadata"]["name"] != upd.name]
    assert [s["metadata"]["annotations"][ANNOTATION_TRIGGER_TIME] for s in untouched] == [iso(T0)]


def test_slices_of_another_owner_are_replaced() -> None:
    server, nodes = FakeServer(), new_nodes()
    converge(new_service(uid="old"), [new_pod(1)], nodes, server)
    (old_name,) = server.slices
    plan = reconcile(new_service(uid="new"), [new_pod(1)], nodes, server.list())
    assert [s.name for s in plan.to_delete] == [old_name]
    assert sizes(plan.to_create) == [1]
    assert plan.to_create[0].owner_references[0]["uid"] == "new"


def test_slices_being_deleted_are_ignored() -> None:
    server, nodes = FakeServer(), new_nodes()
    converge(new_service(), [new_pod(1)], nodes, server)
    (name,) = server.slices
    server.slices[name]["metadata"]["deletionTimestamp"] = iso(T0)
    plan = reconcile(new_service(), [new_pod(1)], nodes, server.list())
    assert sizes(plan.to_create) == [1] and plan.to_delete == () and plan.to_update == ()


NO_SLICES = [
    ("external-name", {"type_": "ExternalName", "cluster_ip": None}),
    ("no-selector", {"selector": {}}),
]


@pytest.mark.parametrize("svc_kw", [c[1] for c in NO_SLICES], ids=[c[0] for c in NO_SLICES])
def test_services_without_managed_slices(svc_kw: Obj) -> None:
    server, nodes = FakeServer(), new_nodes()
    converge(new_service(), [new_pod(i) for i in range(120)], nodes, server)
    plan = reconcile(new_service(**svc_kw), [new_pod(i) for i in range(120)], nodes, server.list())
    assert plan.to_create == () and plan.to_update == ()
    assert sorted(s.name for s in plan.to_delete) == sorted(server.slices)
    assert reconcile(new_service(**svc_kw), [], nodes, []).empty


def test_service_being_deleted_gets_no_new_slices() -> None:
    svc = new_service()
    svc["metadata"]["deletionTimestamp"] = iso(T0)
    assert reconcile(svc, [new_pod(1)], new_nodes(), []).to_create == ()


def test_existing_placeholder_kept_when_still_no_endpoints() -> None:
    server, nodes = FakeServer(), new_nodes()
    converge(new_service(), [], nodes, server)
    assert len(server.slices) == 1
    assert reconcile(new_service(), [new_pod(1, ips=[])], nodes, server.list()).empty


@pytest.mark.parametrize("bad", [0, -1, 1001, True, "100"], ids=["zero", "negative", "over", "bool", "str"])
def test_max_endpoints_per_slice_is_validated(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_endpoints_per_slice"):
        reconcile(new_service(), [], new_nodes(), [], bad)


def test_inputs_are_not_mutated() -> None:
    server, nodes = FakeServer(), new_nodes()
    pods = [new_pod(i) for i in range(130)]
    converge(new_service(), pods[:120], nodes, server)
    existing = server.list()
    before = (copy.deepcopy(existing), copy.deepcopy(pods), copy.deepcopy(nodes))
    reconcile(new_service(labels={"x": "y"}), pods, nodes, existing)
    assert (existing, pods, nodes) == before


def test_trigger_time_format() -> None:
    assert format_trigger_time(T0) == "2023-11-14T22:13:20Z"
    assert format_trigger_time(T0 + 0.25) == "2023-11-14T22:13:20.25Z"


# ---- trafficDistribution: PreferClose -------------------------------------------------------

def _prefer_close(**kw: Any) -> Obj:
    svc = new_service(**kw)
    svc["spec"]["trafficDistribution"] = "PreferClose"
    return svc


def _hints(slices: list[Obj]) -> dict[str, Any]:
    return {e["targetRef"]["name"]: e.get("hints") for s in slices for e in s["endpoints"]}


def test_prefer_close_hints_ready_endpoints_with_their_zone() -> None:
    server = FakeServer()
    nodes = {**new_nodes("n1", zone="zone-a"), **new_nodes("n2", zone="zone-b")}
    pods = [new_pod(0, node="n1"), new_pod(1, node="n2"), new_pod(2, node="n1", ready=False)]
    converge(_prefer_close(), pods, nodes, server)
    assert _hints(server.list()) == {"pod0": {"forZones": [{"name": "zone-a"}]},
                                     "pod1": {"forZones": [{"name": "zone-b"}]}, "pod2": None}
    assert reconcile(_prefer_close(), pods, nodes, server.list()).empty


def test_turning_prefer_close_on_and_off() -> None:
    server, nodes = FakeServer(), new_nodes()
    pods = [new_pod(i) for i in range(150)]
    converge(new_service(), pods, nodes, server)
    on = reconcile(_prefer_close(), pods, nodes, server.list())
    assert sizes(on.to_update) == [100, 50] and on.to_create == ()  # unchanged slices rewritten for hints
    server.apply(on)
    assert set(map(str, _hints(server.list()).values())) == {str({"forZones": [{"name": "zone-a"}]})}
    # Without trafficDistribution hints are removed everywhere, from unchanged slices too.
    pods[0] = new_pod(0, ready=False)
    off = reconcile(new_service(), pods, nodes, server.list())
    assert sizes(off.to_update) == [100, 50]
    server.apply(off)
    assert sum(1 for h in _hints(server.list()).values() if h) == 0
    assert reconcile(new_service(), pods, nodes, server.list()).empty


def test_topology_annotation_auto_takes_precedence() -> None:
    svc = _prefer_close()
    svc["metadata"]["annotations"] = {"service.kubernetes.io/topology-mode": "Auto"}
    plan = reconcile(svc, [new_pod(1)], new_nodes(), [])
    (s,) = plan.to_create
    assert s.endpoints[0].zone_hints is None  # Auto without node topology: no hints, and a reason
    assert plan.auto_hints is False and [e.reason for e in plan.events] == ["TopologyAwareHintsDisabled"]
