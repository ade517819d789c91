"""Taint eviction controller: pods on a node with a NoExecute taint they do not tolerate go.

A pod that tolerates every NoExecute taint of its node may stay for the least tolerationSeconds
of the tolerations it uses (forever when none sets it); one that does not tolerate them all is
deleted at once. The clock starts when the controller first sees the pod on the tainted node,
as Kubernetes' taint manager does, so a restarted controller starts it again. A deleted pod
first gets DisruptionTarget=True (DeletionByTaintManager) and a TaintManagerEviction event.

Every pod gets 300 s tolerations of the not-ready and unreachable taints at admission, so a
node that falls silent loses its pods after 5 minutes, unless every node did (the node
lifecycle controller then holds back the NoExecute taints).
Pure core: `eviction_delay`, `plan_evictions`; shell: `TaintEvictionController`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sliceplane.api.disruption import BY_TAINT_MANAGER, with_disruption_target
from sliceplane.api.meta import key_of, metadata, name_of
from sliceplane.api.registry import NODES, PODS
from sliceplane.api.taints import taints_of, tolerates, tolerations_of
from sliceplane.client.informer import SharedInformerFactory
from sliceplane.controllers.base import PeriodicController
from sliceplane.controllers.disruption import delete_for_disruption
from sliceplane.controllers.podutil import NODE_NAME_INDEX, is_pod_terminal, pod_node_name
from sliceplane.controllers.workload_util import EventRecorder

log = logging.getLogger(__name__)

Obj = dict[str, Any]

EVICTION_CHECK_PERIOD = 1.0  # seconds between passes: tolerationSeconds are whole seconds


def eviction_delay(pod: Obj, no_execute_taints: list[Obj]) -> float | None:
    """Seconds the pod may stay on a node with these NoExecute taints; None: as long as it likes."""
    if not no_execute_taints:
        return None
    tolerations = tolerations_of(pod)
    delay: float | None = None
    for taint in no_execute_taints:
        used = [t for t in tolerations if tolerates(t, taint)]
        if not used:
            return 0.0
        for t in used:
            seconds = t.get("tolerationSeconds")
            if isinstance(seconds, int) and not isinstance(seconds, bool):
                delay = max(0.0, float(seconds)) if delay is None else min(delay, max(0.0, float(seconds)))
    return delay


@dataclass(frozen=True, slots=True)
class EvictionPlan:
    evict: list[Obj]  # pods to delete now
    first_seen: dict[str, float]  # pod key -> when its clock started (pods still under a NoExecute taint)


def plan_evictions(nodes: Iterable[Obj], pods_on: Mapping[str, list[Obj]], first_seen: Mapping[str, float],
                   now: float) -> EvictionPlan:
    """What one pass does: which pods go now, and whose clocks keep running."""
    evict: list[Obj] = []
    seen: dict[str, float] = {}
    for node in nodes:
        taints = taints_of(node, "NoExecute")
        if not taints:
            continue
        for pod in pods_on.get(name_of(node), []):
            if metadata(pod).get("deletionTimestamp") or is_pod_terminal(pod):
                continue
            delay = eviction_delay(pod, taints)
            if delay is None:
                continue
            key = key_of(pod)
            since = first_seen.get(key, now)
            if now >= since + delay:
                evict.append(pod)
            else:
                seen[key] = since
    return EvictionPlan(evict, seen)


class TaintEvictionController(PeriodicController):
    """Applies `plan_evictions` every second to the nodes and pods its informers hold."""

    def __init__(self, client: Any, *, informers: SharedInformerFactory | None = None,
                 clock: Any = time.time) -> None:
        super().__init__(client, informers)
        self.period = EVICTION_CHECK_PERIOD
        self.clock = clock
        self.nodes = self._informer(NODES)
        self.pods = self._informer(PODS)
        self.pods.add_index(NODE_NAME_INDEX, pod_node_name)
        self.first_seen: dict[str, float] = {}
        self.recorder = EventRecorder(client, "taint-eviction-controller")

    def _watched(self) -> list[Any]:
        return [self.nodes, self.pods]

    async def pass_once(self) -> None:
        now = self.clock()
        nodes = [n for n in self.nodes.list() if taints_of(n, "NoExecute")]
        pods_on = {name_of(n): self.pods.by_index(NODE_NAME_INDEX, name_of(n)) for n in nodes}
        plan = plan_evictions(nodes, pods_on, self.first_seen, now)
        self.first_seen = plan.first_seen
        for pod in plan.evict:
            try:
                await self._evict(pod, now)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # tried again on the next pass
                log.warning("pod %s: deleting it for a NoExecute taint failed: %s", key_of(pod), e)

    async def _evict(self, pod: Obj, now: float) -> None:
        if await delete_for_disruption(self.client, with_disruption_target(pod, BY_TAINT_MANAGER, now)):
            self.recorder.record(pod, "v1", "Pod", "Normal", "TaintManagerEviction",
                                 f"Marking for deletion Pod {key_of(pod)}", now)
