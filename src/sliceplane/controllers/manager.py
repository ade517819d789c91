"""The controller-manager: runs every controller against one API server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sliceplane.client.informer import SharedInformerFactory
from sliceplane.client.rest import RESTClient

log = logging.getLogger(__name__)


class Controller(Protocol):
    async def run(self) -> None: ...

    async def stop(self) -> None: ...


# kube-controller-manager's --controllers names (its aliases; the long "-controller" names work too).
KNOWN_CONTROLLERS = ("endpointslice", "endpointslicemirroring", "endpoint", "deployment", "replicaset",
                     "garbagecollector", "namespace", "nodelifecycle", "taint-eviction-controller",
                     "podgc")
_LONG_NAMES = {"endpointslice-controller": "endpointslice", "endpointslice-mirroring-controller":
               "endpointslicemirroring", "endpoints-controller": "endpoint", "deployment-controller": "deployment",
               "replicaset-controller": "replicaset", "garbage-collector-controller": "garbagecollector",
               "namespace-controller": "namespace", "node-lifecycle-controller": "nodelifecycle",
               "pod-garbage-collector-controller": "podgc"}
# kube-controller-manager's other controllers, by alias and by long name: a --controllers value
# copied from a kube-controller-manager manifest names them; they are accepted and not run.
KUBERNETES_ONLY_CONTROLLERS = frozenset((
    "attachdetach", "bootstrapsigner", "clusterrole-aggregation", "cronjob", "csrapproving", "csrcleaner",
    "csrsigning", "daemonset", "disruption", "horizontalpodautoscaling", "job", "nodeipam",
    "persistentvolume-binder", "persistentvolume-expander", "pv-protection", "pvc-protection",
    "replicationcontroller", "resourcequota", "root-ca-cert-publisher", "route", "service", "serviceaccount",
    "serviceaccount-token", "statefulset", "tokencleaner", "ttl", "ttl-after-finished", "ephemeral-volume",
    "storage-version-gc", "resourceclaim", "legacy-service-account-token-cleaner", "validatingadmissionpolicy-status",
    "service-cidr", "cloud-node-lifecycle",
    "bootstrap-signer-controller", "certificatesigningrequest-approving-controller",
    "certificatesigningrequest-cleaner-controller", "certificatesigningrequest-signing-controller",
    "cloud-node-lifecycle-controller", "clusterrole-aggregation-controller", "cronjob-controller",
    "daemonset-controller", "device-taint-eviction-controller", "disruption-controller", "ephemeral-volume-controller",
    "horizontal-pod-autoscaler-controller", "job-controller", "kube-apiserver-serving-clustertrustbundle-publisher-controller",
    "legacy-serviceaccount-token-cleaner-controller", "node-ipam-controller",
    "node-route-controller", "persistentvolume-attach-detach-controller", "persistentvolume-binder-controller",
    "persistentvolume-expander-controller", "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
    "podcertificaterequest-cleaner-controller", "replicationcontroller-controller", "resourceclaim-controller",
    "resourcequota-controller", "root-ca-certificate-publisher-controller", "selinux-warning-controller",
    "service-cidr-controller", "service-lb-controller", "serviceaccount-controller", "serviceaccount-token-controller",
    "statefulset-controller", "storage-version-migrator-controller", "storageversion-garbage-collector-controller",
    "token-cleaner-controller", "ttl-after-finished-controller", "ttl-controller",
    "validatingadmissionpolicy-status-controller", "volumeattributesclass-protection-controller",
))


@dataclass(frozen=True)
class ManagerOptions:
    max_endpoints_per_slice: int = 100
    endpoints_max_addresses: int | None = 1000  # None: no cap (reproduces the seed's over-size objects)
    endpoints_controller: bool = True
    endpointslice_batch_period: float = 0.0
    mirroring_max_endpoints_per_subset: int = 1000
    # One informer per kind for all controllers (each kind listed, watched and held once), as
    # kube-controller-manager does: at 5,000 pods it holds 106 MiB instead of 175 MiB.
    # SLICEPLANE_SHARED_INFORMERS=0 gives every controller its own informers (to compare).
    shared_informers: bool = field(default_factory=lambda: os.environ.get("SLICEPLANE_SHARED_INFORMERS") != "0")
    # Which controllers run (see `enabled_controllers`); `endpoints_controller=False` also drops "endpoint".
    controllers: frozenset[str] = frozenset(KNOWN_CONTROLLERS)
    # The node lifecycle controller's --node-monitor-period, --node-monitor-grace-period and
    # --node-startup-grace-period, in seconds.
    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 50.0
    node_startup_grace_period: float = 60.0


def _flag_items(flag: str | list[str]) -> list[str]:
    return [i.strip() for i in (flag.split(",") if isinstance(flag, str) else flag) if i.strip()]


def kubernetes_only_controllers(flag: str | list[str]) -> list[str]:
    """The names in a --controllers value that kube-controller-manager runs and sliceplane does not."""
    return [i.lstrip("-") for i in _flag_items(flag) if i.lstrip("-") in KUBERNETES_ONLY_CONTROLLERS]


def enabled_controllers(flag: str | list[str]) -> frozenset[str]:
    """kube-controller-manager's --controllers: `*` is every controller, `foo` enables foo, `-foo`
    disables it (a name beats `*`). Raises ValueError naming an unknown controller; names of
    kube-controller-manager's controllers that sliceplane does not have are accepted and ignored."""
    named: dict[str, bool] = {}
    star = False
    for item in _flag_items(flag):
        if item == "*":
            star = True
            continue
        on = not item.startswith("-")
        name = _LONG_NAMES.get(item.lstrip("-"), item.lstrip("-"))
        if name in KUBERNETES_ONLY_CONTROLLERS:
            continue
        if name not in KNOWN_CONTROLLERS:
            raise ValueError(f'"{item.lstrip("-")}" is not in the list of known controllers: '
                             f"{', '.join(sorted(KNOWN_CONTROLLERS))}")
        named[name] = on
    return frozenset(c for c in KNOWN_CONTROLLERS if named.get(c, star))


def build_controllers(client: RESTClient, opts: ManagerOptions,
                      informers: SharedInformerFactory | None = None) -> dict[str, Any]:
    """The controllers `ControllerManager` runs, by name; given a factory, they share its informers."""
    from sliceplane.controllers.deployment import DeploymentController
    from sliceplane.controllers.endpoints import EndpointsController
    from sliceplane.controllers.endpointslice.controller import EndpointSliceController
    from sliceplane.controllers.garbagecollector import GarbageCollector
    from sliceplane.controllers.mirroring.controller import EndpointSliceMirroringController
    from sliceplane.controllers.namespace import NamespaceController
    from sliceplane.controllers.nodelifecycle import NodeLifecycleController
    from sliceplane.controllers.podgc import PodGCController
    from sliceplane.controllers.replicaset import ReplicaSetController
    from sliceplane.controllers.tainteviction import TaintEvictionController

    makers: dict[str, Callable[[], Any]] = {
        "endpointslice": lambda: EndpointSliceController(
            client, max_endpoints_per_slice=opts.max_endpoints_per_slice,
            batch_period=opts.endpointslice_batch_period, informers=informers),
        "endpointslicemirroring": lambda: EndpointSliceMirroringController(
            client, max_endpoints_per_subset=opts.mirroring_max_endpoints_per_subset, informers=informers),
        "deployment": lambda: DeploymentController(client, informers=informers),
        "replicaset": lambda: ReplicaSetController(client, informers=informers),
        "garbagecollector": lambda: GarbageCollector(client, informers=informers),
        "namespace": lambda: NamespaceController(client, informers=informers),
        "endpoint": lambda: EndpointsController(client, max_addresses=opts.endpoints_max_addresses,
                                                informers=informers),
        "nodelifecycle": lambda: NodeLifecycleController(
            client, monitor_period=opts.node_monitor_period, grace_period=opts.node_monitor_grace_period,
            startup_grace_period=opts.node_startup_grace_period, informers=informers),
        "taint-eviction-controller": lambda: TaintEvictionController(client, informers=informers),
        "podgc": lambda: PodGCController(client, informers=informers),
    }
    wanted = opts.controllers - ({"endpoint"} if not opts.endpoints_controller else set())
    return {name: make() for name, make in makers.items() if name in wanted}


class ControllerManager:
    def __init__(self, client: RESTClient, opts: ManagerOptions | None = None) -> None:
        self.client = client
        self.opts = opts or ManagerOptions()
        self.informers = SharedInformerFactory(client)
        self.controllers = build_controllers(client, self.opts,
                                             self.informers if self.opts.shared_informers else None)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        self.informers.start()
        for name, c in self.controllers.items():
            self._tasks[name] = asyncio.create_task(self._run(name, c), name=f"controller-{name}")

    async def _run(self, name: str, controller: Any) -> None:
        try:
            await controller.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("controller %s failed", name)
            raise

    async def wait(self) -> None:
        """Return when a controller stops on its own; its exception, if any, propagates.

        A failed controller takes the process down so that its supervisor restarts it with a
        fresh cache, rather than leaving a manager that silently runs fewer controllers.
        """
        done, _ = await asyncio.wait(self._tasks.values(), return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            t.result()

    async def stop(self) -> None:
        for c in self.controllers.values():
            with contextlib.suppress(Exception):
                res = c.stop()
                if asyncio.iscoroutine(res):
                    await res
        for t in self._tasks.values():
            t.cancel()
        for t in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        await self.informers.stop()
