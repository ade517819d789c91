"""Service ClusterIP and NodePort allocation.

The allocators are plain state (a set of taken values) with no I/O: the server rebuilds them
from the stored Services on start, allocates before a write and releases after a delete or a
failed write. `plan_service_allocation` decides what a Service needs, given the old object.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from sliceplane.api.errors import INVALID, Cause, invalid_value
from sliceplane.api.validation import single_stack_problem


class AllocationError(Exception):
    """A requested value cannot be had; carries the field error for a 422."""

    def __init__(self, cause: Cause) -> None:
        super().__init__(cause.message)
        self.cause = cause


@dataclass
class ClusterIPAllocator:
    """Free/taken addresses of one service CIDR (network and broadcast addresses never handed out)."""

    cidr: str
    taken: set[int] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.network = ipaddress.ip_network(self.cidr, strict=False)
        self.family = "IPv4" if self.network.version == 4 else "IPv6"
        first = int(self.network.network_address) + 1
        last = int(self.network.broadcast_address) - (1 if self.network.version == 4 else 0)
        # Bound the usable span so an IPv6 /64 does not mean 2**64 candidates.
        self.first, self.last = first, min(last, first + (1 << 20) - 1)

    def contains(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return addr.version == self.network.version and self.first <= int(addr) <= self.last

    def allocate(self, requested: str | None, field_path: str, shown: str) -> str:
        """`shown` is the rejected value as Kubernetes prints it in the field error."""
        if requested:
            if not self.contains(requested):
                raise AllocationError(_invalid(
                    field_path, shown,
                    f"failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid "
                    f"range. The range of valid IPs is {self.network}"))
            n = int(ipaddress.ip_address(requested))
            if n in self.taken:
                raise AllocationError(_invalid(
                    field_path, shown, f"failed to allocate IP {requested}: provided IP is already allocated"))
            self.taken.add(n)
            return requested
        size = self.last - self.first + 1
        if len(self.taken) >= size:
            raise AllocationError(_invalid(field_path, shown, "failed to allocate IP: range is full"))
        for _ in range(64):
            n = self.rng.randint(self.first, self.last)
            if n not in self.taken:
                break
        else:
            n = next(i for i in range(self.first, self.last + 1) if i not in self.taken)
        self.taken.add(n)
        return str(ipaddress.ip_address(n))

    def mark(self, ip: str) -> None:
        """Record an address already stored (rebuild on start)."""
        if self.contains(ip):
            self.taken.add(int(ipaddress.ip_address(ip)))

    def release(self, ip: str) -> None:
        if self.contains(ip):
            self.taken.discard(int(ipaddress.ip_address(ip)))


@dataclass
class NodePortAllocator:
    low: int = 30000
    high: int = 32767
    taken: set[int] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)

    def allocate(self, requested: int | None, field_path: str) -> int:
        if requested:
            if not self.low <= requested <= self.high:
                raise AllocationError(invalid_value(
                    field_path, requested,
                    f"provided port is not in the valid range. The range of valid ports is {self.low}-{self.high}"))
            if requested in self.taken:
                raise AllocationError(invalid_value(field_path, requested, "provided port is already allocated"))
            self.taken.add(requested)
            return requested
        free = (self.high - self.low + 1) - len(self.taken)
        if free <= 0:
            raise AllocationError(invalid_value(field_path, 0, "range is full"))
        for _ in range(64):
            p = self.rng.randint(self.low, self.high)
            if p not in self.taken:
                break
        else:
            p = next(i for i in range(self.low, self.high + 1) if i not in self.taken)
        self.taken.add(p)
        return p

    def mark(self, port: int) -> None:
        if self.low <= port <= self.high:
            self.taken.add(port)

    def release(self, port: int) -> None:
        self.taken.discard(port)


def _is_ip_family_service(spec: dict[str, Any]) -> bool:
    return spec.get("type", "ClusterIP") != "ExternalName"


def _wants_node_ports(spec: dict[str, Any]) -> bool:
    return spec.get("type") in ("NodePort", "LoadBalancer")


def held_ips(svc: dict[str, Any]) -> list[str]:
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in ips if ip and ip != "None"]


def held_node_ports(svc: dict[str, Any]) -> list[int]:
    spec = svc.get("spec") or {}
    ports = [p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict)]
    hc = spec.get("healthCheckNodePort")
    return [p for p in [*ports, hc] if isinstance(p, int) and p > 0]


@dataclass
class ServiceAllocations:
    """Both allocators of a server, plus the transaction helpers the handlers use."""

    v4: ClusterIPAllocator
    v6: ClusterIPAllocator | None
    node_ports: NodePortAllocator

    @classmethod
    def build(cls, service_cidr: str, service_cidr_v6: str | None,
              node_port_range: tuple[int, int]) -> ServiceAllocations:
        primary = ClusterIPAllocator(service_cidr)
        secondary = ClusterIPAllocator(service_cidr_v6) if service_cidr_v6 else None
        if primary.family == "IPv6" and secondary is None:
            return cls(primary, None, NodePortAllocator(*node_port_range))  # single-stack IPv6
        return cls(primary, secondary, NodePortAllocator(*node_port_range))

    def by_family(self, family: str) -> ClusterIPAllocator | None:
        for a in (self.v4, self.v6):
            if a is not None and a.family == family:
                return a
        return None

    def mark(self, svc: dict[str, Any]) -> None:
        for ip in held_ips(svc):
            fam = "IPv6" if ":" in ip else "IPv4"
            a = self.by_family(fam)
            if a:
                a.mark(ip)
        for p in held_node_ports(svc):
            self.node_ports.mark(p)

    def release(self, svc: dict[str, Any]) -> None:
        self.release_parts(held_ips(svc), held_node_ports(svc))

    def release_parts(self, ips: list[str], ports: list[int]) -> None:
        for ip in ips:
            a = self.by_family("IPv6" if ":" in ip else "IPv4")
            if a:
                a.release(ip)
        for p in ports:
            self.node_ports.release(p)

    def allocate(self, svc: dict[str, Any], old: dict[str, Any] | None) -> tuple[list[str], list[int]]:
        """Fill clusterIP(s)/ipFamilies/nodePorts in `svc` (mutated) and return what was newly taken.

        On error nothing stays taken. Values held by `old` are kept and not re-taken.
        """
        spec = svc.setdefault("spec", {})
        old_spec = (old or {}).get("spec") or {}
        new_ips: list[str] = []
        new_ports: list[int] = []
        try:
            self._allocate_ips(spec, old_spec, new_ips)
            self._allocate_node_ports(spec, old_spec, new_ports)
        except AllocationError:
            self.release_parts(new_ips, new_ports)
            raise
        return new_ips, new_ports

    def _allocate_ips(self, spec: dict[str, Any], old_spec: dict[str, Any], new_ips: list[str]) -> None:
        if not _is_ip_family_service(spec):
            for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                spec.pop(k, None)
            return
        if old_spec and _is_ip_family_service(old_spec) and old_spec.get("clusterIP"):
            # ClusterIPs are immutable: an update that omits them keeps the allocated ones.
            for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if not spec.get(k) and old_spec.get(k):
                    spec[k] = old_spec[k]
            return
        requested = list(spec.get("clusterIPs") or [])
        if spec.get("clusterIP") and not requested:
            requested = [spec["clusterIP"]]
        families = list(spec.get("ipFamilies") or [])
        # No policy but two families (or two IPs): the user asked for both, as Kubernetes infers.
        two = len(families) > 1 or len(requested) > 1
        policy = spec.get("ipFamilyPolicy") or ("RequireDualStack" if two else "SingleStack")
        if policy == "RequireDualStack" and self.v6 is None:
            raise AllocationError(invalid_value("spec.ipFamilyPolicy", policy,
                                                "this cluster is not configured for dual-stack services"))
        if (cause := single_stack_problem(policy, requested, families)) is not None:
            raise AllocationError(cause)
        if requested and requested[0] == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
            spec["ipFamilies"] = families or [self.v4.family]
            spec["ipFamilyPolicy"] = policy
            return
        if not families:
            families = ["IPv6" if ":" in ip else "IPv4" for ip in requested] or [self.v4.family]
            if policy in ("PreferDualStack", "RequireDualStack") and self.v6 and len(families) == 1:
                other = self.v6.family if families[0] == self.v4.family else self.v4.family
                families.append(other)
        if policy == "SingleStack":
            families = families[:1]
        ips: list[str] = []
        for i, fam in enumerate(families):
            a = self.by_family(fam)
            path = "spec.clusterIPs" if requested else "spec.clusterIP"
            if a is None:
                if policy == "PreferDualStack" and i > 0:
                    families = families[:i]
                    break
                raise AllocationError(invalid_value("spec.ipFamilies", fam, "not configured on this cluster"))
            want = requested[i] if i < len(requested) else None
            shown = _go_string_list(requested) if requested else '""'
            ip = a.allocate(want, path, shown)
            new_ips.append(ip)
            ips.append(ip)
        spec["clusterIP"] = ips[0]
        spec["clusterIPs"] = ips
        spec["ipFamilies"] = families
        spec["ipFamilyPolicy"] = policy

    def _allocate_node_ports(self, spec: dict[str, Any], old_spec: dict[str, Any], new_ports: list[int]) -> None:
        ports = spec.get("ports") or []
        if not _wants_node_ports(spec):
            if _wants_node_ports(old_spec):
                # Leaving NodePort/LoadBalancer: the allocated nodePorts go with it (released after the write).
                held = {p.get("nodePort") for p in old_spec.get("ports") or [] if isinstance(p, dict)}
                for p in ports:
                    if isinstance(p, dict) and p.get("nodePort") in held:
                        p.pop("nodePort", None)
            return
        old_by_key = {}
        for p in old_spec.get("ports") or []:
            if isinstance(p, dict) and p.get("nodePort"):
                old_by_key[(p.get("port"), p.get("protocol", "TCP"))] = p["nodePort"]
        old_held = set(old_by_key.values())
        requested: set[Any] = set()
        for i, p in enumerate(ports):
            if not isinstance(p, dict):
                continue
            want = p.get("nodePort")
            key = (p.get("port"), p.get("protocol", "TCP"))
            if not want and key in old_by_key:
                p["nodePort"] = old_by_key[key]
                continue
            if want and (want in old_held or want in requested):
                # A nodePort this Service names twice is taken once (TCP and UDP may share one);
                # a repeat for the same protocol is validation's Duplicate value.
                continue
            if want:
                requested.add(want)
            got = self.node_ports.allocate(want if isinstance(want, int) else None, f"spec.ports[{i}].nodePort")
            new_ports.append(got)
            p["nodePort"] = got

    def dropped_by_update(self, old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[int]]:
        """What `old` held that `new` no longer does (released after the update is stored)."""
        new_ips, new_ports = set(held_ips(new)), set(held_node_ports(new))
        return ([ip for ip in held_ips(old) if ip not in new_ips],
                [p for p in held_node_ports(old) if p not in new_ports])


def _go_string_list(items: list[str]) -> str:
    """Kubernetes prints the rejected clusterIPs as Go's `[]string{"a"}`."""
    return "[]string{" + ", ".join(f'"{i}"' for i in items) + "}"


def _invalid(path: str, shown: str, detail: str) -> Cause:
    return Cause(INVALID, f"Invalid value: {shown}: {detail}", path)
