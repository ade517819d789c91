#!/usr/bin/env python3
"""Generate src/sliceplane/api/data/schema.json from the official `kubernetes` Python client.

The client's model classes carry each definition's JSON field names and types; they lose a
few things the API server needs, which the tables below put back: the Kubernetes package of
each definition (core, apps, meta, ...), which strings are Quantities, which times are
MicroTimes, and the strategic-merge-patch metadata of list fields.

Only definitions reachable from the kinds we serve are written, so the file stays small;
field descriptions sit apart under "descriptions", read only for the OpenAPI documents.
Run it again after upgrading the client: `python scripts/gen_schema.py`.
"""

from __future__ import annotations

import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

import kubernetes
import kubernetes.client.models as models

OUT = Path(__file__).resolve().parent.parent / "src" / "sliceplane" / "api" / "data" / "schema.json"

# (apiVersion, kind, client class) of every top-level kind we describe.
KINDS: list[tuple[str, str, str]] = [
    ("v1", "Namespace", "V1Namespace"),
    ("v1", "Node", "V1Node"),
    ("v1", "Pod", "V1Pod"),
    ("v1", "Service", "V1Service"),
    ("v1", "Endpoints", "V1Endpoints"),
    ("v1", "ServiceAccount", "V1ServiceAccount"),
    ("v1", "ConfigMap", "V1ConfigMap"),
    ("v1", "Secret", "V1Secret"),
    ("v1", "Event", "CoreV1Event"),
    ("v1", "Binding", "V1Binding"),
    ("discovery.k8s.io/v1", "EndpointSlice", "V1EndpointSlice"),
    ("apps/v1", "Deployment", "V1Deployment"),
    ("apps/v1", "ReplicaSet", "V1ReplicaSet"),
    ("coordination.k8s.io/v1", "Lease", "V1Lease"),
    ("autoscaling/v1", "Scale", "V1Scale"),
    ("v1", "Status", "V1Status"),
    ("meta.k8s.io/v1", "DeleteOptions", "V1DeleteOptions"),
    ("meta.k8s.io/v1", "WatchEvent", "V1WatchEvent"),
]
# List kinds of the served resources (for OpenAPI list responses).
LIST_KINDS: list[tuple[str, str, str]] = [
    ("v1", "NamespaceList", "V1NamespaceList"),
    ("v1", "NodeList", "V1NodeList"),
    ("v1", "PodList", "V1PodList"),
    ("v1", "ServiceList", "V1ServiceList"),
    ("v1", "EndpointsList", "V1EndpointsList"),
    ("v1", "ServiceAccountList", "V1ServiceAccountList"),
    ("v1", "ConfigMapList", "V1ConfigMapList"),
    ("v1", "SecretList", "V1SecretList"),
    ("v1", "EventList", "CoreV1EventList"),
    ("discovery.k8s.io/v1", "EndpointSliceList", "V1EndpointSliceList"),
    ("apps/v1", "DeploymentList", "V1DeploymentList"),
    ("apps/v1", "ReplicaSetList", "V1ReplicaSetList"),
    ("coordination.k8s.io/v1", "LeaseList", "V1LeaseList"),
]

# Kubernetes package of each definition that is not core/v1.
PACKAGES: dict[str, set[str]] = {
    "io.k8s.apimachinery.pkg.apis.meta.v1": {
        "ObjectMeta", "ListMeta", "Status", "StatusCause", "StatusDetails", "OwnerReference",
        "ManagedFieldsEntry", "LabelSelector", "LabelSelectorRequirement", "Condition", "DeleteOptions",
        "Preconditions", "WatchEvent",
    },
    "io.k8s.api.apps.v1": {
        "Deployment", "DeploymentList", "DeploymentSpec", "DeploymentStatus", "DeploymentStrategy",
        "DeploymentCondition", "RollingUpdateDeployment", "ReplicaSet", "ReplicaSetList", "ReplicaSetSpec",
        "ReplicaSetStatus", "ReplicaSetCondition",
    },
    "io.k8s.api.discovery.v1": {
        "EndpointSlice", "EndpointSliceList", "Endpoint", "EndpointConditions", "EndpointHints", "ForZone",
        "ForNode", "EndpointPort@discovery",
    },
    "io.k8s.api.coordination.v1": {"Lease", "LeaseList", "LeaseSpec"},
    "io.k8s.api.autoscaling.v1": {"Scale", "ScaleSpec", "ScaleStatus"},
}
CORE = "io.k8s.api.core.v1"

# Strings that Kubernetes types as resource.Quantity (alone or as map values).
QUANTITY_FIELDS: set[tuple[str, str]] = {
    ("ResourceRequirements", "limits"), ("ResourceRequirements", "requests"),
    ("VolumeResourceRequirements", "limits"), ("VolumeResourceRequirements", "requests"),
    ("PodSpec", "overhead"), ("NodeStatus", "capacity"), ("NodeStatus", "allocatable"),
    ("EmptyDirVolumeSource", "sizeLimit"), ("ResourceFieldSelector", "divisor"),
    ("ContainerStatus", "allocatedResources"), ("NodeAllocatableMappedResources", "quantity"),
    ("NodeAllocatableOverheadResources", "perContainer"), ("NodeAllocatableOverheadResources", "perPod"),
}
# metav1.MicroTime fields (every other date-time is a metav1.Time).
MICROTIME_FIELDS: set[tuple[str, str]] = {
    ("LeaseSpec", "acquireTime"), ("LeaseSpec", "renewTime"), ("Event", "eventTime"),
    ("EventSeries", "lastObservedTime"),
}

# Strategic-merge-patch and list metadata Kubernetes declares on the fields our kinds use:
# (definition, field) -> (patch strategy, merge key, list type, list map keys).
LIST_META: dict[tuple[str, str], tuple[str, str, str, list[str]]] = {
    ("ObjectMeta", "finalizers"): ("merge", "", "set", []),
    ("ObjectMeta", "ownerReferences"): ("merge", "uid", "map", ["uid"]),
    ("PodSpec", "volumes"): ("merge,retainKeys", "name", "map", ["name"]),
    ("PodSpec", "initContainers"): ("merge", "name", "map", ["name"]),
    ("PodSpec", "containers"): ("merge", "name", "map", ["name"]),
    ("PodSpec", "ephemeralContainers"): ("merge", "name", "map", ["name"]),
    ("PodSpec", "imagePullSecrets"): ("merge", "name", "map", ["name"]),
    ("PodSpec", "hostAliases"): ("merge", "ip", "map", ["ip"]),
    ("PodSpec", "topologySpreadConstraints"): ("merge", "topologyKey", "map",
                                               ["topologyKey", "whenUnsatisfiable"]),
    ("PodSpec", "resourceClaims"): ("merge,retainKeys", "name", "map", ["name"]),
    ("PodSpec", "schedulingGates"): ("merge", "name", "map", ["name"]),
    ("PodSpec", "tolerations"): ("", "", "atomic", []),
    ("PodSpec", "readinessGates"): ("", "", "atomic", []),
    ("Container", "ports"): ("merge", "containerPort", "map", ["containerPort", "protocol"]),
    ("Container", "env"): ("merge", "name", "map", ["name"]),
    ("Container", "volumeMounts"): ("merge", "mountPath", "map", ["mountPath"]),
    ("Container", "volumeDevices"): ("merge", "devicePath", "map", ["devicePath"]),
    ("Container", "resizePolicy"): ("", "", "atomic", []),
    ("EphemeralContainer", "ports"): ("merge", "containerPort", "map", ["containerPort", "protocol"]),
    ("EphemeralContainer", "env"): ("merge", "name", "map", ["name"]),
    ("EphemeralContainer", "volumeMounts"): ("merge", "mountPath", "map", ["mountPath"]),
    ("EphemeralContainer", "volumeDevices"): ("merge", "devicePath", "map", ["devicePath"]),
    ("PodStatus", "conditions"): ("merge", "type", "map", ["type"]),
    ("PodStatus", "podIPs"): ("merge", "ip", "map", ["ip"]),
    ("PodStatus", "hostIPs"): ("merge", "ip", "atomic", []),
    ("PodStatus", "resourceClaimStatuses"): ("merge,retainKeys", "name", "map", ["name"]),
    ("ServiceSpec", "ports"): ("merge", "port", "map", ["port", "protocol"]),
    ("ServiceSpec", "clusterIPs"): ("", "", "atomic", []),
    ("ServiceSpec", "ipFamilies"): ("", "", "atomic", []),
    ("ServiceSpec", "externalIPs"): ("", "", "atomic", []),
    ("ServiceStatus", "conditions"): ("merge", "type", "map", ["type"]),
    ("NodeSpec", "podCIDRs"): ("merge", "", "set", []),
    ("NodeSpec", "taints"): ("", "", "atomic", []),
    ("NodeStatus", "conditions"): ("merge", "type", "map", ["type"]),
    ("NodeStatus", "addresses"): ("merge", "type", "map", ["type"]),
    ("NamespaceStatus", "conditions"): ("merge", "type", "map", ["type"]),
    ("NamespaceSpec", "finalizers"): ("", "", "atomic", []),
    ("ServiceAccount", "secrets"): ("merge", "name", "map", ["name"]),
    ("DeploymentStatus", "conditions"): ("merge", "type", "map", ["type"]),
    ("ReplicaSetStatus", "conditions"): ("merge", "type", "map", ["type"]),
    ("EndpointSlice", "endpoints"): ("", "", "atomic", []),
    ("EndpointSlice", "ports"): ("", "", "atomic", []),
    ("Endpoints", "subsets"): ("", "", "atomic", []),
    ("LabelSelector", "matchExpressions"): ("", "", "atomic", []),
}
# Non-list fields with a patch strategy.
FIELD_STRATEGY: dict[tuple[str, str], str] = {
    ("DeploymentSpec", "strategy"): "retainKeys",
}

SCALARS = {"str": "string", "int": "integer", "bool": "boolean", "float": "number", "bytes": "byte",
           "date": "string"}


def short_name(cls_name: str) -> tuple[str, str]:
    """Client class -> (short Kubernetes name, package hint)."""
    for prefix, hint in (("CoreV1", "core"), ("DiscoveryV1", "discovery")):
        if cls_name.startswith(prefix):
            return cls_name[len(prefix):], hint
    m = re.match(r"V\d+(?:(?:alpha|beta)\d+)?([A-Z].*)", cls_name)
    if not m:
        raise SystemExit(f"unexpected model class name {cls_name}")
    return m.group(1), ""


def definition_name(cls_name: str) -> str:
    short, hint = short_name(cls_name)
    if hint == "core":
        return f"{CORE}.{short}"
    if hint == "discovery":
        return f"io.k8s.api.discovery.v1.{short}"
    for package, names in PACKAGES.items():
        if short in names:
            return f"{package}.{short}"
    return f"{CORE}.{short}"


def model_field(cls: Any, attr: str, json_name: str) -> Any:
    fields = getattr(cls, "model_fields", {})
    if attr in fields:
        return fields[attr]
    for name, f in fields.items():
        if json_name in (name, getattr(f, "serialization_alias", None)):
            return f
    return None


def is_int_or_string(annotation: Any) -> bool:
    args = set()
    for a in typing.get_args(annotation):
        base = typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a
        args.add(base)
    return int in args and str in args


def convert_type(t: str, owner_short: str, field: str, f: Any, refs: list[str]) -> Any:
    """Client type text -> our compact type (see schema.py for the grammar)."""
    m = re.fullmatch(r"List\[(.+)\]", t)
    if m:
        return ["array", convert_type(m.group(1), owner_short, field, None, refs)]
    m = re.fullmatch(r"Dict\[str, (.+)\]", t)
    if m:
        return ["map", convert_type(m.group(1), owner_short, field, None, refs)]
    if t == "datetime":
        return "MicroTime" if (owner_short, field) in MICROTIME_FIELDS else "Time"
    if t == "object":
        if f is not None and is_int_or_string(f.annotation):
            return "IntOrString"
        return "any"
    if t == "str" and (owner_short, field) in QUANTITY_FIELDS:
        return "Quantity"
    if t in SCALARS:
        return SCALARS[t]
    refs.append(t)
    return definition_name(t)


def class_description(cls: Any) -> str:
    doc = (cls.__doc__ or "").split("Attributes:", 1)[0]
    return " ".join(doc.split())


def build() -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    descriptions: dict[str, dict[str, str]] = {}
    gvk: dict[str, list[dict[str, str]]] = {}
    kinds: dict[str, str] = {}
    for api_version, kind, cls_name in KINDS + LIST_KINDS:
        name = definition_name(cls_name)
        group, _, version = api_version.rpartition("/")
        if group == "meta.k8s.io":
            group = ""  # Kubernetes tags meta types with every group; we keep the core one.
        gvk.setdefault(name, []).append({"group": group, "kind": kind, "version": version})
        kinds[f"{api_version}/{kind}"] = name

    queue = [c for _, _, c in KINDS + LIST_KINDS] + ["V1ObjectMeta", "V1ListMeta"]
    seen_cls: set[str] = set()
    used_meta: set[tuple[str, str]] = set()
    while queue:
        cls_name = queue.pop(0)
        if cls_name in seen_cls:
            continue
        seen_cls.add(cls_name)
        cls = getattr(models, cls_name)
        name = definition_name(cls_name)
        short, _ = short_name(cls_name)
        props: dict[str, Any] = {}
        texts: dict[str, str] = {}
        if class_description(cls):
            texts[""] = class_description(cls)
        required: list[str] = []
        ext: dict[str, dict[str, Any]] = {}
        for attr, t in cls.openapi_types.items():
            json_name = cls.attribute_map[attr]
            f = model_field(cls, attr, json_name)
            refs: list[str] = []
            props[json_name] = convert_type(t, short, json_name, f, refs)
            queue.extend(refs)
            if f is not None and f.is_required():
                required.append(json_name)
            if f is not None and f.description:
                texts[json_name] = f.description
            meta = LIST_META.get((short, json_name))
            if meta:
                used_meta.add((short, json_name))
                strategy, key, list_type, map_keys = meta
                e: dict[str, Any] = {}
                if strategy:
                    e["x-kubernetes-patch-strategy"] = strategy
                if key:
                    e["x-kubernetes-patch-merge-key"] = key
                if list_type:
                    e["x-kubernetes-list-type"] = list_type
                if map_keys:
                    e["x-kubernetes-list-map-keys"] = map_keys
                ext[json_name] = e
            if (short, json_name) in FIELD_STRATEGY:
                used_meta.add((short, json_name))
                ext[json_name] = {"x-kubernetes-patch-strategy": FIELD_STRATEGY[(short, json_name)]}
        d: dict[str, Any] = {"properties": dict(sorted(props.items()))}
        if required:
            d["required"] = sorted(required)
        if ext:
            d["extensions"] = dict(sorted(ext.items()))
        if name in gvk:
            d["gvk"] = gvk[name]
        if name in definitions and definitions[name] != d:
            raise SystemExit(f"two client classes map to {name}")
        definitions[name] = d
        if texts:
            descriptions[name] = dict(sorted(texts.items()))

    unused = (set(LIST_META) | set(FIELD_STRATEGY)) - used_meta
    if unused:
        raise SystemExit(f"patch metadata for fields the client does not have: {sorted(unused)}")
    return {
        "generator": "scripts/gen_schema.py",
        "source": f"kubernetes Python client {kubernetes.__version__}",
        "kinds": dict(sorted(kinds.items())),
        "definitions": dict(sorted(definitions.items())),
        # Documentation only (OpenAPI descriptions, `kubectl explain`); "" is the definition's own.
        "descriptions": dict(sorted(descriptions.items())),
    }


def main() -> int:
    data = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, separators=(",", ":"), sort_keys=False) + "\n")
    print(f"wrote {OUT} ({len(data['definitions'])} definitions, {OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
