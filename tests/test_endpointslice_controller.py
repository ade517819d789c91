"""The EndpointSlice and Endpoints controllers against a real API server over the memory store.

Pods are created through the client and made Running/Ready through the status subresource,
so no fleet is involved; the assertions read the real EndpointSlices and Endpoints back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from sliceplane.api.registry import ENDPOINT_SLICES, ENDPOINTS, NODES, PODS, SERVICES
from sliceplane.apiserver.app import APIServer
from sliceplane.apiserver.config import ServerConfig
from sliceplane.client.rest import ApiError, RESTClient
from sliceplane.controllers.endpoints import EndpointsController
from sliceplane.controllers.endpointslice.controller import EndpointSliceController
from sliceplane.controllers.endpointslice.values import (
    ANNOTATION_TRIGGER_TIME,
    CONTROLLER_NAME,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
)

Obj = dict[str, Any]
NS = "default"
READY_AT = "2024-01-01T00:00:00Z"


@pytest.fixture
async def server() -> AsyncIterator[APIServer]:
    srv = APIServer(ServerConfig(port=0, store_url="memory://", service_cidr_v6="fd00:96::/108"))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def client(server: APIServer) -> AsyncIterator[RESTClient]:
    c = RESTClient(server.url, timeout=10)
    try:
        await c.create(NODES, {"apiVersion": "v1", "kind": "Node",
                               "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "zone-a"}}})
        yield c
    finally:
        await c.close()


class Running:
    """Controllers running in the background of one test."""

    def __init__(self) -> None:
        self.tasks: list[tuple[Any, asyncio.Task[None]]] = []

    def start(self, ctl: Any) -> Any:
        self.tasks.append((ctl, asyncio.create_task(ctl.run())))
        return ctl

    async def stop(self, ctl: Any) -> None:
        for c, t in list(self.tasks):
            if c is ctl:
                await c.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(t, 5)
                self.tasks.remove((c, t))


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    r = Running()
    try:
        yield r
    finally:
        for c, _ in list(r.tasks):
            await r.stop(c)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


def service(name: str = "web", *, selector: dict[str, str] | None = None, **spec: Any) -> Obj:
    s: Obj = {"ports": [{"name": "http", "port": 80, "targetPort": "http"}], **spec}
    if selector is not None:
        s["selector"] = selector
    elif "selector" not in spec and spec.get("type") != "ExternalName":
        s["selector"] = {"app": name}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS,
                                                               "labels": {"tier": "front"}}, "spec": s}


async def make_pod(c: RESTClient, name: str, ip: str | list[str], *, app: str = "web", ready: bool = True) -> Obj:
    pod = await c.create(PODS, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx",
                                                   "ports": [{"name": "http", "containerPort": 8080}]}]},
    })
    return await set_status(c, pod, ip, ready)


async def set_status(c: RESTClient, pod: Obj, ip: str | list[str], ready: bool) -> Obj:
    ips = [ip] if isinstance(ip, str) else ip
    pod["status"] = {"phase": "Running", "podIP": ips[0], "podIPs": [{"ip": i} for i in ips],
                     "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                     "lastTransitionTime": READY_AT}]}
    return await c.update(PODS, pod, subresource="status")


async def slices_of(c: RESTClient, svc: str) -> list[Obj]:
    lst = await c.list(ENDPOINT_SLICES, NS, label_selector=f"{LABEL_SERVICE_NAME}={svc}")
    return lst["items"]


def endpoint_view(slices: list[Obj]) -> dict[str, tuple[bool, bool, bool]]:
    return {e["targetRef"]["name"]: (e["conditions"]["ready"], e["conditions"]["serving"],
                                     e["conditions"]["terminating"])
            for s in slices for e in s.get("endpoints") or []}


async def test_slices_and_endpoints_follow_pods(client: RESTClient, running: Running) -> None:
    ctl = running.start(EndpointSliceController(client, max_endpoints_per_slice=2))
    legacy = running.start(EndpointsController(client))
    svc = await client.create(SERVICES, service())
    pods = [await make_pod(client, f"p{i}", f"10.244.0.{i + 2}") for i in range(5)]

    async def five_ready() -> bool:
        return endpoint_view(await slices_of(client, "web")) == {f"p{i}": (True, True, False) for i in range(5)}

    await eventually(five_ready)
    slices = await slices_of(client, "web")
    assert sorted(len(s["endpoints"]) for s in slices) == [1, 2, 2]
    for s in slices:
        meta = s["metadata"]
        assert meta["name"].startswith("web-") and len(meta["name"]) == len("web-") + 5
        assert meta["labels"] == {"tier": "front", LABEL_SERVICE_NAME: "web", LABEL_MANAGED_BY: CONTROLLER_NAME}
        assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                            "uid": svc["metadata"]["uid"], "controller": True,
                                            "blockOwnerDeletion": True}]
        assert ANNOTATION_TRIGGER_TIME in meta["annotations"]
        assert s["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080}]
        assert {e["zone"] for e in s["endpoints"]} == {"zone-a"}

    async def legacy_has(ready: set[str], not_ready: set[str]) -> bool:
        with contextlib.suppress(ApiError):
            ep = await client.get(ENDPOINTS, "web", NS)
            got_ready = {a["targetRef"]["name"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
            got_not = {a["targetRef"]["name"] for s in ep.get("subsets") or []
                       for a in s.get("notReadyAddresses") or []}
            return (got_ready, got_not) == (ready, not_ready)
        return False

    await eventually(lambda: legacy_has({f"p{i}" for i in range(5)}, set()))

    # readiness flips in place; a graceful deletion first shows the pod terminating (serving still
    # true, ready false), the final deletion removes the endpoint
    await set_status(client, pods[1], "10.244.0.3", ready=False)
    await client.delete(PODS, "p4", NS)
    expected = {"p0": (True, True, False), "p1": (False, False, False), "p2": (True, True, False),
                "p3": (True, True, False)}

    async def terminating() -> bool:
        return endpoint_view(await slices_of(client, "web")) == {**expected, "p4": (False, True, True)}

    await eventually(terminating)
    await eventually(lambda: legacy_has({"p0", "p2", "p3"}, {"p1"}))  # not published while terminating
    await client.delete(PODS, "p4", NS, grace_period_seconds=0)

    async def changed() -> bool:
        return endpoint_view(await slices_of(client, "web")) == expected

    await eventually(changed)
    await eventually(lambda: legacy_has({"p0", "p2", "p3"}, {"p1"}))
    await ctl.wait_idle()
    assert ctl.stats["incremental"] > 0, "pod changes should be synced incrementally"
    assert all(len(s["endpoints"]) <= 2 for s in await slices_of(client, "web"))
    assert REGISTRY.get_sample_value("endpoint_slice_controller_changes_total", {"operation": "create"}) >= 3
    await legacy.wait_idle()
    assert legacy.stats["create"] == 1


async def test_pods_of_a_deleted_node_leave_the_slices(client: RESTClient, running: Running) -> None:
    """Their node deleted, the pods stay until the pod GC removes them; their endpoints go at once."""
    running.start(EndpointSliceController(client))
    await client.create(SERVICES, service())
    await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}})
    await make_pod(client, "p1", "10.244.0.2")
    on_n2 = await client.create(PODS, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p2", "namespace": NS, "labels": {"app": "web"}},
        "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "nginx",
                                                   "ports": [{"name": "http", "containerPort": 8080}]}]}})
    await set_status(client, on_n2, "10.244.1.2", True)

    async def both() -> bool:
        return set(endpoint_view(await slices_of(client, "web"))) == {"p1", "p2"}

    await eventually(both)
    await client.delete(NODES, "n2")

    async def only_p1() -> bool:
        return set(endpoint_view(await slices_of(client, "web"))) == {"p1"}

    await eventually(only_p1)


async def test_restart_of_converged_controllers_writes_nothing(client: RESTClient, running: Running) -> None:
    first = running.start(EndpointSliceController(client, max_endpoints_per_slice=3))
    legacy = running.start(EndpointsController(client))
    await client.create(SERVICES, service())
    await client.create(SERVICES, service("empty"))
    for i in range(7):
        await make_pod(client, f"p{i}", f"10.244.1.{i + 2}", ready=i % 2 == 0)

    async def converged() -> bool:
        return len(endpoint_view(await slices_of(client, "web"))) == 7 and len(await slices_of(client, "empty")) == 1

    await eventually(converged)
    await first.wait_idle()
    await legacy.wait_idle()
    before = {s["metadata"]["name"]: s["metadata"]["resourceVersion"]
              for s in (await client.list(ENDPOINT_SLICES, NS))["items"]}
    ep_rv = (await client.get(ENDPOINTS, "web", NS))["metadata"]["resourceVersion"]
    await running.stop(first)
    await running.stop(legacy)

    second = running.start(EndpointSliceController(client, max_endpoints_per_slice=3))
    legacy2 = running.start(EndpointsController(client))
    await asyncio.sleep(0.2)
    await second.wait_idle()
    await legacy2.wait_idle()
    assert second.stats["syncs"] >= 2
    assert second.writes == 0 and legacy2.writes == 0
    after = {s["metadata"]["name"]: s["metadata"]["resourceVersion"]
             for s in (await client.list(ENDPOINT_SLICES, NS))["items"]}
    assert after == before
    assert (await client.get(ENDPOINTS, "web", NS))["metadata"]["resourceVersion"] == ep_rv


async def test_placeholder_external_name_and_selectorless(client: RESTClient, running: Running) -> None:
    ctl = running.start(EndpointSliceController(client))
    legacy = running.start(EndpointsController(client))
    await client.create(SERVICES, service("lonely"))
    await client.create(SERVICES, service("ext", type="ExternalName", externalName="example.com", ports=[]))
    await client.create(SERVICES, service("manual", selector={}))
    user_ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual", "namespace": NS},
               "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}]}
    await client.create(ENDPOINTS, user_ep)

    async def placeholder() -> bool:
        return len(await slices_of(client, "lonely")) == 1

    await eventually(placeholder)
    (ph,) = await slices_of(client, "lonely")
    assert ph["endpoints"] in ([], None) and not ph.get("ports")
    await ctl.wait_idle()
    await legacy.wait_idle()
    assert await slices_of(client, "ext") == [] and await slices_of(client, "manual") == []
    manual = await client.get(ENDPOINTS, "manual", NS)
    assert manual["subsets"][0]["addresses"] == [{"ip": "192.0.2.10"}]
    with pytest.raises(ApiError) as e:
        await client.get(ENDPOINTS, "ext", NS)
    assert e.value.code == 404


async def test_foreign_changes_are_repaired_and_deleted_services_cleaned(client: RESTClient,
                                                                      running: Running) -> None:
    ctl = running.start(EndpointSliceController(client))
    legacy = running.start(EndpointsController(client))
    await client.create(SERVICES, service())
    for i in range(3):
        await make_pod(client, f"p{i}", f"10.244.2.{i + 2}")

    async def three() -> bool:
        return len(endpoint_view(await slices_of(client, "web"))) == 3

    await eventually(three)
    (s,) = await slices_of(client, "web")
    s["endpoints"] = s["endpoints"][:1]  # someone truncates our slice
    await client.update(ENDPOINT_SLICES, s)
    await eventually(three)
    (s,) = await slices_of(client, "web")
    await client.delete(ENDPOINT_SLICES, s["metadata"]["name"], NS)  # or deletes it
    await eventually(three)

    await client.delete(SERVICES, "web", NS)

    async def gone() -> bool:
        if await slices_of(client, "web"):
            return False
        try:
            await client.get(ENDPOINTS, "web", NS)
        except ApiError as e:
            return e.code == 404
        return False

    await eventually(gone)
    await ctl.wait_idle()
    await legacy.wait_idle()


async def test_dual_stack_service(client: RESTClient, running: Running) -> None:
    ctl = EndpointSliceController(client)
    ctl.full_plan_in_thread = 1  # exercise the off-loop planning used for large Services
    running.start(ctl)
    await client.create(SERVICES, service(ipFamilyPolicy="RequireDualStack", ipFamilies=["IPv4", "IPv6"]))
    await make_pod(client, "p0", ["10.244.3.2", "fd00:10:244::2"])
    await make_pod(client, "p1", ["10.244.3.3"])

    async def both() -> bool:
        by_type: dict[str, set[str]] = {}
        for s in await slices_of(client, "web"):
            by_type.setdefault(s["addressType"], set()).update(a for e in s["endpoints"] for a in e["addresses"])
        return by_type == {"IPv4": {"10.244.3.2", "10.244.3.3"}, "IPv6": {"fd00:10:244::2"}}

    await eventually(both)


async def test_endpoints_truncated_over_capacity_and_restored(client: RESTClient, running: Running) -> None:
    legacy = EndpointsController(client, max_addresses=3)
    legacy.plan_in_thread = 1  # exercise the off-loop planning used for large Services
    running.start(legacy)
    await client.create(SERVICES, service())
    for i in range(5):
        await make_pod(client, f"p{i}", f"10.244.4.{i + 2}", ready=i != 0)

    async def endpoints_state() -> tuple[int, int, str | None]:
        try:
            ep = await client.get(ENDPOINTS, "web", NS)
        except ApiError:
            return (-1, -1, None)
        subsets = ep.get("subsets") or []
        return (sum(len(s.get("addresses") or []) for s in subsets),
                sum(len(s.get("notReadyAddresses") or []) for s in subsets),
                (ep["metadata"].get("annotations") or {}).get("endpoints.kubernetes.io/over-capacity"))

    async def truncated() -> bool:
        return await endpoints_state() == (3, 0, "truncated")  # ready addresses kept first

    await eventually(truncated)
    for i in (0, 1, 2):
        await client.delete(PODS, f"p{i}", NS, grace_period_seconds=0)

    async def restored() -> bool:
        return await endpoints_state() == (2, 0, None)

    await eventually(restored)
    await legacy.wait_idle()
    writes = legacy.writes
    await asyncio.sleep(0.3)
    await legacy.wait_idle()
    assert legacy.writes == writes, "a converged Endpoints object is not rewritten"


@pytest.mark.parametrize("make", [lambda c: EndpointSliceController(c), lambda c: EndpointsController(c)],
                         ids=["endpointslice", "endpoints"])
async def test_stop_before_caches_sync_ends_run(make: Callable[[RESTClient], Any]) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    c = RESTClient(dead, timeout=1)
    try:
        ctl = make(c)
        task = asyncio.create_task(ctl.run())
        await asyncio.sleep(0.1)
        await ctl.stop()
        await asyncio.wait_for(task, 10)
    finally:
        await c.close()


async def test_service_status_writes_cost_no_resync_but_label_changes_propagate(client: RESTClient,
                                                                               running: Running) -> None:
    ctl = running.start(EndpointSliceController(client))
    await client.create(SERVICES, service(type="LoadBalancer"))
    for i in range(2):
        await make_pod(client, f"p{i}", f"10.244.5.{i + 2}")

    async def two() -> bool:
        return len(endpoint_view(await slices_of(client, "web"))) == 2

    await eventually(two)
    await ctl.wait_idle()
    full, writes = ctl.stats["full"], ctl.writes
    await client.patch(SERVICES, "web", {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}}},
                       namespace=NS, subresource="status")
    await asyncio.sleep(0.2)
    await ctl.wait_idle()
    assert (ctl.stats["full"], ctl.writes) == (full, writes)

    await client.patch(SERVICES, "web", {"metadata": {"labels": {"tier": "back"}}}, namespace=NS)

    async def relabelled() -> bool:
        return all(s["metadata"]["labels"].get("tier") == "back" for s in await slices_of(client, "web"))

    await eventually(relabelled)
    await ctl.wait_idle()
    assert ctl.stats["full"] == full + 1
