"""Topology-mode Auto in the EndpointSlice controller shell, against a real API server.

Node changes re-plan the Service: taking a node's zone away removes the hints, and the reason
is recorded as an Event on the Service.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sliceplane.api.registry import ENDPOINT_SLICES, EVENTS, NODES, PODS, SERVICES
from sliceplane.client.rest import RESTClient
from sliceplane.controllers.endpointslice.controller import EndpointSliceController

Obj = dict[str, Any]
NS = "default"
ZONES = ("zone-a", "zone-b", "zone-c")


@pytest.fixture
async def client(client: RESTClient) -> RESTClient:
    """The shared fixture's client, with a Ready node in each zone."""
    for i, zone in enumerate(ZONES):
        node = await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": f"n{i}", "labels": {"topology.kubernetes.io/zone": zone}}})
        node["status"] = {"allocatable": {"cpu": "4"}, "conditions": [{"type": "Ready", "status": "True"}]}
        await client.update(NODES, node, subresource="status")
    return client


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (got := await check()):
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)
    return got


async def test_node_losing_its_zone_removes_auto_hints(client: RESTClient) -> None:
    ctl = EndpointSliceController(client)
    task = asyncio.create_task(ctl.run())
    try:
        await client.create(SERVICES, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "annotations": {"service.kubernetes.io/topology-mode": "Auto"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}, NS)
        for i in range(9):
            pod = await client.create(PODS, {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "labels": {"app": "web"}},
                "spec": {"nodeName": f"n{i % 3}", "containers": [{"name": "c", "image": "nginx"}]}}, NS)
            pod["status"] = {"phase": "Running", "podIP": f"10.244.0.{i + 2}", "podIPs": [{"ip": f"10.244.0.{i + 2}"}],
                             "conditions": [{"type": "Ready", "status": "True"}]}
            await client.update(PODS, pod, subresource="status")

        async def hints() -> Counter[str] | None:
            items = (await client.list(ENDPOINT_SLICES, NS, label_selector="kubernetes.io/service-name=web"))["items"]
            eps = [e for s in items for e in s.get("endpoints") or []]
            if len(eps) != 9 or not all(e.get("hints") for e in eps):
                return None
            return Counter(z["name"] for e in eps for z in e["hints"]["forZones"])

        assert await eventually(hints) == {z: 3 for z in ZONES}

        node = await client.get(NODES, "n2")
        del node["metadata"]["labels"]["topology.kubernetes.io/zone"]
        await client.update(NODES, node)

        async def no_hints() -> bool:
            items = (await client.list(ENDPOINT_SLICES, NS, label_selector="kubernetes.io/service-name=web"))["items"]
            return not any(e.get("hints") for s in items for e in s.get("endpoints") or [])

        await eventually(no_hints)

        async def reasons() -> list[tuple[str, str]]:
            events = (await client.list(EVENTS, NS))["items"]
            return [(e["reason"], e["message"]) for e in events
                    if e["involvedObject"]["name"] == "web" and e["reason"].startswith("TopologyAwareHints")]

        got = await eventually(lambda: _with(reasons, "TopologyAwareHintsDisabled"))
        assert ("TopologyAwareHintsEnabled", "Topology Aware Hints has been enabled, addressType: IPv4") in got
        assert ("TopologyAwareHintsDisabled", "insufficient node information: allocatable CPU or zone not "
                "specified on one or more nodes, addressType: IPv4") in got
    finally:
        await ctl.stop()
        await asyncio.wait_for(task, 5)


async def _with(fetch: Callable[[], Awaitable[list[tuple[str, str]]]], reason: str) -> list[tuple[str, str]] | None:
    got = await fetch()
    return got if any(r == reason and "insufficient node" in m for r, m in got) else None
