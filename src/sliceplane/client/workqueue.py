"""A work queue of object keys with client-go's semantics.

Rules (the same as k8s.io/client-go/util/workqueue):
- a key is queued at most once however often it is added (dedup);
- a key is never handed to two workers at once: a key added while a worker holds it is
  marked dirty and queued again only when that worker calls `done(key)`;
- `add_after(key, delay)` parks the key until the delay has passed; parking a key that is
  already parked keeps the earlier deadline, so bursts of changes batch into one sync;
- `add_rate_limited(key)` parks the key for a per-key exponential backoff, `forget(key)`
  resets it once a sync succeeds.

`QueueCore` holds these rules with no asyncio and no clock (time arrives as an argument), so
they are tested as tables; `WorkQueue` is the asyncio shell that workers await.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import AsyncIterator, Hashable

# Per-key backoff of add_rate_limited: 5ms, 10ms, 20ms, ... doubling on every failure, capped
# at 1000s (reached after 18 failures). These are client-go's default controller delays.
BACKOFF_BASE = 0.005
BACKOFF_CAP = 1000.0


class ShutDown(Exception):
    """The queue was shut down and is drained; workers should return."""


def backoff_delay(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Delay before retry number `failures + 1`: base * 2**failures, at most cap."""
    if failures >= 64:  # 2**64 * base is far past any cap; avoid float overflow
        return cap
    return min(base * (2**failures), cap)


class QueueCore:
    """The queue's bookkeeping: FIFO order, dirty and processing sets, parked keys, failures."""

    def __init__(self, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> None:
        self.base = base
        self.cap = cap
        self.queue: deque[Hashable] = deque()
        self.dirty: set[Hashable] = set()
        self.processing: set[Hashable] = set()
        self.parked: dict[Hashable, float] = {}  # key -> time it becomes ready
        self._heap: list[tuple[float, int, Hashable]] = []  # may hold stale entries
        self._seq = 0
        self.failures: dict[Hashable, int] = {}
        self.shutting_down = False

    def add(self, key: Hashable) -> bool:
        """Queue `key`; True when it became available to a worker (so one should be woken)."""
        if self.shutting_down or key in self.dirty:
            return False
        self.dirty.add(key)
        if key in self.processing:
            return False
        self.queue.append(key)
        return True

    def add_after(self, key: Hashable, now: float, delay: float) -> bool:
        """Park `key` until now + delay (an earlier deadline already parked wins)."""
        if self.shutting_down:
            return False
        if delay <= 0:
            return self.add(key)
        at = now + delay
        current = self.parked.get(key)
        if current is not None and current <= at:
            return False
        self.parked[key] = at
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, key))
        return False

    def add_rate_limited(self, key: Hashable, now: float) -> float:
        """Park `key` for its backoff and count a failure; returns the delay used."""
        n = self.failures.get(key, 0)
        delay = backoff_delay(n, self.base, self.cap)
        self.failures[key] = n + 1
        self.add_after(key, now, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        self.failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self.failures.get(key, 0)

    def release_due(self, now: float) -> int:
        """Move parked keys whose time has come into the queue; returns how many became available."""
        woken = 0
        while self._heap and self._heap[0][0] <= now:
            at, _, key = heapq.heappop(self._heap)
            if self.parked.get(key) != at:
                continue  # superseded by an earlier deadline
            del self.parked[key]
            if self.add(key):
                woken += 1
        return woken

    def next_due(self) -> float | None:
        """When the earliest parked key becomes ready (None: nothing parked)."""
        while self._heap and self.parked.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop(self) -> Hashable | None:
        """Hand out the head key (None: nothing ready); it is processing until `done`."""
        if not self.queue:
            return None
        key = self.queue.popleft()
        self.processing.add(key)
        self.dirty.discard(key)
        return key

    def done(self, key: Hashable) -> bool:
        """A worker finished `key`; True when it was re-added meanwhile and is queued again."""
        self.processing.discard(key)
        if key in self.dirty:
            self.queue.append(key)
            return True
        return False

    def shutdown(self) -> None:
        """No more adds; parked keys are dropped, queued ones are still handed out."""
        self.shutting_down = True
        self.parked.clear()
        self._heap.clear()

    def __len__(self) -> int:
        return len(self.queue)


class WorkQueue:
    """The asyncio face of `QueueCore`: `await get()`, then `done(key)` when finished."""

    def __init__(self, name: str = "", *, base_delay: float = BACKOFF_BASE, max_delay: float = BACKOFF_CAP) -> None:
        self.name = name
        self._core = QueueCore(base_delay, max_delay)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.adds = 0  # total add() calls, for metrics

    # --- adding -------------------------------------------------------------------------------

    def add(self, key: Hashable) -> None:
        self.adds += 1
        if self._core.add(key):
            self._wake(1)

    def add_after(self, key: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        self._core.add_after(key, self._now(), delay)
        self._arm_timer()

    def add_rate_limited(self, key: Hashable) -> None:
        self._core.add_rate_limited(key, self._now())
        self._arm_timer()

    def forget(self, key: Hashable) -> None:
        self._core.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return self._core.num_requeues(key)

    # --- consuming ----------------------------------------------------------------------------

    async def get(self) -> Hashable:
        """The next key; raises `ShutDown` once the queue is shut down and drained."""
        while True:
            key = self._core.pop()
            if key is not None:
                return key
            if self._core.shutting_down:
                raise ShutDown(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake(1)  # pass the wake-up we consumed on to another worker
                raise
            finally:
                if not fut.done():
                    fut.cancel()

    def done(self, key: Hashable) -> None:
        if self._core.done(key):
            self._wake(1)

    async def __aiter__(self) -> AsyncIterator[Hashable]:
        """Keys until shutdown; the caller must still call `done(key)` for each."""
        while True:
            try:
                yield await self.get()
            except ShutDown:
                return

    def shutdown(self) -> None:
        self._core.shutdown()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake(len(self._waiters))

    @property
    def shutting_down(self) -> bool:
        return self._core.shutting_down

    def len(self) -> int:
        return len(self._core)

    def __len__(self) -> int:
        return len(self._core)

    @property
    def parked(self) -> int:
        return len(self._core.parked)

    # --- internals ----------------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _wake(self, n: int) -> None:
        while n > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                n -= 1

    def _arm_timer(self) -> None:
        due = self._core.next_due()
        if due is None or (self._timer is not None and self._timer_at is not None and self._timer_at <= due):
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = due
        self._timer = loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        woken = self._core.release_due(self._now())
        if woken:
            self._wake(woken)
        self._arm_timer()
