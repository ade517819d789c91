"""SharedInformerFactory: one informer per resource and selectors, shared by controllers that the
factory (not the controllers) starts and stops; the controller-manager option that shares it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from sliceplane.api.registry import CONFIG_MAPS, ENDPOINT_SLICES, NODES, PODS, SERVICES
from sliceplane.client.informer import SharedInformerFactory
from sliceplane.client.rest import RESTClient
from sliceplane.controllers.endpoints import EndpointsController
from sliceplane.controllers.endpointslice.controller import EndpointSliceController
from sliceplane.controllers.garbagecollector import GarbageCollector
from sliceplane.controllers.manager import ControllerManager, ManagerOptions
from sliceplane.controllers.replicaset import ReplicaSetController

NS = "default"


async def eventually(check: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("first", "second", "same"), [
    ((PODS, {}), (PODS, {}), True),
    ((PODS, {"namespace": "a"}), (PODS, {"namespace": "a"}), True),
    ((PODS, {}), (PODS, {"namespace": "a"}), False),
    ((ENDPOINT_SLICES, {"label_selector": "x=1"}), (ENDPOINT_SLICES, {}), False),
    ((ENDPOINT_SLICES, {"label_selector": "x=1"}), (ENDPOINT_SLICES, {"label_selector": "x=2"}), False),
    ((PODS, {"field_selector": "spec.nodeName=n1"}), (PODS, {}), False),
    ((PODS, {}), (SERVICES, {}), False),
], ids=["same-kind", "same-namespace", "namespace-differs", "selector-vs-none", "selectors-differ",
        "field-selector", "kinds-differ"])
def test_informer_identity(first: tuple[Any, dict[str, str]], second: tuple[Any, dict[str, str]], same: bool) -> None:
    f = SharedInformerFactory(RESTClient("http://127.0.0.1:1"))
    a = f.informer(first[0], **first[1])
    b = f.informer(second[0], **second[1])
    assert (a is b) is same
    assert len(f.informers()) == (1 if same else 2)


def test_controllers_given_one_factory_share_its_informers() -> None:
    f = SharedInformerFactory(RESTClient("http://127.0.0.1:1"))
    eps = EndpointSliceController(f.client, informers=f)
    ep = EndpointsController(f.client, informers=f)
    rs = ReplicaSetController(f.client, informers=f)
    gc = GarbageCollector(f.client, informers=f)
    assert eps.pods is ep.pods is rs.pod_informer is gc.informers[PODS]
    assert eps.services is ep.services is gc.informers[SERVICES]
    assert eps.nodes is gc.informers[NODES]
    # The controller's own label-selected slices are a separate informer from the GC's.
    assert eps.slices is not gc.informers[ENDPOINT_SLICES]
    pods = [i for i in f.informers() if i.info is PODS]
    assert len(pods) == 1
    # Every controller's handlers and indexes are on the one pod informer.
    assert len(pods[0]._handlers) == 4
    assert set(pods[0]._indexes) == {"namespace", "controller", "orphans"}


async def test_factory_start_stop_and_late_informers(client: RESTClient) -> None:
    await client.create(CONFIG_MAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": NS}})
    f = SharedInformerFactory(client)
    cms = f.informer(CONFIG_MAPS)
    seen: list[str] = []
    cms.add_handlers(lambda o: seen.append(o["metadata"]["name"]))
    f.start()
    f.start()  # idempotent: one watch per informer
    await asyncio.wait_for(f.wait_synced(), 10)
    assert seen == ["a"]
    late = f.informer(PODS)
    f.start()  # informers added after start are started by the next start()
    await asyncio.wait_for(late.wait_synced(), 10)
    late_seen: list[str] = []
    cms.add_handlers(lambda o: late_seen.append(o["metadata"]["name"]))  # replayed from the store
    assert late_seen == ["a"]
    await f.stop()
    await client.create(CONFIG_MAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": NS}})
    await asyncio.sleep(0.2)
    assert seen == ["a"]


async def test_stopping_one_controller_keeps_the_shared_informers_running(client: RESTClient) -> None:
    f = SharedInformerFactory(client)
    eps = EndpointSliceController(client, informers=f)
    legacy = EndpointsController(client, informers=f)
    tasks = [asyncio.create_task(eps.run()), asyncio.create_task(legacy.run())]
    try:
        await asyncio.wait_for(f.wait_synced(), 10)
        await eps.stop()
        await asyncio.wait_for(tasks[0], 5)
        await client.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": NS},
                                   "spec": {"containers": [{"name": "c", "image": "nginx"}]}})

        async def seen() -> bool:
            return legacy.pods.get(f"{NS}/p") is not None

        await eventually(seen)
    finally:
        await legacy.stop()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(t, 5)
        await f.stop()


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-controller"])
async def test_manager_informers(client: RESTClient, shared: bool) -> None:
    m = ControllerManager(client, ManagerOptions(shared_informers=shared))
    pods = {id(c.pods) for c in (m.controllers["endpointslice"], m.controllers["endpoint"])}
    assert len(pods) == (1 if shared else 2)
    await m.start()
    try:
        await client.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
                                       "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})

        async def sliced() -> bool:
            lst = await client.list(ENDPOINT_SLICES, NS, label_selector="kubernetes.io/service-name=web")
            return len(lst.get("items") or []) == 1

        await eventually(sliced)
    finally:
        await m.stop()
    assert all(not i.has_synced or i._loop_task is None or i._loop_task.done() for i in m.informers.informers())


CONTROLLERS_FLAG_CASES = [
    ("star", "*", {"endpointslice", "endpointslicemirroring", "endpoint", "deployment", "replicaset",
                   "garbagecollector", "namespace", "nodelifecycle", "taint-eviction-controller", "podgc"}),
    ("one", "endpointslice", {"endpointslice"}),
    ("star-minus", "*,-endpoint,-namespace,-node-lifecycle-controller,-taint-eviction-controller,-podgc",
     {"endpointslice", "endpointslicemirroring", "deployment", "replicaset", "garbagecollector"}),
    ("long-names", "endpointslice-controller,garbage-collector-controller", {"endpointslice", "garbagecollector"}),
    ("minus-alone", "-endpoint", set()),
    ("spaces-and-empties", " deployment , ,replicaset", {"deployment", "replicaset"}),
    # kube-controller-manager's own names, copied from its manifests: accepted, not run
    ("kubernetes-names", "*,-ttl,-bootstrapsigner,-tokencleaner,serviceaccount-controller",
     {"endpointslice", "endpointslicemirroring", "endpoint", "deployment", "replicaset", "garbagecollector",
      "namespace", "nodelifecycle", "taint-eviction-controller", "podgc"}),
    ("only-kubernetes-names", "job,cronjob-controller", set()),
]


@pytest.mark.parametrize(("flag", "want"), [c[1:] for c in CONTROLLERS_FLAG_CASES],
                         ids=[c[0] for c in CONTROLLERS_FLAG_CASES])
def test_controllers_flag(flag: str, want: set[str]) -> None:
    from sliceplane.controllers.manager import enabled_controllers

    assert enabled_controllers(flag) == want


def test_controllers_flag_unknown_name() -> None:
    from sliceplane.controllers.manager import enabled_controllers

    with pytest.raises(ValueError, match='"endpoints" is not in the list of known controllers'):
        enabled_controllers("*,-endpoints")


def test_kubernetes_only_controllers_are_named() -> None:
    from sliceplane.controllers.manager import kubernetes_only_controllers

    assert kubernetes_only_controllers("*,-ttl,endpointslice,statefulset-controller") == [
        "ttl", "statefulset-controller"]


def test_build_controllers_runs_only_the_named_ones() -> None:
    from sliceplane.controllers.manager import ManagerOptions, build_controllers

    client = RESTClient("http://127.0.0.1:9")
    built = build_controllers(client, ManagerOptions(controllers=frozenset({"endpointslice", "endpoint"}),
                                                     endpoints_controller=False))
    assert sorted(built) == ["endpointslice"]
