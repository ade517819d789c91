"""Pure EndpointSlice planning: what to create, update and delete for one Service.

Two planners, one plan type:

- `reconcile` is the full path, in Kubernetes' steps: per address type, group the desired
  endpoints by port mapping; per port mapping (1) keep the desired endpoints already in a slice
  and drop the rest, (2) top up the slices already being rewritten, fullest first, (3) put what
  is left into the unchanged slice that ends up closest to full, or into new slices. Slices of
  port mappings nobody wants go, a placeholder (no ports, no endpoints) stands in for a Service
  without endpoints, and creates reuse slices that would otherwise be deleted. Cost O(P).
- `reconcile_changes` is the incremental path: given the index of the Service's slices and
  the pods that changed since the last sync, it touches only the slices holding those pods and
  the one slice new endpoints go into. Cost O(changed + B). It returns None when the index is
  not in a shape it can start from, and the caller runs `reconcile`.

Both take values (dicts or `SliceValue`s, time as an argument) and return a `SlicePlan`;
nothing here does I/O. A slice whose content would not change is never in a plan, so a
converged Service costs no writes, also right after a restart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sliceplane.api.meta import name_of, uid_of
from sliceplane.controllers import podutil
from sliceplane.controllers.endpointslice.cache import ServiceSlices
from sliceplane.controllers.endpointslice.topology import (
    HintEvent,
    ZoneTopology,
    add_hints,
    remove_hints,
    topology_mode_auto,
)
from sliceplane.controllers.endpointslice.triggertime import format_trigger_time
from sliceplane.controllers.endpointslice.values import (
    ANNOTATION_TRIGGER_TIME,
    EndpointKey,
    EndpointValue,
    PortKey,
    SliceValue,
    as_slice_value,
    check_max_endpoints_per_slice,
    desired_endpoint,
    endpoint_ports,
    needs_zone_hints,
    new_slice,
    pod_to_endpoint,
    prefers_close,
    slice_labels,
    wants_slices,
    with_zone_hints,
    without_hints,
)

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SlicePlan:
    """The writes that bring one Service's slices to the desired state."""

    to_create: tuple[SliceValue, ...] = ()
    to_update: tuple[SliceValue, ...] = ()
    to_delete: tuple[SliceValue, ...] = ()
    # Nodes named by pods but unknown to the cache: those pods were left out; retry later.
    missing_nodes: tuple[str, ...] = ()
    incremental: bool = False
    # Topology-mode Auto only: why hints were disabled (one event per address type), and
    # whether every address type got hints (None: the Service does not ask for Auto).
    events: tuple[HintEvent, ...] = ()
    auto_hints: bool | None = None

    # The names docs/internals.md uses.
    @property
    def create(self) -> tuple[SliceValue, ...]:
        return self.to_create

    @property
    def update(self) -> tuple[SliceValue, ...]:
        return self.to_update

    @property
    def delete(self) -> tuple[SliceValue, ...]:
        return self.to_delete

    @property
    def writes(self) -> int:
        return len(self.to_create) + len(self.to_update) + len(self.to_delete)

    @property
    def empty(self) -> bool:
        return self.writes == 0


# ---- full path ----------------------------------------------------------------------------


def reconcile(
    service: Obj,
    pods: Iterable[Obj],
    nodes_by_name: Mapping[str, Obj],
    existing_slices: Iterable[SliceValue | Mapping[str, Any]],
    max_endpoints_per_slice: int = 100,
    trigger_time: float | None = None,
    topology: ZoneTopology | None = None,
) -> SlicePlan:
    """Plan the Service's slices from all its pods and all its current managed slices.

    `pods` are the pods the Service selects (others are ignored), `existing_slices` the
    managed slices labelled with the Service's name, `trigger_time` the value of the
    last-change-trigger-time annotation for written slices (None removes it), `topology`
    the zones' CPU shares for topology-mode Auto (None: Auto Services get no hints, with a
    reason).
    """
    max_eps = check_max_endpoints_per_slice(max_endpoints_per_slice)
    existing = [s for s in (as_slice_value(x) for x in existing_slices) if not s.deleting]
    existing.sort(key=lambda s: s.name)
    if not wants_slices(service):
        return SlicePlan(to_delete=tuple(existing))

    address_types = podutil.service_address_types(service)
    selected = sorted((p for p in pods if podutil.service_selects(service, p)), key=name_of)
    creates: list[SliceValue] = []
    updates: list[SliceValue] = []
    deletes: list[SliceValue] = []
    missing: set[str] = set()
    events: list[HintEvent] = []
    topo = topology if topology is not None else ZoneTopology({}, None)
    for at in address_types:
        c, u, d = _reconcile_address_type(
            service, selected, nodes_by_name, [s for s in existing if s.address_type == at], max_eps, at, missing,
            topo, events,
        )
        c, u, d = _reuse_deleted(service, c, u, d)
        creates += c
        updates += u
        deletes += d
    deletes += [s for s in existing if s.address_type not in address_types]
    auto = (not events) if topology_mode_auto(service) else None
    return _finish(service, creates, updates, deletes, trigger_time, missing, incremental=False,
                   events=tuple(events), auto_hints=auto)


def _reconcile_address_type(
    service: Obj,
    pods: list[Obj],
    nodes_by_name: Mapping[str, Obj],
    existing: list[SliceValue],
    max_eps: int,
    address_type: str,
    missing: set[str],
    topology: ZoneTopology,
    events: list[HintEvent],
) -> tuple[list[SliceValue], list[SliceValue], list[SliceValue]]:
    existing_by_ports: dict[PortKey, list[SliceValue]] = {}
    deletes: list[SliceValue] = []
    for s in existing:
        if s.owned_by(service):
            existing_by_ports.setdefault(s.ports, []).append(s)
        else:
            deletes.append(s)  # a slice of an older Service with the same name

    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    desired_by_ports: dict[PortKey, dict[EndpointKey, EndpointValue]] = {}
    for pod in pods:
        if not podutil.should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        ports = endpoint_ports(service, pod)
        desired = desired_by_ports.setdefault(ports, {})
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        node = nodes_by_name.get(node_name) if node_name else None
        if node is None and not publish:
            missing.add(node_name)
            continue
        ep = pod_to_endpoint(pod, node, service, address_type)
        if ep.addresses:
            desired[ep.key] = ep

    creates: list[SliceValue] = []
    updates: list[SliceValue] = []
    for ports, desired in desired_by_ports.items():
        c, u, d = _reconcile_port_mapping(
            service, existing_by_ports.get(ports, []), desired, ports, address_type, max_eps
        )
        creates += c
        updates += u
        deletes += d
    for ports, slices in existing_by_ports.items():
        if ports not in desired_by_ports:
            deletes += slices

    if len(existing) == len(deletes) and not creates:
        placeholder = new_slice(service, address_type, ())
        if len(deletes) == 1 and _same_placeholder(deletes[0], placeholder):
            deletes = []
        else:
            creates.append(placeholder)
    changed = {s.name for s in updates} | {s.name for s in deletes}
    creates, updates = _reconcile_hints(service, creates, updates, [s for s in existing if s.name not in changed],
                                        address_type, topology, events)
    return creates, updates, deletes


def _reconcile_port_mapping(
    service: Obj,
    existing: list[SliceValue],
    desired: dict[EndpointKey, EndpointValue],
    ports: PortKey,
    address_type: str,
    max_eps: int,
) -> tuple[list[SliceValue], list[SliceValue], list[SliceValue]]:
    desired = dict(desired)
    by_name: dict[str, SliceValue] = {}
    unchanged: list[str] = []
    to_update: list[str] = []
    to_delete: list[str] = []

    # 1. keep desired endpoints where they are, drop the others.
    for s in existing:
        by_name[s.name] = s
        kept: list[EndpointValue] = []
        changed = False
        for ep in s.endpoints:
            got = desired.pop(ep.key, None)
            if got is not None:
                kept.append(got)
                if not got.same_beyond_key(ep):
                    changed = True
        labels, labels_changed = slice_labels(service, s.labels)
        if changed or len(kept) != len(s.endpoints):
            if not kept:
                to_delete.append(s.name)
            else:
                by_name[s.name] = dataclasses.replace(s, endpoints=tuple(kept), labels=labels)
                to_update.append(s.name)
        elif labels_changed:
            by_name[s.name] = dataclasses.replace(s, labels=labels)
            to_update.append(s.name)
        else:
            unchanged.append(s.name)

    remaining = list(desired.values())

    # 2. top up the slices being rewritten anyway, fullest first.
    if remaining and to_update:
        for name in sorted(to_update, key=lambda n: (-len(by_name[n].endpoints), n)):
            s = by_name[name]
            room = max_eps - len(s.endpoints)
            if room > 0:
                by_name[name] = dataclasses.replace(s, endpoints=s.endpoints + tuple(remaining[:room]))
                remaining = remaining[room:]
            if not remaining:
                break

    # 3. the rest: into the unchanged slice closest to full, or into new slices.
    creates: list[SliceValue] = []
    while remaining:
        target: SliceValue | None = None
        if len(remaining) < max_eps and unchanged:
            target = _slice_to_fill([by_name[n] for n in unchanged], len(remaining), max_eps)
        if target is None:
            take, remaining = remaining[:max_eps], remaining[max_eps:]
            creates.append(new_slice(service, address_type, ports, tuple(take)))
            continue
        room = max_eps - len(target.endpoints)
        take, remaining = remaining[:room], remaining[room:]
        by_name[target.name] = dataclasses.replace(target, endpoints=target.endpoints + tuple(take))
        unchanged.remove(target.name)
        to_update.append(target.name)

    return creates, [by_name[n] for n in to_update], [by_name[n] for n in to_delete]


def _slice_to_fill(slices: list[SliceValue], n: int, max_eps: int) -> SliceValue | None:
    """The slice that ends up closest to full when n endpoints are added to it, if any fits."""
    best: SliceValue | None = None
    best_diff = max_eps
    for s in slices:
        diff = max_eps - (n + len(s.endpoints))
        if 0 <= diff < best_diff:
            best, best_diff = s, diff
            if diff == 0:
                break
    return best


def _same_placeholder(existing: SliceValue, placeholder: SliceValue) -> bool:
    return (
        existing.namespace == placeholder.namespace
        and dict(existing.labels) == dict(placeholder.labels)
        and [dict(r) for r in existing.owner_references] == [dict(r) for r in placeholder.owner_references]
        and existing.address_type == placeholder.address_type
        and not existing.ports
        and not existing.endpoints
    )


# ---- incremental path ---------------------------------------------------------------------


def reconcile_changes(
    service: Obj,
    index: ServiceSlices,
    changed_pods: Mapping[str, Obj | None],
    nodes_by_name: Mapping[str, Obj],
    max_endpoints_per_slice: int = 100,
    trigger_time: float | None = None,
) -> SlicePlan | None:
    """Plan only what the changed pods require, from the index of the Service's slices.

    `changed_pods` maps each pod name that changed since the last sync to the pod as it is
    now (None: deleted). The index must reflect a converged state for every other pod; the
    caller guarantees that by running `reconcile` first after start, on Service changes and
    on foreign slice changes. Returns None when the index does not allow an incremental plan.
    """
    max_eps = check_max_endpoints_per_slice(max_endpoints_per_slice)
    if not wants_slices(service) or topology_mode_auto(service):
        # Auto hints balance the whole Service: only the full path sees every slice.
        return None
    address_types = podutil.service_address_types(service)
    if not index.incremental_ok(uid_of(service), address_types, max_eps):
        return None
    creates: list[SliceValue] = []
    updates: list[SliceValue] = []
    deletes: list[SliceValue] = []
    missing: set[str] = set()
    names = sorted(changed_pods)
    for at in address_types:
        c, u, d = _changes_for_address_type(service, index, names, changed_pods, nodes_by_name, at, max_eps,
                                            missing)
        c, u, d = _reuse_deleted(service, c, u, d)
        creates += c
        updates += u
        deletes += d
    return _finish(service, creates, updates, deletes, trigger_time, missing, incremental=True)


def _changes_for_address_type(
    service: Obj,
    index: ServiceSlices,
    names: list[str],
    changed_pods: Mapping[str, Obj | None],
    nodes_by_name: Mapping[str, Obj],
    address_type: str,
    max_eps: int,
    missing: set[str],
) -> tuple[list[SliceValue], list[SliceValue], list[SliceValue]]:
    # Copy-on-write endpoint maps of the slices this sync touches.
    modified: dict[str, dict[EndpointKey, EndpointValue]] = {}

    def working(slice_name: str) -> dict[EndpointKey, EndpointValue]:
        eps = modified.get(slice_name)
        if eps is None:
            eps = modified[slice_name] = dict(index.endpoints_of(slice_name))
        return eps

    pending: dict[PortKey, list[EndpointValue]] = {}
    for pod_name in names:
        want, missing_node = desired_endpoint(service, changed_pods[pod_name], nodes_by_name, address_type)
        if missing_node is not None:
            missing.add(missing_node)
        placed = False
        for slice_name, key in index.slot_of(address_type, pod_name):
            s = index.get(slice_name)
            if (want is not None and not placed and s is not None and s.ports == want.ports
                    and key == want.endpoint.key):
                placed = True
                if not index.endpoints_of(slice_name)[key].same_beyond_key(want.endpoint):
                    working(slice_name)[key] = want.endpoint
            else:
                working(slice_name).pop(key, None)
        if want is not None and not placed:
            pending.setdefault(want.ports, []).append(want.endpoint)

    deleted = {n for n, eps in modified.items() if not eps}
    live = {n: eps for n, eps in modified.items() if eps}

    # Top up slices being rewritten anyway (fullest first), then the unchanged slice closest
    # to full, then new slices: the same preference order as the full path.
    creates: list[SliceValue] = []
    for ports, remaining in pending.items():
        candidates = [n for n in live if index.slices[n].ports == ports]
        for name in sorted(candidates, key=lambda n: (-len(live[n]), n)):
            room = max_eps - len(live[name])
            if room <= 0:
                continue
            for ep in remaining[:room]:
                live[name][ep.key] = ep
            remaining = remaining[room:]
            if not remaining:
                break
        while remaining:
            target = None
            if len(remaining) < max_eps:
                target = index.closest_to_full(address_type, ports, len(remaining), max_eps,
                                               exclude=set(modified))
            if target is None:
                take, remaining = remaining[:max_eps], remaining[max_eps:]
                creates.append(new_slice(service, address_type, ports, tuple(take)))
                continue
            eps = working(target)
            live[target] = eps
            for ep in remaining:
                eps[ep.key] = ep
            remaining = []

    # Empty slices only stand in (as the placeholder) while the address type has nothing else.
    for name in index.empty_slices(address_type):
        if name not in modified:
            deleted.add(name)
    live_count = index.address_type_count(address_type) - len(deleted) + len(creates)
    if live_count == 0:
        creates.append(new_slice(service, address_type, ()))
        placeholder = next((n for n in sorted(deleted) if not index.endpoints_of(n)
                            and _same_placeholder(index.slices[n], creates[-1])), None)
        if placeholder is not None:
            creates.pop()
            deleted.discard(placeholder)

    updates = [dataclasses.replace(index.slices[n], endpoints=tuple(eps.values())) for n, eps in sorted(live.items())]
    deletes = [index.slices[n] for n in sorted(deleted)]
    creates, updates = _reconcile_hints(service, creates, updates, [], address_type, ZoneTopology({}), [])
    return creates, updates, deletes


# ---- shared finish ------------------------------------------------------------------------


def _reconcile_hints(
    service: Obj,
    creates: list[SliceValue],
    updates: list[SliceValue],
    unchanged: list[SliceValue],
    address_type: str,
    topology: ZoneTopology,
    events: list[HintEvent],
) -> tuple[list[SliceValue], list[SliceValue]]:
    """Hints for one address type: topology-mode Auto first, then trafficDistribution, else none.

    Unchanged slices whose hints are wrong (missing, stale, or present when none are wanted)
    are rewritten too, so switching hints off clears them everywhere. On the incremental path
    `unchanged` is empty: that path only runs while the Service (and so its hint mode) is
    unchanged, and neither Auto nor a change of mode takes it.
    """
    if topology_mode_auto(service):
        c, u, evs = add_hints(creates, updates, unchanged, topology, address_type)
        events.extend(evs)
        return c, u
    if prefers_close(service):
        updates = updates + [s for s in unchanged if needs_zone_hints(s)]
        return [with_zone_hints(s) for s in creates], [with_zone_hints(s) for s in updates]
    return remove_hints([without_hints(s) for s in creates], [without_hints(s) for s in updates], unchanged)


def _reuse_deleted(
    service: Obj, creates: list[SliceValue], updates: list[SliceValue], deletes: list[SliceValue]
) -> tuple[list[SliceValue], list[SliceValue], list[SliceValue]]:
    """Turn creates into updates of slices that would otherwise be deleted (fewer objects churn).

    Only slices of this Service (by owner uid) and of the same address type are reused; the
    reused slice keeps its name, uid and resourceVersion, and takes the new content.
    """
    creates, updates, deletes = list(creates), list(updates), list(deletes)
    i = 0
    while i < len(deletes) and creates:
        old = deletes[i]
        new = creates[-1]
        if old.address_type == new.address_type and old.owned_by(service):
            creates.pop()
            updates.append(dataclasses.replace(
                new, name=old.name, generate_name=old.generate_name, uid=old.uid,
                resource_version=old.resource_version, annotations=dict(old.annotations), base=old.base,
            ))
            deletes.pop(i)
        else:
            i += 1
    return creates, updates, deletes


def _finish(
    service: Obj,
    creates: list[SliceValue],
    updates: list[SliceValue],
    deletes: list[SliceValue],
    trigger_time: float | None,
    missing: set[str],
    *,
    incremental: bool,
    events: tuple[HintEvent, ...] = (),
    auto_hints: bool | None = None,
) -> SlicePlan:
    if (service.get("metadata") or {}).get("deletionTimestamp"):
        # No new slices for a Service being deleted: the garbage collector would race them.
        creates = []
    return SlicePlan(
        to_create=tuple(_with_trigger_time(s, trigger_time) for s in creates),
        to_update=tuple(_with_trigger_time(s, trigger_time) for s in updates),
        to_delete=tuple(deletes),
        missing_nodes=tuple(sorted(missing)),
        incremental=incremental,
        events=events,
        auto_hints=auto_hints,
    )


def _with_trigger_time(s: SliceValue, trigger_time: float | None) -> SliceValue:
    annotations = dict(s.annotations)
    if trigger_time is not None:
        annotations[ANNOTATION_TRIGGER_TIME] = format_trigger_time(trigger_time)
    else:
        annotations.pop(ANNOTATION_TRIGGER_TIME, None)
    return dataclasses.replace(s, annotations=annotations)
