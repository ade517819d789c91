"""The API server's write path, in process: the code at a baseline commit against the working tree.

Each measurement runs in its own Python process over the memory store, calling the server's
create/update pipeline directly (no HTTP), with the writes the fleet and controllers make per
pod: create, bind, status Running (strategic merge patch), status Ready (JSON merge patch of
the conditions), a label change (merge patch on the main resource) and a no-op PUT of the
object as read. Two pod sizes show whether the per-pod cost follows the object's size.

With `--http`, the same writes go over HTTP (32 connections) to a `sliceplane apiserver`
process started from each tree, and the figure is that whole process's CPU time (user+sys from
/proc) per pod per write: the server's cost, without the client's.

Runs alternate between the two source trees (A = baseline, B = working tree) so load from
other processes on the machine falls on both; the table gives medians and the ratio B/A.

    python benchmarks/write_path.py --pods 1000 --repeat 3
    python benchmarks/write_path.py --baseline HEAD~3 --pods 500
    python benchmarks/write_path.py --http --pods 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The last commit before the write-path work: what "A" means unless told otherwise.
DEFAULT_BASELINE = "f85a8a7"
PHASES = ("create", "bind", "running", "ready", "label", "noop_put")


def make_pod(i: int, size: str) -> dict[str, Any]:
    """A Deployment-made pod; "large" has the containers, env and volumes of a busy workload."""
    containers = 1 if size == "small" else 6
    env = 2 if size == "small" else 30
    spec: dict[str, Any] = {
        "containers": [{
            "name": f"c{c}", "image": f"registry.example/app{c}:1.{c}",
            "ports": [{"containerPort": 8080 + c, "name": f"http{c}"}],
            "env": [{"name": f"VAR_{e}", "value": f"value-{e}-" + "x" * 20} for e in range(env)],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080 + c}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/config"}],
        } for c in range(containers)],
        "volumes": [{"name": "config", "configMap": {"name": "app-config"}}],
    }
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"bench-{i}", "labels": {"app": "bench", "pod-template-hash": "5d8f7c9b6"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "bench-5d8f7c9b6",
                                          "uid": "6f1c0d8e-2b7a-4b8e-9a51-0c0a5f2f9d11", "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": spec,
    }


async def worker(pods: int, size: str) -> dict[str, float]:
    """Seconds of CPU per phase for `pods` pods (run inside the tree under test)."""
    from sliceplane.api import patch as patch_mod
    from sliceplane.api import registry
    from sliceplane.apiserver import objects
    from sliceplane.apiserver.app import APIState
    from sliceplane.apiserver.config import ServerConfig
    from sliceplane.apiserver.handlers import RequestContext
    from sliceplane.store.memory import MemoryStore

    store = MemoryStore()
    await store.start()
    state = APIState(store, ServerConfig())
    await state.start()
    h = state.handlers
    info = registry.PODS
    smp = "application/strategic-merge-patch+json"
    merge = "application/merge-patch+json"
    running = json.dumps({"status": {"phase": "Running", "podIP": "10.0.0.9", "hostIP": "192.168.0.2",
                                     "startTime": "2026-01-01T00:00:00Z"}}).encode()
    ready = json.dumps({"status": {"conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
        {"type": "ContainersReady", "status": "True"}, {"type": "Ready", "status": "True"}]}}).encode()
    label = json.dumps({"metadata": {"labels": {"bench/touched": "yes"}}}).encode()
    names = [f"bench-{i}" for i in range(pods)]
    bodies = [make_pod(i, size) for i in range(pods)]
    binding = {"target": {"kind": "Node", "name": "node-1"}}

    def ctx() -> Any:
        return RequestContext()

    async def run(phase: str) -> None:
        if phase == "create":
            for b in bodies:
                await h.create(info, "default", b, ctx())
        elif phase == "bind":
            for n in names:
                await h.update(info, "default", n, lambda old: objects.bind_pod(old, binding, time.time()), ctx(),
                               subresource="binding", check_fields=False)
        elif phase in ("running", "ready", "label"):
            data, ctype, sub = {"running": (running, smp, "status"), "ready": (ready, merge, "status"),
                                "label": (label, merge, None)}[phase]
            for n in names:
                await h.update(info, "default", n, lambda old: patch_mod.apply_patch(old, data, ctype), ctx(),
                               subresource=sub)
        elif phase == "noop_put":
            for n in names:
                await h.update(info, "default", n, lambda old: old, ctx())

    out: dict[str, float] = {}
    for phase in PHASES:
        t0 = time.process_time()
        await run(phase)
        out[phase] = time.process_time() - t0
    # Everything the run stored must be what the pipeline made of it (a sanity check, not a timing one).
    sample, _ = await h.read(info, "default", names[-1])
    assert sample["status"]["phase"] == "Running" and sample["spec"]["nodeName"] == "node-1", sample
    assert sample["metadata"]["labels"]["bench/touched"] == "yes"
    await state.stop()
    await store.close()
    return out


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def http_worker(pods: int, size: str) -> dict[str, float]:
    """The writes over HTTP to an API server process of this tree; its CPU seconds per phase."""
    import socket

    import aiohttp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "sliceplane", "apiserver", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if b"ready" in line:
            break
    base = f"http://127.0.0.1:{port}/api/v1/namespaces/default/pods"
    running = {"status": {"phase": "Running", "podIP": "10.0.0.9", "hostIP": "192.168.0.2",
                          "startTime": "2026-01-01T00:00:00Z"}}
    ready = {"status": {"conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
        {"type": "ContainersReady", "status": "True"}, {"type": "Ready", "status": "True"}]}}
    smp = "application/strategic-merge-patch+json"
    merge = "application/merge-patch+json"
    out: dict[str, float] = {}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
            async def call(method: str, url: str, body: Any, ctype: str = "application/json") -> None:
                async with session.request(method, url, data=json.dumps(body), headers={"Content-Type": ctype}) as r:
                    await r.read()
                    if r.status >= 300:
                        raise RuntimeError(f"{method} {url}: {r.status}")

            async def phase(name: str, one: Any) -> None:
                queue = list(range(pods))
                cpu0 = process_cpu(proc.pid)

                async def run() -> None:
                    while queue:
                        await one(queue.pop())

                await asyncio.gather(*(run() for _ in range(32)))
                out[name] = process_cpu(proc.pid) - cpu0

            async def get_put(i: int) -> None:
                async with session.get(f"{base}/bench-{i}") as r:
                    obj = await r.json()
                await call("PUT", f"{base}/bench-{i}", obj)

            await phase("create", lambda i: call("POST", base, make_pod(i, size)))
            await phase("bind", lambda i: call("POST", f"{base}/bench-{i}/binding", {
                "apiVersion": "v1", "kind": "Binding", "metadata": {"name": f"bench-{i}"},
                "target": {"kind": "Node", "name": "node-1"}}))
            await phase("running", lambda i: call("PATCH", f"{base}/bench-{i}/status", running, smp))
            await phase("ready", lambda i: call("PATCH", f"{base}/bench-{i}/status", ready, merge))
            await phase("label", lambda i: call("PATCH", f"{base}/bench-{i}",
                                                {"metadata": {"labels": {"bench/touched": "yes"}}}, merge))
            await phase("noop_put", get_put)  # includes the GET each PUT needs
    finally:
        proc.terminate()
        proc.wait()
    return out


def export_tree(ref: str) -> Path:
    """`src/` as of `ref`, unpacked in a temporary directory."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True).stdout
    dest = Path(tempfile.mkdtemp(prefix="sliceplane-baseline-"))
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def measure(src: Path, pods: int, size: str, http: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, __file__, "--worker", "--pods", str(pods), "--size", size] + (["--http"] if http else [])
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="git ref of the A side")
    ap.add_argument("--candidate", default=None, help="git ref of the B side (default: the working tree)")
    ap.add_argument("--sizes", nargs="+", default=["small", "large"], choices=["small", "large"])
    ap.add_argument("--http", action="store_true", help="over HTTP; CPU of the API server process")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", default="small", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run((http_worker if args.http else worker)(args.pods, args.size))))
        return
    trees = {"A": export_tree(args.baseline),
             "B": export_tree(args.candidate) if args.candidate else ROOT / "src"}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for r in range(args.repeat):
        for size in args.sizes:
            for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
                results.setdefault((side, size), []).append(measure(trees[side], args.pods, size, args.http))
                print(f"run {r + 1}/{args.repeat} {size} {side} done", file=sys.stderr)
    where = "API server process CPU (HTTP)" if args.http else "CPU in process"
    print(f"A = {args.baseline}, B = {args.candidate or 'working tree'}; {args.pods} pods; {where}, "
          f"microseconds per pod per write, median of {args.repeat}")
    header = f"{'size':6} {'phase':9} {'A':>9} {'B':>9} {'B/A':>6}"
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        total_a = total_b = 0.0
        for phase in (*PHASES, "total"):
            if phase == "total":
                a, b = total_a, total_b
            else:
                a = statistics.median(x[phase] for x in results[("A", size)]) / args.pods * 1e6
                b = statistics.median(x[phase] for x in results[("B", size)]) / args.pods * 1e6
                total_a += a
                total_b += b
            print(f"{size:6} {phase:9} {a:9.0f} {b:9.0f} {b / a:6.2f}")


if __name__ == "__main__":
    main()
