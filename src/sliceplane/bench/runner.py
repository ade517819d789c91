"""Run the seed's scenarios on real components and measure them.

Per run (one representation, one object-size limit), fresh processes: `sliceplane apiserver`
(memory store), a `controller-manager` running only the representation's controller (EndpointSlice
or Endpoints), a second one running the workload controllers (Deployment, ReplicaSet, garbage
collector, Namespace), `nodes` (the hollow fleet: binds pods, gives them IPs, makes them Ready)
and `agents` (W node agents, the first ones in full mode, the rest counting). Each scenario is measured as the difference of counters taken
before and after it:
- writes: the API server's `sliceplane_store_writes_total` for the representation's resource;
- events and bytes per watcher: each agent's own wire counters (what it read off its watch);
- object sizes: the representation's objects as listed after the scenario (compact JSON);
- latency: the full agents' network-programming histograms (bucket upper bounds);
- CPU: user+system seconds of the API server, the representation's controller, and the workload
  controllers, each its own process (/proc).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from prometheus_client.parser import text_string_to_metric_families

from sliceplane.agent.metrics import LATENCY_BUCKETS
from sliceplane.bench import scenarios as sc
from sliceplane.bench.model import Representation
from sliceplane.process import die_with_parent

DEFAULT_MAX_OBJECT_BYTES = 1536 * 1024
DEFAULT_MAX_REQUEST_BYTES = 3 * 1024 * 1024
RAISED_MAX_OBJECT_BYTES = 1 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Counters must hold still this long, after the objects converged, before a scenario ends.
QUIET_SECONDS = 1.0
POLL_SECONDS = 0.25
# After the first 413, how long a run keeps watching before it records the failure.
FAILURE_GRACE_SECONDS = 2.0
LATENCY_BOUNDS = (*LATENCY_BUCKETS, float("inf"))

# Watch events that carry no object change: not counted as events (their bytes still are).
NOT_OBJECT_EVENTS = frozenset({"BOOKMARK", "ERROR"})

Obj = dict[str, Any]
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class RunSpec:
    """One run: a representation and the API server's object size limit."""

    rep: Representation
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    scenarios: tuple[str, ...] = ("create", "update", "rolling")
    # The EndpointSlice controller's --endpointslice-updates-batch-period for this run.
    batch_period: float = 0.0
    # The Deployment's rolling-update bounds: how many pods the rollout replaces at a time.
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"

    @property
    def max_request_bytes(self) -> int:
        """The API server's request body limit: Kubernetes' 3 MiB, or the object limit when raised
        above it (an object is written in one request)."""
        return max(DEFAULT_MAX_REQUEST_BYTES, self.max_object_bytes)

    @property
    def label(self) -> str:
        if self.rep.kind != "endpoints":
            return self.rep.name + (f"@batch={self.batch_period:g}s" if self.batch_period else "")
        if self.max_object_bytes == DEFAULT_MAX_OBJECT_BYTES:
            return "endpoints@default-limit"
        return "endpoints@raised" if self.max_object_bytes == RAISED_MAX_OBJECT_BYTES else f"endpoints@{self.max_object_bytes}B"


def default_runs(bs: tuple[int, ...] = (100, 1)) -> list[RunSpec]:
    """Endpoints twice (the default limit, where the seed's failure shows, at creation; then the
    limit raised, to measure it), then slices of each B."""
    return [RunSpec(Representation("endpoints"), DEFAULT_MAX_OBJECT_BYTES, ("create",)),
            RunSpec(Representation("endpoints"), RAISED_MAX_OBJECT_BYTES),
            *(RunSpec(Representation("slices", b)) for b in bs)]


@dataclass
class Measurement:
    run: str
    representation: str
    scenario: str
    pods: int
    watchers: int
    writes: int = 0
    writes_by_operation: dict[str, int] = field(default_factory=dict)
    events_per_watcher: list[int] = field(default_factory=list)
    bytes_per_watcher: list[int] = field(default_factory=list)
    objects: int = 0
    object_max_bytes: int = 0
    object_mean_bytes: float = 0.0
    endpoint_entry_bytes: float = 0.0  # mean stored bytes of one endpoint (the seed assumed 100)
    object_overhead_bytes: float = 0.0  # mean stored bytes of an object besides its endpoints
    latency_p50: float | None = None
    latency_p99: float | None = None
    latency_samples: int = 0
    cpu_apiserver: float = 0.0
    cpu_controller: float = 0.0  # the representation's controller (EndpointSlice, or Endpoints)
    cpu_workloads: float = 0.0  # Deployment, ReplicaSet, garbage collector: the pod churn itself
    seconds: float = 0.0
    replaced_pods: int = 0
    failure: dict[str, Any] | None = None
    skipped: str | None = None

    @property
    def total_events(self) -> int:
        return sum(self.events_per_watcher)

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_per_watcher)


# --- small pure helpers ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Samples named `name` (the full sample name, e.g. `..._total`) from a Prometheus exposition."""
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out.append((dict(s.labels), float(s.value)))
    return out


def resource_label(rep: Representation) -> str:
    return "endpoints" if rep.kind == "endpoints" else "endpointslices.discovery.k8s.io"


def writes_by_operation(text: str, rep: Representation) -> dict[str, int]:
    label = resource_label(rep)
    out: dict[str, int] = {}
    for labels, v in metric_samples(text, "sliceplane_store_writes_total"):
        if labels.get("resource") == label:
            out[labels.get("operation", "")] = out.get(labels.get("operation", ""), 0) + int(v)
    return out


def too_large_requests(text: str, rep: Representation) -> int:
    plural = "endpoints" if rep.kind == "endpoints" else "endpointslices"
    return int(sum(v for labels, v in metric_samples(text, "apiserver_request_total")
                   if labels.get("code") == "413" and labels.get("resource", "").split(".")[0] == plural))


def agent_counters(text: str, rep: Representation) -> dict[str, tuple[int, int]]:
    """node -> (object events, bytes) the agent read on its watch of the representation's resource,
    from the agents' Prometheus exposition.

    Events count ADDED/MODIFIED/DELETED; bytes are every byte of the watch body, bookmarks included.
    """
    label = resource_label(rep)
    events: dict[str, int] = {}
    nbytes: dict[str, int] = {}
    for labels, v in metric_samples(text, "sliceplane_agent_watch_events_total"):
        if labels.get("resource") == label:
            node = labels.get("node", "")
            events[node] = events.get(node, 0) + (0 if labels.get("type") in NOT_OBJECT_EVENTS else int(v))
    for labels, v in metric_samples(text, "sliceplane_agent_watch_bytes_total"):
        if labels.get("resource") == label:
            nbytes[labels.get("node", "")] = int(v)
    return {n: (events.get(n, 0), nbytes.get(n, 0)) for n in sorted({*events, *nbytes})}


def latency_buckets(text: str) -> list[int]:
    """Summed (non-cumulative) network-programming latency bucket counts of every agent (only
    full agents observe latency)."""
    cumulative = [0] * len(LATENCY_BOUNDS)
    for labels, v in metric_samples(text, "sliceplane_agent_network_programming_duration_seconds_bucket"):
        le = float(labels.get("le", "+Inf"))
        for i, bound in enumerate(LATENCY_BOUNDS):
            if bound == le:
                cumulative[i] += int(v)
    return [c - (cumulative[i - 1] if i else 0) for i, c in enumerate(cumulative)]


def bucket_percentile(counts: list[int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-th sample (None without samples)."""
    n = sum(counts)
    if n == 0:
        return None
    rank = max(1, -(-int(q * n * 1000) // 1000))
    seen = 0
    for bound, c in zip(LATENCY_BOUNDS, counts, strict=True):
        seen += c
        if seen >= rank:
            return bound
    return LATENCY_BOUNDS[-1]


def object_sizes(objects: list[Obj]) -> tuple[int, float]:
    sizes = [len(msgspec.json.encode(o)) for o in objects]
    return (max(sizes), sum(sizes) / len(sizes)) if sizes else (0, 0.0)


def _endpoint_entries(rep: Representation, obj: Obj) -> list[Obj]:
    if rep.kind != "endpoints":
        return list(obj.get("endpoints") or [])
    return [a for subset in obj.get("subsets") or [] for key in ("addresses", "notReadyAddresses")
            for a in subset.get(key) or []]


def endpoint_bytes(rep: Representation, objects: list[Obj]) -> tuple[float, float]:
    """(mean bytes of one endpoint entry, mean bytes of an object besides its entries), compact
    JSON as stored: the model's bytes-per-endpoint and overhead, measured (a comma counts with
    its entry)."""
    entries = [e for o in objects for e in _endpoint_entries(rep, o)]
    if not objects:
        return 0.0, 0.0
    entry_total = sum(len(msgspec.json.encode(e)) + 1 for e in entries)
    object_total = sum(len(msgspec.json.encode(o)) for o in objects)
    per_entry = entry_total / len(entries) if entries else 0.0
    return per_entry, (object_total - entry_total) / len(objects)


# --- processes -------------------------------------------------------------------------------


class Role:
    """One `python -m sliceplane ROLE` child, its output in a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "sliceplane", *argv], stdout=self._log,
                                     stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                     preexec_fn=die_with_parent)
        self.ready_line = ""

    async def wait_ready(self, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("sliceplane ") and "ready" in line:
                    self.ready_line = line
                    return line
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start:\n{self.tail()}")

    def tail(self, n: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Cluster:
    """A fresh API server, controller-manager, fleet and agents for one run."""

    def __init__(self, spec: RunSpec, watchers: int, full: int, work: Path) -> None:
        self.spec = spec
        self.watchers = watchers
        self.full = full
        self.work = work
        self.roles: dict[str, Role] = {}
        self.url = ""
        self.agents_urls: list[str] = []
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        port = free_port()
        kc = str(self.work / "kubeconfig")
        self.url = f"http://127.0.0.1:{port}"
        rep = self.spec.rep
        self.roles["apiserver"] = Role("apiserver", [
            "apiserver", "--port", str(port), "--store", "memory://", "--kubeconfig", kc,
            "--max-object-bytes", str(self.spec.max_object_bytes),
            "--max-request-bytes", str(self.spec.max_request_bytes)], self.work)
        await self.roles["apiserver"].wait_ready()
        # The representation's controller runs alone in "controller-manager", so its CPU is its own
        # and a rollout's pod churn (Deployment, ReplicaSet: the workload) never queues ahead of it
        # on one event loop; kube-controller-manager would give each its own goroutines.
        cm = ["controller-manager", "--kubeconfig", kc, "--no-leader-elect"]
        if rep.kind == "endpoints":
            cm += ["--controllers", "endpoint", "--endpoints-max-addresses", "0"]
        else:
            cm += ["--controllers", "endpointslice", "--max-endpoints-per-slice", str(rep.max_per_slice),
                   "--endpointslice-updates-batch-period", str(self.spec.batch_period)]
        self.roles["controller-manager"] = Role("controller-manager", cm, self.work)
        self.roles["workloads"] = Role("workloads", [
            "controller-manager", "--kubeconfig", kc, "--no-leader-elect",
            "--controllers", "deployment,replicaset,garbagecollector,namespace"], self.work)
        self.roles["nodes"] = Role("nodes", [
            "nodes", "--kubeconfig", kc, "--count", str(self.watchers), "--pod-ready-delay", "0",
            "--max-grace-period", "0"], self.work)
        # Full agents (tables, latency) and counting agents run in separate processes, so the
        # full agents' table work never delays what the counting agents read off the wire.
        source = "endpoints" if rep.kind == "endpoints" else "slices"
        groups = {"agents-full": ["--count", str(self.full)],
                  "agents-counting": ["--count", str(self.watchers - self.full), "--counting", "--full", "0",
                                      "--name-prefix", "watcher-"]}
        for name, extra in groups.items():
            if extra[1] != "0":
                self.roles[name] = Role(name, [
                    "agents", "--kubeconfig", kc, *extra, "--source", source,
                    "--state-dir", str(self.work / "agents"), "--metrics-port", "0"], self.work)
        for name in ("controller-manager", "workloads", "nodes", *(g for g in groups if g in self.roles)):
            await self.roles[name].wait_ready()
        for name in groups:
            if name not in self.roles:
                continue
            m = re.search(r"metrics (http://\S+)/metrics", self.roles[name].ready_line)
            if not m:
                raise RuntimeError(f"{name} gave no metrics address: {self.roles[name].ready_line}")
            self.agents_urls.append(m.group(1))
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16))

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        for name in ("agents-full", "agents-counting", "nodes", "workloads", "controller-manager", "apiserver"):
            if name in self.roles:
                await asyncio.to_thread(self.roles[name].stop)

    def logs(self) -> str:
        return "\n".join(f"--- {n} ---\n{r.tail()}" for n, r in self.roles.items())

    # --- HTTP ---

    async def req(self, method: str, path: str, body: Obj | None = None, *, ok: tuple[int, ...] = (),
                  content_type: str = "application/json") -> tuple[int, Obj]:
        assert self.session is not None
        async with self.session.request(method, self.url + path,
                                        data=None if body is None else msgspec.json.encode(body),
                                        headers={"Content-Type": content_type}) as r:
            data = msgspec.json.decode(await r.read()) if r.content_length != 0 else {}
            if r.status >= 300 and r.status not in ok:
                raise RuntimeError(f"{method} {path}: {r.status} {data.get('message', data)}")
            return r.status, data

    async def api_metrics(self) -> str:
        assert self.session is not None
        async with self.session.get(self.url + "/metrics") as r:
            return await r.text()

    async def agent_metrics(self) -> str:
        """The agents' Prometheus exposition (cheap: unlike /snapshot, no table is rendered)."""
        assert self.session is not None
        texts = []
        for url in self.agents_urls:
            async with self.session.get(url + "/metrics") as r:
                texts.append(await r.text())
        return "".join(texts)

    async def representation_objects(self) -> list[Obj]:
        ns = sc.NAMESPACE
        if self.spec.rep.kind == "endpoints":
            status, obj = await self.req("GET", f"/api/v1/namespaces/{ns}/endpoints/{sc.NAME}", ok=(404,))
            return [] if status == 404 else [obj]
        _, lst = await self.req("GET", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
                                       f"?labelSelector=kubernetes.io%2Fservice-name%3D{sc.NAME}")
        return list(lst.get("items") or [])

    async def pods(self) -> list[Obj]:
        _, lst = await self.req("GET", f"/api/v1/namespaces/{sc.NAMESPACE}/pods?labelSelector=app%3D{sc.NAME}")
        return list(lst.get("items") or [])

    async def deployment_status(self) -> Obj:
        _, d = await self.req("GET", f"/apis/apps/v1/namespaces/{sc.NAMESPACE}/deployments/{sc.NAME}")
        return d


@dataclass
class _Before:
    metrics: str
    agents: dict[str, tuple[int, int]]
    buckets: list[int]
    cpu_api: float
    cpu_cm: float
    cpu_workloads: float
    t: float


async def _counters(c: Cluster) -> _Before:
    text = await c.agent_metrics()
    return _Before(await c.api_metrics(), agent_counters(text, c.spec.rep), latency_buckets(text),
                   c.roles["apiserver"].cpu(), c.roles["controller-manager"].cpu(), c.roles["workloads"].cpu(),
                   time.monotonic())


async def _wait_quiet(c: Cluster, timeout: float) -> None:
    """Until every agent's counters held still for QUIET_SECONDS (the last events have arrived).

    Reads only the agents' counters: listing the representation's objects costs the API server
    O(P), and its CPU is part of what a run measures."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = agent_counters(await c.agent_metrics(), c.spec.rep)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= QUIET_SECONDS:
            return
        await asyncio.sleep(POLL_SECONDS)


async def _measure(c: Cluster, scenario: str, before: _Before, failure: dict[str, Any] | None,
                   replaced: int, pods: int) -> Measurement:
    text = await c.agent_metrics()
    metrics = await c.api_metrics()
    after_agents = agent_counters(text, c.spec.rep)
    buckets = [a - b for a, b in zip(latency_buckets(text), before.buckets, strict=True)]
    w_after, w_before = writes_by_operation(metrics, c.spec.rep), writes_by_operation(before.metrics, c.spec.rep)
    by_op = {op: n - w_before.get(op, 0) for op, n in w_after.items() if n - w_before.get(op, 0)}
    objects = await c.representation_objects()
    max_b, mean_b = object_sizes(objects)
    per_entry, overhead = endpoint_bytes(c.spec.rep, objects)
    nodes = sorted(after_agents, key=lambda n: (len(n), n))
    return Measurement(
        run=c.spec.label, representation=c.spec.rep.name, scenario=scenario, pods=pods, watchers=len(nodes),
        writes=sum(by_op.values()), writes_by_operation=by_op,
        events_per_watcher=[after_agents[n][0] - before.agents.get(n, (0, 0))[0] for n in nodes],
        bytes_per_watcher=[after_agents[n][1] - before.agents.get(n, (0, 0))[1] for n in nodes],
        objects=len(objects), object_max_bytes=max_b, object_mean_bytes=mean_b,
        endpoint_entry_bytes=per_entry, object_overhead_bytes=overhead,
        latency_p50=bucket_percentile(buckets, 0.50), latency_p99=bucket_percentile(buckets, 0.99),
        latency_samples=sum(buckets),
        cpu_apiserver=c.roles["apiserver"].cpu() - before.cpu_api,
        cpu_controller=c.roles["controller-manager"].cpu() - before.cpu_cm,
        cpu_workloads=c.roles["workloads"].cpu() - before.cpu_workloads,
        seconds=time.monotonic() - before.t, replaced_pods=replaced, failure=failure,
    )


async def _converge(c: Cluster, phase: str, progress: Progress, want_ready: frozenset[str],
                    want_not_ready: frozenset[str], before: _Before, timeout: float) -> dict[str, Any] | None:
    """Poll the representation's objects until they publish exactly the wanted pods; returns a
    failure record instead when the API server refused them as too large (the seed's 💥)."""
    deadline = time.monotonic() + timeout
    first_413: float | None = None
    base_413 = too_large_requests(before.metrics, c.spec.rep)
    total = len(want_ready) + len(want_not_ready)
    while True:
        # The objects are listed only once the watchers went quiet: a list while they churn
        # could not have converged, and would cost the API server O(P) each time.
        await _wait_quiet(c, max(1.0, deadline - time.monotonic()))
        view = sc.endpoint_view(c.spec.rep, await c.representation_objects())
        progress(phase, min(total, len((view.ready & want_ready) | (view.not_ready & want_not_ready))), total)
        if sc.converged(view, want_ready, want_not_ready):
            return None
        refused = too_large_requests(await c.api_metrics(), c.spec.rep) - base_413
        if refused and first_413 is None:
            first_413 = time.monotonic()
        if first_413 is not None and time.monotonic() - first_413 >= FAILURE_GRACE_SECONDS:
            return {"code": 413, "reason": "RequestEntityTooLarge", "refusedWrites": refused,
                    "maxObjectBytes": c.spec.max_object_bytes, "publishedEndpoints": view.total,
                    "message": f"the API server refused {refused} write(s) of the {c.spec.rep.name} object as "
                               f"larger than {c.spec.max_object_bytes} bytes"}
        if time.monotonic() > deadline:
            raise TimeoutError(f"{phase}: not converged after {timeout:.0f}s "
                               f"({len(view.ready)} ready, {len(view.not_ready)} not ready, want {total})")


async def _wait_deployment(c: Cluster, pods: int, phase: str, progress: Progress, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        d = await c.deployment_status()
        st = d.get("status") or {}
        done = (st.get("observedGeneration", 0) >= d["metadata"].get("generation", 1)
                and st.get("updatedReplicas") == pods and st.get("readyReplicas") == pods
                and st.get("replicas") == pods)
        progress(phase, min(pods, int(st.get("updatedReplicas") or 0) if phase.endswith("rollout")
                            else int(st.get("readyReplicas") or 0)), pods)
        if done:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{phase}: deployment not done after {timeout:.0f}s: {st}")
        await asyncio.sleep(0.5)


async def _settled_pods(c: Cluster, pods: int, timeout: float) -> list[Obj]:
    """The Deployment's pods once exactly `pods` exist, all ready (old ones gone)."""
    deadline = time.monotonic() + timeout
    while True:
        items = await c.pods()
        live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        if len(items) == pods and len(sc.ready_pod_names(live)) == pods:
            return items
        if time.monotonic() > deadline:
            raise TimeoutError(f"pods not settled: {len(items)} pods, {len(sc.ready_pod_names(live))} ready")
        # a list of P pods costs the API server O(P): ask large deployments less often
        await asyncio.sleep(min(2.0, max(0.5, pods / 5000)))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def run_one(spec: RunSpec, pods: int, watchers: int, full: int, work: Path, progress: Progress,
                  timeout: float = 600.0) -> list[Measurement]:
    """All of a run's scenarios, in order, on one fresh cluster."""
    c = Cluster(spec, watchers, full, work)
    out: list[Measurement] = []
    label = spec.label
    try:
        progress(f"{label}: start", 0, 1)
        await c.start()
        progress(f"{label}: start", 1, 1)
        # setup: P ready pods (not measured)
        await c.req("POST", f"/apis/apps/v1/namespaces/{sc.NAMESPACE}/deployments", sc.deployment(pods, spec.max_surge, spec.max_unavailable))
        await _wait_deployment(c, pods, f"{label}: {pods} ready pods", progress, timeout)
        items = await _settled_pods(c, pods, timeout)
        ready = sc.ready_pod_names(items)

        # create
        before = await _counters(c)
        await c.req("POST", f"/api/v1/namespaces/{sc.NAMESPACE}/services", sc.service())
        failure = await _converge(c, f"{label}: create", progress, ready, frozenset(), before, timeout)
        await _wait_quiet(c, timeout)
        out.append(await _measure(c, "create", before, failure, 0, pods))
        if failure is not None:
            out += [Measurement(run=label, representation=spec.rep.name, scenario=s, pods=pods, watchers=watchers,
                                skipped="the object could not be stored at creation")
                    for s in spec.scenarios if s != "create"]
            return out

        if "update" in spec.scenarios:
            victim = sorted(items, key=lambda p: p["metadata"]["name"])[0]
            name = victim["metadata"]["name"]
            before = await _counters(c)
            await c.req("PUT", f"/api/v1/namespaces/{sc.NAMESPACE}/pods/{name}/status",
                        sc.with_readiness(victim, False, _now()))
            failure = await _converge(c, f"{label}: update", progress, ready - {name}, frozenset({name}), before,
                                      timeout)
            await _wait_quiet(c, timeout)
            out.append(await _measure(c, "update", before, failure, 0, pods))
            # and back, unmeasured
            _, pod = await c.req("GET", f"/api/v1/namespaces/{sc.NAMESPACE}/pods/{name}")
            await c.req("PUT", f"/api/v1/namespaces/{sc.NAMESPACE}/pods/{name}/status",
                        sc.with_readiness(pod, True, _now()))
            await _converge(c, f"{label}: update (undo)", progress, ready, frozenset(), before, timeout)
            await _wait_quiet(c, timeout)

        if "rolling" in spec.scenarios:
            before = await _counters(c)
            await c.req("PATCH", f"/apis/apps/v1/namespaces/{sc.NAMESPACE}/deployments/{sc.NAME}",
                        sc.rollout_patch(_now()), content_type="application/merge-patch+json")
            await _wait_deployment(c, pods, f"{label}: rollout", progress, timeout)
            items = await _settled_pods(c, pods, timeout)
            new_ready = sc.ready_pod_names(items)
            failure = await _converge(c, f"{label}: rolling", progress, new_ready, frozenset(), before, timeout)
            await _wait_quiet(c, timeout)
            out.append(await _measure(c, "rolling", before, failure, len(ready - new_ready), pods))
        return out
    except Exception as e:
        message = str(e) if str(e).startswith(label) else f"{label}: {e}"  # phases already name the run
        raise RuntimeError(f"{message}\n{c.logs()}") from e
    finally:
        await c.stop()


async def run_all(runs: list[RunSpec], pods: int, watchers: int, full: int, work: Path, progress: Progress,
                  timeout: float = 600.0) -> list[Measurement]:
    """Every run, one after the other (each on its own fresh cluster)."""
    out: list[Measurement] = []
    for i, spec in enumerate(runs):
        out += await run_one(spec, pods, watchers, full, work / f"{i}-{spec.label}", progress, timeout)
    return out
