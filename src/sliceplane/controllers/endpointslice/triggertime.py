"""The `endpoints.kubernetes.io/last-change-trigger-time` annotation.

The annotation tells consumers (and latency SLIs) when the oldest change that this write
publishes happened. A change is a pod's Ready condition transition or the Service's creation.
Per Service we remember the trigger times seen at the last sync; the next sync publishes the
oldest one that is newer than what was remembered. A Service seen for the first time publishes
its creation time, as Kubernetes does.

Kubernetes recomputes this over every pod of the Service on each sync; `observe_changes` does
the same bookkeeping from just the pods that changed, so the incremental sync stays O(changed).
The tracker keeps no clock: times come from the objects.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sliceplane.api.meta import name_of, namespace_of
from sliceplane.controllers.podutil import pod_trigger_time, service_trigger_time

Obj = dict[str, Any]


def format_trigger_time(ts: float) -> str:
    """RFC 3339 with the fraction only when there is one (Go's RFC3339Nano layout)."""
    whole = int(ts // 1)
    frac_ns = round((ts - whole) * 1e9)
    if frac_ns >= 1_000_000_000:
        whole, frac_ns = whole + 1, 0
    text = _dt.datetime.fromtimestamp(whole, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac_ns:
        text += "." + f"{frac_ns:09d}".rstrip("0")
    return text + "Z"


@dataclass
class _ServiceState:
    service_time: float | None = None
    pod_times: dict[str, float] = field(default_factory=dict)


class TriggerTimeTracker:
    """Remembers, per Service, the trigger times already published."""

    def __init__(self) -> None:
        self._states: dict[str, _ServiceState] = {}

    def observe_all(self, service: Obj, pods: Iterable[Obj]) -> float | None:
        """Full sync: every selected pod. Returns the annotation value (None: remove it)."""
        key = _key(service)
        state = self._states.get(key)
        known = state is not None
        state = state or _ServiceState()
        oldest: float | None = None
        pod_times: dict[str, float] = {}
        for pod in pods:
            t = pod_trigger_time(pod)
            if t is None:
                continue
            pod_times[name_of(pod)] = t
            prev = state.pod_times.get(name_of(pod))
            if prev is None or t > prev:
                oldest = t if oldest is None else min(oldest, t)
        oldest = self._service_change(service, state, oldest)
        state.pod_times = pod_times
        self._states[key] = state
        return oldest if known else service_trigger_time(service)

    def observe_changes(self, service: Obj, changed_pods: Mapping[str, Obj | None]) -> float | None:
        """Incremental sync: only the pods that changed (None: gone from the Service)."""
        key = _key(service)
        state = self._states.get(key)
        known = state is not None
        state = state or _ServiceState()
        oldest: float | None = None
        for name, pod in changed_pods.items():
            t = pod_trigger_time(pod) if pod is not None else None
            if t is None:
                state.pod_times.pop(name, None)
                continue
            prev = state.pod_times.get(name)
            if prev is None or t > prev:
                oldest = t if oldest is None else min(oldest, t)
            state.pod_times[name] = t
        oldest = self._service_change(service, state, oldest)
        self._states[key] = state
        return oldest if known else service_trigger_time(service)

    @staticmethod
    def _service_change(service: Obj, state: _ServiceState, oldest: float | None) -> float | None:
        t = service_trigger_time(service)
        if t is not None and (state.service_time is None or t > state.service_time):
            oldest = t if oldest is None else min(oldest, t)
        state.service_time = t
        return oldest

    def delete_service(self, key: str) -> None:
        self._states.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._states


def _key(service: Obj) -> str:
    return f"{namespace_of(service)}/{name_of(service)}"
