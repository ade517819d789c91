"""EndpointSlice content as frozen values: ports, endpoints, slices.

The planners compare and move these values instead of raw dicts: an endpoint's identity
(`EndpointValue.key`) is what Kubernetes hashes (addresses, hostname, target pod), so a
readiness or zone change updates an endpoint in place, and a port list is compared as a set
(`port_key`), so ordering never causes a write.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sliceplane.api.meta import name_of, namespace_of, uid_of
from sliceplane.controllers import podutil

Obj = dict[str, Any]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
LABEL_HEADLESS = "service.kubernetes.io/headless"
LABEL_ZONE = "topology.kubernetes.io/zone"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
ANNOTATION_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
RESERVED_LABELS = frozenset({LABEL_SERVICE_NAME, LABEL_MANAGED_BY, LABEL_HEADLESS})

API_VERSION = "discovery.k8s.io/v1"
KIND = "EndpointSlice"

DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100
MAX_ENDPOINTS_PER_SLICE_LIMIT = 1000  # the API's validation limit per slice


def check_max_endpoints_per_slice(value: int) -> int:
    """--max-endpoints-per-slice accepts 1..1000, as kube-controller-manager does."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ENDPOINTS_PER_SLICE_LIMIT:
        raise ValueError(
            f"max_endpoints_per_slice must be between 1 and {MAX_ENDPOINTS_PER_SLICE_LIMIT}, got {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True, order=True)
class PortValue:
    name: str
    port: int | None
    protocol: str
    app_protocol: str | None = None

    def to_dict(self) -> Obj:
        d: Obj = {"name": self.name, "protocol": self.protocol}
        if self.port is not None:
            d["port"] = self.port
        if self.app_protocol is not None:
            d["appProtocol"] = self.app_protocol
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PortValue:
        return cls(d.get("name") or "", d.get("port"), d.get("protocol") or "TCP", d.get("appProtocol"))


PortKey = tuple[PortValue, ...]


def port_key(ports: Iterable[PortValue]) -> PortKey:
    """Ports as an order-free key: slices with the same key hold interchangeable endpoints."""
    return tuple(sorted(ports, key=lambda p: (p.name, p.port or 0, p.protocol, p.app_protocol or "")))


@dataclass(frozen=True, slots=True)
class TargetRef:
    kind: str
    namespace: str
    name: str
    uid: str

    def to_dict(self) -> Obj:
        d: Obj = {"kind": self.kind}
        if self.namespace:
            d["namespace"] = self.namespace
        d["name"] = self.name
        if self.uid:
            d["uid"] = self.uid
        return d


EndpointKey = tuple[tuple[str, ...], str, str, str]


@dataclass(frozen=True, slots=True)
class EndpointValue:
    addresses: tuple[str, ...]
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None
    hostname: str | None = None
    node_name: str | None = None
    zone: str | None = None
    target_ref: TargetRef | None = None
    # hints.forZones names; not part of identity or equality (Kubernetes ignores hints when
    # comparing endpoints and recomputes them for every slice it writes).
    zone_hints: tuple[str, ...] | None = None

    @property
    def key(self) -> EndpointKey:
        """Identity: addresses, hostname and target pod; everything else may change in place."""
        ref = self.target_ref
        return (
            tuple(sorted(self.addresses)),
            self.hostname or "",
            ref.namespace if ref else "",
            ref.name if ref else "",
        )

    @property
    def pod_name(self) -> str | None:
        ref = self.target_ref
        return ref.name if ref is not None and ref.kind == "Pod" else None

    def same_beyond_key(self, other: EndpointValue) -> bool:
        """Equal in the fields that the key does not cover (target ref resourceVersion ignored)."""
        return (
            self.node_name == other.node_name
            and self.zone == other.zone
            and self.ready == other.ready
            and self.serving == other.serving
            and self.terminating == other.terminating
            and self.target_ref == other.target_ref
        )

    def to_dict(self) -> Obj:
        d: Obj = {"addresses": list(self.addresses)}
        cond: Obj = {}
        if self.ready is not None:
            cond["ready"] = self.ready
        if self.serving is not None:
            cond["serving"] = self.serving
        if self.terminating is not None:
            cond["terminating"] = self.terminating
        d["conditions"] = cond
        if self.hostname is not None:
            d["hostname"] = self.hostname
        if self.target_ref is not None:
            d["targetRef"] = self.target_ref.to_dict()
        if self.node_name is not None:
            d["nodeName"] = self.node_name
        if self.zone is not None:
            d["zone"] = self.zone
        if self.zone_hints is not None:
            d["hints"] = {"forZones": [{"name": z} for z in self.zone_hints]}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EndpointValue:
        cond = d.get("conditions") or {}
        hints = d.get("hints")
        zone_hints = tuple(z.get("name", "") for z in hints.get("forZones") or []) if hints else None
        ref = d.get("targetRef")
        target = None
        if ref:
            target = TargetRef(ref.get("kind", ""), ref.get("namespace", ""), ref.get("name", ""), ref.get("uid", ""))
        return cls(
            addresses=tuple(d.get("addresses") or ()),
            ready=cond.get("ready"),
            serving=cond.get("serving"),
            terminating=cond.get("terminating"),
            hostname=d.get("hostname"),
            node_name=d.get("nodeName"),
            zone=d.get("zone"),
            target_ref=target,
            zone_hints=zone_hints,
        )


@dataclass(frozen=True, slots=True)
class SliceValue:
    """One EndpointSlice. `name == ""` means "to be created" (the server picks the name)."""

    name: str
    namespace: str
    address_type: str
    ports: PortKey
    endpoints: tuple[EndpointValue, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    owner_references: tuple[Mapping[str, Any], ...] = ()
    generate_name: str = ""
    uid: str = ""
    resource_version: str = ""
    deleting: bool = False
    base: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def port_key(self) -> PortKey:
        return self.ports

    def owned_by(self, service: Obj) -> bool:
        uid = uid_of(service)
        return any(
            r.get("uid") == uid and r.get("kind") == "Service" and r.get("apiVersion") == "v1"
            for r in self.owner_references
        )

    def to_dict(self) -> Obj:
        """The object to send: the slice as read (for uid, resourceVersion, ...) with our content."""
        obj: Obj = copy.deepcopy(dict(self.base)) if self.base else {}
        obj["apiVersion"] = API_VERSION
        obj["kind"] = KIND
        meta = dict(obj.get("metadata") or {})
        if self.name:
            meta["name"] = self.name
        elif self.generate_name:
            meta["generateName"] = self.generate_name
        meta["namespace"] = self.namespace
        meta["labels"] = dict(self.labels)
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        else:
            meta.pop("annotations", None)
        meta["ownerReferences"] = [dict(r) for r in self.owner_references]
        obj["metadata"] = meta
        obj["addressType"] = self.address_type
        obj["endpoints"] = [e.to_dict() for e in self.endpoints]
        if self.ports:
            obj["ports"] = [p.to_dict() for p in self.ports]
        else:
            obj.pop("ports", None)
        return obj

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> SliceValue:
        meta = obj.get("metadata") or {}
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            address_type=obj.get("addressType", ""),
            ports=port_key(PortValue.from_dict(p) for p in obj.get("ports") or []),
            endpoints=tuple(EndpointValue.from_dict(e) for e in obj.get("endpoints") or []),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            owner_references=tuple(dict(r) for r in meta.get("ownerReferences") or []),
            generate_name=meta.get("generateName", ""),
            uid=meta.get("uid", ""),
            resource_version=meta.get("resourceVersion", ""),
            deleting=bool(meta.get("deletionTimestamp")),
            base=obj,
        )


def as_slice_value(s: SliceValue | Mapping[str, Any]) -> SliceValue:
    return s if isinstance(s, SliceValue) else SliceValue.from_dict(s)


def is_managed_slice(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(LABEL_MANAGED_BY) == CONTROLLER_NAME


def service_key_of_slice(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata") or {}
    svc = (meta.get("labels") or {}).get(LABEL_SERVICE_NAME)
    if not svc:
        return None
    return f"{meta.get('namespace', '')}/{svc}"


# ---- building desired content from a Service, its pods and nodes -------------------------


def slice_labels(service: Obj, current: Mapping[str, str] | None = None) -> tuple[dict[str, str], bool]:
    """The labels a slice of `service` carries, and whether `current` differs in the copied ones.

    The Service's own labels are copied (reserved keys excepted); changes to the reserved keys
    alone do not count as a difference, as in Kubernetes.
    """
    svc_labels = {k: v for k, v in ((service.get("metadata") or {}).get("labels") or {}).items()
                  if k not in RESERVED_LABELS}
    changed = False
    if current is not None:
        cur = {k: v for k, v in current.items() if k not in RESERVED_LABELS}
        changed = cur != svc_labels
    out = dict(svc_labels)
    if podutil.is_headless(service):
        out[LABEL_HEADLESS] = ""
    out[LABEL_SERVICE_NAME] = name_of(service)
    out[LABEL_MANAGED_BY] = CONTROLLER_NAME
    return out, changed


def service_owner_ref(service: Obj) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": name_of(service),
        "uid": uid_of(service),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def generate_name_for(service: Obj) -> str:
    """`<service>-`, unless the dash would make the prefix an invalid name (too long)."""
    prefix = f"{name_of(service)}-"
    return prefix if len(prefix) <= 253 else name_of(service)


def new_slice(service: Obj, address_type: str, ports: PortKey,
              endpoints: tuple[EndpointValue, ...] = ()) -> SliceValue:
    labels, _ = slice_labels(service)
    return SliceValue(
        name="",
        namespace=namespace_of(service),
        address_type=address_type,
        ports=ports,
        endpoints=endpoints,
        labels=labels,
        owner_references=(service_owner_ref(service),),
        generate_name=generate_name_for(service),
    )


def endpoint_ports(service: Obj, pod: Obj) -> PortKey:
    """The Service ports resolved against this pod; ports the pod lacks are left out."""
    spec = service.get("spec") or {}
    ports = spec.get("ports") or []
    if not ports and podutil.is_headless(service):
        return ()
    out: list[PortValue] = []
    for sp in ports:
        num = podutil.find_port(pod, sp)
        if num is None:
            continue
        out.append(PortValue(sp.get("name") or "", num, sp.get("protocol") or "TCP", sp.get("appProtocol")))
    return port_key(out)


def pod_to_endpoint(pod: Obj, node: Obj | None, service: Obj, address_type: str) -> EndpointValue:
    serving = podutil.is_pod_ready(pod)
    terminating = podutil.is_pod_terminating(pod)
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    ready = publish or (serving and not terminating)
    spec = pod.get("spec") or {}
    zone = None
    if node is not None:
        zone = ((node.get("metadata") or {}).get("labels") or {}).get(LABEL_ZONE) or None
    return EndpointValue(
        addresses=tuple(podutil.pod_addresses_for_family(pod, address_type)),
        ready=ready,
        serving=serving,
        terminating=terminating,
        hostname=spec["hostname"] if podutil.should_set_hostname(pod, service) else None,
        node_name=spec.get("nodeName") or None,
        zone=zone,
        target_ref=TargetRef("Pod", namespace_of(pod), name_of(pod), uid_of(pod)),
    )


@dataclass(frozen=True, slots=True)
class DesiredEndpoint:
    """What one pod contributes to one address type: an endpoint under a port mapping."""

    endpoint: EndpointValue
    ports: PortKey


def wants_slices(service: Obj) -> bool:
    """Only selector Services that are not ExternalName get controller-managed slices."""
    spec = service.get("spec") or {}
    return spec.get("type") != "ExternalName" and podutil.service_selector(service) is not None


def desired_endpoint(
    service: Obj, pod: Obj | None, nodes_by_name: Mapping[str, Obj], address_type: str
) -> tuple[DesiredEndpoint | None, str | None]:
    """The endpoint a pod should have in the Service's slices of `address_type`.

    Returns (desired, missing_node): a pod on a node the cache does not know is left out and
    the node name reported, so the caller retries later (unless publishNotReadyAddresses).
    """
    if pod is None or not podutil.service_selects(service, pod):
        return None, None
    if not podutil.should_pod_be_in_endpoints(pod, include_terminating=True):
        return None, None
    node_name = (pod.get("spec") or {}).get("nodeName") or ""
    node = nodes_by_name.get(node_name) if node_name else None
    if node is None and not (service.get("spec") or {}).get("publishNotReadyAddresses"):
        return None, node_name
    ep = pod_to_endpoint(pod, node, service, address_type)
    if not ep.addresses:
        return None, None
    return DesiredEndpoint(ep, endpoint_ports(service, pod)), None


# ---- topology hints for trafficDistribution ---------------------------------------------

TRAFFIC_PREFER_CLOSE = "PreferClose"
ANNOTATION_TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"
ANNOTATION_TOPOLOGY_AWARE_HINTS = "service.kubernetes.io/topology-aware-hints"


def prefers_close(service: Obj) -> bool:
    """spec.trafficDistribution: PreferClose asks for same-zone hints on ready endpoints.

    The older topology annotations take precedence when set to Auto; we do not implement the
    proportional allocation they ask for, so such Services get no hints from us.
    """
    if (service.get("spec") or {}).get("trafficDistribution") != TRAFFIC_PREFER_CLOSE:
        return False
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    mode = annotations.get(ANNOTATION_TOPOLOGY_AWARE_HINTS, annotations.get(ANNOTATION_TOPOLOGY_MODE))
    return mode not in ("Auto", "auto")


def _zone_hint_for(ep: EndpointValue) -> tuple[str, ...] | None:
    return (ep.zone,) if ep.zone else None


def needs_zone_hints(s: SliceValue) -> bool:
    """A ready endpoint of this slice lacks its same-zone hint or has a wrong one."""
    return any(ep.ready and ep.zone_hints != _zone_hint_for(ep) for ep in s.endpoints)


def with_zone_hints(s: SliceValue) -> SliceValue:
    """Every ready endpoint hinted for its own zone, the others without hints."""
    eps = tuple(_replace_hints(ep, _zone_hint_for(ep) if ep.ready else None) for ep in s.endpoints)
    if all(a is b for a, b in zip(eps, s.endpoints, strict=True)):
        return s
    return _replace_endpoints(s, eps)


def without_hints(s: SliceValue) -> SliceValue:
    if all(ep.zone_hints is None for ep in s.endpoints):
        return s
    return _replace_endpoints(s, tuple(_replace_hints(ep, None) for ep in s.endpoints))


def _replace_hints(ep: EndpointValue, hints: tuple[str, ...] | None) -> EndpointValue:
    return ep if ep.zone_hints == hints else dataclasses.replace(ep, zone_hints=hints)


def _replace_endpoints(s: SliceValue, eps: tuple[EndpointValue, ...]) -> SliceValue:
    return dataclasses.replace(s, endpoints=eps)
