"""`sliceplane verify`: every running agent's table against the truth computed from Pods.

The truth does not read EndpointSlices or Endpoints: it derives each Service's endpoints from
the Pods it selects (the controllers' inclusion rules: an IP, not terminal, on a known node;
serving = the Ready condition; terminating = a deletionTimestamp; ready = serving and not
terminating, or always with publishNotReadyAddresses) and the Nodes (zone, same-zone hints for
`trafficDistribution: PreferClose`). Then the same table rules as the agents apply. For agents
on legacy Endpoints the truth has what Endpoints can say: no terminating pods (unless
publishNotReadyAddresses), no zones, no hints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sliceplane.agent.servicetable import (
    LABEL_ZONE,
    EndpointInfo,
    NodeView,
    PortGroup,
    SliceInfo,
    build_table,
    diff_tables,
    table_to_json,
)
from sliceplane.agent.snapshot import live_snapshots
from sliceplane.controllers import podutil

Obj = dict[str, Any]


def _zone_of(node: Obj | None) -> str | None:
    if node is None:
        return None
    return ((node.get("metadata") or {}).get("labels") or {}).get(LABEL_ZONE) or None


def _prefers_close(service: Obj) -> bool:
    spec = service.get("spec") or {}
    if spec.get("trafficDistribution") != "PreferClose":
        return False
    ann = (service.get("metadata") or {}).get("annotations") or {}
    modes = (ann.get("service.kubernetes.io/topology-mode"), ann.get("service.kubernetes.io/topology-aware-hints"))
    return not any(m in ("Auto", "auto") for m in modes)


def truth_infos(services: Iterable[Obj], pods: Iterable[Obj], nodes_by_name: Mapping[str, Obj],
                source: str = "slices", ip_family: str = "IPv4") -> list[SliceInfo]:
    """Per Service, the endpoints its Pods should give it, shaped like slices for `build_table`."""
    pods_by_ns: dict[str, list[Obj]] = {}
    for pod in pods:
        pods_by_ns.setdefault((pod.get("metadata") or {}).get("namespace", ""), []).append(pod)
    out: list[SliceInfo] = []
    for svc in services:
        meta = svc.get("metadata") or {}
        spec = svc.get("spec") or {}
        selector = podutil.service_selector(svc)
        if not selector or spec.get("type") == "ExternalName":
            continue
        publish = bool(spec.get("publishNotReadyAddresses"))
        hints = source == "slices" and _prefers_close(svc)
        # An Endpoints object holds the Service's primary family only; slices exist per family.
        families = spec.get("ipFamilies") or []
        if source == "endpoints" and families and families[0] != ip_family:
            out.append(SliceInfo(meta.get("namespace", ""), meta.get("name", ""), ()))
            continue
        groups: list[PortGroup] = []
        for pod in sorted(pods_by_ns.get(meta.get("namespace", ""), []),
                          key=lambda p: (p.get("metadata") or {}).get("name", "")):
            if not podutil.selector_matches(selector, (pod.get("metadata") or {}).get("labels") or {}):
                continue
            if not podutil.should_pod_be_in_endpoints(pod, include_terminating=(source == "slices" or publish)):
                continue
            node_name = (pod.get("spec") or {}).get("nodeName") or None
            node = nodes_by_name.get(node_name) if node_name else None
            if source == "slices" and node is None and not publish:
                continue
            addresses = podutil.pod_addresses_for_family(pod, ip_family)
            if not addresses:
                continue
            serving = podutil.is_pod_ready(pod)
            terminating = podutil.is_pod_terminating(pod)
            ready = publish or (serving and not terminating)
            if source == "slices":
                zone = _zone_of(node)
                ep = EndpointInfo(addresses[0], ready, serving, terminating, node_name, zone,
                                  frozenset([zone]) if hints and ready and zone else frozenset())
            else:
                ep = EndpointInfo(addresses[0], ready, ready, False, node_name)
            ports = []
            for sp in spec.get("ports") or []:
                number = podutil.find_port(pod, sp)
                if number:
                    ports.append((sp.get("name") or "", number, sp.get("protocol") or "TCP"))
            if ports:
                groups.append(PortGroup(tuple(ports), (ep,)))
        out.append(SliceInfo(meta.get("namespace", ""), meta.get("name", ""), tuple(groups)))
    return out


def truth_table(services: list[Obj], pods: list[Obj], nodes: list[Obj], node_name: str,
                source: str = "slices", ip_family: str = "IPv4") -> list[Obj]:
    """The JSON table an agent on `node_name` should hold (Services with a selector only)."""
    services = [s for s in services if podutil.service_selector(s)]
    nodes_by_name = {(n.get("metadata") or {}).get("name", ""): n for n in nodes}
    zone = _zone_of(nodes_by_name.get(node_name)) or ""
    view = NodeView(node_name, zone, ip_family)
    return table_to_json(build_table(services, truth_infos(services, pods, nodes_by_name, source, ip_family), view))


@dataclass(frozen=True)
class AgentReport:
    node: str
    source: str
    differences: tuple[str, ...]


def compare(services: list[Obj], pods: list[Obj], nodes: list[Obj], snapshots: Iterable[Obj]) -> list[AgentReport]:
    """One report per full-mode agent snapshot."""
    reports = []
    manual = {f"{(s.get('metadata') or {}).get('namespace')}/{(s.get('metadata') or {}).get('name')}"
              for s in services if not podutil.service_selector(s)}
    for snap in snapshots:
        if snap.get("mode") != "full":
            continue
        source = snap.get("source", "slices")
        if not snap.get("synced"):
            reports.append(AgentReport(snap.get("node", "?"), source, ("not synced yet",)))
            continue
        want = truth_table(services, pods, nodes, snap.get("node", ""), source, snap.get("ipFamily", "IPv4"))
        # Selector-less Services have hand-made endpoints: Pods cannot tell what they should be.
        got = [e for e in snap.get("table") or [] if f"{e.get('namespace')}/{e.get('service')}" not in manual]
        reports.append(AgentReport(snap.get("node", "?"), source, tuple(diff_tables(want, got))))
    return reports


async def verify(client: Any, state_dir: Path, *, timeout: float = 10.0, interval: float = 0.5,
                 now: Any = time.time) -> list[AgentReport]:
    """Compare until every agent agrees or `timeout` passes; the last comparison is returned."""
    from sliceplane.api.registry import NODES, PODS, SERVICES

    deadline = now() + timeout
    while True:
        services, pods, nodes = await asyncio.gather(client.list(SERVICES), client.list(PODS), client.list(NODES))
        # Read the snapshots after the lists: an agent that agrees now saw at least this state.
        reports = compare(services.get("items") or [], pods.get("items") or [], nodes.get("items") or [],
                          live_snapshots(state_dir, now()))
        if reports and all(not r.differences for r in reports):
            return reports
        if now() >= deadline:
            return reports
        await asyncio.sleep(interval)
