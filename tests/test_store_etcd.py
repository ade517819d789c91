"""The etcd backend against real clusters: member crashes, oversize values, compaction, no quorum.

The backend-neutral behaviour is in test_store.py (its "etcd" parameter); this file holds what only
a distributed store has.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from etcd_cluster import EtcdCluster, etcd_binary, etcd_cluster_fixture, free_port, requires_etcd
from sliceplane.store import (
    CompactedError,
    KeyValue,
    StoreError,
    StoreOutcomeUnknownError,
    StoreUnavailableError,
    ValueTooLargeError,
    WatchEvent,
    open_store,
)
from sliceplane.store._core import WriteOp
from sliceplane.store.etcd import (
    EtcdStore,
    applied_by_earlier_attempt,
    classify,
    is_delete_of,
    parse_endpoint,
    prefix_range,
)

pytestmark = [requires_etcd, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cluster3() -> Iterator[EtcdCluster]:
    if etcd_binary() is None:
        pytest.skip("etcd is not installed")
    with EtcdCluster(3) as cluster:
        yield cluster


@pytest.fixture
def healthy3(cluster3: EtcdCluster) -> Iterator[EtcdCluster]:
    """The 3-member cluster, with every member running again after the test."""
    cluster3.wait_healthy()
    yield cluster3
    for i, member in enumerate(cluster3.members):
        if not member.alive:
            cluster3.restart(i)


# A fresh 1-member cluster per test: these tests kill, pause or compact it.
cluster1 = etcd_cluster_fixture(1, scope="function")


@pytest.fixture
async def opened() -> AsyncIterator[list[EtcdStore]]:
    """Stores to close after the test (opened with `await start(...)`)."""
    stores: list[EtcdStore] = []
    yield stores
    for store in stores:
        await store.close()


async def start(opened: list[EtcdStore], endpoints: list[str], **kwargs: Any) -> EtcdStore:
    kwargs.setdefault("compact_interval", None)
    store = EtcdStore(endpoints, **kwargs)
    await store.start()
    opened.append(store)
    return store


async def collect(watch: AsyncIterator[list[WatchEvent]], until_revision: int) -> list[WatchEvent]:
    events: list[WatchEvent] = []
    while not events or events[-1].revision < until_revision:
        events.extend(await asyncio.wait_for(anext(watch), 30))
    return events


# ---- crashes in a 3-member cluster ----


@pytest.mark.parametrize("victim", ["endpoint-in-use", "leader"], ids=["endpoint-in-use", "leader"])
async def test_kill_a_member_during_a_write_storm_loses_no_acknowledged_write(
    healthy3: EtcdCluster, opened: list[EtcdStore], victim: str
) -> None:
    store = await start(opened, healthy3.endpoints, request_timeout=15)
    base = await store.current_revision()
    kill_at = 300
    acked: dict[str, KeyValue] = {}  # key -> the last acknowledged version
    revisions: list[int] = []
    failures: list[BaseException] = []
    killed = asyncio.Event()
    victim_index = 0 if victim == "endpoint-in-use" else healthy3.leader_index()

    async def writer(w: int) -> None:
        for i in range(40):
            key = f"/storm/{victim}/{w}/{i}"
            try:
                kv = await store.create(key, f"v-{w}-{i}".encode() * 30)
                acked[key] = kv
                revisions.append(kv.mod_revision)
                if i % 3 == 0:
                    kv = await store.update(key, f"u-{w}-{i}".encode(), kv.mod_revision)
                    acked[key] = kv
                    revisions.append(kv.mod_revision)
            except StoreError as e:
                failures.append(e)
            if len(revisions) >= kill_at and not killed.is_set():
                killed.set()
                healthy3.kill(victim_index)

    await asyncio.gather(*(writer(w) for w in range(32)))

    assert failures == []
    assert killed.is_set()
    kvs, read_revision = await store.range(f"/storm/{victim}/")
    assert {kv.key: kv for kv in kvs} == acked
    assert sorted(revisions) == list(range(base + 1, base + 1 + len(revisions)))
    assert read_revision == base + len(revisions)
    if victim == "endpoint-in-use":
        assert store.failovers >= 1

    # The history agrees with the acknowledgements, and the killed member catches up after a restart.
    events = await collect(store.watch(f"/storm/{victim}/", base + 1), read_revision)
    assert [e.revision for e in events] == sorted(revisions)
    healthy3.restart(victim_index)
    only_victim = await start(opened, [healthy3.endpoints[victim_index]])
    assert await only_victim.range(f"/storm/{victim}/") == (kvs, read_revision)


async def test_watch_resumes_on_another_member_without_loss_or_repeats(
    healthy3: EtcdCluster, opened: list[EtcdStore]
) -> None:
    # The watcher talks to member 0 first; the writer only to the others, so it never waits on the kill.
    watcher = await start(opened, healthy3.endpoints, request_timeout=15)
    writer = await start(opened, healthy3.endpoints[1:], request_timeout=15)
    base = await writer.current_revision()
    watch = watcher.watch("/resume/", base + 1)
    written: list[tuple[int, str]] = []
    seen: list[WatchEvent] = []

    async def write(n: int) -> None:
        for _ in range(n):
            key = f"/resume/{len(written)}"
            written.append(((await writer.create(key, b"v")).mod_revision, key))

    await write(50)
    seen += await collect(watch, written[-1][0])
    healthy3.kill(0)
    await write(100)
    seen += await collect(watch, written[-1][0])

    assert [(e.revision, e.kv.key) for e in seen] == written
    assert [r for r, _ in written] == list(range(base + 1, base + 151))
    assert watcher.failovers >= 1


# ---- limits and errors ----


@pytest.mark.parametrize(
    "size", [1_600_000, 3 * 1024 * 1024], ids=["over-etcd-request-limit", "over-grpc-message-limit"]
)
async def test_oversize_value_is_value_too_large(cluster1: EtcdCluster, opened: list[EtcdStore], size: int) -> None:
    store = await start(opened, cluster1.endpoints)
    kv = await store.create("/big/ok", b"x" * 1_000_000)
    before = await store.current_revision()

    with pytest.raises(ValueTooLargeError):
        await store.create("/big/new", b"x" * size)
    with pytest.raises(ValueTooLargeError):
        await store.update("/big/ok", b"y" * size, kv.mod_revision)

    assert await store.current_revision() == before
    assert await store.get("/big/new") is None
    assert await store.get("/big/ok") == kv


async def test_no_member_answering_is_store_unavailable() -> None:
    store = EtcdStore([f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"], request_timeout=0.5)
    with pytest.raises(StoreUnavailableError, match="no etcd member answered"):
        await store.start()
    await store.close()


async def test_losing_the_only_member_fails_reads_writes_and_watches(
    cluster1: EtcdCluster, opened: list[EtcdStore]
) -> None:
    store = await start(opened, cluster1.endpoints, request_timeout=0.5)
    kv = await store.create("/gone/a", b"1")
    watch = store.watch("/gone/", kv.mod_revision)
    assert [e.kv for e in await anext(watch)] == [kv]
    cluster1.kill(0)

    with pytest.raises(StoreUnavailableError):
        await store.create("/gone/b", b"2")
    with pytest.raises(StoreUnavailableError):
        await store.get("/gone/a")
    with pytest.raises(StoreUnavailableError):
        await anext(watch)


async def test_a_write_to_a_hung_member_is_of_unknown_outcome(cluster1: EtcdCluster, opened: list[EtcdStore]) -> None:
    """SIGSTOPped, the member holds the request it was sent: the write times out as possibly
    applied (the API server answers 504, not 503), not as unavailable. Once the member resumes
    the store works again; the write is there or not (the member may see the cancel first)."""
    store = await start(opened, cluster1.endpoints, request_timeout=1.0, attempt_timeout=0.3)
    cluster1.pause(0)
    try:
        with pytest.raises(StoreOutcomeUnknownError, match="no etcd member answered"):
            await store.create("/hung/a", b"1")
        with pytest.raises(StoreUnavailableError) as read_error:  # a read has no outcome to doubt
            await store.get("/hung/a")
        assert not isinstance(read_error.value, StoreOutcomeUnknownError)
    finally:
        cluster1.resume(0)
    kv = await store.get("/hung/a")
    assert kv is None or kv.value == b"1"
    assert (await store.create("/hung/b", b"2")).value == b"2"


async def test_losing_quorum_is_store_unavailable_and_recovers(healthy3: EtcdCluster, opened: list[EtcdStore]) -> None:
    store = await start(opened, healthy3.endpoints, request_timeout=1.5, attempt_timeout=0.5)
    kv = await store.create("/quorum/a", b"1")
    healthy3.kill(1)
    healthy3.kill(2)

    with pytest.raises(StoreUnavailableError):
        await store.update("/quorum/a", b"2", kv.mod_revision)
    with pytest.raises(StoreUnavailableError):
        await store.get("/quorum/a")  # a linearizable read needs the quorum too

    healthy3.restart(1)
    healthy3.restart(2)
    # The refused update was never acknowledged; whether or not it applied, the key is consistent.
    current = await store.get("/quorum/a")
    assert current is not None and (current.value, current.create_revision) in {(b"1", kv.mod_revision), (b"2", kv.mod_revision)}
    assert (await store.update("/quorum/a", b"3", current.mod_revision)).value == b"3"


# ---- compaction ----


async def test_compacted_revision_survives_a_restart_and_other_writers_compaction(
    cluster1: EtcdCluster, opened: list[EtcdStore]
) -> None:
    first = await start(opened, cluster1.endpoints)
    other = await start(opened, cluster1.endpoints)
    kv = await first.create("/c/a", b"0")
    for i in range(1, 10):
        kv = await first.update("/c/a", str(i).encode(), kv.mod_revision)
    await first.compact(kv.mod_revision - 3)

    restarted = await start(opened, cluster1.endpoints)
    with pytest.raises(CompactedError) as from_other:
        await anext(other.watch("/c/", kv.mod_revision - 5))  # `other` only learns it from etcd's answer

    assert first.compacted_revision == restarted.compacted_revision == kv.mod_revision - 3
    assert (from_other.value.requested, from_other.value.compacted) == (kv.mod_revision - 5, kv.mod_revision - 3)
    assert other.compacted_revision == kv.mod_revision - 3
    replay = await collect(restarted.watch("/c/", kv.mod_revision - 3), kv.mod_revision)
    assert [e.kv.value for e in replay] == [b"6", b"7", b"8", b"9"]
    assert replay[0].prev_kv is not None and replay[0].prev_kv.value == b"5"


async def test_periodic_compaction_keeps_the_retained_revisions(cluster1: EtcdCluster, opened: list[EtcdStore]) -> None:
    store = await start(opened, cluster1.endpoints, compact_interval=0.02, compact_retain=5)
    for i in range(20):
        last = await store.create(f"/p/{i}", b"v")
    for _ in range(500):
        if store.compacted_revision >= last.mod_revision - 4:
            break
        await asyncio.sleep(0.01)

    assert store.compacted_revision == last.mod_revision - 4
    replay = await collect(store.watch("/p/", last.mod_revision - 4), last.mod_revision)
    assert [e.revision for e in replay] == list(range(last.mod_revision - 4, last.mod_revision + 1))


async def test_open_store_url_with_several_endpoints(healthy3: EtcdCluster) -> None:
    store = open_store(healthy3.url)
    await store.start()
    try:
        kv = await store.create("/url/a", b"v")
        got = await store.get("/url/a")
    finally:
        await store.close()
    assert isinstance(store, EtcdStore)
    assert store.endpoints == healthy3.endpoints
    assert got == kv


# ---- pure helpers ----


@pytest.mark.parametrize(
    ("endpoint", "target"),
    [("127.0.0.1:2379", "127.0.0.1:2379"), ("http://h:1/", "h:1"), (" localhost:2379 ", "localhost:2379")],
    ids=["host-port", "http-url", "spaces"],
)
def test_parse_endpoint(endpoint: str, target: str) -> None:
    assert parse_endpoint(endpoint) == target


@pytest.mark.parametrize("endpoint", ["https://h:1", "h", ""], ids=["tls", "no-port", "empty"])
def test_parse_endpoint_refuses(endpoint: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(endpoint)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", (b"\0", b"\0")),
        ("/registry/", (b"/registry/", b"/registry0")),
        ("a\xff", (b"a\xc3\xbf", b"a\xc3\xc0")),
        ("\U0010ffff", (b"\xf4\x8f\xbf\xbf", b"\xf4\x8f\xbf\xc0")),
    ],
    ids=["everything", "slash", "two-byte", "highest-code-point"],
)
def test_prefix_range(prefix: str, expected: tuple[bytes, bytes]) -> None:
    assert prefix_range(prefix) == expected


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large", ValueTooLargeError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "grpc: received message larger than max (1 vs. 0)", ValueTooLargeError),
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", None),
        (grpc.StatusCode.UNKNOWN, "etcdserver: leader changed", None),
        (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader", None),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: too many requests", None),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded", StoreError),
        (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied", StoreError),
    ],
    ids=["too-large", "grpc-too-large", "unreachable", "leader-changed", "no-leader", "too-many", "no-space", "denied"],
)
def test_classify(code: grpc.StatusCode, details: str, expected: type | None) -> None:
    error = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)
    mapped = classify(error)
    if expected is None:
        assert mapped is None
    else:
        assert type(mapped) is expected


# ---- re-sent writes ----


async def test_writes_resent_after_a_hung_member_apply_once(cluster1: EtcdCluster, opened: list[EtcdStore]) -> None:
    store = await start(opened, cluster1.endpoints, request_timeout=20, attempt_timeout=0.2)
    base = await store.current_revision()
    cluster1.pause(0)
    try:
        created = asyncio.ensure_future(store.create("/resend/a", b"1"))
        await asyncio.sleep(0.7)  # several attempts time out against the hung member
    finally:
        cluster1.resume(0)
    a = await created
    cluster1.pause(0)
    try:
        updated = asyncio.ensure_future(store.update("/resend/a", b"2", a.mod_revision))
        await asyncio.sleep(0.7)
    finally:
        cluster1.resume(0)
    a2 = await updated
    cluster1.pause(0)
    try:
        deleting = asyncio.ensure_future(store.delete("/resend/a", a2.mod_revision))
        await asyncio.sleep(0.7)
    finally:
        cluster1.resume(0)
    deleted = await deleting

    events = await collect(store.watch("/resend/", base + 1), deleted.revision)
    assert [(e.type, e.kv.value, e.revision) for e in events] == [
        ("PUT", b"1", base + 1),
        ("PUT", b"2", base + 2),
        ("DELETE", b"2", base + 3),
    ]
    assert (a.mod_revision, a2.mod_revision) == (base + 1, base + 2)
    assert deleted == events[2]
    assert await store.get("/resend/a") is None


@pytest.mark.parametrize(
    ("op", "current", "applied"),
    [
        (WriteOp("create", "/k", b"v"), KeyValue("/k", b"v", 7, 7), True),
        (WriteOp("create", "/k", b"v"), KeyValue("/k", b"v", 7, 9), False),
        (WriteOp("create", "/k", b"v"), KeyValue("/k", b"other", 7, 7), False),
        (WriteOp("create", "/k", b"v"), None, False),
        (WriteOp("update", "/k", b"v", 5), KeyValue("/k", b"v", 2, 8), True),
        (WriteOp("update", "/k", b"v", 5), KeyValue("/k", b"other", 2, 8), False),
        (WriteOp("update", "/k", b"v", 5), KeyValue("/k", b"v", 2, 5), False),
        (WriteOp("update", "/k", b"v", 5), None, False),
        (WriteOp("delete", "/k", b"", 5), None, False),
    ],
    ids=[
        "create-ours",
        "create-updated-since",
        "create-someone-elses",
        "create-gone",
        "update-ours",
        "update-someone-elses",
        "update-not-newer",
        "update-gone",
        "delete-never",
    ],
)
def test_applied_by_earlier_attempt(op: WriteOp, current: KeyValue | None, applied: bool) -> None:
    assert applied_by_earlier_attempt(op, current) is applied


_PREV = KeyValue("/k", b"v", 2, 5)


@pytest.mark.parametrize(
    ("event", "applied"),
    [
        (WatchEvent("DELETE", KeyValue("/k", b"v", 2, 9), _PREV, 9), True),
        (WatchEvent("PUT", KeyValue("/k", b"w", 2, 9), _PREV, 9), False),
        (WatchEvent("DELETE", KeyValue("/k", b"v", 2, 9), KeyValue("/k", b"v", 2, 7), 9), False),
        (None, False),
    ],
    ids=["our-delete", "updated-first", "deleted-a-later-version", "compacted"],
)
def test_is_delete_of(event: WatchEvent | None, applied: bool) -> None:
    assert is_delete_of(event, 5) is applied


# ---- the API server in distributed mode ----


async def test_api_server_on_etcd_survives_a_member_kill(healthy3: EtcdCluster) -> None:
    import json

    import aiohttp

    from sliceplane.apiserver.app import APIServer
    from sliceplane.apiserver.config import ServerConfig

    server = APIServer(ServerConfig(port=0, store_url=healthy3.url))
    await server.start()
    acked: list[str] = []
    refused: list[tuple[int, str]] = []
    seen: list[tuple[str, str]] = []
    try:
        async with aiohttp.ClientSession() as http:
            url = server.url + "/api/v1/namespaces/default/configmaps"
            async with http.get(url) as resp:
                rv = (await resp.json())["metadata"]["resourceVersion"]

            async def watch() -> None:
                params = {"watch": "1", "resourceVersion": rv}
                async with http.get(url, params=params, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                    async for line in resp.content:
                        event = json.loads(line)
                        seen.append((event["type"], event["object"]["metadata"]["name"]))
                        if len(seen) == 300:
                            return

            async def create(w: int) -> None:
                for i in range(15):
                    name = f"cm-{w}-{i}"
                    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}}
                    async with http.post(url, json=body) as resp:
                        if resp.status == 201:
                            acked.append(name)
                        else:
                            refused.append((resp.status, await resp.text()))
                    if len(acked) >= 100 and healthy3.members[0].alive:
                        healthy3.kill(0)  # the member the server's store talks to first

            watching = asyncio.ensure_future(watch())
            await asyncio.gather(*(create(w) for w in range(20)))
            await asyncio.wait_for(watching, 30)
            async with http.get(url) as resp:
                listed = sorted(item["metadata"]["name"] for item in (await resp.json())["items"])
    finally:
        await server.stop()

    assert refused == []
    assert not healthy3.members[0].alive
    assert sorted(acked) == listed
    assert sorted(seen) == sorted(("ADDED", name) for name in acked)
