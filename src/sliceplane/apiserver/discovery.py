"""Discovery documents (/api, /apis, /api/v1, /apis/<g>/<v>) and /version. Pure."""

from __future__ import annotations

from typing import Any

from sliceplane.api import registry
from sliceplane.api.registry import ResourceInfo

VERSION_INFO: dict[str, str] = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-sliceplane",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

# Subresources: (kind, group, version, verbs) of the object each one serves.
_SUBRESOURCE_KINDS: dict[str, tuple[str | None, str, str, tuple[str, ...]]] = {
    "status": (None, "", "", ("get", "patch", "update")),
    "scale": ("Scale", "autoscaling", "v1", ("get", "patch", "update")),
    "binding": ("Binding", "", "", ("create",)),
    "eviction": ("Eviction", "policy", "v1", ("create",)),  # how kubectl drain finds the eviction API
    "finalize": (None, "", "", ("update",)),
}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group(group: str) -> dict[str, Any]:
    versions = [v for g, v in registry.group_versions() if g == group]
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> dict[str, Any]:
    groups: list[str] = []
    for g, _ in registry.group_versions():
        if g and g not in groups:
            groups.append(g)
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{k: v for k, v in api_group(g).items() if k not in ("kind", "apiVersion")} for g in groups]}


def served_group(group: str) -> bool:
    return any(g == group for g, _ in registry.group_versions()) and group != ""


def _resource(info: ResourceInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        out["shortNames"] = list(info.short_names)
    if info.categories:
        out["categories"] = list(info.categories)
    return out


def _subresource(info: ResourceInfo, sub: str) -> dict[str, Any]:
    kind, group, version, verbs = _SUBRESOURCE_KINDS.get(sub, (None, "", "", ("get",)))
    out: dict[str, Any] = {"name": f"{info.plural}/{sub}", "singularName": "", "namespaced": info.namespaced}
    if group:
        out["group"] = group
        out["version"] = version
    out["kind"] = kind or info.kind
    out["verbs"] = list(verbs)
    return out


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    infos = registry.resources_in(group, version)
    if not infos:
        return None
    resources: list[dict[str, Any]] = []
    for info in infos:
        resources.append(_resource(info))
        resources.extend(_subresource(info, sub) for sub in info.subresources)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
