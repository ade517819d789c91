"""Pod address management for the simulated fleet (pure: values in, values out, no I/O).

Two levels, as in a real cluster:
- `ClusterCIDRs` carves per-node pod CIDRs out of the cluster CIDR (the node IPAM controller's
  job: 10.128.0.0/9 with /19 per node gives 1024 nodes of 8190 addresses each);
- `NodeIPAM` hands out addresses inside one node's CIDR (the host-local CNI plugin's job). It
  allocates round-robin from the last address it gave, so a just-freed address is not reused at
  once (endpoint consumers would otherwise see one IP flip between pods), and it skips the
  network address, the gateway (first host) and, for IPv4, the broadcast address.

After a restart the shell rebuilds both from the objects in the API (`reserve` what nodes and
pods already hold), so an address is never handed out twice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_CLUSTER_CIDR = "10.128.0.0/9"
DEFAULT_NODE_MASK = 19
DEFAULT_CLUSTER_CIDR_V6 = "fd00:10:244::/48"
DEFAULT_NODE_MASK_V6 = 64


class IPAMError(Exception):
    pass


class CIDRExhaustedError(IPAMError):
    pass


@dataclass
class ClusterCIDRs:
    """Per-node subnets of one cluster CIDR, handed out lowest first."""

    cluster_cidr: str
    node_mask: int
    used: set[int] = field(default_factory=set)  # subnet indexes taken

    def __post_init__(self) -> None:
        self.network: IPNetwork = ipaddress.ip_network(self.cluster_cidr)
        if not self.network.prefixlen <= self.node_mask <= self.network.max_prefixlen:
            raise IPAMError(f"node mask /{self.node_mask} does not fit in {self.cluster_cidr}")
        self.size = 2 ** (self.node_mask - self.network.prefixlen)
        self._step = 2 ** (self.network.max_prefixlen - self.node_mask)
        self._next = 0

    def subnet(self, index: int) -> str:
        base = int(self.network.network_address) + index * self._step
        return str(ipaddress.ip_network((base, self.node_mask)))

    def index_of(self, cidr: str) -> int | None:
        """The subnet index of `cidr`, or None when it is not one of ours."""
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError:
            return None
        if net.version != self.network.version or net.prefixlen != self.node_mask or not net.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        return (int(net.network_address) - int(self.network.network_address)) // self._step

    def reserve(self, cidr: str) -> bool:
        """Mark an existing node's CIDR as taken; False when it is not one of ours."""
        index = self.index_of(cidr)
        if index is None:
            return False
        self.used.add(index)
        return True

    def allocate(self) -> str:
        for _ in range(self.size):
            index = self._next
            self._next = (self._next + 1) % self.size
            if index not in self.used:
                self.used.add(index)
                return self.subnet(index)
        raise CIDRExhaustedError(f"no free /{self.node_mask} left in {self.cluster_cidr}")

    def release(self, cidr: str) -> None:
        index = self.index_of(cidr)
        if index is not None:
            self.used.discard(index)


@dataclass
class NodeIPAM:
    """Addresses inside one node's pod CIDR."""

    cidr: str
    used: set[int] = field(default_factory=set)  # offsets from the network address

    def __post_init__(self) -> None:
        self.network: IPNetwork = ipaddress.ip_network(self.cidr)
        total = self.network.num_addresses
        # usable offsets: skip the network address and the gateway; IPv4 also the broadcast
        self.first = 2 if total > 4 else 1 if total > 1 else 0
        self.last = total - 2 if self.network.version == 4 and total > 2 else total - 1
        self._cursor = self.first

    @property
    def capacity(self) -> int:
        return max(0, self.last - self.first + 1)

    @property
    def free(self) -> int:
        return self.capacity - len(self.used)

    def _offset(self, ip: str) -> int | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if addr.version != self.network.version or addr not in self.network:
            return None
        off = int(addr) - int(self.network.network_address)
        return off if self.first <= off <= self.last else None

    def contains(self, ip: str) -> bool:
        return self._offset(ip) is not None

    def reserve(self, ip: str) -> bool:
        """Mark an address found on an existing pod as taken; False when not in this range."""
        off = self._offset(ip)
        if off is None:
            return False
        self.used.add(off)
        return True

    def allocate(self) -> str:
        if self.free <= 0:
            raise CIDRExhaustedError(f"no free address left in {self.cidr}")
        span = self.capacity
        off = self._cursor
        for _ in range(span):
            if off not in self.used:
                self.used.add(off)
                self._cursor = off + 1 if off < self.last else self.first
                return str(self.network.network_address + off)
            off = off + 1 if off < self.last else self.first
        raise CIDRExhaustedError(f"no free address left in {self.cidr}")  # unreachable: free > 0

    def release(self, ip: str) -> None:
        off = self._offset(ip)
        if off is not None:
            self.used.discard(off)


def node_internal_ip(index: int, family: int = 4) -> str:
    """The simulated node's own address: 192.168.0.0/16 (IPv4), fc00:f853:ccd:e793::/64 (IPv6)."""
    if family == 4:
        if not 0 <= index < 65534:
            raise IPAMError(f"node index {index} outside 192.168.0.0/16")
        return str(ipaddress.IPv4Address("192.168.0.0") + index + 1)
    return str(ipaddress.IPv6Address("fc00:f853:ccd:e793::") + index + 1)


def sort_pod_ips(ips: Iterable[str]) -> list[str]:
    """IPv4 first, as Kubernetes lists podIPs for an IPv4-primary dual-stack cluster."""
    return sorted(ips, key=lambda ip: ipaddress.ip_address(ip).version)
