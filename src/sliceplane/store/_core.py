"""What every store backend shares: the write rules, the live index, the event ring and the watch fan-out.

Rules of the road:
- every successful write makes exactly one event and takes the next revision, so the events of a
  store have contiguous revisions (the ring relies on this to index by arithmetic);
- `plan_write` is the only place that decides whether a create/update/delete is allowed (the
  compare-and-swap rules); backends call it and then apply the event it returns;
- `WatchHub.publish` runs on the event loop, after the events are durable, in revision order;
  each watcher has a bounded buffer, and a watcher that overflows it gets `WatchOverflowError`
  instead of slowing the writers down.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from sliceplane.store.base import (
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatchError,
    StoreUnavailableError,
    WatchEvent,
    WatchOverflowError,
)

# A replay reads older history in pages of this many revisions, so a watcher starting far back gets
# its first batch quickly and the reader never holds one huge result in memory.
HISTORY_PAGE = 1000

# Default per-watcher buffer, in events. An in-process consumer (the API server's watch cache) drains
# everything pending on each wake-up, so it only overflows when it is slower than the writers for
# tens of thousands of events in a row.
DEFAULT_WATCH_QUEUE_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class WriteOp:
    """One requested write. `expected` is the mod_revision to compare with (None: unconditional delete)."""

    kind: Literal["create", "update", "delete"]
    key: str
    value: bytes = b""
    expected: int | None = None


def plan_write(op: WriteOp, current: KeyValue | None, revision: int) -> WatchEvent:
    """The event `op` makes at `revision` when the key holds `current`; raises when the compare fails.

    For a DELETE the event's kv keeps the last value and create_revision, and its mod_revision is
    the deletion's revision (what a deleted object's resourceVersion becomes).
    """
    if op.kind == "create":
        if current is not None:
            raise KeyExistsError(op.key)
        return WatchEvent("PUT", KeyValue(op.key, op.value, revision, revision), None, revision)
    if op.kind == "update":
        if current is None or current.mod_revision != op.expected:
            raise RevisionMismatchError(op.key, current)
        kv = KeyValue(op.key, op.value, current.create_revision, revision)
        return WatchEvent("PUT", kv, current, revision)
    if op.kind == "delete":
        if current is None:
            if op.expected is None:
                raise KeyNotFoundError(op.key)
            raise RevisionMismatchError(op.key, None)
        if op.expected is not None and current.mod_revision != op.expected:
            raise RevisionMismatchError(op.key, current)
        kv = KeyValue(op.key, current.value, current.create_revision, revision)
        return WatchEvent("DELETE", kv, current, revision)
    raise ValueError(f"unknown write kind {op.kind!r}")


def apply_event(state: dict[str, KeyValue], event: WatchEvent) -> None:
    """Bring a key -> live KeyValue map up to date with one event."""
    if event.type == "PUT":
        state[event.kv.key] = event.kv
    else:
        state.pop(event.kv.key, None)


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix` (None: no bound)."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


class LiveIndex:
    """The current value of every live key, with the keys kept sorted for prefix ranges."""

    def __init__(self, kvs: Iterable[KeyValue] = (), revision: int = 0) -> None:
        self.by_key: dict[str, KeyValue] = {kv.key: kv for kv in kvs}
        self._keys: list[str] = sorted(self.by_key)
        self.revision = revision

    def __len__(self) -> int:
        return len(self.by_key)

    def get(self, key: str) -> KeyValue | None:
        return self.by_key.get(key)

    def range(self, prefix: str) -> list[KeyValue]:
        keys = self._keys
        lo = bisect.bisect_left(keys, prefix)
        end = prefix_end(prefix)
        hi = len(keys) if end is None else bisect.bisect_left(keys, end, lo)
        by_key = self.by_key
        return [by_key[k] for k in keys[lo:hi]]

    def apply(self, event: WatchEvent) -> None:
        key = event.kv.key
        if event.type == "PUT":
            if key not in self.by_key:
                bisect.insort(self._keys, key)
            self.by_key[key] = event.kv
        elif self.by_key.pop(key, None) is not None:
            i = bisect.bisect_left(self._keys, key)
            del self._keys[i]
        self.revision = event.revision


class EventRing:
    """The most recent events, oldest first; a watch from `floor` or later is served from here alone."""

    def __init__(self, capacity: int, floor: int) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be at least 1")
        self.capacity = capacity
        self.floor = floor
        self._events: deque[WatchEvent] = deque()

    def __len__(self) -> int:
        return len(self._events)

    def append(self, event: WatchEvent) -> None:
        self._events.append(event)
        if len(self._events) > self.capacity:
            self.floor = self._events.popleft().revision + 1

    def drop_before(self, revision: int) -> None:
        events = self._events
        while events and events[0].revision < revision:
            events.popleft()
        self.floor = max(self.floor, revision)

    def since(self, start: int) -> list[WatchEvent]:
        events = self._events
        if not events:
            return []
        offset = max(0, start - events[0].revision)
        if offset >= len(events):
            return []
        return list(itertools.islice(events, offset, None))


# Reads older history: (prefix, first revision, last revision, max rows) -> (events, next revision).
HistoryReader = Callable[[str, int, int, int], Awaitable[tuple[list[WatchEvent], int]]]


class _Subscription:
    """One watcher's bounded buffer of live events."""

    __slots__ = ("error", "limit", "pending", "prefix", "skip_through", "waiter")

    def __init__(self, prefix: str, limit: int) -> None:
        self.prefix = prefix
        self.limit = limit
        self.skip_through = -1
        self.pending: list[WatchEvent] = []
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None

    def offer(self, events: list[WatchEvent]) -> bool:
        """Buffer the matching events; False when the buffer overflowed (the watch is over)."""
        prefix, skip = self.prefix, self.skip_through
        if prefix:
            matched = [e for e in events if e.revision > skip and e.kv.key.startswith(prefix)]
        else:
            matched = [e for e in events if e.revision > skip]
        if not matched:
            return True
        self.pending.extend(matched)
        if len(self.pending) > self.limit:
            self.fail(WatchOverflowError(self.pending[0].revision, self.limit))
            return False
        self._wake()
        return True

    def fail(self, error: Exception) -> None:
        self.pending = []
        self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_batch(self) -> list[WatchEvent]:
        while not self.pending and self.error is None:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.pending:
            batch, self.pending = self.pending, []
            return batch
        assert self.error is not None
        raise self.error


class WatchHub:
    """Fans committed events out to watchers and keeps the recent ones for watches that start back in time.

    `history` reads events older than the ring (the SQLite log); without it, events that fall out
    of the ring are gone, which is the same as compacting them.
    """

    def __init__(
        self,
        *,
        head: int,
        compacted: int,
        ring_capacity: int,
        queue_limit: int = DEFAULT_WATCH_QUEUE_LIMIT,
        history: HistoryReader | None = None,
    ) -> None:
        self.head = head
        self.compacted = compacted
        self.ring = EventRing(ring_capacity, floor=head + 1 if history is not None else compacted)
        self.queue_limit = queue_limit
        self.history = history
        self.closed = False
        self._subs: set[_Subscription] = set()

    @property
    def watcher_count(self) -> int:
        return len(self._subs)

    def publish(self, events: list[WatchEvent]) -> None:
        if not events:
            return
        ring = self.ring
        for event in events:
            ring.append(event)
        self.head = events[-1].revision
        if self.history is None and ring.floor > self.compacted:
            self.compacted = ring.floor
        # A copy: a stream dropped in a reference cycle may be collected (and unsubscribe) on any thread.
        dropped = [sub for sub in tuple(self._subs) if not sub.offer(events)]
        for sub in dropped:
            self._subs.discard(sub)

    def compact(self, revision: int) -> None:
        """Refuse watches from before `revision` from now on (before the backend deletes anything)."""
        if revision > self.compacted:
            self.compacted = revision
            self.ring.drop_before(revision)

    def close(self) -> None:
        self.closed = True
        for sub in tuple(self._subs):
            sub.fail(StoreUnavailableError("store closed"))
        self._subs.clear()

    def watch(self, prefix: str, start_revision: int) -> WatchStream:
        return WatchStream(self, prefix, start_revision)

    def _subscribe(self, prefix: str) -> _Subscription:
        if self.closed:
            raise StoreUnavailableError("store closed")
        sub = _Subscription(prefix, self.queue_limit)
        self._subs.add(sub)
        return sub

    def _unsubscribe(self, sub: _Subscription) -> None:
        self._subs.discard(sub)


class WatchStream:
    """One watch: replays from `start_revision` (ring, else history), then follows live events.

    The compacted check happens on the first `__anext__` (as with an async generator). Closing the
    stream (`aclose()`, or dropping it after `break`) unsubscribes it.
    """

    def __init__(self, hub: WatchHub, prefix: str, start_revision: int) -> None:
        self._hub = hub
        self._prefix = prefix
        self._start = start_revision
        self._sub: _Subscription | None = None
        self._backlog: list[WatchEvent] = []
        self._replay_next: int | None = None
        self._replay_end = 0
        self._closed = False

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> list[WatchEvent]:
        if self._closed:
            raise StopAsyncIteration
        try:
            if self._sub is None:
                self._open()
            while self._replay_next is not None:
                page = await self._read_history_page()
                if page:
                    return page
            if self._backlog:
                batch, self._backlog = self._backlog, []
                return batch
            assert self._sub is not None
            return await self._sub.next_batch()
        except Exception:  # a cancelled wait leaves the watch usable
            self._close()
            raise

    async def aclose(self) -> None:
        self._close()

    def __del__(self) -> None:
        self._close()

    def _open(self) -> None:
        hub, start = self._hub, self._start
        if start < hub.compacted:
            raise CompactedError(start, hub.compacted)
        # Subscribe and take the snapshot of the ring in the same step (no await in between), so no
        # event falls between the replay and the live stream.
        self._sub = hub._subscribe(self._prefix)
        if start >= hub.ring.floor or start > hub.head:
            prefix = self._prefix
            self._backlog = [e for e in hub.ring.since(start) if e.kv.key.startswith(prefix)]
            return
        if hub.history is None:
            raise CompactedError(start, hub.ring.floor)
        self._sub.skip_through = hub.head
        self._replay_next, self._replay_end = start, hub.head

    async def _read_history_page(self) -> list[WatchEvent]:
        hub = self._hub
        assert hub.history is not None and self._replay_next is not None
        first = self._replay_next
        events, next_revision = await hub.history(self._prefix, first, self._replay_end, HISTORY_PAGE)
        # Compaction raises hub.compacted before it deletes rows, so a page that raced with it is caught here.
        if first < hub.compacted:
            raise CompactedError(first, hub.compacted)
        self._replay_next = next_revision if next_revision <= self._replay_end else None
        return events

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sub is not None:
            self._hub._unsubscribe(self._sub)
            self._sub = None
        self._backlog = []
        self._replay_next = None
