"""The controller-manager: runs every controller against one API server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from sliceplane.client.rest import RESTClient

log = logging.getLogger(__name__)


class Controller(Protocol):
    async def run(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class ManagerOptions:
    max_endpoints_per_slice: int = 100
    endpoints_max_addresses: int | None = 1000  # None: no cap (reproduces the seed's over-size objects)
    endpoints_controller: bool = True
    endpointslice_batch_period: float = 0.0
    mirroring_max_endpoints_per_subset: int = 1000


def build_controllers(client: RESTClient, opts: ManagerOptions) -> dict[str, Any]:
    """The controllers `ControllerManager` runs, by name."""
    from sliceplane.controllers.deployment import DeploymentController
    from sliceplane.controllers.endpoints import EndpointsController
    from sliceplane.controllers.endpointslice.controller import EndpointSliceController
    from sliceplane.controllers.garbagecollector import GarbageCollector
    from sliceplane.controllers.mirroring.controller import EndpointSliceMirroringController
    from sliceplane.controllers.namespace import NamespaceController
    from sliceplane.controllers.replicaset import ReplicaSetController

    controllers: dict[str, Any] = {
        "endpointslice": EndpointSliceController(
            client,
            max_endpoints_per_slice=opts.max_endpoints_per_slice,
            batch_period=opts.endpointslice_batch_period,
        ),
        "endpointslicemirroring": EndpointSliceMirroringController(
            client, max_endpoints_per_subset=opts.mirroring_max_endpoints_per_subset,
        ),
        "deployment": DeploymentController(client),
        "replicaset": ReplicaSetController(client),
        "garbagecollector": GarbageCollector(client),
        "namespace": NamespaceController(client),
    }
    if opts.endpoints_controller:
        controllers["endpoints"] = EndpointsController(client, max_addresses=opts.endpoints_max_addresses)
    return controllers


class ControllerManager:
    def __init__(self, client: RESTClient, opts: ManagerOptions | None = None) -> None:
        self.client = client
        self.opts = opts or ManagerOptions()
        self.controllers = build_controllers(client, self.opts)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
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
