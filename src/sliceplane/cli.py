"""The `sliceplane` command: the main job (`up`) and one command per role."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")

app = typer.Typer(
    add_completion=False,
    # Plain help, as kubectl's: long flag names stay whole in an 80-column terminal.
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
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


def _agent_source(source: str) -> str:
    if source not in ("slices", "endpoints"):
        raise typer.BadParameter(f"must be slices or endpoints, not {source!r}")
    return source


def _check_store(url: str | None) -> str | None:
    from sliceplane.store.base import parse_store_url

    if url is not None:
        try:
            parse_store_url(url)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
    return url


def _read_kubeconfig_problem(path: Path) -> str | None:
    from sliceplane.api.errors import StatusError
    from sliceplane.client.kubeconfig import read_kubeconfig

    try:
        read_kubeconfig(path)
    except FileNotFoundError:
        return f"{path} does not exist"
    except IsADirectoryError:
        return f"{path} is a directory"
    except (OSError, UnicodeDecodeError) as e:
        return f"cannot read {path}: {getattr(e, 'strerror', None) or e}"
    except StatusError as e:
        return f"{path}: {e.message}"
    return None


def _check_kubeconfig(path: Path) -> Path:
    """A kubeconfig the command is about to use is read up front: a wrong file is a usage error."""
    if (problem := _read_kubeconfig_problem(path)) is not None:
        raise typer.BadParameter(problem)
    return path


def _check_kubeconfig_if_present(path: Path | None) -> Path | None:
    """For the controller-manager, whose --server flags stand in for a missing kubeconfig."""
    return _check_kubeconfig(path) if path is not None and path.exists() else path


KubeconfigIn = Annotated[
    Path, typer.Option("--kubeconfig", callback=_check_kubeconfig, help="kubeconfig of the API server.")
]


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
        min=0,
        help="Legacy Endpoints controller: truncate to this many addresses (0: no cap, which lets the "
        "object outgrow the size limit, as before EndpointSlices).",
    ),
]
NoEndpoints = Annotated[
    bool,
    typer.Option("--disable-endpoints-controller", help="Do not run the legacy Endpoints controller."),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="API server port on 127.0.0.1.")]
MaxObjectBytes = Annotated[
    int,
    typer.Option(min=64 * 1024, help="Largest object the API server stores, in bytes (413 above it)."),
]
MaxRequestBytes = Annotated[
    int,
    typer.Option(min=64 * 1024, help="Largest request body the API server reads, in bytes (413 above it; "
                                     "Kubernetes' is 3 MiB). Raise it with --max-object-bytes for larger objects."),
]
CompactionInterval = Annotated[
    float,
    typer.Option(
        "--compaction-interval", min=0,
        help="Seconds between compactions of the store's history (0: never), as --etcd-compaction-interval.",
    ),
]
CompactionRetain = Annotated[
    int,
    typer.Option("--compaction-retain", min=1, help="Revisions of history each compaction keeps."),
]


def _check_batch_period(value: float) -> float:
    if not (value >= 0 and math.isfinite(value)):  # nan fails both comparisons
        raise typer.BadParameter(f"must not be negative, nan or infinite, got {value}")
    return value


def _check_positive_seconds(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"must be a positive number of seconds, got {value}")
    return value


NodeMonitorGracePeriod = Annotated[
    float,
    typer.Option(
        "--node-monitor-grace-period",
        callback=_check_positive_seconds,
        help="Seconds a node may go without a heartbeat (Lease renewal or Ready condition) before it and its "
             "pods are marked not ready.",
    ),
]


def _check_per_subset(value: int) -> int:
    if value < 1:
        raise typer.BadParameter(f"must be at least 1, got {value}")
    return value


BatchPeriod = Annotated[
    float,
    typer.Option(
        "--endpointslice-updates-batch-period",
        callback=_check_batch_period,
        help="EndpointSlice controller: seconds to coalesce pod changes per Service (0: no batching).",
    ),
]
MirroringPerSubset = Annotated[
    int,
    typer.Option(
        "--mirroring-max-endpoints-per-subset",
        callback=_check_per_subset,
        help="EndpointSlice mirroring controller: the most addresses mirrored per Endpoints subset.",
    ),
]
def _check_server_urls(values: list[str] | None) -> list[str] | None:
    from urllib.parse import urlsplit

    for value in values or []:
        try:
            url = urlsplit(value)
            url.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.hostname:
            raise typer.BadParameter(f"must be an http:// or https:// URL with a host, got {value!r}")
    return values


Servers = Annotated[
    list[str] | None,
    typer.Option("--server", callback=_check_server_urls,
                 help="API server URL (repeat for several; they replace the kubeconfig's servers)."),
]


def _client(kubeconfig: Path | None, servers: list[str] | None, **kwargs: object):  # type: ignore[no-untyped-def]
    """A RESTClient for every API server: those given with --server, else all the kubeconfig lists."""
    from sliceplane.client.kubeconfig import read_kubeconfig
    from sliceplane.client.rest import RESTClient

    if servers:
        token = read_kubeconfig(kubeconfig)[1] if kubeconfig is not None and kubeconfig.exists() else None
        return RESTClient(servers, token=token, **kwargs)  # type: ignore[arg-type]
    assert kubeconfig is not None
    return RESTClient.from_kubeconfig(str(kubeconfig), **kwargs)  # type: ignore[arg-type]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def run_until_signalled(main: object) -> None:
    """Run a coroutine function `main(stop_event)` and set the event on SIGINT/SIGTERM.

    Failures a user can act on (a port in use, a bad store URL, a data directory held by another
    process) end the command with one line on stderr instead of a traceback.
    """
    from sliceplane.store.base import StoreError

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)  # type: ignore[operator]

    try:
        asyncio.run(runner())
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            _fail(f"cannot listen: address already in use ({e.strerror})")
        _fail(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
    except (ValueError, StoreError) as e:
        _fail(str(e))


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="State (state.db) and the kubeconfig live here.")] = Path("data"),
    port: Port = DEFAULT_PORT,
    nodes: Annotated[int, typer.Option(min=0, help="Simulated Ready nodes.")] = 3,
    store: Annotated[
        str | None, typer.Option(callback=_check_store,
                                 help="sqlite:///abs/path.db, memory:// or etcd://host:port[,host:port]")
    ] = None,
    max_endpoints_per_slice: MaxPerSlice = 100,
    endpoints_max_addresses: EndpointsCap = 1000,
    disable_endpoints_controller: NoEndpoints = False,
    endpointslice_updates_batch_period: BatchPeriod = 0.0,
    mirroring_max_endpoints_per_subset: MirroringPerSubset = 1000,
    max_object_bytes: MaxObjectBytes = 1536 * 1024,
    max_request_bytes: MaxRequestBytes = 3 * 1024 * 1024,
    compaction_interval: CompactionInterval = 300.0,
    compaction_retain: CompactionRetain = 10_000,
    pod_ready_delay: Annotated[float, typer.Option(min=0, help="Seconds from Running to Ready.")] = 0.5,
    max_grace_period: Annotated[
        float | None, typer.Option(min=0, help="Cap, in seconds, on pods' graceful termination.")
    ] = 2.0,
    dual_stack: Annotated[bool, typer.Option(help="Give pods IPv6 addresses too.")] = False,
    node_monitor_grace_period: NodeMonitorGracePeriod = 50.0,
    verbose: Verbose = False,
    agents: Annotated[bool, typer.Option("--agents", help="Run a node agent for every fleet node.")] = False,
    agents_source: Annotated[
        str, typer.Option("--agents-source", callback=_agent_source, help="What the agents watch: slices or endpoints.")
    ] = "slices",
) -> None:
    """API server, controllers and a node fleet, with state in DATA_DIR."""
    from sliceplane.up import UpOptions, run_up

    _setup_logging(verbose)
    data_dir = data_dir.resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _fail(f"cannot use data directory {data_dir}: {e.strerror or e}")
    opts = UpOptions(
        data_dir=data_dir,
        port=port,
        nodes=nodes,
        store_url=store or f"sqlite://{data_dir / 'state.db'}",
        max_endpoints_per_slice=max_endpoints_per_slice,
        endpoints_max_addresses=endpoints_max_addresses,
        disable_endpoints_controller=disable_endpoints_controller,
        endpointslice_batch_period=endpointslice_updates_batch_period,
        mirroring_max_endpoints_per_subset=mirroring_max_endpoints_per_subset,
        max_object_bytes=max_object_bytes,
        max_request_bytes=max_request_bytes,
        compaction_interval=compaction_interval or None,
        compaction_retain=compaction_retain,
        pod_ready_delay=pod_ready_delay,
        max_grace_period=max_grace_period,
        dual_stack=dual_stack,
        node_monitor_grace_period=node_monitor_grace_period,
        verbose=verbose,
        agents=agents,
        agents_source=agents_source,
    )
    run_until_signalled(lambda stop: run_up(opts, stop))


@app.command()
def apiserver(
    port: Port = DEFAULT_PORT,
    store: Annotated[str, typer.Option(callback=_check_store, help="Store URL.")] = "memory://",
    max_object_bytes: MaxObjectBytes = 1536 * 1024,
    max_request_bytes: MaxRequestBytes = 3 * 1024 * 1024,
    compaction_interval: CompactionInterval = 300.0,
    compaction_retain: CompactionRetain = 10_000,
    kubeconfig: Annotated[Path | None, typer.Option(help="Write a kubeconfig for this server here.")] = None,
    verbose: Verbose = False,
) -> None:
    """Only the API server."""
    from sliceplane.apiserver.app import APIServer
    from sliceplane.apiserver.config import ServerConfig
    from sliceplane.client.kubeconfig import write_kubeconfig
    from sliceplane.store.base import CompactionPolicy

    _setup_logging(verbose)

    async def main(stop: asyncio.Event) -> None:
        server = APIServer(ServerConfig(
            port=port, store_url=store, max_object_bytes=max_object_bytes, max_request_bytes=max_request_bytes,
            compaction=CompactionPolicy(compaction_interval or None, compaction_retain),
        ))
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
    kubeconfig: Annotated[Path | None, typer.Option(callback=_check_kubeconfig_if_present,
                                                    help="kubeconfig of the API server (optional with --server).")
                          ] = None,
    max_endpoints_per_slice: MaxPerSlice = 100,
    endpoints_max_addresses: EndpointsCap = 1000,
    disable_endpoints_controller: NoEndpoints = False,
    endpointslice_updates_batch_period: BatchPeriod = 0.0,
    mirroring_max_endpoints_per_subset: MirroringPerSubset = 1000,
    controllers: Annotated[
        str, typer.Option(help="Controllers to run, as kube-controller-manager's --controllers: '*' is all, "
                               "'foo' enables foo, '-foo' disables it (e.g. 'endpointslice' or '*,-endpoint').")
    ] = "*",
    leader_elect: Annotated[
        bool, typer.Option("--leader-elect/--no-leader-elect",
                           help="Run the controllers only while holding the leader Lease.")
    ] = True,
    leader_elect_lease_duration: Annotated[
        float, typer.Option(help="Seconds a standby waits after the last renewal before taking over.")
    ] = 15.0,
    leader_elect_renew_deadline: Annotated[
        float, typer.Option(help="Seconds the leader keeps retrying a renewal before it gives up leading.")
    ] = 10.0,
    leader_elect_retry_period: Annotated[
        float, typer.Option(help="Seconds between attempts to acquire or renew the lease.")
    ] = 2.0,
    leader_elect_resource_name: Annotated[
        str, typer.Option(help="Name of the Lease (in --leader-elect-resource-namespace).")
    ] = "kube-controller-manager",
    leader_elect_resource_namespace: Annotated[str, typer.Option(help="Namespace of the Lease.")] = "kube-system",
    node_monitor_period: Annotated[
        float, typer.Option(callback=_check_positive_seconds, help="Seconds between two looks at every node's health.")
    ] = 5.0,
    node_monitor_grace_period: NodeMonitorGracePeriod = 50.0,
    node_startup_grace_period: Annotated[
        float, typer.Option(callback=_check_positive_seconds,
                            help="The same for a node that never reported Ready.")
    ] = 60.0,
    server: Servers = None,
    verbose: Verbose = False,
) -> None:
    """The controllers: EndpointSlice, EndpointSlice mirroring, Endpoints, Deployment, ReplicaSet, garbage collector,
    Namespace, node lifecycle, taint eviction, pod GC."""
    from sliceplane.client.rest import RESTClient
    from sliceplane.controllers.leaderelection import (
        LeaderElector,
        LeadershipLost,
        check_timings,
        default_identity,
        run_elected_in_thread,
    )
    from sliceplane.controllers.manager import (
        ControllerManager,
        ManagerOptions,
        enabled_controllers,
        kubernetes_only_controllers,
    )

    _setup_logging(verbose)
    if not server and kubeconfig is None:
        raise typer.BadParameter("give --kubeconfig, or the API server's URL with --server", param_hint="'--kubeconfig'")
    if not server and kubeconfig is not None and not kubeconfig.exists():
        raise typer.BadParameter(f"{kubeconfig} does not exist (and no --server was given)", param_hint="'--kubeconfig'")
    try:
        enabled = enabled_controllers(controllers)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--controllers") from None
    if others := kubernetes_only_controllers(controllers):
        logging.getLogger("sliceplane.controller-manager").info(
            "--controllers: not run here (kube-controller-manager's, not sliceplane's): %s", ", ".join(others))
    if not enabled:
        raise typer.BadParameter("no controller would run", param_hint="--controllers")
    opts = ManagerOptions(
        controllers=enabled,
        max_endpoints_per_slice=max_endpoints_per_slice,
        endpoints_max_addresses=endpoints_max_addresses or None,
        endpoints_controller=not disable_endpoints_controller,
        endpointslice_batch_period=endpointslice_updates_batch_period,
        mirroring_max_endpoints_per_subset=mirroring_max_endpoints_per_subset,
        node_monitor_period=node_monitor_period,
        node_monitor_grace_period=node_monitor_grace_period,
        node_startup_grace_period=node_startup_grace_period,
    )

    if leader_elect:
        problem = check_timings(leader_elect_lease_duration, leader_elect_renew_deadline, leader_elect_retry_period)
        if problem:
            raise typer.BadParameter(problem)

    async def run_controllers(client: RESTClient) -> None:
        """Run every controller until one stops; a failure takes the process down (the supervisor restarts it)."""
        manager = ControllerManager(client, opts)
        try:
            await manager.start()
            await manager.wait()
            raise RuntimeError("a controller stopped unexpectedly")
        finally:
            await manager.stop()

    async def main(stop: asyncio.Event) -> None:
        client = _client(kubeconfig, server)
        try:
            if leader_elect:
                identity = default_identity()

                def new_elector() -> LeaderElector:
                    # Its own client: the elector runs on its own loop, in a thread (run_elected_in_thread).
                    return LeaderElector(
                        _client(kubeconfig, server, timeout=leader_elect_renew_deadline),
                        leader_elect_resource_name, leader_elect_resource_namespace, identity,
                        leader_elect_lease_duration, leader_elect_renew_deadline, leader_elect_retry_period,
                    )

                work = asyncio.create_task(run_elected_in_thread(new_elector, lambda: run_controllers(client)))
            else:
                work = asyncio.create_task(run_controllers(client))
            print("sliceplane controller-manager ready", flush=True)
            stopped = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([stopped, work], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if work in done:
                try:
                    work.result()
                except LeadershipLost as e:
                    # As kube-controller-manager does: exit, and let the supervisor start a fresh candidate.
                    raise SystemExit(f"leaderelection lost: {e}") from None
                except Exception as e:
                    raise SystemExit(f"controller-manager stopping: {e}") from e
                raise SystemExit("the controllers stopped unexpectedly")
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
        finally:
            await client.close()

    run_until_signalled(main)


@app.command("kubeconfig")
def kubeconfig_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the kubeconfig.")],
    server: Annotated[list[str], typer.Option("--server", callback=_check_server_urls,
                                              help="API server URL; repeat for every API server.")],
) -> None:
    """Write a kubeconfig listing several API servers (kubectl uses the first; sliceplane fails over)."""
    from sliceplane.client.kubeconfig import write_kubeconfig

    write_kubeconfig(output, server)
    typer.echo(f"wrote {output} ({len(server)} servers)")


@app.command()
def nodes(
    kubeconfig: KubeconfigIn,
    count: Annotated[int, typer.Option(min=0, help="How many simulated nodes.")] = 3,
    pod_ready_delay: Annotated[float, typer.Option(min=0, help="Seconds from Running to Ready.")] = 0.5,
    max_grace_period: Annotated[float | None, typer.Option(min=0, help="Cap on graceful termination.")] = None,
    dual_stack: Annotated[bool, typer.Option(help="Give pods IPv6 addresses too.")] = False,
    node_lease_duration_seconds: Annotated[
        int, typer.Option(min=1, help="Each node's Lease duration; renewed every quarter of it, as the kubelet's.")
    ] = 40,
    verbose: Verbose = False,
) -> None:
    """A fleet of hollow nodes: schedules pods, gives them IPs, makes them Ready, renews their Leases,
    finishes deletions."""
    from sliceplane.client.rest import RESTClient
    from sliceplane.fleet.fleet import Fleet

    _setup_logging(verbose)

    async def main(stop: asyncio.Event) -> None:
        client = RESTClient.from_kubeconfig(str(kubeconfig))
        fleet = Fleet(
            client, count, pod_ready_delay=pod_ready_delay, max_grace_period=max_grace_period,
            dual_stack=dual_stack, lease_duration=node_lease_duration_seconds,
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


# --- node agents (kube-proxy's role) ------------------------------------------------------------

AgentSource = Annotated[
    str, typer.Option("--source", callback=_agent_source,
                      help="What the agent watches: slices (EndpointSlices) or endpoints (legacy).")
]
StateDir = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Where agents publish their tables (default: agents/ next to the kubeconfig)."),
]
MetricsPort = Annotated[
    int | None, typer.Option("--metrics-port", min=0, max=65535,
                             help="Serve /metrics and /snapshot on 127.0.0.1:PORT (0: any).")
]


def _state_dir(kubeconfig: Path, state_dir: Path | None) -> Path:
    from sliceplane.agent.snapshot import default_state_dir

    return state_dir.resolve() if state_dir else default_state_dir(kubeconfig)


@app.command()
def agent(
    kubeconfig: KubeconfigIn,
    node: Annotated[str, typer.Option(help="The node this agent programs.")],
    source: AgentSource = "slices",
    counting: Annotated[bool, typer.Option(help="Only count watch events and bytes; keep no table.")] = False,
    state_dir: StateDir = None,
    metrics_port: MetricsPort = None,
    verbose: Verbose = False,
) -> None:
    """One node agent: watches Services and EndpointSlices, keeps the node's service table."""
    from sliceplane.agent.runner import AgentSpec, run_agents

    _setup_logging(verbose)
    spec = AgentSpec(node, "counting" if counting else "full")
    run_until_signalled(lambda stop: run_agents(
        kubeconfig, [spec], stop, source=source, state_dir=_state_dir(kubeconfig, state_dir),
        metrics_port=metrics_port))


@app.command()
def agents(
    kubeconfig: KubeconfigIn,
    count: Annotated[int, typer.Option(min=1, help="How many agents (nodes <prefix>0..count-1).")] = 3,
    counting: Annotated[bool, typer.Option(help="All but --full agents only count events and bytes.")] = False,
    full: Annotated[int, typer.Option(min=0, help="With --counting, how many agents still run in full mode.")] = 2,
    name_prefix: Annotated[str, typer.Option(help="Node name prefix (the fleet's).")] = "node-",
    source: AgentSource = "slices",
    state_dir: StateDir = None,
    metrics_port: MetricsPort = None,
    verbose: Verbose = False,
) -> None:
    """Many node agents in one process, each with its own watch connections."""
    from sliceplane.agent.runner import agent_specs, run_agents

    _setup_logging(verbose)
    specs = agent_specs(count, name_prefix=name_prefix, counting=counting, full=full)
    run_until_signalled(lambda stop: run_agents(
        kubeconfig, specs, stop, source=source, state_dir=_state_dir(kubeconfig, state_dir),
        metrics_port=metrics_port))


@app.command()
def table(
    kubeconfig: KubeconfigIn,
    node: Annotated[str, typer.Option(help="Whose table.")],
    stats: Annotated[bool, typer.Option(help="Also print latency p50/p99 and watch counters.")] = False,
    output_json: Annotated[bool, typer.Option("--json", help="Print the raw snapshot.")] = False,
    state_dir: StateDir = None,
) -> None:
    """Print one node's service table (service ports, then endpoints with their state)."""
    import json
    import time

    from sliceplane.agent.render import stats_lines, table_lines
    from sliceplane.agent.snapshot import is_live, read_snapshot, snapshot_path

    where = _state_dir(kubeconfig, state_dir)
    snap = read_snapshot(snapshot_path(where, node))
    if snap is None or not is_live(snap, time.time()):
        typer.echo(f"error: no running agent for node {node!r} (looked in {where})", err=True)
        raise typer.Exit(1)
    if output_json:
        typer.echo(json.dumps(snap, indent=2))
        return
    typer.echo("\n".join(table_lines(snap)))
    if stats:
        typer.echo("\n".join(stats_lines(snap)))


@app.command()
def verify(
    kubeconfig: KubeconfigIn,
    timeout: Annotated[float, typer.Option(min=0, help="Keep comparing for up to this many seconds.")] = 10.0,
    state_dir: StateDir = None,
) -> None:
    """Compare every running agent's table with the truth from Pods, Services and Nodes."""
    from sliceplane.agent.verify import verify as run_verify
    from sliceplane.client.rest import RESTClient

    async def main() -> list:
        async with RESTClient.from_kubeconfig(str(kubeconfig)) as client:
            return await run_verify(client, _state_dir(kubeconfig, state_dir), timeout=timeout)

    reports = asyncio.run(main())
    if not reports:
        typer.echo("error: no running full-mode agents found", err=True)
        raise typer.Exit(2)
    bad = 0
    for r in reports:
        if r.differences:
            bad += 1
            typer.echo(f"{r.node} ({r.source}): {len(r.differences)} differences")
            for d in r.differences[:50]:
                typer.echo(f"  {d}")
        else:
            typer.echo(f"{r.node} ({r.source}): ok")
    typer.echo(f"{len(reports)} agents, {bad} with differences")
    if bad:
        raise typer.Exit(1)


# --- the seed's evaluation: model (plan) and measurement (bench) ---------------------------------

def _check_slice_sizes(values: list[int] | None) -> list[int] | None:
    for b in values or []:
        _check_slice_size(b)
    return values


SliceSizes = Annotated[
    list[int] | None,
    typer.Option("--max-endpoints-per-slice", callback=_check_slice_sizes,
                 help="B of a slices representation (repeat; default 100 and 1)."),
]
BytesPerEndpoint = Annotated[
    int, typer.Option(min=1, help="Model: bytes one endpoint adds to an object (the KEP-0752 talk's 'const' is 100).")
]
OverheadBytes = Annotated[int, typer.Option(min=0, help="Model: bytes of every object besides its endpoints.")]
# A Deployment's replicas are an int32; the model takes the same range.
MAX_PODS = 2**31 - 1


def _slice_sizes(values: list[int] | None) -> list[int]:
    return values or [100, 1]


def _console() -> Console:
    """Rich output; when it is not a terminal (a log file, a pipe), wide enough that the tables'
    run labels are not cut to fit 80 columns."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)


def _check_output(path: Path | None, flag: str, *, plot: bool = False) -> None:
    """Refuse an output file that cannot be written before the run, not after it."""
    if path is None:
        return
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a directory", param_hint=f"'{flag}'")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise typer.BadParameter(f"directory {parent} does not exist", param_hint=f"'{flag}'")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise typer.BadParameter(f"{path} is not writable", param_hint=f"'{flag}'")
    if not path.exists():
        # Permission bits do not tell everything (root, /proc, a read-only mount): try it.
        try:
            path.touch()
            path.unlink()
        except OSError as e:
            raise typer.BadParameter(f"cannot create {path}: {e.strerror}", param_hint=f"'{flag}'") from None
    if plot:
        from matplotlib.figure import Figure

        formats = Figure().canvas.get_supported_filetypes()
        if path.suffix.lstrip(".").lower() not in formats:
            raise typer.BadParameter(f"{path.name}: the plot's format comes from its suffix, one of "
                                     f"{', '.join('.' + f for f in sorted(formats))}", param_hint=f"'{flag}'")


def _write_output(path: Path, write: Callable[[Path], object]) -> None:
    """Write one result file; a failure (disk full, the file gone read-only) is one line, not a traceback."""
    try:
        write(path)
    except OSError as e:
        _fail(f"cannot write {path}: {e.strerror or e}")


@app.command()
def plan(
    pods: Annotated[int, typer.Option(min=1, max=MAX_PODS, help="P: endpoints behind the Service.")] = 20_000,
    nodes: Annotated[int, typer.Option(min=1, max=MAX_PODS, help="N: nodes, one watcher each.")] = 5_000,
    max_endpoints_per_slice: SliceSizes = None,
    bytes_per_endpoint: BytesPerEndpoint = 100,
    overhead_bytes: OverheadBytes = 0,
    output_json: Annotated[Path | None, typer.Option("--json", help="Also write the cells as JSON here.")] = None,
) -> None:
    """The KEP-0752 talk's cost model for a cluster shape, every cell of its table, beside the talk's figures."""
    import json

    from sliceplane.bench.model import Representation, Shape
    from sliceplane.bench.report import plan_document, render_plan

    _check_output(output_json, "--json")
    shape = Shape(pods, nodes, bytes_per_endpoint, overhead_bytes)
    reps = [Representation("endpoints"), *(Representation("slices", b) for b in _slice_sizes(max_endpoints_per_slice))]
    doc = plan_document(shape, reps)
    render_plan(_console(), doc)
    if output_json:
        _write_output(output_json, lambda f: f.write_text(json.dumps(doc, indent=2)))


async def _until_terminated(work: Awaitable[T]) -> T:
    """SIGTERM stops a bench as Ctrl-C does: the running cluster's processes are stopped first."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)  # type: ignore[union-attr]
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _comma_list(text: str) -> list[str]:
    """`a, b,,c` -> ["a", "b", "c"]: how every comma-separated flag value is read."""
    return [x.strip() for x in text.split(",") if x.strip()]


def _bench_pod_counts(ctx: typer.Context, pods: int, sweep: str | None) -> list[int]:
    if not sweep:
        return [pods]
    source = ctx.get_parameter_source("pods")
    if source is not None and source.name != "DEFAULT":
        raise typer.BadParameter("give either --pods or --sweep, not both", param_hint="'--sweep'")
    try:
        counts = [int(p) for p in _comma_list(sweep)]
    except ValueError:
        raise typer.BadParameter(f"must be comma-separated pod counts, not {sweep!r}", param_hint="'--sweep'") from None
    if not counts or not all(1 <= p <= MAX_PODS for p in counts):
        raise typer.BadParameter(f"every pod count must be between 1 and {MAX_PODS}, not {sweep!r}",
                                 param_hint="'--sweep'")
    return counts


@app.command()
def bench(
    ctx: typer.Context,
    pods: Annotated[int, typer.Option(min=1, max=MAX_PODS, help="P: ready pods behind the Service.")] = 2000,
    watchers: Annotated[int, typer.Option(min=1, help="Real watchers: node agents (and fleet nodes).")] = 4,
    full: Annotated[int, typer.Option(min=0, help="How many of the agents run in full mode (the rest count).")] = 1,
    max_endpoints_per_slice: SliceSizes = None,
    project_nodes: Annotated[int, typer.Option(min=1, help="Project per-watcher costs to this many nodes.")] = 5_000,
    bytes_per_endpoint: BytesPerEndpoint = 100,
    overhead_bytes: OverheadBytes = 0,
    raised_max_object_bytes: Annotated[
        int, typer.Option(help="The API server's object limit for the second Endpoints run (above the default "
                               "1.5 MiB).")
    ] = 1 << 30,
    default_limit_scenarios: Annotated[
        str, typer.Option(help="Scenarios of the Endpoints run at the default 1.5 MiB limit (comma-separated; "
                               "create always runs, it makes the Service).")
    ] = "create",
    timeout: Annotated[
        float, typer.Option(callback=_check_positive_seconds, help="Seconds any one phase may take.")
    ] = 600.0,
    output_json: Annotated[Path | None, typer.Option("--json", help="Write the results here (schema: README).")] = None,
    plot_file: Annotated[Path | None, typer.Option("--plot", help="Bytes per watcher, log scale, as PNG.")] = None,
    markdown_file: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the results as Markdown tables (a results page).")
    ] = None,
    work_dir: Annotated[Path | None, typer.Option(help="Keep the runs' logs here (default: a temp dir).")] = None,
    batch_period: Annotated[
        float, typer.Option(min=0, help="Also run each slice size with this EndpointSlice updates batch period "
                                        "(seconds), to compare writes and events with and without batching.")
    ] = 0.0,
    sweep: Annotated[
        str | None, typer.Option(help="Comma-separated P values (e.g. 500,1000,2000): run at each P instead of "
                                      "--pods; --plot then draws how bytes per watcher grow with P.")
    ] = None,
    rollout_max_surge: Annotated[
        str, typer.Option(help="The Deployment's maxSurge (pods or %): with --rollout-max-unavailable 0 and 1 "
                               "here, the rollout replaces one pod at a time, so changes reach the controllers "
                               "one by one.")
    ] = "25%",
    rollout_max_unavailable: Annotated[str, typer.Option(help="The Deployment's maxUnavailable (pods or %).")] = "25%",
    representations: Annotated[
        str, typer.Option(help="Which representations to run (comma-separated): endpoints (both of its runs), "
                               "slices (each --max-endpoints-per-slice).")
    ] = "endpoints,slices",
) -> None:
    """The KEP-0752 talk's evaluation on real components: create, update, rolling x Endpoints / slices of B."""
    import json
    import sys
    import tempfile
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sliceplane.bench.model import SCENARIOS, Representation, Shape
    from sliceplane.bench.report import (
        bench_document,
        markdown,
        plot,
        plot_sweep,
        render_bench,
        sweep_document,
        sweep_markdown,
    )
    from sliceplane.bench.runner import DEFAULT_MAX_OBJECT_BYTES, RunSpec, run_all
    from sliceplane.bench.scenarios import rollout_bounds

    # Every flag is checked before a cluster starts: a bad one must not cost a run.
    pod_counts = _bench_pod_counts(ctx, pods, sweep)
    if full > watchers:
        raise typer.BadParameter(f"{full} full agents, but only {watchers} watchers", param_hint="'--full'")
    if raised_max_object_bytes <= DEFAULT_MAX_OBJECT_BYTES:
        raise typer.BadParameter(f"must be above the default limit, {DEFAULT_MAX_OBJECT_BYTES} bytes, not "
                                 f"{raised_max_object_bytes}", param_hint="'--raised-max-object-bytes'")
    named = set(_comma_list(default_limit_scenarios))
    if not named or not named <= set(SCENARIOS):
        raise typer.BadParameter(f"takes scenarios among {', '.join(SCENARIOS)}, not {default_limit_scenarios!r}",
                                 param_hint="'--default-limit-scenarios'")
    limited = tuple(x for x in SCENARIOS if x in named | {"create"})
    try:
        surge, unavailable = rollout_bounds(rollout_max_surge, rollout_max_unavailable)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="'--rollout-max-surge' / '--rollout-max-unavailable'") from None
    kinds = set(_comma_list(representations))
    if not kinds or not kinds <= {"endpoints", "slices"}:
        raise typer.BadParameter(f"takes endpoints and/or slices, not {representations!r}",
                                 param_hint="'--representations'")
    if "slices" not in kinds and (max_endpoints_per_slice or batch_period):
        raise typer.BadParameter("--max-endpoints-per-slice and --batch-period shape slice runs, and "
                                 "--representations has none", param_hint="'--representations'")
    sizes = _slice_sizes(max_endpoints_per_slice)
    _check_output(output_json, "--json")
    _check_output(plot_file, "--plot", plot=True)
    _check_output(markdown_file, "--markdown")
    if work_dir is not None:
        try:
            work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise typer.BadParameter(f"cannot create {work_dir}: {e.strerror or e}", param_hint="'--work-dir'") from None

    pace = {"max_surge": surge, "max_unavailable": unavailable}
    runs: list[RunSpec] = []
    if "endpoints" in kinds:
        runs += [RunSpec(Representation("endpoints"), DEFAULT_MAX_OBJECT_BYTES, limited, **pace),
                 RunSpec(Representation("endpoints"), raised_max_object_bytes, **pace)]
    if "slices" in kinds:
        runs += [RunSpec(Representation("slices", b), **pace) for b in sizes]
        if batch_period:
            runs += [RunSpec(Representation("slices", b), batch_period=batch_period, **pace) for b in sizes]
    console = _console()
    command = " ".join(["sliceplane", *sys.argv[1:]])
    docs = []
    stopped_by = ""
    with contextlib.ExitStack() as stack:
        work = work_dir.resolve() if work_dir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for p in pod_counts:
            started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            t0 = time.monotonic()
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console) as progress:
                tasks: dict[str, object] = {}

                def report(phase: str, done: int, total: int, progress: Progress = progress,
                           tasks: dict[str, object] = tasks) -> None:
                    if phase not in tasks:
                        tasks[phase] = progress.add_task(phase, total=total)
                    progress.update(tasks[phase], completed=done, total=total)  # type: ignore[arg-type]

                try:
                    measurements = asyncio.run(_until_terminated(
                        run_all(runs, p, watchers, full, work / f"P{p}", report, timeout)))
                except (RuntimeError, TimeoutError) as e:
                    progress.stop()
                    console.print(f"[red]bench failed at P={p}:[/] {e}")
                    raise typer.Exit(1) from None
                except KeyboardInterrupt:
                    stopped_by = "interrupted"
                except asyncio.CancelledError:
                    stopped_by = "terminated"
            if stopped_by:
                console.print(f"[yellow]{stopped_by} at P={p}[/]: its cluster was stopped")
                break
            doc = bench_document(
                measurements, Shape(p, max(1, watchers), bytes_per_endpoint, overhead_bytes), project_nodes,
                watchers=watchers, full_watchers=full,
                runs=[{"run": r.label, "representation": r.rep.name, "maxObjectBytes": r.max_object_bytes,
                       "scenarios": list(r.scenarios), "maxSurge": r.max_surge,
                       "maxUnavailable": r.max_unavailable} for r in runs],
                seconds=time.monotonic() - t0, started_at=started, command=command)
            render_bench(console, doc)
            console.print(f"P={p}: finished in {doc['seconds']:.0f} s")
            docs.append(doc)
    if docs:
        if stopped_by:
            console.print(f"writing the {len(docs)} finished point(s) of the sweep")
        result = docs[0] if not sweep else sweep_document(docs, command)
        if output_json:
            _write_output(output_json, lambda f: f.write_text(json.dumps(result, indent=2)))
        if plot_file:
            _write_output(plot_file, lambda f: plot_sweep(docs, f) if sweep else plot(docs[0], f))
        if markdown_file:
            text = (sweep_markdown(result) + "\n" + "\n".join(markdown(d) for d in docs) if sweep
                    else markdown(result))
            _write_output(markdown_file, lambda f: f.write_text(text))
    if stopped_by:
        raise typer.Exit(130 if stopped_by == "interrupted" else 143)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
