"""The etcd v3 backend (`etcd://h:p[,h:p]`): distributed mode, over gRPC with the stubs aetcd ships.

aetcd's own Client talks to one endpoint and hides the watch protocol's compact_revision and
stream breaks, so this module drives the gRPC stubs directly:
- one channel per endpoint; a call goes to the active endpoint and moves on to the next one when
  a member does not answer, until `request_timeout` has passed (then StoreUnavailableError);
- writes are etcd transactions whose compare is the compare-and-swap itself, so re-sending one
  after an ambiguous failure (the member died after receiving it) can never apply it twice; a
  re-sent write whose compare fails and finds exactly its own value in place reports success;
- revisions are etcd's: a key's mod_revision is its resourceVersion;
- compaction is shifted by one: `compact(rev)` compacts etcd at `rev - 1`, so an event at `rev`
  still gets its prev_kv, and `compacted_revision` is etcd's compact revision + 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from aetcd import rpc

from sliceplane.store._core import WriteOp
from sliceplane.store.base import (
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatchError,
    Store,
    StoreError,
    StoreOutcomeUnknownError,
    StoreUnavailableError,
    ValueTooLargeError,
    WatchEvent,
)

log = logging.getLogger(__name__)

# Keys per Range page: a large list never becomes one huge gRPC message.
RANGE_PAGE = 5000

# Asks a member to fail a request or a watch at once when it has no leader (the member is cut off
# from the quorum), instead of holding it; the client then tries another member.
_REQUIRE_LEADER = (("hasleader", "true"),)

_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]

_EQUAL = rpc.Compare.CompareResult.Value("EQUAL")
_TARGET_CREATE = rpc.Compare.CompareTarget.Value("CREATE")
_TARGET_MOD = rpc.Compare.CompareTarget.Value("MOD")
_DELETE = rpc.Event.EventType.Value("DELETE")


# ---- pure helpers ----


def parse_endpoint(endpoint: str) -> str:
    """A gRPC target from "h:p", "http://h:p" or "http://h:p/" (TLS is not supported)."""
    target = endpoint.strip()
    if target.startswith("https://"):
        raise ValueError(f"etcd endpoint {endpoint!r}: TLS is not supported")
    if target.startswith("http://"):
        target = target[len("http://"):]
    target = target.rstrip("/")
    if not target or ":" not in target:
        raise ValueError(f"etcd endpoint {endpoint!r}: expected host:port")
    return target


def encode_key(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


def decode_key(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


def prefix_range(prefix: str) -> tuple[bytes, bytes]:
    """etcd's [key, range_end) for every key starting with `prefix` ("" is every key)."""
    start = encode_key(prefix)
    if not start:
        return b"\0", b"\0"
    end = bytearray(start)
    while end and end[-1] == 0xFF:
        end.pop()
    if not end:
        return start, b"\0"
    end[-1] += 1
    return start, bytes(end)


def to_key_value(kv: Any) -> KeyValue:
    return KeyValue(decode_key(kv.key), bytes(kv.value), kv.create_revision, kv.mod_revision)


def to_watch_event(event: Any) -> WatchEvent | None:
    """Our event for an etcd event; None when its prev_kv is missing but needed (compacted away)."""
    prev = to_key_value(event.prev_kv) if event.HasField("prev_kv") and event.prev_kv.key else None
    revision = event.kv.mod_revision
    if event.type == _DELETE:
        if prev is None:
            return None
        return WatchEvent("DELETE", KeyValue(prev.key, prev.value, prev.create_revision, revision), prev, revision)
    kv = to_key_value(event.kv)
    if prev is None and event.kv.version > 1:
        return None
    return WatchEvent("PUT", kv, prev, revision)


def applied_by_earlier_attempt(op: WriteOp, current: KeyValue | None) -> bool:
    """After a re-sent write's compare failed: does `current` show that an earlier attempt of it applied?

    An earlier attempt that applied leaves exactly our value in place (a create: never updated
    since; an update: a newer mod_revision than expected). Another writer storing the very same
    bytes in between is indistinguishable, and harmless: the key holds what we wrote.
    """
    if current is None or current.value != op.value:
        return False
    if op.kind == "create":
        return current.create_revision == current.mod_revision
    if op.kind == "update":
        return op.expected is not None and current.mod_revision > op.expected
    return False


def is_delete_of(event: WatchEvent | None, expected_mod_revision: int) -> bool:
    """Is `event` (the key's first change after `expected_mod_revision`) a delete that matched that revision?"""
    return (
        event is not None
        and event.type == "DELETE"
        and event.prev_kv is not None
        and event.prev_kv.mod_revision == expected_mod_revision
    )


class _EtcdRefused(Exception):
    """etcd answered with an error that says nothing was applied and retrying will not help."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def classify(error: grpc.aio.AioRpcError) -> Exception | None:
    """The store error for an etcd answer; None when the call should go to another member."""
    code, details = error.code(), error.details() or ""
    if "request is too large" in details or "larger than max" in details:
        return ValueTooLargeError(details)
    if "required revision has been compacted" in details or "future revision" in details:
        return _EtcdRefused(code, details)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return None
    if code == grpc.StatusCode.UNKNOWN or "too many requests" in details:
        # "etcdserver: leader changed", "request timed out", "no leader", "server stopped"...
        return None
    return StoreError(f"etcd: {details or code.name}")


@dataclass
class _Endpoint:
    target: str
    channel: grpc.aio.Channel
    kv: Any
    watch: Any
    maintenance: Any


class EtcdStore(Store):
    """A Store on an etcd v3 cluster. Many EtcdStores (API servers) may share one cluster.

    `compact_interval` seconds apart, compacts to keep the last `compact_retain` revisions (None:
    never; etcd's own --auto-compaction may do it instead). `request_timeout` bounds how long a
    call keeps trying members before StoreUnavailableError; one attempt waits `attempt_timeout` at
    most, since a proposal that reached a leader just before it died is never answered (etcd
    times it out only after 5 s + 2 election timeouts), and re-sending is safe.
    """

    def __init__(
        self,
        endpoints: Iterable[str],
        *,
        compact_interval: float | None = 300,
        compact_retain: int = 10_000,
        request_timeout: float = 10.0,
        attempt_timeout: float = 2.0,
    ) -> None:
        self._targets = [parse_endpoint(e) for e in endpoints]
        if not self._targets:
            raise ValueError("etcd store needs at least one endpoint")
        if compact_retain < 1:
            raise ValueError("compact_retain must be at least 1")
        self.compact_interval = compact_interval
        self.compact_retain = compact_retain
        self.request_timeout = request_timeout
        self.attempt_timeout = attempt_timeout
        self._endpoints: list[_Endpoint] = []
        self._active = 0
        self._compacted = 0
        self._closed = False
        self._closing = asyncio.Event()
        self._compactor: asyncio.Task[None] | None = None
        self._watches: weakref.WeakSet[EtcdWatchStream] = weakref.WeakSet()
        # Counters for tests and metrics: calls moved to another member, ambiguous writes re-sent.
        self.failovers = 0
        self.resent_writes = 0

    # ---- lifecycle ----

    async def start(self) -> None:
        self._endpoints = []
        for target in self._targets:
            channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
            self._endpoints.append(
                _Endpoint(
                    target,
                    channel,
                    rpc.KVStub(channel),
                    rpc.WatchStub(channel),
                    rpc.MaintenanceStub(channel),
                )
            )
        try:
            head = await self.current_revision()
            self._compacted = await self._discover_compacted(head)
        except BaseException:
            await self._close_channels()
            raise
        if self.compact_interval is not None:
            self._compactor = asyncio.get_running_loop().create_task(self._compact_periodically())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        if self._compactor is not None:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._compactor
        for watch in list(self._watches):
            watch._on_store_closed()
        await self._close_channels()

    async def _close_channels(self) -> None:
        for endpoint in self._endpoints:
            with contextlib.suppress(Exception):
                await endpoint.channel.close()

    @property
    def endpoints(self) -> list[str]:
        return list(self._targets)

    @property
    def watcher_count(self) -> int:
        """Open watches (for metrics and tests)."""
        return sum(1 for w in self._watches if w._open)

    # ---- calls with failover ----

    async def _call(self, service: str, method: str, request: Any) -> tuple[Any, bool]:
        """The response of the first member that answers, and whether an earlier attempt may have
        reached a member (so a write may already be applied)."""
        deadline = time.monotonic() + self.request_timeout
        maybe_sent = False
        tried = 0
        backoff = 0.05
        last: Exception | None = None
        if not self._endpoints:
            raise StoreUnavailableError("etcd store not started")
        while True:
            if self._closed:
                raise StoreUnavailableError("store closed")
            index = self._active
            endpoint = self._endpoints[index]
            remaining = deadline - time.monotonic()
            try:
                stub = getattr(endpoint, service)
                response = await getattr(stub, method)(
                    request, timeout=max(0.05, min(remaining, self.attempt_timeout)), metadata=_REQUIRE_LEADER
                )
                return response, maybe_sent
            except grpc.aio.AioRpcError as e:
                mapped = classify(e)
                if mapped is not None:
                    raise mapped from None
                last = e
                maybe_sent = True
            if self._closed:
                raise StoreUnavailableError("store closed")
            if self._active == index:
                self._active = (index + 1) % len(self._endpoints)
                self.failovers += 1
            tried += 1
            if time.monotonic() >= deadline:
                detail = last.details() if isinstance(last, grpc.aio.AioRpcError) else str(last)
                message = f"no etcd member answered within {self.request_timeout}s: {detail}"
                if maybe_sent and method == "Txn":
                    raise StoreOutcomeUnknownError(message)
                raise StoreUnavailableError(message)
            if tried % len(self._endpoints) == 0:
                await asyncio.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                backoff = min(backoff * 2, 0.5)

    async def _txn(self, request: Any) -> tuple[Any, bool]:
        return await self._call("kv", "Txn", request)

    # ---- reads ----

    async def get(self, key: str) -> KeyValue | None:
        response, _ = await self._call("kv", "Range", rpc.RangeRequest(key=encode_key(key)))
        return to_key_value(response.kvs[0]) if response.kvs else None

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        start, end = prefix_range(prefix)
        while True:
            try:
                return await self._range_pages(start, end)
            except _EtcdRefused as e:
                # Compacted between two pages of one read: read again at a newer revision.
                if "compacted" not in e.details:
                    raise StoreError(f"etcd: {e.details}") from None

    async def _range_pages(self, start: bytes, end: bytes) -> tuple[list[KeyValue], int]:
        kvs: list[KeyValue] = []
        revision = 0
        key = start
        while True:
            request = rpc.RangeRequest(key=key, range_end=end, limit=RANGE_PAGE, revision=revision)
            response, _ = await self._call("kv", "Range", request)
            if revision == 0:
                revision = response.header.revision
            kvs.extend(to_key_value(kv) for kv in response.kvs)
            if not response.more or not response.kvs:
                return kvs, revision
            key = bytes(response.kvs[-1].key) + b"\0"

    async def current_revision(self) -> int:
        response, _ = await self._call("kv", "Range", rpc.RangeRequest(key=b"\0", count_only=True))
        return int(response.header.revision)

    # ---- writes ----

    async def create(self, key: str, value: bytes) -> KeyValue:
        k, value = encode_key(key), bytes(value)
        request = rpc.TxnRequest(
            compare=[rpc.Compare(result=_EQUAL, target=_TARGET_CREATE, key=k, create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )
        response, resent = await self._txn(request)
        if response.succeeded:
            revision = response.header.revision
            return KeyValue(key, value, revision, revision)
        current = _first_range_kv(response)
        if resent and applied_by_earlier_attempt(WriteOp("create", key, value), current):
            self.resent_writes += 1
            return current  # our first attempt was applied; the re-sent one found it
        raise KeyExistsError(key)

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        k, value = encode_key(key), bytes(value)
        request = rpc.TxnRequest(
            compare=[rpc.Compare(result=_EQUAL, target=_TARGET_MOD, key=k, mod_revision=expected_mod_revision)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, prev_kv=True))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )
        response, resent = await self._txn(request)
        if response.succeeded:
            prev = response.responses[0].response_put.prev_kv
            return KeyValue(key, value, prev.create_revision, response.header.revision)
        current = _first_range_kv(response)
        if resent and applied_by_earlier_attempt(WriteOp("update", key, value, expected_mod_revision), current):
            self.resent_writes += 1
            return current
        raise RevisionMismatchError(key, current)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> WatchEvent:
        k = encode_key(key)
        compare = []
        if expected_mod_revision is not None:
            compare = [rpc.Compare(result=_EQUAL, target=_TARGET_MOD, key=k, mod_revision=expected_mod_revision)]
        request = rpc.TxnRequest(
            compare=compare,
            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k, prev_kv=True))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )
        response, resent = await self._txn(request)
        if response.succeeded:
            deleted = response.responses[0].response_delete_range
            if deleted.prev_kvs:
                prev = to_key_value(deleted.prev_kvs[0])
                revision = response.header.revision
                kv = KeyValue(key, prev.value, prev.create_revision, revision)
                return WatchEvent("DELETE", kv, prev, revision)
            current = None
        else:
            current = _first_range_kv(response)
        if resent and expected_mod_revision is not None:
            # The key changed since `expected`: the history says whether an earlier attempt deleted it.
            event = await self._next_event_of(key, expected_mod_revision + 1)
            if is_delete_of(event, expected_mod_revision):
                assert event is not None
                self.resent_writes += 1
                return event
        elif resent and current is None:
            # An unconditional delete whose earlier attempt may have removed the key: its event is unknown.
            raise StoreUnavailableError(f"delete of {key}: outcome unknown after an etcd member failed")
        if current is None and expected_mod_revision is None:
            raise KeyNotFoundError(key)
        raise RevisionMismatchError(key, current)

    async def _next_event_of(self, key: str, start_revision: int) -> WatchEvent | None:
        """The first event of exactly `key` at or after `start_revision` (None: compacted away)."""
        stream = EtcdWatchStream(self, key, start_revision)
        try:
            async with asyncio.timeout(self.request_timeout):
                while True:
                    for event in await anext(stream):
                        if event.kv.key == key:
                            return event
        except CompactedError:
            return None
        except TimeoutError:
            raise StoreUnavailableError(f"delete of {key}: outcome unknown after an etcd member failed") from None
        finally:
            await stream.aclose()

    # ---- watch ----

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[WatchEvent]]:
        stream = EtcdWatchStream(self, prefix, start_revision)
        self._watches.add(stream)
        return stream

    # ---- compaction ----

    @property
    def compacted_revision(self) -> int:
        return self._compacted

    def _learn_compacted(self, etcd_compact_revision: int) -> int:
        """etcd reported its compact revision (another API server may have compacted): ours is one more."""
        self._compacted = max(self._compacted, etcd_compact_revision + 1)
        return self._compacted

    async def compact(self, revision: int) -> None:
        if revision <= self._compacted:
            return
        head = await self.current_revision()
        if revision > head:
            raise StoreError(f"cannot compact to future revision {revision} (current {head})")
        if revision > 1:
            try:
                await self._call("kv", "Compact", rpc.CompactionRequest(revision=revision - 1))
            except _EtcdRefused as e:
                if "compacted" not in e.details:
                    raise StoreError(f"etcd: {e.details}") from None
        self._compacted = max(self._compacted, revision)

    async def _discover_compacted(self, head: int) -> int:
        """Our compacted revision from etcd's: the oldest revision etcd can still read, found by bisection."""
        if await self._readable_at(1):
            return 0
        lo, hi = 1, max(1, head)  # lo is unreadable, hi is readable
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if await self._readable_at(mid):
                hi = mid
            else:
                lo = mid
        return hi + 1

    async def _readable_at(self, revision: int) -> bool:
        try:
            await self._call("kv", "Range", rpc.RangeRequest(key=b"\0", count_only=True, revision=revision))
        except _EtcdRefused as e:
            if "compacted" in e.details:
                return False
            raise StoreError(f"etcd: {e.details}") from None
        return True

    async def _compact_periodically(self) -> None:
        assert self.compact_interval is not None
        while True:
            await asyncio.sleep(self.compact_interval)
            try:
                head = await self.current_revision()
                target = head - self.compact_retain + 1
                if target > self._compacted:
                    await self.compact(target)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("etcd store: periodic compaction failed", exc_info=True)


def _first_range_kv(response: Any) -> KeyValue | None:
    kvs = response.responses[0].response_range.kvs
    return to_key_value(kvs[0]) if kvs else None


class EtcdWatchStream:
    """One etcd watch (with prev_kv) that survives member failures.

    Each etcd response with events is one batch. When the stream breaks, it is opened again on
    another member from the revision after the last delivered event, and events at or before that
    are dropped, so none is lost or repeated. Gives up with StoreUnavailableError after the store's
    `request_timeout` without any member taking the watch.
    """

    def __init__(self, store: EtcdStore, prefix: str, start_revision: int) -> None:
        self._store = store
        self._prefix = prefix
        self._next = max(1, start_revision)
        self._requested = start_revision
        self._call: Any = None
        self._endpoint_index = 0
        self._started = False
        self._open = False
        self._closed = False

    def __aiter__(self) -> EtcdWatchStream:
        return self

    async def __anext__(self) -> list[WatchEvent]:
        if self._closed:
            raise StopAsyncIteration
        store = self._store
        try:
            if not self._started:
                self._started = True
                if store._closed:
                    raise StoreUnavailableError("store closed")
                if self._requested < store._compacted:
                    raise CompactedError(self._requested, store._compacted)
                self._open = True
            return await self._next_batch()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if store._closed and (task is None or not task.cancelling()):
                self._close()
                raise StoreUnavailableError("store closed") from None
            self._close()
            raise
        except Exception:
            self._close()
            raise

    async def _next_batch(self) -> list[WatchEvent]:
        store = self._store
        failing_since: float | None = None
        tried = 0
        last_error = ""
        while True:
            if store._closed:
                raise StoreUnavailableError("store closed")
            try:
                if self._call is None:
                    await self._open_stream()
                response = await self._call.read()
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as e:
                if store._closed:
                    raise StoreUnavailableError("store closed") from None
                last_error = (e.details() or e.code().name) if isinstance(e, grpc.aio.AioRpcError) else str(e)
                response = None
            if response is not None and response is not grpc.aio.EOF:
                if response.compact_revision:
                    compacted = store._learn_compacted(response.compact_revision)
                    raise CompactedError(self._next, compacted)
                if not response.canceled:
                    batch = self._convert(response.events)
                    if batch:
                        return batch
                    failing_since = None
                    continue
                last_error = response.cancel_reason or "watch canceled"
            # The stream broke (member down, no leader, EOF): resume on the next member.
            if store._closed:
                raise StoreUnavailableError("store closed")
            self._drop_call()
            now = time.monotonic()
            if failing_since is None:
                failing_since = now
            elif now - failing_since > store.request_timeout:
                raise StoreUnavailableError(f"etcd watch: no member answered: {last_error}")
            tried += 1
            if store._active == self._endpoint_index:
                store._active = (self._endpoint_index + 1) % len(store._endpoints)
                store.failovers += 1
            if tried % len(store._endpoints) == 0:
                await asyncio.sleep(min(0.5, 0.05 * tried))

    async def _open_stream(self) -> None:
        store = self._store
        self._endpoint_index = store._active
        endpoint = store._endpoints[self._endpoint_index]
        key, end = prefix_range(self._prefix)
        call = endpoint.watch.Watch(metadata=_REQUIRE_LEADER)
        self._call = call
        create = rpc.WatchCreateRequest(key=key, range_end=end, start_revision=self._next, prev_kv=True)
        # A write on a call that gets cancelled (store closing) may never finish: race it with the close.
        writing = asyncio.ensure_future(call.write(rpc.WatchRequest(create_request=create)))
        closing = asyncio.ensure_future(store._closing.wait())
        try:
            done, _ = await asyncio.wait({writing, closing}, timeout=store.request_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        if store._closed:
            writing.cancel()
            raise StoreUnavailableError("store closed")
        if writing not in done:
            writing.cancel()
            raise grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(),
                                       grpc.aio.Metadata(), "watch create timed out")
        writing.result()

    def _convert(self, events: Any) -> list[WatchEvent]:
        batch: list[WatchEvent] = []
        for raw in events:
            if raw.kv.mod_revision < self._next:
                continue  # already delivered before a resume
            event = to_watch_event(raw)
            if event is None:
                # Its prev_kv was compacted away while the watch was catching up.
                raise CompactedError(raw.kv.mod_revision, max(self._store._compacted, raw.kv.mod_revision + 1))
            batch.append(event)
        if batch:
            self._next = batch[-1].revision + 1
        return batch

    async def aclose(self) -> None:
        self._close()

    def _on_store_closed(self) -> None:
        if self._call is not None:
            self._call.cancel()

    def _drop_call(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            call.cancel()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._open = False
        with contextlib.suppress(Exception):
            self._drop_call()

    def __del__(self) -> None:
        self._close()
