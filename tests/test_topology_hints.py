"""Topology-mode Auto hint allocation: zones' CPU shares, allocations, disabling conditions."""

from __future__ import annotations

from typing import Any

import pytest

from sliceplane.controllers.endpointslice.reconciler import reconcile
from sliceplane.controllers.endpointslice.topology import (
    MSG_INSUFFICIENT_NODE_INFO,
    MSG_NO_ZONE,
    MSG_ONE_ZONE,
    ZoneTopology,
    add_hints,
    allocations,
    hints_by_zone,
    zone_topology,
)
from sliceplane.controllers.endpointslice.values import EndpointValue, SliceValue, TargetRef

Obj = dict[str, Any]


def node(name: str, zone: str | None, cpu: str | None = "4", *, ready: bool = True,
         control_plane: bool = False) -> Obj:
    labels = {"topology.kubernetes.io/zone": zone} if zone else {}
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    status: Obj = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if cpu is not None:
        status["allocatable"] = {"cpu": cpu}
    return {"metadata": {"name": name, "labels": labels}, "status": status}


TOPOLOGIES = [
    ("three-equal-zones", [node("a", "z1"), node("b", "z2"), node("c", "z3")],
     {"z1": 1 / 3, "z2": 1 / 3, "z3": 1 / 3}, None),
    ("milli-cpu-sums-per-zone", [node("a", "z1", "500m"), node("b", "z1", "1500m"), node("c", "z2", "2")],
     {"z1": 0.5, "z2": 0.5}, None),
    ("unready-node-ignored", [node("a", "z1"), node("b", "z2"), node("c", "z3", ready=False)],
     {"z1": 0.5, "z2": 0.5}, None),
    ("control-plane-ignored", [node("a", "z1"), node("b", "z2"), node("cp", None, control_plane=True)],
     {"z1": 0.5, "z2": 0.5}, None),
    ("node-without-zone", [node("a", "z1"), node("b", "z2"), node("c", None)], {}, MSG_INSUFFICIENT_NODE_INFO),
    ("node-without-cpu", [node("a", "z1"), node("b", "z2", None)], {}, MSG_INSUFFICIENT_NODE_INFO),
    ("one-zone", [node("a", "z1"), node("b", "z1")], {}, MSG_ONE_ZONE),
    ("no-nodes", [], {}, MSG_INSUFFICIENT_NODE_INFO),
]


@pytest.mark.parametrize("nodes,ratios,problem", [t[1:] for t in TOPOLOGIES], ids=[t[0] for t in TOPOLOGIES])
def test_zone_topology(nodes: list[Obj], ratios: dict[str, float], problem: str | None) -> None:
    topo = zone_topology(nodes)
    assert topo.problem == problem
    assert dict(topo.cpu_ratio_by_zone) == pytest.approx(ratios)


ALLOCATIONS = [
    # (id, ratios, endpoints, {zone: (min, max)}, problem prefix)
    ("equal-30", {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 30, {"a": (9, 12), "b": (9, 12), "c": (9, 12)}, None),
    ("uneven-10", {"a": 0.5, "b": 0.3, "c": 0.2}, 10, {"a": (5, 5), "b": (3, 3), "c": (2, 2)}, None),
    ("more-zones-than-endpoints", {"a": 0.5, "b": 0.5}, 1, {}, "insufficient number of endpoints (1 endpoints, 2 zones)"),
    ("min-exceeds-overload", {"a": 0.9, "b": 0.05, "c": 0.05}, 3, {},
     "minimum allocation exceeds overload threshold (3 endpoints, 3 zones)"),
]


@pytest.mark.parametrize("ratios,n,expected,problem", [t[1:] for t in ALLOCATIONS], ids=[t[0] for t in ALLOCATIONS])
def test_allocations(ratios: dict[str, float], n: int, expected: dict[str, tuple[int, int]],
                     problem: str | None) -> None:
    allocs, got_problem = allocations(ZoneTopology(ratios), n)
    assert got_problem == problem
    assert {z: (a.minimum, a.maximum) for z, a in allocs.items()} == expected


def slice_of(zones: list[str | None], ready: list[bool] | None = None, name: str = "s1") -> SliceValue:
    ready = ready or [True] * len(zones)
    eps = tuple(EndpointValue(addresses=(f"10.0.0.{i + 1}",), ready=r, zone=z,
                              target_ref=TargetRef("Pod", "default", f"p{i}", f"u{i}"))
                for i, (z, r) in enumerate(zip(zones, ready, strict=True)))
    return SliceValue(name=name, namespace="default", address_type="IPv4", ports=(), endpoints=eps)


HINTS = [
    # (id, endpoint zones, ratios, expected hints by zone, disabling message or None)
    ("balanced-30", ["a"] * 10 + ["b"] * 10 + ["c"] * 10, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3},
     {"a": 10, "b": 10, "c": 10}, None),
    ("moves-hints-to-big-zone", ["a"] * 2 + ["b"] * 8, {"a": 0.5, "b": 0.5}, {"a": 5, "b": 5}, None),
    ("within-half-endpoint-stays", ["a"] * 4 + ["b"] * 5, {"a": 0.5, "b": 0.5}, {"a": 4, "b": 5}, None),
    ("cpu-weighted", ["a"] * 5 + ["b"] * 5, {"a": 0.8, "b": 0.2}, {"a": 8, "b": 2}, None),
    ("endpoint-without-zone", ["a", "a", "b", None], {"a": 0.5, "b": 0.5}, {}, MSG_NO_ZONE),
    ("too-few-endpoints", ["a"], {"a": 0.5, "b": 0.5}, {}, "insufficient number of endpoints (1 endpoints, 2 zones)"),
]


@pytest.mark.parametrize("zones,ratios,expected,problem", [t[1:] for t in HINTS], ids=[t[0] for t in HINTS])
def test_add_hints(zones: list[str | None], ratios: dict[str, float], expected: dict[str, int],
                   problem: str | None) -> None:
    creates, updates, events = add_hints([slice_of(zones)], [], [], ZoneTopology(ratios), "IPv4")
    assert hints_by_zone(creates + updates) == expected
    if problem is None:
        assert events == []
    else:
        assert [(e.reason, e.message) for e in events] == [("TopologyAwareHintsDisabled", f"{problem}, addressType: IPv4")]
        assert all(ep.zone_hints is None for s in creates for ep in s.endpoints)


def test_not_ready_endpoints_get_no_hints_and_do_not_count() -> None:
    s = slice_of(["a", "b", "b"], ready=[True, True, False])
    (out,), _, events = add_hints([s], [], [], ZoneTopology({"a": 0.5, "b": 0.5}), "IPv4")
    assert events == [] and [ep.zone_hints for ep in out.endpoints] == [("a",), ("b",), None]


def test_unchanged_slices_rewritten_only_when_hints_move() -> None:
    topo = ZoneTopology({"a": 0.5, "b": 0.5})
    _, updates, _ = add_hints([], [], [slice_of(["a", "b"])], topo, "IPv4")
    (hinted,) = updates
    assert add_hints([], [], [hinted], topo, "IPv4")[1] == []
    # Disabled: hints are removed from unchanged slices too.
    _, updates, events = add_hints([], [], [hinted], ZoneTopology({}, MSG_ONE_ZONE), "IPv4")
    assert [ep.zone_hints for s in updates for ep in s.endpoints] == [None, None] and len(events) == 1


def test_reconcile_auto_service_end_to_end() -> None:
    nodes = {f"n{z}": node(f"n{z}", z) for z in ("z1", "z2", "z3")}
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "svc", "namespace": "default", "uid": "svc-uid",
                        "annotations": {"service.kubernetes.io/topology-mode": "Auto"}},
           "spec": {"selector": {"app": "x"}, "ports": [{"port": 80, "protocol": "TCP"}],
                    "ipFamilies": ["IPv4"], "clusterIP": "10.96.0.1"}}
    pods = [{"metadata": {"name": f"p{i}", "namespace": "default", "uid": f"u{i}", "labels": {"app": "x"}},
             "spec": {"nodeName": f"nz{i % 3 + 1}"},
             "status": {"phase": "Running", "podIP": f"10.1.0.{i + 1}", "podIPs": [{"ip": f"10.1.0.{i + 1}"}],
                        "conditions": [{"type": "Ready", "status": "True"}]}} for i in range(30)]
    plan = reconcile(svc, pods, nodes, [], topology=zone_topology(nodes.values()))
    assert plan.auto_hints is True and plan.events == ()
    assert hints_by_zone(plan.to_create) == {"z1": 10, "z2": 10, "z3": 10}
    nodes["nz3"] = node("nz3", None)
    plan2 = reconcile(svc, pods, nodes, [s.to_dict() for s in plan.to_create], topology=zone_topology(nodes.values()))
    assert plan2.auto_hints is False
    assert [e.message for e in plan2.events] == [f"{MSG_INSUFFICIENT_NODE_INFO}, addressType: IPv4"]
