"""Table tests of the namespace controller's plan."""

from __future__ import annotations

from typing import Any

import pytest

from sliceplane.api.meta import rfc3339
from sliceplane.api.registry import CONFIG_MAPS, DEPLOYMENTS, NAMESPACES, PODS, SERVICES
from sliceplane.controllers.namespace import namespaced_resources, plan_namespace_cleanup

NOW = 1_700_000_000.0


def ns(deleting: bool = True, finalizers: list[str] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "team", "uid": "ns-uid"}
    if deleting:
        md["deletionTimestamp"] = rfc3339(NOW)
    return {"metadata": md, "spec": {"finalizers": ["kubernetes"] if finalizers is None else finalizers},
            "status": {"phase": "Terminating"}}


def item(name: str, deleting_until: float | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": "team", "uid": f"uid-{name}"}
    if deleting_until is not None:
        md["deletionTimestamp"] = rfc3339(deleting_until)
    return {"metadata": md}


@pytest.mark.parametrize(
    ("namespace", "contents", "deletes", "finalize", "recheck"),
    [
        (ns(deleting=False), {PODS: [item("p")]}, [], False, None),
        (ns(finalizers=["other"]), {PODS: [item("p")]}, [], False, None),
        (ns(), {}, [], True, None),
        (ns(), {PODS: [item("p1"), item("p2")], SERVICES: [item("s")]}, ["p1", "p2", "s"], False, 0.2),
        (ns(), {PODS: [item("p1", deleting_until=NOW + 1)]}, [], False, 1.0),
        (ns(), {PODS: [item("p1", deleting_until=NOW + 600)]}, [], False, 1.0),
        (ns(), {CONFIG_MAPS: [item("c", deleting_until=NOW - 10)]}, [], False, 0.2),
    ],
    ids=["not-deleting", "not-our-finalizer", "empty-finalizes", "deletes-content", "waits-for-grace",
         "recheck-capped", "overdue-finalizer"],
)
def test_plan_namespace_cleanup(namespace: dict, contents: dict, deletes: list[str], finalize: bool,
                                recheck: float | None) -> None:
    plan = plan_namespace_cleanup(namespace, contents, NOW)
    assert [o["metadata"]["name"] for _, o in plan.deletes] == deletes
    assert (plan.finalize is not None) is finalize
    assert plan.recheck_after == recheck


def test_recheck_when_the_soonest_grace_period_ends() -> None:
    plan = plan_namespace_cleanup(ns(), {PODS: [item("p1", deleting_until=NOW + 1),
                                                item("p2", deleting_until=NOW + 30)]}, NOW + 0.5)
    assert plan.recheck_after == 0.5


def test_finalize_keeps_other_finalizers_and_reports_content() -> None:
    plan = plan_namespace_cleanup(ns(finalizers=["kubernetes", "example.com/x"]), {}, NOW)
    assert plan.finalize["spec"]["finalizers"] == ["example.com/x"]
    held = item("d", deleting_until=NOW - 1)
    held["metadata"]["finalizers"] = ["foregroundDeletion"]
    waiting = plan_namespace_cleanup(ns(), {PODS: [item("p", deleting_until=NOW + 1)], DEPLOYMENTS: [held]}, NOW)
    conds = {c["type"]: (c["status"], c["reason"], c["message"]) for c in waiting.status["conditions"]}
    assert conds == {
        "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered", "All resources successfully discovered"),
        "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions",
                                                        "All legacy kube types successfully parsed"),
        "NamespaceDeletionContentFailure": ("False", "ContentDeleted",
                                            "All content successfully deleted, may be waiting on finalization"),
        "NamespaceContentRemaining": ("True", "SomeResourcesRemain", "Some resources are remaining: "
                                      "deployments.apps has 1 resource instances, pods has 1 resource instances"),
        "NamespaceFinalizersRemaining": ("True", "SomeFinalizersRemain", "Some content in the namespace has "
                                         "finalizers remaining: foregroundDeletion in 1 resource instances"),
    }
    # the same state again: no status write
    again = dict(ns(), status=waiting.status)
    assert plan_namespace_cleanup(again, {PODS: [item("p", deleting_until=NOW + 1)], DEPLOYMENTS: [held]},
                                  NOW + 5).status is None


def test_namespaced_resources() -> None:
    kinds = namespaced_resources()
    assert PODS in kinds and SERVICES in kinds
    assert NAMESPACES not in kinds
