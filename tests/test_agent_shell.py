"""NodeAgent against a real API server (memory store, in process): the table follows the wire,
ignored slices never cross it, counting agents count the same events without decoding, and a
server restart with changes made meanwhile ends in the server's state (resume or re-list)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sliceplane.agent.agent import NodeAgent
from sliceplane.agent.servicetable import NodeView, slices_table, table_to_json
from sliceplane.agent.snapshot import live_snapshots
from sliceplane.api.registry import ENDPOINT_SLICES, SERVICES
from sliceplane.apiserver.app import APIServer
from sliceplane.apiserver.config import ServerConfig
from sliceplane.client.rest import RESTClient
from sliceplane.controllers.endpointslice.triggertime import format_trigger_time
from sliceplane.store.memory import MemoryStore

Obj = dict[str, Any]
SLICE_RESOURCE = "endpointslices.discovery.k8s.io"


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def service(name: str = "web") -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def endpoint_slice(name: str, ips: list[str], *, labels: dict[str, str] | None = None,
                   trigger: float | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default",
                 "labels": {"kubernetes.io/service-name": "web", **(labels or {})}}
    if trigger is not None:
        meta["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time": format_trigger_time(trigger)}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": "node-1"} for ip in ips]}


def used(agent: NodeAgent) -> list[str]:
    return [k for e in agent.table().values() for k in e.used]


async def expected_table(c: RESTClient) -> list[Obj]:
    services = (await c.list(SERVICES))["items"]
    slices = (await c.list(ENDPOINT_SLICES))["items"]
    return table_to_json(slices_table(services, slices, NodeView("node-0")))


async def test_agent_follows_the_wire_and_counting_agent_counts_the_same(tmp_path: Path) -> None:
    srv = APIServer(ServerConfig(port=0, store_url="memory://"))
    await srv.start()
    clients = [RESTClient(srv.url, timeout=10) for _ in range(3)]
    full = NodeAgent(clients[0], "node-0", state_dir=tmp_path)
    counting = NodeAgent(clients[1], "node-2", mode="counting", state_dir=tmp_path)
    c = clients[2]
    tasks = [asyncio.create_task(a.run()) for a in (full, counting)]
    try:
        await asyncio.wait_for(asyncio.gather(full.wait_synced(), counting.wait_synced()), 10)
        await c.create(SERVICES, service())
        await c.create(ENDPOINT_SLICES, endpoint_slice("web-a", ["10.0.0.1"]))
        await c.create(ENDPOINT_SLICES, endpoint_slice("web-other", ["10.0.0.9"],
                                                       labels={"service.kubernetes.io/service-proxy-name": "x"}))
        await eventually(lambda: used(full) == ["10.0.0.1:8080"])
        s = await c.get(ENDPOINT_SLICES, "web-a", "default")
        changed = endpoint_slice("web-a", ["10.0.0.1", "10.0.0.2"], trigger=time.time())
        changed["metadata"]["resourceVersion"] = s["metadata"]["resourceVersion"]
        await c.update(ENDPOINT_SLICES, changed)
        await eventually(lambda: used(full) == ["10.0.0.1:8080", "10.0.0.2:8080"])
        await c.delete(ENDPOINT_SLICES, "web-a", "default")
        await eventually(lambda: used(full) == [])
        await eventually(lambda: counting.metrics.resource(SLICE_RESOURCE).events.get("DELETED") == 1)

        full_events = {k: v for k, v in full.metrics.resource(SLICE_RESOURCE).events.items() if k != "BOOKMARK"}
        counted = {k: v for k, v in counting.metrics.resource(SLICE_RESOURCE).events.items() if k != "BOOKMARK"}
        # The slice labelled for another proxy was filtered by the server: one add, one update, one delete.
        assert full_events == counted == {"ADDED": 1, "MODIFIED": 1, "DELETED": 1}
        assert counting.metrics.resource(SLICE_RESOURCE).bytes > 0
        assert counting.metrics.resource(SLICE_RESOURCE).decode_seconds == 0
        assert full.metrics.latency_count == 1
        assert counting.table() == {}

        await eventually(lambda: {s["node"] for s in live_snapshots(tmp_path, time.time())} == {"node-0", "node-2"})
    finally:
        full.stop()
        counting.stop()
        await asyncio.gather(*tasks)
        for cl in clients:
            await cl.close()
        await srv.stop()
    assert live_snapshots(tmp_path, time.time()) == []  # agents remove their snapshots when they stop


async def test_agent_comes_back_after_a_server_restart_with_changes_it_missed() -> None:
    store = MemoryStore()
    await store.start()
    first = APIServer(ServerConfig(port=0), store=store)
    await first.start()
    port = first.port
    c = RESTClient(first.url, timeout=10)
    agent = NodeAgent(c, "node-0")
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.wait_for(agent.wait_synced(), 10)
        await c.create(SERVICES, service())
        await c.create(ENDPOINT_SLICES, endpoint_slice("web-a", ["10.0.0.1"]))
        await c.create(ENDPOINT_SLICES, endpoint_slice("web-b", ["10.0.0.2"]))
        await eventually(lambda: len(used(agent)) == 2)
        await first.stop()

        side = APIServer(ServerConfig(port=0), store=store)  # changes while the agent is cut off
        await side.start()
        async with RESTClient(side.url, timeout=10) as sc:
            await sc.delete(ENDPOINT_SLICES, "web-a", "default")
            await sc.create(ENDPOINT_SLICES, endpoint_slice("web-c", ["10.0.0.3"]))
        await side.stop()

        back = APIServer(ServerConfig(port=port), store=store)
        await back.start()
        try:
            await eventually(lambda: used(agent) == ["10.0.0.2:8080", "10.0.0.3:8080"], 20)
            counters = agent.metrics.resource(SLICE_RESOURCE)
            assert counters.reconnects + counters.relists >= 1
            assert table_to_json(agent.table()) == await expected_table(c)
            await c.create(ENDPOINT_SLICES, endpoint_slice("web-d", ["10.0.0.4"]))
            await eventually(lambda: "10.0.0.4:8080" in used(agent))
        finally:
            agent.stop()
            await task
            await back.stop()
    finally:
        await c.close()
        await first.stop()
        await store.close()
