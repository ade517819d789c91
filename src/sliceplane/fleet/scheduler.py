"""Choosing a node for an unscheduled pod (pure).

A deliberately small scheduler with the default scheduler's first filters, in its order: a node
fits when it is not cordoned (NodeUnschedulable), every NoSchedule/NoExecute taint on it is
tolerated (TaintToleration), it matches the pod's `spec.nodeSelector` (NodeAffinity) and it has
room under its pod capacity (NodeResourcesFit). Among fitting nodes, those without an untolerated
PreferNoSchedule taint come first, then the one with the fewest pods wins, ties broken by the
fleet's node order (which spreads pods round-robin over zones). Node
affinity terms, pod (anti-)affinity, resource requests and spreading constraints are not judged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sliceplane.api.taints import UNSCHEDULABLE_TAINT, tolerates, tolerations_of

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NodeFit:
    """What the scheduler needs to know about one node."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    max_pods: int = 110
    unschedulable: bool = False
    taints: tuple[Obj, ...] = ()


def untolerated_taint(pod: Obj, node: NodeFit) -> Obj | None:
    """The first NoSchedule or NoExecute taint of the node that the pod does not tolerate."""
    tolerations = tolerations_of(pod)
    for taint in node.taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def misfit(pod: Obj, node: NodeFit, pod_count: int) -> str | None:
    """Why the pod cannot go to the node, in the default scheduler's words; None when it fits."""
    if node.unschedulable and not any(
            tolerates(t, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}) for t in tolerations_of(pod)):
        return "node(s) were unschedulable"
    taint = untolerated_taint(pod, node)
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    if not all(node.labels.get(k) == v for k, v in selector.items()):
        return "node(s) didn't match Pod's node affinity/selector"
    if pod_count >= node.max_pods:
        return "Too many pods"
    return None


def fits(pod: Obj, node: NodeFit, pod_count: int) -> bool:
    return misfit(pod, node, pod_count) is None


def _avoided(pod: Obj, node: NodeFit) -> bool:
    """Has the node a PreferNoSchedule taint the pod does not tolerate? (TaintToleration scoring.)"""
    tolerations = tolerations_of(pod)
    return any(t.get("effect") == "PreferNoSchedule" and not any(tolerates(x, t) for x in tolerations)
               for t in node.taints)


def pick_node(pod: Obj, nodes: Sequence[NodeFit], pod_counts: Mapping[str, int]) -> str | None:
    """Among the nodes that fit, one without an untolerated PreferNoSchedule taint if any, then
    the one with the fewest pods; None when none fits."""
    best: str | None = None
    best_rank = (True, 0)
    for node in nodes:
        count = pod_counts.get(node.name, 0)
        if not fits(pod, node, count):
            continue
        rank = (_avoided(pod, node), count)
        if best is None or rank < best_rank:
            best, best_rank = node.name, rank
    return best


def unschedulable_message(pod: Obj, nodes: Sequence[NodeFit], pod_counts: Mapping[str, int]) -> str:
    """The PodScheduled=False message: how many nodes failed for which reason, reasons sorted."""
    reasons = Counter(misfit(pod, n, pod_counts.get(n.name, 0)) for n in nodes)
    reasons.pop(None, None)
    parts = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    total = len(nodes)
    detail = f": {parts}" if parts else ""
    return f"0/{total} nodes are available{detail}. preemption: 0/{total} nodes are available: " \
           f"{total} Preemption is not helpful for scheduling."
