"""Creates per second of the memory and sqlite stores under N concurrent writers, and their ratio.

    python benchmarks/store_bench.py [--writers 64] [--creates 20000] [--value-bytes 1024]
        [--etcd N] [--etcd-url etcd://h:p,...] [--etcd-dir DIR]

Both stores run in the same process and the same run, so the ratio sqlite/memory is the figure to
compare across machines; the absolute rates depend on the disk's fsync latency.

`--etcd N` also measures an N-member etcd cluster started for the run (tests/etcd_cluster.py; its
data under --etcd-dir, default the system temp dir, so on the same disk as the sqlite file), with
the same writers; `--etcd-url` measures an existing cluster instead (its keys go under
/registry/bench/).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from sliceplane.store import Store
from sliceplane.store.memory import MemoryStore
from sliceplane.store.sqlite import SQLiteStore


async def creates_per_second(store: Store, writers: int, creates: int, value: bytes) -> float:
    per_writer = creates // writers

    async def writer(w: int) -> None:
        for i in range(per_writer):
            await store.create(f"/registry/bench/ns/{w}-{i}", value)

    await store.start()
    try:
        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    return per_writer * writers / elapsed


async def etcd_creates_per_second(
    members: int, url: str | None, data_dir: str | None, writers: int, creates: int, value: bytes
) -> tuple[float, str]:
    from sliceplane.store.etcd import EtcdStore

    if url is not None:
        endpoints = [e for e in url.removeprefix("etcd://").split(",") if e]
        return await creates_per_second(EtcdStore(endpoints, compact_interval=None), writers, creates, value), url
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from etcd_cluster import EtcdCluster

    with EtcdCluster(members, base_dir=data_dir or tempfile.gettempdir()) as cluster:
        store = EtcdStore(cluster.endpoints, compact_interval=None)
        rate = await creates_per_second(store, writers, creates, value)
        return rate, f"{members} member(s), data in {cluster.root.parent}"


async def main(
    writers: int,
    creates: int,
    value_bytes: int,
    etcd_members: int = 0,
    etcd_url: str | None = None,
    etcd_dir: str | None = None,
) -> None:
    value = (b'{"kind":"Pod","metadata":{"name":"x"}}' * (value_bytes // 38 + 1))[:value_bytes]
    memory = await creates_per_second(MemoryStore(), writers, creates, value)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_store = SQLiteStore(str(Path(tmp) / "bench.db"), compact_interval=None)
        sqlite = await creates_per_second(sqlite_store, writers, creates, value)
        group = sqlite_store.committed_writes / max(1, sqlite_store.commits)
    print(f"writers={writers} creates={creates} value={value_bytes}B")
    print(f"memory: {memory:10.0f} creates/s")
    print(f"sqlite: {sqlite:10.0f} creates/s  (group commit: {group:.1f} writes per fsync)")
    print(f"ratio sqlite/memory: {sqlite / memory:.3f}")
    if etcd_members or etcd_url:
        etcd, where = await etcd_creates_per_second(etcd_members, etcd_url, etcd_dir, writers, creates, value)
        print(f"etcd:   {etcd:10.0f} creates/s  ({where})")
        print(f"ratio etcd/sqlite: {etcd / sqlite:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--creates", type=int, default=20000)
    parser.add_argument("--value-bytes", type=int, default=1024)
    parser.add_argument("--etcd", type=int, default=0, metavar="N", help="also measure an N-member etcd cluster")
    parser.add_argument("--etcd-url", default=None, help="measure this existing etcd cluster instead")
    parser.add_argument("--etcd-dir", default=None, help="where the started cluster keeps its data")
    args = parser.parse_args()
    asyncio.run(main(args.writers, args.creates, args.value_bytes, args.etcd, args.etcd_url, args.etcd_dir))
