"""Garbage collector: deletes objects whose owners are gone, and runs the deletion policies.

The graph is every object's ownerReferences, by uid, kept from informers over the registry's
kinds (Events excluded: nothing owns through them). Three jobs, as Kubernetes' GC:
- background: a dependent none of whose owners exists any more is deleted (an owner absent from
  the graph is confirmed absent by a live GET first, so dependents created before their owner
  reached our informers are safe);
- foreground: an owner with deletionTimestamp and the `foregroundDeletion` finalizer gets its
  dependents deleted; once none that blocks it (`blockOwnerDeletion`) remains, the finalizer goes;
- orphan: an owner with the `orphan` finalizer has its ownerReference removed from every
  dependent, then the finalizer goes.
Decisions are the pure functions `classify_owner`, `plan_attempt_to_delete` and
`blocking_dependents`; `GarbageCollector` is the shell.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sliceplane.api.meta import metadata, name_of, namespace_of, uid_of
from sliceplane.api.registry import EVENTS, RESOURCES, ResourceInfo, by_kind
from sliceplane.client.informer import SharedInformerFactory
from sliceplane.controllers.base import QueueController
from sliceplane.controllers.workload_util import (
    mutate,
    run_workers,
    without_finalizer,
    without_owner_refs,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"

OwnerState = Literal["solid", "absent", "waiting"]


# --- pure decisions ----------------------------------------------------------------------------


def owner_refs(obj: Obj) -> list[Obj]:
    return list(metadata(obj).get("ownerReferences") or [])


def is_deleting_dependents(obj: Obj) -> bool:
    md = metadata(obj)
    return bool(md.get("deletionTimestamp")) and FOREGROUND in (md.get("finalizers") or [])


def is_orphaning(obj: Obj) -> bool:
    md = metadata(obj)
    return bool(md.get("deletionTimestamp")) and ORPHAN in (md.get("finalizers") or [])


def classify_owner(ref: Mapping[str, Any], owner: Obj | None) -> OwnerState:
    """What an owner means for its dependent: it exists, it is gone, or it waits for dependents."""
    if owner is None or uid_of(owner) != ref.get("uid"):
        return "absent"
    if is_deleting_dependents(owner):
        return "waiting"
    return "solid"


@dataclass(frozen=True, slots=True)
class GCAction:
    """`none`; `remove_refs` (drop the ownerReferences in `uids`); `delete` with `policy`."""

    kind: Literal["none", "remove_refs", "delete"]
    uids: tuple[str, ...] = ()
    policy: str | None = None


NOTHING = GCAction("none")


def plan_attempt_to_delete(item: Obj, states: Mapping[str, OwnerState], has_dependents: bool) -> GCAction:
    """Kubernetes' attemptToDeleteItem for one dependent, given its owners' states by uid."""
    if metadata(item).get("deletionTimestamp"):
        return NOTHING  # already on its way; its dependents are handled when it is gone
    refs = owner_refs(item)
    if not refs:
        return NOTHING
    solid = [r["uid"] for r in refs if states.get(r.get("uid", "")) == "solid"]
    dangling = [r["uid"] for r in refs if states.get(r.get("uid", "")) == "absent"]
    waiting = [r["uid"] for r in refs if states.get(r.get("uid", "")) == "waiting"]
    if len(solid) + len(dangling) + len(waiting) < len(refs):
        return NOTHING  # some owner's state is unknown: decide later
    if solid:
        if dangling or waiting:
            return GCAction("remove_refs", tuple(dangling + waiting))
        return NOTHING
    if waiting and has_dependents:
        return GCAction("delete", policy="Foreground")
    finalizers = metadata(item).get("finalizers") or []
    if ORPHAN in finalizers:
        return GCAction("delete", policy="Orphan")
    if FOREGROUND in finalizers:
        return GCAction("delete", policy="Foreground")
    return GCAction("delete", policy="Background")


def blocking_dependents(owner_uid: str, dependents: Iterable[Obj]) -> list[Obj]:
    """Dependents that hold up the owner's foreground deletion (blockOwnerDeletion: true)."""
    out = []
    for dep in dependents:
        for ref in owner_refs(dep):
            if ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion"):
                out.append(dep)
                break
    return out


def gc_resources(resources: Iterable[ResourceInfo] = RESOURCES) -> list[ResourceInfo]:
    """Kinds the collector watches: everything listable and watchable but Events."""
    return [r for r in resources if r is not EVENTS and "list" in r.verbs and "watch" in r.verbs]


# --- shell -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Node:
    info: ResourceInfo
    obj: Obj  # the informer's copy (metadata is what matters)

    @property
    def uid(self) -> str:
        return uid_of(self.obj)

    @property
    def namespace(self) -> str | None:
        return namespace_of(self.obj) or None


class GarbageCollector(QueueController):
    """Informers over every kind feed the ownership graph; workers delete, orphan and unblock."""

    def __init__(self, client: Any, workers: int = 5, *, resources: Iterable[ResourceInfo] | None = None,
                 informers: SharedInformerFactory | None = None) -> None:
        from sliceplane.client.workqueue import WorkQueue

        super().__init__(client, informers)
        self.workers = workers
        self.resources = gc_resources(resources if resources is not None else RESOURCES)
        self.informers = {info: self._informer(info) for info in self.resources}
        self.nodes: dict[str, _Node] = {}
        self.dependents: dict[str, set[str]] = {}  # owner uid -> dependent uids
        self.absent_owners: set[str] = set()  # uids confirmed gone by a live GET
        self.delete_queue = WorkQueue("gc-attempt-to-delete")
        self.orphan_queue = WorkQueue("gc-attempt-to-orphan")
        for info, inf in self.informers.items():
            inf.add_handlers(
                lambda obj, info=info: self._observe(info, obj),
                lambda old, new, info=info: self._observe(info, new),
                lambda obj, info=info: self._forget(obj),
            )

    async def run(self, workers: int | None = None) -> None:
        if self._stopped.is_set():
            return
        try:
            if not await self._start_informers(self.informers.values()):
                return
            n = workers or self.workers
            await asyncio.gather(
                run_workers(self.delete_queue, self._attempt_to_delete, n, log, self._busy),
                run_workers(self.orphan_queue, self._attempt_to_orphan, max(1, n // 2), log, self._busy),
            )
        finally:
            await self._cancel_tasks()

    async def wait_idle(self) -> None:
        """Until the caches have synced, the queues are empty and no worker runs (tests, benchmarks)."""
        await self._wait_synced_idle(self.informers.values(), self.delete_queue, self.orphan_queue)

    async def stop(self) -> None:
        await self._shutdown(self.delete_queue, self.orphan_queue)

    # --- graph upkeep (event handlers) -------------------------------------------------------------

    def _observe(self, info: ResourceInfo, obj: Obj) -> None:
        uid = uid_of(obj)
        if not uid:
            return
        old = self.nodes.get(uid)
        self.nodes[uid] = _Node(info, obj)
        self.absent_owners.discard(uid)
        old_owners = {r.get("uid") for r in owner_refs(old.obj)} if old is not None else set()
        new_owners = {r.get("uid") for r in owner_refs(obj)}
        for o in old_owners - new_owners:
            self.dependents.get(o, set()).discard(uid)
            owner = self.nodes.get(o)
            if owner is not None and is_deleting_dependents(owner.obj):
                self.delete_queue.add(o)  # one fewer blocker
        for o in new_owners:
            self.dependents.setdefault(o, set()).add(uid)
        if any(o not in self.nodes for o in new_owners):
            self.delete_queue.add(uid)  # an owner we have not seen: confirm it exists
        elif old is None and any(is_deleting_dependents(self.nodes[o].obj) for o in new_owners):
            self.delete_queue.add(uid)  # created under an owner that waits for its dependents
        if is_deleting_dependents(obj):
            if old is None or not is_deleting_dependents(old.obj):
                for dep in self.dependents.get(uid, ()):
                    self.delete_queue.add(dep)
            self.delete_queue.add(uid)
        if is_orphaning(obj):
            self.orphan_queue.add(uid)

    def _forget(self, obj: Obj) -> None:
        uid = uid_of(obj)
        node = self.nodes.pop(uid, None)
        if node is None:
            return
        for r in owner_refs(node.obj):
            o = r.get("uid", "")
            deps = self.dependents.get(o)
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    self.dependents.pop(o, None)
            owner = self.nodes.get(o)
            if owner is not None and is_deleting_dependents(owner.obj):
                self.delete_queue.add(o)
        for dep in self.dependents.get(uid, ()):
            self.delete_queue.add(dep)

    # --- workers ---------------------------------------------------------------------------------

    async def _attempt_to_delete(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        if is_deleting_dependents(node.obj):
            await self._process_deleting_dependents(node)
            return
        if not owner_refs(node.obj) or metadata(node.obj).get("deletionTimestamp"):
            return
        action = await self._plan_for(node, node.obj)
        if action.kind == "none":
            return
        # Act only on the latest copy: our informer may not yet show that the dependent was
        # released or re-owned (Kubernetes re-reads the item too).
        try:
            latest = await self.client.get(node.info, name_of(node.obj), node.namespace)
        except Exception as e:
            if getattr(e, "code", None) == 404:
                return
            raise
        if uid_of(latest) != uid:
            return
        if owner_refs(latest) != owner_refs(node.obj) or metadata(latest).get("deletionTimestamp"):
            action = await self._plan_for(node, latest)
        if action.kind == "remove_refs":
            drop = set(action.uids)
            await mutate(
                self.client, node.info, name_of(node.obj), node.namespace,
                lambda cur: without_owner_refs(cur, drop) if uid_of(cur) == uid else None,
            )
        elif action.kind == "delete":
            await self._delete(node, action.policy)

    async def _plan_for(self, node: _Node, item: Obj) -> GCAction:
        states: dict[str, OwnerState] = {}
        for ref in owner_refs(item):
            state = await self._owner_state(node, ref)
            if state is not None:
                states[ref["uid"]] = state
        return plan_attempt_to_delete(item, states, bool(self.dependents.get(node.uid)))

    async def _owner_state(self, node: _Node, ref: Obj) -> OwnerState | None:
        """The owner's state from the graph, or from a live GET when the graph has not seen it."""
        owner_uid = ref.get("uid", "")
        if not owner_uid:
            return None
        owner = self.nodes.get(owner_uid)
        if owner is not None:
            return classify_owner(ref, owner.obj)
        if owner_uid in self.absent_owners:
            return "absent"
        info = by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if info is None:
            return None  # a kind we do not serve: never guess that it is gone
        if info.namespaced and not node.namespace:
            return "absent"  # a cluster-scoped object cannot have a namespaced owner
        try:
            live = await self.client.get(info, ref.get("name", ""), node.namespace if info.namespaced else None)
        except Exception as e:
            if getattr(e, "code", None) != 404:
                raise
            live = None
        state = classify_owner(ref, live)
        if state == "absent":
            self.absent_owners.add(owner_uid)
        return state

    async def _delete(self, node: _Node, policy: str | None) -> None:
        try:
            await self.client.delete(node.info, name_of(node.obj), node.namespace, propagation_policy=policy,
                                     preconditions={"uid": node.uid})
        except Exception as e:
            if getattr(e, "code", None) not in (404, 409):
                raise

    async def _process_deleting_dependents(self, owner: _Node) -> None:
        deps = [self.nodes[d].obj for d in self.dependents.get(owner.uid, ()) if d in self.nodes]
        blocking = blocking_dependents(owner.uid, deps)
        if not blocking:
            await self._remove_finalizer(owner, FOREGROUND)
            return
        for dep in blocking:
            if not is_deleting_dependents(dep):
                self.delete_queue.add(uid_of(dep))

    async def _attempt_to_orphan(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None or not is_orphaning(node.obj):
            return
        for dep_uid in list(self.dependents.get(uid, ())):
            dep = self.nodes.get(dep_uid)
            if dep is None:
                continue
            await mutate(
                self.client, dep.info, name_of(dep.obj), dep.namespace,
                lambda cur, dep_uid=dep_uid: without_owner_refs(cur, [uid])
                if uid_of(cur) == dep_uid and any(r.get("uid") == uid for r in owner_refs(cur)) else None,
            )
        await self._remove_finalizer(node, ORPHAN)

    async def _remove_finalizer(self, node: _Node, finalizer: str) -> None:
        await mutate(
            self.client, node.info, name_of(node.obj), node.namespace,
            lambda cur: without_finalizer(cur, finalizer)
            if uid_of(cur) == node.uid and finalizer in (metadata(cur).get("finalizers") or []) else None,
        )
