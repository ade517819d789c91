"""The incremental EndpointSliceCache gives exactly what a full merge of the same slices gives."""

from __future__ import annotations

import random

import pytest

from sliceplane.agent.endpointslicecache import EndpointSliceCache
from sliceplane.agent.servicetable import (
    EndpointInfo,
    PortGroup,
    ServicePortName,
    SliceInfo,
    merge_endpoints,
)

HTTP = (("http", 80, "TCP"),)
SPN = ServicePortName("default", "web", "http", "TCP")


def info(*eps: EndpointInfo, ports: tuple[tuple[str, int, str], ...] = HTTP, service: str = "web") -> SliceInfo:
    return SliceInfo("default", service, (PortGroup(ports, eps),))


def ep(address: str, *, ready: bool = True, terminating: bool = False, node: str | None = "node-1") -> EndpointInfo:
    return EndpointInfo(address, ready, ready or terminating, terminating, node)


def full_merge(state: dict[str, SliceInfo], service: str = "default/web") -> dict:
    return merge_endpoints([state[k] for k in sorted(state) if state[k].service_key == service])


# (name, events [(slice key, info or None)], the Services reported changed by the last event, the merged addresses)
CASES = [
    ("add", [("default/a", info(ep("10.0.0.1")))], {"default/web"}, ["10.0.0.1"]),
    ("delete-last", [("default/a", info(ep("10.0.0.1"))), ("default/a", None)], {"default/web"}, []),
    ("same-again-is-no-change", [("default/a", info(ep("10.0.0.1"))), ("default/a", info(ep("10.0.0.1")))],
     set(), ["10.0.0.1"]),
    ("duplicate-in-a-later-slice-is-no-change",
     [("default/a", info(ep("10.0.0.1"))), ("default/b", info(ep("10.0.0.1", node="node-2")))], set(), ["10.0.0.1"]),
    ("duplicate-in-an-earlier-slice-wins",
     [("default/b", info(ep("10.0.0.1"))), ("default/a", info(ep("10.0.0.1", node="node-2")))],
     {"default/web"}, ["10.0.0.1"]),
    ("non-terminating-copy-beats-terminating",
     [("default/a", info(ep("10.0.0.1", ready=False, terminating=True))), ("default/b", info(ep("10.0.0.1")))],
     {"default/web"}, ["10.0.0.1"]),
    ("removing-the-winner-promotes-the-other-copy",
     [("default/a", info(ep("10.0.0.1"))), ("default/b", info(ep("10.0.0.1", node="node-2"))), ("default/a", None)],
     {"default/web"}, ["10.0.0.1"]),
    ("other-family-ignored", [("default/a", info(ep("fd00::1")))], set(), []),
    ("unknown-source-deleted", [("default/zz", None)], set(), []),
    ("port-renamed", [("default/a", info(ep("10.0.0.1"))), ("default/a", info(ep("10.0.0.1"), ports=(("web", 80, "TCP"),)))],
     {"default/web"}, []),  # nothing left under the old port name
]


@pytest.mark.parametrize(("events", "changed", "addresses"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cache_cases(events: list[tuple[str, SliceInfo | None]], changed: set[str], addresses: list[str]) -> None:
    cache = EndpointSliceCache()
    state: dict[str, SliceInfo] = {}
    got: set[str] = set()
    for key, value in events:
        got = cache.update(key, value)
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    assert got == changed
    assert [e.address for e in cache.endpoints("default/web").get(SPN, ())] == addresses
    assert cache.endpoints("default/web") == full_merge(state)


def test_random_event_sequences_match_a_full_merge() -> None:
    """Seeded replay: after every event, the cache equals merge_endpoints over the slices in key
    order, and it reports a Service changed exactly when its merged endpoints changed."""
    rng = random.Random(7)
    addresses = [f"10.0.0.{i}" for i in range(12)] + ["fd00::1"]
    ports = [HTTP, (("http", 80, "TCP"), ("metrics", 9090, "TCP")), (("http", 8080, "TCP"),)]
    for _ in range(40):
        cache = EndpointSliceCache()
        state: dict[str, SliceInfo] = {}
        for _ in range(60):
            key = f"default/s{rng.randrange(6)}"
            service = rng.choice(["web", "web", "api"])
            before = {s: full_merge(state, s) for s in ("default/web", "default/api")}
            if rng.random() < 0.2:
                value = None
                state.pop(key, None)
            else:
                eps = tuple(ep(rng.choice(addresses), ready=rng.random() < 0.7, terminating=rng.random() < 0.3,
                               node=rng.choice(["node-1", "node-2", None])) for _ in range(rng.randrange(4)))
                value = info(*eps, ports=rng.choice(ports), service=service)
                state[key] = value
            changed = cache.update(key, value)
            for s in ("default/web", "default/api"):
                want = full_merge(state, s)
                assert cache.endpoints(s) == want
                assert (s in changed) == (want != before[s])
        cache.replace(list(state.items()))
        assert all(cache.endpoints(s) == full_merge(state, s) for s in ("default/web", "default/api"))
