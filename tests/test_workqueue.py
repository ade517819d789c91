"""The work queue: client-go's dedup / processing / dirty rules, parking and backoff."""

from __future__ import annotations

import asyncio

import pytest

from sliceplane.client.workqueue import BACKOFF_CAP, QueueCore, ShutDown, WorkQueue, backoff_delay


def run_ops(ops: list[tuple]) -> list:
    """Apply ("add", k) / ("pop",) / ("done", k) / ("after", k, now, d) / ("release", now) /
    ("limited", k, now) / ("forget", k) / ("shutdown",) and collect what pops and releases return."""
    q = QueueCore()
    out: list = []
    for op in ops:
        match op:
            case ("add", k):
                q.add(k)
            case ("pop",):
                out.append(q.pop())
            case ("done", k):
                q.done(k)
            case ("after", k, now, d):
                q.add_after(k, now, d)
            case ("release", now):
                q.release_due(now)
            case ("limited", k, now):
                out.append(q.add_rate_limited(k, now))
            case ("forget", k):
                q.forget(k)
            case ("shutdown",):
                q.shutdown()
            case _:
                raise AssertionError(op)
    return out


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([("add", "a"), ("add", "b"), ("pop",), ("pop",), ("pop",)], ["a", "b", None]),
        ([("add", "a"), ("add", "b"), ("add", "a"), ("pop",), ("pop",), ("pop",)], ["a", "b", None]),
        # a key being processed is not handed out again until done...
        ([("add", "a"), ("pop",), ("add", "a"), ("pop",)], ["a", None]),
        # ...and is queued again (once) after done
        ([("add", "a"), ("pop",), ("add", "a"), ("add", "a"), ("done", "a"), ("pop",), ("pop",)],
         ["a", "a", None]),
        # done without a re-add does not requeue
        ([("add", "a"), ("pop",), ("done", "a"), ("pop",)], ["a", None]),
        # re-added while processing goes behind keys added meanwhile
        ([("add", "a"), ("pop",), ("add", "a"), ("add", "b"), ("done", "a"), ("pop",), ("pop",)], ["a", "b", "a"]),
        # parked keys appear only when due, in deadline order
        ([("after", "a", 0.0, 2.0), ("after", "b", 0.0, 1.0), ("release", 0.5), ("pop",),
          ("release", 1.0), ("pop",), ("release", 5.0), ("pop",)], [None, "b", "a"]),
        # parking again with an earlier deadline wins; a later one is ignored
        ([("after", "a", 0.0, 5.0), ("after", "a", 0.0, 1.0), ("release", 1.0), ("pop",)], ["a"]),
        ([("after", "a", 0.0, 1.0), ("after", "a", 0.0, 5.0), ("release", 1.0), ("pop",)], ["a"]),
        # a parked key that is already queued stays queued once
        ([("add", "a"), ("after", "a", 0.0, 1.0), ("release", 2.0), ("pop",), ("pop",)], ["a", None]),
        # zero delay is a plain add
        ([("after", "a", 0.0, 0.0), ("pop",)], ["a"]),
        # backoff doubles per failure, forget resets it
        ([("limited", "a", 0.0), ("limited", "a", 0.0), ("limited", "a", 0.0), ("forget", "a"),
          ("limited", "a", 0.0)], [0.005, 0.01, 0.02, 0.005]),
        # backoff is per key
        ([("limited", "a", 0.0), ("limited", "a", 0.0), ("limited", "b", 0.0)], [0.005, 0.01, 0.005]),
        # after shutdown, adds are ignored but queued keys still drain
        ([("add", "a"), ("shutdown",), ("add", "b"), ("pop",), ("pop",)], ["a", None]),
        ([("after", "a", 0.0, 1.0), ("shutdown",), ("release", 2.0), ("pop",)], [None]),
    ],
    ids=[
        "fifo", "dedup", "not-twice-while-processing", "dirty-requeued-once-after-done", "done-no-requeue",
        "requeue-goes-to-back", "parked-in-deadline-order", "earlier-deadline-wins", "later-deadline-ignored",
        "parked-and-queued-dedup", "zero-delay", "backoff-and-forget", "backoff-per-key", "shutdown-drains",
        "shutdown-drops-parked",
    ],
)
def test_queue_core(ops: list[tuple], expected: list) -> None:
    assert run_ops(ops) == expected


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0.005), (1, 0.01), (2, 0.02), (10, 5.12), (17, 655.36), (18, BACKOFF_CAP), (200, BACKOFF_CAP)],
    ids=["first", "second", "third", "tenth", "last-below-cap", "capped", "huge"],
)
def test_backoff_delay(failures: int, delay: float) -> None:
    assert backoff_delay(failures) == pytest.approx(delay)


async def test_worker_gets_key_added_later() -> None:
    q = WorkQueue("t")
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("ns/a")
    assert await asyncio.wait_for(getter, 5) == "ns/a"


async def test_key_never_held_by_two_workers() -> None:
    q = WorkQueue("t")
    held: set[str] = set()
    overlaps: list[str] = []
    synced: list[str] = []

    async def worker() -> None:
        async for key in q:
            if key in held:
                overlaps.append(key)
            held.add(key)
            await asyncio.sleep(0.001)
            synced.append(key)
            held.discard(key)
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for k in ("a", "b", "c"):
        q.add(k)
    await asyncio.sleep(0)  # workers take a, b, c
    assert held == {"a", "b", "c"}
    for _ in range(19):
        for k in ("a", "b", "c"):
            q.add(k)  # dirty while processing: each is synced exactly once more
    while len(q) or q._core.processing:
        await asyncio.sleep(0.005)
    q.shutdown()
    await asyncio.wait_for(asyncio.gather(*workers), 5)
    assert overlaps == []
    assert sorted(synced) == ["a", "a", "b", "b", "c", "c"]


async def test_add_after_and_rate_limited_deliver() -> None:
    q = WorkQueue("t")
    q.add_after("later", 0.02)
    q.add_rate_limited("retry")
    assert len(q) == 0 and q.parked == 2
    got = {await asyncio.wait_for(q.get(), 5), await asyncio.wait_for(q.get(), 5)}
    assert got == {"later", "retry"}
    assert q.num_requeues("retry") == 1
    q.forget("retry")
    assert q.num_requeues("retry") == 0


async def test_shutdown_wakes_waiting_workers() -> None:
    q = WorkQueue("t")
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shutdown()
    results = await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), 5)
    assert all(isinstance(r, ShutDown) for r in results)


async def test_cancelled_waiter_passes_wakeup_on() -> None:
    q = WorkQueue("t")
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("k")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, 5) == "k"
