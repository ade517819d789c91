"""The watch cache: one store watch per server, current objects decoded once, recent events in
a bounded ring, and fan-out to watchers with each event encoded once per encoding.

Every list and watch is served from here. A watcher gets a bounded queue; when it overflows,
its watch is closed (the client resumes or re-lists), so a slow client never costs unbounded
memory. If the store's watch fails with CompactedError, the cache re-lists and closes every
watch, as Kubernetes' cacher does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from sliceplane.api import registry
from sliceplane.api.errors import gone
from sliceplane.api.registry import ResourceInfo
from sliceplane.store.base import CompactedError, Store, WatchEvent

log = logging.getLogger(__name__)

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


class Matcher(Protocol):
    def matches(self, obj: Any) -> bool: ...


class Encoding(Protocol):
    """How a watch encodes event objects; `key` names the memo slot shared by all its watchers."""

    key: str

    def encode(self, info: ResourceInfo, obj: dict[str, Any]) -> bytes: ...


class JSONEncoding:
    key = "json"

    def encode(self, info: ResourceInfo, obj: dict[str, Any]) -> bytes:
        return _encode(obj)


JSON_ENCODING = JSONEncoding()


class CachedObject:
    """One object as stored at `revision`, with metadata.resourceVersion filled in; never mutated."""

    __slots__ = ("_json", "obj", "revision")

    def __init__(self, obj: dict[str, Any], revision: int) -> None:
        self.obj = obj
        self.revision = revision
        self._json: bytes | None = None

    def json(self) -> bytes:
        if self._json is None:
            self._json = _encode(self.obj)
        return self._json

    def at_revision(self, revision: int) -> CachedObject:
        """The same content carrying another resourceVersion (a deletion's)."""
        obj = dict(self.obj)
        obj["metadata"] = {**(obj.get("metadata") or {}), "resourceVersion": str(revision)}
        return CachedObject(obj, revision)


def event_line(wire_type: str, object_json: bytes) -> bytes:
    return b'{"type":"' + wire_type.encode() + b'","object":' + object_json + b"}\n"


class CacheEvent:
    """A change of one object. `cur` is the new state (for DELETED, the last state at the
    deletion's revision); `prev` the state before (None for ADDED)."""

    __slots__ = ("_memo", "cur", "info", "key", "namespace", "prev", "revision", "size", "type")

    def __init__(self, type: str, key: str, info: ResourceInfo, namespace: str,
                 cur: CachedObject, prev: CachedObject | None, revision: int, size: int = 0) -> None:
        self.type = type
        self.size = size  # stored bytes of the object, for the ring's memory budget
        self.key = key
        self.info = info
        self.namespace = namespace
        self.cur = cur
        self.prev = prev
        self.revision = revision
        self._memo: dict[tuple[str, bool, str], bytes] = {}

    def line(self, wire_type: str, use_prev: bool, encoding: Encoding, on_encode: Callable[[str], None]) -> bytes:
        """The event's bytes on the wire, built once per (type, object, encoding) for all watchers."""
        k = (wire_type, use_prev, encoding.key)
        data = self._memo.get(k)
        if data is None:
            if use_prev:
                assert self.prev is not None
                obj = self.prev.at_revision(self.revision)
            else:
                obj = self.cur
            body = obj.json() if encoding.key == "json" else encoding.encode(self.info, obj.obj)
            on_encode(encoding.key)
            data = self._memo[k] = event_line(wire_type, body)
        return data


@dataclass(slots=True)
class _Item:
    kind: str  # "event" | "initial" | "bookmark"
    data: Any
    wire_type: str = ""
    use_prev: bool = False


class Watcher:
    """One client watch: its filter, its bounded queue, and the memoized bytes it will send."""

    def __init__(self, cache: WatchCache, info: ResourceInfo, namespace: str | None,
                 label_selector: Matcher | None, field_selector: Matcher | None,
                 encoding: Encoding, start_revision: int, buffer_limit: int, bookmarks: bool) -> None:
        self.cache = cache
        self.info = info
        self.namespace = namespace or None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.encoding = encoding
        self.start_revision = start_revision
        self.buffer_limit = buffer_limit
        self.bookmarks = bookmarks
        self.closed = False
        self.overflowed = False
        self.last_revision = start_revision
        self._items: collections.deque[_Item] = collections.deque()
        self._wake = asyncio.Event()

    def _matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.label_selector is not None:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if not self.label_selector.matches(labels):
                return False
        return self.field_selector is None or self.field_selector.matches(obj)

    def offer(self, ev: CacheEvent) -> None:
        if self.closed or ev.revision <= self.start_revision:
            return
        if self.namespace is not None and ev.namespace != self.namespace:
            return
        if ev.type == DELETED:
            if self._matches(ev.cur.obj):
                self._push(_Item("event", ev, DELETED))
            return
        cur = self._matches(ev.cur.obj)
        old = ev.prev is not None and self._matches(ev.prev.obj)
        if cur and old:
            self._push(_Item("event", ev, MODIFIED))
        elif cur:
            self._push(_Item("event", ev, ADDED))
        elif old:
            # Stopped matching: the watcher sees it go, with the old content at the new version.
            self._push(_Item("event", ev, DELETED, use_prev=True))

    def offer_initial(self, objs: Iterable[CachedObject]) -> None:
        for o in objs:
            if self._matches(o.obj):
                self._items.append(_Item("initial", o, ADDED))
        self._wake.set()

    def offer_initial_end(self, revision: int) -> None:
        """The bookmark that tells a sendInitialEvents client the initial state is complete."""
        if self.bookmarks and not self.closed:
            self._items.append(_Item("bookmark", revision, INITIAL_EVENTS_END))
            self._wake.set()

    def offer_bookmark(self, revision: int) -> None:
        if self.closed or not self.bookmarks:
            return
        revision = max(revision, self.start_revision)
        if self._items and self._items[-1].kind == "bookmark":
            self._items[-1].data = revision
        else:
            self._push(_Item("bookmark", revision))

    def _push(self, item: _Item) -> None:
        if len(self._items) >= self.buffer_limit:
            self.overflowed = True
            self.close()
            return
        self._items.append(item)
        self._wake.set()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._items.clear()
            self._wake.set()
            self.cache._remove(self)

    async def next_chunk(self) -> list[bytes] | None:
        """Everything ready to send, already encoded; None when the watch is over."""
        while not self._items:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        out: list[bytes] = []
        on_encode = self.cache._count_encode(self.info)
        while self._items:
            item = self._items.popleft()
            if item.kind == "event":
                ev: CacheEvent = item.data
                out.append(ev.line(item.wire_type, item.use_prev, self.encoding, on_encode))
                self.last_revision = ev.revision
            elif item.kind == "initial":
                o: CachedObject = item.data
                body = o.json() if self.encoding.key == "json" else self.encoding.encode(self.info, o.obj)
                out.append(event_line(ADDED, body))
            else:
                md: dict[str, Any] = {"resourceVersion": str(item.data)}
                if item.wire_type == INITIAL_EVENTS_END:
                    md["annotations"] = {INITIAL_EVENTS_END: "true"}
                out.append(event_line("BOOKMARK", _encode({
                    "kind": self.info.kind, "apiVersion": self.info.api_version, "metadata": md})))
        return out


def parse_key(key: str) -> tuple[ResourceInfo, str, str] | None:
    """`/registry/<group|core>/<plural>/[<ns>/]<name>` -> (info, namespace, name)."""
    parts = key.split("/")
    if len(parts) < 5 or parts[1] != "registry":
        return None
    group = "" if parts[2] == "core" else parts[2]
    info = _by_group_plural.get((group, parts[3]))
    if info is None:
        return None
    if info.namespaced:
        if len(parts) != 6:
            return None
        return info, parts[4], parts[5]
    if len(parts) != 5:
        return None
    return info, "", parts[4]


_by_group_plural = {(r.group, r.plural): r for r in registry.RESOURCES}


def resource_label(info: ResourceInfo) -> str:
    return info.qualified


class WatchCache:
    def __init__(self, store: Store, *, capacity: int = 100_000, watcher_buffer: int = 10_000,
                 bookmark_interval: float = 5.0, metrics: Any = None, max_bytes: int = 64 << 20) -> None:
        self.store = store
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._ring_bytes = 0
        self.watcher_buffer = watcher_buffer
        self.bookmark_interval = bookmark_interval
        self.metrics = metrics
        self.revision = 0
        self._oldest = 0  # watches may resume from any revision >= this one
        # (group, plural) -> namespace ("" when cluster-scoped) -> name -> object
        self._objects: dict[tuple[str, str], dict[str, dict[str, CachedObject]]] = {}
        self._ring: collections.deque[CacheEvent] = collections.deque()
        self._watchers: dict[tuple[str, str], set[Watcher]] = {}
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        await self._relist()
        self._tasks = [asyncio.create_task(self._feed(), name="watchcache-feed"),
                       asyncio.create_task(self._bookmarks(), name="watchcache-bookmarks")]
        self._ready.set()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        self.close_all_watchers()
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters = []

    def close_all_watchers(self) -> None:
        for ws in list(self._watchers.values()):
            for w in list(ws):
                w.close()

    async def _relist(self) -> None:
        kvs, rev = await self.store.range("/registry/")
        objects: dict[tuple[str, str], dict[str, dict[str, CachedObject]]] = {}
        for kv in kvs:
            parsed = parse_key(kv.key)
            if parsed is None:
                continue
            info, ns, name = parsed
            objects.setdefault((info.group, info.plural), {}).setdefault(ns, {})[name] = \
                CachedObject(_with_rv(_decode(kv.value), kv.mod_revision), kv.mod_revision)
        self._objects = objects
        self._ring.clear()
        self._ring_bytes = 0
        self.revision = rev
        self._oldest = rev
        self.close_all_watchers()
        self._notify_waiters()

    async def _feed(self) -> None:
        backoff = 0.1
        while True:
            try:
                async for batch in self.store.watch("/registry/", self.revision + 1):
                    for ev in batch:
                        self._apply(ev)
                    self._notify_waiters()
                    backoff = 0.1
                return  # the store closed its watch: it is shutting down
            except CompactedError as e:
                log.warning("watch cache: store watch compacted (%s); re-listing", e)
                await self._relist()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Resume from where the cache is (watchers keep their streams); re-list only if
                # the store has compacted that revision meanwhile (the next attempt says so).
                log.exception("watch cache: store watch failed; resuming after %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _bookmarks(self) -> None:
        while True:
            await asyncio.sleep(self.bookmark_interval)
            for ws in list(self._watchers.values()):
                for w in list(ws):
                    w.offer_bookmark(self.revision)

    # ---- applying store events -------------------------------------------------------
    def _apply(self, ev: WatchEvent) -> None:
        if ev.revision <= self.revision:
            return
        self.revision = ev.revision
        parsed = parse_key(ev.kv.key)
        if parsed is None:
            return
        info, ns, name = parsed
        by_ns = self._objects.setdefault((info.group, info.plural), {})
        names = by_ns.setdefault(ns, {})
        prev = names.get(name)
        if ev.type == "DELETE":
            names.pop(name, None)
            if not names:
                by_ns.pop(ns, None)
            if prev is None:
                prev = CachedObject(_with_rv(_decode(ev.kv.value), ev.kv.mod_revision), ev.kv.mod_revision)
            cev = CacheEvent(DELETED, ev.kv.key, info, ns, prev.at_revision(ev.revision), prev, ev.revision,
                             len(ev.kv.value))
        else:
            cur = CachedObject(_with_rv(_decode(ev.kv.value), ev.kv.mod_revision), ev.kv.mod_revision)
            names[name] = cur
            cev = CacheEvent(MODIFIED if prev is not None else ADDED, ev.kv.key, info, ns, cur, prev, ev.revision,
                             len(ev.kv.value))
        self._ring.append(cev)
        self._ring_bytes += cev.size
        # The window of resumable history is bounded in events and in bytes, whichever is hit first.
        while len(self._ring) > self.capacity or (self._ring_bytes > self.max_bytes and len(self._ring) > 1):
            dropped = self._ring.popleft()
            self._ring_bytes -= dropped.size
            self._oldest = dropped.revision
        for w in list(self._watchers.get((info.group, info.plural), ())):
            w.offer(cev)

    def _notify_waiters(self) -> None:
        if not self._waiters:
            return
        keep = []
        for rev, fut in self._waiters:
            if rev <= self.revision:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((rev, fut))
        self._waiters = keep

    # ---- reads -----------------------------------------------------------------------
    async def wait_until(self, revision: int, timeout: float) -> bool:
        """Wait until the cache has seen `revision`; False on timeout."""
        if revision <= self.revision:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, fut))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False

    def get(self, info: ResourceInfo, namespace: str | None, name: str) -> CachedObject | None:
        return self._objects.get((info.group, info.plural), {}).get(namespace or "", {}).get(name)

    def list(self, info: ResourceInfo, namespace: str | None = None) -> list[CachedObject]:
        """Objects of a resource (in one namespace, or all), sorted by key as the store lists them."""
        by_ns = self._objects.get((info.group, info.plural), {})
        out: list[CachedObject] = []
        if info.namespaced and namespace:
            names = by_ns.get(namespace, {})
            out.extend(names[n] for n in sorted(names))
        else:
            for ns in sorted(by_ns):
                names = by_ns[ns]
                out.extend(names[n] for n in sorted(names))
        return out

    def list_at(self, info: ResourceInfo, namespace: str | None, revision: int) -> list[CachedObject]:
        """The objects as they were at `revision` (resourceVersionMatch=Exact): the current state
        with the changes after `revision` undone from the history ring. 410 Expired when the
        ring no longer reaches back that far; `revision` must not be ahead of the cache."""
        if revision < self._oldest:
            raise gone("The resourceVersion for the provided list is too old.")
        state = {_ns_name_of(co.obj): co for co in self.list(info, namespace)}
        for ev in reversed(self._ring):
            if ev.revision <= revision:
                break
            if ev.info is not info or (info.namespaced and namespace and ev.namespace != namespace):
                continue
            key = _ns_name_of(ev.cur.obj)
            if ev.prev is None:
                state.pop(key, None)
            else:
                state[key] = ev.prev
        return [state[k] for k in sorted(state)]

    def count(self, info: ResourceInfo) -> int:
        return sum(len(v) for v in self._objects.get((info.group, info.plural), {}).values())

    # ---- watches ---------------------------------------------------------------------
    def watch(self, info: ResourceInfo, namespace: str | None, *, resource_version: int | None,
              label_selector: Matcher | None = None, field_selector: Matcher | None = None,
              encoding: Encoding = JSON_ENCODING, bookmarks: bool = False,
              send_initial_events: bool | None = None) -> Watcher:
        """Start a watch. `resource_version` None (or 0): current state as ADDED, then changes;
        N: changes after N. Raises StatusError 410 when N is older than the cache's window.

        `send_initial_events` True: the current state as ADDED whatever `resource_version` is
        (the caller waits until the cache has reached it), then a bookmark annotated
        k8s.io/initial-events-end when bookmarks are allowed; False: no initial state, changes
        after `resource_version` or from now."""
        if send_initial_events is False and not resource_version:
            w = Watcher(self, info, namespace, label_selector, field_selector, encoding,
                        self.revision, self.watcher_buffer, bookmarks)
        elif resource_version and not send_initial_events:
            if resource_version < self._oldest:
                raise gone(f"too old resource version: {resource_version} ({self._oldest})")
            w = Watcher(self, info, namespace, label_selector, field_selector, encoding,
                        resource_version, self.watcher_buffer, bookmarks)
            for ev in self._events_after(resource_version, info):
                w.offer(ev)
        else:
            w = Watcher(self, info, namespace, label_selector, field_selector, encoding,
                        self.revision, self.watcher_buffer, bookmarks)
            w.offer_initial(self.list(info, namespace if info.namespaced else None))
            w.offer_initial_end(self.revision)
        if not w.closed:
            self._watchers.setdefault((info.group, info.plural), set()).add(w)
            if self.metrics is not None:
                self.metrics.watchers.labels(resource_label(info)).inc()
        return w

    def _events_after(self, revision: int, info: ResourceInfo) -> list[CacheEvent]:
        out: list[CacheEvent] = []
        for ev in reversed(self._ring):
            if ev.revision <= revision:
                break
            if ev.info is info:
                out.append(ev)
        out.reverse()
        return out

    def _remove(self, w: Watcher) -> None:
        ws = self._watchers.get((w.info.group, w.info.plural))
        if ws and w in ws:
            ws.discard(w)
            if self.metrics is not None:
                self.metrics.watchers.labels(resource_label(w.info)).dec()

    def watcher_count(self, info: ResourceInfo | None = None) -> int:
        if info is not None:
            return len(self._watchers.get((info.group, info.plural), ()))
        return sum(len(ws) for ws in self._watchers.values())

    def _count_encode(self, info: ResourceInfo) -> Callable[[str], None]:
        metrics = self.metrics
        if metrics is None:
            return _noop
        label = resource_label(info)
        return lambda enc: metrics.watch_serializations.labels(label, enc).inc()


# The annotation of the bookmark that ends a watch's initial events (WatchList).
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _ns_name_of(obj: dict[str, Any]) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return md.get("namespace") or "", md.get("name") or ""


def _noop(_: str) -> None:
    return None


def _with_rv(obj: dict[str, Any], revision: int) -> dict[str, Any]:
    md = obj.get("metadata")
    if not isinstance(md, dict):
        md = obj["metadata"] = {}
    md["resourceVersion"] = str(revision)
    return obj


def now() -> float:
    return time.time()
