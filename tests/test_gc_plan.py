"""Table tests of the garbage collector's decisions."""

from __future__ import annotations

from typing import Any

import pytest

from sliceplane.api.registry import EVENTS, PODS, REPLICA_SETS
from sliceplane.controllers.garbagecollector import (
    GCAction,
    blocking_dependents,
    classify_owner,
    gc_resources,
    plan_attempt_to_delete,
)


def ref(uid: str, block: bool = True) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"rs-{uid}", "uid": uid, "controller": True,
            "blockOwnerDeletion": block}


def obj(uid: str, refs: list[dict] | None = None, *, finalizers: list[str] | None = None,
        deleting: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"name": f"o-{uid}", "namespace": "ns", "uid": uid}
    if refs is not None:
        md["ownerReferences"] = refs
    if finalizers:
        md["finalizers"] = finalizers
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": md}


@pytest.mark.parametrize(
    ("owner", "state"),
    [
        (None, "absent"),
        (obj("other"), "absent"),
        (obj("o1"), "solid"),
        (obj("o1", deleting=True), "solid"),
        (obj("o1", deleting=True, finalizers=["foregroundDeletion"]), "waiting"),
        (obj("o1", finalizers=["foregroundDeletion"]), "solid"),
    ],
    ids=["gone", "uid-reused", "exists", "deleting-background", "foreground", "finalizer-without-deletion"],
)
def test_classify_owner(owner: dict | None, state: str) -> None:
    assert classify_owner(ref("o1"), owner) == state


@pytest.mark.parametrize(
    ("item", "states", "has_deps", "action"),
    [
        (obj("d", [ref("a")]), {"a": "solid"}, False, GCAction("none")),
        (obj("d", [ref("a")]), {"a": "absent"}, False, GCAction("delete", policy="Background")),
        (obj("d", [ref("a"), ref("b")]), {"a": "absent", "b": "solid"}, False, GCAction("remove_refs", ("a",))),
        (obj("d", [ref("a"), ref("b")]), {"a": "absent", "b": "absent"}, False,
         GCAction("delete", policy="Background")),
        (obj("d", [ref("a"), ref("b")]), {"a": "waiting", "b": "solid"}, True, GCAction("remove_refs", ("a",))),
        (obj("d", [ref("a")]), {"a": "waiting"}, True, GCAction("delete", policy="Foreground")),
        (obj("d", [ref("a")]), {"a": "waiting"}, False, GCAction("delete", policy="Background")),
        (obj("d", [ref("a")], finalizers=["orphan"]), {"a": "absent"}, True, GCAction("delete", policy="Orphan")),
        (obj("d", [ref("a")], finalizers=["foregroundDeletion"]), {"a": "absent"}, True,
         GCAction("delete", policy="Foreground")),
        (obj("d", [ref("a")], deleting=True), {"a": "absent"}, False, GCAction("none")),
        (obj("d", [ref("a"), ref("b")]), {"a": "absent"}, False, GCAction("none")),
        (obj("d"), {}, False, GCAction("none")),
    ],
    ids=["solid-owner", "owner-gone", "one-of-two-gone", "all-gone", "owner-waiting-other-solid",
         "waiting-with-dependents", "waiting-leaf", "orphan-finalizer", "foreground-finalizer",
         "already-deleting", "unknown-owner-state", "no-owners"],
)
def test_plan_attempt_to_delete(item: dict, states: dict, has_deps: bool, action: GCAction) -> None:
    assert plan_attempt_to_delete(item, states, has_deps) == action


def test_blocking_dependents() -> None:
    deps = [obj("d1", [ref("o", block=True)]), obj("d2", [ref("o", block=False)]), obj("d3", [ref("x")])]
    assert [d["metadata"]["uid"] for d in blocking_dependents("o", deps)] == ["d1"]


def test_gc_watches_every_kind_but_events() -> None:
    kinds = gc_resources()
    assert EVENTS not in kinds
    assert PODS in kinds and REPLICA_SETS in kinds
