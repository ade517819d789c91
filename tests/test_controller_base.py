"""controllers/base.py: the result policy shared by the controller shells, and the worker loop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sliceplane.client.workqueue import WorkQueue
from sliceplane.controllers.base import Busy, requeue_or_forget, run_workers, wait_idle

log = logging.getLogger(__name__)


@pytest.mark.parametrize(("max_retries", "failures_before", "err", "parked", "requeues_after"), [
    (None, 0, None, 0, 0),
    (None, 3, None, 0, 0),
    (None, 0, RuntimeError("x"), 1, 1),
    (None, 40, RuntimeError("x"), 1, 41),
    (15, 0, RuntimeError("x"), 1, 1),
    (15, 14, RuntimeError("x"), 1, 15),
    (15, 15, RuntimeError("x"), 0, 0),
], ids=["success", "success-resets", "failure-retried", "no-limit", "first-of-15", "15th-retry", "dropped-after-15"])
async def test_requeue_or_forget(max_retries: int | None, failures_before: int, err: Exception | None,
                                 parked: int, requeues_after: int) -> None:
    q = WorkQueue("t")
    for _ in range(failures_before):
        q.add_rate_limited("k")
    # Take the key out of the parked set: the worker holds it while deciding.
    q._core.parked.clear()
    q._core._heap.clear()
    requeue_or_forget(q, "k", err, log, max_retries=max_retries, what="test", queue_name="t")
    assert q.parked == parked
    assert q.num_requeues("k") == requeues_after
    q.shutdown()


async def test_run_workers_hands_results_to_the_controller_and_ends_at_shutdown() -> None:
    q = WorkQueue("t")
    results: list[tuple[str, str | None]] = []
    busy = Busy()

    async def sync(key: str) -> None:
        if key == "bad":
            raise ValueError("no")

    def on_result(key: str, err: Exception | None) -> None:
        results.append((key, None if err is None else str(err)))

    for k in ("a", "bad", "b"):
        q.add(k)
    task = asyncio.create_task(run_workers(q, sync, 2, log, busy, on_result=on_result))
    await asyncio.wait_for(wait_idle([q], busy), 5)
    q.shutdown()
    await asyncio.wait_for(task, 5)
    assert sorted(results, key=lambda r: r[0]) == [("a", None), ("b", None), ("bad", "no")]
    assert busy.count == 0
