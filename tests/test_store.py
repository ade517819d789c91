"""Conformance suite for the store backends: every test runs on memory, sqlite and (when installed) etcd.

etcd runs as one 1-member cluster per module; each test starts by deleting every key, so it sees
an empty keyspace but not revision 0. Tests therefore write revisions as `b + n`, where `b` is the
store's revision when the test starts (0 on memory and sqlite).
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from etcd_cluster import EtcdCluster, etcd_binary, requires_etcd
from sliceplane.store import (
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatchError,
    Store,
    StoreUnavailableError,
    WatchEvent,
    WatchOverflowError,
    open_store,
)
from sliceplane.store._core import LiveIndex, WriteOp, plan_write
from sliceplane.store.memory import MemoryStore
from sliceplane.store.sqlite import SQLiteStore

StoreFactory = Callable[..., Awaitable[Store]]

# Memory knobs mapped to their sqlite counterparts, so one test can ask for "a small history".
_MEMORY_ONLY = {"history_capacity"}
_SQLITE_ONLY = {"ring_capacity", "compact_interval", "compact_retain"}
_ETCD_KNOBS = {"compact_interval", "compact_retain"}


@pytest.fixture(scope="module")
def etcd_cluster() -> Any:
    if etcd_binary() is None:
        pytest.skip("etcd is not installed")
    with EtcdCluster(1) as cluster:
        yield cluster


async def wipe_etcd(cluster: EtcdCluster) -> None:
    """Delete every key (one revision), so a test starts on an empty keyspace."""
    import aetcd

    host, port = cluster.endpoints[0].rsplit(":", 1)
    async with aetcd.Client(host, int(port), timeout=10) as client:
        await client.delete_range(b"\0", b"\0")


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("etcd", marks=requires_etcd)], ids=["memory", "sqlite", "etcd"]
)
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    opened: list[Store] = []
    cluster: EtcdCluster | None = None
    if request.param == "etcd":
        cluster = request.getfixturevalue("etcd_cluster")
        await wipe_etcd(cluster)

    async def factory(**kwargs: Any) -> Store:
        if request.param == "memory":
            store: Store = MemoryStore(**{k: v for k, v in kwargs.items() if k not in _SQLITE_ONLY})
        elif cluster is not None:
            from sliceplane.store.etcd import EtcdStore

            kwargs.setdefault("compact_interval", None)
            store = EtcdStore(cluster.endpoints, **{k: v for k, v in kwargs.items() if k in _ETCD_KNOBS})
        else:
            kwargs.setdefault("compact_interval", None)
            store = SQLiteStore(
                str(tmp_path / "state.db"), **{k: v for k, v in kwargs.items() if k not in _MEMORY_ONLY}
            )
        await store.start()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> Store:
    return await make_store()


async def collect(watch: AsyncIterator[list[WatchEvent]], until_revision: int) -> list[WatchEvent]:
    """Events from `watch` up to and including `until_revision`."""
    events: list[WatchEvent] = []
    while not events or events[-1].revision < until_revision:
        events.extend(await asyncio.wait_for(anext(watch), 10))
    return events


def summary(events: list[WatchEvent]) -> list[tuple[str, str, bytes, int]]:
    return [(e.type, e.kv.key, e.kv.value, e.revision) for e in events]


async def test_write_lifecycle_revisions(store: Store) -> None:
    b = await store.current_revision()
    a1 = await store.create("/r/a", b"a1")
    b1 = await store.create("/r/b", b"b1")
    a2 = await store.update("/r/a", b"a2", a1.mod_revision)
    deleted = await store.delete("/r/b", b1.mod_revision)

    assert a1 == KeyValue("/r/a", b"a1", b + 1, b + 1)
    assert b1 == KeyValue("/r/b", b"b1", b + 2, b + 2)
    assert a2 == KeyValue("/r/a", b"a2", b + 1, b + 3)
    assert deleted == WatchEvent("DELETE", KeyValue("/r/b", b"b1", b + 2, b + 4), b1, b + 4)
    assert await store.get("/r/a") == a2
    assert await store.get("/r/b") is None
    assert await store.current_revision() == b + 4

    b2 = await store.create("/r/b", b"b2")
    assert b2 == KeyValue("/r/b", b"b2", b + 5, b + 5)


@pytest.mark.parametrize(
    ("action", "error", "current"),
    [
        (lambda s, a: s.update("/c/a", b"x", a.mod_revision - 1), RevisionMismatchError, "a"),
        (lambda s, a: s.update("/c/gone", b"x", 1), RevisionMismatchError, None),
        (lambda s, a: s.delete("/c/a", a.mod_revision + 7), RevisionMismatchError, "a"),
        (lambda s, a: s.delete("/c/gone", 1), RevisionMismatchError, None),
        (lambda s, a: s.delete("/c/gone"), KeyNotFoundError, None),
        (lambda s, a: s.create("/c/a", b"again"), KeyExistsError, None),
    ],
    ids=[
        "update-stale",
        "update-missing",
        "delete-stale",
        "delete-missing-with-revision",
        "delete-missing",
        "create-existing",
    ],
)
async def test_compare_and_swap_conflicts(
    store: Store, action: Callable[[Store, KeyValue], Awaitable[Any]], error: type, current: str | None
) -> None:
    await store.create("/c/other", b"o")
    a = await store.create("/c/a", b"value-a")
    before = await store.current_revision()

    with pytest.raises(error) as info:
        await action(store, a)

    if error is RevisionMismatchError:
        assert info.value.current == (a if current == "a" else None)
    assert await store.current_revision() == before
    assert await store.get("/c/a") == a


async def test_concurrent_updates_of_one_key_exactly_one_wins(store: Store) -> None:
    kv = await store.create("/k", b"0")

    results = await asyncio.gather(
        *(store.update("/k", str(i).encode(), kv.mod_revision) for i in range(20)), return_exceptions=True
    )

    winners = [r for r in results if isinstance(r, KeyValue)]
    losers = [r for r in results if isinstance(r, RevisionMismatchError)]
    assert len(winners) == 1 and len(losers) == 19
    assert all(e.current == winners[0] for e in losers)
    assert await store.get("/k") == winners[0]


async def test_range_by_prefix_with_read_revision(store: Store) -> None:
    b = await store.current_revision()
    for key in ["/reg/pods/ns/b", "/reg/pods/ns/a", "/reg/pods/ns2/a", "/reg/podsx/ns/a", "/reg/svc/ns/a"]:
        await store.create(key, key.encode())
    gone = await store.create("/reg/pods/ns/c", b"c")
    await store.delete("/reg/pods/ns/c", gone.mod_revision)

    kvs, revision = await store.range("/reg/pods/")
    everything, _ = await store.range("")

    assert [kv.key for kv in kvs] == ["/reg/pods/ns/a", "/reg/pods/ns/b", "/reg/pods/ns2/a"]
    assert [kv.value for kv in kvs] == [b"/reg/pods/ns/a", b"/reg/pods/ns/b", b"/reg/pods/ns2/a"]
    assert revision == b + 7 == await store.current_revision()
    assert len(everything) == 5


async def test_watch_replays_from_old_revision_then_follows(store: Store) -> None:
    b = await store.current_revision()
    a = await store.create("/w/a", b"1")
    await store.create("/other/x", b"x")
    a = await store.update("/w/a", b"2", a.mod_revision)
    await store.create("/w/b", b"3")

    watch = store.watch("/w/", b + 2)
    replayed = await collect(watch, b + 4)
    a = await store.update("/w/a", b"4", a.mod_revision)
    await store.create("/other/y", b"y")
    deleted = await store.delete("/w/a", a.mod_revision)
    followed = await collect(watch, deleted.revision)

    assert summary(replayed) == [("PUT", "/w/a", b"2", b + 3), ("PUT", "/w/b", b"3", b + 4)]
    assert replayed[0].prev_kv == KeyValue("/w/a", b"1", b + 1, b + 1)
    assert replayed[1].prev_kv is None
    assert summary(followed) == [("PUT", "/w/a", b"4", b + 5), ("DELETE", "/w/a", b"4", b + 7)]
    assert followed[1].prev_kv == KeyValue("/w/a", b"4", b + 1, b + 5)


async def test_watch_from_future_revision_waits_for_it(store: Store) -> None:
    b = await store.current_revision()
    await store.create("/f/a", b"1")
    watch = store.watch("/f/", b + 3)
    await store.create("/f/b", b"2")
    await store.create("/f/c", b"3")

    assert summary(await collect(watch, b + 3)) == [("PUT", "/f/c", b"3", b + 3)]


async def test_watch_from_compacted_revision_raises(store: Store) -> None:
    b = await store.current_revision()
    a = await store.create("/p/a", b"1")
    for i in range(2, 6):
        a = await store.update("/p/a", str(i).encode(), a.mod_revision)
    await store.compact(b + 4)

    with pytest.raises(CompactedError) as info:
        await anext(store.watch("/p/", b + 3))
    replay = await collect(store.watch("/p/", b + 4), b + 5)

    assert (info.value.requested, info.value.compacted) == (b + 3, b + 4)
    assert store.compacted_revision == b + 4
    assert summary(replay) == [("PUT", "/p/a", b"4", b + 4), ("PUT", "/p/a", b"5", b + 5)]
    assert replay[0].prev_kv == KeyValue("/p/a", b"3", b + 1, b + 3)
    assert await store.get("/p/a") == a


async def test_compaction_keeps_state_and_history_after_it(make_store: StoreFactory) -> None:
    # A small ring, so the sqlite replay below comes from the log, not from memory.
    store = await make_store(ring_capacity=2)
    r = await store.current_revision()
    a = await store.create("/p/a", b"a1")
    b = await store.create("/p/b", b"b1")
    gone = await store.create("/p/gone", b"g")
    await store.delete("/p/gone", gone.mod_revision)
    b = await store.update("/p/b", b"b2", b.mod_revision)
    recreated = await store.create("/p/gone", b"g2")
    a = await store.update("/p/a", b"a2", a.mod_revision)
    await store.compact(r + 6)

    kvs, _ = await store.range("/p/")
    replay = await collect(store.watch("/p/", r + 6), r + 7)

    assert kvs == [a, b, recreated]
    assert summary(replay) == [("PUT", "/p/gone", b"g2", r + 6), ("PUT", "/p/a", b"a2", r + 7)]
    assert replay[0].prev_kv is None
    assert replay[1].prev_kv == KeyValue("/p/a", b"a1", r + 1, r + 1)
    assert await store.compact(r + 3) is None  # older than the compacted revision: nothing to do
    assert store.compacted_revision == r + 6


async def test_concurrent_writers_get_distinct_increasing_revisions(store: Store) -> None:
    b = await store.current_revision()

    async def writer(w: int) -> list[int]:
        return [(await store.create(f"/cw/{w}/{i}", b"v")).mod_revision for i in range(25)]

    per_writer = await asyncio.gather(*(writer(w) for w in range(40)))

    assert sorted(r for revs in per_writer for r in revs) == list(range(b + 1, b + 1001))
    assert all(revs == sorted(revs) for revs in per_writer)
    kvs, revision = await store.range("/cw/")
    assert (len(kvs), revision) == (1000, b + 1000)


async def test_watch_sees_every_concurrent_write_in_order(store: Store) -> None:
    b = await store.current_revision()
    watch = store.watch("/", b + 1)
    await asyncio.gather(*(store.create(f"/cw/{i}", b"v") for i in range(300)))

    events = await collect(watch, b + 300)

    assert [e.revision for e in events] == list(range(b + 1, b + 301))


async def test_watch_long_replay_from_history(make_store: StoreFactory) -> None:
    store = await make_store(ring_capacity=8, history_capacity=5000)
    b = await store.current_revision()
    kvs = await asyncio.gather(
        *(store.create(f"/h/{i:05d}" if i % 2 else f"/skip/{i}", b"v") for i in range(2500))
    )
    expected = sorted(kv.mod_revision for kv in kvs if kv.key.startswith("/h/") and kv.mod_revision >= b + 3)

    watch = store.watch("/h/", b + 3)
    replay = await collect(watch, expected[-1])
    await store.create("/h/live", b"live")
    live = await collect(watch, b + 2501)

    assert [e.revision for e in replay] == expected
    assert len(expected) >= 1248
    assert summary(live) == [("PUT", "/h/live", b"live", b + 2501)]


async def test_watch_replay_racing_writers_has_no_gaps_or_repeats(make_store: StoreFactory) -> None:
    store = await make_store(ring_capacity=16)
    b = await store.current_revision()
    await asyncio.gather(*(store.create(f"/race/old{i}", b"v") for i in range(1500)))

    async def write_more() -> None:
        for i in range(500):
            await store.create(f"/race/new{i}", b"v")
            if i % 50 == 0:
                await asyncio.sleep(0)

    writer = asyncio.create_task(write_more())
    events = await collect(store.watch("/race/", b + 1), b + 2000)
    await writer

    assert [e.revision for e in events] == list(range(b + 1, b + 2001))


async def test_memory_history_falls_out_as_compaction() -> None:
    store = MemoryStore(history_capacity=3)
    for i in range(6):
        await store.create(f"/m/{i}", b"v")

    with pytest.raises(CompactedError) as info:
        await anext(store.watch("/m/", 3))

    assert (info.value.requested, info.value.compacted) == (3, 4)
    assert store.compacted_revision == 4
    assert [e.revision for e in await collect(store.watch("/m/", 4), 6)] == [4, 5, 6]


async def test_slow_watcher_overflows_without_stalling_writers(
    make_store: StoreFactory, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["make_store"] == "etcd":
        pytest.skip("etcd buffers slow watchers on the server (its own victim list); no client-side limit")
    store = await make_store(watch_queue_limit=10)
    slow = store.watch("/s/", 1)
    fast = store.watch("/s/", 1)
    await store.create("/s/0", b"v")
    assert summary(await collect(slow, 1)) == [("PUT", "/s/0", b"v", 1)]

    for i in range(1, 34):
        await store.create(f"/s/{i}", b"v")
        await collect(fast, i + 1)

    with pytest.raises(WatchOverflowError) as info:
        await anext(slow)
    assert info.value.requested == 2
    assert isinstance(info.value, CompactedError)
    assert await store.current_revision() == 34
    assert store.watcher_count == 1  # the overflowed one is gone, `fast` stays
    with pytest.raises(StopAsyncIteration):
        await anext(slow)


async def test_closing_a_watch_unsubscribes(store: Store) -> None:
    a = await store.create("/x/a", b"1")
    closed = store.watch("/x/", a.mod_revision)
    await anext(closed)
    async for _batch in store.watch("/x/", a.mod_revision):
        break
    gc.collect()
    assert store.watcher_count == 1  # type: ignore[attr-defined]

    await closed.aclose()  # type: ignore[attr-defined]

    assert store.watcher_count == 0  # type: ignore[attr-defined]
    with pytest.raises(StopAsyncIteration):
        await anext(closed)


async def test_closing_the_store_ends_watches(make_store: StoreFactory) -> None:
    store = await make_store()
    b = await store.current_revision()
    await store.create("/x/a", b"1")
    watch = store.watch("/x/", b + 2)
    pending = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0)

    await store.close()

    with pytest.raises(StoreUnavailableError):
        await pending
    with pytest.raises(StoreUnavailableError):
        await store.create("/x/b", b"2")


async def test_compact_to_future_revision_is_refused(store: Store) -> None:
    b, before = await store.current_revision(), store.compacted_revision
    await store.create("/a", b"1")
    with pytest.raises(Exception, match="future revision"):
        await store.compact(b + 5)
    assert store.compacted_revision == before


# ---- the shared core, as values ----

_LIVE = KeyValue("/k", b"old", 3, 7)


@pytest.mark.parametrize(
    ("op", "current", "expected"),
    [
        (WriteOp("create", "/k", b"v"), None, WatchEvent("PUT", KeyValue("/k", b"v", 9, 9), None, 9)),
        (WriteOp("create", "/k", b"v"), _LIVE, KeyExistsError),
        (WriteOp("update", "/k", b"v", 7), _LIVE, WatchEvent("PUT", KeyValue("/k", b"v", 3, 9), _LIVE, 9)),
        (WriteOp("update", "/k", b"v", 6), _LIVE, RevisionMismatchError),
        (WriteOp("update", "/k", b"v", 7), None, RevisionMismatchError),
        (WriteOp("delete", "/k"), _LIVE, WatchEvent("DELETE", KeyValue("/k", b"old", 3, 9), _LIVE, 9)),
        (WriteOp("delete", "/k", expected=7), _LIVE, WatchEvent("DELETE", KeyValue("/k", b"old", 3, 9), _LIVE, 9)),
        (WriteOp("delete", "/k", expected=8), _LIVE, RevisionMismatchError),
        (WriteOp("delete", "/k"), None, KeyNotFoundError),
        (WriteOp("delete", "/k", expected=7), None, RevisionMismatchError),
    ],
    ids=[
        "create",
        "create-exists",
        "update",
        "update-stale",
        "update-gone",
        "delete",
        "delete-cas",
        "delete-stale",
        "delete-missing",
        "delete-cas-gone",
    ],
)
def test_plan_write(op: WriteOp, current: KeyValue | None, expected: WatchEvent | type) -> None:
    if isinstance(expected, WatchEvent):
        assert plan_write(op, current, 9) == expected
    else:
        with pytest.raises(expected):
            plan_write(op, current, 9)


@pytest.mark.parametrize(
    ("prefix", "keys"),
    [
        ("", ["/a", "/a/b", "/ab", "/a\U0010ffff", "/b"]),
        ("/a", ["/a", "/a/b", "/ab", "/a\U0010ffff"]),
        ("/a/", ["/a/b"]),
        ("/a\U0010ffff", ["/a\U0010ffff"]),
        ("/c", []),
    ],
    ids=["all", "prefix-without-slash", "prefix-with-slash", "highest-code-point", "none"],
)
def test_live_index_range(prefix: str, keys: list[str]) -> None:
    index = LiveIndex()
    for revision, key in enumerate(["/b", "/a/b", "/ab", "/a\U0010ffff", "/a"], start=1):
        index.apply(WatchEvent("PUT", KeyValue(key, b"", revision, revision), None, revision))

    assert [kv.key for kv in index.range(prefix)] == keys


# ---- sqlite only ----


@pytest.mark.parametrize("ring_capacity", [8192, 2], ids=["ring", "log"])
async def test_sqlite_restart_keeps_state_and_revisions(tmp_path: Path, ring_capacity: int) -> None:
    path = str(tmp_path / "sub" / "state.db")
    first = SQLiteStore(path, compact_interval=None, ring_capacity=ring_capacity)
    await first.start()
    a = await first.create("/r/a", b"a1")
    b = await first.create("/r/b", b"b1")
    a = await first.update("/r/a", b"a2", a.mod_revision)
    await first.delete("/r/b", b.mod_revision)
    await first.create("/r/c", b"c1")
    await first.compact(2)
    await first.close()

    second = SQLiteStore(path, compact_interval=None, ring_capacity=ring_capacity)
    await second.start()
    try:
        kvs, revision = await second.range("/r/")
        history = await collect(second.watch("/r/", 2), 5)
        d = await second.create("/r/d", b"d1")
        with pytest.raises(CompactedError):
            await anext(second.watch("/r/", 1))
    finally:
        await second.close()

    assert [(kv.key, kv.value, kv.create_revision, kv.mod_revision) for kv in kvs] == [
        ("/r/a", b"a2", 1, 3),
        ("/r/c", b"c1", 5, 5),
    ]
    assert revision == 5
    assert second.compacted_revision == 2
    assert summary(history) == [
        ("PUT", "/r/b", b"b1", 2),
        ("PUT", "/r/a", b"a2", 3),
        ("DELETE", "/r/b", b"b1", 4),
        ("PUT", "/r/c", b"c1", 5),
    ]
    assert history[2].prev_kv == KeyValue("/r/b", b"b1", 2, 2)
    assert d.mod_revision == 6


async def test_sqlite_compaction_deletes_superseded_rows_and_tombstones(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    store = SQLiteStore(path, compact_interval=None)
    await store.start()
    a = await store.create("/a", b"1")  # 1
    a = await store.update("/a", b"2", a.mod_revision)  # 2
    b = await store.create("/b", b"1")  # 3
    await store.delete("/b", b.mod_revision)  # 4
    a = await store.update("/a", b"3", a.mod_revision)  # 5
    await store.create("/c", b"1")  # 6
    await store.compact(5)
    await store.close()

    with sqlite3.connect(path) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM log ORDER BY id")]
        compacted = conn.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()[0]

    # 2 stays: it is the prev of revision 5. 1 is superseded, 3 and 4 are a deleted key's rows.
    assert ids == [2, 5, 6]
    assert compacted == 5


async def test_sqlite_periodic_compaction_keeps_the_retained_revisions(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "state.db"), compact_interval=0.01, compact_retain=5)
    await store.start()
    try:
        for i in range(20):
            await store.create(f"/p/{i}", b"v")
        for _ in range(1000):
            if store.compacted_revision >= 16:
                break
            await asyncio.sleep(0.01)
        assert store.compacted_revision == 16
        assert [e.revision for e in await collect(store.watch("/p/", 16), 20)] == [16, 17, 18, 19, 20]
    finally:
        await store.close()


async def test_sqlite_refuses_a_second_opener(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    first = SQLiteStore(path, compact_interval=None)
    await first.start()
    try:
        with pytest.raises(StoreUnavailableError, match="in use"):
            await SQLiteStore(path, compact_interval=None).start()
    finally:
        await first.close()


@pytest.mark.parametrize(
    ("url", "kind"),
    [("memory://", MemoryStore), ("sqlite:///{tmp}/s.db", SQLiteStore)],
    ids=["memory", "sqlite"],
)
async def test_open_store_urls(tmp_path: Path, url: str, kind: type) -> None:
    store = open_store(url.format(tmp=tmp_path))
    await store.start()
    try:
        kv = await store.create("/u", b"v")
    finally:
        await store.close()
    assert isinstance(store, kind)
    assert kv.mod_revision == 1


async def test_sqlite_failed_commit_fails_the_batch_and_keeps_revisions(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    store = SQLiteStore(path, compact_interval=None, busy_timeout=0.05)
    await store.start()
    try:
        a = await store.create("/a", b"1")
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another connection holds the write lock: commits fail
        results = await asyncio.gather(
            store.create("/b", b"1"), store.update("/a", b"2", a.mod_revision), return_exceptions=True
        )
        blocker.execute("ROLLBACK")
        blocker.close()
        after = await store.create("/c", b"1")
        kvs, revision = await store.range("/")
    finally:
        await store.close()

    assert [type(r) for r in results] == [StoreUnavailableError, StoreUnavailableError]
    assert after.mod_revision == 2
    assert [(kv.key, kv.value, kv.mod_revision) for kv in kvs] == [("/a", b"1", 1), ("/c", b"1", 2)]
    assert revision == 2
