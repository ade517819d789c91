"""The lifecycles of simulated pods and nodes, as transition tables (pure, no I/O, no clock).

Rules:
- every transition is an entry of `POD_TRANSITIONS` / `NODE_TRANSITIONS`; anything else raises
  `IllegalTransition` (as h11 raises on a protocol violation), so the shell cannot drift into a
  state the table does not know;
- `plan_pod` decides what the shell should do next for one pod, from the tracked state, the pod
  as last seen and the time passed in; it returns the API action to take, the events to apply
  once that action succeeded, and when to look at the pod again (the shell's timer).

Pod states:  PENDING ─BIND→ SCHEDULED ─START→ RUNNING ─BECOME_READY→ READY
             any of those ─TERMINATE→ TERMINATING ─FINISH→ GONE;   any ─REMOVE→ GONE
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sliceplane.api.meta import parse_time

Obj = dict[str, Any]

DEFAULT_GRACE_PERIOD = 30  # seconds, the Pod API's default terminationGracePeriodSeconds
DEFAULT_SCHEDULER = "default-scheduler"


class IllegalTransition(Exception):
    def __init__(self, what: str, state: str, event: str) -> None:
        super().__init__(f"{what}: no transition from {state} on {event}")
        self.state = state
        self.event = event


class PodState(StrEnum):
    PENDING = "Pending"  # not bound to a node
    SCHEDULED = "Scheduled"  # bound to one of our nodes, no status written yet
    RUNNING = "Running"  # containers running, not Ready yet
    READY = "Ready"
    TERMINATING = "Terminating"  # deletion requested: containers stopped, waiting out the grace period
    GONE = "Gone"  # deleted from the API


class PodEvent(StrEnum):
    BIND = "Bind"  # we bound it to a node
    START = "Start"  # we wrote a Running status
    BECOME_READY = "BecomeReady"  # we wrote Ready=True
    TERMINATE = "Terminate"  # we wrote the terminated status (or it was never started)
    FINISH = "Finish"  # we deleted it for good
    REMOVE = "Remove"  # it disappeared from the API


_LIVE = (PodState.PENDING, PodState.SCHEDULED, PodState.RUNNING, PodState.READY)

POD_TRANSITIONS: dict[tuple[PodState, PodEvent], PodState] = {
    (PodState.PENDING, PodEvent.BIND): PodState.SCHEDULED,
    (PodState.SCHEDULED, PodEvent.START): PodState.RUNNING,
    (PodState.RUNNING, PodEvent.BECOME_READY): PodState.READY,
    **{(s, PodEvent.TERMINATE): PodState.TERMINATING for s in _LIVE},
    (PodState.TERMINATING, PodEvent.FINISH): PodState.GONE,
    **{(s, PodEvent.REMOVE): PodState.GONE for s in (*_LIVE, PodState.TERMINATING)},
}


def pod_transition(state: PodState, event: PodEvent) -> PodState:
    try:
        return POD_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("pod", state, event) from None


def pod_transitions(state: PodState, events: tuple[PodEvent, ...]) -> PodState:
    for event in events:
        state = pod_transition(state, event)
    return state


class NodeState(StrEnum):
    ABSENT = "Absent"
    REGISTERED = "Registered"  # the Node object exists
    READY = "Ready"  # its status says Ready


class NodeEvent(StrEnum):
    REGISTER = "Register"  # created, or found from an earlier run
    REPORT_READY = "ReportReady"  # status written
    HEARTBEAT = "Heartbeat"
    REMOVE = "Remove"


NODE_TRANSITIONS: dict[tuple[NodeState, NodeEvent], NodeState] = {
    (NodeState.ABSENT, NodeEvent.REGISTER): NodeState.REGISTERED,
    (NodeState.REGISTERED, NodeEvent.REPORT_READY): NodeState.READY,
    (NodeState.READY, NodeEvent.HEARTBEAT): NodeState.READY,
    (NodeState.READY, NodeEvent.REPORT_READY): NodeState.READY,
    (NodeState.REGISTERED, NodeEvent.REMOVE): NodeState.ABSENT,
    (NodeState.READY, NodeEvent.REMOVE): NodeState.ABSENT,
}


def node_transition(state: NodeState, event: NodeEvent) -> NodeState:
    try:
        return NODE_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("node", state, event) from None


# --- reading pods ----------------------------------------------------------------------------


def node_name_of(pod: Obj) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


def is_ready(pod: Obj) -> bool:
    """The Ready condition of a pod (or of a node: theirs have the same shape) is True."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def wants_default_scheduler(pod: Obj) -> bool:
    return (pod.get("spec") or {}).get("schedulerName", DEFAULT_SCHEDULER) in ("", DEFAULT_SCHEDULER)


def observe(pod: Obj) -> PodState:
    """The state an untracked pod is in, judged from the object alone (first sight, restart).

    A deletion in progress is not a state of the object here: `plan_pod` reacts to it.
    """
    if not node_name_of(pod):
        return PodState.PENDING
    if (pod.get("status") or {}).get("phase") != "Running":
        return PodState.SCHEDULED
    return PodState.READY if is_ready(pod) else PodState.RUNNING


def grace_period_of(pod: Obj) -> float:
    meta = pod.get("metadata") or {}
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return float(DEFAULT_GRACE_PERIOD if grace is None else grace)


def termination_deadline(pod: Obj, max_grace_period: float | None, now: float) -> float:
    """When a terminating pod should be deleted for good: its grace period, capped.

    The API server set deletionTimestamp = (time of the delete) + grace, so the deadline
    survives restarts of the fleet.
    """
    grace = grace_period_of(pod)
    wait = grace if max_grace_period is None else min(grace, max_grace_period)
    stamp = (pod.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return now + wait
    try:
        requested_at = parse_time(stamp) - grace
    except ValueError:
        return now + wait
    return requested_at + max(0.0, wait)


def ready_time(started_at: float, delay: float) -> float:
    """When a pod started at `started_at` turns Ready.

    After `delay`, but never within the same second as its not-ready status: condition times
    have second resolution, and a Ready transition stamped with the same second as the
    previous one is invisible to whoever orders changes by them (the EndpointSlice
    controller's last-change-trigger-time, for one). With no delay there is no not-ready
    status at all, so nothing to separate.
    """
    if delay <= 0:
        return started_at
    return max(started_at + delay, math.floor(started_at) + 1.0)


# --- deciding --------------------------------------------------------------------------------


class Action(StrEnum):
    NOTHING = "Nothing"
    BIND = "Bind"  # POST pods/NAME/binding
    WRITE_RUNNING = "WriteRunning"  # status: Running, not Ready
    WRITE_READY = "WriteReady"  # status: Running and Ready
    WRITE_TERMINATED = "WriteTerminated"  # status: containers terminated, not Ready
    DELETE = "Delete"  # delete with grace 0 and a uid precondition
    FORGET = "Forget"  # it is gone: release its addresses


@dataclass(frozen=True, slots=True)
class Plan:
    action: Action
    events: tuple[PodEvent, ...] = ()  # to apply once the action succeeded
    wake_at: float | None = None  # look at the pod again at this time


def plan_pod(state: PodState, pod: Obj | None, now: float, *, ready_at: float, finish_at: float | None,
             resync_ready: bool = False) -> Plan:
    """The next step for one pod of ours (or an unbound one).

    `ready_at`: when the pod's containers become ready (start time + ready delay; for a pod not
    started yet, pass now + delay). `finish_at`: the termination deadline when terminating.
    `resync_ready`: the node has just come back after the node lifecycle controller marked its
    pods not ready; the containers kept running, so the kubelet's status sync puts Ready back.
    (Otherwise a Ready=False written by someone else stands: it is how a failing readiness
    probe is simulated on hollow nodes.)
    """
    if state == PodState.GONE:
        return Plan(Action.NOTHING)
    if pod is None:
        return Plan(Action.FORGET, (PodEvent.REMOVE,))
    deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    if deleting and state != PodState.TERMINATING:
        if state == PodState.PENDING:
            # never ran anywhere: nothing to wait for
            return Plan(Action.DELETE, (PodEvent.TERMINATE, PodEvent.FINISH))
        return Plan(Action.WRITE_TERMINATED, (PodEvent.TERMINATE,), finish_at)
    if state == PodState.TERMINATING:
        if finish_at is None or now >= finish_at:
            return Plan(Action.DELETE, (PodEvent.FINISH,))
        return Plan(Action.NOTHING, (), finish_at)
    if state == PodState.PENDING:
        return Plan(Action.BIND, (PodEvent.BIND,))
    if state == PodState.SCHEDULED:
        if now >= ready_at:
            return Plan(Action.WRITE_READY, (PodEvent.START, PodEvent.BECOME_READY))
        return Plan(Action.WRITE_RUNNING, (PodEvent.START,), ready_at)
    if state == PodState.RUNNING:
        if now >= ready_at:
            return Plan(Action.WRITE_READY, (PodEvent.BECOME_READY,))
        return Plan(Action.NOTHING, (), ready_at)
    if resync_ready and not is_ready(pod):
        return Plan(Action.WRITE_READY)
    return Plan(Action.NOTHING)
