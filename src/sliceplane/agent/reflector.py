"""Resumable list + watch of one resource, counting what crosses the wire.

Like the client's Informer, but it reads raw watch lines (`RESTClient.watch_lines`) so that
every byte of the HTTP body is counted and decoding is timed, or skipped altogether
(`decode=False`, the counting agents). The rules:

- list, then watch from the list's resourceVersion with bookmarks;
- a broken connection or a watch the server ends: watch again from the last resourceVersion;
- a 410 Expired (or any other error event): list again, and hand the full list to `on_list`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import msgspec

from sliceplane.agent.counting import peek_event
from sliceplane.agent.metrics import AgentMetrics
from sliceplane.api.registry import ResourceInfo
from sliceplane.client.rest import APIConnectionError, ApiError, RESTClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Waits between failed attempts: 0.05 s doubling to 5 s (jittered), reset by a good list or event.
RETRY_BASE = 0.05
RETRY_CAP = 5.0


class _WatchLine(msgspec.Struct):
    type: str
    object: Obj


_decode_line = msgspec.json.Decoder(_WatchLine).decode


class _Relist(Exception):
    """The watch cannot continue from where it is: list again."""


class Reflector:
    """List + watch `info` until stopped; see the module docstring."""

    def __init__(self, client: RESTClient, info: ResourceInfo, metrics: AgentMetrics, *,
                 on_list: Callable[[list[Obj]], None] | None = None,
                 on_event: Callable[[str, Obj], None] | None = None,
                 label_selector: str | None = None, decode: bool = True, watch_timeout: int = 300,
                 name: str | None = None) -> None:
        self.client = client
        self.info = info
        self.metrics = metrics
        self.name = name or (f"{info.plural}.{info.group}" if info.group else info.plural)
        self.on_list = on_list
        self.on_event = on_event
        self.label_selector = label_selector
        self.decode = decode
        self.watch_timeout = watch_timeout
        self.resource_version = ""
        self.synced = asyncio.Event()
        self.connected = False

    async def run(self) -> None:
        need_list = True
        failures = 0
        counters = self.metrics.resource(self.name)
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    failures = 0
                got = await self._watch()
                counters.reconnects += 1
                if got:
                    failures = 0
                    continue
                # An empty stream the server ended at once: back off rather than spin.
            except _Relist:
                counters.relists += 1
                need_list = True
                continue
            except ApiError as e:
                log.warning("%s: list/watch failed: %s %s", self.name, e.code, e.message)
                need_list = True
            except APIConnectionError as e:
                log.debug("%s: disconnected: %s", self.name, e)
                counters.reconnects += 1
            finally:
                self.connected = False
            delay = min(RETRY_BASE * 2**failures, RETRY_CAP)
            failures = min(failures + 1, 20)
            await asyncio.sleep(delay * (0.5 + random.random() / 2))

    async def _list(self) -> None:
        lst = await self.client.list(self.info, label_selector=self.label_selector)
        self.metrics.resource(self.name).lists += 1
        self.resource_version = (lst.get("metadata") or {}).get("resourceVersion", "")
        if self.on_list is not None:
            self.on_list(lst.get("items") or [])
        self.synced.set()

    async def _watch(self) -> bool:
        """Follow one stream until the server ends it; True when anything arrived."""
        got = False
        timeout = int(self.watch_timeout * (1 + random.random()))
        self.connected = True
        async for line in self.client.watch_lines(
            self.info, resource_version=self.resource_version, label_selector=self.label_selector,
            allow_bookmarks=True, timeout_seconds=timeout,
        ):
            got = True
            if self.decode:
                self._handle_decoded(line)
            else:
                self._handle_raw(line)
        return got

    def _handle_raw(self, line: bytes) -> None:
        typ, rv, code = peek_event(line)
        self.metrics.observe_event(self.name, typ, len(line) + 1)
        if typ == "ERROR":
            raise _Relist(code)
        if rv:
            self.resource_version = rv

    def _handle_decoded(self, line: bytes) -> None:
        t0 = time.perf_counter()
        try:
            ev = _decode_line(line)
        except msgspec.DecodeError as e:
            raise _Relist(f"undecodable watch event: {e}") from None
        finally:
            self.metrics.resource(self.name).decode_seconds += time.perf_counter() - t0
        self.metrics.observe_event(self.name, ev.type, len(line) + 1)
        if ev.type == "ERROR":
            log.info("%s: watch error %s at %s: re-listing", self.name, ev.object.get("code"), self.resource_version)
            raise _Relist(ev.object.get("code"))
        rv = (ev.object.get("metadata") or {}).get("resourceVersion") or ""
        if ev.type != "BOOKMARK" and self.on_event is not None:
            self.on_event(ev.type, ev.object)
        if rv:
            self.resource_version = rv
