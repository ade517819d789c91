"""Creates per second of the memory and sqlite stores under N concurrent writers, and their ratio.

    python benchmarks/store_bench.py [--writers 64] [--creates 20000] [--value-bytes 1024]

Both stores run in the same process and the same run, so the ratio sqlite/memory is the figure to
compare across machines; the absolute rates depend on the disk's fsync latency.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def main(writers: int, creates: int, value_bytes: int) -> None:
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--creates", type=int, default=20000)
    parser.add_argument("--value-bytes", type=int, default=1024)
    args = parser.parse_args()
    asyncio.run(main(args.writers, args.creates, args.value_bytes))
