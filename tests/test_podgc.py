"""The pod garbage collector: its plan as a table, and the controller against a real API server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sliceplane.api.registry import NODES, PODS
from sliceplane.client.rest import ApiError, RESTClient
from sliceplane.controllers.podgc import PodGCController, plan_pod_gc

T0 = 1_700_000_000.0


def pod(name: str, node: str = "", *, deleting: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if deleting:
        md["deletionTimestamp"] = "2023-11-14T22:13:20Z"
    return {"metadata": md, "spec": {"nodeName": node} if node else {}, "status": {"phase": "Running"}}


@pytest.mark.parametrize(("missing_since", "now", "orphaned", "since"), [
    ({}, T0, [], {"gone": T0}),  # first seen missing: the quarantine starts
    ({"gone": T0}, T0 + 39, [], {"gone": T0}),
    ({"gone": T0}, T0 + 40, ["a", "b"], {"gone": T0}),
], ids=["first-seen", "in-quarantine", "past-quarantine"])
def test_plan_pod_gc(missing_since: dict[str, float], now: float, orphaned: list[str], since: dict[str, float]) -> None:
    pods = [pod("a", "gone"), pod("b", "gone", deleting=True), pod("here", "n1"), pod("pending"),
            pod("never-bound", deleting=True)]
    plan = plan_pod_gc(pods, {"n1"}, {**missing_since, "old-node": T0 - 999}, now)
    assert [p["metadata"]["name"] for p in plan.orphaned] == orphaned
    assert [p["metadata"]["name"] for p in plan.unscheduled_terminating] == ["never-bound"]
    assert plan.missing_since == since  # nodes with no pods left are forgotten


def new_pod(name: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}}


async def test_pods_of_a_deleted_node_go_after_the_quarantine(client: RESTClient) -> None:
    await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}})
    for name, node in (("on-n1", "n1"), ("on-n2", "n2")):
        await client.create(PODS, new_pod(name, node), "default")
    await client.delete(NODES, "n1")
    gc = PodGCController(client, period=0.05, quarantine=0.3)
    task = asyncio.create_task(gc.run())
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            try:
                await client.get(PODS, "on-n1", "default")
            except ApiError as e:
                assert e.code == 404
                break
            assert asyncio.get_running_loop().time() < deadline, "the orphaned pod is still there"
            await asyncio.sleep(0.05)
        assert (await client.get(PODS, "on-n2", "default"))["metadata"]["name"] == "on-n2"
    finally:
        await gc.stop()
        await asyncio.wait_for(task, 10)
