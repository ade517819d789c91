"""ReplicaSet controller: keeps `spec.replicas` active pods that match the selector.

Pure core: `plan_replicas` (how many pods to create, which ones to delete, in Kubernetes'
deletion preference order), `slow_start_batches`, `pod_from_template`, `calculate_status`, and
`Expectations`, the bookkeeping of writes whose watch events have not arrived yet; a sync never
plans while an expectation is outstanding, so a lagging informer cannot cause double creates.
The shell `ReplicaSetController` watches ReplicaSets and Pods and applies the plans.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sliceplane.api.meta import (
    controller_ref,
    key_of,
    labels_of,
    metadata,
    name_of,
    namespace_of,
    rfc3339,
    split_key,
    uid_of,
)
from sliceplane.api.registry import PODS, REPLICA_SETS
from sliceplane.client.informer import SharedInformerFactory
from sliceplane.controllers.base import QueueController
from sliceplane.controllers.workload_util import (
    EventRecorder,
    WriteTracker,
    controller_ref_to,
    creation_time,
    is_controlled_by,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    mutate,
    plan_claims,
    pod_phase,
    pod_ready_time,
    selector_matches,
    with_owner_ref,
    without_owner_refs,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# At most this many creates or deletes per sync (Kubernetes' --replicaset burst of 500).
BURST_REPLICAS = 500
# Creates go out in batches of 1, 2, 4, 8, ...: a failing template costs one failed call, not N.
SLOW_START_INITIAL_BATCH = 1
# An expectation not met within 5 minutes is considered lost (its watch event will not come).
EXPECTATIONS_TTL = 300.0
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"

RS_API_VERSION = "apps/v1"
RS_KIND = "ReplicaSet"


# --- pure planning -----------------------------------------------------------------------------


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """Batch sizes that add up to `count`, doubling from `initial`."""
    out: list[int] = []
    size = max(1, initial)
    remaining = count
    while remaining > 0:
        batch = min(size, remaining)
        out.append(batch)
        remaining -= batch
        size *= 2
    return out


def _deletion_cost(pod: Obj) -> int:
    text = (metadata(pod).get("annotations") or {}).get(DELETION_COST)
    if text is None:
        return 0
    try:
        return int(text)
    except ValueError:
        return 0


_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def _max_restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _log_rank(t: float, now: float) -> int:
    """log2 of the age in nanoseconds, as an integer bucket (-1 for no age)."""
    age_ns = (now - t) * 1e9
    return int(math.log2(age_ns)) if age_ns > 0 else -1


def _compare_times(t1: float | None, t2: float | None, uid1: str, uid2: str, now: float) -> int:
    """-1 when the first pod should go first: the more recent time, compared in log2 buckets."""
    if t1 == t2:
        return 0
    if t1 is None or t2 is None:
        return -1 if t1 is None else 1
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return -1 if uid1 < uid2 else (1 if uid1 > uid2 else 0)
    return -1 if diff < 0 else 1


@dataclass(frozen=True, slots=True)
class _DeletionFacts:
    """What the deletion order compares, read once per pod instead of once per comparison."""

    unassigned: bool
    phase: int
    ready: bool
    cost: int
    rank: int
    ready_time: float | None
    restarts: int
    created: float | None
    uid: str


def _facts(pod: Obj, rank: int) -> _DeletionFacts:
    ready = is_pod_ready(pod)
    return _DeletionFacts(
        unassigned=not (pod.get("spec") or {}).get("nodeName"),
        phase=_PHASE_ORDER.get(pod_phase(pod), 0),
        ready=ready,
        cost=_deletion_cost(pod),
        rank=rank,
        ready_time=pod_ready_time(pod) if ready else None,
        restarts=_max_restarts(pod),
        created=creation_time(pod),
        uid=uid_of(pod),
    )


def _compare_for_deletion(a: _DeletionFacts, b: _DeletionFacts, now: float) -> int:
    """Kubernetes' ActivePodsWithRanks order: the pod to delete first sorts first."""
    # 1. unassigned before assigned
    if a.unassigned != b.unassigned:
        return -1 if a.unassigned else 1
    # 2. pending before unknown before running
    if a.phase != b.phase:
        return -1 if a.phase < b.phase else 1
    # 3. not ready before ready
    if a.ready != b.ready:
        return -1 if not a.ready else 1
    # 4. lower pod-deletion-cost first
    if a.cost != b.cost:
        return -1 if a.cost < b.cost else 1
    # 5. pods doubled up on a node (higher rank) first
    if a.rank != b.rank:
        return -1 if a.rank > b.rank else 1
    # 6. ready for less time first
    if a.ready and b.ready:
        c = _compare_times(a.ready_time, b.ready_time, a.uid, b.uid, now)
        if c:
            return c
    # 7. more container restarts first
    if a.restarts != b.restarts:
        return -1 if a.restarts > b.restarts else 1
    # 8. newer first
    return _compare_times(a.created, b.created, a.uid, b.uid, now)


def deletion_order(pods: Sequence[Obj], related_pods: Iterable[Obj], now: float) -> list[Obj]:
    """Pods sorted so that the ones Kubernetes would delete first come first.

    The rank of a pod is how many active related pods (of the same owner's ReplicaSets) share
    its node: pods doubled up on a node go before pods alone on theirs.
    """
    on_node: dict[str, int] = {}
    for p in related_pods:
        if is_pod_active(p):
            node = (p.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(_facts(p, on_node.get((p.get("spec") or {}).get("nodeName") or "", 0)), p) for p in pods]
    ranked.sort(key=functools.cmp_to_key(lambda a, b: _compare_for_deletion(a[0], b[0], now)))
    return [p for _, p in ranked]


@dataclass(frozen=True, slots=True)
class ReplicaPlan:
    create: int = 0
    delete: list[Obj] = field(default_factory=list)


def desired_replicas(rs: Obj) -> int:
    r = (rs.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def plan_replicas(
    rs: Obj, active_pods: Sequence[Obj], related_pods: Iterable[Obj], now: float, burst: int = BURST_REPLICAS
) -> ReplicaPlan:
    """Creates or deletes that bring the active owned pods to spec.replicas (at most `burst`)."""
    diff = len(active_pods) - desired_replicas(rs)
    if diff < 0:
        return ReplicaPlan(create=min(-diff, burst))
    if diff > 0:
        n = min(diff, burst)
        if n >= len(active_pods):
            return ReplicaPlan(delete=list(active_pods))
        return ReplicaPlan(delete=deletion_order(active_pods, related_pods, now)[:n])
    return ReplicaPlan()


def pod_from_template(rs: Obj) -> Obj:
    """The pod the ReplicaSet creates: its template, generateName `<rs>-`, controlled by the RS."""
    template = (rs.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    meta: Obj = {
        "generateName": f"{name_of(rs)}-",
        "namespace": namespace_of(rs),
        "ownerReferences": [controller_ref_to(rs, RS_API_VERSION, RS_KIND)],
    }
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


def calculate_status(rs: Obj, active_pods: Sequence[Obj], now: float, failure: tuple[str, str] | None = None) -> Obj:
    """The status the RS should have; `failure` is (reason, message) of a failed create/delete."""
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully_labeled = ready = available = 0
    for pod in active_pods:
        labels = labels_of(pod)
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully_labeled += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    old = rs.get("status") or {}
    conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    old_failure = next((c for c in old.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
    if failure is not None:
        if old_failure is not None:
            conditions.append(old_failure)
        else:
            conditions.append({
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": rfc3339(now),
                "reason": failure[0],
                "message": failure[1],
            })
    status: Obj = {"replicas": len(active_pods)}
    if fully_labeled:
        status["fullyLabeledReplicas"] = fully_labeled
    if ready:
        status["readyReplicas"] = ready
    if available:
        status["availableReplicas"] = available
    generation = metadata(rs).get("generation")
    if generation:
        status["observedGeneration"] = generation
    if conditions:
        status["conditions"] = conditions
    return status


_STATUS_COUNTS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration")


def status_changed(old: Obj | None, new: Obj) -> bool:
    """True when a write is needed; absent counts equal zero, as the API omits zero values."""
    old = old or {}
    for k in _STATUS_COUNTS:
        if int(old.get(k) or 0) != int(new.get(k) or 0):
            return True
    return (old.get("conditions") or []) != (new.get("conditions") or [])


def available_requeue_after(rs: Obj, status: Obj) -> float | None:
    """Ready pods become available after minReadySeconds with no event; look again then."""
    min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    if min_ready <= 0:
        return None
    ready, available = int(status.get("readyReplicas") or 0), int(status.get("availableReplicas") or 0)
    if ready > available:
        return float(min_ready)
    return None


@dataclass
class _Expectation:
    adds: int
    deletes: set[str]
    timestamp: float


class Expectations:
    """Writes a controller made and has not yet seen in its informer, per controller key."""

    def __init__(self, ttl: float = EXPECTATIONS_TTL) -> None:
        self.ttl = ttl
        self._by_key: dict[str, _Expectation] = {}

    def expect_creations(self, key: str, count: int, now: float) -> None:
        self._by_key[key] = _Expectation(count, set(), now)

    def expect_deletions(self, key: str, pod_keys: Iterable[str], now: float) -> None:
        self._by_key[key] = _Expectation(0, set(pod_keys), now)

    def creation_observed(self, key: str, count: int = 1) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.adds -= count

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.deletes.discard(pod_key)

    def satisfied(self, key: str, now: float) -> bool:
        e = self._by_key.get(key)
        if e is None:
            return True
        if e.adds <= 0 and not e.deletes:
            return True
        return now - e.timestamp > self.ttl

    def pending(self, key: str) -> tuple[int, int]:
        """(creates, deletes) still expected."""
        e = self._by_key.get(key)
        return (0, 0) if e is None else (max(0, e.adds), len(e.deletes))

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)


# --- shell -------------------------------------------------------------------------------------


def _by_namespace(obj: Obj) -> list[str]:
    return [namespace_of(obj)]


def _by_controller_uid(obj: Obj) -> list[str]:
    ref = controller_ref(obj)
    return [ref["uid"]] if ref is not None and ref.get("uid") else []


def _orphan_namespace(obj: Obj) -> list[str]:
    return [namespace_of(obj)] if controller_ref(obj) is None else []


class ReplicaSetController(QueueController):
    """Watches ReplicaSets and Pods; one sync per RS key keeps its pods and status in line."""

    def __init__(self, client: Any, workers: int = 5, *, burst_replicas: int = BURST_REPLICAS,
                 record_events: bool = True, informers: SharedInformerFactory | None = None) -> None:
        from sliceplane.client.workqueue import WorkQueue

        super().__init__(client, informers)
        self.workers = workers
        self.burst_replicas = burst_replicas
        self.rs_informer = self._informer(REPLICA_SETS)
        self.pod_informer = self._informer(PODS)
        self.rs_informer.add_index("namespace", _by_namespace)
        # Pods by controller uid, and orphans by namespace: a sync reads its own pods and the
        # orphans it may adopt, never the other pods of a crowded namespace.
        self.pod_informer.add_index("controller", _by_controller_uid)
        self.pod_informer.add_index("orphans", _orphan_namespace)
        self.queue = WorkQueue("replicaset")
        self.expectations = Expectations()
        self.tracker = WriteTracker()  # our status writes, by RS key
        self.recorder = EventRecorder(client, "replicaset-controller", enabled=record_events)
        self.rs_informer.add_handlers(self._on_rs_add, self._on_rs_update, self._on_rs_delete)
        self.pod_informer.add_handlers(self._on_pod_add, self._on_pod_update, self._on_pod_delete)

    async def run(self, workers: int | None = None) -> None:
        await self._run_queue([self.rs_informer, self.pod_informer], self.queue, self.sync, workers or self.workers, log)

    async def wait_idle(self) -> None:
        """Until the caches have synced, the queue is empty and no sync runs (tests, benchmarks)."""
        await self._wait_synced_idle([self.rs_informer, self.pod_informer], self.queue)

    async def stop(self) -> None:
        await self._shutdown(self.queue)
        await self.recorder.close()

    # --- event handlers: only bookkeeping and enqueueing ------------------------------------------

    def _on_rs_add(self, rs: Obj) -> None:
        self.queue.add(key_of(rs))

    def _on_rs_update(self, old: Obj, new: Obj) -> None:
        if uid_of(old) != uid_of(new):
            self.expectations.forget(key_of(old))
        self.queue.add(key_of(new))

    def _on_rs_delete(self, rs: Obj) -> None:
        self.expectations.forget(key_of(rs))
        self.queue.add(key_of(rs))

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != RS_KIND:
            return None
        rs = self.rs_informer.get(f"{namespace}/{ref.get('name', '')}")
        if rs is None or uid_of(rs) != ref.get("uid"):
            return None
        return rs

    def _enqueue_matching(self, pod: Obj) -> None:
        labels = labels_of(pod)
        for rs in self.rs_informer.by_index("namespace", namespace_of(pod)):
            if selector_matches((rs.get("spec") or {}).get("selector"), labels):
                self.queue.add(key_of(rs))

    def _on_pod_add(self, pod: Obj) -> None:
        if metadata(pod).get("deletionTimestamp"):
            self._on_pod_delete(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            rs = self._resolve(namespace_of(pod), ref)
            if rs is not None:
                self.expectations.creation_observed(key_of(rs))
                self.queue.add(key_of(rs))
            return
        self._enqueue_matching(pod)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        if metadata(old).get("resourceVersion") == metadata(new).get("resourceVersion"):
            return
        labels_changed = labels_of(old) != labels_of(new)
        if metadata(new).get("deletionTimestamp"):
            self._on_pod_delete(new)
            if labels_changed:
                self._on_pod_delete(old)
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        ref_changed = (old_ref or {}).get("uid") != (new_ref or {}).get("uid")
        if ref_changed and old_ref is not None:
            rs = self._resolve(namespace_of(old), old_ref)
            if rs is not None:
                self.queue.add(key_of(rs))
        if new_ref is not None:
            rs = self._resolve(namespace_of(new), new_ref)
            if rs is not None:
                self.queue.add(key_of(rs))
            return
        if labels_changed or ref_changed:
            self._enqueue_matching(new)

    def _on_pod_delete(self, pod: Obj) -> None:
        rs = self._resolve(namespace_of(pod), controller_ref(pod))
        if rs is None:
            return
        self.expectations.deletion_observed(key_of(rs), key_of(pod))
        self.queue.add(key_of(rs))

    # --- sync ----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, _ = split_key(key)
        rs = self.rs_informer.get(key)
        if rs is None:
            self.expectations.forget(key)
            self.tracker.forget(key)
            return
        now = time.time()
        if self.tracker.stale(key, rs, now):
            self.queue.add_after(key, 1.0)  # normally the watch event of our write comes first
            return
        needs_sync = self.expectations.satisfied(key, now)
        candidates = self.pod_informer.by_index("controller", uid_of(rs)) + self.pod_informer.by_index(
            "orphans", namespace)
        active = [p for p in candidates if is_pod_active(p)]
        owned = await self._claim(rs, active)

        failure: tuple[str, str] | None = None
        error: Exception | None = None
        if needs_sync and not metadata(rs).get("deletionTimestamp"):
            failure, error = await self._manage(key, rs, owned, self._related(rs, owned), now)

        status = calculate_status(rs, owned, time.time(), failure)
        if status_changed(rs.get("status"), status):
            await self._write_status(rs, status)
        after = available_requeue_after(rs, status)
        if after is not None:
            self.queue.add_after(key, after)
        if error is not None:
            raise error

    def _related(self, rs: Obj, owned: list[Obj]) -> list[Obj]:
        """Active pods of every ReplicaSet sharing this one's controller (a Deployment's RSes)."""
        owner = controller_ref(rs)
        related = list(owned)
        if owner is not None:
            for other in self.rs_informer.by_index("namespace", namespace_of(rs)):
                if other is not rs and uid_of(other) != uid_of(rs) and (
                        controller_ref(other) or {}).get("uid") == owner.get("uid"):
                    related += [p for p in self.pod_informer.by_index("controller", uid_of(other))
                                if is_pod_active(p)]
        return related

    async def _claim(self, rs: Obj, active: list[Obj]) -> list[Obj]:
        plan = plan_claims(rs, (rs.get("spec") or {}).get("selector"), active)
        owned = list(plan.owned)
        if not plan.adopt and not plan.release:
            return owned
        ref = controller_ref_to(rs, RS_API_VERSION, RS_KIND)
        if plan.adopt:
            # Adopt only if the RS still exists as we know it (not replaced, not being deleted).
            fresh = await self._get_or_none(REPLICA_SETS, name_of(rs), namespace_of(rs))
            if fresh is not None and uid_of(fresh) == uid_of(rs) and not metadata(fresh).get("deletionTimestamp"):
                for pod in plan.adopt:
                    adopted = await mutate(
                        self.client, PODS, name_of(pod), namespace_of(pod),
                        lambda cur: None if controller_ref(cur) is not None or cur.get("metadata", {}).get(
                            "deletionTimestamp") else with_owner_ref(cur, ref),
                    )
                    if adopted is not None:
                        owned.append(adopted)
        for pod in plan.release:
            await mutate(
                self.client, PODS, name_of(pod), namespace_of(pod),
                lambda cur: without_owner_refs(cur, [uid_of(rs)]) if is_controlled_by(cur, rs) else None,
            )
        return owned

    async def _get_or_none(self, info: Any, name: str, namespace: str) -> Obj | None:
        try:
            return await self.client.get(info, name, namespace)
        except Exception as e:
            if getattr(e, "code", None) == 404:
                return None
            raise

    async def _manage(
        self, key: str, rs: Obj, owned: list[Obj], related: list[Obj], now: float
    ) -> tuple[tuple[str, str] | None, Exception | None]:
        plan = plan_replicas(rs, owned, related, now, self.burst_replicas)
        if plan.create:
            self.expectations.expect_creations(key, plan.create, now)
            template = pod_from_template(rs)
            created = 0
            error: Exception | None = None
            for batch in slow_start_batches(plan.create):
                results = await asyncio.gather(
                    *(self.client.create(PODS, copy.deepcopy(template), namespace_of(rs)) for _ in range(batch)),
                    return_exceptions=True,
                )
                errors = [r for r in results if isinstance(r, BaseException)]
                created += len(results) - len(errors)
                for r in results:
                    if isinstance(r, BaseException):
                        self._event(rs, "Warning", "FailedCreate", f"Error creating: {r}")
                    else:
                        self._event(rs, "Normal", "SuccessfulCreate", f"Created pod: {name_of(r)}")
                if errors:
                    error = errors[0] if isinstance(errors[0], Exception) else RuntimeError(str(errors[0]))
                    break
            skipped = plan.create - created
            if skipped:
                self.expectations.creation_observed(key, skipped)
            if error is not None:
                return ("FailedCreate", str(error)), error
            return None, None
        if plan.delete:
            pod_keys = [key_of(p) for p in plan.delete]
            self.expectations.expect_deletions(key, pod_keys, now)
            results = await asyncio.gather(
                *(self.client.delete(PODS, name_of(p), namespace_of(p)) for p in plan.delete),
                return_exceptions=True,
            )
            first: Exception | None = None
            for pod, pod_key, r in zip(plan.delete, pod_keys, results, strict=True):
                if not isinstance(r, BaseException):
                    self._event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name_of(pod)}")
                if isinstance(r, BaseException):
                    self.expectations.deletion_observed(key, pod_key)
                    if getattr(r, "code", None) != 404 and first is None:
                        first = r if isinstance(r, Exception) else RuntimeError(str(r))
            if first is not None:
                return ("FailedDelete", str(first)), first
        return None, None

    def _event(self, rs: Obj, event_type: str, reason: str, message: str) -> None:
        self.recorder.record(rs, RS_API_VERSION, RS_KIND, event_type, reason, message, time.time())

    async def _write_status(self, rs: Obj, status: Obj) -> None:
        obj = copy.deepcopy(rs)
        for _ in range(2):
            obj["status"] = status
            try:
                written = await self.client.update(REPLICA_SETS, obj, subresource="status")
                self.tracker.wrote(key_of(rs), written, time.time())
                return
            except Exception as e:
                if getattr(e, "code", None) == 404:
                    return
                if getattr(e, "code", None) != 409:
                    raise
            fresh = await self._get_or_none(REPLICA_SETS, name_of(rs), namespace_of(rs))
            if fresh is None or uid_of(fresh) != uid_of(rs):
                return
            obj = fresh
        raise RuntimeError(f"conflict writing status of replicaset {key_of(rs)}")
