"""`sliceplane up`: the API server in this process, the controllers and the node fleet as children.

The roles run as separate processes, as they would in a cluster: the controller-manager and
the fleet talk to the API server over loopback HTTP, use the machine's second core, and their
CPU time can be measured apart. The parent supervises them: it restarts a role that dies and
stops them all, by PID, on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from sliceplane.process import die_with_parent

log = logging.getLogger("sliceplane.up")

DUAL_STACK_SERVICE_CIDR_V6 = "fd00:10:96::/112"
# A child that has not said "ready" by then is considered failed at start-up.
CHILD_READY_TIMEOUT = 60.0
# Restart delays for a role that keeps dying: 1 s, 2 s, 4 s ... capped at 30 s.
RESTART_BACKOFF_START = 1.0
RESTART_BACKOFF_CAP = 30.0


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    port: int
    nodes: int
    store_url: str
    max_endpoints_per_slice: int = 100
    endpoints_max_addresses: int = 1000
    disable_endpoints_controller: bool = False
    endpointslice_batch_period: float = 0.0
    mirroring_max_endpoints_per_subset: int = 1000
    max_object_bytes: int = 1536 * 1024
    max_request_bytes: int = 3 * 1024 * 1024
    compaction_interval: float | None = 300.0
    compaction_retain: int = 10_000
    pod_ready_delay: float = 0.5
    max_grace_period: float | None = 2.0
    dual_stack: bool = False
    node_monitor_grace_period: float = 50.0
    verbose: bool = False
    agents: bool = False  # one node agent per fleet node, in one `sliceplane agents` child
    agents_source: str = "slices"


def node_lease_duration(grace_period: float) -> int:
    """The kubelets' Lease duration for a node-monitor grace period: 40 s (renewed every 10 s)
    as Kubernetes' defaults, shorter under a short grace so that renewals (a quarter of it) come
    several times within it and no healthy node is ever judged silent."""
    return max(1, min(40, int(grace_period)))


def role_commands(opts: UpOptions, kubeconfig: Path) -> dict[str, list[str]]:
    """The child processes `up` runs, by role name."""
    base = [sys.executable, "-m", "sliceplane"]
    verbose = ["--verbose"] if opts.verbose else []
    cm = [
        *base, "controller-manager", "--kubeconfig", str(kubeconfig),
        "--max-endpoints-per-slice", str(opts.max_endpoints_per_slice),
        "--endpoints-max-addresses", str(opts.endpoints_max_addresses),
        *(["--disable-endpoints-controller"] if opts.disable_endpoints_controller else []),
        "--endpointslice-updates-batch-period", str(opts.endpointslice_batch_period),
        "--mirroring-max-endpoints-per-subset", str(opts.mirroring_max_endpoints_per_subset),
        "--node-monitor-grace-period", str(opts.node_monitor_grace_period),
        *verbose,
    ]
    nodes = [
        *base, "nodes", "--kubeconfig", str(kubeconfig), "--count", str(opts.nodes),
        "--pod-ready-delay", str(opts.pod_ready_delay),
        *(["--max-grace-period", str(opts.max_grace_period)] if opts.max_grace_period is not None else []),
        *(["--dual-stack"] if opts.dual_stack else []),
        "--node-lease-duration-seconds", str(node_lease_duration(opts.node_monitor_grace_period)),
        *verbose,
    ]
    roles = {"controller-manager": cm}
    if opts.nodes > 0:
        roles["nodes"] = nodes
        if opts.agents:
            roles["agents"] = [
                *base, "agents", "--kubeconfig", str(kubeconfig), "--count", str(opts.nodes),
                "--source", opts.agents_source, *verbose,
            ]
    return roles


class Child:
    """One supervised role process."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"supervise-{self.name}")

    async def _supervise(self) -> None:
        delay = RESTART_BACKOFF_START
        while not self._stopping:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=die_with_parent,
            )
            log.debug("started %s (pid %d)", self.name, self.proc.pid)
            await self._pump(self.proc)
            code = await self.proc.wait()
            if self._stopping:
                return
            log.warning("%s exited with code %s; restarting in %.0fs", self.name, code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_BACKOFF_CAP)

    async def _pump(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("sliceplane ") and "ready" in line and not self.ready.is_set():
                self.ready.set()
                log.debug("%s: %s", self.name, line)
                continue
            print(f"[{self.name}] {line}", file=sys.stderr, flush=True)

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def run_up(opts: UpOptions, stop: asyncio.Event) -> None:
    from sliceplane.apiserver.app import APIServer
    from sliceplane.apiserver.config import ServerConfig
    from sliceplane.client.kubeconfig import write_kubeconfig
    from sliceplane.store.base import CompactionPolicy

    server = APIServer(
        ServerConfig(
            port=opts.port,
            store_url=opts.store_url,
            max_object_bytes=opts.max_object_bytes,
            max_request_bytes=opts.max_request_bytes,
            compaction=CompactionPolicy(opts.compaction_interval, opts.compaction_retain),
            # Dual-stack pods want dual-stack Services: an IPv6 service range beside the IPv4 one
            # (kind's default), so PreferDualStack/RequireDualStack Services get both families.
            service_cidr_v6=DUAL_STACK_SERVICE_CIDR_V6 if opts.dual_stack else None,
        )
    )
    await server.start()
    children: list[Child] = []
    try:
        kubeconfig = opts.data_dir / "kubeconfig"
        write_kubeconfig(kubeconfig, server.url)
        children = [Child(name, argv) for name, argv in role_commands(opts, kubeconfig).items()]
        for child in children:
            child.start()
        waiting = asyncio.gather(*(c.ready.wait() for c in children))
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait(
                [asyncio.ensure_future(waiting), stopped],
                timeout=CHILD_READY_TIMEOUT,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting  # a stop during start-up cancels it; retrieve that, do not log it
        if not stop.is_set():
            late = [c.name for c in children if not c.ready.is_set()]
            if late:
                log.warning("still starting after %.0fs: %s", CHILD_READY_TIMEOUT, ", ".join(late))
            print(
                f"sliceplane ready: API server {server.url}, kubeconfig {kubeconfig}, "
                f"store {opts.store_url}, {opts.nodes} nodes",
                flush=True,
            )
            await stop.wait()
        stopped.cancel()
        print("sliceplane stopping", flush=True)
    finally:
        await asyncio.gather(*(c.stop() for c in children), return_exceptions=True)
        await server.stop()
