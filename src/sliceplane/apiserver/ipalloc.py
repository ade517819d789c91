"""Service ClusterIP and NodePort allocation.

The allocators are plain state (a set of taken values) with no I/O: the server rebuilds them
from the stored Services on start, allocates before a write and releases after a delete or a
failed write. `_settle_families` decides a Service's families, given the old object, as
Kubernetes' service REST storage does.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from sliceplane.api.errors import INVALID, Cause, invalid_value
from sliceplane.api.validation import cluster_ip_problems, single_stack_problem


class AllocationError(Exception):
    """A requested value cannot be had; carries the field errors for a 422."""

    def __init__(self, *causes: Cause) -> None:
        super().__init__("; ".join(c.message for c in causes))
        self.causes = list(causes)


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


FAMILY_FIELDS = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")


def _is_ip_family_service(spec: dict[str, Any]) -> bool:
    return bool(spec) and spec.get("type", "ClusterIP") != "ExternalName"


def _other_family(family: str) -> str:
    return "IPv6" if family == "IPv4" else "IPv4"


def _unchanged_prefer_dual_stack(spec: dict[str, Any], old: dict[str, Any]) -> bool:
    """A PreferDualStack Service updated without touching its families keeps them as they are."""
    return (spec.get("ipFamilyPolicy") == old.get("ipFamilyPolicy") == "PreferDualStack"
            and spec.get("type", "ClusterIP") == old.get("type", "ClusterIP")
            and spec.get("clusterIPs") == old.get("clusterIPs")
            and spec.get("ipFamilies") == old.get("ipFamilies"))


def _wants_node_ports(spec: dict[str, Any]) -> bool:
    return spec.get("type") in ("NodePort", "LoadBalancer")


def _cluster_ips(spec: dict[str, Any]) -> list[str]:
    """clusterIPs, or `clusterIP` alone standing for them."""
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [str(ip) for ip in ips]


def held_ips(svc: dict[str, Any]) -> list[str]:
    return [ip for ip in _cluster_ips(svc.get("spec") or {}) if ip and ip != "None"]


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
            for k in FAMILY_FIELDS:
                spec.pop(k, None)
            return
        old = old_spec if _is_ip_family_service(old_spec) and old_spec.get("clusterIP") else {}
        if old:
            # ClusterIPs are immutable: an update that omits them keeps the allocated ones.
            if not spec.get("clusterIP"):
                spec["clusterIP"] = old["clusterIP"]
            if not spec.get("clusterIPs") and old.get("clusterIPs"):
                spec["clusterIPs"] = list(old["clusterIPs"])
            if _unchanged_prefer_dual_stack(spec, old):
                return  # never upgraded or downgraded because the cluster's families changed
        if causes := cluster_ip_problems(spec):
            raise AllocationError(*causes)
        requested, families, policy = self._settle_families(spec, old)
        spec["ipFamilyPolicy"] = policy
        spec["ipFamilies"] = families
        if requested[:1] == ["None"]:
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        old_ips = list(old.get("clusterIPs") or []) if old.get("clusterIP") != "None" else []
        ips = list(requested)
        for i, fam in enumerate(families):
            if i < len(old_ips) and i < len(ips):
                continue  # held since the Service was created (a downgrade's second IP is released after the write)
            a = self.by_family(fam)
            assert a is not None  # _settle_families refused unconfigured families
            want = ips[i] if i < len(ips) else None
            path = "spec.clusterIPs" if spec.get("clusterIPs") else "spec.clusterIP"
            shown = _go_string_list(ips) if ips else '""'
            ip = a.allocate(want, path, shown)
            new_ips.append(ip)
            ips[i:i + 1] = [ip]
        spec["clusterIP"] = ips[0]
        spec["clusterIPs"] = ips

    def _settle_families(self, spec: dict[str, Any], old: dict[str, Any]) -> tuple[list[str], list[str], str]:
        """The Service's clusterIPs, ipFamilies and ipFamilyPolicy after Kubernetes' inference rules:
        a policy kept across updates, SingleStack as clear intent to release a secondary family,
        families read from the requested IPs, and dual-stack only where the cluster has both."""
        requested = _cluster_ips(spec)
        families = [str(f) for f in spec.get("ipFamilies") or []]
        headless_selectorless = requested[:1] == ["None"] and not spec.get("selector")
        policy = str(spec.get("ipFamilyPolicy") or old.get("ipFamilyPolicy")
                     or ("RequireDualStack" if headless_selectorless else "SingleStack"))
        causes: list[Cause] = []
        if old:
            old_ips = list(old.get("clusterIPs") or [])
            old_families = list(old.get("ipFamilies") or [])
            if policy == "SingleStack":
                if requested == old_ips:
                    requested = requested[:1]
                if families == old_families:
                    families = families[:1]
            else:
                if requested and len(requested) < len(old_ips):
                    causes.append(invalid_value("spec.ipFamilyPolicy", policy,
                                                "must be 'SingleStack' to release the secondary cluster IP"))
                if families and len(families) < len(old_families):
                    causes.append(invalid_value("spec.ipFamilyPolicy", policy,
                                                "must be 'SingleStack' to release the secondary IP family"))
        if (cause := single_stack_problem(policy, requested, families)) is not None:
            causes.append(cause)
        for i, ip in enumerate(requested):
            if ip == "None":
                break
            fam = "IPv6" if ":" in ip else "IPv4"
            if i < len(families):
                continue
            if self.by_family(fam) is None:
                causes.append(_invalid(f"spec.clusterIPs[{i}]", _go_string_list(requested),
                                       f"{fam} is not configured on this cluster"))
            else:
                families.append(fam)
        if causes:
            raise AllocationError(*causes)
        if headless_selectorless:
            # Allowed two families even on a single-stack cluster: its endpoints are the user's.
            families = families or [self.v4.family]
            if len(families) < 2 and policy != "SingleStack":
                families.append(_other_family(families[0]))
            return requested, families, policy
        if policy == "RequireDualStack" and self.v6 is None:
            causes.append(invalid_value("spec.ipFamilyPolicy", policy,
                                        "this cluster is not configured for dual-stack services"))
        causes += [invalid_value(f"spec.ipFamilies[{i}]", fam, "not configured on this cluster")
                   for i, fam in enumerate(families) if self.by_family(fam) is None]
        if causes:
            raise AllocationError(*causes)
        families = families or [self.v4.family]
        if policy != "SingleStack" and len(families) == 1 and self.v6 is not None:
            families.append(_other_family(families[0]))
        return requested, families, policy

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
