"""What an API server needs to know before it starts."""

from __future__ import annotations

from dataclasses import dataclass, field

from sliceplane.store.base import CompactionPolicy


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port; the chosen one is APIServer.port
    store_url: str = "memory://"
    # etcd's default request limit; enforced here for every store so the error is a clear 413.
    max_object_bytes: int = 1572864
    max_request_bytes: int = 3145728
    service_cidr: str = "10.96.0.0/12"
    service_cidr_v6: str | None = None
    node_port_range: tuple[int, int] = (30000, 32767)
    # Recent events kept for watches that resume from a resourceVersion; older ones get 410.
    watch_cache_capacity: int = 10_000
    # ... and at most this many stored bytes of them (large EndpointSlices fill it first).
    watch_cache_bytes: int = 64 << 20
    # Seconds between BOOKMARK events for watches that ask for them (Kubernetes: about a minute).
    bookmark_interval: float = 5.0
    # Events a slow watcher may have queued before its watch is closed (it then re-lists).
    watcher_buffer: int = 10_000
    # How long a consistent list waits for the watch cache to reach the store's revision.
    consistent_read_timeout: float = 3.0
    # The store's periodic compaction (kube-apiserver's --etcd-compaction-interval); sqlite and etcd.
    compaction: CompactionPolicy = field(default_factory=CompactionPolicy)
