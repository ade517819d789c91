"""Tables for the small pure pieces: write tracker, trigger times, pod helpers."""

from __future__ import annotations

from typing import Any

import pytest

from sliceplane.controllers import podutil
from sliceplane.controllers.endpointslice.tracker import WriteTracker
from sliceplane.controllers.endpointslice.triggertime import TriggerTimeTracker
from test_endpointslice_reconciler import T0, iso, new_pod, new_service

Obj = dict[str, Any]
KEY = "default/svc"


def sl(uid: str, rv: str | int) -> Obj:
    return {"metadata": {"uid": uid, "resourceVersion": str(rv)}}


# ---- write tracker ------------------------------------------------------------------------

def test_tracker_stale_until_informer_shows_write() -> None:
    t = WriteTracker()
    assert not t.stale(KEY)
    t.wrote(KEY, sl("a", 10))
    assert t.stale(KEY)
    assert t.observe(KEY, sl("a", 9)) is False and t.stale(KEY)  # an older version still in flight
    assert t.observe(KEY, sl("a", 10)) is False  # our own echo: not news
    assert not t.stale(KEY)
    assert t.observe(KEY, sl("a", 11)) is True  # someone else's write: news


def test_tracker_newer_version_settles_and_is_news() -> None:
    t = WriteTracker()
    t.wrote(KEY, sl("a", 10))
    assert t.observe(KEY, sl("a", 12)) is True
    assert not t.stale(KEY)


def test_tracker_deletions() -> None:
    t = WriteTracker()
    t.expect_deletion(KEY, sl("a", 0), cached=sl("a", 5))
    assert t.stale(KEY)
    assert t.observe(KEY, sl("a", 6)) is False and t.stale(KEY)
    assert t.observe_deletion(KEY, sl("a", 6)) is False
    assert not t.stale(KEY)
    assert t.observe_deletion(KEY, sl("b", 1)) is True  # not ours
    t.wrote(KEY, sl("c", 3))
    assert t.observe_deletion(KEY, sl("c", 3)) is True  # we wrote it, someone else deleted it
    assert not t.stale(KEY)


RACES = [
    # (id, what the informer already holds when the response arrives, stale afterwards)
    ("event-first", sl("a", 10), False),
    ("event-first-newer", sl("a", 11), False),
    ("event-later", sl("a", 9), True),
    ("not-cached-yet", None, True),
    ("other-uid-cached", sl("z", 10), True),
]


@pytest.mark.parametrize("cached, stale", [r[1:] for r in RACES], ids=[r[0] for r in RACES])
def test_tracker_write_response_racing_watch_event(cached: Obj | None, stale: bool) -> None:
    t = WriteTracker()
    t.wrote(KEY, sl("a", 10), cached)
    assert t.stale(KEY) is stale


def test_tracker_deletion_already_seen_and_service_recreated() -> None:
    t = WriteTracker()
    t.wrote(KEY, sl("a", 10))
    t.expect_deletion(KEY, sl("a", 10), cached=None)  # the deletion event came first
    assert not t.stale(KEY)
    t.wrote(KEY, sl("b", 11))
    assert t.stale(KEY, "svc-uid-1")
    assert not t.stale(KEY, "svc-uid-2"), "a recreated Service does not wait for writes of the old one"


# ---- trigger times ------------------------------------------------------------------------

def test_trigger_time_first_sync_is_service_creation() -> None:
    t = TriggerTimeTracker()
    svc = new_service(created=T0 - 100)
    assert t.observe_all(svc, [new_pod(1, ready_time=T0)]) == T0 - 100


def test_trigger_time_oldest_change_since_last_sync() -> None:
    t = TriggerTimeTracker()
    svc = new_service(created=T0 - 100)
    pods = [new_pod(i, ready_time=T0) for i in range(3)]
    t.observe_all(svc, pods)
    assert t.observe_all(svc, pods) is None  # nothing changed: the annotation is removed
    pods[1] = new_pod(1, ready_time=T0 + 20)
    pods[2] = new_pod(2, ready_time=T0 + 10)
    assert t.observe_all(svc, pods) == T0 + 10
    assert t.observe_changes(svc, {"pod0": new_pod(0, ready_time=T0 + 30)}) == T0 + 30
    assert t.observe_changes(svc, {"pod0": None}) is None
    assert t.observe_changes(svc, {"pod0": new_pod(0, ready_time=T0 + 30)}) == T0 + 30  # back: new to us
    t.delete_service(KEY)
    assert t.observe_changes(svc, {}) == T0 - 100


# ---- pod helpers --------------------------------------------------------------------------

FIND_PORT = [
    ("number", {"port": 80, "targetPort": 8080}, [], 8080),
    ("numeric-string", {"port": 80, "targetPort": "8081"}, [], 8081),
    ("defaults-to-port", {"port": 80}, [], 80),
    ("named", {"port": 80, "targetPort": "http", "protocol": "TCP"},
     [{"name": "http", "containerPort": 9000}], 9000),
    ("named-wrong-protocol", {"port": 80, "targetPort": "http", "protocol": "UDP"},
     [{"name": "http", "containerPort": 9000, "protocol": "TCP"}], None),
    ("named-missing", {"port": 80, "targetPort": "http"}, [], None),
]


@pytest.mark.parametrize("svc_port, container_ports, expected", [f[1:] for f in FIND_PORT],
                         ids=[f[0] for f in FIND_PORT])
def test_find_port(svc_port: Obj, container_ports: list[Obj], expected: int | None) -> None:
    assert podutil.find_port(new_pod(1, container_ports=container_ports), svc_port) == expected


def test_find_port_in_sidecar_only() -> None:
    pod = new_pod(1)
    pod["spec"]["initContainers"] = [
        {"name": "init", "ports": [{"name": "http", "containerPort": 1}]},
        {"name": "side", "restartPolicy": "Always", "ports": [{"name": "http", "containerPort": 2}]},
    ]
    assert podutil.find_port(pod, {"port": 80, "targetPort": "http"}) == 2


def _svcs() -> list[Obj]:
    return [new_service("a", selector={"app": "web"}), new_service("b", selector={"tier": "x"}),
            new_service("c", selector={})]


def bump(pod: Obj) -> Obj:
    """The pod as a later version (a new resourceVersion), so it is not taken for a resync."""
    return {**pod, "metadata": {**pod["metadata"], "resourceVersion": "2"}}


UPDATES = [
    # (id, old pod, new pod, expected service keys)
    ("add", None, new_pod(1), {"default/a"}),
    ("delete", new_pod(1), None, {"default/a"}),
    ("resync-same-rv", new_pod(1), new_pod(1, ready=False), set()),
    ("nothing-relevant", new_pod(1), bump(new_pod(1)), set()),
    ("ready-change", new_pod(1), bump(new_pod(1, ready=False)), {"default/a"}),
    ("labels-moved", new_pod(1), bump(new_pod(1, labels={"tier": "x"})), {"default/a", "default/b"}),
    ("labels-superset", new_pod(1), bump(new_pod(1, labels={"app": "web", "tier": "x"})), {"default/b"}),
    ("labels-and-ready", new_pod(1), bump(new_pod(1, ready=False, labels={"app": "web", "tier": "x"})),
     {"default/a", "default/b"}),
    ("hostname-change", new_pod(1), bump(new_pod(1, hostname="h", subdomain="a")), {"default/a"}),
]


@pytest.mark.parametrize("old, new, expected", [u[1:] for u in UPDATES], ids=[u[0] for u in UPDATES])
def test_services_to_update(old: Obj | None, new: Obj | None, expected: set[str]) -> None:
    assert podutil.services_to_update(_svcs(), old, new) == expected


ADDRESS_TYPES = [
    ("families", {"ip_families": ("IPv6", "IPv4")}, ["IPv6", "IPv4"]),
    ("cluster-ip-v4", {"ip_families": ()}, ["IPv4"]),
    ("cluster-ip-v6", {"ip_families": (), "cluster_ip": "fd00::10"}, ["IPv6"]),
    ("headless-unknown", {"ip_families": (), "cluster_ip": "None"}, ["IPv4", "IPv6"]),
]


@pytest.mark.parametrize("svc_kw, expected", [a[1:] for a in ADDRESS_TYPES], ids=[a[0] for a in ADDRESS_TYPES])
def test_service_address_types(svc_kw: Obj, expected: list[str]) -> None:
    assert podutil.service_address_types(new_service(**svc_kw)) == expected


def test_pod_ips_fall_back_to_pod_ip_and_are_canonical() -> None:
    pod = new_pod(1, ips=["fd00:0:0::1"])
    del pod["status"]["podIPs"]
    assert podutil.pod_ips(pod) == ["fd00:0:0::1"]
    assert podutil.pod_addresses_for_family(pod, "IPv6") == ["fd00::1"]
    assert podutil.pod_addresses_for_family(pod, "IPv4") == []


def test_pod_trigger_time_is_ready_transition() -> None:
    assert podutil.pod_trigger_time(new_pod(1, ready_time=T0 + 3)) == T0 + 3
    pod = new_pod(1)
    pod["status"]["conditions"] = []
    assert podutil.pod_trigger_time(pod) is None
    assert iso(T0) == "2023-11-14T22:13:20Z"
