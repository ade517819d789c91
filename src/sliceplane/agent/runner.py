"""Running agents: one, or many in one process (`sliceplane agents`), with a metrics endpoint.

Every agent has its own RESTClient (its own connection pool), so N agents hold N sets of watch
connections and the API server fans out N times, as it would to N kube-proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sliceplane.agent.agent import NodeAgent
from sliceplane.agent.metrics import AgentsCollector
from sliceplane.client.rest import RESTClient

log = logging.getLogger(__name__)

# How long `agents` waits for its full-mode agents to sync before it says "ready" anyway.
SYNC_WAIT = 60.0


@dataclass(frozen=True)
class AgentSpec:
    node: str
    mode: str = "full"


def agent_specs(count: int, *, name_prefix: str = "node-", counting: bool = False, full: int = 2) -> list[AgentSpec]:
    """Nodes `<prefix>0..count-1` (the fleet's names); with counting, all but the first `full`
    agents only count."""
    return [AgentSpec(f"{name_prefix}{i}", "counting" if counting and i >= full else "full") for i in range(count)]


def metrics_app(agents: list[NodeAgent]) -> web.Application:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentsCollector(lambda: [a.metrics for a in agents]))

    async def metrics(_req: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def snapshot(req: web.Request) -> web.Response:
        node = req.query.get("node")
        snaps = [a.snapshot() for a in agents if node is None or a.node.name == node]
        return web.Response(text=json.dumps(snaps), content_type="application/json")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/snapshot", snapshot)
    return app


async def run_agents(kubeconfig: Path, specs: Iterable[AgentSpec], stop: asyncio.Event, *, source: str = "slices",
                     state_dir: Path | None = None, metrics_port: int | None = None) -> None:
    """Run the agents until `stop` is set; print one `sliceplane agents ready` line once the
    full-mode agents have synced."""
    specs = list(specs)
    clients = [RESTClient.from_kubeconfig(str(kubeconfig), max_connections=8) for _ in specs]
    agents = [NodeAgent(c, s.node, source=source, mode=s.mode, state_dir=state_dir)
              for c, s in zip(clients, specs, strict=True)]
    tasks = [asyncio.create_task(a.run(), name=f"agent-{a.node.name}") for a in agents]
    runner: web.AppRunner | None = None
    try:
        port_text = ""
        if metrics_port is not None:
            runner = web.AppRunner(metrics_app(agents), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", metrics_port)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            port_text = f", metrics http://127.0.0.1:{port}/metrics"
        full = [a for a in agents if a.mode == "full"]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(a.wait_synced() for a in full)), SYNC_WAIT)
        n_counting = len(agents) - len(full)
        print(f"sliceplane agents ready ({len(full)} full, {n_counting} counting, source {source}{port_text})",
              flush=True)
        await stop.wait()
    finally:
        for a in agents:
            a.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
