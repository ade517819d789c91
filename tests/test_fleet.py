"""The node fleet end to end: a real API server over the memory store, pods created with the client."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sliceplane.api.registry import EVENTS, LEASES, NODE_LEASE_NAMESPACE, NODES, PODS
from sliceplane.apiserver.app import APIServer
from sliceplane.apiserver.config import ServerConfig
from sliceplane.client.rest import ApiError, RESTClient
from sliceplane.fleet.fleet import Fleet
from sliceplane.store.memory import MemoryStore


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    s = MemoryStore()
    await s.start()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def client(store: MemoryStore) -> AsyncIterator[RESTClient]:
    srv = APIServer(ServerConfig(port=0), store=store)
    await srv.start()
    c = RESTClient(srv.url, timeout=20)
    try:
        yield c
    finally:
        await c.close()
        await srv.stop()


class Running:
    """A fleet running in a task, stopped (and checked for errors) on exit."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Fleet:
        self.task = asyncio.create_task(self.fleet.run())
        ready = asyncio.ensure_future(self.fleet.wait_ready())
        await asyncio.wait([ready, self.task], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if self.task.done():
            self.task.result()
        assert ready.done(), "fleet did not become ready"
        return self.fleet

    async def __aexit__(self, *exc: object) -> None:
        await self.fleet.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)


def new_pod(name: str, ns: str = "default", **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}], **spec}}


def cond(pod: dict, type_: str) -> str:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c["status"]
    return ""


def is_ready(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and cond(pod, "Ready") == "True"


async def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll an async check until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {check.__name__}")
        await asyncio.sleep(interval)


async def pods(c: RESTClient, ns: str = "default") -> list[dict]:
    return (await c.list(PODS, ns))["items"]


async def test_nodes_registered(client: RESTClient) -> None:
    async with Running(Fleet(client, 4, pod_ready_delay=0.1)):
        nodes = {n["metadata"]["name"]: n for n in (await client.list(NODES))["items"]}
    assert sorted(nodes) == ["node-0", "node-1", "node-2", "node-3"]
    zones = [nodes[f"node-{i}"]["metadata"]["labels"]["topology.kubernetes.io/zone"] for i in range(4)]
    assert zones == ["zone-a", "zone-b", "zone-c", "zone-a"]
    cidrs = [nodes[f"node-{i}"]["spec"]["podCIDR"] for i in range(4)]
    assert len(set(cidrs)) == 4
    assert all(ipaddress.ip_network(c).subnet_of(ipaddress.ip_network("10.128.0.0/9")) for c in cidrs)
    assert all(ipaddress.ip_network(c).prefixlen == 19 for c in cidrs)
    for n in nodes.values():
        labels = n["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == n["metadata"]["name"]
        assert labels["kubernetes.io/os"] == "linux"
        assert labels["topology.kubernetes.io/region"] == "region-1"
        assert cond(n, "Ready") == "True"
        assert int(n["status"]["allocatable"]["pods"]) > 1000
        assert n["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0"
        kinds = [a["type"] for a in n["status"]["addresses"]]
        assert kinds == ["InternalIP", "Hostname"]
        assert ipaddress.ip_address(n["status"]["addresses"][0]["address"]) in ipaddress.ip_network("192.168.0.0/16")


async def test_pods_bound_running_ready_then_deleted_gracefully(client: RESTClient) -> None:
    seen: dict[str, list[tuple[str, str]]] = defaultdict(list)  # pod -> [(phase, Ready)] as watched

    async def watch_pods(rv: str) -> None:
        async for typ, obj in client.watch(PODS, "default", resource_version=rv, allow_bookmarks=False):
            if typ in ("ADDED", "MODIFIED"):
                state = ((obj.get("status") or {}).get("phase", ""), cond(obj, "Ready"))
                name = obj["metadata"]["name"]
                if not seen[name] or seen[name][-1] != state:
                    seen[name].append(state)
            elif typ == "DELETED":
                seen[obj["metadata"]["name"]].append(("DELETED", ""))

    rv = (await client.list(PODS, "default"))["metadata"]["resourceVersion"]
    watcher = asyncio.create_task(watch_pods(rv))
    async with Running(Fleet(client, 3, pod_ready_delay=0.3, max_grace_period=0.5)) as fleet:
        nodes = {n["metadata"]["name"]: n for n in (await client.list(NODES))["items"]}
        for i in range(30):
            await client.create(PODS, new_pod(f"web-{i}"))

        async def all_ready() -> list[dict] | None:
            items = await pods(client)
            return items if len(items) == 30 and all(is_ready(p) for p in items) else None

        items = await eventually(all_ready)
        per_node: dict[str, int] = defaultdict(int)
        ips = set()
        for p in items:
            node = nodes[p["spec"]["nodeName"]]
            per_node[p["spec"]["nodeName"]] += 1
            st = p["status"]
            ip = st["podIP"]
            ips.add(ip)
            assert st["podIPs"] == [{"ip": ip}]
            assert ipaddress.ip_address(ip) in ipaddress.ip_network(node["spec"]["podCIDR"])
            assert st["hostIP"] == node["status"]["addresses"][0]["address"]
            assert st["hostIPs"] == [{"ip": st["hostIP"]}]
            assert st["startTime"]
            (cs,) = st["containerStatuses"]
            assert (cs["name"], cs["ready"], cs["started"], list(cs["state"])) == ("web", True, True, ["running"])
            assert cs["image"] == "docker.io/library/nginx:1.27"
            assert cs["containerID"].startswith("containerd://") and cs["imageID"]
            assert {c["type"]: c["status"] for c in st["conditions"]} == {
                "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                "ContainersReady": "True", "PodScheduled": "True"}
            assert all(c["lastTransitionTime"] for c in st["conditions"])
        assert len(ips) == 30
        assert dict(per_node) == {"node-0": 10, "node-1": 10, "node-2": 10}  # fewest pods first
        assert fleet.stats["binds"] == 30

        victim = items[0]["metadata"]["name"]
        await client.delete(PODS, victim, "default")  # default grace period: 30s, capped to 0.5s

        async def gone() -> bool:
            try:
                await client.get(PODS, victim, "default")
            except ApiError as e:
                return e.code == 404
            return False

        await eventually(gone)
    await asyncio.sleep(0.2)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    # every pod was Running-but-not-ready before it was Ready; all but the victim stay Ready
    assert len(seen) == 30
    for name, states in seen.items():
        live = [s for s in states if s[0] != "DELETED"]
        assert live.index(("Running", "False")) < live.index(("Running", "True")), (name, states)
        if name != victim:
            assert live[-1] == ("Running", "True"), (name, states)
    # the deleted pod lost readiness before it disappeared
    assert seen[victim][-2:] == [("Running", "False"), ("DELETED", "")], seen[victim]


async def test_deleting_everything_frees_every_address(client: RESTClient) -> None:
    async with Running(Fleet(client, 2, pod_ready_delay=0.1, max_grace_period=0.2, dual_stack=True)) as fleet:
        for i in range(20):
            await client.create(PODS, new_pod(f"d-{i}"))

        async def ready20() -> bool:
            items = await pods(client)
            return len(items) == 20 and all(is_ready(p) for p in items)

        await eventually(ready20)
        assert fleet.addresses_in_use() == 40  # IPv4 and IPv6 for each
        assert fleet.pods_per_node() == {"node-0": 10, "node-1": 10}
        for i in range(20):
            await client.delete(PODS, f"d-{i}", "default")

        async def none_left() -> bool:
            return not await pods(client) and fleet.addresses_in_use() == 0

        await eventually(none_left)
        assert fleet.pods_per_node() == {"node-0": 0, "node-1": 0}
        assert fleet.stats["deletes"] == 20


async def test_restart_reuses_nodes_and_addresses(client: RESTClient) -> None:
    async with Running(Fleet(client, 2, pod_ready_delay=0)):
        for i in range(6):
            await client.create(PODS, new_pod(f"a-{i}"))

        async def ready6() -> list[dict] | None:
            items = await pods(client)
            return items if len(items) == 6 and all(is_ready(p) for p in items) else None

        before = await eventually(ready6)
    nodes_before = {n["metadata"]["name"]: n for n in (await client.list(NODES))["items"]}

    async with Running(Fleet(client, 2, pod_ready_delay=0)) as again:
        nodes_after = {n["metadata"]["name"]: n for n in (await client.list(NODES))["items"]}
        for name, n in nodes_before.items():
            assert nodes_after[name]["metadata"]["uid"] == n["metadata"]["uid"]
            assert nodes_after[name]["spec"]["podCIDRs"] == n["spec"]["podCIDRs"]
        for i in range(6):
            await client.create(PODS, new_pod(f"b-{i}"))

        async def ready12() -> list[dict] | None:
            items = await pods(client)
            return items if len(items) == 12 and all(is_ready(p) for p in items) else None

        after = await eventually(ready12)
        assert again.stats["binds"] == 6
        assert again.stats["status_writes"] == 6  # one Ready write per new pod, none for the old ones
    old = {p["metadata"]["name"]: p["status"]["podIP"] for p in before}
    assert {p["metadata"]["name"]: p["status"]["podIP"] for p in after if p["metadata"]["name"] in old} == old
    all_ips = [p["status"]["podIP"] for p in after]
    assert len(set(all_ips)) == 12


async def test_dual_stack(client: RESTClient) -> None:
    async with Running(Fleet(client, 2, pod_ready_delay=0, dual_stack=True)):
        node = (await client.get(NODES, "node-0"))
        v4, v6 = node["spec"]["podCIDRs"]
        assert ipaddress.ip_network(v4).version == 4 and ipaddress.ip_network(v6).version == 6
        assert ipaddress.ip_network(v6).prefixlen == 64
        await client.create(PODS, new_pod("ds"))

        async def ready() -> dict | None:
            p = await client.get(PODS, "ds", "default")
            return p if is_ready(p) else None

        p = await eventually(ready)
    ips = [x["ip"] for x in p["status"]["podIPs"]]
    assert [ipaddress.ip_address(ip).version for ip in ips] == [4, 6]
    assert p["status"]["podIP"] == ips[0]
    assert [ipaddress.ip_address(x["ip"]).version for x in p["status"]["hostIPs"]] == [4, 6]


async def test_host_network_pods_share_the_node_address(client: RESTClient) -> None:
    async with Running(Fleet(client, 1, pod_ready_delay=0)):
        await client.create(PODS, new_pod("hostnet", hostNetwork=True))
        await client.create(PODS, new_pod("regular"))

        async def both_ready() -> list[dict] | None:
            items = await pods(client)
            return items if len(items) == 2 and all(is_ready(p) for p in items) else None

        items = {p["metadata"]["name"]: p["status"] for p in await eventually(both_ready)}
    assert items["hostnet"]["podIP"] == items["hostnet"]["hostIP"] == "192.168.0.1"
    assert items["regular"]["podIP"] != "192.168.0.1"


async def test_pods_for_other_schedulers_and_selectors(client: RESTClient) -> None:
    async with Running(Fleet(client, 3, pod_ready_delay=0)):
        await client.create(PODS, new_pod("other", schedulerName="my-scheduler"))
        await client.create(PODS, new_pod("zoned", nodeSelector={"topology.kubernetes.io/zone": "zone-c"}))
        await client.create(PODS, new_pod("nowhere", nodeSelector={"disktype": "ssd"}))

        async def zoned_ready() -> dict | None:
            p = await client.get(PODS, "zoned", "default")
            return p if is_ready(p) else None

        assert (await eventually(zoned_ready))["spec"]["nodeName"] == "node-2"

        async def nowhere_unschedulable() -> dict | None:
            p = await client.get(PODS, "nowhere", "default")
            return p if cond(p, "PodScheduled") == "False" else None

        p = await eventually(nowhere_unschedulable)
        assert not p["spec"].get("nodeName")
        c = next(c for c in p["status"]["conditions"] if c["type"] == "PodScheduled")
        assert c["reason"] == "Unschedulable"
        assert c["message"] == ("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
                                "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")

        async def failed_scheduling() -> list[tuple[str, str, str]] | None:
            events = (await client.list(EVENTS, "default"))["items"]
            got = [(e["type"], e["source"]["component"], e["message"]) for e in events
                   if e["reason"] == "FailedScheduling" and e["involvedObject"]["name"] == "nowhere"]
            return got or None

        assert (await eventually(failed_scheduling)) == [("Warning", "default-scheduler", c["message"])]
        assert not (await client.get(PODS, "other", "default"))["spec"].get("nodeName")


async def test_a_terminated_pod_held_by_a_finalizer_ends_succeeded(client: RESTClient) -> None:
    async with Running(Fleet(client, 1, pod_ready_delay=0, max_grace_period=0.1)):
        created = new_pod("held")
        created["metadata"]["finalizers"] = ["example.com/hold"]
        await client.create(PODS, created)

        async def ready() -> dict | None:
            p = await client.get(PODS, "held", "default")
            return p if is_ready(p) else None

        await eventually(ready)
        await client.delete(PODS, "held", "default")

        async def ended() -> dict | None:
            p = await client.get(PODS, "held", "default")
            return p if p["status"]["phase"] == "Succeeded" else None

        p = await eventually(ended)
        assert p["metadata"]["finalizers"] == ["example.com/hold"] and p["metadata"]["deletionTimestamp"]
        assert [c["state"]["terminated"]["exitCode"] for c in p["status"]["containerStatuses"]] == [0]


async def test_a_deleted_node_is_gone_for_its_kubelet(client: RESTClient) -> None:
    """Its Node deleted, a kubelet stops: no pods are scheduled there and its Lease is not renewed
    (the pod garbage collector deletes the pods left on it)."""
    async with Running(Fleet(client, 2, pod_ready_delay=0, lease_duration=1)) as fleet:
        await client.delete(NODES, "node-0")

        async def gone() -> bool:
            return fleet.node_informer.get("node-0") is None

        await eventually(gone)
        with contextlib.suppress(ApiError):
            await client.delete(LEASES, "node-0", NODE_LEASE_NAMESPACE)
        for i in range(4):
            await client.create(PODS, new_pod(f"p{i}"))

        async def placed() -> list[str] | None:
            pods = (await client.list(PODS, "default"))["items"]
            nodes = sorted(p["spec"].get("nodeName") or "" for p in pods)
            return nodes if len(nodes) == 4 and all(nodes) else None

        assert await eventually(placed) == ["node-1"] * 4
        await asyncio.sleep(0.6)  # more than two renewals of a 1 s lease
        with pytest.raises(ApiError) as e:
            await client.get(LEASES, "node-0", NODE_LEASE_NAMESPACE)
        assert e.value.code == 404
        assert (await client.get(LEASES, "node-1", NODE_LEASE_NAMESPACE))["spec"]["holderIdentity"] == "node-1"


async def test_cordoned_and_tainted_nodes_as_the_api_shows_them(client: RESTClient) -> None:
    """kubectl cordon and kubectl taint on the fleet's nodes steer where new pods go."""
    async with Running(Fleet(client, 3, pod_ready_delay=0)) as fleet:
        await client.patch(NODES, "node-0", {"spec": {"unschedulable": True}})
        await client.patch(NODES, "node-1", {"spec": {"taints": [{"key": "dedicated", "value": "db",
                                                                  "effect": "NoSchedule"}]}})

        async def seen() -> bool:
            n0, n1 = fleet.node_informer.get("node-0"), fleet.node_informer.get("node-1")
            return bool(n0 and n0["spec"].get("unschedulable") and n1 and n1["spec"].get("taints"))

        await eventually(seen)
        for i in range(3):
            await client.create(PODS, new_pod(f"plain-{i}"))
        await client.create(PODS, new_pod("db", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db",
                                                              "effect": "NoSchedule"}],
                                          nodeSelector={"kubernetes.io/hostname": "node-1"}))

        async def placed() -> dict[str, str] | None:
            pods = (await client.list(PODS, "default"))["items"]
            where = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods}
            return where if len(where) == 4 and all(where.values()) else None

        assert await eventually(placed) == {"plain-0": "node-2", "plain-1": "node-2", "plain-2": "node-2",
                                            "db": "node-1"}


async def test_many_pods_get_distinct_addresses(client: RESTClient) -> None:
    async with Running(Fleet(client, 5, pod_ready_delay=0.2, concurrency=32)):
        sem = asyncio.Semaphore(32)

        async def make(i: int) -> None:
            async with sem:
                await client.create(PODS, new_pod(f"m-{i}"))

        await asyncio.gather(*(make(i) for i in range(250)))

        async def all_ready() -> list[dict] | None:
            items = await pods(client)
            return items if len(items) == 250 and all(is_ready(p) for p in items) else None

        items = await eventually(all_ready, 120, interval=0.5)
    assert len({p["status"]["podIP"] for p in items}) == 250
    counts: dict[str, int] = defaultdict(int)
    for p in items:
        counts[p["spec"]["nodeName"]] += 1
    assert sorted(counts.values()) == [50, 50, 50, 50, 50]
