"""Pure helpers shared by the workload controllers (ReplicaSet, Deployment) and the GC.

Ownership (claiming, adopting, releasing), pod activity and availability, label selectors in
their `matchLabels` / `matchExpressions` form, and the small mutate-and-retry shell helper.
Everything but `mutate` takes values and returns values; time arrives as an argument.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sliceplane.api.meta import controller_ref, labels_of, metadata, namespace_of, parse_time, uid_of
from sliceplane.controllers.base import Busy, run_workers, synced_or_stopped, wait_idle  # noqa: F401 - re-exported

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"


# --- label selectors (metav1.LabelSelector as a dict) -------------------------------------------


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: None selects nothing, `{}` selects everything."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In" and (key not in labels or labels[key] not in values):
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def selector_is_empty(selector: Mapping[str, Any] | None) -> bool:
    return not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions"))


# --- pods --------------------------------------------------------------------------------------


def pod_phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_pod_active(pod: Obj) -> bool:
    """Counts toward a controller's replicas: not terminal, not being deleted."""
    return pod_phase(pod) not in ("Succeeded", "Failed") and not metadata(pod).get("deletionTimestamp")


def ready_condition(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return None


def is_pod_ready(pod: Obj) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def pod_ready_time(pod: Obj) -> float | None:
    """When a ready pod became ready; None when it is not ready or the time is unknown."""
    cond = ready_condition(pod)
    if cond is None or cond.get("status") != "True" or not cond.get("lastTransitionTime"):
        return None
    try:
        return parse_time(cond["lastTransitionTime"])
    except ValueError:
        return None


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least minReadySeconds (strictly longer, as Kubernetes compares)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = pod_ready_time(pod)
    return since is not None and since + min_ready_seconds < now


def creation_time(obj: Obj) -> float | None:
    ts = metadata(obj).get("creationTimestamp")
    if not ts:
        return None
    try:
        return parse_time(ts)
    except ValueError:
        return None


def by_creation(objs: Iterable[Obj]) -> list[Obj]:
    """Oldest first; ties broken by name, as Kubernetes' ByCreationTimestamp sorts."""
    return sorted(objs, key=lambda o: (creation_time(o) or 0.0, metadata(o).get("name", "")))


# --- ownership ---------------------------------------------------------------------------------


def controller_ref_to(owner: Obj, api_version: str, kind: str, *, block_owner_deletion: bool = True) -> Obj:
    """The ownerReference a controller sets on what it creates or adopts.

    apiVersion and kind are passed in: list items may come without them.
    """
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": metadata(owner).get("name", ""),
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": block_owner_deletion,
    }


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == uid_of(owner)


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    """Which candidates a controller keeps, adopts or releases (Kubernetes' ClaimObject)."""

    owned: list[Obj] = field(default_factory=list)  # controlled and matching: kept
    adopt: list[Obj] = field(default_factory=list)  # orphans that match: take them
    release: list[Obj] = field(default_factory=list)  # controlled but no longer matching: let go


def plan_claims(owner: Obj, selector: Mapping[str, Any] | None, candidates: Iterable[Obj]) -> ClaimPlan:
    """Claim objects by selector and controllerRef; a controller being deleted adopts/releases nothing."""
    owner_uid = uid_of(owner)
    owner_deleting = bool(metadata(owner).get("deletionTimestamp"))
    owner_ns = namespace_of(owner)
    plan = ClaimPlan()
    for obj in candidates:
        ref = controller_ref(obj)
        matches = selector_matches(selector, labels_of(obj))
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if matches:
                plan.owned.append(obj)
            elif not owner_deleting:
                plan.release.append(obj)
            continue
        if owner_deleting or not matches or metadata(obj).get("deletionTimestamp"):
            continue
        if owner_ns and namespace_of(obj) != owner_ns:
            continue
        plan.adopt.append(obj)
    return plan


def with_owner_ref(obj: Obj, ref: Obj) -> Obj:
    """A copy of `obj` that lists `ref` (replacing any reference with the same uid)."""
    out = copy.deepcopy(obj)
    refs = [r for r in metadata(out).get("ownerReferences") or [] if r.get("uid") != ref.get("uid")]
    out.setdefault("metadata", {})["ownerReferences"] = [*refs, dict(ref)]
    return out


def without_owner_refs(obj: Obj, uids: Iterable[str]) -> Obj:
    """A copy of `obj` without the ownerReferences to `uids` (the field is dropped when empty)."""
    drop = set(uids)
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") not in drop]
    if refs:
        meta["ownerReferences"] = refs
    else:
        meta.pop("ownerReferences", None)
    return out


def without_finalizer(obj: Obj, finalizer: str) -> Obj:
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    rest = [f for f in meta.get("finalizers") or [] if f != finalizer]
    if rest:
        meta["finalizers"] = rest
    else:
        meta.pop("finalizers", None)
    return out


# --- shell helper ------------------------------------------------------------------------------


async def mutate(
    client: Any, info: Any, name: str, namespace: str | None, fn: Callable[[Obj], Obj | None], *, attempts: int = 5
) -> Obj | None:
    """GET, apply `fn`, PUT; retried on 409 Conflict. `fn` returns None when nothing must change.

    Returns the written object, or None when the object is gone or needed no change.
    """
    for _ in range(attempts):
        try:
            current = await client.get(info, name, namespace)
        except Exception as e:  # ApiError
            if getattr(e, "code", None) == 404:
                return None
            raise
        desired = fn(current)
        if desired is None:
            return None
        try:
            return await client.update(info, desired)
        except Exception as e:
            code = getattr(e, "code", None)
            if code == 404:
                return None
            if code == 409:
                continue
            raise
    raise RuntimeError(f"too many conflicts updating {info.plural} {namespace}/{name}")


def _rv(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


class WriteTracker:
    """The resourceVersion of our last write per key, so a sync never plans from an older cache.

    Planning from a copy older than our own write would redo the write and fail with a
    conflict; the watch event of the write requeues the key anyway. An entry older than `ttl`
    seconds is dropped (its event was lost, e.g. the object was deleted before we saw it).
    """

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._written: dict[str, tuple[int, float]] = {}

    def wrote(self, key: str, obj_or_rv: Obj | str | None, now: float) -> None:
        rv = _rv(obj_or_rv if isinstance(obj_or_rv, str) or obj_or_rv is None
                 else (obj_or_rv.get("metadata") or {}).get("resourceVersion"))
        if rv is not None and rv > self._written.get(key, (0, 0.0))[0]:
            self._written[key] = (rv, now)

    def stale(self, key: str, cached: Obj | None, now: float) -> bool:
        """True while the cached copy (None: not cached yet) is older than what we wrote."""
        entry = self._written.get(key)
        if entry is None:
            return False
        want, at = entry
        if now - at > self.ttl:
            del self._written[key]
            return False
        have = _rv((cached.get("metadata") or {}).get("resourceVersion")) if cached is not None else None
        if have is None:
            return cached is None
        if have >= want:
            del self._written[key]
            return False
        return True

    def forget(self, key: str) -> None:
        self._written.pop(key, None)


# --- events --------------------------------------------------------------------------------------


def event_for(obj: Obj, api_version: str, kind: str, event_type: str, reason: str, message: str, component: str,
              now: float, seq: int = 0) -> Obj:
    """A core/v1 Event about `obj`, named `<name>.<hex nanoseconds>` as client-go names them."""
    from sliceplane.api.meta import name_of, rfc3339

    md = metadata(obj)
    ts = rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name_of(obj)}.{int(now * 1e9) + seq:x}", "namespace": namespace_of(obj) or "default"},
        "involvedObject": {
            "apiVersion": api_version,
            "kind": kind,
            "name": name_of(obj),
            "namespace": namespace_of(obj),
            "uid": uid_of(obj),
            "resourceVersion": md.get("resourceVersion", ""),
        },
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": {"component": component},
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": "",
    }


class EventRecorder:
    """Fire-and-forget Events (what `kubectl describe` lists); never slows or fails a sync.

    At most `max_in_flight` creates run at once; beyond that events are dropped and counted.
    """

    def __init__(self, client: Any, component: str, *, enabled: bool = True, max_in_flight: int = 256) -> None:
        self.client = client
        self.component = component
        self.enabled = enabled
        self.max_in_flight = max_in_flight
        self.dropped = 0
        self._seq = 0
        self._tasks: set[Any] = set()

    def record(self, obj: Obj, api_version: str, kind: str, event_type: str, reason: str, message: str,
               now: float) -> None:
        import asyncio

        if not self.enabled:
            return
        if len(self._tasks) >= self.max_in_flight:
            self.dropped += 1
            return
        self._seq += 1
        body = event_for(obj, api_version, kind, event_type, reason, message, self.component, now, self._seq)
        task = asyncio.ensure_future(self._send(body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, body: Obj) -> None:
        from sliceplane.api.registry import EVENTS

        try:
            await self.client.create(EVENTS, body, body["metadata"]["namespace"])
        except Exception as e:  # an event is best effort
            self.dropped += 1
            import logging

            logging.getLogger(__name__).debug("event %s not recorded: %s", body["reason"], e)

    async def close(self) -> None:
        import asyncio

        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
