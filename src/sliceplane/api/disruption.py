"""The DisruptionTarget pod condition: set just before a pod is deleted for a disruption (the
eviction API, the taint eviction controller, the pod garbage collector), so its owners and observers can tell why it went."""

from __future__ import annotations

import copy
from typing import Any

from sliceplane.api.meta import rfc3339

Obj = dict[str, Any]

BY_EVICTION_API = ("EvictionByEvictionAPI", "Eviction API: evicting")
BY_TAINT_MANAGER = ("DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
BY_POD_GC = ("DeletionByPodGC", "PodGC: node no longer exists")


def with_disruption_target(pod: Obj, why: tuple[str, str], now: float) -> Obj:
    """A copy of the pod with DisruptionTarget=True for `why` (reason, message)."""
    out = copy.deepcopy(pod)
    status = out.setdefault("status", {})
    conds = [c for c in status.get("conditions") or []
             if not (isinstance(c, dict) and c.get("type") == "DisruptionTarget")]
    reason, message = why
    conds.append({"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                  "lastTransitionTime": rfc3339(now), "reason": reason, "message": message})
    status["conditions"] = conds
    return out
