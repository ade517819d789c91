"""--endpointslice-updates-batch-period: wiring from the CLI down, and coalescing in the controller."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sliceplane.api.registry import ENDPOINT_SLICES, NODES, PODS, SERVICES
from sliceplane.cli import app
from sliceplane.client.rest import RESTClient
from sliceplane.controllers.endpointslice.controller import EndpointSliceController
from sliceplane.controllers.manager import ManagerOptions, build_controllers
from sliceplane.up import UpOptions, role_commands

Obj = dict[str, Any]
NS = "default"


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize("period,per_subset,grace", [(0.0, 1000, 50.0), (1.5, 10, 3.0)], ids=["defaults", "set"])
def test_up_passes_flags_to_the_controller_manager(period: float, per_subset: int, grace: float) -> None:
    opts = UpOptions(data_dir=Path("/tmp/x"), port=1, nodes=1, store_url="memory://",
                     endpointslice_batch_period=period, mirroring_max_endpoints_per_subset=per_subset,
                     node_monitor_grace_period=grace)
    cm = role_commands(opts, Path("/tmp/x/kubeconfig"))["controller-manager"]
    assert float(_flag(cm, "--endpointslice-updates-batch-period")) == period
    assert int(_flag(cm, "--mirroring-max-endpoints-per-subset")) == per_subset
    assert float(_flag(cm, "--node-monitor-grace-period")) == grace
    nodes = role_commands(opts, Path("/tmp/x/kubeconfig"))["nodes"]
    assert int(_flag(nodes, "--node-lease-duration-seconds")) == {50.0: 40, 3.0: 3}[grace]


@pytest.mark.parametrize("args,message", [
    (["--endpointslice-updates-batch-period", "-1"], "must not be negative"),
    (["--mirroring-max-endpoints-per-subset", "0"], "must be at least 1"),
], ids=["negative-period", "zero-per-subset"])
def test_cli_rejects_bad_values(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["controller-manager", "--kubeconfig", "/nonexistent", *args])
    assert result.exit_code == 2
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())  # rich's box, rewrapped
    assert message in text


async def test_manager_wires_batch_period_and_mirroring() -> None:
    client = RESTClient("http://127.0.0.1:1")
    try:
        ctls = build_controllers(client, ManagerOptions(endpointslice_batch_period=2.0,
                                                        mirroring_max_endpoints_per_subset=7))
        assert ctls["endpointslice"].batch_period == 2.0
        assert ctls["endpointslicemirroring"].max_endpoints_per_subset == 7
    finally:
        await client.close()


@pytest.fixture
async def client(client: RESTClient) -> RESTClient:
    """The shared fixture's client, with one node."""
    await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    return client


async def test_a_burst_of_pod_changes_is_synced_in_few_batches(client: RESTClient) -> None:
    ctl = EndpointSliceController(client, batch_period=1.0)
    task = asyncio.create_task(ctl.run())
    try:
        await client.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                                       "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}, NS)
        await asyncio.sleep(0.3)
        await ctl.wait_idle()
        syncs_before = ctl.stats["syncs"]
        for i in range(20):
            pod = await client.create(PODS, {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}}, NS)
            pod["status"] = {"phase": "Running", "podIP": f"10.244.0.{i + 2}",
                             "podIPs": [{"ip": f"10.244.0.{i + 2}"}],
                             "conditions": [{"type": "Ready", "status": "True"}]}
            await client.update(PODS, pod, subresource="status")
        await asyncio.sleep(0.3)
        await asyncio.wait_for(ctl.wait_idle(), 20)
        slices = (await client.list(ENDPOINT_SLICES, NS, label_selector="kubernetes.io/service-name=web"))["items"]
        assert sum(len(s.get("endpoints") or []) for s in slices) == 20
        # 40 pod events (create + ready) reached the controller; batching synced them in a few goes.
        assert ctl.stats["syncs"] - syncs_before < 20
    finally:
        await ctl.stop()
        await asyncio.wait_for(task, 5)
