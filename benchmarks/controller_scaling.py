"""EndpointSlice controller: convergence over P pre-existing pods, and CPU per single pod change.

For each P (default 1,000 then 20,000, in one run), against a fresh `sliceplane apiserver`:
1. create P pods and mark them Running and Ready through the status subresource;
2. start `sliceplane controller-manager` as its own process, create a Service selecting the pods,
   and time until its EndpointSlices hold P ready endpoints (convergence);
3. flip one pod's readiness K times, waiting each time until its slice shows it, and divide the
   controller process's CPU seconds (user+sys from /proc) by K.
The first P is the baseline: the report gives each figure's ratio to it.

    python benchmarks/controller_scaling.py --pods 1000 20000 --changes 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> tuple[float, float]:
    """The process's resident set now and at its peak (VmRSS, VmHWM), in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    p = subprocess.Popen([sys.executable, "-m", "sliceplane", *argv],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.stdout is not None
    for line in p.stdout:
        if b"ready" in line:
            return p
    raise RuntimeError(f"{argv[0]} did not start")


def stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is not None:
        return
    os.kill(p.pid, signal.SIGTERM)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def ready_status(ip: str, ready: bool, now: str) -> dict:
    status = "True" if ready else "False"
    return {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.168.0.1", "startTime": now,
        "conditions": [
            {"type": "Ready", "status": status, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        ],
    }


@dataclass
class Result:
    pods: int
    converge_s: float
    cpu_per_change_ms: float
    rss_mib: float = 0.0  # controller-manager resident set after the changes
    peak_rss_mib: float = 0.0
    start_cpu_s: float = 0.0  # controller-manager CPU from its start until converged (lists, first syncs)


class Bench:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.s = session

    async def req(self, method: str, path: str, body: dict | None = None) -> dict:
        async with self.s.request(method, self.url + path, data=None if body is None else json.dumps(body),
                                  headers={"Content-Type": "application/json"}) as r:
            data = await r.json()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {data}")
            return data

    async def make_pods(self, n: int, progress: Progress) -> None:
        # The controller skips endpoints on nodes it does not know, as Kubernetes does.
        await self.req("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-0", "labels": {"topology.kubernetes.io/zone": "zone-a"}},
        })
        task = progress.add_task(f"{n} ready pods", total=n)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with sem:
                name = f"p-{i}"
                pod = await self.req("POST", "/api/v1/namespaces/default/pods", {
                    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
                    "spec": {"nodeName": "node-0", "containers": [
                        {"name": "c", "image": "pause", "ports": [{"containerPort": 8080}]}]},
                })
                pod["status"] = ready_status(f"10.{128 + i // 65536}.{i // 256 % 256}.{i % 256}", True, now)
                await self.req("PUT", f"/api/v1/namespaces/default/pods/{name}/status", pod)
                progress.advance(task)

        await asyncio.gather(*(one(i) for i in range(n)))

    async def ready_count(self) -> int:
        sl = await self.req("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
                                   "?labelSelector=kubernetes.io%2Fservice-name%3Dbench")
        return sum(1 for s in sl["items"] for e in s.get("endpoints") or [] if e["conditions"].get("ready"))

    async def wait_ready_count(self, n: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while await self.ready_count() != n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"slices did not reach {n} ready endpoints")
            await asyncio.sleep(0.05)


async def measure(pods: int, changes: int, progress: Progress, tmp: Path) -> Result:
    port = free_port()
    api = spawn(["apiserver", "--port", str(port), "--store", "memory://",
                 "--kubeconfig", str(tmp / f"kc-{pods}")])
    cm: subprocess.Popen[bytes] | None = None
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
            b = Bench(f"http://127.0.0.1:{port}", s)
            await b.make_pods(pods, progress)
            cm = spawn(["controller-manager", "--kubeconfig", str(tmp / f"kc-{pods}"),
                        "--disable-endpoints-controller"])
            t0 = time.perf_counter()
            await b.req("POST", "/api/v1/namespaces/default/services", {
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": "bench"},
                "spec": {"selector": {"app": "bench"}, "ports": [{"port": 80, "targetPort": 8080}]},
            })
            await b.wait_ready_count(pods)
            converge = time.perf_counter() - t0
            await asyncio.sleep(1)
            task = progress.add_task(f"{changes} single changes at P={pods}", total=changes)
            cpu0 = cpu_seconds(cm.pid)
            start_cpu = cpu0
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            for k in range(changes):
                name = f"p-{(k // 2) % pods}"  # each pod flips not-ready, then back
                pod = await b.req("GET", f"/api/v1/namespaces/default/pods/{name}")
                ready = k % 2 == 1  # flip it not-ready, then back
                pod["status"] = ready_status(pod["status"]["podIP"], ready, now)
                await b.req("PUT", f"/api/v1/namespaces/default/pods/{name}/status", pod)
                await b.wait_ready_count(pods if ready else pods - 1)
                progress.advance(task)
            cpu = cpu_seconds(cm.pid) - cpu0
            rss, peak = rss_mib(cm.pid)
            return Result(pods, converge, cpu / changes * 1000, rss, peak, start_cpu)
    except Exception:
        if cm is not None:
            stop(cm)
        if cm is not None and cm.stdout is not None:
            print(cm.stdout.read().decode(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        if cm is not None:
            stop(cm)
        stop(api)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, nargs="+", default=[1000, 20000])
    ap.add_argument("--changes", type=int, default=40, help="an even number: each pod flips and flips back")
    args = ap.parse_args()
    console = Console()
    results = []
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console) as progress:
        for p in args.pods:
            results.append(asyncio.run(measure(p, args.changes, progress, Path(tmp))))
    base = results[0]
    t = Table(title="EndpointSlice controller scaling (controller-manager process)")
    for col in ("pods", "converge (s)", "ratio", "CPU per pod change (ms)", "ratio", "RSS (MiB)", "peak RSS (MiB)",
                "CPU to converge (s)"):
        t.add_column(col, justify="right")
    for r in results:
        t.add_row(f"{r.pods:,}", f"{r.converge_s:.2f}", f"{r.converge_s / base.converge_s:.1f}",
                  f"{r.cpu_per_change_ms:.2f}", f"{r.cpu_per_change_ms / base.cpu_per_change_ms:.2f}",
                  f"{r.rss_mib:.1f}", f"{r.peak_rss_mib:.1f}", f"{r.start_cpu_s:.2f}")
    console.print(t)


if __name__ == "__main__":
    main()
