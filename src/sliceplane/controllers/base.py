"""The plumbing every controller shell shares: informers from a factory, workers over a queue,
retries, idleness and shutdown. Each controller keeps its own sync, retry limit and metrics."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sliceplane.client.informer import Informer, SharedInformerFactory

ResultHandler = Callable[[str, Exception | None], None]


class Busy:
    """How many syncs are running, so a shell can tell when it is idle."""

    def __init__(self) -> None:
        self.count = 0


async def synced_or_stopped(waits: list[Any], stopped: asyncio.Event) -> bool:
    """Wait for the caches to sync; False when `stopped` is set first."""
    synced = asyncio.ensure_future(asyncio.gather(*waits))
    halt = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({synced, halt}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f in (synced, halt):
            if not f.done():
                f.cancel()
            with contextlib.suppress(BaseException):
                await f  # retrieve the outcome, so asyncio never reports it as lost
    if stopped.is_set():
        return False  # (a cancelled gather holds CancelledError as its exception: not an error)
    if not synced.cancelled() and synced.exception() is not None:
        raise synced.exception()  # type: ignore[misc]
    return True


async def wait_idle(queues: list[Any], busy: Busy, synced: Callable[[], bool] | None = None, *,
                    poll: float = 0.01, settle: float = 0.0, include_parked: bool = False) -> None:
    """Until the caches have synced, the queues are empty and no sync runs.

    With `settle`, idleness must hold over two looks `settle` apart (a sync may enqueue more);
    `include_parked` also waits for keys parked by add_after/add_rate_limited.
    """
    def idle() -> bool:
        return ((synced is None or synced()) and busy.count == 0
                and all(len(q) == 0 and (not include_parked or q.parked == 0) for q in queues))

    while True:
        if idle():
            if settle <= 0:
                return
            await asyncio.sleep(settle)
            if idle():
                return
        await asyncio.sleep(settle or poll)


# How often the endpoint controllers (EndpointSlice, Endpoints, mirroring) retry a key before
# dropping it until its next event, as Kubernetes' maxRetries. With the queue's backoff (5 ms
# doubling) the delays are 5 ms, 10 ms, ... 82 s: about 2.7 minutes in all.
MAX_RETRIES = 15


def requeue_or_forget(queue: Any, key: str, err: Exception | None, log: logging.Logger, *,
                      max_retries: int | None = None, quiet: bool = False, what: str = "sync",
                      queue_name: str = "") -> None:
    """The usual result handling: forget on success, else retry with the queue's backoff.

    With `max_retries`, a key that failed that often is dropped until its next event. `quiet`
    logs the retry at debug level (an expected failure such as a stale cache).
    """
    if err is None:
        queue.forget(key)
        return
    if max_retries is None or queue.num_requeues(key) < max_retries:
        log.log(logging.DEBUG if quiet or max_retries is None else logging.INFO,
                "%s %s failed, retrying: %s", what, key, err)
        queue.add_rate_limited(key)
        return
    log.warning("dropping %s from the %s queue after %d retries: %s", key, queue_name, max_retries, err)
    queue.forget(key)


async def run_workers(queue: Any, sync: Callable[[str], Awaitable[Any]], workers: int, log: logging.Logger,
                      busy: Busy | None = None, *, on_result: ResultHandler | None = None) -> None:
    """`workers` tasks taking keys from `queue` until it shuts down.

    `on_result(key, error)` decides what a sync's outcome means (retry, drop, count); by default
    a failed key is retried with the queue's backoff, without limit.
    """
    from sliceplane.client.workqueue import ShutDown

    busy = busy if busy is not None else Busy()

    def handle(key: str, err: Exception | None) -> None:
        requeue_or_forget(queue, key, err, log)

    handle_result = on_result or handle

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            busy.count += 1
            try:
                err: Exception | None = None
                try:
                    await sync(str(key))
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    err = e
                handle_result(str(key), err)
            finally:
                busy.count -= 1
                queue.done(key)

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))


async def cancel_tasks(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel and await `tasks` (never the caller's own task); their errors are already logged."""
    current = asyncio.current_task()
    tasks = [t for t in tasks if t is not current]
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t


class QueueController:
    """A controller shell's lifecycle: informers from a (possibly shared) factory, tasks, stop.

    Given a factory, the controller only registers handlers on its informers; the factory's
    owner starts and stops them. Without one, the controller makes its own and stops it itself.
    """

    def __init__(self, client: Any, informers: SharedInformerFactory | None) -> None:
        self.client = client
        self.informer_factory = informers if informers is not None else SharedInformerFactory(client)
        self._owns_factory = informers is None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = asyncio.Event()
        self._busy = Busy()

    def _informer(self, info: Any, **kwargs: Any) -> Informer:
        return self.informer_factory.informer(info, **kwargs)

    async def _start_informers(self, informers: Iterable[Informer]) -> bool:
        """Start the informers (if ours to start) and wait for their first list; False if stopped."""
        self.informer_factory.start()
        return await synced_or_stopped([i.wait_synced() for i in informers], self._stopped)

    async def _run_queue(self, informers: Iterable[Informer], queue: Any, sync: Callable[[str], Awaitable[Any]],
                         workers: int, log: logging.Logger) -> None:
        """A whole run(): informers, then workers over `queue` until it shuts down."""
        if self._stopped.is_set():
            return
        try:
            if not await self._start_informers(informers):
                return
            await run_workers(queue, sync, workers, log, self._busy)
        finally:
            await self._cancel_tasks()

    async def _wait_synced_idle(self, informers: Iterable[Informer], *queues: Any) -> None:
        """Until the informers have synced, the queues are empty and no sync runs (tests, benchmarks)."""
        informers = list(informers)
        await wait_idle(list(queues), self._busy, lambda: all(i.has_synced for i in informers))

    async def _work_until_stopped(self, queue: Any, sync: Callable[[str], Awaitable[Any]], workers: int,
                                  log: logging.Logger, on_result: ResultHandler) -> None:
        """Workers as a task of ours, so that stop() cancels a sync in flight rather than awaiting it."""
        self._tasks.append(asyncio.create_task(run_workers(queue, sync, workers, log, self._busy, on_result=on_result),
                                               name=f"{type(self).__name__}-workers"))
        await self._stopped.wait()

    async def _cancel_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_tasks(tasks)
        if self._owns_factory:
            await self.informer_factory.stop()

    async def _shutdown(self, *queues: Any) -> None:
        """What every stop() does first: mark stopped, release workers, end tasks."""
        self._stopped.set()
        for q in queues:
            q.shutdown()
        await self._cancel_tasks()


class PeriodicController(QueueController, abc.ABC):
    """A controller that looks at its informers' whole state every `period` seconds, as the node
    lifecycle, taint eviction and pod GC controllers do, instead of working a queue of keys."""

    period: float = 5.0
    recorder: Any = None  # an EventRecorder, closed at the end of run()

    @abc.abstractmethod
    def _watched(self) -> list[Informer]:
        """The informers a pass reads (run() waits for their first list)."""

    @abc.abstractmethod
    async def pass_once(self) -> None:
        """One look at everything (tests call it directly)."""

    async def run(self) -> None:
        if self._stopped.is_set():
            return
        try:
            if not await self._start_informers(self._watched()):
                return
            while not self._stopped.is_set():
                await self.pass_once()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), self.period)
        finally:
            await self._cancel_tasks()
            if self.recorder is not None:
                await self.recorder.close()

    async def stop(self) -> None:
        self._stopped.set()
