"""The EndpointSlice controller shell: informers in, plans applied through the REST client.

Handlers only record what changed and enqueue Service keys:
- a Service add/update asks for a full reconcile of that Service;
- a pod add/update/delete marks the pod dirty for each Service that selects it now or did
  before (found through a namespace index of Services), after the batching delay;
- an EndpointSlice event updates the slice index; unless it merely echoes our own write
  (the write tracker knows), it asks for a full reconcile of the slice's Service.

A worker syncing a key plans from the informers' caches: incrementally from the dirty pods
when the Service's slices were last planned by us and nothing else changed, fully otherwise
(first sync after start, Service changes, foreign slice changes, any earlier failure). It
refuses to plan while the informer has not yet shown our own writes (the Service is requeued
with backoff), then applies the plan and records what it wrote.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import Counter as PromCounter

from sliceplane.api.meta import key_of, name_of, namespace_of, split_key, uid_of
from sliceplane.api.registry import ENDPOINT_SLICES, NODES, PODS, SERVICES
from sliceplane.client.informer import SharedInformerFactory
from sliceplane.controllers import podutil
from sliceplane.controllers.base import MAX_RETRIES, QueueController, requeue_or_forget, wait_idle
from sliceplane.controllers.endpointslice.cache import SliceIndex
from sliceplane.controllers.endpointslice.reconciler import SlicePlan, reconcile, reconcile_changes
from sliceplane.controllers.endpointslice.topology import (
    LABEL_ZONE,
    MSG_DISABLED,
    MSG_ENABLED,
    REASON_DISABLED,
    REASON_ENABLED,
    ZoneTopology,
    topology_mode_auto,
    with_address_type,
    zone_topology,
)
from sliceplane.controllers.endpointslice.tracker import WriteTracker
from sliceplane.controllers.endpointslice.triggertime import TriggerTimeTracker
from sliceplane.controllers.endpointslice.values import (
    CONTROLLER_NAME,
    LABEL_MANAGED_BY,
    check_max_endpoints_per_slice,
    is_managed_slice,
    service_key_of_slice,
    wants_slices,
)
from sliceplane.controllers.workload_util import EventRecorder

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Wait at least this long before syncing a Service after someone else changed one of its
# slices, so that bursts of such changes (or the initial list) batch into one sync.
SLICE_CHANGE_MIN_DELAY = 1.0

# A full plan for a Service with at least this many pods runs in a worker thread, so a large
# Service's O(P) plan does not stall the event loop (and with it every watch stream).
FULL_PLAN_IN_THREAD = 2000

SYNCS = PromCounter("endpoint_slice_controller_syncs", "EndpointSlice controller syncs, by result and path",
                    ["result", "path"])
CHANGES = PromCounter("endpoint_slice_controller_changes", "EndpointSlice writes by the controller, by operation",
                      ["operation"])


class StaleCacheError(Exception):
    """The slice informer has not yet shown every write we made for this Service."""


class MissingNodesError(Exception):
    """Some pods name nodes the cache does not know; they were left out and will be retried."""


class _Nodes(Mapping[str, Obj]):
    """The node informer as the read-only mapping the planner takes."""

    def __init__(self, informer: Any) -> None:
        self._informer = informer

    def __getitem__(self, name: str) -> Obj:
        obj = self._informer.get(name)
        if obj is None:
            raise KeyError(name)
        return obj

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        obj = self._informer.get(name)
        return default if obj is None else obj

    def __iter__(self) -> Iterator[str]:
        return iter(self._informer.keys())

    def __len__(self) -> int:
        return len(self._informer)


def _node_topology_shape(node: Obj) -> tuple[Any, ...]:
    """What of a node topology hints depend on: zone, role labels, readiness, allocatable CPU."""
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    status = node.get("status") or {}
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    roles = tuple(sorted(k for k in labels if k.startswith("node-role.kubernetes.io/")))
    return (labels.get(LABEL_ZONE), roles, ready, (status.get("allocatable") or {}).get("cpu"))


def _by_namespace(obj: Obj) -> list[str]:
    return [namespace_of(obj)]


def _service_shape(svc: Obj) -> tuple[Any, ...]:
    """What of a Service its slices depend on: identity, spec, labels, annotations, deletion."""
    meta = svc.get("metadata") or {}
    return (meta.get("uid"), svc.get("spec"), meta.get("labels"), meta.get("annotations"),
            meta.get("deletionTimestamp"))


class EndpointSliceController(QueueController):
    """Keeps every selector Service's EndpointSlices equal to its pods."""

    def __init__(self, client: Any, *, max_endpoints_per_slice: int = 100, workers: int = 5,
                 batch_period: float = 0.0, incremental: bool = True,
                 informers: SharedInformerFactory | None = None) -> None:
        from sliceplane.client.workqueue import WorkQueue

        super().__init__(client, informers)
        self.max_endpoints_per_slice = check_max_endpoints_per_slice(max_endpoints_per_slice)
        self.workers = workers
        self.batch_period = batch_period
        self.incremental = incremental
        self.services = self._informer(SERVICES)
        self.pods = self._informer(PODS)
        self.nodes = self._informer(NODES)
        self.slices = self._informer(ENDPOINT_SLICES, label_selector=f"{LABEL_MANAGED_BY}={CONTROLLER_NAME}")
        self.services.add_index("namespace", _by_namespace)
        self.pods.add_index("namespace", _by_namespace)
        self.queue = WorkQueue("endpoint_slice")
        self.index = SliceIndex()
        self.tracker = WriteTracker()
        self.trigger_times = TriggerTimeTracker()
        self._nodes = _Nodes(self.nodes)
        self._dirty: dict[str, set[str]] = {}  # service key -> pod names changed since its last sync
        self._full: set[str] = set()  # service keys whose next sync must be a full reconcile
        self._planned_uid: dict[str, str] = {}  # service key -> uid of the Service we last planned
        self._waiting_for_node: dict[str, set[str]] = {}  # node name -> service keys that lacked it
        self._topology: ZoneTopology | None = None  # zones' CPU shares; None: recompute from nodes
        self._auto_state: dict[str, str] = {}  # service key -> last hint outcome recorded (Auto)
        self.recorder = EventRecorder(client, "endpoint-slice-controller")
        self.full_plan_in_thread = FULL_PLAN_IN_THREAD
        self.stats: Counter[str] = Counter()  # syncs, full/incremental, stale, errors, create/update/delete

        self.services.add_handlers(self._on_service, self._on_service_update, self._on_service_delete)
        self.pods.add_handlers(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self.slices.add_handlers(self._on_slice, self._on_slice_update, self._on_slice_delete)
        self.nodes.add_handlers(self._on_node_add, self._on_node_update, self._on_node_delete)

    @property
    def writes(self) -> int:
        return self.stats["create"] + self.stats["update"] + self.stats["delete"]

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self, workers: int | None = None) -> None:
        """Run until `stop()`: informers first, workers once every cache has synced."""
        try:
            if not await self._start_informers((self.services, self.pods, self.nodes, self.slices)):
                return
            await self._work_until_stopped(self.queue, self.sync, workers or self.workers, log, self._handle_result)
        finally:
            await self._cancel_tasks()

    async def stop(self) -> None:
        await self._shutdown(self.queue)
        await self.recorder.close()

    async def wait_idle(self, settle: float = 0.05) -> None:
        """Return once nothing is queued, parked or being synced (for tests and benchmarks)."""
        await wait_idle([self.queue], self._busy, settle=settle, include_parked=True)

    # --- handlers: record and enqueue, nothing else -------------------------------------------

    def _on_service(self, svc: Obj) -> None:
        key = key_of(svc)
        self._full.add(key)
        self.queue.add(key)

    def _on_service_update(self, old: Obj, new: Obj) -> None:
        # Status-only writes (load balancer ingress, ...) change no endpoint: no O(P) resync.
        if _service_shape(old) != _service_shape(new):
            self._on_service(new)

    def _on_service_delete(self, svc: Obj) -> None:
        self.queue.add(key_of(svc))

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        ns = namespace_of(pod)
        keys = podutil.services_to_update(self.services.by_index("namespace", ns), old, new)
        for key in keys:
            self._dirty.setdefault(key, set()).add(name_of(pod))
            self.queue.add_after(key, self.batch_period)

    def _on_pod_add(self, pod: Obj) -> None:
        self._pod_changed(None, pod)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        self._pod_changed(old, new)

    def _on_pod_delete(self, pod: Obj) -> None:
        self._pod_changed(pod, None)

    def _on_slice(self, obj: Obj) -> None:
        if not is_managed_slice(obj):
            return
        key = self.index.upsert(obj)
        if key is not None:
            self._after_slice_event(key, self.tracker.observe(key, obj))

    def _on_slice_update(self, old: Obj, new: Obj) -> None:
        old_key = service_key_of_slice(old)
        if not is_managed_slice(new):
            # handed over to someone else: no longer ours to index
            key = self.index.delete(old)
            if key is not None:
                self._after_slice_event(key, True)
            return
        key = self.index.upsert(new)
        if old_key is not None and old_key != key:
            self._after_slice_event(old_key, True)
        if key is not None:
            self._after_slice_event(key, self.tracker.observe(key, new))

    def _on_slice_delete(self, obj: Obj) -> None:
        key = self.index.delete(obj)
        if key is None:
            key = service_key_of_slice(obj)
        if key is not None:
            self._after_slice_event(key, self.tracker.observe_deletion(key, obj))

    def _on_node_add(self, node: Obj) -> None:
        """Pods on a node we did not know were left out; their Services can now include them."""
        for key in self._waiting_for_node.pop(name_of(node), set()):
            self._full.add(key)
            self.queue.add(key)
        self._topology_may_have_changed()

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        # Heartbeats change nothing hints depend on: skip the O(nodes) recomputation for them.
        if _node_topology_shape(old) != _node_topology_shape(new):
            self._topology_may_have_changed()

    def _on_node_delete(self, node: Obj) -> None:
        """Pods on a deleted node leave their Services' slices (Kubernetes' full sync drops them at
        the Service's next sync; the incremental path must be told which pods to look at again)."""
        name = name_of(node)
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") != name:
                continue
            services = self.services.by_index("namespace", namespace_of(pod))
            for key in podutil.services_selecting(services, (pod.get("metadata") or {}).get("labels") or {}):
                self._dirty.setdefault(key, set()).add(name_of(pod))
                self.queue.add_after(key, self.batch_period)
        self._topology_may_have_changed()

    def _topology_may_have_changed(self) -> None:
        """Recompute the zones' CPU shares; if they moved, re-plan every topology-mode Auto Service."""
        if not self.nodes.has_synced:
            self._topology = None
            return
        before = self._topology
        self._topology = zone_topology(self.nodes.list())
        if before is None or before == self._topology:
            return
        log.debug("node topology changed (%s); re-syncing Services with topology-mode Auto",
                  self._topology.problem or dict(self._topology.cpu_ratio_by_zone))
        for svc in self.services.list():
            if topology_mode_auto(svc):
                key = key_of(svc)
                self._full.add(key)
                self.queue.add(key)

    def topology(self) -> ZoneTopology:
        if self._topology is None:
            self._topology = zone_topology(self.nodes.list())
        return self._topology

    def _record_hint_outcome(self, key: str, svc: Obj, plan: SlicePlan) -> None:
        """An Event and a log line when a Service's Auto hints turn on, off, or fail for a new reason."""
        if plan.auto_hints is None:
            if self._auto_state.pop(key, "") == "enabled":
                msg = MSG_DISABLED
                for at in podutil.service_address_types(svc):
                    log.info("topology-mode Auto removed from %s, removing hints", key)
                    self.recorder.record(svc, "v1", "Service", "Warning", REASON_DISABLED,
                                         with_address_type(msg, at), time.time())
            return
        if plan.auto_hints:
            if self._auto_state.get(key) != "enabled":
                self._auto_state[key] = "enabled"
                for at in podutil.service_address_types(svc):
                    log.info("topology aware hints enabled for %s (%s)", key, at)
                    self.recorder.record(svc, "v1", "Service", "Normal", REASON_ENABLED,
                                         with_address_type(MSG_ENABLED, at), time.time())
            return
        outcome = "; ".join(e.message for e in plan.events)
        if self._auto_state.get(key) == outcome:
            return
        self._auto_state[key] = outcome
        for e in plan.events:
            log.info("topology aware hints disabled for %s: %s, removing hints", key, e.message)
            self.recorder.record(svc, "v1", "Service", e.event_type, e.reason, e.message, time.time())

    def _after_slice_event(self, key: str, foreign: bool) -> None:
        if foreign:
            self._full.add(key)
            self.queue.add_after(key, max(SLICE_CHANGE_MIN_DELAY, self.batch_period))
        elif not self.tracker.stale(key) and (self._dirty.get(key) or key in self._full):
            # The cache just caught up with our writes and work is waiting: go now rather than
            # at the end of the stale backoff.
            self.queue.add(key)

    # --- workers ------------------------------------------------------------------------------

    def _handle_result(self, key: str, err: Exception | None) -> None:
        if err is not None:
            self.stats["stale" if isinstance(err, StaleCacheError) else "errors"] += 1
        requeue_or_forget(self.queue, key, err, log, max_retries=MAX_RETRIES,
                          quiet=isinstance(err, StaleCacheError), what="syncing endpoint slices for",
                          queue_name="endpoint slice")

    async def sync(self, key: str) -> None:
        """Bring one Service's slices to the desired state (raises to be retried)."""
        ns, _name = split_key(key)
        svc = self.services.get(key)
        if svc is None:
            await self._service_gone(key)
            return
        uid = uid_of(svc)
        if self.tracker.stale(key, uid):
            SYNCS.labels("stale", "none").inc()
            raise StaleCacheError(f"EndpointSlice informer cache is out of date for {key}")

        dirty = self._dirty.pop(key, set())
        full = key in self._full or self._planned_uid.get(key) != uid or not self.incremental
        self._full.discard(key)
        state = self.index.service(key)
        if not full and not (wants_slices(svc) and state.incremental_ok(
                uid, podutil.service_address_types(svc), self.max_endpoints_per_slice)):
            full = True
        try:
            plan: SlicePlan | None = None
            if not full:
                changed = {n: self.pods.get(f"{ns}/{n}") for n in dirty}
                trigger = self.trigger_times.observe_changes(svc, changed)
                plan = reconcile_changes(svc, state, changed, self._nodes, self.max_endpoints_per_slice, trigger)
            if plan is None:
                pods = [p for p in self.pods.by_index("namespace", ns) if podutil.service_selects(svc, p)]
                trigger = self.trigger_times.observe_all(svc, pods)
                args = (svc, pods, self._nodes, list(state), self.max_endpoints_per_slice, trigger,
                        self.topology())
                if len(pods) >= self.full_plan_in_thread:
                    # Inputs are snapshots of immutable values (and a read-only node lookup), so
                    # planning off the loop is safe; the loop keeps draining watch streams.
                    plan = await asyncio.to_thread(reconcile, *args)
                else:
                    plan = reconcile(*args)
            await self._apply(key, svc, plan)
            self._record_hint_outcome(key, svc, plan)
        except BaseException:
            # Whatever was half done, the next sync starts from the informer's view, fully.
            self._dirty.setdefault(key, set()).update(dirty)
            self._full.add(key)
            SYNCS.labels("error", "full" if full else "incremental").inc()
            raise
        self._planned_uid[key] = uid
        path = "incremental" if plan.incremental else "full"
        self.stats["syncs"] += 1
        self.stats[path] += 1
        SYNCS.labels("success", path).inc()
        if plan.missing_nodes:
            self._full.add(key)
            for node in plan.missing_nodes:
                self._waiting_for_node.setdefault(node, set()).add(key)
            raise MissingNodesError(
                f"pods of {key} name unknown nodes {', '.join(plan.missing_nodes)}; left out for now"
            )

    async def _service_gone(self, key: str) -> None:
        """The Service was deleted: forget it, and delete slices the garbage collector may not."""
        self.trigger_times.delete_service(key)
        self._auto_state.pop(key, None)
        self._dirty.pop(key, None)
        self._full.discard(key)
        self._planned_uid.pop(key, None)
        leftovers = list(self.index.service(key))
        if not leftovers:
            self.tracker.forget_service(key)
            return
        await self._apply(key, None, SlicePlan(to_delete=tuple(leftovers)))

    async def _apply(self, key: str, svc: Obj | None, plan: SlicePlan) -> None:
        from sliceplane.client.rest import ApiError

        ns, _ = split_key(key)
        for s in plan.to_create:
            try:
                created = await self.client.create(ENDPOINT_SLICES, s.to_dict(), ns)
            except ApiError as e:
                if _namespace_terminating(e):
                    return  # creates keep failing in a terminating namespace: drop the work
                raise
            self.tracker.wrote(key, created, self.slices.get(f"{ns}/{name_of(created)}"))
            self._count("create")
        for s in plan.to_update:
            updated = await self.client.update(ENDPOINT_SLICES, s.to_dict())
            self.tracker.wrote(key, updated, self.slices.get(f"{ns}/{s.name}"))
            self._count("update")
        for s in plan.to_delete:
            try:
                await self.client.delete(ENDPOINT_SLICES, s.name, ns)
            except ApiError as e:
                if e.code != 404:
                    raise
                continue
            self.tracker.expect_deletion(key, {"metadata": {"uid": s.uid}}, self.slices.get(f"{ns}/{s.name}"))
            self._count("delete")

    def _count(self, operation: str) -> None:
        self.stats[operation] += 1
        CHANGES.labels(operation).inc()


def _namespace_terminating(e: Any) -> bool:
    return any(getattr(c, "type", "") == "NamespaceTerminating" for c in getattr(e, "causes", []) or [])
