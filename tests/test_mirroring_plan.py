"""The mirroring rules: when to mirror, what a mirrored slice holds, and when nothing is written."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from sliceplane.controllers.mirroring.planner import (
    CONTROLLER_NAME,
    LABEL_SKIP_MIRROR,
    MirrorPlan,
    plan_mirroring,
    should_mirror,
)

Obj = dict[str, Any]


def service(selector: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"ports": [{"port": 80, "protocol": "TCP"}]}
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": "ext", "namespace": "ns", "uid": "svc-uid"}, "spec": spec}


def endpoints(*subsets: Obj, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": "ext", "namespace": "ns", "uid": "ep-uid", "labels": labels or {}}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "subsets": list(subsets)}


def subset(ready: list[str], not_ready: list[str] = (), ports: list[int] = (80,)) -> Obj:  # type: ignore[assignment]
    return {"addresses": [{"ip": ip} for ip in ready], "notReadyAddresses": [{"ip": ip} for ip in not_ready],
            "ports": [{"name": f"p{p}", "port": p, "protocol": "TCP"} for p in ports]}


class Server:
    """Applies mirror plans as the API server would: names, resourceVersions."""

    def __init__(self) -> None:
        self.slices: dict[str, Obj] = {}
        self._n = itertools.count(1)

    def apply(self, plan: MirrorPlan) -> None:
        for s in plan.to_create:
            obj = {**s, "metadata": {**s["metadata"], "name": f"ext-{next(self._n)}", "resourceVersion": "1"}}
            obj["metadata"].pop("generateName")
            self.slices[obj["metadata"]["name"]] = obj
        for s in plan.to_update:
            assert s["metadata"]["name"] in self.slices
            self.slices[s["metadata"]["name"]] = s
        for s in plan.to_delete:
            del self.slices[s["metadata"]["name"]]

    def list(self) -> list[Obj]:
        return list(self.slices.values())


def shape(slices: list[Obj]) -> list[tuple[str, list[int], list[tuple[str, bool]]]]:
    return sorted((s["addressType"], [p["port"] for p in s.get("ports") or []],
                   [(e["addresses"][0], e["conditions"]["ready"]) for e in s["endpoints"]]) for s in slices)


MIRROR_RULES = [
    ("selectorless-mirrors", endpoints(subset(["10.0.0.1"])), service(), True),
    ("service-missing", endpoints(subset(["10.0.0.1"])), None, False),
    ("service-has-selector", endpoints(subset(["10.0.0.1"])), service({"app": "x"}), False),
    ("skip-mirror-label", endpoints(subset(["10.0.0.1"]), labels={LABEL_SKIP_MIRROR: "true"}), service(), False),
    ("skip-mirror-label-false", endpoints(subset(["10.0.0.1"]), labels={LABEL_SKIP_MIRROR: "false"}), service(), True),
    ("leader-election-annotation",
     endpoints(subset(["10.0.0.1"]), annotations={"control-plane.alpha.kubernetes.io/leader": "{}"}), service(), False),
    ("endpoints-missing", None, service(), False),
]


@pytest.mark.parametrize("ep,svc,mirrored", [r[1:] for r in MIRROR_RULES], ids=[r[0] for r in MIRROR_RULES])
def test_when_to_mirror(ep: Obj | None, svc: Obj | None, mirrored: bool) -> None:
    assert should_mirror(ep, svc) is mirrored
    server = Server()
    server.apply(plan_mirroring(endpoints(subset(["10.0.0.9"])), service(), []))  # an earlier mirror
    plan = plan_mirroring(ep, svc, server.list())
    server.apply(plan)
    if mirrored:
        assert len(server.list()) == 1 and plan.to_update  # rewritten in place
    else:
        assert server.list() == [] and len(plan.to_delete) == 1


CONTENT = [
    # (id, Endpoints, max per subset, expected slices (type, ports, [(ip, ready)]), event reasons)
    ("ready-and-not-ready", endpoints(subset(["10.0.0.1", "10.0.0.2"], ["10.0.0.3"])), 1000,
     [("IPv4", [80], [("10.0.0.1", True), ("10.0.0.2", True), ("10.0.0.3", False)])], []),
    ("one-slice-per-family", endpoints(subset(["10.0.0.1", "fd00::1"])), 1000,
     [("IPv4", [80], [("10.0.0.1", True)]), ("IPv6", [80], [("fd00::1", True)])], []),
    ("one-slice-per-port-set", endpoints(subset(["10.0.0.1"], ports=[80]), subset(["10.0.0.2"], ports=[81])), 1000,
     [("IPv4", [80], [("10.0.0.1", True)]), ("IPv4", [81], [("10.0.0.2", True)])], []),
    ("same-ports-merge", endpoints(subset(["10.0.0.1"]), subset(["10.0.0.2"])), 1000,
     [("IPv4", [80], [("10.0.0.1", True), ("10.0.0.2", True)])], []),
    ("invalid-ip-skipped", endpoints(subset(["10.0.0.1", "not-an-ip", "10.0.0.300"])), 1000,
     [("IPv4", [80], [("10.0.0.1", True)])], ["InvalidIPAddress"]),
    ("invalid-ip-uses-no-cap", endpoints(subset(["bad", "10.0.0.1", "10.0.0.2"])), 2,
     [("IPv4", [80], [("10.0.0.1", True), ("10.0.0.2", True)])], ["InvalidIPAddress"]),
    ("cap-applies-after-merging", endpoints(subset(["10.0.0.1"]), subset(["10.0.0.2"], ["10.0.0.3"])), 2,
     [("IPv4", [80], [("10.0.0.1", True), ("10.0.0.2", True)])], ["TooManyAddressesToMirror"]),
    ("ready-wins-over-not-ready", endpoints(subset(["10.0.0.1"]), subset([], ["10.0.0.1", "10.0.0.2"])), 1000,
     [("IPv4", [80], [("10.0.0.1", True), ("10.0.0.2", False)])], []),
    ("cap-per-subset-ready-first", endpoints(subset(["10.0.0.1", "10.0.0.2"], ["10.0.0.3"])), 2,
     [("IPv4", [80], [("10.0.0.1", True), ("10.0.0.2", True)])], ["TooManyAddressesToMirror"]),
    ("no-subsets", endpoints(), 1000, [], []),
]


@pytest.mark.parametrize("ep,cap,expected,reasons", [c[1:] for c in CONTENT], ids=[c[0] for c in CONTENT])
def test_mirrored_content(ep: Obj, cap: int, expected: list[Any], reasons: list[str]) -> None:
    plan = plan_mirroring(ep, service(), [], max_endpoints_per_subset=cap)
    assert shape(list(plan.to_create)) == sorted(expected)
    assert [e.reason for e in plan.events] == reasons
    for s in plan.to_create:
        meta = s["metadata"]
        assert meta["labels"]["endpointslice.kubernetes.io/managed-by"] == CONTROLLER_NAME
        assert meta["labels"]["kubernetes.io/service-name"] == "ext"
        assert [(o["kind"], o["name"], o["uid"], o["controller"]) for o in meta["ownerReferences"]] == [
            ("Endpoints", "ext", "ep-uid", True)]


def test_converged_mirror_gets_no_write_and_updates_in_place() -> None:
    server = Server()
    ep = endpoints(subset(["10.0.0.1", "10.0.0.2"], ["10.0.0.3"]), labels={"team": "a"},
                   annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "x"})
    server.apply(plan_mirroring(ep, service(), []))
    (s,) = server.list()
    assert s["metadata"]["labels"]["team"] == "a" and s["metadata"]["annotations"] == {"note": "x"}
    assert plan_mirroring(ep, service(), server.list()).writes == 0
    ep2 = endpoints(subset(["10.0.0.1"], ["10.0.0.3"]), labels={"team": "a"})
    plan = plan_mirroring(ep2, service(), server.list())
    assert (len(plan.to_create), len(plan.to_update), len(plan.to_delete)) == (0, 1, 0)
    assert plan.to_update[0]["metadata"]["name"] == s["metadata"]["name"]
    server.apply(plan)
    assert shape(server.list()) == [("IPv4", [80], [("10.0.0.1", True), ("10.0.0.3", False)])]


def test_default_cap_is_1000_per_subset() -> None:
    ips = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(1500)]
    plan = plan_mirroring(endpoints(subset(ips)), service(), [])
    assert [len(s["endpoints"]) for s in plan.to_create] == [1000]
    assert [e.message for e in plan.events] == [
        "A max of 1000 addresses can be mirrored to EndpointSlices per Endpoints subset. 500 addresses were skipped"]
