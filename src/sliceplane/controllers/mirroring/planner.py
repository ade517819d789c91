"""Pure planning for the EndpointSlice mirroring controller.

Given one Endpoints object, its Service and the slices we mirrored for it before, return the
creates, updates and deletes that make the slices mirror the Endpoints:

- nothing is mirrored (and earlier mirrors are deleted) when the Service is missing, has a
  selector, or the Endpoints carries `endpointslice.kubernetes.io/skip-mirror: "true"` or a
  leader-election annotation;
- subsets with the same ports are merged first (an address both ready and not ready counts as
  ready); each merged subset then contributes at most `max_endpoints_per_subset` valid
  addresses, ready ones first; invalid IPs are skipped without using up that budget; both are
  reported as Events on the Endpoints;
- there is one slice per (port set, address family);
- existing slices are rewritten in place when their content differs (an exact mirror gets no
  write), leftovers of the same family are reused for new groups, the rest are deleted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sliceplane.api.meta import name_of, namespace_of, uid_of

Obj = dict[str, Any]

CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
ANNOTATION_LEADER = "control-plane.alpha.kubernetes.io/leader"
# Not copied from the Endpoints to its slices.
DROPPED_ANNOTATIONS = frozenset({"endpoints.kubernetes.io/last-change-trigger-time",
                                 "kubectl.kubernetes.io/last-applied-configuration"})

REASON_INVALID_IP = "InvalidIPAddress"
REASON_TOO_MANY = "TooManyAddressesToMirror"

@dataclass(frozen=True, slots=True)
class MirrorEvent:
    event_type: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class MirrorPlan:
    to_create: tuple[Obj, ...] = ()
    to_update: tuple[Obj, ...] = ()
    to_delete: tuple[Obj, ...] = ()
    events: tuple[MirrorEvent, ...] = ()

    @property
    def writes(self) -> int:
        return len(self.to_create) + len(self.to_update) + len(self.to_delete)


def is_mirrored_slice(obj: Mapping[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_MANAGED_BY) == CONTROLLER_NAME


def should_mirror(endpoints: Obj | None, service: Obj | None) -> bool:
    """Mirror only hand-written Endpoints of an existing selectorless Service."""
    if endpoints is None or service is None:
        return False
    meta = endpoints.get("metadata") or {}
    if (meta.get("labels") or {}).get(LABEL_SKIP_MIRROR) == "true":
        return False
    if ANNOTATION_LEADER in (meta.get("annotations") or {}):
        return False
    return (service.get("spec") or {}).get("selector") is None


def address_type_of(ip: str) -> str | None:
    """IPv4 / IPv6, or None for something that is not a plain IP."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return "IPv4" if addr.version == 4 else "IPv6"


def _endpoint(address: Mapping[str, Any], ready: bool) -> Obj:
    ep: Obj = {"addresses": [address["ip"]], "conditions": {"ready": ready}}
    if address.get("hostname"):
        ep["hostname"] = address["hostname"]
    if address.get("targetRef"):
        ep["targetRef"] = {k: v for k, v in address["targetRef"].items() if v not in (None, "")}
    if address.get("nodeName"):
        ep["nodeName"] = address["nodeName"]
    return ep


def _ports(subset: Mapping[str, Any]) -> tuple[tuple[str, int, str, str | None], ...]:
    out = []
    for p in subset.get("ports") or []:
        out.append((p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP", p.get("appProtocol")))
    return tuple(sorted(out, key=lambda t: (t[0], t[1], t[2])))


def _port_dicts(ports: tuple[tuple[str, int, str, str | None], ...]) -> list[Obj]:
    out = []
    for name, port, protocol, app in ports:
        d: Obj = {"name": name, "port": port, "protocol": protocol}
        if app:
            d["appProtocol"] = app
        out.append(d)
    return out


GroupKey = tuple[tuple[tuple[str, int, str, str | None], ...], str]


def repack_subsets(subsets: Iterable[Mapping[str, Any]]) -> list[tuple[Any, list[Obj], list[Obj]]]:
    """Subsets merged by port set: (ports, ready addresses, not-ready addresses), each IP once.

    An address listed as both ready and not ready is ready; the first listing of an IP wins.
    """
    merged: dict[Any, tuple[dict[str, Obj], dict[str, Obj]]] = {}
    for subset in subsets:
        ready, not_ready = merged.setdefault(_ports(subset), ({}, {}))
        for a in subset.get("addresses") or []:
            ip = str(a.get("ip") or "")
            not_ready.pop(ip, None)
            ready.setdefault(ip, a)
        for a in subset.get("notReadyAddresses") or []:
            ip = str(a.get("ip") or "")
            if ip not in ready:
                not_ready.setdefault(ip, a)
    return [(ports, list(r.values()), list(n.values())) for ports, (r, n) in merged.items()]


def desired_groups(endpoints: Obj, max_per_subset: int) -> tuple[dict[GroupKey, list[Obj]], list[MirrorEvent]]:
    """Endpoints by (ports, address type), ready first, with the Events to record."""
    groups: dict[GroupKey, list[Obj]] = {}
    invalid = 0
    skipped = 0  # invalid ones included, as Kubernetes counts them
    for ports, ready, not_ready in repack_subsets(endpoints.get("subsets") or []):
        added = 0
        candidates = [(a, True) for a in ready] + [(a, False) for a in not_ready]
        for address, is_ready in candidates:
            if added >= max_per_subset:
                break
            family = address_type_of(str(address.get("ip") or ""))
            if family is None:
                invalid += 1
                continue
            groups.setdefault((ports, family), []).append(_endpoint(address, is_ready))
            added += 1
        skipped += len(candidates) - added
    events = []
    if invalid:
        events.append(MirrorEvent("Warning", REASON_INVALID_IP,
                                  f"Skipped {invalid} invalid IP addresses when mirroring to EndpointSlices"))
    if skipped > invalid:
        events.append(MirrorEvent("Warning", REASON_TOO_MANY,
                                  f"A max of {max_per_subset} addresses can be mirrored to EndpointSlices per "
                                  f"Endpoints subset. {skipped} addresses were skipped"))
    return groups, events


def slice_metadata(endpoints: Obj) -> tuple[dict[str, str], dict[str, str], list[Obj]]:
    """Labels, annotations and owner references every slice of this Endpoints carries."""
    meta = endpoints.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    labels[LABEL_SERVICE_NAME] = name_of(endpoints)
    labels[LABEL_MANAGED_BY] = CONTROLLER_NAME
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in DROPPED_ANNOTATIONS}
    owner = {"apiVersion": "v1", "kind": "Endpoints", "name": name_of(endpoints), "uid": uid_of(endpoints),
             "controller": True, "blockOwnerDeletion": True}
    return labels, annotations, [owner]


def _endpoint_content(ep: Mapping[str, Any]) -> tuple[Any, ...]:
    ref = ep.get("targetRef") or {}
    return (tuple(ep.get("addresses") or ()), (ep.get("conditions") or {}).get("ready"), ep.get("hostname") or "",
            ep.get("nodeName") or "", tuple(ref.get(k) or "" for k in ("kind", "namespace", "name", "uid")))


def _content(s: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a mirrored slice is compared on, normalised so server defaults cause no rewrites."""
    meta = s.get("metadata") or {}
    owners = [(o.get("kind"), o.get("name"), o.get("uid")) for o in meta.get("ownerReferences") or []]
    return (s.get("addressType"), _ports(s), [_endpoint_content(e) for e in s.get("endpoints") or []],
            meta.get("labels") or {}, meta.get("annotations") or {}, owners)


def _with_content(base: Obj | None, endpoints: Obj, address_type: str, ports: list[Obj], eps: list[Obj],
                  labels: dict[str, str], annotations: dict[str, str], owners: list[Obj]) -> Obj:
    meta: Obj = {}
    if base is not None:
        meta = {k: v for k, v in (base.get("metadata") or {}).items()
                if k in ("name", "uid", "resourceVersion", "creationTimestamp", "generation")}
    else:
        meta["generateName"] = f"{name_of(endpoints)}-"
    meta["namespace"] = namespace_of(endpoints)
    meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    meta["ownerReferences"] = [dict(o) for o in owners]
    obj: Obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta,
                "addressType": address_type, "endpoints": eps}
    if ports:
        obj["ports"] = ports
    return obj


def plan_mirroring(
    endpoints: Obj | None,
    service: Obj | None,
    existing: Iterable[Obj],
    *,
    max_endpoints_per_subset: int = 1000,
) -> MirrorPlan:
    """The writes that make `existing` (our slices for this name) mirror `endpoints`."""
    current = sorted((s for s in existing if not (s.get("metadata") or {}).get("deletionTimestamp")),
                     key=lambda s: (s.get("metadata") or {}).get("name", ""))
    if not should_mirror(endpoints, service):
        return MirrorPlan(to_delete=tuple(current))
    assert endpoints is not None
    groups, events = desired_groups(endpoints, max_endpoints_per_subset)
    labels, annotations, owners = slice_metadata(endpoints)

    # Existing slices by the group their content belongs to; the first (by name) of each is kept.
    by_group: dict[GroupKey, list[Obj]] = {}
    for s in current:
        key = (_ports({"ports": s.get("ports") or []}), s.get("addressType", ""))
        by_group.setdefault(key, []).append(s)

    wanted: list[tuple[GroupKey, list[Obj], Obj | None]] = []
    for key in sorted(groups, key=repr):
        olds = by_group.get(key, [])
        wanted.append((key, groups[key], olds[0] if olds else None))
        by_group[key] = olds[1:]
    leftovers = [s for key in sorted(by_group, key=repr) for s in by_group[key]]

    creates: list[Obj] = []
    updates: list[Obj] = []
    for (ports, family), chunk, old in wanted:
        if old is None:
            # Reuse a leftover slice of the same family rather than delete one and create one.
            old = next((s for s in leftovers if s.get("addressType") == family), None)
            if old is not None:
                leftovers.remove(old)
        desired = _with_content(old, endpoints, family, _port_dicts(ports), chunk, labels, annotations, owners)
        if old is None:
            creates.append(desired)
        elif _content(old) != _content(desired):
            updates.append(desired)
    return MirrorPlan(tuple(creates), tuple(updates), tuple(leftovers), tuple(events))
