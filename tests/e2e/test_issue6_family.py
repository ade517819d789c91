"""Issue 6 acceptance with the real kubectl: mirroring, PreferClose hints, topology-mode Auto hints.

One `sliceplane up` (3 nodes, one per zone) serves the whole module.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from harness import Kubectl, Up, free_port, ready_endpoints, slices_of, wait_for

pytestmark = pytest.mark.e2e

MIRROR = "endpointslicemirroring-controller.k8s.io"
MAIN = "endpointslice-controller.k8s.io"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Up, Kubectl]]:
    up = Up(tmp_path_factory.mktemp("up6") / "data", free_port(), nodes=3)
    up.start()
    try:
        yield up, Kubectl(up.kubeconfig)
    finally:
        code = up.stop()
        assert code == 0, f"sliceplane up exited with {code}:\n{up.logs()}"


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx",
                                                           "ports": [{"containerPort": 80}]}]}}}}


def service(name: str, *, selector: bool = True, annotations: dict[str, str] | None = None,
            traffic: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": 80, "targetPort": 80}]}
    if selector:
        spec["selector"] = {"app": name}
    if traffic:
        spec["trafficDistribution"] = traffic
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def apply(k: Kubectl, *objs: dict[str, Any]) -> None:
    # Multi-document YAML, not a v1 List: kubectl's validation of a List fails against our server.
    k.run("apply", "-f", "-", input=yaml.safe_dump_all(objs))


def managed(slices: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    return [s for s in slices if (s["metadata"].get("labels") or {}).get(MANAGED_BY) == by]


def test_mirroring_selectorless_service(cluster: tuple[Up, Kubectl]) -> None:
    _, k = cluster
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
                 "subsets": [{"addresses": [{"ip": "10.10.0.1"}, {"ip": "10.10.0.2"}],
                              "notReadyAddresses": [{"ip": "10.10.0.3"}],
                              "ports": [{"name": "http", "port": 80}]}]}
    apply(k, service("ext", selector=False), endpoints)

    def mirrored() -> list[dict[str, Any]] | None:
        got = managed(slices_of(k, "ext"), MIRROR)
        return got if got and sum(len(s.get("endpoints") or []) for s in got) == 3 else None

    (s,) = wait_for(mirrored, 30, what="mirrored slice with 3 endpoints")
    assert sorted((e["addresses"][0], e["conditions"]["ready"]) for e in s["endpoints"]) == [
        ("10.10.0.1", True), ("10.10.0.2", True), ("10.10.0.3", False)]
    ep_uid = k.json("get", "endpoints", "ext")["metadata"]["uid"]
    assert [(o["kind"], o["name"], o["uid"]) for o in s["metadata"]["ownerReferences"]] == [
        ("Endpoints", "ext", ep_uid)]
    assert s["addressType"] == "IPv4" and [p["port"] for p in s["ports"]] == [80]

    k.run("label", "endpoints", "ext", "endpointslice.kubernetes.io/skip-mirror=true")
    wait_for(lambda: not managed(slices_of(k, "ext"), MIRROR), 30, what="mirrored slice deleted")
    k.run("label", "endpoints", "ext", "endpointslice.kubernetes.io/skip-mirror-")
    wait_for(mirrored, 30, what="mirrored again")

    # A selector hands the Service over to the main controller.
    apply(k, deployment("ext", 2))
    k.run("patch", "service", "ext", "-p", json.dumps({"spec": {"selector": {"app": "ext"}}}))

    def handed_over() -> bool:
        got = slices_of(k, "ext")
        return not managed(got, MIRROR) and len(ready_endpoints(managed(got, MAIN))) == 2

    wait_for(handed_over, 60, what="main controller took over")


def _node_zones(k: Kubectl) -> dict[str, str]:
    return {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get("topology.kubernetes.io/zone", "")
            for n in k.json("get", "nodes")["items"]}


def test_prefer_close_hints_each_endpoint_for_its_zone(cluster: tuple[Up, Kubectl]) -> None:
    _, k = cluster
    apply(k, deployment("close", 9), service("close", traffic="PreferClose"))
    zones = _node_zones(k)
    assert len(set(zones.values())) == 3

    def hinted() -> list[dict[str, Any]] | None:
        eps = ready_endpoints(slices_of(k, "close"))
        return eps if len(eps) == 9 and all(e.get("hints") for e in eps) else None

    eps = wait_for(hinted, 60, what="9 hinted endpoints")
    for e in eps:
        assert e["zone"] == zones[e["nodeName"]]
        assert e["hints"] == {"forZones": [{"name": e["zone"]}]}
    assert len({e["zone"] for e in eps}) == 3

    # Without trafficDistribution the hints go.
    k.run("patch", "service", "close", "--type=json", "-p",
          json.dumps([{"op": "remove", "path": "/spec/trafficDistribution"}]))
    wait_for(lambda: not any(e.get("hints") for e in ready_endpoints(slices_of(k, "close"))), 30,
             what="hints removed")


def test_topology_mode_auto(cluster: tuple[Up, Kubectl]) -> None:
    _, k = cluster
    apply(k, deployment("auto", 30), service("auto", annotations={"service.kubernetes.io/topology-mode": "Auto"}))

    def hints_by_zone() -> Counter[str] | None:
        eps = ready_endpoints(slices_of(k, "auto"))
        if len(eps) != 30 or not all(e.get("hints") for e in eps):
            return None
        return Counter(z["name"] for e in eps for z in e["hints"]["forZones"])

    by_zone = wait_for(hints_by_zone, 90, what="30 endpoints with hints")
    assert sorted(by_zone.values()) == [10, 10, 10]

    node = sorted(_node_zones(k))[0]
    k.run("label", "node", node, "topology.kubernetes.io/zone-")
    wait_for(lambda: not any(e.get("hints") for e in ready_endpoints(slices_of(k, "auto"))), 30,
             what="hints removed after a node lost its zone")

    def reasons() -> list[str] | None:
        events = k.json("get", "events")["items"]
        got = [e["message"] for e in events if e.get("reason") == "TopologyAwareHintsDisabled"
               and (e.get("involvedObject") or {}).get("name") == "auto"]
        return got or None

    messages = wait_for(reasons, 30, what="TopologyAwareHintsDisabled event")
    assert any("insufficient node information" in m for m in messages)
    assert "TopologyAwareHintsDisabled" in k.run("get", "events").stdout
