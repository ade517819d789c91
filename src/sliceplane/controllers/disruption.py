"""Deleting a pod for a disruption (taint eviction, pod GC), the controllers' shell side: its
DisruptionTarget condition first, then a delete that holds only for the pod that was judged."""

from __future__ import annotations

from typing import Any

from sliceplane.api.meta import metadata, name_of, uid_of
from sliceplane.api.registry import PODS

Obj = dict[str, Any]


async def delete_for_disruption(client: Any, marked: Obj, *, grace_period_seconds: int | None = None) -> bool:
    """Write `marked` (the pod with its DisruptionTarget condition, see api/disruption.py) to the
    pod's status, then delete the pod with a uid precondition. False when the pod is gone or
    changed meanwhile (404/409): the caller judges it again on its next pass."""
    try:
        await client.update(PODS, marked, subresource="status")
        await client.delete(PODS, name_of(marked), metadata(marked).get("namespace"),
                            grace_period_seconds=grace_period_seconds, preconditions={"uid": uid_of(marked)})
    except Exception as e:
        if getattr(e, "code", None) not in (404, 409):
            raise
        return False
    return True
