"""The controller's incremental bookkeeping: per Service, which slice holds which endpoint.

Kubernetes re-reads every slice and recomputes every endpoint of a Service on each sync, so a
single pod change costs O(P). We keep, per Service, an index over the managed slices the
informer has shown us:

- the slices by name, parsed once per slice event (cost O(B), the size of that event);
- where each pod's endpoint lives, per address type (`slot`);
- the slices of each (address type, port mapping) bucketed by fill level, so "the slice closest
  to full that still fits n endpoints" is found by walking at most B buckets.

The planner reads this index (it never writes it); the controller shell updates it from
EndpointSlice informer events only, so it is exactly the informer's view, and the write
tracker decides whether that view is recent enough to plan from.

The index also counts what would make an incremental plan unsafe (endpoints that are not
pods, a pod in two slices, slices being deleted, slices of another owner or address type);
`incremental_ok` turns those into a yes/no in O(1), and the planner falls back to a full
reconcile when it says no.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sliceplane.controllers.endpointslice.values import (
    LABEL_SERVICE_NAME,
    EndpointKey,
    EndpointValue,
    PortKey,
    SliceValue,
    as_slice_value,
)

Slot = tuple[str, EndpointKey]  # (slice name, endpoint key)


@dataclass
class ServiceSlices:
    """The managed slices of one Service, indexed for O(changed) planning."""

    slices: dict[str, SliceValue] = field(default_factory=dict)
    endpoints_by_slice: dict[str, dict[EndpointKey, EndpointValue]] = field(default_factory=dict)
    # (address type, pod name) -> every slot holding that pod's endpoint (normally one).
    slots: dict[tuple[str, str], list[Slot]] = field(default_factory=dict)
    # (address type, port key) -> endpoint count -> slice names with that count.
    fill: dict[tuple[str, PortKey], dict[int, set[str]]] = field(default_factory=dict)
    # What makes incremental planning unsafe, kept as counts so the check is O(1).
    non_pod_endpoints: int = 0
    duplicate_slots: int = 0
    deleting: int = 0
    owner_uids: Counter[str] = field(default_factory=Counter)
    address_types: Counter[str] = field(default_factory=Counter)
    sizes: Counter[int] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.slices)

    def __iter__(self) -> Iterator[SliceValue]:
        return iter(self.slices.values())

    def get(self, name: str) -> SliceValue | None:
        return self.slices.get(name)

    def endpoints_of(self, name: str) -> Mapping[EndpointKey, EndpointValue]:
        return self.endpoints_by_slice.get(name, {})

    def slot_of(self, address_type: str, pod_name: str) -> list[Slot]:
        return self.slots.get((address_type, pod_name), [])

    # ---- maintenance (called by the controller shell on informer events) ----

    def put(self, s: SliceValue) -> None:
        if s.name in self.slices:
            self.remove(s.name)
        self.slices[s.name] = s
        eps: dict[EndpointKey, EndpointValue] = {}
        for ep in s.endpoints:
            eps[ep.key] = ep
            pod = ep.pod_name
            if pod is None:
                self.non_pod_endpoints += 1
                continue
            lst = self.slots.setdefault((s.address_type, pod), [])
            if lst:
                self.duplicate_slots += 1
            lst.append((s.name, ep.key))
        self.endpoints_by_slice[s.name] = eps
        if len(eps) != len(s.endpoints):
            self.duplicate_slots += len(s.endpoints) - len(eps)
        self.fill.setdefault((s.address_type, s.ports), {}).setdefault(len(s.endpoints), set()).add(s.name)
        if s.deleting:
            self.deleting += 1
        for uid in _owner_uids(s):
            self.owner_uids[uid] += 1
        self.address_types[s.address_type] += 1
        self.sizes[len(s.endpoints)] += 1

    def remove(self, name: str) -> None:
        s = self.slices.pop(name, None)
        if s is None:
            return
        eps = self.endpoints_by_slice.pop(name, {})
        if len(eps) != len(s.endpoints):
            self.duplicate_slots -= len(s.endpoints) - len(eps)
        for ep in s.endpoints:
            pod = ep.pod_name
            if pod is None:
                self.non_pod_endpoints -= 1
                continue
            key = (s.address_type, pod)
            lst = self.slots.get(key, [])
            slot = (s.name, ep.key)
            if slot in lst:
                lst.remove(slot)
                if lst:
                    self.duplicate_slots -= 1
            if not lst:
                self.slots.pop(key, None)
        bucket = self.fill.get((s.address_type, s.ports), {})
        names = bucket.get(len(s.endpoints))
        if names is not None:
            names.discard(s.name)
            if not names:
                del bucket[len(s.endpoints)]
        if not bucket:
            self.fill.pop((s.address_type, s.ports), None)
        if s.deleting:
            self.deleting -= 1
        for uid in _owner_uids(s):
            self.owner_uids[uid] -= 1
            if self.owner_uids[uid] <= 0:
                del self.owner_uids[uid]
        self.address_types[s.address_type] -= 1
        if self.address_types[s.address_type] <= 0:
            del self.address_types[s.address_type]
        self.sizes[len(s.endpoints)] -= 1
        if self.sizes[len(s.endpoints)] <= 0:
            del self.sizes[len(s.endpoints)]

    # ---- questions the incremental planner asks ----

    def incremental_ok(self, service_uid: str, address_types: list[str], max_per_slice: int = 0) -> bool:
        """Whether this index is in the shape an incremental plan can safely start from."""
        if self.non_pod_endpoints or self.duplicate_slots or self.deleting:
            return False
        if self.slices and (set(self.owner_uids) != {service_uid}
                            or self.owner_uids[service_uid] != len(self.slices)):
            return False
        # Slices fuller than the limit (the limit was lowered) are fine: like the full path,
        # the incremental one leaves them as they are and never adds to them.
        return all(at in address_types for at in self.address_types)

    def slices_with_ports(self, address_type: str, ports: PortKey) -> Iterator[str]:
        for names in self.fill.get((address_type, ports), {}).values():
            yield from names

    def closest_to_full(
        self, address_type: str, ports: PortKey, n: int, max_per_slice: int, exclude: set[str]
    ) -> str | None:
        """The slice that ends up closest to full when `n` endpoints are added (O(B) buckets)."""
        bucket = self.fill.get((address_type, ports))
        if not bucket:
            return None
        for size in range(max_per_slice - n, -1, -1):
            names = bucket.get(size)
            if not names:
                continue
            candidates = sorted(nm for nm in names if nm not in exclude)
            if candidates:
                return candidates[0]
        return None

    def empty_slices(self, address_type: str) -> list[str]:
        """Slices of this address type holding no endpoints (normally just a placeholder)."""
        out: list[str] = []
        for (at, _ports), bucket in self.fill.items():
            if at == address_type and bucket.get(0):
                out.extend(sorted(bucket[0]))
        return out

    def address_type_count(self, address_type: str) -> int:
        return self.address_types.get(address_type, 0)


def _owner_uids(s: SliceValue) -> set[str]:
    return {
        r.get("uid", "")
        for r in s.owner_references
        if r.get("kind") == "Service" and r.get("apiVersion") == "v1"
    }


def _service_key(s: SliceValue) -> str | None:
    svc = s.labels.get(LABEL_SERVICE_NAME)
    return f"{s.namespace}/{svc}" if svc else None


class SliceIndex:
    """ServiceSlices for every Service, fed by EndpointSlice informer events."""

    def __init__(self) -> None:
        self._by_service: dict[str, ServiceSlices] = {}
        self._service_of: dict[tuple[str, str], str] = {}  # (namespace, slice name) -> service key

    def service(self, key: str) -> ServiceSlices:
        """The index for one Service (empty when it has no slices)."""
        return self._by_service.get(key) or ServiceSlices()

    def has_service(self, key: str) -> bool:
        return key in self._by_service

    def upsert(self, obj: Mapping[str, Any] | SliceValue) -> str | None:
        """Record a slice added or updated; returns its Service key (None if it names none)."""
        s = as_slice_value(obj)
        ident = (s.namespace, s.name)
        key = _service_key(s)
        old_key = self._service_of.get(ident)
        if old_key is not None and old_key != key:
            self._drop(old_key, s.name)
        if key is None:
            self._service_of.pop(ident, None)
            return None
        self._by_service.setdefault(key, ServiceSlices()).put(s)
        self._service_of[ident] = key
        return key

    def delete(self, obj: Mapping[str, Any] | SliceValue) -> str | None:
        s = as_slice_value(obj)
        key = self._service_of.pop((s.namespace, s.name), None)
        if key is not None:
            self._drop(key, s.name)
        return key

    def _drop(self, key: str, name: str) -> None:
        svc = self._by_service.get(key)
        if svc is None:
            return
        svc.remove(name)
        if not svc.slices:
            del self._by_service[key]

    def service_keys(self) -> list[str]:
        return list(self._by_service)
