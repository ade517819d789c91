"""Kubernetes resource paths -> what they name. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from sliceplane.api import registry
from sliceplane.api.registry import ResourceInfo


@dataclass(frozen=True, slots=True)
class ResourcePath:
    info: ResourceInfo
    namespace: str | None  # None: all namespaces, or a cluster-scoped resource
    name: str | None
    subresource: str | None
    legacy_watch: bool = False  # /api/v1/watch/...


def parse_resource_path(path: str) -> ResourcePath | None:
    """`/api/v1/namespaces/ns/pods/name/status` and friends; None when it names no resource."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = False
    if rest and rest[0] == "watch":
        legacy_watch = True
        rest = rest[1:]
    if not rest:
        return None
    namespace: str | None = None
    # /api/v1/namespaces/<name>/status|finalize are the Namespace's own subresources.
    if rest[0] == "namespaces" and len(rest) >= 3 and (group != "" or rest[2] not in ("status", "finalize")):
        namespace = rest[1]
        rest = rest[2:]
    info = registry.by_plural(group, version, rest[0])
    if info is None:
        return None
    if namespace is not None and not info.namespaced:
        return None
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) >= 3 else None
    if len(rest) > 3:
        return None
    if sub is not None and sub not in info.subresources:
        return None
    return ResourcePath(info, namespace, name, sub, legacy_watch)
