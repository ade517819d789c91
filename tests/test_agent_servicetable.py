"""The node agent's pure merge: EndpointSlices (or Endpoints) + Services -> a node's service table.

Each case names one kube-proxy rule; expectations are written as `address:port state` lines
for the endpoints kept and the subset traffic goes to.
"""

from __future__ import annotations

from typing import Any

import pytest

from sliceplane.agent.servicetable import (
    NodeView,
    ServicePortName,
    diff_tables,
    endpoints_table,
    slices_table,
    table_to_json,
)

Obj = dict[str, Any]
NODE = NodeView("node-0", "zone-a")


def svc(name: str = "web", *, ports: list[Obj] | None = None, itp: str | None = None, cluster_ip: str = "10.96.0.10",
        labels: dict[str, str] | None = None, typ: str = "ClusterIP") -> Obj:
    spec: Obj = {"type": typ, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip] if cluster_ip else [],
                 "ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}],
                 "selector": {"app": name}}
    if itp:
        spec["internalTrafficPolicy"] = itp
    return {"metadata": {"name": name, "namespace": "default", "labels": labels or {}}, "spec": spec}


def ep(ip: str, *, ready: bool | None = True, serving: bool | None = None, terminating: bool | None = None,
       node: str | None = "node-1", zone: str | None = "zone-b", hints: list[str] | None = None) -> Obj:
    cond: Obj = {}
    if ready is not None:
        cond["ready"] = ready
    if serving is not None:
        cond["serving"] = serving
    if terminating is not None:
        cond["terminating"] = terminating
    e: Obj = {"addresses": [ip], "conditions": cond}
    if node:
        e["nodeName"] = node
    if zone:
        e["zone"] = zone
    if hints is not None:
        e["hints"] = {"forZones": [{"name": z} for z in hints]}
    return e


def slc(name: str, endpoints: list[Obj], *, service: str = "web", ports: list[Obj] | None = None,
        labels: dict[str, str] | None = None, address_type: str = "IPv4") -> Obj:
    lab = {"kubernetes.io/service-name": service, **(labels or {})}
    return {"metadata": {"name": name, "namespace": "default", "labels": lab}, "addressType": address_type,
            "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def _state(e: Obj) -> str:
    flags = [f for f in ("ready", "serving", "terminating") if e[f]]
    return f"{e['address']}:{e['port']} {'+'.join(flags) or '-'}"


def rows(services: list[Obj], slices: list[Obj], node: NodeView = NODE) -> dict[str, tuple[list[str], list[str]]]:
    """servicePort -> (endpoints with states, endpoints used)."""
    out = {}
    for entry in table_to_json(slices_table(services, slices, node)):
        out[entry["servicePort"]] = ([_state(e) for e in entry["endpoints"]], entry["used"])
    return out


MERGE_CASES = [
    ("one-slice", [svc()], [slc("a", [ep("10.0.0.1"), ep("10.0.0.2")])],
     {"default/web:http": (["10.0.0.1:8080 ready+serving", "10.0.0.2:8080 ready+serving"],
                           ["10.0.0.1:8080", "10.0.0.2:8080"])}),
    ("headless-slice-ignored", [svc()],
     [slc("a", [ep("10.0.0.1")], labels={"service.kubernetes.io/headless": ""})],
     {"default/web:http": ([], [])}),
    ("proxy-name-slice-ignored", [svc()],
     [slc("a", [ep("10.0.0.1")], labels={"service.kubernetes.io/service-proxy-name": "other"}),
      slc("b", [ep("10.0.0.2")])],
     {"default/web:http": (["10.0.0.2:8080 ready+serving"], ["10.0.0.2:8080"])}),
    ("proxy-name-service-ignored", [svc(labels={"service.kubernetes.io/service-proxy-name": "other"})],
     [slc("a", [ep("10.0.0.1")])], {}),
    ("headless-service-no-entry", [svc(cluster_ip="None")], [slc("a", [ep("10.0.0.1")])], {}),
    ("external-name-no-entry", [svc(typ="ExternalName", cluster_ip="")], [slc("a", [ep("10.0.0.1")])], {}),
    ("slice-without-service-label", [svc()],
     [{**slc("a", [ep("10.0.0.1")]), "metadata": {"name": "a", "namespace": "default", "labels": {}}}],
     {"default/web:http": ([], [])}),
    ("keyed-by-port-name-and-protocol",
     [svc(ports=[{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}])],
     [slc("a", [ep("10.0.0.1")], ports=[{"name": "http", "port": 8080, "protocol": "TCP"},
                                         {"name": "dns", "port": 5353, "protocol": "UDP"},
                                         {"name": "dns", "port": 5354, "protocol": "TCP"}])],
     {"default/web:dns/UDP": (["10.0.0.1:5353 ready+serving"], ["10.0.0.1:5353"]),
      "default/web:http": (["10.0.0.1:8080 ready+serving"], ["10.0.0.1:8080"])}),
    ("same-port-name-two-numbers-two-endpoints", [svc()],
     [slc("a", [ep("10.0.0.1")]), slc("b", [ep("10.0.0.1")], ports=[{"name": "http", "port": 9090, "protocol": "TCP"}])],
     {"default/web:http": (["10.0.0.1:8080 ready+serving", "10.0.0.1:9090 ready+serving"],
                           ["10.0.0.1:8080", "10.0.0.1:9090"])}),
    ("port-zero-skipped", [svc()],
     [slc("a", [ep("10.0.0.1")], ports=[{"name": "http", "port": 0, "protocol": "TCP"}])],
     {"default/web:http": ([], [])}),
    ("port-nil-skipped", [svc()],
     [slc("a", [ep("10.0.0.1")], ports=[{"name": "http", "protocol": "TCP"}]), slc("b", [ep("10.0.0.2")])],
     {"default/web:http": (["10.0.0.2:8080 ready+serving"], ["10.0.0.2:8080"])}),
    ("port-without-name-field-skipped", [svc()],
     [slc("a", [ep("10.0.0.1")], ports=[{"port": 8080, "protocol": "TCP"}])],
     {"default/web:http": ([], [])}),
    ("unnamed-service-port", [svc(ports=[{"name": "", "port": 80, "protocol": "TCP"}])],
     [slc("a", [ep("10.0.0.1")], ports=[{"name": "", "port": 8080, "protocol": "TCP"}])],
     {"default/web": (["10.0.0.1:8080 ready+serving"], ["10.0.0.1:8080"])}),
    ("duplicate-kept-once", [svc()], [slc("a", [ep("10.0.0.1")]), slc("b", [ep("10.0.0.1")])],
     {"default/web:http": (["10.0.0.1:8080 ready+serving"], ["10.0.0.1:8080"])}),
    ("duplicate-non-terminating-wins-first-terminating", [svc()],
     [slc("a", [ep("10.0.0.1", ready=False, serving=True, terminating=True)]), slc("b", [ep("10.0.0.1")])],
     {"default/web:http": (["10.0.0.1:8080 ready+serving"], ["10.0.0.1:8080"])}),
    ("duplicate-non-terminating-wins-second-terminating", [svc()],
     [slc("a", [ep("10.0.0.1")]), slc("b", [ep("10.0.0.1", ready=False, serving=True, terminating=True)])],
     {"default/web:http": (["10.0.0.1:8080 ready+serving"], ["10.0.0.1:8080"])}),
    ("endpoint-without-address-skipped", [svc()],
     [slc("a", [{"addresses": [], "conditions": {"ready": True}}, ep("10.0.0.2")])],
     {"default/web:http": (["10.0.0.2:8080 ready+serving"], ["10.0.0.2:8080"])}),
    ("other-family-skipped", [svc()],
     [slc("a", [ep("fd00::1")], address_type="IPv6"), slc("b", [ep("10.0.0.2")])],
     {"default/web:http": (["10.0.0.2:8080 ready+serving"], ["10.0.0.2:8080"])}),
    ("slice-of-another-service", [svc()], [slc("a", [ep("10.0.0.1")], service="other")],
     {"default/web:http": ([], [])}),
]


@pytest.mark.parametrize(("services", "slices", "want"), [c[1:] for c in MERGE_CASES], ids=[c[0] for c in MERGE_CASES])
def test_merge(services: list[Obj], slices: list[Obj], want: dict[str, Any]) -> None:
    assert rows(services, slices) == want


CONDITION_CASES = [
    # (ready, serving, terminating) as sent -> the state the proxy keeps
    ("all-nil", None, None, None, "ready+serving"),
    ("ready-false-serving-nil", False, None, None, "-"),
    ("ready-true-serving-nil", True, None, None, "ready+serving"),
    ("serving-false-explicit", True, False, None, "ready"),
    ("terminating-nil-is-false", False, True, None, "serving"),
    ("terminating-true", False, True, True, "serving+terminating"),
]


@pytest.mark.parametrize(("ready", "serving", "terminating", "want"), [c[1:] for c in CONDITION_CASES],
                         ids=[c[0] for c in CONDITION_CASES])
def test_condition_defaults(ready: bool | None, serving: bool | None, terminating: bool | None, want: str) -> None:
    got = rows([svc()], [slc("a", [ep("10.0.0.1", ready=ready, serving=serving, terminating=terminating)])])
    assert got["default/web:http"][0] == [f"10.0.0.1:8080 {want}"]


def _used(services: list[Obj], eps: list[Obj], node: NodeView = NODE) -> list[str]:
    return rows(services, [slc("a", eps)], node)["default/web:http"][1]


R = {"ready": True}
TERM_SERVING = {"ready": False, "serving": True, "terminating": True}
TERM_NOT_SERVING = {"ready": False, "serving": False, "terminating": True}
NOT_READY = {"ready": False, "serving": False, "terminating": False}

TRAFFIC_CASES = [
    ("ready-only", {}, [("10.0.0.1", R, "node-1"), ("10.0.0.2", NOT_READY, "node-1")], NODE, ["10.0.0.1:8080"]),
    ("ready-preferred-over-terminating", {}, [("10.0.0.1", R, "node-1"), ("10.0.0.2", TERM_SERVING, "node-1")],
     NODE, ["10.0.0.1:8080"]),
    ("fallback-serving-terminating", {},
     [("10.0.0.1", TERM_SERVING, "node-1"), ("10.0.0.2", TERM_NOT_SERVING, "node-1"), ("10.0.0.3", NOT_READY, "node-1")],
     NODE, ["10.0.0.1:8080"]),
    ("nothing-usable", {}, [("10.0.0.2", TERM_NOT_SERVING, "node-1")], NODE, []),
    ("itp-local-keeps-this-node", {"itp": "Local"}, [("10.0.0.1", R, "node-0"), ("10.0.0.2", R, "node-1")], NODE,
     ["10.0.0.1:8080"]),
    ("itp-local-none-here", {"itp": "Local"}, [("10.0.0.2", R, "node-1")], NODE, []),
    ("itp-local-terminating-fallback", {"itp": "Local"},
     [("10.0.0.1", TERM_SERVING, "node-0"), ("10.0.0.2", R, "node-1")], NODE, ["10.0.0.1:8080"]),
    ("itp-local-without-node-name", {"itp": "Local"}, [("10.0.0.1", R, None)], NODE, []),
]


@pytest.mark.parametrize(("svc_kw", "endpoints", "node", "want"), [c[1:] for c in TRAFFIC_CASES],
                         ids=[c[0] for c in TRAFFIC_CASES])
def test_traffic(svc_kw: Obj, endpoints: list[tuple[str, Obj, str | None]], node: NodeView, want: list[str]) -> None:
    eps = [ep(ip, ready=c.get("ready"), serving=c.get("serving"), terminating=c.get("terminating"), node=n)
           for ip, c, n in endpoints]
    assert _used([svc(**svc_kw)], eps, node) == want


HINT_CASES = [
    ("all-hinted-some-for-zone", [("10.0.0.1", ["zone-a"]), ("10.0.0.2", ["zone-b"])], "zone-a", ["10.0.0.1:8080"]),
    ("multi-zone-hint", [("10.0.0.1", ["zone-a", "zone-b"]), ("10.0.0.2", ["zone-b"])], "zone-b",
     ["10.0.0.1:8080", "10.0.0.2:8080"]),
    ("one-ready-unhinted-ignores-hints", [("10.0.0.1", ["zone-a"]), ("10.0.0.2", None)], "zone-a",
     ["10.0.0.1:8080", "10.0.0.2:8080"]),
    ("none-for-this-zone-ignores-hints", [("10.0.0.1", ["zone-b"]), ("10.0.0.2", ["zone-c"])], "zone-a",
     ["10.0.0.1:8080", "10.0.0.2:8080"]),
    ("node-without-zone-ignores-hints", [("10.0.0.1", ["zone-a"]), ("10.0.0.2", ["zone-b"])], "",
     ["10.0.0.1:8080", "10.0.0.2:8080"]),
]


@pytest.mark.parametrize(("endpoints", "zone", "want"), [c[1:] for c in HINT_CASES], ids=[c[0] for c in HINT_CASES])
def test_zone_hints(endpoints: list[tuple[str, list[str] | None]], zone: str, want: list[str]) -> None:
    eps = [ep(ip, hints=h) for ip, h in endpoints]
    assert _used([svc()], eps, NodeView("node-0", zone)) == want


def test_hints_ignore_not_ready_endpoints() -> None:
    """Only ready endpoints decide whether hints apply; an unhinted not-ready one does not count."""
    eps = [ep("10.0.0.1", hints=["zone-a"]), ep("10.0.0.2", hints=["zone-b"]), ep("10.0.0.3", ready=False)]
    assert _used([svc()], eps) == ["10.0.0.1:8080"]


def test_itp_local_ignores_hints() -> None:
    eps = [ep("10.0.0.1", node="node-0", hints=["zone-b"]), ep("10.0.0.2", node="node-1", hints=["zone-a"])]
    assert _used([svc(itp="Local")], eps) == ["10.0.0.1:8080"]


def _endpoints_obj(subsets: list[Obj], labels: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"name": "web", "namespace": "default", "labels": labels or {}}, "subsets": subsets}


ENDPOINTS_CASES = [
    ("ready-and-not-ready",
     [{"addresses": [{"ip": "10.0.0.1", "nodeName": "node-1"}], "notReadyAddresses": [{"ip": "10.0.0.2"}],
       "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}],
     {"default/web:http": (["10.0.0.1:8080 ready+serving", "10.0.0.2:8080 -"], ["10.0.0.1:8080"])}),
    ("two-subsets-two-port-numbers",
     [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 8080}]},
      {"addresses": [{"ip": "10.0.0.2"}], "ports": [{"name": "http", "port": 9090}]}],
     {"default/web:http": (["10.0.0.1:8080 ready+serving", "10.0.0.2:9090 ready+serving"],
                           ["10.0.0.1:8080", "10.0.0.2:9090"])}),
    ("no-subsets", [], {"default/web:http": ([], [])}),
]


@pytest.mark.parametrize(("subsets", "want"), [c[1:] for c in ENDPOINTS_CASES], ids=[c[0] for c in ENDPOINTS_CASES])
def test_legacy_endpoints(subsets: list[Obj], want: dict[str, Any]) -> None:
    got = {}
    for entry in table_to_json(endpoints_table([svc()], [_endpoints_obj(subsets)], NODE)):
        got[entry["servicePort"]] = ([_state(e) for e in entry["endpoints"]], entry["used"])
    assert got == want


def test_legacy_endpoints_ignored_label() -> None:
    obj = _endpoints_obj([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 8080}]}],
                         labels={"service.kubernetes.io/headless": ""})
    assert table_to_json(endpoints_table([svc()], [obj], NODE))[0]["endpoints"] == []


def test_service_port_name_text() -> None:
    assert str(ServicePortName("default", "reviews", "http")) == "default/reviews:http"
    assert str(ServicePortName("default", "dns", "", "UDP")) == "default/dns/UDP"


def test_diff_tables_reports_each_kind_of_difference() -> None:
    want = table_to_json(slices_table([svc()], [slc("a", [ep("10.0.0.1"), ep("10.0.0.2")])], NODE))
    got = table_to_json(slices_table([svc()], [slc("a", [ep("10.0.0.1"), ep("10.0.0.3", ready=False)])], NODE))
    assert diff_tables(want, want) == []
    assert diff_tables(want, got) == [
        "default/web:http/TCP: missing endpoint 10.0.0.2:8080 ready=True serving=True terminating=False "
        "node=node-1 zone=zone-b",
        "default/web:http/TCP: unexpected endpoint 10.0.0.3:8080 ready=False serving=False terminating=False "
        "node=node-1 zone=zone-b",
        "default/web:http/TCP: traffic goes to 1 endpoints, want 2",
    ]
    assert diff_tables(want, []) == ["default/web:http/TCP: missing"]
    hinted = table_to_json(slices_table([svc()], [slc("a", [ep("10.0.0.1", hints=["zone-b"])])], NODE))
    plain = table_to_json(slices_table([svc()], [slc("a", [ep("10.0.0.1")])], NODE))
    assert diff_tables(plain, hinted) == [
        "default/web:http/TCP: missing endpoint 10.0.0.1:8080 ready=True serving=True terminating=False "
        "node=node-1 zone=zone-b",
        "default/web:http/TCP: unexpected endpoint 10.0.0.1:8080 ready=True serving=True terminating=False "
        "node=node-1 zone=zone-b hints=zone-b",
    ]
