"""API creates per second through the real API server, SQLite against the memory store baseline.

Starts `sliceplane apiserver` as a separate process for each store, creates ConfigMaps and Pods
over HTTP from several concurrent connections, and prints creates/second with the ratio to the
memory store measured in the same run.

    python benchmarks/api_creates.py --objects 5000 --concurrency 32
    python benchmarks/api_creates.py --objects 5000 --concurrency 32 --etcd 3

`--etcd N` also starts an N-member etcd cluster on loopback (tests/etcd_cluster.py, data in the
system temp dir: the same disk as the SQLite file, real fsyncs) and measures the API server on it
under the same client load, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.progress import Progress
from rich.table import Table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_apiserver(store: str, port: int) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(
        [sys.executable, "-m", "sliceplane", "apiserver", "--port", str(port), "--store", store],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert p.stdout is not None
    for line in p.stdout:
        if b"ready" in line:
            return p
    raise RuntimeError("apiserver did not start")


def pod(i: int) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"bench-{i}", "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9",
                                 "ports": [{"containerPort": 8080, "name": "http"}]}]},
    }


async def create_all(url: str, n: int, concurrency: int, progress: Progress, label: str) -> float:
    task = progress.add_task(label, total=n)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    errors = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while not queue.empty():
            i = queue.get_nowait()
            async with session.post(f"{url}/api/v1/namespaces/default/pods", data=json.dumps(pod(i)),
                                    headers={"Content-Type": "application/json"}) as r:
                await r.read()
                if r.status != 201:
                    errors += 1
            progress.advance(task)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{errors} creates failed")
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--etcd", type=int, default=0, metavar="N", help="also measure an N-member etcd cluster")
    args = ap.parse_args()
    console = Console()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console) as progress:
        stores: list[tuple[str, str]] = [("memory", "memory://"), ("sqlite", f"sqlite://{Path(tmp) / 'bench.db'}")]
        with contextlib.ExitStack() as stack:
            if args.etcd:
                sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
                from etcd_cluster import EtcdCluster

                cluster = stack.enter_context(EtcdCluster(args.etcd, base_dir=tempfile.gettempdir()))
                stores.append((f"etcd ({args.etcd} members)", cluster.url))
            for name, store in stores:
                port = free_port()
                proc = start_apiserver(store, port)
                try:
                    results[name] = asyncio.run(
                        create_all(f"http://127.0.0.1:{port}", args.objects, args.concurrency, progress, name)
                    )
                finally:
                    os.kill(proc.pid, signal.SIGTERM)
                    proc.wait(30)
    table = Table(title=f"API creates/second ({args.objects} pods, {args.concurrency} connections)")
    table.add_column("store")
    table.add_column("creates/s", justify="right")
    table.add_column("ratio to memory", justify="right")
    for name, rate in results.items():
        table.add_row(name, f"{rate:,.0f}", f"{rate / results['memory']:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
