"""The watch cache over the real memory store, without HTTP: fan-out, slow watchers, re-list."""

from __future__ import annotations

import asyncio
import json

import pytest

from sliceplane.api.errors import StatusError
from sliceplane.api.registry import CONFIG_MAPS, PODS
from sliceplane.apiserver.metrics import APIMetrics
from sliceplane.apiserver.watchcache import WatchCache, parse_key
from sliceplane.store.memory import MemoryStore


def cm(name: str, ns: str = "default") -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}}).encode()


async def settle(cache: WatchCache, store: MemoryStore) -> None:
    assert await cache.wait_until(await store.current_revision(), 5)


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    await s.start()
    return s


KEY_CASES = [
    ("namespaced", "/registry/core/pods/default/web", ("pods", "default", "web")),
    ("cluster", "/registry/core/namespaces/default", ("namespaces", "", "default")),
    ("group", "/registry/discovery.k8s.io/endpointslices/ns/s-1", ("endpointslices", "ns", "s-1")),
    ("unknown-resource", "/registry/core/widgets/ns/x", None),
    ("too-short", "/registry/core/pods/x", None),
]


@pytest.mark.parametrize(("key", "want"), [c[1:] for c in KEY_CASES], ids=[c[0] for c in KEY_CASES])
def test_parse_key(key: str, want: tuple[str, str, str] | None) -> None:
    got = parse_key(key)
    assert (None if got is None else (got[0].plural, got[1], got[2])) == want


async def test_list_sees_writes_with_resource_versions(store: MemoryStore) -> None:
    cache = WatchCache(store)
    await cache.start()
    try:
        kv = await store.create(CONFIG_MAPS.key("a", "default"), cm("a"))
        await store.create(CONFIG_MAPS.key("b", "other"), cm("b", "other"))
        await settle(cache, store)
        assert [o.obj["metadata"]["name"] for o in cache.list(CONFIG_MAPS)] == ["a", "b"]
        assert [o.obj["metadata"]["name"] for o in cache.list(CONFIG_MAPS, "other")] == ["b"]
        assert cache.get(CONFIG_MAPS, "default", "a").obj["metadata"]["resourceVersion"] == str(kv.mod_revision)
        assert cache.list(PODS) == []
    finally:
        await cache.stop()


async def test_slow_watcher_is_closed_not_buffered_forever(store: MemoryStore) -> None:
    cache = WatchCache(store, watcher_buffer=3)
    await cache.start()
    try:
        slow = cache.watch(CONFIG_MAPS, None, resource_version=await store.current_revision())
        for i in range(5):
            await store.create(CONFIG_MAPS.key(f"c{i}", "default"), cm(f"c{i}"))
        await settle(cache, store)
        assert slow.closed and slow.overflowed
        assert await slow.next_chunk() is None
        assert cache.watcher_count() == 0
    finally:
        await cache.stop()


async def test_one_encoding_per_event_for_all_watchers(store: MemoryStore) -> None:
    metrics = APIMetrics()
    cache = WatchCache(store, metrics=metrics)
    await cache.start()
    try:
        rev = await store.current_revision()
        watchers = [cache.watch(CONFIG_MAPS, "default", resource_version=rev) for _ in range(5)]
        await store.create(CONFIG_MAPS.key("x", "default"), cm("x"))
        await settle(cache, store)
        chunks = [await w.next_chunk() for w in watchers]
        assert all(c == chunks[0] for c in chunks)
        assert all(c is chunks[0][0] for c in (chunk[0] for chunk in chunks))  # the very same bytes object
        assert json.loads(chunks[0][0])["type"] == "ADDED"
        assert metrics.value("sliceplane_watch_event_serializations_total", resource="configmaps") == 1
    finally:
        await cache.stop()


async def test_compacted_feed_relists_and_closes_watches(store: MemoryStore) -> None:
    cache = WatchCache(store)
    await cache.start()
    try:
        w = cache.watch(CONFIG_MAPS, None, resource_version=None)
        feed = cache._tasks[0]
        feed.cancel()  # the store watch stops, as if the connection to etcd had dropped
        await asyncio.gather(feed, return_exceptions=True)
        for i in range(3):
            await store.create(CONFIG_MAPS.key(f"k{i}", "default"), cm(f"k{i}"))
        await store.compact(await store.current_revision())
        cache._tasks[0] = asyncio.create_task(cache._feed())  # resuming from the old revision: compacted
        await settle(cache, store)
        assert [o.obj["metadata"]["name"] for o in cache.list(CONFIG_MAPS)] == ["k0", "k1", "k2"]
        assert w.closed
        await store.create(CONFIG_MAPS.key("after", "default"), cm("after"))
        await settle(cache, store)
        assert cache.get(CONFIG_MAPS, "default", "after") is not None
    finally:
        await cache.stop()


async def test_history_window_is_bounded_in_bytes(store: MemoryStore) -> None:
    cache = WatchCache(store, max_bytes=1000)
    await cache.start()
    try:
        start = (await store.create(CONFIG_MAPS.key("first", "default"), cm("first"))).mod_revision
        for i in range(10):
            await store.create(CONFIG_MAPS.key(f"b{i}", "default"), cm(f"b{i}" + "x" * 200))
        await settle(cache, store)
        with pytest.raises(StatusError) as e:
            cache.watch(CONFIG_MAPS, None, resource_version=start)
        assert e.value.code == 410
        recent = cache.watch(CONFIG_MAPS, None, resource_version=await store.current_revision() - 2)
        assert len(await recent.next_chunk()) == 2
    finally:
        await cache.stop()
