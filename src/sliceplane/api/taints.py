"""Kubernetes' well-known node taint keys (core/v1 well_known_taints) and toleration matching,
shared by the admission defaults, the node lifecycle and taint eviction controllers and the
fleet's scheduler."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Kubernetes' ToleratesTaint: an empty effect or (with Exists) an empty key matches any."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return not key or key == taint.get("key")
    return key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerations_of(pod: Obj) -> list[Obj]:
    return [t for t in (pod.get("spec") or {}).get("tolerations") or [] if isinstance(t, dict)]


def taints_of(node: Obj, *effects: str) -> list[Obj]:
    """The node's taints with one of `effects` (all of them when none is named)."""
    return [t for t in (node.get("spec") or {}).get("taints") or []
            if isinstance(t, dict) and (not effects or t.get("effect") in effects)]
