"""Per-agent measurements: watch events and wire bytes per resource, decode time, and the
network-programming latency (slice trigger time -> the agent's table reflects it).

Agents keep plain counters (cheap enough for a thousand agents in one process); one Prometheus
collector exports every agent of the process with a `node` label, and `snapshot()` gives the
same numbers as JSON.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

# Network-programming latency buckets (seconds): fine below a second, where a quiet local cluster
# lives; then kube-proxy's own steps (every second to a minute, 5 s to two, 30 s to five), so an
# overloaded run (a rollout of 20,000 pods on two cores) still reads as a number.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   *(float(s) for s in range(1, 60)), *(float(s) for s in range(60, 120, 5)),
                   *(float(s) for s in range(120, 301, 30)))
# Samples kept for exact percentiles (the most recent ones).
LATENCY_SAMPLES = 100_000


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


@dataclass
class ResourceCounters:
    events: dict[str, int] = field(default_factory=dict)  # by watch event type
    bytes: int = 0  # watch HTTP body bytes (event lines and their newlines)
    decode_seconds: float = 0.0
    lists: int = 0
    relists: int = 0  # lists after the first (410 Expired)
    reconnects: int = 0  # watches resumed after a broken connection or a server timeout

    def to_dict(self) -> dict[str, Any]:
        return {"events": dict(self.events), "eventsTotal": sum(self.events.values()), "bytes": self.bytes,
                "decodeSeconds": round(self.decode_seconds, 6), "lists": self.lists,
                "relists": self.relists, "reconnects": self.reconnects}


class AgentMetrics:
    """The numbers of one agent."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.resources: dict[str, ResourceCounters] = {}
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.samples: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.table_syncs = 0
        self.table_service_ports = 0
        self.table_endpoints = 0

    def resource(self, name: str) -> ResourceCounters:
        r = self.resources.get(name)
        if r is None:
            r = self.resources[name] = ResourceCounters()
        return r

    def observe_event(self, resource: str, typ: str, nbytes: int) -> None:
        r = self.resource(resource)
        r.events[typ] = r.events.get(typ, 0) + 1
        r.bytes += nbytes

    def observe_latency(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.bucket_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds
        self.latency_count += 1
        self.samples.append(seconds)

    def latency_summary(self) -> dict[str, Any]:
        values = sorted(self.samples)
        return {"count": self.latency_count, "sum": round(self.latency_sum, 6),
                "p50": percentile(values, 0.50), "p90": percentile(values, 0.90),
                "p99": percentile(values, 0.99), "max": values[-1] if values else None,
                "buckets": {str(b): c for b, c in zip((*LATENCY_BUCKETS, "+Inf"), self.bucket_counts, strict=True)}}

    def snapshot(self) -> dict[str, Any]:
        return {"resources": {k: v.to_dict() for k, v in sorted(self.resources.items())},
                "latency": self.latency_summary(), "tableSyncs": self.table_syncs,
                "tableServicePorts": self.table_service_ports, "tableEndpoints": self.table_endpoints}


class AgentsCollector(Collector):
    """Prometheus view of every agent of this process (`agents()` is called at each scrape)."""

    def __init__(self, agents: Callable[[], Iterable[AgentMetrics]]) -> None:
        self._agents = agents

    def collect(self) -> Iterator[Any]:
        events = CounterMetricFamily("sliceplane_agent_watch_events", "Watch events received, by type.",
                                     labels=["node", "resource", "type"])
        nbytes = CounterMetricFamily("sliceplane_agent_watch_bytes", "Watch HTTP body bytes received.",
                                     labels=["node", "resource"])
        decode = CounterMetricFamily("sliceplane_agent_decode_seconds", "Time spent decoding watch events.",
                                     labels=["node", "resource"])
        relists = CounterMetricFamily("sliceplane_agent_relists", "Lists after the first (410 Expired).",
                                      labels=["node", "resource"])
        reconnects = CounterMetricFamily("sliceplane_agent_watch_reconnects", "Watches resumed.",
                                         labels=["node", "resource"])
        ports = GaugeMetricFamily("sliceplane_agent_table_service_ports", "Service ports in the table.",
                                  labels=["node"])
        eps = GaugeMetricFamily("sliceplane_agent_table_endpoints", "Endpoints in the table.", labels=["node"])
        latency = HistogramMetricFamily(
            "sliceplane_agent_network_programming_duration_seconds",
            "From a slice's last-change-trigger-time to the agent's table reflecting it.", labels=["node"])
        for m in self._agents():
            for res, c in m.resources.items():
                for typ, n in c.events.items():
                    events.add_metric([m.node, res, typ], n)
                nbytes.add_metric([m.node, res], c.bytes)
                decode.add_metric([m.node, res], c.decode_seconds)
                relists.add_metric([m.node, res], c.relists)
                reconnects.add_metric([m.node, res], c.reconnects)
            ports.add_metric([m.node], m.table_service_ports)
            eps.add_metric([m.node], m.table_endpoints)
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), m.bucket_counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            latency.add_metric([m.node], buckets, m.latency_sum)
        yield from (events, nbytes, decode, relists, reconnects, ports, eps, latency)
