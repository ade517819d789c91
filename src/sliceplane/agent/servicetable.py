"""A node's service table: what a kube-proxy on that node would program, as plain values.

Pure: objects in, values out. The agent shell feeds it slices (or legacy Endpoints) and Services;
`sliceplane verify` feeds it endpoints computed from Pods. The rules are kube-proxy's, as observed:

- Slices and Services labelled `service.kubernetes.io/headless` or
  `service.kubernetes.io/service-proxy-name` are not ours to program; a slice without the
  `kubernetes.io/service-name` label belongs to no Service.
- Endpoints are keyed by ServicePortName (namespace/service, port name, protocol), then by
  `address:port` (only the first address of an endpoint counts). Ports whose number is missing
  or 0, and ports without a name field, are skipped. Addresses of the other IP family are skipped.
- An endpoint in two slices is kept once; a non-terminating copy wins over a terminating one.
- Missing conditions: ready -> true, serving -> the ready value, terminating -> false.
- Traffic (internal, from this node): ready endpoints; when there are none, the serving and
  terminating ones. With zone hints on every ready endpoint and at least one for this node's
  zone, only the endpoints hinted for that zone. `internalTrafficPolicy: Local` keeps only this
  node's endpoints (ready, else serving+terminating), without topology.
- Services without a cluster IP (headless, ExternalName) get no entry.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_HEADLESS = "service.kubernetes.io/headless"
LABEL_PROXY_NAME = "service.kubernetes.io/service-proxy-name"
LABEL_ZONE = "topology.kubernetes.io/zone"
ANNOTATION_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
IGNORED_LABELS = (LABEL_HEADLESS, LABEL_PROXY_NAME)
# What the agent asks the API server for, so that ignored objects never cross the wire.
PROXY_LABEL_SELECTOR = f"!{LABEL_PROXY_NAME},!{LABEL_HEADLESS}"

IPV4 = "IPv4"
IPV6 = "IPv6"


@dataclass(frozen=True, slots=True, order=True)
class ServicePortName:
    """One port of one Service: the key of the table."""

    namespace: str
    name: str
    port: str
    protocol: str = "TCP"

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        text = f"{self.namespace}/{self.name}" + (f":{self.port}" if self.port else "")
        return text if self.protocol == "TCP" else f"{text}/{self.protocol}"


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """One endpoint of a slice as the proxy sees it: conditions already defaulted."""

    address: str
    ready: bool
    serving: bool
    terminating: bool
    node_name: str | None = None
    zone: str | None = None
    zone_hints: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PortGroup:
    """Ports (name, number, protocol) that apply to every endpoint of the group."""

    ports: tuple[tuple[str, int, str], ...]
    endpoints: tuple[EndpointInfo, ...]


@dataclass(frozen=True, slots=True)
class SliceInfo:
    """What the proxy keeps of one EndpointSlice (one group) or one Endpoints (one per subset)."""

    namespace: str
    service: str
    groups: tuple[PortGroup, ...]

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.service}"


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    """A merged endpoint under one ServicePortName."""

    address: str
    port: int
    ready: bool
    serving: bool
    terminating: bool
    node_name: str | None = None
    zone: str | None = None
    zone_hints: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    def to_dict(self) -> Obj:
        d: Obj = {"address": self.address, "port": self.port, "ready": self.ready,
                  "serving": self.serving, "terminating": self.terminating,
                  "nodeName": self.node_name, "zone": self.zone}
        if self.zone_hints:
            d["zoneHints"] = list(self.zone_hints)
        return d


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """What the proxy keeps of a Service."""

    namespace: str
    name: str
    cluster_ip: str
    ports: tuple[tuple[str, int, str], ...]  # (name, port, protocol)
    internal_traffic_local: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class NodeView:
    """The node an agent programs: its name and zone (hints are matched against the zone)."""

    name: str
    zone: str = ""
    ip_family: str = IPV4


@dataclass(frozen=True, slots=True)
class TableEntry:
    """One row of the table: a service port, every known endpoint, and those traffic goes to."""

    name: ServicePortName
    cluster_ip: str
    port: int
    endpoints: tuple[Endpoint, ...]
    used: tuple[str, ...] = field(default=())  # endpoint keys, sorted

    def to_dict(self) -> Obj:
        return {"servicePort": str(self.name), "namespace": self.name.namespace, "service": self.name.name,
                "portName": self.name.port, "protocol": self.name.protocol, "clusterIP": self.cluster_ip,
                "port": self.port, "endpoints": [e.to_dict() for e in self.endpoints], "used": list(self.used)}


Table = dict[ServicePortName, TableEntry]


# ---- objects to infos -----------------------------------------------------------------------


def _labels(obj: Obj) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def is_ignored(obj: Obj) -> bool:
    """Labelled for another proxy, or headless: kube-proxy never looks at it."""
    labels = _labels(obj)
    return any(k in labels for k in IGNORED_LABELS)


def ip_family_of(address: str) -> str | None:
    try:
        return IPV6 if ipaddress.ip_address(address).version == 6 else IPV4
    except ValueError:
        return None


def _conditions(cond: Mapping[str, Any] | None) -> tuple[bool, bool, bool]:
    """(ready, serving, terminating) with the proxy's defaults for missing values."""
    cond = cond or {}
    ready_v = cond.get("ready")
    ready = True if ready_v is None else bool(ready_v)
    serving_v = cond.get("serving")
    serving = ready if serving_v is None else bool(serving_v)
    terminating = bool(cond.get("terminating") or False)
    return ready, serving, terminating


def _port_tuple(port: Mapping[str, Any]) -> tuple[str, int, str] | None:
    if port.get("name") is None:
        # The API defaults the name to ""; a port without one is malformed and skipped.
        return None
    number = port.get("port")
    if not number:
        return None
    return (port.get("name") or "", int(number), port.get("protocol") or "TCP")


def slice_to_info(obj: Obj) -> SliceInfo | None:
    """An EndpointSlice as the proxy caches it; None when the proxy ignores it."""
    if is_ignored(obj):
        return None
    meta = obj.get("metadata") or {}
    service = _labels(obj).get(LABEL_SERVICE_NAME)
    if not service or not meta.get("namespace"):
        return None
    ports = tuple(p for p in (_port_tuple(p) for p in obj.get("ports") or []) if p is not None)
    eps: list[EndpointInfo] = []
    for ep in obj.get("endpoints") or []:
        addresses = ep.get("addresses") or []
        if not addresses:
            continue
        ready, serving, terminating = _conditions(ep.get("conditions"))
        hints = frozenset(z.get("name", "") for z in ((ep.get("hints") or {}).get("forZones") or []))
        eps.append(EndpointInfo(addresses[0], ready, serving, terminating, ep.get("nodeName"), ep.get("zone"), hints))
    return SliceInfo(meta["namespace"], service, (PortGroup(ports, tuple(eps)),))


def endpoints_to_info(obj: Obj) -> SliceInfo | None:
    """A legacy Endpoints object, one group per subset: `addresses` are ready, `notReadyAddresses`
    are neither ready nor serving (the legacy API cannot say terminating)."""
    if is_ignored(obj):
        return None
    meta = obj.get("metadata") or {}
    if not meta.get("name") or not meta.get("namespace"):
        return None
    groups: list[PortGroup] = []
    for subset in obj.get("subsets") or []:
        ports = tuple(p for p in (_port_tuple({"name": "", **p}) for p in subset.get("ports") or []) if p)
        eps = [EndpointInfo(a.get("ip", ""), True, True, False, a.get("nodeName")) for a in subset.get("addresses") or []]
        eps += [EndpointInfo(a.get("ip", ""), False, False, False, a.get("nodeName"))
                for a in subset.get("notReadyAddresses") or []]
        groups.append(PortGroup(ports, tuple(e for e in eps if e.address)))
    return SliceInfo(meta["namespace"], meta["name"], tuple(groups))


def service_to_info(obj: Obj, ip_family: str = IPV4) -> ServiceInfo | None:
    """A Service the proxy programs; None for headless, ExternalName, ignored, or other-family ones."""
    if is_ignored(obj):
        return None
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return None
    ips = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
    ips = [ip for ip in ips if ip and ip != "None" and ip_family_of(ip) == ip_family]
    if not ips:
        return None
    ports = tuple((p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP")
                  for p in spec.get("ports") or [])
    return ServiceInfo(meta.get("namespace", ""), meta.get("name", ""), ips[0], ports,
                       spec.get("internalTrafficPolicy") == "Local")


# ---- merging --------------------------------------------------------------------------------


Contributions = dict[ServicePortName, dict[str, Endpoint]]  # port -> endpoint key -> endpoint


def _prefer(seen: Endpoint | None, e: Endpoint) -> bool:
    """Whether copy `e` replaces the copy already seen: a non-terminating copy beats a terminating one."""
    return seen is None or (seen.terminating and not e.terminating)


def contributions(info: SliceInfo, ip_family: str = IPV4) -> Contributions:
    """What one slice (or Endpoints object) gives its Service, by port; an endpoint it lists twice
    keeps its first copy unless a later one is not terminating."""
    out: Contributions = {}
    for group in info.groups:
        for port_name, number, protocol in group.ports:
            by_key = out.setdefault(ServicePortName(info.namespace, info.service, port_name, protocol), {})
            for ep in group.endpoints:
                if ip_family_of(ep.address) != ip_family:
                    continue
                e = Endpoint(ep.address, number, ep.ready, ep.serving, ep.terminating,
                             ep.node_name, ep.zone, tuple(sorted(ep.zone_hints)))
                if _prefer(by_key.get(e.key), e):
                    by_key[e.key] = e
    return out


def merge_endpoints(infos: Iterable[SliceInfo], ip_family: str = IPV4) -> dict[ServicePortName, tuple[Endpoint, ...]]:
    """Every endpoint of a Service's slices, by ServicePortName, deduplicated by address:port.

    Pass the slices in a stable order (e.g. by name): between two copies that are equally
    (non-)terminating, the first one seen is kept.
    """
    merged: dict[ServicePortName, dict[str, Endpoint]] = {}
    for info in infos:
        for spn, eps in contributions(info, ip_family).items():
            by_key = merged.setdefault(spn, {})
            for key, e in eps.items():
                if _prefer(by_key.get(key), e):
                    by_key[key] = e
    return {spn: tuple(sorted(eps.values(), key=lambda e: e.key)) for spn, eps in merged.items() if eps}


def _usable(endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """Ready endpoints, else serving+terminating ones."""
    eps = list(endpoints)
    ready = [e for e in eps if e.ready]
    return ready or [e for e in eps if e.serving and e.terminating]


def topology_zone(endpoints: Iterable[Endpoint], zone: str) -> str:
    """The zone to filter by: this node's, when every ready endpoint has hints and one names it."""
    ready = [e for e in endpoints if e.ready]
    if not ready or not zone:
        return ""
    if all(e.zone_hints for e in ready) and any(zone in e.zone_hints for e in ready):
        return zone
    return ""


def used_endpoints(endpoints: tuple[Endpoint, ...], service: ServiceInfo, node: NodeView) -> tuple[Endpoint, ...]:
    """The endpoints internal traffic from this node goes to."""
    if service.internal_traffic_local:
        return tuple(_usable(e for e in endpoints if e.node_name and e.node_name == node.name))
    zone = topology_zone(endpoints, node.zone)
    chosen = [e for e in endpoints if e.ready and (not zone or zone in e.zone_hints)]
    if not chosen:
        chosen = [e for e in endpoints if e.serving and e.terminating]
    return tuple(chosen)


def service_entries(service: ServiceInfo, endpoints_by_port: Mapping[ServicePortName, tuple[Endpoint, ...]],
                    node: NodeView) -> Table:
    """The table rows of one Service, joining its ports with the merged endpoints."""
    out: Table = {}
    for port_name, number, protocol in service.ports:
        spn = ServicePortName(service.namespace, service.name, port_name, protocol)
        eps = endpoints_by_port.get(spn, ())
        used = tuple(sorted(e.key for e in used_endpoints(eps, service, node)))
        out[spn] = TableEntry(spn, service.cluster_ip, number, eps, used)
    return out


def build_table(services: Iterable[Obj], infos: Iterable[SliceInfo], node: NodeView) -> Table:
    """The whole table from Services and slice infos (for tests, `verify`, and the agent's re-list)."""
    by_service: dict[str, list[SliceInfo]] = {}
    for info in infos:
        by_service.setdefault(info.service_key, []).append(info)
    table: Table = {}
    for obj in services:
        svc = service_to_info(obj, node.ip_family)
        if svc is None:
            continue
        table.update(service_entries(svc, merge_endpoints(by_service.get(svc.key, ()), node.ip_family), node))
    return dict(sorted(table.items()))


def slices_table(services: Iterable[Obj], slices: Iterable[Obj], node: NodeView) -> Table:
    """`build_table` from EndpointSlice objects, taken in name order."""
    ordered = sorted(slices, key=lambda s: ((s.get("metadata") or {}).get("namespace", ""),
                                            (s.get("metadata") or {}).get("name", "")))
    return build_table(services, (i for i in map(slice_to_info, ordered) if i is not None), node)


def endpoints_table(services: Iterable[Obj], endpoints: Iterable[Obj], node: NodeView) -> Table:
    """`build_table` from legacy Endpoints objects."""
    return build_table(services, (i for i in map(endpoints_to_info, endpoints) if i is not None), node)


# ---- comparing and printing -----------------------------------------------------------------


def table_to_json(table: Mapping[ServicePortName, TableEntry]) -> list[Obj]:
    return [table[k].to_dict() for k in sorted(table)]


def _entry_key(d: Mapping[str, Any]) -> str:
    return f"{d.get('namespace')}/{d.get('service')}:{d.get('portName')}/{d.get('protocol')}"


def _ep_text(e: Mapping[str, Any]) -> str:
    return (f"{e.get('address')}:{e.get('port')} ready={e.get('ready')} serving={e.get('serving')} "
            f"terminating={e.get('terminating')} node={e.get('nodeName')} zone={e.get('zone')}"
            + (f" hints={','.join(e['zoneHints'])}" if e.get("zoneHints") else ""))


def diff_tables(expected: Iterable[Mapping[str, Any]], actual: Iterable[Mapping[str, Any]]) -> list[str]:
    """Human-readable differences between two JSON tables (empty when they agree)."""
    want = {_entry_key(e): e for e in expected}
    got = {_entry_key(e): e for e in actual}
    out: list[str] = []
    for key in sorted(set(want) | set(got)):
        w, g = want.get(key), got.get(key)
        if g is None:
            out.append(f"{key}: missing")
            continue
        if w is None:
            out.append(f"{key}: unexpected")
            continue
        for f in ("clusterIP", "port"):
            if w.get(f) != g.get(f):
                out.append(f"{key}: {f} is {g.get(f)!r}, want {w.get(f)!r}")
        w_eps = {_ep_text(e) for e in w.get("endpoints") or []}
        g_eps = {_ep_text(e) for e in g.get("endpoints") or []}
        out += [f"{key}: missing endpoint {t}" for t in sorted(w_eps - g_eps)]
        out += [f"{key}: unexpected endpoint {t}" for t in sorted(g_eps - w_eps)]
        if list(w.get("used") or []) != list(g.get("used") or []):
            out.append(f"{key}: traffic goes to {len(g.get('used') or [])} endpoints, want {len(w.get('used') or [])}")
    return out
