"""Namespace controller: empties a terminating namespace, then releases its `kubernetes` finalizer.

A namespace with a deletionTimestamp keeps `spec.finalizers: ["kubernetes"]` until everything in
it is gone. Each sync deletes what is left (objects already terminating are waited for, e.g.
pods in their grace period), and once nothing remains PUTs `/api/v1/namespaces/NAME/finalize`
without that finalizer; the API server then removes the namespace.
Pure core: `plan_namespace_cleanup`; shell: `NamespaceController`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sliceplane.api.meta import metadata, name_of, parse_time, rfc3339, uid_of
from sliceplane.api.registry import NAMESPACES, RESOURCES, ResourceInfo
from sliceplane.client.informer import SharedInformerFactory
from sliceplane.controllers.base import QueueController

log = logging.getLogger(__name__)

Obj = dict[str, Any]

FINALIZER = "kubernetes"
# Re-check a namespace whose content is still terminating when the soonest grace period ends,
# but at least every RECHECK_MAX seconds (kubelets often finish before the grace period does,
# and we do not watch every kind) and at most every RECHECK_MIN seconds.
RECHECK_MIN = 0.2
RECHECK_MAX = 1.0


def namespaced_resources(resources: Iterable[ResourceInfo] = RESOURCES) -> list[ResourceInfo]:
    """Every namespaced kind that can be listed and deleted, i.e. what a namespace can contain."""
    return [r for r in resources if r.namespaced and "list" in r.verbs and "delete" in r.verbs]


@dataclass(frozen=True, slots=True)
class NamespacePlan:
    deletes: list[tuple[ResourceInfo, Obj]] = field(default_factory=list)
    finalize: Obj | None = None  # the namespace with the `kubernetes` finalizer removed, to PUT
    remaining: int = 0
    status: Obj | None = None  # new status (conditions) when it changed
    recheck_after: float | None = None


def _condition(ctype: str, status: str, reason: str, message: str, now: float, old: Obj | None) -> Obj:
    ts = rfc3339(now)
    if old is not None and old.get("status") == status and old.get("reason") == reason \
            and old.get("message") == message:
        return old
    return {"type": ctype, "status": status, "lastTransitionTime": ts, "reason": reason, "message": message}


def _content_status(ns: Obj, remaining: Mapping[str, int], finalizers: Mapping[str, int], now: float) -> Obj:
    """The deletion conditions `kubectl describe namespace` shows while a namespace drains.

    Discovery and parsing cannot fail here (the kinds come from our own registry) and deletes
    that fail are retried, so those three conditions are always False.
    """
    status = copy.deepcopy(ns.get("status") or {})
    old_by_type = {c.get("type"): c for c in status.get("conditions") or []}
    wanted: list[tuple[str, str, str, str]] = [
        ("NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered", "All resources successfully discovered"),
        ("NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions",
         "All legacy kube types successfully parsed"),
        ("NamespaceDeletionContentFailure", "False", "ContentDeleted",
         "All content successfully deleted, may be waiting on finalization"),
    ]
    if remaining:
        wanted.append(("NamespaceContentRemaining", "True", "SomeResourcesRemain",
                       "Some resources are remaining: " + ", ".join(
                           f"{plural} has {n} resource instances" for plural, n in sorted(remaining.items()))))
    else:
        wanted.append(("NamespaceContentRemaining", "False", "ContentRemoved", "All content successfully removed"))
    if finalizers:
        wanted.append(("NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
                       "Some content in the namespace has finalizers remaining: " + ", ".join(
                           f"{f} in {n} resource instances" for f, n in sorted(finalizers.items()))))
    else:
        wanted.append(("NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers",
                       "All content-preserving finalizers finished"))
    kinds = {w[0] for w in wanted}
    conds = [c for c in status.get("conditions") or [] if c.get("type") not in kinds]
    conds += [_condition(t, st, reason, msg, now, old_by_type.get(t)) for t, st, reason, msg in wanted]
    status["conditions"] = conds
    return status


def plan_namespace_cleanup(ns: Obj, contents: Mapping[ResourceInfo, list[Obj]], now: float) -> NamespacePlan:
    """What one sync of a namespace does, given everything still in it by kind."""
    if not metadata(ns).get("deletionTimestamp"):
        return NamespacePlan()
    finalizers = list((ns.get("spec") or {}).get("finalizers") or [])
    if FINALIZER not in finalizers:
        return NamespacePlan()
    deletes: list[tuple[ResourceInfo, Obj]] = []
    remaining: dict[str, int] = {}
    finalizers_left: dict[str, int] = {}
    soonest: float | None = None
    for info, objs in contents.items():
        for obj in objs:
            remaining[info.qualified] = remaining.get(info.qualified, 0) + 1
            for f in metadata(obj).get("finalizers") or []:
                finalizers_left[f] = finalizers_left.get(f, 0) + 1
            ts = metadata(obj).get("deletionTimestamp")
            if not ts:
                deletes.append((info, obj))
                continue
            try:
                due = parse_time(ts)
            except ValueError:
                continue
            soonest = due if soonest is None else min(soonest, due)
    total = sum(remaining.values())
    status = _content_status(ns, remaining, finalizers_left, now)
    new_status = status if status != (ns.get("status") or {}) else None
    if total == 0:
        out = copy.deepcopy(ns)
        out.setdefault("spec", {})["finalizers"] = [f for f in finalizers if f != FINALIZER]
        return NamespacePlan(finalize=out, status=new_status)
    if deletes:
        after = RECHECK_MIN
    elif soonest is not None:
        after = min(RECHECK_MAX, max(RECHECK_MIN, soonest - now))
    else:
        after = RECHECK_MAX / 2  # waiting on finalizers someone else removes
    return NamespacePlan(deletes=deletes, remaining=total, status=new_status, recheck_after=after)


class NamespaceController(QueueController):
    """Watches Namespaces; a terminating one is drained by listing and deleting its content."""

    def __init__(self, client: Any, workers: int = 2, *, resources: Iterable[ResourceInfo] | None = None,
                 informers: SharedInformerFactory | None = None) -> None:
        from sliceplane.client.workqueue import WorkQueue

        super().__init__(client, informers)
        self.workers = workers
        self.resources = namespaced_resources(resources if resources is not None else RESOURCES)
        self.informer = self._informer(NAMESPACES)
        self.queue = WorkQueue("namespace")
        self.informer.add_handlers(self._enqueue, lambda old, new: self._enqueue(new), lambda ns: None)

    def _enqueue(self, ns: Obj) -> None:
        if metadata(ns).get("deletionTimestamp"):
            self.queue.add(name_of(ns))

    async def run(self, workers: int | None = None) -> None:
        await self._run_queue([self.informer], self.queue, self.sync, workers or self.workers, log)

    async def wait_idle(self) -> None:
        """Until the caches have synced, the queue is empty and no sync runs (tests, benchmarks)."""
        await self._wait_synced_idle([self.informer], self.queue)

    async def stop(self) -> None:
        await self._shutdown(self.queue)

    async def sync(self, name: str) -> None:
        ns = self.informer.get(name)
        if ns is None or not metadata(ns).get("deletionTimestamp"):
            return
        lists = await asyncio.gather(*(self.client.list_all(info, name) for info in self.resources))
        contents = {info: list(lst.get("items") or []) for info, lst in zip(self.resources, lists, strict=True)}
        plan = plan_namespace_cleanup(ns, contents, time.time())
        results = await asyncio.gather(
            *(self.client.delete(info, name_of(obj), name, preconditions={"uid": uid_of(obj)})
              for info, obj in plan.deletes),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException) and getattr(r, "code", None) not in (404, 409):
                raise r
        if plan.status is not None:
            obj = copy.deepcopy(ns)
            obj["status"] = plan.status
            try:
                ns = await self.client.update(NAMESPACES, obj, subresource="status")
            except Exception as e:
                if getattr(e, "code", None) == 404:
                    return
                if getattr(e, "code", None) != 409:
                    raise
                ns = await self.client.get(NAMESPACES, name)
        if plan.finalize is not None:
            fin = copy.deepcopy(ns)
            fin.setdefault("spec", {})["finalizers"] = plan.finalize["spec"]["finalizers"]
            try:
                await self.client.update(NAMESPACES, fin, subresource="finalize")
            except Exception as e:
                if getattr(e, "code", None) != 404:
                    raise
            return
        if plan.recheck_after is not None:
            self.queue.add_after(name, plan.recheck_after)
