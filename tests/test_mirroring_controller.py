"""The mirroring controller shell against a real API server over the memory store.

The main EndpointSlice controller runs alongside it, to show each leaves the other's slices alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sliceplane.api.registry import ENDPOINT_SLICES, ENDPOINTS, SERVICES
from sliceplane.client.rest import RESTClient
from sliceplane.controllers.endpointslice.controller import EndpointSliceController
from sliceplane.controllers.mirroring.controller import EndpointSliceMirroringController
from sliceplane.controllers.mirroring.planner import CONTROLLER_NAME

Obj = dict[str, Any]
NS = "default"


def endpoints_obj(ready: list[str], not_ready: list[str] = ()) -> Obj:  # type: ignore[assignment]
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext", "namespace": NS},
            "subsets": [{"addresses": [{"ip": ip} for ip in ready],
                         "notReadyAddresses": [{"ip": ip} for ip in not_ready],
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]}


async def mirrored(client: RESTClient) -> list[Obj]:
    out = await client.list(ENDPOINT_SLICES, NS, label_selector="kubernetes.io/service-name=ext")
    items = out["items"] if isinstance(out, dict) else out
    return [s for s in items if s["metadata"]["labels"].get("endpointslice.kubernetes.io/managed-by")
            == CONTROLLER_NAME]


async def settle(*ctls: Any) -> None:
    await asyncio.sleep(0.2)
    for c in ctls:
        await asyncio.wait_for(c.wait_idle(), 10)


async def test_mirror_lifecycle(client: RESTClient) -> None:
    mirror = EndpointSliceMirroringController(client)
    main = EndpointSliceController(client)
    tasks = [asyncio.create_task(mirror.run()), asyncio.create_task(main.run())]
    try:
        await client.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                                       "spec": {"ports": [{"name": "http", "port": 80}]}}, NS)
        await client.create(ENDPOINTS, endpoints_obj(["10.0.0.1", "10.0.0.2"], ["10.0.0.3"]), NS)
        await settle(mirror, main)
        (s,) = await mirrored(client)
        assert sorted((e["addresses"][0], e["conditions"]["ready"]) for e in s["endpoints"]) == [
            ("10.0.0.1", True), ("10.0.0.2", True), ("10.0.0.3", False)]
        assert main.writes == 0  # the main controller has nothing to do with a selectorless Service

        # A converged mirror gets no write, even when asked to sync again.
        writes = mirror.writes
        mirror.queue.add(f"{NS}/ext")
        await settle(mirror)
        assert mirror.writes == writes

        # Updating the Endpoints rewrites the slice in place.
        ep = await client.get(ENDPOINTS, "ext", NS)
        ep["subsets"] = endpoints_obj(["10.0.0.4"])["subsets"]
        await client.update(ENDPOINTS, ep)
        await settle(mirror)
        (s2,) = await mirrored(client)
        assert s2["metadata"]["name"] == s["metadata"]["name"]
        assert [e["addresses"] for e in s2["endpoints"]] == [["10.0.0.4"]]
        assert mirror.stats["update"] == 1

        # The Service going away removes the mirror.
        await client.delete(SERVICES, "ext", NS)
        await settle(mirror)
        assert await mirrored(client) == []
    finally:
        await mirror.stop()
        await main.stop()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(t, 5)
