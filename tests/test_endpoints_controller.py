"""The legacy Endpoints controller: pure `desired_endpoints` tables."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sliceplane.controllers.endpoints import (
    ANNOTATION_OVER_CAPACITY,
    ANNOTATION_TRIGGER_TIME,
    LABEL_HEADLESS,
    desired_endpoints,
    endpoint_subsets,
)
from test_endpointslice_reconciler import T0, iso, new_pod, new_service

Obj = dict[str, Any]


def ref(i: int) -> Obj:
    return {"kind": "Pod", "namespace": "default", "name": f"pod{i}", "uid": f"uid-pod-{i}"}


def addr(i: int, ip: str | None = None, **extra: Any) -> Obj:
    return {"ip": ip or f"10.0.0.{i + 1}", **extra, "nodeName": "node-1", "targetRef": ref(i)}


def shape(subsets: list[Obj]) -> list[tuple[list[str], list[str], list[int]]]:
    """Per subset: ready pod names, not-ready pod names, ports."""
    return [([a["targetRef"]["name"] for a in s.get("addresses") or []],
             [a["targetRef"]["name"] for a in s.get("notReadyAddresses") or []],
             [p["port"] for p in s.get("ports") or []]) for s in subsets]


def test_ready_and_not_ready_addresses() -> None:
    pods = [new_pod(0), new_pod(1, ready=False), new_pod(2)]
    (subset,) = endpoint_subsets(new_service(), pods)
    assert subset == {
        "addresses": [addr(0), addr(2)],
        "notReadyAddresses": [addr(1)],
        "ports": [{"port": 80, "protocol": "TCP"}],
    }


INCLUSION = [
    # (id, pod kwargs, publishNotReadyAddresses, expected (ready names, not-ready names))
    ("terminating-excluded", {"terminating": True}, False, ([], [])),
    ("terminating-published", {"terminating": True, "ready": False}, True, (["pod0"], [])),
    ("not-ready-published", {"ready": False}, True, (["pod0"], [])),
    ("succeeded-excluded", {"phase": "Succeeded"}, True, ([], [])),
    ("no-ip-excluded", {"ips": []}, False, ([], [])),
]


@pytest.mark.parametrize("pod_kw, publish, expected", [c[1:] for c in INCLUSION], ids=[c[0] for c in INCLUSION])
def test_pod_inclusion(pod_kw: Obj, publish: bool, expected: tuple[list[str], list[str]]) -> None:
    subsets = endpoint_subsets(new_service(publish_not_ready=publish), [new_pod(0, **pod_kw)])
    got = ([n for s in shape(subsets) for n in s[0]], [n for s in shape(subsets) for n in s[1]])
    assert got == expected


def test_ports_grouped_into_subsets_by_address_set() -> None:
    svc = new_service(ports=[
        {"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"},
        {"name": "metrics", "port": 9100, "targetPort": 9100, "protocol": "TCP"},
    ])
    web = [{"name": "web", "containerPort": 8080, "protocol": "TCP"}]
    pods = [new_pod(0, container_ports=web), new_pod(1, container_ports=web), new_pod(2)]
    subsets = endpoint_subsets(svc, pods)
    assert sorted(shape(subsets)) == [
        (["pod0", "pod1"], [], [8080]),
        (["pod0", "pod1", "pod2"], [], [9100]),
    ]
    # both ports offered by the same pods: one subset, ports sorted by name
    subsets = endpoint_subsets(svc, pods[:2])
    assert shape(subsets) == [(["pod0", "pod1"], [], [8080, 9100])]
    assert [p["name"] for p in subsets[0]["ports"]] == ["http", "metrics"]


def test_not_ready_on_one_port_is_not_ready_on_all() -> None:
    svc = new_service(ports=[{"name": "a", "port": 80, "targetPort": 80, "protocol": "TCP"},
                             {"name": "b", "port": 81, "targetPort": 81, "protocol": "TCP"}])
    subsets = endpoint_subsets(svc, [new_pod(0, ready=False), new_pod(1)])
    assert shape(subsets) == [(["pod1"], ["pod0"], [80, 81])]


def test_headless_without_ports_and_hostname() -> None:
    svc = new_service(ports=[], cluster_ip="None")
    subsets = endpoint_subsets(svc, [new_pod(0, hostname="h0", subdomain="svc"), new_pod(1, hostname="h1")])
    assert subsets == [{"addresses": [addr(0, hostname="h0"), addr(1)]}]
    obj = desired_endpoints(svc, [new_pod(0)], None)
    assert obj is not None and obj["metadata"]["labels"] == {LABEL_HEADLESS: ""}


def test_family_is_the_services_first() -> None:
    pods = [new_pod(0, ips=["10.0.0.1", "fd00::1"]), new_pod(1, ips=["10.0.0.2"])]
    (v6,) = endpoint_subsets(new_service(ip_families=("IPv6", "IPv4")), pods)
    assert [a["ip"] for a in v6["addresses"]] == ["fd00::1"]
    (v4,) = endpoint_subsets(new_service(ip_families=("IPv4", "IPv6")), pods)
    assert [a["ip"] for a in v4["addresses"]] == ["10.0.0.1", "10.0.0.2"]


def _pods(ready: int, not_ready: int) -> list[Obj]:
    return [new_pod(i) for i in range(ready)] + [new_pod(ready + i, ready=False) for i in range(not_ready)]


TRUNCATION = [
    # (id, ready pods, not-ready pods, max, expected (ready kept, not-ready kept, annotated))
    ("under", 10, 5, 1000, (10, 5, False)),
    ("exactly", 1000, 0, 1000, (1000, 0, False)),
    ("ready-over", 1200, 50, 1000, (1000, 0, True)),
    ("not-ready-cut-first", 900, 300, 1000, (900, 100, True)),
    ("small-cap", 3, 3, 4, (3, 1, True)),
    ("no-cap", 1500, 20, None, (1500, 20, False)),
]


@pytest.mark.parametrize("ready, not_ready, cap, expected", [t[1:] for t in TRUNCATION],
                         ids=[t[0] for t in TRUNCATION])
def test_truncation(ready: int, not_ready: int, cap: int | None, expected: tuple[int, int, bool]) -> None:
    obj = desired_endpoints(new_service(), _pods(ready, not_ready), None, max_addresses=cap)
    assert obj is not None
    subsets = obj["subsets"]
    got = (sum(len(s.get("addresses") or []) for s in subsets),
           sum(len(s.get("notReadyAddresses") or []) for s in subsets),
           (obj["metadata"].get("annotations") or {}).get(ANNOTATION_OVER_CAPACITY) == "truncated")
    assert got == expected


def test_over_capacity_annotation_removed_when_back_under() -> None:
    svc = new_service()
    over = desired_endpoints(svc, _pods(1001, 0), None)
    assert over is not None and over["metadata"]["annotations"][ANNOTATION_OVER_CAPACITY] == "truncated"
    over["metadata"]["resourceVersion"] = "5"
    assert desired_endpoints(svc, _pods(1001, 0), over) is None, "a truncated object already written is not rewritten"
    under = desired_endpoints(svc, _pods(999, 0), over)
    assert under is not None and ANNOTATION_OVER_CAPACITY not in under["metadata"].get("annotations", {})
    assert under["metadata"]["resourceVersion"] == "5"


def test_writes_only_when_changed() -> None:
    svc = new_service(labels={"app": "web"})
    pods = _pods(3, 1)
    created = desired_endpoints(svc, pods, None, trigger_time=T0)
    assert created is not None
    assert created["metadata"] == {"name": "svc", "namespace": "default", "labels": {"app": "web"},
                                   "annotations": {ANNOTATION_TRIGGER_TIME: iso(T0)}}
    current = copy.deepcopy(created)
    current["metadata"]["resourceVersion"] = "7"
    for s in current["subsets"]:  # a server or another writer may order things differently
        s["addresses"].reverse()
        s["addresses"][0]["targetRef"]["resourceVersion"] = "123"
    assert desired_endpoints(svc, list(reversed(pods)), current, trigger_time=T0 + 9) is None
    relabelled = desired_endpoints(new_service(labels={"app": "web2"}), pods, current, trigger_time=None)
    assert relabelled is not None and relabelled["metadata"]["labels"] == {"app": "web2"}
    assert ANNOTATION_TRIGGER_TIME not in relabelled["metadata"].get("annotations", {})
    changed = desired_endpoints(svc, _pods(3, 0), current, trigger_time=T0 + 9)
    assert changed is not None and changed["metadata"]["annotations"][ANNOTATION_TRIGGER_TIME] == iso(T0 + 9)


def test_other_annotations_are_kept() -> None:
    current = desired_endpoints(new_service(), _pods(1, 0), None)
    assert current is not None
    current["metadata"]["annotations"] = {"keep": "me"}
    updated = desired_endpoints(new_service(), _pods(2, 0), current)
    assert updated is not None and updated["metadata"]["annotations"] == {"keep": "me"}


NONE_MANAGED = [
    ("external-name", {"type_": "ExternalName", "cluster_ip": None}),
    ("no-selector", {"selector": {}}),
]


@pytest.mark.parametrize("svc_kw", [c[1] for c in NONE_MANAGED], ids=[c[0] for c in NONE_MANAGED])
def test_no_endpoints_managed(svc_kw: Obj) -> None:
    user_made = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "svc", "namespace": "default"},
                 "subsets": [{"addresses": [{"ip": "192.0.2.1"}]}]}
    assert desired_endpoints(new_service(**svc_kw), _pods(2, 0), user_made) is None
    assert desired_endpoints(new_service(**svc_kw), _pods(2, 0), None) is None


def test_empty_endpoints_created_for_selector_service_without_pods() -> None:
    obj = desired_endpoints(new_service(), [], None)
    assert obj is not None and obj["subsets"] == []
