"""The embedded store: an append-only SQLite log, one row per revision (in the spirit of k3s' kine).

Threads and who owns what:
- the writer thread owns the write connection and its own key -> KeyValue map (the state the
  compare-and-swap checks run against). Writers on the event loop queue their operations; the
  thread takes everything queued, checks and applies it, writes the rows in one transaction and
  one fsync (group commit), then hands the whole batch back to the loop in one callback;
- the event loop owns the read index, the event ring and the watchers, and updates them from that
  callback before it resolves the writers' futures, so reads never touch the disk and a write is
  visible (and acknowledged) only once durable;
- a reader thread with its own connection serves watches that start before the ring.

Row layout (table `log`): id = revision, name = key, created (first row of this life of the key),
deleted (a tombstone), create_revision, prev_revision (mod_revision of the version this row
replaces, 0 for a create), value (NULL for a tombstone: the deleted value is the prev row's).
Compaction to C deletes, below C, superseded rows and tombstones; the newest row below C of each
live key stays, because events at C and later may need it as their prev_kv.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

from sliceplane.store._core import (
    DEFAULT_WATCH_QUEUE_LIMIT,
    LiveIndex,
    WatchHub,
    WriteOp,
    apply_event,
    plan_write,
    prefix_end,
)
from sliceplane.store.base import (
    KeyValue,
    Store,
    StoreError,
    StoreUnavailableError,
    WatchEvent,
)

log = logging.getLogger(__name__)

# Largest group commit. Bigger batches amortize the fsync further but delay the first writer of
# the batch; past a few thousand rows the fsync is no longer what dominates.
MAX_BATCH = 4096  # a power of two; 7 parameters a row stays under SQLite's 32766 variables

# Compaction deletes at most this many revisions' worth of rows per transaction, so writes queued
# behind it wait for one short transaction, not for the whole compaction.
COMPACT_CHUNK = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_COLUMNS = "id, name, created, deleted, create_revision, prev_revision, value"


def insert_statement(rows: int) -> str:
    """One INSERT for up to `rows` rows; unused slots are bound to NULL and skipped.

    A whole batch goes to SQLite in one call: the sqlite3 module gives up the GIL around every
    statement step, and getting it back from a busy event loop thread can take a full switch
    interval (5 ms), so one step per commit instead of one per row keeps commits short under load.
    Sizes are powers of two, so the statement cache holds a handful of prepared statements.
    """
    values = ",".join(["(?,?,?,?,?,?,?)"] * rows)
    return (
        f"INSERT INTO log ({_COLUMNS}) SELECT column1, column2, column3, column4, column5, column6,"
        f" column7 FROM (VALUES {values}) WHERE column1 IS NOT NULL"
    )


def insert_slots(rows: int) -> int:
    return 1 << max(0, rows - 1).bit_length()


_PADDING = (None,) * 7

# Only the primary key is indexed: rows are appended in id order, so a commit writes a few pages
# at the end of one b-tree instead of one page per row in a name index (random keys made commits
# several times slower). Loading and compaction work from ids alone.
_LOAD = "SELECT id, name, deleted, create_revision, value FROM log ORDER BY id"

# A row is superseded exactly when a later row names it as prev_revision (a key's rows form chains
# create -> update* -> delete), so compacting [lo, hi) deletes the prev rows of the rows in the
# range, and its tombstones. Rows below lo were settled by the previous compaction.
_COMPACT_SUPERSEDED = """
DELETE FROM log WHERE id IN (
    SELECT prev_revision FROM log WHERE id >= :lo AND id < :hi AND prev_revision > 0
)
"""
_COMPACT_TOMBSTONES = "DELETE FROM log WHERE id >= :lo AND id < :hi AND deleted = 1"

_HISTORY = """
SELECT l.id, l.name, l.created, l.deleted, l.create_revision, l.prev_revision, l.value,
       p.value, p.create_revision
FROM log l LEFT JOIN log p ON p.id = l.prev_revision
WHERE l.id >= ? AND l.id <= ? {name_filter}
ORDER BY l.id
"""


@dataclass(frozen=True, slots=True)
class _Compaction:
    lo: int
    hi: int
    future: asyncio.Future[Any]


_STOP = object()


def event_to_row(event: WatchEvent) -> tuple[Any, ...]:
    kv, prev = event.kv, event.prev_kv
    prev_revision = prev.mod_revision if prev is not None else 0
    if event.type == "DELETE":
        return (event.revision, kv.key, 0, 1, kv.create_revision, prev_revision, None)
    return (event.revision, kv.key, int(prev is None), 0, kv.create_revision, prev_revision, kv.value)


def row_to_event(row: tuple[Any, ...]) -> WatchEvent:
    """A log row joined with its prev row (prev value, prev create_revision) as a watch event."""
    rev, name, created, deleted, create_rev, prev_rev, value, prev_value, prev_create = row
    prev = None
    if not created and prev_create is not None:
        prev = KeyValue(name, bytes(prev_value or b""), prev_create, prev_rev)
    if deleted:
        last = prev.value if prev is not None else b""
        return WatchEvent("DELETE", KeyValue(name, last, create_rev, rev), prev, rev)
    return WatchEvent("PUT", KeyValue(name, bytes(value or b""), create_rev, rev), prev, rev)


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    return conn


class SQLiteStore(Store):
    """See the module docstring. `compact_interval=None` turns the periodic compaction off."""

    def __init__(
        self,
        path: str,
        *,
        compact_interval: float | None = 300,
        compact_retain: int = 10000,
        ring_capacity: int = 8192,
        watch_queue_limit: int = DEFAULT_WATCH_QUEUE_LIMIT,
        busy_timeout: float = 10.0,
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.compact_interval = compact_interval
        self.compact_retain = max(1, compact_retain)
        self._ring_capacity = ring_capacity
        self._watch_queue_limit = watch_queue_limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._reader_conn: sqlite3.Connection | None = None
        self._lock_file: IO[str] | None = None
        self._index = LiveIndex()
        self._hub = WatchHub(head=0, compacted=0, ring_capacity=ring_capacity, history=self._read_history)
        self._durable_compacted = 0
        self._compact_lock = asyncio.Lock()
        self._compactor: asyncio.Task[None] | None = None
        self._open = False
        self._writer_error: BaseException | None = None
        # Group commit counters, for benchmarks and metrics.
        self.commits = 0
        self.committed_writes = 0

    # ---- lifecycle ----

    async def start(self) -> None:
        if self._open:
            return
        self._loop = asyncio.get_running_loop()
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        self._lock_file = open(self.path + ".lock", "a")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            self._lock_file.close()
            self._lock_file = None
            raise StoreUnavailableError(f"{self.path} is in use by another process") from e
        ready: asyncio.Future[tuple[list[KeyValue], int, int]] = self._loop.create_future()
        self._queue = queue.SimpleQueue()
        self._writer = threading.Thread(
            target=self._writer_main, args=(ready,), name="sliceplane-sqlite-writer", daemon=True
        )
        self._writer.start()
        try:
            kvs, head, compacted = await ready
        except BaseException:
            self._writer.join()
            self._release_lock()
            raise
        self._index = LiveIndex(kvs, head)
        self._hub = WatchHub(
            head=head,
            compacted=compacted,
            ring_capacity=self._ring_capacity,
            queue_limit=self._watch_queue_limit,
            history=self._read_history,
        )
        self._durable_compacted = compacted
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="sliceplane-sqlite-reader")
        self._open = True
        if self.compact_interval:
            self._compactor = asyncio.create_task(self._compact_periodically(self.compact_interval))

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        if self._compactor is not None:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
            self._compactor = None
        self._queue.put(_STOP)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        self._hub.close()
        if self._reader is not None:
            await asyncio.get_running_loop().run_in_executor(self._reader, self._close_reader)
            self._reader.shutdown(wait=True)
            self._reader = None
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # ---- reads: from memory ----

    async def get(self, key: str) -> KeyValue | None:
        return self._index.get(key)

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        return self._index.range(prefix), self._index.revision

    async def current_revision(self) -> int:
        return self._index.revision

    @property
    def compacted_revision(self) -> int:
        return self._hub.compacted

    @property
    def watcher_count(self) -> int:
        """Open watches (for metrics and tests)."""
        return self._hub.watcher_count

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[WatchEvent]]:
        return self._hub.watch(prefix, start_revision)

    # ---- writes: queued to the writer thread ----

    async def create(self, key: str, value: bytes) -> KeyValue:
        event: WatchEvent = await self._submit(WriteOp("create", key, bytes(value)))
        return event.kv

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        event: WatchEvent = await self._submit(WriteOp("update", key, bytes(value), expected_mod_revision))
        return event.kv

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> WatchEvent:
        return await self._submit(WriteOp("delete", key, b"", expected_mod_revision))

    def _submit(self, op: WriteOp) -> asyncio.Future[Any]:
        if not self._open:
            raise StoreUnavailableError("store is not open")
        if self._writer_error is not None:
            raise StoreUnavailableError(f"store writer failed: {self._writer_error}")
        assert self._loop is not None
        future = self._loop.create_future()
        self._queue.put((op, future))
        return future

    async def compact(self, revision: int) -> None:
        async with self._compact_lock:
            if revision <= self._hub.compacted:
                return
            if revision > self._index.revision:
                raise StoreError(
                    f"cannot compact to future revision {revision} (current {self._index.revision})"
                )
            if not self._open:
                raise StoreUnavailableError("store is not open")
            # Watches from before `revision` are refused from here on, before any row goes away.
            self._hub.compact(revision)
            assert self._loop is not None
            lo = self._durable_compacted
            while lo < revision:
                hi = min(lo + COMPACT_CHUNK, revision)
                future = self._loop.create_future()
                self._queue.put(_Compaction(lo, hi, future))
                await future
                lo = self._durable_compacted = hi

    async def _compact_periodically(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            target = self._index.revision - self.compact_retain + 1
            if target <= self._hub.compacted:
                continue
            try:
                await self.compact(target)
            except StoreError as e:
                log.warning("periodic compaction to revision %d failed: %s", target, e)

    # ---- the loop side of a commit ----

    def _on_committed(self, results: list[tuple[asyncio.Future[Any], Any]]) -> None:
        events = [r for _, r in results if isinstance(r, WatchEvent)]
        index = self._index
        for event in events:
            index.apply(event)
        self._hub.publish(events)
        for future, result in results:
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _call_loop(self, fn: Any, *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
            self._loop.call_soon_threadsafe(fn, *args)

    # ---- the writer thread ----

    def _writer_main(self, ready: asyncio.Future[Any]) -> None:
        try:
            conn = _connect(self.path, self.busy_timeout)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA cache_size = -32768")
            conn.execute("PRAGMA journal_size_limit = 67108864")
            conn.executescript(_SCHEMA)
            conn.execute("DROP INDEX IF EXISTS log_name_id")
            state: dict[str, KeyValue] = {}
            head = 0
            for rev, name, deleted, create_rev, value in conn.execute(_LOAD):
                if deleted:
                    state.pop(name, None)
                else:
                    state[name] = KeyValue(name, bytes(value or b""), create_rev, rev)
                head = rev
            row = conn.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()
            compacted = row[0] if row else 0
            head = max(head, compacted)
        except Exception as e:
            self._call_loop(_fail, ready, StoreUnavailableError(f"cannot open sqlite store {self.path}: {e}"))
            return
        self._call_loop(_resolve, ready, (list(state.values()), head, compacted))
        try:
            self._writer_loop(conn, state, head)
        except BaseException as e:  # pragma: no cover - a bug; fail loudly rather than hang writers
            log.exception("sqlite store writer thread died")
            self._writer_error = e
        finally:
            conn.close()
            self._fail_queued()

    def _fail_queued(self) -> None:
        """Fail whatever is still queued once the writer is gone, so no caller waits forever."""
        error = StoreUnavailableError("store closed")
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Compaction):
                self._call_loop(_fail, item.future, error)
            elif item is not _STOP:
                self._call_loop(_fail, item[1], error)

    def _writer_loop(self, conn: sqlite3.Connection, state: dict[str, KeyValue], revision: int) -> None:
        q = self._queue
        carry: Any = None
        while True:
            item = carry if carry is not None else q.get()
            carry = None
            if item is _STOP:
                return
            if isinstance(item, _Compaction):
                self._run_compaction(conn, item)
                continue
            batch = [item]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP or isinstance(nxt, _Compaction):
                    carry = nxt
                    break
                batch.append(nxt)
            revision = self._commit_batch(conn, state, revision, batch)

    def _commit_batch(
        self,
        conn: sqlite3.Connection,
        state: dict[str, KeyValue],
        revision: int,
        batch: list[tuple[WriteOp, asyncio.Future[Any]]],
    ) -> int:
        results: list[tuple[asyncio.Future[Any], Any]] = []
        rows: list[tuple[Any, ...]] = []
        undo: list[tuple[str, KeyValue | None]] = []
        first_revision = revision
        try:
            for op, future in batch:
                current = state.get(op.key)
                try:
                    event = plan_write(op, current, revision + 1)
                except StoreError as e:
                    results.append((future, e))
                    continue
                revision += 1
                undo.append((op.key, current))
                apply_event(state, event)
                rows.append(event_to_row(event))
                results.append((future, event))
            if rows:
                # Autocommit: the statement is its own transaction, committed (fsync) within the step.
                slots = insert_slots(len(rows))
                params = [p for row in rows for p in row]
                params.extend(_PADDING * (slots - len(rows)))
                conn.execute(insert_statement(slots), params)
                self.commits += 1
                self.committed_writes += len(rows)
        except Exception as e:  # disk errors, and anything unexpected: the batch fails as a whole
            log.error("sqlite store write failed: %s", e)
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            for key, previous in reversed(undo):
                if previous is None:
                    state.pop(key, None)
                else:
                    state[key] = previous
            revision = first_revision
            error = StoreUnavailableError(f"sqlite write failed: {e}")
            results = [(future, error) for _, future in batch]
        self._call_loop(self._on_committed, results)
        return revision

    def _run_compaction(self, conn: sqlite3.Connection, job: _Compaction) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_COMPACT_SUPERSEDED, {"lo": job.lo, "hi": job.hi})
            conn.execute(_COMPACT_TOMBSTONES, {"lo": job.lo, "hi": job.hi})
            conn.execute(
                "INSERT INTO meta (name, value) VALUES ('compacted', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (job.hi,),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._call_loop(_fail, job.future, StoreUnavailableError(f"sqlite compaction failed: {e}"))
            return
        self._call_loop(_resolve, job.future, None)

    # ---- the reader thread: history older than the ring ----

    async def _read_history(
        self, prefix: str, first: int, last: int, limit: int
    ) -> tuple[list[WatchEvent], int]:
        if self._reader is None:
            raise StoreUnavailableError("store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self._read_history_sync, prefix, first, last, limit)

    def _read_history_sync(
        self, prefix: str, first: int, last: int, limit: int
    ) -> tuple[list[WatchEvent], int]:
        if self._reader_conn is None:
            self._reader_conn = _connect(self.path, self.busy_timeout)
            self._reader_conn.execute("PRAGMA query_only = 1")
        end = min(last, first + limit - 1)
        params: list[Any] = [first, end]
        name_filter = ""
        if prefix:
            name_filter = "AND l.name >= ?"
            params.append(prefix)
            upper = prefix_end(prefix)
            if upper is not None:
                name_filter += " AND l.name < ?"
                params.append(upper)
        try:
            rows = self._reader_conn.execute(_HISTORY.format(name_filter=name_filter), params).fetchall()
        except sqlite3.Error as e:
            raise StoreUnavailableError(f"sqlite history read failed: {e}") from e
        return [row_to_event(r) for r in rows], end + 1

    def _close_reader(self) -> None:
        if self._reader_conn is not None:
            self._reader_conn.close()
            self._reader_conn = None


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
