"""An informer: a local, indexed copy of one kind of object, kept current by list + watch.

It lists, then watches from the list's resourceVersion (with bookmarks, so an idle watch still
advances). A broken connection resumes the watch from the last resourceVersion seen; a 410
Expired re-lists and hands the handlers synthetic add/update/delete events for exactly what
differs from the local copy, so handlers see one consistent stream whatever happened on the wire.

Handlers are plain callbacks run on the event loop; they should only enqueue keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sliceplane.api.meta import key_of, resource_version_of
from sliceplane.api.registry import ResourceInfo
from sliceplane.client.rest import APIConnectionError, ApiError, RESTClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]
IndexFunc = Callable[[Obj], list[str]]

# Waits between failed list/watch attempts: 0.05s doubling up to 5s, reset by any success.
RETRY_BASE = 0.05
RETRY_CAP = 5.0


@dataclass(frozen=True, slots=True)
class Delta:
    """One change to the local copy: ADDED (old None), MODIFIED, or DELETED (new None)."""

    type: Literal["ADDED", "MODIFIED", "DELETED"]
    key: str
    old: Obj | None
    new: Obj | None


def relist_diff(known: Mapping[str, Obj], items: Iterable[Obj]) -> list[Delta]:
    """What changed between the local copy and a fresh list: adds and updates in list order,
    then deletions in key order. Objects whose resourceVersion did not change are left out."""
    deltas: list[Delta] = []
    seen: set[str] = set()
    for obj in items:
        key = key_of(obj)
        seen.add(key)
        old = known.get(key)
        if old is None:
            deltas.append(Delta("ADDED", key, None, obj))
        elif resource_version_of(old) != resource_version_of(obj) or not resource_version_of(obj):
            deltas.append(Delta("MODIFIED", key, old, obj))
    for key in sorted(set(known) - seen):
        deltas.append(Delta("DELETED", key, known[key], None))
    return deltas


class Informer:
    """List + watch one resource into a local store keyed `namespace/name` (or `name`)."""

    def __init__(self, client: RESTClient, info: ResourceInfo, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 watch_timeout: int = 300) -> None:
        self.client = client
        self.info = info
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout = watch_timeout
        self.last_resource_version = ""
        self._store: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self._handlers: list[tuple[AddHandler | None, UpdateHandler | None, DeleteHandler | None]] = []
        self._synced = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self.relists = 0  # lists after the first one (410s and errors), for tests and metrics
        self.events = 0  # watch events applied

    # --- configuration ------------------------------------------------------------------------

    def add_handlers(self, on_add: AddHandler | None = None, on_update: UpdateHandler | None = None,
                     on_delete: DeleteHandler | None = None) -> None:
        """Register callbacks; objects already in the store are replayed to `on_add`."""
        self._handlers.append((on_add, on_update, on_delete))
        if on_add is not None:
            for obj in list(self._store.values()):
                self._call(on_add, obj)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        for key, obj in self._store.items():
            for value in fn(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    # --- reading ------------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        return self._store.get(key)

    def list(self) -> list[Obj]:
        return list(self._store.values())

    def keys(self) -> list[str]:
        return list(self._store)

    def __len__(self) -> int:
        return len(self._store)

    def by_index(self, name: str, value: str) -> list[Obj]:
        return [self._store[k] for k in self._indexes[name].get(value, ()) if k in self._store]

    def index_keys(self, name: str, value: str) -> set[str]:
        return set(self._indexes[name].get(value, ()))

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    # --- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until `stop()`; connection errors are retried, never raised."""
        self._stopping = False
        self._loop_task = asyncio.create_task(self._list_watch_loop(), name=f"informer-{self.info.plural}")
        try:
            await asyncio.shield(self._loop_task)
        except asyncio.CancelledError:
            self._loop_task.cancel()
            if not self._stopping:
                raise
        finally:
            if not self._loop_task.done():
                self._loop_task.cancel()

    def stop(self) -> asyncio.Future[None]:
        """Stop watching; the returned future (awaiting it is optional) resolves once run() ended."""
        self._stopping = True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = self._loop_task
        if task is None or task.done():
            fut.set_result(None)
        else:
            task.cancel()
            task.add_done_callback(lambda _t: fut.done() or fut.set_result(None))
        return fut

    async def _list_watch_loop(self) -> None:
        need_list = True
        failures = 0
        expired_in_row = 0  # 410s with no event between them: back off rather than spin
        while not self._stopping:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    failures = 0
                started = asyncio.get_running_loop().time()
                got_events = await self._watch()
                if got_events or asyncio.get_running_loop().time() - started > 1.0:
                    failures = 0
                    expired_in_row = 0
                    continue  # the server ended the watch (timeout): watch again from where we are
                log.info("%s watch ended at once without events; backing off", self.info.plural)
            except ApiError as e:
                if e.code == 410:
                    log.info("%s watch expired at %s: re-listing", self.info.plural, self.last_resource_version)
                    need_list = True
                    expired_in_row += 1
                    if expired_in_row == 1:
                        continue
                log.warning("%s list/watch failed: %s %s", self.info.plural, e.code, e.message)
                need_list = True
            except APIConnectionError as e:
                log.info("%s watch disconnected: %s", self.info.plural, e)
            delay = min(RETRY_BASE * 2**failures, RETRY_CAP)
            failures = min(failures + 1, 20)
            await asyncio.sleep(delay * (0.5 + random.random() / 2))

    async def _list(self) -> None:
        lst = await self.client.list(self.info, self.namespace, label_selector=self.label_selector,
                                     field_selector=self.field_selector)
        rv = (lst.get("metadata") or {}).get("resourceVersion", "")
        first = not self._synced.is_set()
        if not first:
            self.relists += 1
        for delta in relist_diff(self._store, lst.get("items") or []):
            self._apply(delta)
        self.last_resource_version = rv
        self._synced.set()

    async def _watch(self) -> bool:
        """Follow one watch stream until the server ends it; True if any event arrived."""
        got = False
        timeout = int(self.watch_timeout * (1 + random.random()))  # spread re-watches, as client-go does
        async for typ, obj in self.client.watch(
            self.info, self.namespace, resource_version=self.last_resource_version,
            label_selector=self.label_selector, field_selector=self.field_selector,
            allow_bookmarks=True, timeout_seconds=timeout,
        ):
            got = True
            rv = resource_version_of(obj)
            if typ == "BOOKMARK":
                if rv:
                    self.last_resource_version = rv
                continue
            key = key_of(obj)
            old = self._store.get(key)
            if typ in ("ADDED", "MODIFIED"):
                self._apply(Delta("ADDED" if old is None else "MODIFIED", key, old, obj))
            elif typ == "DELETED":
                if old is not None:
                    self._apply(Delta("DELETED", key, old, obj))
            else:
                log.warning("%s watch: unknown event type %r", self.info.plural, typ)
            self.events += 1
            if rv:
                self.last_resource_version = rv
        return got

    # --- store and dispatch -------------------------------------------------------------------

    def _apply(self, delta: Delta) -> None:
        if delta.type == "DELETED":
            self._store.pop(delta.key, None)
            self._reindex(delta.key, delta.old, None)
            final = delta.new if delta.new is not None else delta.old
            for _, _, on_delete in self._handlers:
                if on_delete is not None:
                    self._call(on_delete, final)
            return
        assert delta.new is not None
        self._store[delta.key] = delta.new
        self._reindex(delta.key, delta.old, delta.new)
        for on_add, on_update, _ in self._handlers:
            if delta.type == "ADDED":
                if on_add is not None:
                    self._call(on_add, delta.new)
            elif on_update is not None:
                self._call(on_update, delta.old, delta.new)

    def _reindex(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for name, fn in self._indexers.items():
            index = self._indexes[name]
            old_values = set(fn(old)) if old is not None else set()
            new_values = set(fn(new)) if new is not None else set()
            for v in old_values - new_values:
                keys = index.get(v)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[v]
            for v in new_values - old_values:
                index.setdefault(v, set()).add(key)

    def _call(self, fn: Callable[..., None], *args: Obj | None) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s informer handler %r failed", self.info.plural, fn)


InformerKey = tuple[str, str, str | None, str | None, str | None]


class SharedInformerFactory:
    """One Informer per (resource, namespace, selectors) for a whole process.

    Controllers that ask for the same arguments get the same Informer, so each kind is listed,
    watched, decoded and held in memory once however many controllers read it. The factory owns
    the informers: controllers register handlers and indexes but never stop them. Objects in a
    shared informer are read-only for everyone (copy before changing one).
    """

    def __init__(self, client: RESTClient, *, watch_timeout: int = 300) -> None:
        self.client = client
        self.watch_timeout = watch_timeout
        self._informers: dict[InformerKey, Informer] = {}
        self._tasks: dict[InformerKey, asyncio.Task[None]] = {}

    def informer(self, info: ResourceInfo, *, namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None) -> Informer:
        key: InformerKey = (info.group, info.plural, namespace, label_selector, field_selector)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, info, namespace=namespace, label_selector=label_selector,
                           field_selector=field_selector, watch_timeout=self.watch_timeout)
            self._informers[key] = inf
        return inf

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Run every informer not yet running (safe to call again after adding informers)."""
        for key, inf in self._informers.items():
            task = self._tasks.get(key)
            if task is None or task.done():
                self._tasks[key] = asyncio.create_task(inf.run(), name=f"informer-{inf.info.plural}")

    async def wait_synced(self) -> None:
        """Until every informer has listed once."""
        await asyncio.gather(*(inf.wait_synced() for inf in self._informers.values()))

    async def stop(self) -> None:
        tasks, self._tasks = list(self._tasks.values()), {}
        for inf in self._informers.values():
            inf.stop()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a failed run is already logged
                await t
