"""Prometheus metrics of one API server (own registry, so several servers can share a process).

Names a benchmark reads:
- `apiserver_request_total{verb,resource,subresource,code}`
- `sliceplane_store_writes_total{resource,operation}` (operation: create, update, delete)
- `sliceplane_watch_events_sent_total{resource}` and `sliceplane_watch_bytes_sent_total{resource}`
- `sliceplane_watch_event_serializations_total{resource,encoding}`: how many times an event was
  encoded; with N watchers of one event it stays at one per encoding
- gauge `sliceplane_watchers{resource}`
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class APIMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "apiserver_request", "API requests by verb, resource and HTTP code",
            ["verb", "resource", "subresource", "code"], registry=self.registry)
        self.store_writes = Counter(
            "sliceplane_store_writes", "Writes to the store per resource",
            ["resource", "operation"], registry=self.registry)
        self.watch_events = Counter(
            "sliceplane_watch_events_sent", "Watch events written to clients per resource",
            ["resource"], registry=self.registry)
        self.watch_bytes = Counter(
            "sliceplane_watch_bytes_sent", "Watch stream bytes written to clients per resource",
            ["resource"], registry=self.registry)
        self.watch_serializations = Counter(
            "sliceplane_watch_event_serializations", "Watch event encodings (one per event and encoding)",
            ["resource", "encoding"], registry=self.registry)
        self.watchers = Gauge(
            "sliceplane_watchers", "Open watches per resource", ["resource"], registry=self.registry)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def value(self, name: str, **labels: str) -> float:
        """Sum of a sample over the series matching `labels` (tests and benchmarks)."""
        total = 0.0
        for metric in self.registry.collect():
            for s in metric.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total
