"""Helper for test_store_crash.py: a storm of writes on a sqlite store, printing each acknowledged key.

Usage: python store_storm.py DB_PATH WRITERS. Runs until killed. Each writer creates keys and updates
some of them; a line `ack KEY REVISION` is printed (and flushed) only after the store returned.
"""

from __future__ import annotations

import asyncio
import sys

from sliceplane.store.sqlite import SQLiteStore


async def writer(store: SQLiteStore, w: int) -> None:
    i = 0
    while True:
        key = f"/storm/{w}/{i}"
        kv = await store.create(key, f"value-{w}-{i}".encode() * 20)
        print(f"ack {key} {kv.mod_revision}", flush=True)
        if i % 3 == 0:
            kv = await store.update(key, b"updated-" + key.encode(), kv.mod_revision)
            print(f"upd {key} {kv.mod_revision}", flush=True)
        i += 1


async def main(path: str, writers: int) -> None:
    store = SQLiteStore(path, compact_interval=0.05, compact_retain=200)
    await store.start()
    print("started", flush=True)
    await asyncio.gather(*(writer(store, w) for w in range(writers)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
