"""Node lifecycle controller: a node that stops heartbeating turns Unknown and its pods NotReady.

Kubelets show they are alive by renewing their Lease in `kube-node-lease` (every 10 s) or by
writing the node's Ready condition. The controller notes, by its own clock, when it last saw
either change (a `Probe`: a restarted controller gives every node a fresh grace period, and a
skewed kubelet clock does not matter). A node silent for longer than the grace period gets:
- its conditions set to Unknown ("Kubelet stopped posting node status."), and a NodeNotReady event;
- the Ready condition of every pod on it set to False (with a NodeNotReady event each): this is
  what takes those pods out of EndpointSlices, as ready=false endpoints;
- the `node.kubernetes.io/unreachable` taints (`not-ready` when the kubelet itself says
  Ready=False), NoSchedule and NoExecute. When every node is not Ready, no NoExecute taint is
  kept (Kubernetes' "master disruption mode": the fault is more likely the control plane's).
The kubelet (our fleet) writes Ready=True again when it comes back, and the taints go.
A cordoned node (spec.unschedulable) carries `node.kubernetes.io/unschedulable:NoSchedule`.

The taint eviction controller (tainteviction.py) deletes the pods once their NoExecute
toleration (300 s by default) runs out. Not modelled: the eviction rate limits per zone.
Pure core: `observe_probe`, `plan_node_health`; shell: `NodeLifecycleController`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sliceplane.api.meta import metadata, name_of, parse_time, rfc3339, uid_of
from sliceplane.api.registry import LEASES, NODE_LEASE_NAMESPACE, NODES, PODS
from sliceplane.api.taints import NOT_READY_TAINT, UNREACHABLE_TAINT, UNSCHEDULABLE_TAINT, taints_of
from sliceplane.client.informer import SharedInformerFactory
from sliceplane.controllers.base import PeriodicController
from sliceplane.controllers.podutil import NODE_NAME_INDEX, is_pod_ready, pod_node_name
from sliceplane.controllers.workload_util import EventRecorder

log = logging.getLogger(__name__)

Obj = dict[str, Any]


CONDITION_TYPES = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
MANAGED_TAINTS = (UNREACHABLE_TAINT, NOT_READY_TAINT, UNSCHEDULABLE_TAINT)
REASON_NOT_READY = "NodeNotReady"


@dataclass(frozen=True, slots=True)
class Probe:
    """The node's Ready condition and lease renewTime as last seen, and when (our clock) they last changed."""

    ready: Obj | None
    renew_time: str
    at: float


def _condition(node: Obj, ctype: str) -> Obj | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return None


def _renew_time(lease: Obj | None) -> str:
    return str(((lease or {}).get("spec") or {}).get("renewTime") or "")


def _later(a: str, b: str) -> bool:
    """Is renewTime `a` later than `b`? (Unparseable text counts as a change when it differs.)"""
    try:
        return parse_time(a) > parse_time(b)
    except ValueError:
        return a != b


def observe_probe(old: Probe | None, node: Obj, lease: Obj | None, now: float) -> Probe:
    """The probe after looking at the node and its lease: any new heartbeat restarts the clock."""
    ready = _condition(node, "Ready")
    renew = _renew_time(lease)
    if old is None:
        if ready is None:  # never reported: the startup grace runs from its creation
            created = metadata(node).get("creationTimestamp")
            try:
                return Probe(None, renew, parse_time(created) if created else now)
            except ValueError:
                return Probe(None, renew, now)
        return Probe(ready, renew, now)
    renewed = bool(renew) and (not old.renew_time or _later(renew, old.renew_time))
    heard = renewed or ready != old.ready
    return Probe(ready, renew if renewed else old.renew_time, now if heard else old.at)


@dataclass(frozen=True, slots=True)
class NodeHealthPlan:
    status: Obj | None = None  # the node status with its conditions Unknown, to write
    taints: list[Obj] | None = None  # the node's new spec.taints, when they change
    pods_not_ready: list[Obj] = field(default_factory=list)  # pods to write with Ready=False
    became_not_ready: bool = False  # record the NodeNotReady event on the node


def _unknown_status(node: Obj, now: float) -> Obj | None:
    """The status with every condition Unknown, or None when it already is."""
    status = copy.deepcopy(node.get("status") or {})
    conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    by_type = {c.get("type"): c for c in conds}
    changed = False
    stamp = rfc3339(now)
    for ctype in CONDITION_TYPES:
        c = by_type.get(ctype)
        if c is None:
            conds.append({"type": ctype, "status": "Unknown", "lastHeartbeatTime": metadata(node).get(
                "creationTimestamp", stamp), "lastTransitionTime": stamp, "reason": "NodeStatusNeverUpdated",
                "message": "Kubelet never posted node status."})
            changed = True
        elif c.get("status") != "Unknown":
            c.update(status="Unknown", lastTransitionTime=stamp, reason="NodeStatusUnknown",
                     message="Kubelet stopped posting node status.")
            changed = True
    if not changed:
        return None
    status["conditions"] = conds
    return status


def _wanted_taints(node: Obj, ready_status: str | None, no_execute: bool, now: float) -> list[Obj] | None:
    """spec.taints with the taints the Ready status and the cordon call for; None when unchanged."""
    current = taints_of(node)
    key = {"Unknown": UNREACHABLE_TAINT, "False": NOT_READY_TAINT}.get(ready_status)
    wanted = {(key, "NoSchedule")} if key else set()
    if key and no_execute:
        wanted.add((key, "NoExecute"))
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.add((UNSCHEDULABLE_TAINT, "NoSchedule"))
    keep = [t for t in current if t.get("key") not in MANAGED_TAINTS or (t.get("key"), t.get("effect")) in wanted]
    have = {(t.get("key"), t.get("effect")) for t in keep}
    added = []
    for k, effect in sorted(wanted - have, key=lambda ke: (ke[0] != key, ke[1] != "NoSchedule", ke)):
        taint: Obj = {"key": k, "effect": effect}
        if effect == "NoExecute":
            taint["timeAdded"] = rfc3339(now)
        added.append(taint)
    if not added and len(keep) == len(current):
        return None
    return keep + added


def pod_not_ready(pod: Obj, now: float) -> Obj:
    """The pod with its Ready condition False (what MarkPodsNotReady writes)."""
    out = copy.deepcopy(pod)
    for c in (out.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            c["status"] = "False"
            c["lastTransitionTime"] = rfc3339(now)
    return out


def is_silent(probe: Probe, now: float, *, grace: float, startup_grace: float) -> bool:
    """Has the node gone without a heartbeat for longer than its grace period?"""
    return now > probe.at + (startup_grace if probe.ready is None else grace)


def fully_disrupted(nodes: Iterable[tuple[Obj, bool]]) -> bool:
    """Is no node Ready once this pass is done? (node, silent) pairs: a silent node turns Unknown.

    Judged on the pass's outcome, so the pass in which the last nodes fall silent already holds
    back the NoExecute taints instead of adding them for one period."""
    seen = False
    for node, silent in nodes:
        seen = True
        if not silent and node_is_ready(node):
            return False
    return seen


def plan_node_health(node: Obj, probe: Probe, pods: Iterable[Obj], now: float, *, grace: float,
                     startup_grace: float, all_not_ready: bool) -> NodeHealthPlan:
    """What one monitor pass does to one node, given when it was last heard from."""
    ready = _condition(node, "Ready")
    status = None
    # A node that never reported is left alone until its startup grace runs out.
    ready_status = None if ready is None else ready.get("status", "Unknown")
    if is_silent(probe, now, grace=grace, startup_grace=startup_grace):
        status = _unknown_status(node, now)
        ready_status = "Unknown"
    # Terminating pods too: one still Ready would keep serving from a node nobody hears from.
    pods_not_ready = [] if ready_status in ("True", None) else [p for p in pods if is_pod_ready(p)]
    return NodeHealthPlan(
        status=status,
        taints=_wanted_taints(node, ready_status, not all_not_ready, now),
        pods_not_ready=pods_not_ready,
        became_not_ready=status is not None and (ready or {}).get("status") == "True",
    )


def node_is_ready(node: Obj) -> bool:
    return (_condition(node, "Ready") or {}).get("status") == "True"


# --- shell ----------------------------------------------------------------------------------------


class NodeLifecycleController(PeriodicController):
    """Every `monitor_period`, looks at every node and its lease, and applies `plan_node_health`."""

    def __init__(self, client: Any, *, monitor_period: float = 5.0, grace_period: float = 50.0,
                 startup_grace_period: float = 60.0, informers: SharedInformerFactory | None = None,
                 clock: Any = time.time) -> None:
        super().__init__(client, informers)
        self.period = monitor_period
        self.grace_period = grace_period
        self.startup_grace_period = startup_grace_period
        self.clock = clock
        self.nodes = self._informer(NODES)
        self.leases = self._informer(LEASES, namespace=NODE_LEASE_NAMESPACE)
        self.pods = self._informer(PODS)
        self.pods.add_index(NODE_NAME_INDEX, pod_node_name)
        self.probes: dict[str, Probe] = {}
        self.recorder = EventRecorder(client, "node-controller")

    def _watched(self) -> list[Any]:
        return [self.nodes, self.leases, self.pods]

    async def pass_once(self) -> None:
        """One pass over every node (node-monitor-period)."""
        now = self.clock()
        nodes = self.nodes.list()
        names = {name_of(n) for n in nodes}
        for gone in set(self.probes) - names:
            del self.probes[gone]
        for node in nodes:
            name = name_of(node)
            lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}")
            self.probes[name] = observe_probe(self.probes.get(name), node, lease, now)
        all_not_ready = fully_disrupted(
            (n, is_silent(self.probes[name_of(n)], now, grace=self.grace_period,
                          startup_grace=self.startup_grace_period)) for n in nodes)
        for node in nodes:
            name = name_of(node)
            probe = self.probes[name]
            plan = plan_node_health(node, probe, self.pods.by_index(NODE_NAME_INDEX, name), now,
                                    grace=self.grace_period, startup_grace=self.startup_grace_period,
                                    all_not_ready=all_not_ready)
            try:
                await self._apply(node, probe, plan, now)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # this node again on the next pass; the others now
                log.warning("node %s: updating its health failed: %s", name, e)

    async def _apply(self, node: Obj, probe: Probe, plan: NodeHealthPlan, now: float) -> None:
        name = name_of(node)
        if plan.status is not None:
            body = copy.deepcopy(node)
            body["status"] = plan.status
            node = await self.client.update(NODES, body, subresource="status")
            # Our own write is not a heartbeat: the probe keeps its time.
            self.probes[name] = Probe(_condition(node, "Ready"), probe.renew_time, probe.at)
            log.info("node %s: no heartbeat for %.0f s, marked Unknown", name, now - probe.at)
        if plan.became_not_ready:
            self.recorder.record(node, "v1", "Node", "Normal", REASON_NOT_READY,
                                 f"Node {name} status is now: NodeNotReady", now)
        if plan.taints is not None:
            # A merge patch replaces the whole list; null drops the field (an empty list reads as one).
            await self.client.patch(NODES, name, {"metadata": {"uid": uid_of(node)},
                                                  "spec": {"taints": plan.taints or None}})
        for pod in plan.pods_not_ready:
            try:
                await self.client.update(PODS, pod_not_ready(pod, now), subresource="status")
            except Exception as e:  # 404: gone; 409: changed under us (next pass)
                if getattr(e, "code", None) not in (404, 409):
                    raise
                continue
            self.recorder.record(pod, "v1", "Pod", "Warning", REASON_NOT_READY, "Node is not ready", now)
