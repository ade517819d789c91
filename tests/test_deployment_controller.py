"""Workload controllers end to end: a real API server over the memory store, the real fleet,
the ReplicaSet, Deployment, garbage collector and namespace controllers, and the real kubectl."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from sliceplane.api.registry import CONFIG_MAPS, DEPLOYMENTS, NAMESPACES, PODS, REPLICA_SETS, SERVICES
from sliceplane.apiserver.app import APIServer
from sliceplane.apiserver.config import ServerConfig
from sliceplane.client.kubeconfig import write_kubeconfig
from sliceplane.client.rest import ApiError, RESTClient
from sliceplane.controllers.deployment import DeploymentController, pod_template_hash
from sliceplane.controllers.garbagecollector import GarbageCollector
from sliceplane.controllers.namespace import NamespaceController
from sliceplane.controllers.replicaset import ReplicaSetController
from sliceplane.fleet.fleet import Fleet
from sliceplane.store.memory import MemoryStore

FIXTURES = Path(__file__).parent / "fixtures"


class Plane:
    """API server, fleet and the workload controllers, each running in its own task."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.server: APIServer | None = None
        self.client: RESTClient | None = None
        self.controllers: dict[str, Any] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.fleet: Fleet | None = None

    async def start(self) -> None:
        await self.store.start()
        self.server = APIServer(ServerConfig(port=0), store=self.store)
        await self.server.start()
        self.client = RESTClient(self.server.url, timeout=20)
        self.fleet = Fleet(self.client, 3, pod_ready_delay=0.05, max_grace_period=0.3)
        self.tasks["fleet"] = asyncio.create_task(self.fleet.run())
        await asyncio.wait_for(self.fleet.wait_ready(), 30)
        for name in ("replicaset", "deployment", "garbagecollector", "namespace"):
            self.start_controller(name)

    def start_controller(self, name: str) -> None:
        assert self.client is not None
        factory: dict[str, Callable[[], Any]] = {
            "replicaset": lambda: ReplicaSetController(self.client),
            "deployment": lambda: DeploymentController(self.client),
            "garbagecollector": lambda: GarbageCollector(self.client),
            "namespace": lambda: NamespaceController(self.client),
        }
        c = factory[name]()
        self.controllers[name] = c
        self.tasks[name] = asyncio.create_task(c.run(), name=name)

    async def stop_controller(self, name: str) -> None:
        await self.controllers.pop(name).stop()
        task = self.tasks.pop(name)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)

    async def stop(self) -> None:
        for name in list(self.controllers):
            await self.stop_controller(name)
        if self.fleet is not None:
            await self.fleet.stop()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.tasks.pop("fleet"), 10)
        for name, t in self.tasks.items():
            assert not t.done() or t.cancelled() or t.exception() is None, f"{name} failed: {t.exception()}"
        if self.client is not None:
            await self.client.close()
        if self.server is not None:
            await self.server.stop()
        await self.store.close()

    def check_healthy(self) -> None:
        for name, t in self.tasks.items():
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise AssertionError(f"{name} crashed") from t.exception()


@pytest.fixture
async def plane() -> AsyncIterator[Plane]:
    p = Plane()
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def eventually(plane: Plane, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        plane.check_healthy()
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {check.__name__}")
        await asyncio.sleep(0.05)


def deployment(name: str = "web", replicas: int = 10, image: str = "nginx:1.27", ns: str = "default",
               **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
            **spec,
        },
    }


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


async def active_pods(c: RESTClient, ns: str = "default", app: str = "web") -> list[dict]:
    items = (await c.list(PODS, ns, label_selector=f"app={app}"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def rollout_counts(c: RESTClient, ns: str = "default", app: str = "web") -> tuple[int, int]:
    """(replicas the ReplicaSets ask for together, pods ready): what maxSurge and maxUnavailable bound.

    Surge bounds what the controller asks for; the pods themselves may briefly exceed it while
    an old pod's deletion and a new pod's creation race, as in Kubernetes.
    """
    rss = (await c.list(REPLICA_SETS, ns, label_selector=f"app={app}"))["items"]
    pods = await active_pods(c, ns, app)
    return sum(rs["spec"]["replicas"] for rs in rss), sum(1 for p in pods if is_ready(p))


def rolled_out(d: dict) -> bool:
    """What `kubectl rollout status` checks before it says "successfully rolled out"."""
    st = d.get("status") or {}
    n = d["spec"]["replicas"]
    return (d["metadata"]["generation"] <= st.get("observedGeneration", 0)
            and st.get("updatedReplicas", 0) == n and st.get("replicas", 0) == n
            and st.get("availableReplicas", 0) == n)


async def wait_rolled_out(plane: Plane, name: str = "web", ns: str = "default") -> dict:
    assert plane.client is not None

    async def done() -> dict | None:
        d = await plane.client.get(DEPLOYMENTS, name, ns)
        return d if rolled_out(d) else None

    return await eventually(plane, done)


async def kubectl(plane: Plane, *args: str, timeout: float = 60) -> tuple[int, str]:
    assert plane.server is not None
    with tempfile.TemporaryDirectory() as home:
        cfg = os.path.join(home, "kubeconfig")
        write_kubeconfig(cfg, plane.server.url)
        proc = await asyncio.create_subprocess_exec(
            "kubectl", "--kubeconfig", cfg, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "HOME": home},
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        return proc.returncode or 0, out.decode()


async def test_deployment_creates_replicaset_and_pods(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    created = await c.create(DEPLOYMENTS, deployment(replicas=10))
    d = await wait_rolled_out(plane)
    rss = (await c.list(REPLICA_SETS, "default"))["items"]
    assert len(rss) == 1
    rs = rss[0]
    h = pod_template_hash(created["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "10"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "13"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert rs["status"]["replicas"] == rs["status"]["readyReplicas"] == rs["status"]["availableReplicas"] == 10
    assert rs["status"]["observedGeneration"] == rs["metadata"]["generation"]
    pods = await active_pods(c)
    assert len(pods) == 10
    for p in pods:
        assert p["metadata"]["name"].startswith(f"web-{h}-")
        assert p["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
        assert p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert p["metadata"]["ownerReferences"][0]["controller"] is True
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (10, 10, 10, 10)
    assert "unavailableReplicas" not in st

    async def complete() -> bool:
        cur = await c.get(DEPLOYMENTS, "web", "default")
        conds = {x["type"]: (x["status"], x["reason"]) for x in cur["status"].get("conditions", [])}
        return conds == {"Available": ("True", "MinimumReplicasAvailable"),
                         "Progressing": ("True", "NewReplicaSetAvailable")}

    await eventually(plane, complete)
    code, out = await kubectl(plane, "rollout", "status", "deployment/web", "--timeout=30s")
    assert code == 0, out
    assert 'deployment "web" successfully rolled out' in out


async def test_rolling_update_honours_surge_and_unavailable(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(DEPLOYMENTS, deployment(replicas=10))
    await wait_rolled_out(plane)
    samples: list[tuple[int, int]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            samples.append(await rollout_counts(c))
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    await c.patch(DEPLOYMENTS, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.28"}]}}}}, namespace="default", patch_type="merge")

    async def new_template_done() -> dict | None:
        d = await c.get(DEPLOYMENTS, "web", "default")
        return d if d["metadata"]["generation"] == 2 and rolled_out(d) else None

    d = await eventually(plane, new_template_done, timeout=60)
    stop.set()
    await sampler
    assert len(samples) > 5
    # maxSurge 25% of 10 rounds up to 3: at most 13 replicas asked of the ReplicaSets together;
    # maxUnavailable 25% rounds down to 2: at least 8 pods ready at every moment
    assert max(total for total, _ in samples) <= 13, samples
    assert min(ready for _, ready in samples) >= 8, samples
    assert max(total for total, _ in samples) > 10  # it did surge
    rss = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs
           for rs in (await c.list(REPLICA_SETS, "default"))["items"]}
    assert sorted(rss) == ["1", "2"]
    assert rss["1"]["spec"]["replicas"] == 0
    assert rss["2"]["spec"]["replicas"] == 10
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    pods = await active_pods(c)
    assert len(pods) == 10
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in pods)


async def test_kubectl_scale_and_rollout_restart(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(DEPLOYMENTS, deployment(replicas=3))
    await wait_rolled_out(plane)
    code, out = await kubectl(plane, "scale", "deployment/web", "--replicas=5")
    assert code == 0, out

    async def five() -> bool:
        return len(await active_pods(c)) == 5 and rolled_out(await c.get(DEPLOYMENTS, "web", "default"))

    await eventually(plane, five)
    code, out = await kubectl(plane, "rollout", "restart", "deployment/web")
    assert code == 0, out
    code, out = await kubectl(plane, "rollout", "status", "deployment/web", "--timeout=60s")
    assert code == 0, out
    assert "successfully rolled out" in out
    d = await c.get(DEPLOYMENTS, "web", "default")
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert len(await active_pods(c)) == 5
    code, out = await kubectl(plane, "rollout", "history", "deployment/web")
    assert code == 0, out
    assert "1 " in out and "2 " in out
    code, out = await kubectl(plane, "describe", "deployment/web")
    assert code == 0, out
    assert "ScalingReplicaSet" in out and "deployment-controller" in out
    assert "Scaled up replica set web-" in out
    assert "Scaled down replica set web-" in out


async def test_restarted_controllers_make_no_writes_on_a_converged_cluster(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(DEPLOYMENTS, deployment(replicas=4))
    await wait_rolled_out(plane)
    await asyncio.sleep(0.5)  # let the last status writes settle

    async def versions() -> dict[str, str]:
        out = {}
        for info in (DEPLOYMENTS, REPLICA_SETS, PODS):
            for o in (await c.list(info, "default"))["items"]:
                out[f"{info.plural}/{o['metadata']['name']}"] = o["metadata"]["resourceVersion"]
        return out

    before = await versions()
    for name in ("deployment", "replicaset"):
        await plane.stop_controller(name)
        plane.start_controller(name)
    for name in ("deployment", "replicaset"):
        await asyncio.wait_for(plane.controllers[name].wait_idle(), 10)
    assert await versions() == before


async def test_deleting_a_deployment_collects_its_replicasets_and_pods(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(DEPLOYMENTS, deployment(replicas=3))
    await wait_rolled_out(plane)
    await c.delete(DEPLOYMENTS, "web", "default")

    async def gone() -> bool:
        rss = (await c.list(REPLICA_SETS, "default"))["items"]
        pods = (await c.list(PODS, "default"))["items"]
        return not rss and not pods

    await eventually(plane, gone)


async def test_foreground_deletion_waits_for_dependents(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(DEPLOYMENTS, deployment(replicas=3))
    await wait_rolled_out(plane)
    await c.delete(DEPLOYMENTS, "web", "default", propagation_policy="Foreground")
    d = await c.get(DEPLOYMENTS, "web", "default")
    assert "foregroundDeletion" in d["metadata"]["finalizers"]

    async def all_gone() -> bool:
        try:
            await c.get(DEPLOYMENTS, "web", "default")
            return False
        except ApiError as e:
            assert e.code == 404
        return not (await c.list(REPLICA_SETS, "default"))["items"] and not (await c.list(PODS, "default"))["items"]

    await eventually(plane, all_gone)


async def test_orphan_deletion_keeps_pods_without_owner(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(DEPLOYMENTS, deployment(replicas=2))
    await wait_rolled_out(plane)
    # orphan the ReplicaSet's pods: stop the deployment from recreating the RS first
    await plane.stop_controller("deployment")
    rs = (await c.list(REPLICA_SETS, "default"))["items"][0]
    await c.delete(REPLICA_SETS, rs["metadata"]["name"], "default", propagation_policy="Orphan")

    async def orphaned() -> bool:
        if (await c.list(REPLICA_SETS, "default"))["items"]:
            return False
        pods = await active_pods(c)
        return len(pods) == 2 and all(not p["metadata"].get("ownerReferences") for p in pods)

    await eventually(plane, orphaned)


async def test_gc_checks_owner_by_get_and_collects_dangling_dependents(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    owner = await c.create(CONFIG_MAPS, {"metadata": {"name": "owner", "namespace": "default"}, "data": {}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    await c.create(CONFIG_MAPS, {"metadata": {"name": "kept", "namespace": "default", "ownerReferences": [ref]}})
    dangling = {**ref, "uid": "00000000-0000-0000-0000-000000000000"}
    await c.create(CONFIG_MAPS, {"metadata": {"name": "dangling", "namespace": "default",
                                              "ownerReferences": [dangling]}})

    async def names() -> set[str]:
        return {o["metadata"]["name"] for o in (await c.list(CONFIG_MAPS, "default"))["items"]}

    async def dangling_gone() -> bool:
        return "dangling" not in await names()

    await eventually(plane, dangling_gone)
    assert {"owner", "kept"} <= await names()
    await c.delete(CONFIG_MAPS, "owner", "default")

    async def kept_gone() -> bool:
        return "kept" not in await names()

    await eventually(plane, kept_gone)


async def test_deleting_a_namespace_removes_its_content_then_itself(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    # spec.finalizers as the API server defaults it
    await c.create(NAMESPACES, {"metadata": {"name": "team"}, "spec": {"finalizers": ["kubernetes"]}})
    await c.create(DEPLOYMENTS, deployment(replicas=3, ns="team"))
    await c.create(SERVICES, {"metadata": {"name": "web", "namespace": "team"},
                              "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    await c.create(CONFIG_MAPS, {"metadata": {"name": "cfg", "namespace": "team"}, "data": {"a": "b"}})
    await wait_rolled_out(plane, ns="team")
    await c.delete(NAMESPACES, "team")
    ns = await c.get(NAMESPACES, "team")
    assert ns["status"]["phase"] == "Terminating"

    async def ns_gone() -> bool:
        try:
            await c.get(NAMESPACES, "team")
            return False
        except ApiError as e:
            return e.code == 404

    await eventually(plane, ns_gone)
    for info in (DEPLOYMENTS, REPLICA_SETS, PODS, SERVICES, CONFIG_MAPS):
        assert (await c.list(info, "team"))["items"] == [], info.plural


async def test_kubectl_rollout_undo_reuses_the_old_replicaset(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(DEPLOYMENTS, deployment(replicas=2))
    await wait_rolled_out(plane)
    first = (await c.list(REPLICA_SETS, "default"))["items"][0]["metadata"]["name"]
    code, out = await kubectl(plane, "set", "image", "deployment/web", "web=nginx:1.28")
    assert code == 0, out
    code, out = await kubectl(plane, "rollout", "status", "deployment/web", "--timeout=60s")
    assert code == 0, out
    code, out = await kubectl(plane, "rollout", "undo", "deployment/web")
    assert code == 0, out
    code, out = await kubectl(plane, "rollout", "status", "deployment/web", "--timeout=60s")
    assert code == 0, out
    rss = {rs["metadata"]["name"]: rs for rs in (await c.list(REPLICA_SETS, "default"))["items"]}
    assert len(rss) == 2
    assert rss[first]["spec"]["replicas"] == 2
    assert rss[first]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert rss[first]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    code, out = await kubectl(plane, "rollout", "history", "deployment/web")
    assert code == 0, out
    assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["2", "3"]


async def test_recreate_replaces_all_pods_at_once(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(DEPLOYMENTS, deployment(replicas=3, strategy={"type": "Recreate"}))
    await wait_rolled_out(plane)
    old_pods = {p["metadata"]["name"] for p in await active_pods(c)}
    samples: list[set[str]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            samples.append({p["metadata"]["name"] for p in (await c.list(PODS, "default"))["items"]})
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    await c.patch(DEPLOYMENTS, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.28"}]}}}}, namespace="default", patch_type="merge")

    async def done() -> dict | None:
        d = await c.get(DEPLOYMENTS, "web", "default")
        return d if d["metadata"]["generation"] == 2 and rolled_out(d) else None

    await eventually(plane, done)
    stop.set()
    await sampler
    # never old and new pods (even terminating old ones) at the same time
    for names in samples:
        assert not (names & old_pods and names - old_pods), names
    assert not {p["metadata"]["name"] for p in await active_pods(c)} & old_pods


def replica_set(name: str = "front", replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}},
        },
    }


async def test_replicaset_adopts_orphans_and_releases_relabeled_pods(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(PODS, {"metadata": {"name": "stray", "namespace": "default", "labels": {"app": "front"}},
                          "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}})
    rs = await c.create(REPLICA_SETS, replica_set(replicas=2))

    async def two_owned() -> list[dict] | None:
        pods = await active_pods(c, app="front")
        owned = [p for p in pods if (p["metadata"].get("ownerReferences") or [{}])[0].get("uid") == rs["metadata"]["uid"]]
        return pods if len(pods) == 2 and len(owned) == 2 else None

    pods = await eventually(plane, two_owned)
    assert "stray" in {p["metadata"]["name"] for p in pods}  # adopted, so only one pod was created
    assert sum(p["metadata"]["name"].startswith("front-") for p in pods) == 1
    # relabel the adopted pod: it is released and replaced
    for _ in range(20):  # the fleet writes the pod's status concurrently
        stray = await c.get(PODS, "stray", "default")
        stray["metadata"]["labels"] = {"app": "other"}
        try:
            await c.update(PODS, stray)
            break
        except ApiError as e:
            assert e.code == 409

    async def released() -> bool:
        cur = await c.get(PODS, "stray", "default")
        return not cur["metadata"].get("ownerReferences") and len(await active_pods(c, app="front")) == 2

    await eventually(plane, released)

    async def status_settled() -> bool:
        st = (await c.get(REPLICA_SETS, "front", "default"))["status"]
        return (st.get("replicas"), st.get("readyReplicas"), st.get("availableReplicas"),
                st.get("fullyLabeledReplicas")) == (2, 2, 2, 2)

    await eventually(plane, status_settled)


async def test_recreated_deployment_adopts_orphaned_replicaset(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(DEPLOYMENTS, deployment(replicas=2))
    await wait_rolled_out(plane)
    rs_name = (await c.list(REPLICA_SETS, "default"))["items"][0]["metadata"]["name"]
    pod_names = {p["metadata"]["name"] for p in await active_pods(c)}
    await c.delete(DEPLOYMENTS, "web", "default", propagation_policy="Orphan")

    async def orphaned() -> bool:
        rss = (await c.list(REPLICA_SETS, "default"))["items"]
        try:
            await c.get(DEPLOYMENTS, "web", "default")
            return False
        except ApiError:
            pass
        return len(rss) == 1 and not rss[0]["metadata"].get("ownerReferences")

    await eventually(plane, orphaned)
    again = await c.create(DEPLOYMENTS, deployment(replicas=2))

    async def adopted() -> bool:
        rss = (await c.list(REPLICA_SETS, "default"))["items"]
        return (len(rss) == 1 and rss[0]["metadata"]["name"] == rs_name
                and rss[0]["metadata"].get("ownerReferences", [{}])[0].get("uid") == again["metadata"]["uid"]
                and rolled_out(await c.get(DEPLOYMENTS, "web", "default")))

    await eventually(plane, adopted)
    assert {p["metadata"]["name"] for p in await active_pods(c)} == pod_names


async def test_gc_started_late_keeps_owned_and_collects_orphaned_dependents(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await plane.stop_controller("garbagecollector")
    owners = {}
    for name in ("alive", "doomed"):
        owners[name] = await c.create(CONFIG_MAPS, {"metadata": {"name": name, "namespace": "default"}})
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": owners[name]["metadata"]["uid"]}
        await c.create(SERVICES, {"metadata": {"name": f"svc-{name}", "namespace": "default", "ownerReferences": [ref]},
                                  "spec": {"ports": [{"port": 80}]}})
    await c.delete(CONFIG_MAPS, "doomed", "default")
    plane.start_controller("garbagecollector")

    async def collected() -> bool:
        names = {s["metadata"]["name"] for s in (await c.list(SERVICES, "default"))["items"]}
        return "svc-doomed" not in names

    await eventually(plane, collected)
    await asyncio.wait_for(plane.controllers["garbagecollector"].wait_idle(), 10)
    names = {s["metadata"]["name"] for s in (await c.list(SERVICES, "default"))["items"]}
    assert "svc-alive" in names


async def test_kubectl_delete_namespace_with_guestbook_waits_until_gone(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    code, out = await kubectl(plane, "create", "namespace", "shop")
    assert code == 0, out
    code, out = await kubectl(plane, "apply", "-n", "shop", "-f", str(FIXTURES / "guestbook-all-in-one.yaml"))
    assert code == 0, out
    for name in ("redis-master", "redis-replica", "frontend"):
        await wait_rolled_out(plane, name, "shop")
    code, out = await kubectl(plane, "delete", "namespace", "shop", "--timeout=60s")
    assert code == 0, out
    assert 'namespace "shop" deleted' in out
    with pytest.raises(ApiError) as err:
        await c.get(NAMESPACES, "shop")
    assert err.value.code == 404
    for info in (DEPLOYMENTS, REPLICA_SETS, PODS, SERVICES):
        assert (await c.list(info, "shop"))["items"] == [], info.plural


async def test_min_ready_seconds_delays_availability(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(DEPLOYMENTS, deployment(replicas=2, minReadySeconds=1))

    async def ready_not_available() -> bool:
        st = (await c.get(DEPLOYMENTS, "web", "default")).get("status") or {}
        return st.get("readyReplicas", 0) > st.get("availableReplicas", 0)

    await eventually(plane, ready_not_available)
    # nothing changes on the pods after they are ready: only the controllers' own requeue
    # after minReadySeconds can make them available
    d = await wait_rolled_out(plane)
    assert d["status"]["availableReplicas"] == 2
    rs = (await c.list(REPLICA_SETS, "default"))["items"][0]
    assert rs["spec"]["minReadySeconds"] == 1
    assert rs["status"]["availableReplicas"] == 2


async def test_kubectl_rollout_pause_and_resume(plane: Plane) -> None:
    c = plane.client
    assert c is not None
    await c.create(DEPLOYMENTS, deployment(replicas=2))
    await wait_rolled_out(plane)
    code, out = await kubectl(plane, "rollout", "pause", "deployment/web")
    assert code == 0, out
    code, out = await kubectl(plane, "set", "image", "deployment/web", "web=nginx:1.28")
    assert code == 0, out

    async def paused_condition() -> bool:
        d = await c.get(DEPLOYMENTS, "web", "default")
        conds = {x["type"]: x for x in d["status"].get("conditions", [])}
        return (d["status"].get("observedGeneration") == d["metadata"]["generation"]
                and conds["Progressing"]["reason"] == "DeploymentPaused"
                and conds["Progressing"]["status"] == "Unknown")

    await eventually(plane, paused_condition)
    await asyncio.wait_for(plane.controllers["deployment"].wait_idle(), 10)
    assert len((await c.list(REPLICA_SETS, "default"))["items"]) == 1  # no rollout while paused
    code, out = await kubectl(plane, "rollout", "resume", "deployment/web")
    assert code == 0, out
    code, out = await kubectl(plane, "rollout", "status", "deployment/web", "--timeout=60s")
    assert code == 0, out
    pods = await active_pods(c)
    assert len(pods) == 2 and all(p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in pods)


class LaggingProxy:
    """An HTTP proxy in front of the API server that delivers watch events `delay` seconds late,
    as a slow network would: lists and writes pass at once, so informers lag behind writes."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.runner: Any = None
        self.url = ""
        self.session: Any = None

    async def start(self) -> None:
        from aiohttp import ClientSession, web

        self.session = ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self.runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    async def stop(self) -> None:
        await self.session.close()
        await self.runner.cleanup()

    async def forward(self, request: Any) -> Any:
        from aiohttp import web

        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")}
        body = await request.read()
        upstream = await self.session.request(request.method, self.upstream + request.rel_url.path_qs,
                                              headers=headers, data=body or None)
        if request.query.get("watch") not in ("1", "true"):
            data = await upstream.read()
            return web.Response(status=upstream.status, body=data,
                                content_type=upstream.headers.get("Content-Type", "application/json").split(";")[0])
        resp = web.StreamResponse(status=upstream.status)
        resp.content_type = "application/json"
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def read() -> None:
            try:
                async for line in upstream.content:
                    await lines.put((loop.time() + self.delay, line))
            except Exception:  # the upstream closed: end this stream too
                pass
            finally:
                await lines.put(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await lines.get()) is not None:
                await asyncio.sleep(max(0.0, item[0] - loop.time()))
                await resp.write(item[1])
        finally:
            reader.cancel()
            upstream.release()
        return resp


async def test_replicaset_never_creates_more_pods_than_asked(plane: Plane) -> None:
    """Expectations: syncs that run before the informer shows the new pods create nothing more."""
    c = plane.client
    assert c is not None
    created: set[str] = set()
    rv = (await c.list(PODS, "default"))["metadata"]["resourceVersion"]

    async def watch() -> None:
        async for typ, obj in c.watch(PODS, "default", resource_version=rv, allow_bookmarks=False):
            if typ == "ADDED":
                created.add(obj["metadata"]["name"])

    watcher = asyncio.create_task(watch())
    await plane.stop_controller("replicaset")
    assert plane.server is not None
    proxy = LaggingProxy(plane.server.url, delay=0.3)
    await proxy.start()
    lagging = RESTClient(proxy.url, timeout=20)
    controller = ReplicaSetController(lagging)
    task = asyncio.create_task(controller.run())
    try:
        await c.create(REPLICA_SETS, replica_set(replicas=20))

        async def settled() -> bool:
            st = (await c.get(REPLICA_SETS, "front", "default")).get("status") or {}
            return st.get("availableReplicas") == 20

        await eventually(plane, settled)
        await asyncio.wait_for(controller.wait_idle(), 10)
        # scale down and up again while the informer still shows the old pods
        await c.patch(REPLICA_SETS, "front", {"spec": {"replicas": 5}}, namespace="default")
        await asyncio.sleep(0.1)
        await c.patch(REPLICA_SETS, "front", {"spec": {"replicas": 10}}, namespace="default")

        async def ten() -> bool:
            st = (await c.get(REPLICA_SETS, "front", "default")).get("status") or {}
            return st.get("replicas") == 10 and st.get("availableReplicas") == 10

        await eventually(plane, ten)
        await asyncio.wait_for(controller.wait_idle(), 10)
        await asyncio.sleep(0.5)  # events still in flight through the proxy
    finally:
        await controller.stop()
        await asyncio.wait_for(task, 10)
        await lagging.close()
        await proxy.stop()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    # 20 at first; 15 deleted; 5 more to get back to 10, never one more
    assert len(created) == 25
    assert len(await active_pods(c, app="front")) == 10


async def test_rolling_update_behind_a_lagging_watch_still_honours_surge(plane: Plane) -> None:
    c = plane.client
    assert c is not None and plane.server is not None
    await plane.stop_controller("deployment")
    await plane.stop_controller("replicaset")
    proxy = LaggingProxy(plane.server.url, delay=0.3)
    await proxy.start()
    lagging = RESTClient(proxy.url, timeout=20)
    controllers = [DeploymentController(lagging), ReplicaSetController(lagging)]
    tasks = [asyncio.create_task(x.run()) for x in controllers]
    samples: list[tuple[int, int]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            samples.append(await rollout_counts(c))
            await asyncio.sleep(0.01)

    try:
        await c.create(DEPLOYMENTS, deployment(replicas=10))
        await wait_rolled_out(plane)
        sampler = asyncio.create_task(sample())
        await c.patch(DEPLOYMENTS, "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.28"}]}}}}, namespace="default", patch_type="merge")

        async def done() -> dict | None:
            d = await c.get(DEPLOYMENTS, "web", "default")
            return d if d["metadata"]["generation"] == 2 and rolled_out(d) else None

        await eventually(plane, done, timeout=60)
        stop.set()
        await sampler
    finally:
        for x in controllers:
            await x.stop()
        for t in tasks:
            await asyncio.wait_for(t, 10)
        await lagging.close()
        await proxy.stop()
    assert max(total for total, _ in samples) <= 13, samples
    assert min(ready for _, ready in samples) >= 8, samples
    assert len(await active_pods(c)) == 10
    assert sorted(rs["spec"]["replicas"] for rs in (await c.list(REPLICA_SETS, "default"))["items"]) == [0, 10]


async def test_gc_behind_a_lagging_watch_deletes_only_true_orphans(plane: Plane) -> None:
    c = plane.client
    assert c is not None and plane.server is not None
    await plane.stop_controller("garbagecollector")
    proxy = LaggingProxy(plane.server.url, delay=0.3)
    await proxy.start()
    lagging = RESTClient(proxy.url, timeout=20)
    gc = GarbageCollector(lagging)
    task = asyncio.create_task(gc.run())
    try:
        await asyncio.wait_for(gc.wait_idle(), 10)
        for i in range(10):
            owner = await c.create(CONFIG_MAPS, {"metadata": {"name": f"owner-{i}", "namespace": "default"}})
            ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": f"owner-{i}", "uid": owner["metadata"]["uid"]}
            await c.create(CONFIG_MAPS, {"metadata": {"name": f"dep-{i}", "namespace": "default",
                                                      "ownerReferences": [ref]}})
        for i in range(0, 10, 2):
            await c.delete(CONFIG_MAPS, f"owner-{i}", "default")

        async def names() -> set[str]:
            return {o["metadata"]["name"] for o in (await c.list(CONFIG_MAPS, "default"))["items"]}

        async def collected() -> bool:
            return not {f"dep-{i}" for i in range(0, 10, 2)} & await names()

        await eventually(plane, collected)
        await asyncio.sleep(0.6)  # every event has come through the proxy
        await asyncio.wait_for(gc.wait_idle(), 10)
        assert {f"dep-{i}" for i in range(1, 10, 2)} <= await names()
    finally:
        await gc.stop()
        await asyncio.wait_for(task, 10)
        await lagging.close()
        await proxy.stop()
