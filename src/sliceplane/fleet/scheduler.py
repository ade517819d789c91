"""Choosing a node for an unscheduled pod (pure).

A deliberately small scheduler: a node fits when it matches the pod's `spec.nodeSelector`, is
not cordoned and has room under its pod capacity; among fitting nodes the one with the fewest
pods wins, ties broken by the fleet's node order (which spreads pods round-robin over zones).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NodeFit:
    """What the scheduler needs to know about one node."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    max_pods: int = 110
    unschedulable: bool = False


def fits(pod: Obj, node: NodeFit, pod_count: int) -> bool:
    if node.unschedulable or pod_count >= node.max_pods:
        return False
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    return all(node.labels.get(k) == v for k, v in selector.items())


def pick_node(pod: Obj, nodes: Sequence[NodeFit], pod_counts: Mapping[str, int]) -> str | None:
    """The node with the fewest pods among those that fit, or None when none fits."""
    best: str | None = None
    best_count = 0
    for node in nodes:
        count = pod_counts.get(node.name, 0)
        if not fits(pod, node, count):
            continue
        if best is None or count < best_count:
            best, best_count = node.name, count
    return best
