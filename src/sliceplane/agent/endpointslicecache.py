"""The agent's EndpointSliceCache (kube-proxy's name): every copy of every endpoint, by Service
port, and the copy the proxy uses, kept incrementally.

A change to one slice costs O(that slice's endpoints), not O(the Service's): at P=20,000 with one
endpoint per slice, merging the whole Service again per event would cost ~0.3 s each. The merged
result is exactly `servicetable.merge_endpoints` over the same slices taken in key order (a test
replays random event sequences against it). Pure: values in, values out, no IO.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sliceplane.agent.servicetable import (
    IPV4,
    Contributions,
    Endpoint,
    ServicePortName,
    SliceInfo,
    contributions,
)


@dataclass
class PortEndpoints:
    """One Service port: each endpoint's copies by source key, and the winning copy."""

    copies: dict[str, dict[str, Endpoint]] = field(default_factory=dict)
    merged: dict[str, Endpoint] = field(default_factory=dict)

    def put(self, ep_key: str, source: str, ep: Endpoint | None) -> bool:
        """Set (or, with None, drop) one source's copy; True when the winner changed."""
        copies = self.copies.setdefault(ep_key, {})
        if ep is None:
            copies.pop(source, None)
        else:
            copies[source] = ep
        if not copies:
            del self.copies[ep_key]
            return self.merged.pop(ep_key, None) is not None
        # As merge_endpoints over sources in key order: the first non-terminating copy, else the first.
        winner = copies[min(copies, key=lambda s: (copies[s].terminating, s))]
        if self.merged.get(ep_key) == winner:
            return False
        self.merged[ep_key] = winner
        return True


class EndpointSliceCache:
    """Slices (or Endpoints objects) by key, merged per Service port."""

    def __init__(self, ip_family: str = IPV4) -> None:
        self.ip_family = ip_family
        self._sources: dict[str, Contributions] = {}
        self._services: dict[str, dict[ServicePortName, PortEndpoints]] = {}

    def __len__(self) -> int:
        return len(self._sources)

    def update(self, key: str, info: SliceInfo | None) -> set[str]:
        """Replace what source `key` contributes (None: it is gone); the Services whose merged
        endpoints changed."""
        old = self._sources.pop(key, {})
        new = contributions(info, self.ip_family) if info is not None else {}
        if new:
            self._sources[key] = new
        changed: set[str] = set()
        for spn in old.keys() | new.keys():
            before, after = old.get(spn, {}), new.get(spn, {})
            if before == after:
                continue
            ports = self._services.setdefault(spn.service_key, {})
            port = ports.setdefault(spn, PortEndpoints())
            for ep_key in before.keys() - after.keys():
                if port.put(ep_key, key, None):
                    changed.add(spn.service_key)
            for ep_key, ep in after.items():
                if before.get(ep_key) != ep and port.put(ep_key, key, ep):
                    changed.add(spn.service_key)
            if not port.copies:
                del ports[spn]
                if not ports:
                    del self._services[spn.service_key]
        return changed

    def replace(self, items: Iterable[tuple[str, SliceInfo]]) -> None:
        """Start over from a full list (a re-list)."""
        self._sources = {}
        self._services = {}
        for key, info in items:
            self.update(key, info)

    def endpoints(self, service_key: str) -> dict[ServicePortName, tuple[Endpoint, ...]]:
        """The Service's merged endpoints by port, sorted by endpoint key (`merge_endpoints`' shape)."""
        return {spn: tuple(sorted(port.merged.values(), key=lambda e: e.key))
                for spn, port in self._services.get(service_key, {}).items() if port.merged}
