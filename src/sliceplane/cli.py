"""The `sliceplane` command: the main job (`up`) and one command per role."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="A Kubernetes-compatible control plane for service endpoints, built on EndpointSlices.",
)

DEFAULT_PORT = 6443


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _check_slice_size(value: int) -> int:
    if not 1 <= value <= 1000:
        raise typer.BadParameter(f"must be between 1 and 1000, got {value}")
    return value


MaxPerSlice = Annotated[
    int,
    typer.Option(
        "--max-endpoints-per-slice",
        callback=_check_slice_size,
        help="EndpointSlice controller: the most endpoints in one slice (1-1000).",
    ),
]
EndpointsCap = Annotated[
    int,
    typer.Option(
        "--endpoints-max-addresses",
        help="Legacy Endpoints controller: truncate to this many addresses (0: no cap, the seed's pain).",
    ),
]
NoEndpoints = Annotated[
    bool,
    typer.Option("--disable-endpoints-controller", help="Do not run the legacy Endpoints controller."),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


def run_until_signalled(main: object) -> None:
    """Run a coroutine function `main(stop_event)` and set the event on SIGINT/SIGTERM."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)  # type: ignore[operator]

    asyncio.run(runner())


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="State (state.db) and the kubeconfig live here.")] = Path("data"),
    port: Annotated[int, typer.Option(help="API server port on 127.0.0.1.")] = DEFAULT_PORT,
    nodes: Annotated[int, typer.Option(help="Simulated Ready nodes.")] = 3,
    store: Annotated[
        str | None, typer.Option(help="sqlite:///abs/path.db, memory:// or etcd://host:port[,host:port]")
    ] = None,
    max_endpoints_per_slice: MaxPerSlice = 100,
    endpoints_max_addresses: EndpointsCap = 1000,
    disable_endpoints_controller: NoEndpoints = False,
    max_object_bytes: Annotated[
        int, typer.Option(help="Largest object the API server stores (413 above it).")
    ] = 1536 * 1024,
    pod_ready_delay: Annotated[float, typer.Option(help="Seconds from Running to Ready.")] = 0.5,
    max_grace_period: Annotated[
        float | None, typer.Option(help="Cap, in seconds, on pods' graceful termination.")
    ] = 2.0,
    dual_stack: Annotated[bool, typer.Option(help="Give pods IPv6 addresses too.")] = False,
    verbose: Verbose = False,
) -> None:
    """API server, controllers and a node fleet, with state in DATA_DIR."""
    from sliceplane.up import UpOptions, run_up

    _setup_logging(verbose)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    opts = UpOptions(
        data_dir=data_dir,
        port=port,
        nodes=nodes,
        store_url=store or f"sqlite://{data_dir / 'state.db'}",
        max_endpoints_per_slice=max_endpoints_per_slice,
        endpoints_max_addresses=endpoints_max_addresses,
        disable_endpoints_controller=disable_endpoints_controller,
        max_object_bytes=max_object_bytes,
        pod_ready_delay=pod_ready_delay,
        max_grace_period=max_grace_period,
        dual_stack=dual_stack,
        verbose=verbose,
    )
    run_until_signalled(lambda stop: run_up(opts, stop))


@app.command()
def apiserver(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = DEFAULT_PORT,
    store: Annotated[str, typer.Option(help="Store URL.")] = "memory://",
    max_object_bytes: Annotated[int, typer.Option()] = 1536 * 1024,
    kubeconfig: Annotated[Path | None, typer.Option(help="Write a kubeconfig for this server here.")] = None,
    verbose: Verbose = False,
) -> None:
    """Only the API server."""
    from sliceplane.apiserver.app import APIServer
    from sliceplane.apiserver.config import ServerConfig
    from sliceplane.client.kubeconfig import write_kubeconfig

    _setup_logging(verbose)

    async def main(stop: asyncio.Event) -> None:
        server = APIServer(ServerConfig(port=port, store_url=store, max_object_bytes=max_object_bytes))
        await server.start()
        try:
            if kubeconfig:
                write_kubeconfig(kubeconfig, server.url)
            print(f"sliceplane apiserver ready at {server.url}", flush=True)
            await stop.wait()
        finally:
            await server.stop()

    run_until_signalled(main)


@app.command("controller-manager")
def controller_manager(
    kubeconfig: Annotated[Path, typer.Option(help="kubeconfig of the API server.")],
    max_endpoints_per_slice: MaxPerSlice = 100,
    endpoints_max_addresses: EndpointsCap = 1000,
    disable_endpoints_controller: NoEndpoints = False,
    verbose: Verbose = False,
) -> None:
    """The controllers: EndpointSlice, Endpoints, Deployment, ReplicaSet, garbage collector, Namespace."""
    from sliceplane.client.rest import RESTClient
    from sliceplane.controllers.manager import ControllerManager, ManagerOptions

    _setup_logging(verbose)
    opts = ManagerOptions(
        max_endpoints_per_slice=max_endpoints_per_slice,
        endpoints_max_addresses=endpoints_max_addresses or None,
        endpoints_controller=not disable_endpoints_controller,
    )

    async def main(stop: asyncio.Event) -> None:
        client = RESTClient.from_kubeconfig(str(kubeconfig))
        manager = ControllerManager(client, opts)
        try:
            await manager.start()
            print("sliceplane controller-manager ready", flush=True)
            stopped = asyncio.create_task(stop.wait())
            failed = asyncio.create_task(manager.wait())
            done, _ = await asyncio.wait([stopped, failed], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if failed in done:
                failed.result()
                raise SystemExit("a controller stopped unexpectedly")
            failed.cancel()
        finally:
            await manager.stop()
            await client.close()

    run_until_signalled(main)


@app.command()
def nodes(
    kubeconfig: Annotated[Path, typer.Option(help="kubeconfig of the API server.")],
    count: Annotated[int, typer.Option(help="How many simulated nodes.")] = 3,
    pod_ready_delay: Annotated[float, typer.Option(help="Seconds from Running to Ready.")] = 0.5,
    max_grace_period: Annotated[float | None, typer.Option(help="Cap on graceful termination.")] = None,
    dual_stack: Annotated[bool, typer.Option(help="Give pods IPv6 addresses too.")] = False,
    verbose: Verbose = False,
) -> None:
    """A fleet of hollow nodes: schedules pods, gives them IPs, makes them Ready, finishes deletions."""
    from sliceplane.client.rest import RESTClient
    from sliceplane.fleet.fleet import Fleet

    _setup_logging(verbose)

    async def main(stop: asyncio.Event) -> None:
        client = RESTClient.from_kubeconfig(str(kubeconfig))
        fleet = Fleet(
            client, count, pod_ready_delay=pod_ready_delay, max_grace_period=max_grace_period,
            dual_stack=dual_stack,
        )
        task = asyncio.create_task(fleet.run())
        try:
            await fleet.wait_ready()
            print(f"sliceplane nodes ready ({count} nodes)", flush=True)
            done, _ = await asyncio.wait(
                [task, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
            )
            if task in done:
                task.result()
        finally:
            await fleet.stop()
            task.cancel()
            await client.close()

    run_until_signalled(main)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
