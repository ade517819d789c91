"""The in-memory store: the test fake and `memory://`. Nothing survives the process."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sliceplane.store._core import DEFAULT_WATCH_QUEUE_LIMIT, LiveIndex, WatchHub, WriteOp, plan_write
from sliceplane.store.base import KeyValue, Store, StoreError, StoreUnavailableError, WatchEvent


class MemoryStore(Store):
    """Writes apply at once on the event loop; history is the last `history_capacity` events.

    Events that fall out of the history are compacted (a watch from before them raises
    CompactedError), which bounds memory the way etcd's auto-compaction does.
    """

    def __init__(
        self, *, history_capacity: int = 50_000, watch_queue_limit: int = DEFAULT_WATCH_QUEUE_LIMIT
    ) -> None:
        self._index = LiveIndex()
        self._hub = WatchHub(
            head=0, compacted=0, ring_capacity=history_capacity, queue_limit=watch_queue_limit
        )
        self._closed = False

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._closed = True
        self._hub.close()

    async def get(self, key: str) -> KeyValue | None:
        return self._index.get(key)

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        return self._index.range(prefix), self._index.revision

    async def create(self, key: str, value: bytes) -> KeyValue:
        return self._write(WriteOp("create", key, bytes(value))).kv

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        return self._write(WriteOp("update", key, bytes(value), expected_mod_revision)).kv

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> WatchEvent:
        return self._write(WriteOp("delete", key, b"", expected_mod_revision))

    async def current_revision(self) -> int:
        return self._index.revision

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[WatchEvent]]:
        return self._hub.watch(prefix, start_revision)

    async def compact(self, revision: int) -> None:
        if revision > self._index.revision:
            raise StoreError(f"cannot compact to future revision {revision} (current {self._index.revision})")
        self._hub.compact(revision)

    @property
    def compacted_revision(self) -> int:
        return self._hub.compacted

    @property
    def watcher_count(self) -> int:
        """Open watches (for metrics and tests)."""
        return self._hub.watcher_count

    def _write(self, op: WriteOp) -> WatchEvent:
        if self._closed:
            raise StoreUnavailableError("store closed")
        event = plan_write(op, self._index.get(op.key), self._index.revision + 1)
        self._index.apply(event)
        self._hub.publish([event])
        return event
