"""The taint eviction controller's pure core: how long a pod may stay under NoExecute taints."""

from __future__ import annotations

from typing import Any

import pytest

from sliceplane.api.taints import UNREACHABLE_TAINT
from sliceplane.controllers.tainteviction import eviction_delay, plan_evictions

T0 = 1_700_000_000.0
UNREACHABLE = {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": "2023-11-14T22:13:20Z"}
MAINTENANCE = {"key": "maintenance", "value": "true", "effect": "NoExecute"}
DEFAULT_TOLERATIONS = [  # what admission gives every pod
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


def pod(name: str, tolerations: list[dict[str, Any]] | None = None, *, deleting: bool = False,
        phase: str = "Running") -> dict:
    md: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if deleting:
        md["deletionTimestamp"] = "2023-11-14T22:13:20Z"
    return {"metadata": md, "spec": {"nodeName": "n1", "tolerations": tolerations or []},
            "status": {"phase": phase}}


@pytest.mark.parametrize(("tolerations", "taints", "want"), [
    (DEFAULT_TOLERATIONS, [], None),
    (DEFAULT_TOLERATIONS, [UNREACHABLE], 300.0),
    (DEFAULT_TOLERATIONS, [UNREACHABLE, MAINTENANCE], 0.0),  # one taint not tolerated: now
    ([*DEFAULT_TOLERATIONS, {"key": "maintenance", "operator": "Exists"}], [UNREACHABLE, MAINTENANCE], 300.0),
    ([{"key": "maintenance", "operator": "Equal", "value": "true", "effect": "NoExecute"}], [MAINTENANCE], None),
    ([{"operator": "Exists", "tolerationSeconds": 30}, {"key": "maintenance", "operator": "Exists",
                                                        "tolerationSeconds": 10}], [MAINTENANCE], 10.0),
    ([{"operator": "Exists", "tolerationSeconds": -5}], [MAINTENANCE], 0.0),  # negative counts as zero
    ([], [MAINTENANCE], 0.0),
], ids=["no-taints", "default-toleration", "one-untolerated", "both-tolerated", "forever", "least-seconds",
        "negative", "no-tolerations"])
def test_eviction_delay(tolerations: list, taints: list, want: float | None) -> None:
    assert eviction_delay(pod("p", tolerations), taints) == want


def test_plan_evictions_keeps_clocks_and_skips_going_pods() -> None:
    node = {"metadata": {"name": "n1"}, "spec": {"taints": [UNREACHABLE, {"key": "x", "effect": "NoSchedule"}]}}
    clean = {"metadata": {"name": "n2"}, "spec": {}}
    pods = {"n1": [pod("waits", DEFAULT_TOLERATIONS), pod("goes", []), pod("stays", [{"operator": "Exists"}]),
                   pod("deleting", [], deleting=True), pod("done", [], phase="Succeeded"),
                   pod("started-earlier", DEFAULT_TOLERATIONS)],
            "n2": [pod("elsewhere", [])]}
    plan = plan_evictions([node, clean], pods, {"default/started-earlier": T0 - 300, "default/gone": T0 - 10}, T0)
    assert [p["metadata"]["name"] for p in plan.evict] == ["goes", "started-earlier"]
    assert plan.first_seen == {"default/waits": T0}  # the clock starts now; forgotten pods drop out
    # A pod whose deletion failed is planned again; its clock, dropped with the eviction, restarts.
    later = plan_evictions([node], pods, plan.first_seen, T0 + 300)
    assert [p["metadata"]["name"] for p in later.evict] == ["waits", "goes"]
