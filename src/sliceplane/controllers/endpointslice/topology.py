"""Topology-aware hints for `service.kubernetes.io/topology-mode: Auto` (pure).

Kubernetes' allocation, in our words:

- `zone_topology(nodes)` turns the ready, non-control-plane nodes into each zone's share of the
  allocatable CPU. A node without a zone or without CPU makes the node information
  insufficient; fewer than two zones disables hints too.
- `allocations(topology, n)` gives each zone a desired number of the Service's n ready
  endpoints (its CPU share of n), a minimum (desired shrunk by the overload threshold, rounded
  up) and a maximum (minimum plus what the other minimums leave). More zones than endpoints,
  or minimums that add up to more than n, disable hints.
- `add_hints(...)` first hints every ready endpoint for its own zone, then moves hints from
  zones above their desired count to zones below it, one endpoint at a time (largest gap
  first), while a whole endpoint can move.

Every disabling case comes back as a `HintEvent` with Kubernetes' reason and message, for the
shell to record and log; nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sliceplane.api.defaults import parse_quantity
from sliceplane.controllers.endpointslice.values import LABEL_ZONE, EndpointValue, SliceValue

Obj = dict[str, Any]

# A zone may receive this much more traffic than its CPU share before it counts as overloaded.
OVERLOAD_THRESHOLD = 0.2

ANNOTATION_TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"
ANNOTATION_TOPOLOGY_AWARE_HINTS = "service.kubernetes.io/topology-aware-hints"
EXCLUDED_NODE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")

REASON_DISABLED = "TopologyAwareHintsDisabled"
REASON_ENABLED = "TopologyAwareHintsEnabled"

MSG_INSUFFICIENT_NODE_INFO = "insufficient node information: allocatable CPU or zone not specified on one or more nodes"
MSG_ONE_ZONE = "nodes only ready in one zone"
MSG_TOO_FEW_ENDPOINTS = "insufficient number of endpoints"
MSG_MIN_EXCEEDS_OVERLOAD = "minimum allocation exceeds overload threshold"
MSG_NO_ZONE = "one or more endpoints do not have a zone specified"
MSG_NO_HINTS = "no hints allocated for zones"
MSG_ENABLED = "Topology Aware Hints has been enabled"
MSG_DISABLED = "Topology Aware Hints has been disabled"


@dataclass(frozen=True, slots=True)
class HintEvent:
    """An Event the shell records on the Service (and logs)."""

    event_type: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class ZoneTopology:
    """Each zone's share of the allocatable CPU; empty with `problem` set when hints cannot work."""

    cpu_ratio_by_zone: Mapping[str, float]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Allocation:
    minimum: int
    maximum: int
    desired: float


def with_address_type(message: str, address_type: str) -> str:
    return f"{message}, addressType: {address_type}"


def topology_mode_auto(service: Obj) -> bool:
    """The deprecated topology-aware-hints annotation wins over topology-mode when both are set."""
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    mode = annotations.get(ANNOTATION_TOPOLOGY_AWARE_HINTS, annotations.get(ANNOTATION_TOPOLOGY_MODE))
    return mode in ("Auto", "auto")


def _node_ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def _allocatable_milli_cpu(node: Obj) -> int:
    q: Decimal | None = parse_quantity(((node.get("status") or {}).get("allocatable") or {}).get("cpu"))
    if q is None or q <= 0:
        return 0
    return math.ceil(q * 1000)


def zone_topology(nodes: Iterable[Obj]) -> ZoneTopology:
    """The CPU share of each zone across ready worker nodes."""
    milli_by_zone: dict[str, int] = {}
    for node in sorted(nodes, key=lambda n: (n.get("metadata") or {}).get("name", "")):
        labels = (node.get("metadata") or {}).get("labels") or {}
        if any(k in labels for k in EXCLUDED_NODE_LABELS) or not _node_ready(node):
            continue
        zone = labels.get(LABEL_ZONE) or ""
        cpu = _allocatable_milli_cpu(node)
        if not zone or cpu == 0:
            return ZoneTopology({}, MSG_INSUFFICIENT_NODE_INFO)
        milli_by_zone[zone] = milli_by_zone.get(zone, 0) + cpu
    total = sum(milli_by_zone.values())
    if total == 0:
        return ZoneTopology({}, MSG_INSUFFICIENT_NODE_INFO)
    if len(milli_by_zone) < 2:
        return ZoneTopology({}, MSG_ONE_ZONE)
    return ZoneTopology({z: m / total for z, m in sorted(milli_by_zone.items())})


def allocations(topology: ZoneTopology, n_endpoints: int) -> tuple[dict[str, Allocation], str | None]:
    """Per-zone endpoint allocation for n ready endpoints, or the reason there is none."""
    if topology.problem is not None:
        return {}, topology.problem
    ratios = topology.cpu_ratio_by_zone
    if len(ratios) < 2:
        return {}, MSG_ONE_ZONE
    if len(ratios) > n_endpoints:
        return {}, f"{MSG_TOO_FEW_ENDPOINTS} ({n_endpoints} endpoints, {len(ratios)} zones)"
    mins: dict[str, tuple[int, float]] = {}
    for zone, ratio in ratios.items():
        desired = ratio * n_endpoints
        minimum = math.ceil(desired * (1 / (1 + OVERLOAD_THRESHOLD)))
        mins[zone] = (minimum, max(desired, float(minimum)))
    min_total = sum(m for m, _ in mins.values())
    if min_total > n_endpoints:
        return {}, f"{MSG_MIN_EXCEEDS_OVERLOAD} ({n_endpoints} endpoints, {len(ratios)} zones)"
    return {z: Allocation(m, m + n_endpoints - min_total, d) for z, (m, d) in mins.items()}, None


def _largest(gaps: Mapping[str, float]) -> tuple[str, float]:
    best, amount = "", 0.0
    for zone in sorted(gaps):
        if gaps[zone] > amount:
            best, amount = zone, gaps[zone]
    return best, amount


def giving_and_receiving(allocs: Mapping[str, Allocation], hinted_by_zone: Mapping[str, int]
                         ) -> tuple[dict[str, int], dict[str, int]]:
    """How many endpoints each zone hands over, and how many each takes in."""
    surplus: dict[str, float] = {}
    deficit: dict[str, float] = {}
    for zone, a in allocs.items():
        have = float(hinted_by_zone.get(zone, 0))
        if have > a.desired:
            surplus[zone] = have - a.desired
        elif have < a.desired:
            deficit[zone] = a.desired - have
    giving: dict[str, int] = {}
    receiving: dict[str, int] = {}
    while True:
        gz, give = _largest(surplus)
        rz, take = _largest(deficit)
        if not gz or not rz or (give < 1.0 and take < 1.0) or give < 0.5 or take < 0.5:
            break
        giving[gz] = giving.get(gz, 0) + 1
        surplus[gz] -= 1
        receiving[rz] = receiving.get(rz, 0) + 1
        deficit[rz] -= 1
    return giving, receiving


def _ready(ep: EndpointValue) -> bool:
    return bool(ep.ready)


def _set_hints(ep: EndpointValue, hints: tuple[str, ...] | None) -> EndpointValue:
    return ep if ep.zone_hints == hints else dataclasses.replace(ep, zone_hints=hints)


def _replace(s: SliceValue, eps: list[EndpointValue]) -> SliceValue:
    if all(a is b for a, b in zip(eps, s.endpoints, strict=True)):
        return s
    return dataclasses.replace(s, endpoints=tuple(eps))


def has_hints(s: SliceValue) -> bool:
    return any(ep.zone_hints is not None for ep in s.endpoints)


def remove_hints(creates: list[SliceValue], updates: list[SliceValue], unchanged: list[SliceValue]
                 ) -> tuple[list[SliceValue], list[SliceValue]]:
    """No hints anywhere: unchanged slices that carry some are rewritten without them."""
    def strip(s: SliceValue) -> SliceValue:
        return _replace(s, [_set_hints(ep, None) for ep in s.endpoints])

    updates = [strip(s) for s in updates] + [strip(s) for s in unchanged if has_hints(s)]
    return [strip(s) for s in creates], updates


def add_hints(
    creates: list[SliceValue],
    updates: list[SliceValue],
    unchanged: list[SliceValue],
    topology: ZoneTopology,
    address_type: str,
) -> tuple[list[SliceValue], list[SliceValue], list[HintEvent]]:
    """Hints for one address type of an Auto Service; unchanged slices whose hints move are rewritten.

    Returns (creates, updates, events); any event means hints were disabled and removed.
    """
    all_slices = creates + updates + unchanged
    n_ready = sum(1 for s in all_slices for ep in s.endpoints if _ready(ep))

    def disabled(message: str) -> tuple[list[SliceValue], list[SliceValue], list[HintEvent]]:
        c, u = remove_hints(creates, updates, unchanged)
        return c, u, [HintEvent("Warning", REASON_DISABLED, with_address_type(message, address_type))]

    allocs, problem = allocations(topology, n_ready)
    if problem is not None:
        return disabled(problem)

    # 1. every ready endpoint hinted for its own zone
    hinted_by_zone: dict[str, int] = {}
    eps_by_slice: list[list[EndpointValue]] = []
    for s in all_slices:
        eps: list[EndpointValue] = []
        for ep in s.endpoints:
            if not _ready(ep):
                eps.append(_set_hints(ep, None))
                continue
            if not ep.zone:
                return disabled(MSG_NO_ZONE)
            hinted_by_zone[ep.zone] = hinted_by_zone.get(ep.zone, 0) + 1
            eps.append(_set_hints(ep, (ep.zone,)))
        eps_by_slice.append(eps)

    # 2. move hints from zones with too many endpoints to zones with too few
    giving, receiving = giving_and_receiving(allocs, hinted_by_zone)
    for eps in eps_by_slice:
        if not giving or not receiving:
            break
        for i, ep in enumerate(eps):
            if not giving or not receiving:
                break
            if not _ready(ep) or not ep.zone or giving.get(ep.zone, 0) <= 0:
                continue
            to_zone = sorted(receiving)[0]
            eps[i] = _set_hints(ep, (to_zone,))
            hinted_by_zone[to_zone] = hinted_by_zone.get(to_zone, 0) + 1
            hinted_by_zone[ep.zone] -= 1
            for counts, zone in ((giving, ep.zone), (receiving, to_zone)):
                counts[zone] -= 1
                if counts[zone] == 0:
                    del counts[zone]

    if not any(hinted_by_zone.values()):
        return disabled(MSG_NO_HINTS)

    out = [_replace(s, eps) for s, eps in zip(all_slices, eps_by_slice, strict=True)]
    n_c, n_u = len(creates), len(updates)
    new_creates = out[:n_c]
    new_updates = out[n_c:n_c + n_u]
    for before, after in zip(unchanged, out[n_c + n_u:], strict=True):
        if any(a.zone_hints != b.zone_hints for a, b in zip(after.endpoints, before.endpoints, strict=True)):
            new_updates.append(after)
    return new_creates, new_updates, []


def hints_by_zone(slices: Iterable[SliceValue]) -> dict[str, int]:
    """How many ready endpoints are hinted for each zone (for tests and logs)."""
    out: dict[str, int] = {}
    for s in slices:
        for ep in s.endpoints:
            if _ready(ep) and ep.zone_hints:
                for z in ep.zone_hints:
                    out[z] = out.get(z, 0) + 1
    return out
