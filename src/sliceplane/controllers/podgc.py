"""Pod garbage collector: pods bound to a node that no longer exists, and terminating pods that
were never scheduled, are deleted at once (grace 0), as no kubelet will ever finish them.

A node must be missing for `quarantine` seconds (40 s, Kubernetes' quarantine time) before its
pods go, so a node being re-registered does not lose them. Both kinds first get phase Failed
(unless they already ended); orphans also DisruptionTarget=True (DeletionByPodGC). Every `period`
(20 s, Kubernetes' gcCheckPeriod). Not modelled: the --terminated-pod-gc-threshold cap on
finished pods, and pods on nodes tainted out-of-service.
Pure core: `plan_pod_gc`; shell: `PodGCController`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sliceplane.api.disruption import BY_POD_GC, with_disruption_target
from sliceplane.api.meta import key_of, metadata, name_of
from sliceplane.api.registry import NODES, PODS
from sliceplane.client.informer import SharedInformerFactory
from sliceplane.controllers.base import PeriodicController
from sliceplane.controllers.disruption import delete_for_disruption
from sliceplane.controllers.podutil import is_pod_terminal

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GC_CHECK_PERIOD = 20.0
QUARANTINE = 40.0


@dataclass(frozen=True, slots=True)
class PodGCPlan:
    orphaned: list[Obj]  # on a node gone for longer than the quarantine: mark Failed, then delete
    unscheduled_terminating: list[Obj]  # deleted before any node took them: delete
    missing_since: dict[str, float]  # node name -> when it was first seen missing


def plan_pod_gc(pods: Iterable[Obj], nodes: set[str], missing_since: Mapping[str, float], now: float,
                quarantine: float = QUARANTINE) -> PodGCPlan:
    orphaned: list[Obj] = []
    unscheduled: list[Obj] = []
    since: dict[str, float] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        if not node:
            if metadata(pod).get("deletionTimestamp"):
                unscheduled.append(pod)
            continue
        if node in nodes:
            continue
        first = since.setdefault(node, missing_since.get(node, now))
        if now >= first + quarantine:
            orphaned.append(pod)
    return PodGCPlan(orphaned, unscheduled, since)


class PodGCController(PeriodicController):
    """Applies `plan_pod_gc` every `period` to the pods and nodes its informers hold."""

    def __init__(self, client: Any, *, period: float = GC_CHECK_PERIOD, quarantine: float = QUARANTINE,
                 informers: SharedInformerFactory | None = None, clock: Any = time.time) -> None:
        super().__init__(client, informers)
        self.period = period
        self.quarantine = quarantine
        self.clock = clock
        self.nodes = self._informer(NODES)
        self.pods = self._informer(PODS)
        self.missing_since: dict[str, float] = {}

    def _watched(self) -> list[Any]:
        return [self.nodes, self.pods]

    async def pass_once(self) -> None:
        now = self.clock()
        plan = plan_pod_gc(self.pods.list(), {name_of(n) for n in self.nodes.list()}, self.missing_since, now,
                           self.quarantine)
        self.missing_since = plan.missing_since
        for pod, orphaned in [(p, True) for p in plan.orphaned] + [(p, False) for p in plan.unscheduled_terminating]:
            try:
                await self._delete(pod, orphaned, now)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # tried again on the next pass
                log.warning("pod %s: garbage collecting it failed: %s", key_of(pod), e)

    async def _delete(self, pod: Obj, orphaned: bool, now: float) -> None:
        # Both end Failed (unless they ended already); only orphans say why, as Kubernetes' podgc.
        marked = with_disruption_target(pod, BY_POD_GC, now) if orphaned else copy.deepcopy(pod)
        if not is_pod_terminal(pod):
            marked.setdefault("status", {})["phase"] = "Failed"
        if await delete_for_disruption(self.client, marked, grace_period_seconds=0):
            log.info("pod %s: deleted (%s)", key_of(pod),
                     f"node {(pod.get('spec') or {}).get('nodeName')} no longer exists" if orphaned
                     else "terminating and never scheduled")
