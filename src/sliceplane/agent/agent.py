"""The node agent (kube-proxy's role): watch Services and EndpointSlices (or legacy Endpoints),
keep this node's service table, measure what it costs.

The shell owns the caches; every computation is pure (`endpointslicecache`, `servicetable`). A
slice event updates only its own endpoints in the EndpointSliceCache, O(slice) rather than
O(Service); a Service's table rows are rebuilt when the table is read. The table is published as
a snapshot file (see `snapshot.py`); metrics as counters (see `metrics.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sliceplane.agent.endpointslicecache import EndpointSliceCache
from sliceplane.agent.metrics import AgentMetrics
from sliceplane.agent.reflector import Reflector
from sliceplane.agent.servicetable import (
    ANNOTATION_TRIGGER_TIME,
    LABEL_ZONE,
    PROXY_LABEL_SELECTOR,
    NodeView,
    ServiceInfo,
    SliceInfo,
    Table,
    endpoints_to_info,
    service_entries,
    service_to_info,
    slice_to_info,
    table_to_json,
)
from sliceplane.agent.snapshot import remove_snapshot, snapshot_path, write_snapshot
from sliceplane.api.meta import parse_time
from sliceplane.api.registry import ENDPOINT_SLICES, ENDPOINTS, NODES, SERVICES
from sliceplane.client.rest import APIConnectionError, ApiError, RESTClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SOURCES = ("slices", "endpoints")
# Snapshot writes: at most one per DEBOUNCE after a change, and one per HEARTBEAT regardless.
# A snapshot of a large table costs O(table): the wait after one is at least SNAPSHOT_COST_FACTOR
# times what it took, so publishing never takes more than ~1/(1+factor) of the agent's time.
SNAPSHOT_DEBOUNCE = 0.2
SNAPSHOT_HEARTBEAT = 2.0
SNAPSHOT_COST_FACTOR = 10.0
# ...but never so long that readers (STALE_AFTER, 15 s) take a slow disk for a dead agent. The
# cost is CPU time: a write stalled on I/O under load must not stretch the wait tenfold.
SNAPSHOT_MAX_WAIT = 5.0
# How often the agent re-reads its Node (zone label); sooner while the Node does not exist.
NODE_REFRESH = 30.0
NODE_RETRY = 1.0


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def trigger_time(obj: Obj) -> float | None:
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_TRIGGER_TIME)
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


class NodeAgent:
    """One node's agent. `mode="counting"` only counts watch events and bytes (no decoding)."""

    def __init__(self, client: RESTClient, node_name: str, *, source: str = "slices", mode: str = "full",
                 state_dir: Path | None = None, ip_family: str = "IPv4",
                 clock: Callable[[], float] = time.time) -> None:
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        if mode not in ("full", "counting"):
            raise ValueError(f"mode must be full or counting, not {mode!r}")
        self.client = client
        self.node = NodeView(node_name, "", ip_family)
        self.source = source
        self.mode = mode
        self.state_dir = state_dir
        self.clock = clock
        self.metrics = AgentMetrics(node_name)
        self.started = clock()
        self.node_found = False
        # caches: Services, and the endpoints of every slice (or Endpoints object), merged per
        # Service port as events arrive; a Service's table rows are rebuilt only when read.
        self.services: dict[str, ServiceInfo | None] = {}
        self.cache = EndpointSliceCache(ip_family)
        self.rows: dict[str, Table] = {}  # service key -> its rows, as last built
        self._stale: set[str] = set()  # services whose rows must be rebuilt before the next read
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = asyncio.Event()
        decode = mode == "full"
        self.reflectors = [
            Reflector(client, SERVICES, self.metrics, label_selector=PROXY_LABEL_SELECTOR, decode=decode,
                      on_list=self._services_listed, on_event=self._service_event),
            Reflector(client, ENDPOINT_SLICES if source == "slices" else ENDPOINTS, self.metrics,
                      label_selector=PROXY_LABEL_SELECTOR, decode=decode,
                      on_list=self._infos_listed, on_event=self._info_event),
        ]

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return all(r.synced.is_set() for r in self.reflectors)

    async def wait_synced(self) -> None:
        await asyncio.gather(*(r.synced.wait() for r in self.reflectors))

    async def run(self) -> None:
        """Run until `stop()`; connection problems are retried, never raised."""
        self._tasks = [asyncio.create_task(r.run(), name=f"{self.node.name}-{r.name}") for r in self.reflectors]
        if self.mode == "full":
            self._tasks.append(asyncio.create_task(self._node_loop(), name=f"{self.node.name}-node"))
        if self.state_dir is not None:
            self._tasks.append(asyncio.create_task(self._snapshot_loop(), name=f"{self.node.name}-snapshot"))
        try:
            await self._stopped.wait()
        finally:
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.state_dir is not None:
                remove_snapshot(snapshot_path(self.state_dir, self.node.name))

    def stop(self) -> None:
        self._stopped.set()

    # --- the node -----------------------------------------------------------------------------

    async def _node_loop(self) -> None:
        while True:
            try:
                node = await self.client.get(NODES, self.node.name)
                self.node_found = True
                zone = ((node.get("metadata") or {}).get("labels") or {}).get(LABEL_ZONE) or ""
                if zone != self.node.zone:
                    self.node = NodeView(self.node.name, zone, self.node.ip_family)
                    self._invalidate_all()
            except ApiError as e:
                if e.code != 404:
                    log.warning("%s: reading the Node failed: %s", self.node.name, e)
            except APIConnectionError:
                pass
            await asyncio.sleep(NODE_REFRESH if self.node_found else NODE_RETRY)

    # --- cache updates (called by the reflectors, on the loop) ---------------------------------

    def _services_listed(self, items: list[Obj]) -> None:
        if self.mode != "full":
            self._dirty.set()  # publish "synced"
            return
        self.services = {_key(o): service_to_info(o, self.node.ip_family) for o in items}
        self._invalidate_all()

    def _service_event(self, typ: str, obj: Obj) -> None:
        key = _key(obj)
        if typ == "DELETED":
            self.services.pop(key, None)
        else:
            self.services[key] = service_to_info(obj, self.node.ip_family)
        self._invalidate(key)

    def _to_info(self, obj: Obj) -> SliceInfo | None:
        return slice_to_info(obj) if self.source == "slices" else endpoints_to_info(obj)

    def _infos_listed(self, items: list[Obj]) -> None:
        if self.mode != "full":
            self._dirty.set()
            return
        self.cache.replace((_key(o), info) for o in items if (info := self._to_info(o)) is not None)
        self._invalidate_all()

    def _info_event(self, typ: str, obj: Obj) -> None:
        info = self._to_info(obj) if typ != "DELETED" else None
        changed = self.cache.update(_key(obj), info)
        for svc in changed:
            self._invalidate(svc)
        if typ != "DELETED":
            # The cache now holds the change: that is when it counts as programmed.
            t = trigger_time(obj)
            # Changes made before this agent started are not latencies it can measure.
            if t is not None and t >= self.started - 1.0:
                self.metrics.observe_latency(self.clock() - t)

    # --- the table ----------------------------------------------------------------------------

    def _invalidate(self, service_key: str) -> None:
        self._stale.add(service_key)
        self._changed()

    def _invalidate_all(self) -> None:
        self.rows = {}
        self._stale = set(self.services)
        self._changed()

    def _changed(self) -> None:
        self.metrics.table_syncs += 1
        self._dirty.set()

    def table(self) -> Table:
        for key in self._stale:
            svc = self.services.get(key)
            if svc is None:
                self.rows.pop(key, None)
            else:
                self.rows[key] = service_entries(svc, self.cache.endpoints(key), self.node)
        self._stale = set()
        out: Table = {}
        for rows in self.rows.values():
            out.update(rows)
        return dict(sorted(out.items()))

    # --- publishing ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        table = self.table() if self.mode == "full" else {}
        self.metrics.table_service_ports = len(table)
        self.metrics.table_endpoints = sum(len(e.endpoints) for e in table.values())
        return {
            "node": self.node.name, "zone": self.node.zone, "ipFamily": self.node.ip_family,
            "source": self.source, "mode": self.mode, "pid": os.getpid(), "host": socket.gethostname(),
            "server": self.client.url, "started": self.started, "updated": self.clock(), "synced": self.synced,
            "nodeFound": self.node_found,
            "resourceVersions": {r.name: r.resource_version for r in self.reflectors},
            "connected": {r.name: r.connected for r in self.reflectors},
            "metrics": self.metrics.snapshot(), "table": table_to_json(table),
        }

    async def _snapshot_loop(self) -> None:
        assert self.state_dir is not None
        path = snapshot_path(self.state_dir, self.node.name)
        heartbeat = SNAPSHOT_HEARTBEAT if self.mode == "full" else SNAPSHOT_HEARTBEAT * 2.5
        while True:
            self._dirty.clear()
            t0 = time.thread_time()
            try:
                write_snapshot(path, self.snapshot())
            except OSError as e:
                log.warning("%s: cannot write %s: %s", self.node.name, path, e)
            cost = time.thread_time() - t0
            await asyncio.sleep(min(SNAPSHOT_MAX_WAIT, max(SNAPSHOT_DEBOUNCE, SNAPSHOT_COST_FACTOR * cost)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), heartbeat)
