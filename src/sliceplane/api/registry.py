"""The one table of kinds the API server serves.

Every spelling kubectl uses (kind, plural, singular, short name, `plural.group`) resolves
through this table, so discovery, routing, printers and the OpenAPI documents agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale", "binding"
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # "typed": we default/validate it; "opaque": stored and returned as sent.
    opaque: bool = False
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def qualified(self) -> str:
        """`plural.group`, the name kubectl prints and errors use."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def key_prefix(self, namespace: str | None = None) -> str:
        """Store key prefix, like Kubernetes' /registry/<group>/<plural>/<ns>/."""
        base = f"/registry/{self.group or 'core'}/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def key(self, name: str, namespace: str | None = None) -> str:
        if self.namespaced:
            return f"{self.key_prefix(namespace)}{name}"
        return f"{self.key_prefix()}{name}"

    def __repr__(self) -> str:
        return f"<Resource {self.qualified}>"


def _r(group: str, version: str, kind: str, plural: str, namespaced: bool, **kw: object) -> ResourceInfo:
    return ResourceInfo(group, version, kind, plural, kind.lower(), namespaced, **kw)  # type: ignore[arg-type]


NAMESPACES = _r("", "v1", "Namespace", "namespaces", False, short_names=("ns",), subresources=("status", "finalize"),
                verbs=("create", "delete", "get", "list", "patch", "update", "watch"))
NODES = _r("", "v1", "Node", "nodes", False, short_names=("no",), subresources=("status",))
PODS = _r("", "v1", "Pod", "pods", True, short_names=("po",), subresources=("status", "binding", "eviction"),
          categories=("all",))
SERVICES = _r("", "v1", "Service", "services", True, short_names=("svc",), subresources=("status",),
              categories=("all",), verbs=("create", "delete", "deletecollection", "get", "list", "patch",
                                           "update", "watch"))
ENDPOINTS = _r("", "v1", "Endpoints", "endpoints", True, short_names=("ep",))
SERVICE_ACCOUNTS = _r("", "v1", "ServiceAccount", "serviceaccounts", True, short_names=("sa",), opaque=True)
CONFIG_MAPS = _r("", "v1", "ConfigMap", "configmaps", True, short_names=("cm",), opaque=True)
SECRETS = _r("", "v1", "Secret", "secrets", True, opaque=True)
EVENTS = _r("", "v1", "Event", "events", True, short_names=("ev",), opaque=True)
ENDPOINT_SLICES = _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True)
DEPLOYMENTS = _r("apps", "v1", "Deployment", "deployments", True, short_names=("deploy",),
                 subresources=("status", "scale"), categories=("all",))
REPLICA_SETS = _r("apps", "v1", "ReplicaSet", "replicasets", True, short_names=("rs",),
                  subresources=("status", "scale"), categories=("all",))
LEASES = _r("coordination.k8s.io", "v1", "Lease", "leases", True)
NODE_LEASE_NAMESPACE = "kube-node-lease"  # where kubelets keep their heartbeat Leases, one per node

RESOURCES: tuple[ResourceInfo, ...] = (
    NAMESPACES, NODES, PODS, SERVICES, ENDPOINTS, SERVICE_ACCOUNTS, CONFIG_MAPS, SECRETS, EVENTS,
    ENDPOINT_SLICES, DEPLOYMENTS, REPLICA_SETS, LEASES,
)

_by_gvr = {(r.group, r.version, r.plural): r for r in RESOURCES}
_by_gvk = {(r.api_version, r.kind): r for r in RESOURCES}


def by_plural(group: str, version: str, plural: str) -> ResourceInfo | None:
    return _by_gvr.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceInfo | None:
    return _by_gvk.get((api_version, kind))


def resolve(name: str) -> ResourceInfo | None:
    """Any spelling kubectl accepts: kind, plural, singular, short name, or `plural.group`."""
    low = name.lower()
    for r in RESOURCES:
        if low in (r.plural, r.singular, r.kind.lower(), r.qualified) or low in r.short_names:
            return r
    return None


def group_versions() -> list[tuple[str, str]]:
    """(group, version) pairs served, core first, in a stable order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        gv = (r.group, r.version)
        if gv not in seen:
            seen.append(gv)
    return seen


def resources_in(group: str, version: str) -> list[ResourceInfo]:
    return [r for r in RESOURCES if r.group == group and r.version == version]
