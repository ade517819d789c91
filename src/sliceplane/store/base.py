"""The revisioned key-value store every backend implements.

Semantics follow etcd v3, so an etcd backend maps one to one:
- one global revision, incremented by every successful write (create, update, delete);
- each key carries `create_revision` and `mod_revision`; `mod_revision` becomes the object's
  resourceVersion (the stored bytes never contain a resourceVersion);
- updates and deletes are compare-and-swap on `mod_revision`;
- `watch(prefix, start_revision)` yields every event with revision >= start_revision, in
  revision order, then follows new ones; a start below the compacted revision raises
  `CompactedError`, which the API server turns into 410 Expired;
- a write returns only once it is durable.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change. For DELETE, `kv.value` is the last stored value and `revision` the deletion's."""

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev_kv: KeyValue | None
    revision: int


class StoreError(Exception):
    pass


class KeyExistsError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionMismatchError(StoreError):
    """The compare in a compare-and-swap failed; `current` is what is stored now (None: gone)."""

    def __init__(self, key: str, current: KeyValue | None) -> None:
        super().__init__(f"revision mismatch on {key}")
        self.key = key
        self.current = current


class CompactedError(StoreError):
    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"required revision {requested} has been compacted (compacted revision {compacted})")
        self.requested = requested
        self.compacted = compacted


class WatchOverflowError(CompactedError):
    """A watcher fell more than its buffer behind and its watch was ended so writers never wait for it.

    A `CompactedError`, so code that maps CompactedError to 410 Expired (re-list) handles it; a
    consumer may instead resume with a new watch from `requested`, the first undelivered revision.
    """

    def __init__(self, requested: int, limit: int) -> None:
        StoreError.__init__(self, f"watcher fell more than {limit} events behind; resume from revision {requested}")
        self.requested = requested
        self.compacted = requested
        self.limit = limit


class ValueTooLargeError(StoreError):
    """The backend refused the value for its size (etcd's request limit)."""


class StoreUnavailableError(StoreError):
    pass


class StoreOutcomeUnknownError(StoreUnavailableError):
    """A write timed out after it may have reached the store: it may or may not be applied."""


class Store(abc.ABC):
    """Async store interface. All methods are safe to call concurrently from one event loop."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open files or connections; recover state."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def get(self, key: str) -> KeyValue | None: ...

    @abc.abstractmethod
    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        """All live keys under prefix, sorted by key, and the revision the read saw."""

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> KeyValue:
        """Raises KeyExistsError."""

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        """Raises RevisionMismatchError (current value attached, None if the key is gone)."""

    @abc.abstractmethod
    async def delete(self, key: str, expected_mod_revision: int | None = None) -> WatchEvent:
        """Returns the DELETE event. Raises KeyNotFoundError or RevisionMismatchError."""

    @abc.abstractmethod
    async def current_revision(self) -> int: ...

    @abc.abstractmethod
    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[WatchEvent]]:
        """Batches of events, in revision order. Raises CompactedError when start is compacted."""

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history before `revision`; watches from earlier revisions fail afterwards."""

    @property
    @abc.abstractmethod
    def compacted_revision(self) -> int: ...


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    """Periodic compaction, as kube-apiserver's --etcd-compaction-interval: every `interval`
    seconds, forget history older than the last `retain` revisions. `interval=None` turns it off."""

    interval: float | None = 300.0
    retain: int = 10_000


def parse_store_url(url: str) -> tuple[str, str]:
    """(kind, argument) of a store URL; ValueError says what a good one looks like.

    Checked by the CLI before anything starts, so a typo is a usage error, not a failed start.
    """
    for kind in ("memory", "sqlite", "etcd"):
        if url.startswith(f"{kind}://"):
            arg = url[len(kind) + 3:]
            break
    else:
        raise ValueError(f"unknown store URL {url!r}: expected memory://, sqlite:///path or etcd://host:port")
    if kind == "sqlite" and not arg.startswith("/"):
        raise ValueError(f"sqlite store URL needs an absolute path: sqlite:///abs/path.db (got {url!r})")
    if kind == "etcd" and not [e for e in arg.split(",") if e]:
        raise ValueError(f"etcd store URL needs at least one endpoint: etcd://host:port[,host:port] (got {url!r})")
    return kind, arg


def open_store(url: str, compaction: CompactionPolicy | None = None) -> Store:
    """`memory://`, `sqlite:///abs/path.db`, `etcd://h:p[,h:p]`.

    The memory store keeps a bounded history of its own and ignores `compaction`.
    """
    policy = compaction or CompactionPolicy()
    kind, arg = parse_store_url(url)
    if kind == "memory":
        from sliceplane.store.memory import MemoryStore

        return MemoryStore()
    if kind == "sqlite":
        from sliceplane.store.sqlite import SQLiteStore

        return SQLiteStore(arg, compact_interval=policy.interval, compact_retain=policy.retain)
    from sliceplane.store.etcd import EtcdStore

    endpoints = [e for e in arg.split(",") if e]
    return EtcdStore(endpoints, compact_interval=policy.interval, compact_retain=policy.retain)
