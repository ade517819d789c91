"""The seed's evaluation scenarios as values: the objects a run sends, and when it has converged.

- create: P ready pods exist (a Deployment of P replicas), then the Service is created;
- update: one endpoint's readiness flips (its pod's Ready condition turns False);
- rolling: every pod of the Service is replaced through a Deployment rollout.

Everything here is pure: the runner sends these objects and feeds listed objects back in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sliceplane.bench.model import Representation

Obj = dict[str, Any]

NAMESPACE = "default"
NAME = "bench"
LABELS = {"app": NAME}
TARGET_PORT = 8080
ROLLOUT_ANNOTATION = "sliceplane.io/bench-rollout"

DESCRIPTIONS = {
    "create": "P ready pods exist, then the Service is created",
    "update": "one endpoint's readiness flips",
    "rolling": "every pod is replaced through a Deployment rollout",
}


def int_or_percent(text: str) -> int | str:
    """A rolling-update bound as the API takes it: `25%` stays a string, `1` becomes 1."""
    text = text.strip()
    if text.endswith("%") and text[:-1].isdigit():
        return text
    if text.isdigit():
        return int(text)
    raise ValueError(f"must be a number of pods or a percentage (e.g. 1 or 25%), not {text!r}")


def rollout_bounds(max_surge: str, max_unavailable: str) -> tuple[int | str, int | str]:
    """Both bounds parsed and checked as the API server validates a Deployment's rolling update,
    so a bad pace is refused before a cluster is started, not by a 422 minutes into a run."""
    surge, unavailable = int_or_percent(max_surge), int_or_percent(max_unavailable)
    if isinstance(unavailable, str) and int(unavailable[:-1]) > 100:
        raise ValueError(f"maxUnavailable must not be greater than 100%, not {unavailable!r}")
    if surge in (0, "0%") and unavailable in (0, "0%"):
        raise ValueError("maxSurge and maxUnavailable may not both be 0 (the rollout could not make progress)")
    return surge, unavailable


def deployment(pods: int, max_surge: int | str = "25%", max_unavailable: int | str = "25%") -> Obj:
    """P replicas; the rollout's pace is the strategy's (Kubernetes' default 25%/25% replaces pods
    in large waves; maxSurge 1, maxUnavailable 0 replaces them one at a time)."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)},
        "spec": {
            "replicas": pods,
            "selector": {"matchLabels": dict(LABELS)},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                    {"name": "app", "image": "registry.k8s.io/pause:3.9",
                     "ports": [{"name": "http", "containerPort": TARGET_PORT}]}]},
            },
        },
    }


def service() -> Obj:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {"selector": dict(LABELS), "ports": [{"name": "http", "port": 80, "targetPort": TARGET_PORT}]},
    }


def rollout_patch(stamp: str) -> Obj:
    """What `kubectl rollout restart` sends: a new template annotation, so every pod is replaced."""
    return {"spec": {"template": {"metadata": {"annotations": {ROLLOUT_ANNOTATION: stamp}}}}}


def with_readiness(pod: Obj, ready: bool, now: str) -> Obj:
    """The pod with its Ready and ContainersReady conditions set (for a PUT to /status)."""
    status = dict(pod.get("status") or {})
    value = "True" if ready else "False"
    conditions = [dict(c) for c in status.get("conditions") or []]
    for ctype in ("Ready", "ContainersReady"):
        for c in conditions:
            if c.get("type") == ctype:
                if c.get("status") != value:
                    c["status"], c["lastTransitionTime"] = value, now
                break
        else:
            conditions.append({"type": ctype, "status": value, "lastTransitionTime": now})
    status["conditions"] = conditions
    return {**pod, "status": status}


@dataclass(frozen=True)
class EndpointView:
    """The endpoints the representation's objects publish, by pod name."""

    ready: frozenset[str]
    not_ready: frozenset[str]  # listed but not ready (includes terminating)
    total: int  # entries, counting duplicates


def endpoint_view(rep: Representation, objects: list[Obj]) -> EndpointView:
    """What the Service's slices (or its Endpoints object) say about its pods."""
    ready: set[str] = set()
    not_ready: set[str] = set()
    total = 0
    if rep.kind == "endpoints":
        for obj in objects:
            for subset in obj.get("subsets") or []:
                for key, into in (("addresses", ready), ("notReadyAddresses", not_ready)):
                    for a in subset.get(key) or []:
                        into.add((a.get("targetRef") or {}).get("name", a.get("ip", "")))
                        total += 1
    else:
        for obj in objects:
            for e in obj.get("endpoints") or []:
                name = (e.get("targetRef") or {}).get("name", "")
                cond = e.get("conditions") or {}
                (ready if cond.get("ready", True) is not False else not_ready).add(name)
                total += 1
    return EndpointView(frozenset(ready), frozenset(not_ready), total)


def converged(view: EndpointView, want_ready: frozenset[str], want_not_ready: frozenset[str] = frozenset()) -> bool:
    """The objects publish exactly these pods, in these states, once each."""
    return (view.ready == want_ready and view.not_ready == want_not_ready
            and view.total == len(want_ready) + len(want_not_ready))


def pod_is_ready(pod: Obj) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def ready_pod_names(pods: list[Obj]) -> frozenset[str]:
    return frozenset(p["metadata"]["name"] for p in pods if pod_is_ready(p) and (p.get("status") or {}).get("podIP"))
