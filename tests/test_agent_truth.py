"""The truth `sliceplane verify` computes from Pods, the agent's incremental table, and the
wire-level helpers of the counting agents."""

from __future__ import annotations

from typing import Any

import pytest

from sliceplane.agent.agent import NodeAgent
from sliceplane.agent.counting import peek_event
from sliceplane.agent.metrics import AgentMetrics, percentile
from sliceplane.agent.servicetable import NodeView, slices_table, table_to_json
from sliceplane.agent.verify import compare, truth_table
from sliceplane.client.rest import RESTClient

Obj = dict[str, Any]


def node(name: str, zone: str) -> Obj:
    return {"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}}}


NODES = [node("node-0", "zone-a"), node("node-1", "zone-b")]


def svc(*, publish: bool = False, traffic: str | None = None, target: Any = 9080) -> Obj:
    spec: Obj = {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                 "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": target,
                                                         "protocol": "TCP"}]}
    if publish:
        spec["publishNotReadyAddresses"] = True
    if traffic:
        spec["trafficDistribution"] = traffic
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": spec}


def pod(name: str, ip: str, *, ready: bool = True, node_name: str = "node-1", deleting: bool = False,
        phase: str = "Running", app: str = "web") -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "labels": {"app": app}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta,
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "ports": [{"name": "web", "containerPort": 9080}]}]},
            "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def _eps(table: list[Obj]) -> list[str]:
    out = []
    for entry in table:
        for e in entry["endpoints"]:
            flags = "+".join(f for f in ("ready", "serving", "terminating") if e[f]) or "-"
            out.append(f"{e['address']}:{e['port']} {flags} {e['zone']}{' hints' if e.get('zoneHints') else ''}")
    return out


TRUTH_CASES = [
    ("ready-pod", svc(), [pod("a", "10.0.0.1")], "slices", ["10.0.0.1:9080 ready+serving zone-b"]),
    ("not-ready-pod", svc(), [pod("a", "10.0.0.1", ready=False)], "slices", ["10.0.0.1:9080 - zone-b"]),
    ("terminating-ready-pod", svc(), [pod("a", "10.0.0.1", deleting=True)], "slices",
     ["10.0.0.1:9080 serving+terminating zone-b"]),
    ("terminal-pod-left-out", svc(), [pod("a", "10.0.0.1", phase="Succeeded")], "slices", []),
    ("unknown-node-left-out", svc(), [pod("a", "10.0.0.1", node_name="node-9")], "slices", []),
    ("other-labels-left-out", svc(), [pod("a", "10.0.0.1", app="db")], "slices", []),
    ("publish-not-ready", svc(publish=True), [pod("a", "10.0.0.1", ready=False)], "slices",
     ["10.0.0.1:9080 ready zone-b"]),
    ("named-target-port", svc(target="web"), [pod("a", "10.0.0.1")], "slices", ["10.0.0.1:9080 ready+serving zone-b"]),
    ("missing-named-port", svc(target="nope"), [pod("a", "10.0.0.1")], "slices", []),
    ("prefer-close-hints", svc(traffic="PreferClose"), [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ready=False)],
     "slices", ["10.0.0.1:9080 ready+serving zone-b hints", "10.0.0.2:9080 - zone-b"]),
    ("endpoints-no-terminating", svc(), [pod("a", "10.0.0.1", deleting=True), pod("b", "10.0.0.2")], "endpoints",
     ["10.0.0.2:9080 ready+serving None"]),
    ("endpoints-not-ready", svc(), [pod("a", "10.0.0.1", ready=False)], "endpoints", ["10.0.0.1:9080 - None"]),
    # A dual-stack Service whose primary family is IPv6: its Endpoints hold no IPv4 address.
    ("endpoints-primary-family-only", {**svc(), "spec": {**svc()["spec"], "ipFamilies": ["IPv6", "IPv4"]}},
     [pod("a", "10.0.0.1")], "endpoints", []),
    ("slices-every-family", {**svc(), "spec": {**svc()["spec"], "ipFamilies": ["IPv6", "IPv4"]}},
     [pod("a", "10.0.0.1")], "slices", ["10.0.0.1:9080 ready+serving zone-b"]),
]


@pytest.mark.parametrize(("service", "pods", "source", "want"), [c[1:] for c in TRUTH_CASES],
                         ids=[c[0] for c in TRUTH_CASES])
def test_truth(service: Obj, pods: list[Obj], source: str, want: list[str]) -> None:
    assert _eps(truth_table([service], pods, NODES, "node-0", source)) == want


def test_compare_flags_a_wrong_agent_and_skips_counting_ones() -> None:
    services, pods = [svc()], [pod("a", "10.0.0.1"), pod("b", "10.0.0.2")]
    good = truth_table(services, pods, NODES, "node-0")
    bad = truth_table(services, pods[:1], NODES, "node-1")
    snaps = [{"node": "node-0", "mode": "full", "synced": True, "table": good},
             {"node": "node-1", "mode": "full", "synced": True, "table": bad},
             {"node": "node-2", "mode": "counting", "synced": True, "table": []},
             {"node": "node-3", "mode": "full", "synced": False, "table": []}]
    reports = {r.node: r.differences for r in compare(services, pods, NODES, snaps)}
    assert reports["node-0"] == ()
    assert len(reports["node-1"]) == 2  # the missing endpoint, and traffic to 1 instead of 2
    assert "node-2" not in reports
    assert reports["node-3"] == ("not synced yet",)


def _slice(name: str, ips: list[str], *, trigger: str | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": "web"},
                 "annotations": {}}
    if trigger:
        meta["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"] = trigger
    return {"metadata": meta, "addressType": "IPv4", "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": "node-1"} for ip in ips]}


async def test_agent_incremental_table_equals_full_merge() -> None:
    """Replaying events one by one gives the table a full merge of the final state gives."""
    client = RESTClient("http://127.0.0.1:9")  # never contacted: events are fed by hand
    now = [1000.0]
    agent = NodeAgent(client, "node-0", clock=lambda: now[0])
    agent._services_listed([svc()])
    agent._infos_listed([_slice("a", ["10.0.0.1"])])
    events = [
        ("ADDED", _slice("b", ["10.0.0.2", "10.0.0.3"], trigger="1970-01-01T00:00:01Z")),  # before start: ignored
        ("MODIFIED", _slice("a", ["10.0.0.1", "10.0.0.4"], trigger="1970-01-01T00:16:39.5Z")),  # 999.5
        ("DELETED", _slice("b", [])),
        ("ADDED", _slice("c", ["10.0.0.4"], trigger="1970-01-01T00:16:40Z")),  # duplicate of a's 10.0.0.4
    ]
    for typ, obj in events:
        agent._info_event(typ, obj)
    final = [_slice("a", ["10.0.0.1", "10.0.0.4"]), _slice("c", ["10.0.0.4"])]
    assert table_to_json(agent.table()) == table_to_json(slices_table([svc()], final, NodeView("node-0")))
    assert sorted(agent.metrics.samples) == [0.0, 0.5]
    agent._service_event("DELETED", svc())
    assert agent.table() == {}
    await client.close()


PEEK_CASES = [
    ("added", b'{"type":"ADDED","object":{"kind":"Service","metadata":{"name":"a","resourceVersion":"42"}}}',
     ("ADDED", "42", None)),
    ("bookmark", b'{"type":"BOOKMARK","object":{"kind":"Service","metadata":{"resourceVersion":"77"}}}',
     ("BOOKMARK", "77", None)),
    ("reference-before-metadata",
     b'{"type":"MODIFIED","object":{"subsets":[{"addresses":[{"targetRef":{"resourceVersion":"5"}}]}],'
     b'"metadata":{"name":"a","resourceVersion":"90"}}}', ("MODIFIED", "90", None)),
    ("expired", b'{"type":"ERROR","object":{"kind":"Status","status":"Failure","reason":"Expired","code":410}}',
     ("ERROR", "", 410)),
]


@pytest.mark.parametrize(("line", "want"), [c[1:] for c in PEEK_CASES], ids=[c[0] for c in PEEK_CASES])
def test_peek_event(line: bytes, want: tuple[str, str, int | None]) -> None:
    assert peek_event(line) == want


def test_latency_percentiles_and_buckets() -> None:
    m = AgentMetrics("node-0")
    for v in [0.002, 0.02, 0.2, 2.0]:
        m.observe_latency(v)
    s = m.latency_summary()
    assert (s["count"], s["p50"], s["p99"], s["max"]) == (4, 0.02, 2.0, 2.0)
    assert s["buckets"]["0.0025"] == 1 and s["buckets"]["0.025"] == 1 and s["buckets"]["2.0"] == 1
    assert percentile([], 0.5) is None
