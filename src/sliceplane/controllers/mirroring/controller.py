"""The EndpointSlice mirroring controller shell: informers in, `plan_mirroring` out, REST writes.

Endpoints, Service and mirrored-slice events all enqueue the `namespace/name` key they concern;
a worker plans from the caches and applies the plan. It refuses to plan while the slice cache
has not yet shown its own last writes (the key is retried with backoff), so a lagging watch
never makes it mirror twice.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from sliceplane.api.meta import key_of, name_of, namespace_of, resource_version_of, split_key
from sliceplane.api.registry import ENDPOINT_SLICES, ENDPOINTS, SERVICES
from sliceplane.client.informer import SharedInformerFactory
from sliceplane.controllers.base import MAX_RETRIES, QueueController, requeue_or_forget, wait_idle
from sliceplane.controllers.mirroring.planner import (
    CONTROLLER_NAME,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    MirrorPlan,
    plan_mirroring,
)
from sliceplane.controllers.workload_util import EventRecorder

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class StaleCacheError(Exception):
    """The slice informer has not yet shown every write we made for this key."""


def _service_key_of_slice(obj: Obj) -> list[str]:
    svc = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_SERVICE_NAME)
    return [f"{namespace_of(obj)}/{svc}"] if svc else []


def _rv(obj: Obj | None) -> int:
    try:
        return int(resource_version_of(obj)) if obj else -1
    except (TypeError, ValueError):
        return -1


class EndpointSliceMirroringController(QueueController):
    """Mirrors hand-written Endpoints of selectorless Services into EndpointSlices."""

    def __init__(self, client: Any, *, max_endpoints_per_subset: int = 1000, workers: int = 2,
                 record_events: bool = True, informers: SharedInformerFactory | None = None) -> None:
        from sliceplane.client.workqueue import WorkQueue

        if max_endpoints_per_subset < 1:
            raise ValueError("max_endpoints_per_subset must be at least 1")
        super().__init__(client, informers)
        self.max_endpoints_per_subset = max_endpoints_per_subset
        self.workers = workers
        self.services = self._informer(SERVICES)
        self.endpoints = self._informer(ENDPOINTS)
        self.slices = self._informer(ENDPOINT_SLICES, label_selector=f"{LABEL_MANAGED_BY}={CONTROLLER_NAME}")
        self.slices.add_index("service", _service_key_of_slice)
        self.queue = WorkQueue("endpointslice_mirroring")
        self.recorder = EventRecorder(client, "endpointslice-mirroring-controller", enabled=record_events)
        self.stats: Counter[str] = Counter()
        # key -> slice name -> resourceVersion we wrote (-1: we deleted it)
        self._written: dict[str, dict[str, int]] = {}
        self._last_events: dict[str, tuple[Any, ...]] = {}

        self.services.add_handlers(self._enqueue, lambda _o, n: self._enqueue(n), self._enqueue)
        self.endpoints.add_handlers(self._enqueue, self._on_endpoints_update, self._enqueue)
        self.slices.add_handlers(self._on_slice, lambda _o, n: self._on_slice(n), self._on_slice_delete)

    @property
    def writes(self) -> int:
        return self.stats["create"] + self.stats["update"] + self.stats["delete"]

    async def run(self) -> None:
        try:
            if not await self._start_informers((self.services, self.endpoints, self.slices)):
                return
            await self._work_until_stopped(self.queue, self.sync, self.workers, log, self._handle_result)
        finally:
            await self._cancel_tasks()

    async def stop(self) -> None:
        await self._shutdown(self.queue)
        await self.recorder.close()

    async def wait_idle(self, settle: float = 0.05) -> None:
        await wait_idle([self.queue], self._busy, settle=settle, include_parked=True)

    # --- handlers ------------------------------------------------------------------------------

    def _enqueue(self, obj: Obj) -> None:
        self.queue.add(key_of(obj))

    def _on_endpoints_update(self, old: Obj, new: Obj) -> None:
        if resource_version_of(old) != resource_version_of(new):
            self._enqueue(new)

    def _on_slice(self, obj: Obj) -> None:
        for key in _service_key_of_slice(obj):
            self.queue.add(key)

    def _on_slice_delete(self, obj: Obj) -> None:
        # Gone for good: whatever we wrote to it, the cache cannot show it any more.
        for key in _service_key_of_slice(obj):
            self._written.get(key, {}).pop(name_of(obj), None)
            self.queue.add(key)

    # --- workers -------------------------------------------------------------------------------

    def _handle_result(self, key: str, err: Exception | None) -> None:
        if err is not None:
            self.stats["stale" if isinstance(err, StaleCacheError) else "errors"] += 1
        requeue_or_forget(self.queue, key, err, log, max_retries=MAX_RETRIES,
                          quiet=isinstance(err, StaleCacheError), what="mirroring", queue_name="mirroring")

    def _stale(self, key: str) -> bool:
        ns, _ = split_key(key)
        for name, rv in self._written.get(key, {}).items():
            seen = self.slices.get(f"{ns}/{name}")
            if rv < 0 and seen is not None:
                return True
            if rv >= 0 and _rv(seen) < rv:
                return True
        return False

    async def sync(self, key: str) -> None:
        if self._stale(key):
            raise StaleCacheError(f"mirrored EndpointSlice cache is out of date for {key}")
        self._written.pop(key, None)
        endpoints = self.endpoints.get(key)
        service = self.services.get(key)
        existing = self.slices.by_index("service", key)
        plan = plan_mirroring(endpoints, service, existing, max_endpoints_per_subset=self.max_endpoints_per_subset)
        self.stats["syncs"] += 1
        if endpoints is not None:
            self._record_events(key, endpoints, plan)
        await self._apply(key, plan)

    def _record_events(self, key: str, endpoints: Obj, plan: MirrorPlan) -> None:
        """Each distinct set of problems is recorded once, not on every sync."""
        sig = tuple(e.message for e in plan.events)
        if self._last_events.get(key) == sig:
            return
        self._last_events[key] = sig
        for e in plan.events:
            log.warning("mirroring Endpoints %s: %s", key, e.message)
            self.recorder.record(endpoints, "v1", "Endpoints", e.event_type, e.reason, e.message, time.time())

    async def _apply(self, key: str, plan: MirrorPlan) -> None:
        from sliceplane.client.rest import ApiError

        ns, _ = split_key(key)
        written = self._written.setdefault(key, {})
        for s in plan.to_create:
            created = await self.client.create(ENDPOINT_SLICES, s, ns)
            written[name_of(created)] = _rv(created)
            self.stats["create"] += 1
        for s in plan.to_update:
            updated = await self.client.update(ENDPOINT_SLICES, s)
            written[name_of(updated)] = _rv(updated)
            self.stats["update"] += 1
        for s in plan.to_delete:
            try:
                await self.client.delete(ENDPOINT_SLICES, name_of(s), ns)
            except ApiError as e:
                if e.code != 404:
                    raise
                continue
            written[name_of(s)] = -1
            self.stats["delete"] += 1
