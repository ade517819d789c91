"""OpenAPI documents: what kubectl reads from them must be there and well-formed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from sliceplane.api import openapi, registry


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for v in node.values():
            out.extend(_refs(v))
        return out
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
    """Follow allOf[0] / $ref as kubectl's strategic-patch schema lookup does."""
    if s.get("allOf"):
        s = s["allOf"][0]
    if "$ref" in s:
        s = doc["components"]["schemas"][s["$ref"].removeprefix("#/components/schemas/")]
    return s


def _supports_query_param(doc: dict[str, Any], gvk: dict[str, str], param: str) -> bool:
    """kubectl's check: the first PATCH operation for the GVK must list the parameter."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None or op.get("x-kubernetes-group-version-kind") != gvk:
            continue
        return any(p["name"] == param for p in op.get("parameters", []))
    return False


@pytest.mark.parametrize("info", registry.RESOURCES, ids=lambda r: r.qualified)
def test_kubectl_sees_server_side_field_validation(info: registry.ResourceInfo) -> None:
    doc = openapi.v3_document(info.group, info.version)
    gvk = {"group": info.group, "kind": info.kind, "version": info.version}
    assert _supports_query_param(doc, gvk, "fieldValidation")
    patches = [i["patch"] for i in doc["paths"].values()
               if i.get("patch", {}).get("x-kubernetes-group-version-kind") == gvk]
    for op in patches:
        assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]
        assert {"dryRun", "fieldManager", "fieldValidation"} <= {p["name"] for p in op["parameters"]}
        assert all(p["in"] == "query" for p in op["parameters"])


@pytest.mark.parametrize("info", registry.RESOURCES, ids=lambda r: r.qualified)
def test_kind_schema_carries_gvk(info: registry.ResourceInfo) -> None:
    doc = openapi.v3_document(info.group, info.version)
    gvk = {"group": info.group, "kind": info.kind, "version": info.version}
    owners = [n for n, s in doc["components"]["schemas"].items() if gvk in s.get("x-kubernetes-group-version-kind", [])]
    assert len(owners) == 1


@pytest.mark.parametrize(("group", "version"), registry.group_versions(), ids=lambda x: x or "core")
def test_v3_refs_resolve_and_writes_declare_parameters(group: str, version: str) -> None:
    doc = openapi.v3_document(group, version)
    assert doc["openapi"].startswith("3.")
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas
    for path, item in doc["paths"].items():
        for method in ("post", "put", "patch"):
            if method in item:
                names = {p["name"] for p in item[method]["parameters"]}
                assert {"fieldValidation", "dryRun", "fieldManager"} <= names, (path, method)
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item:
                assert item[method]["x-kubernetes-action"] in (
                    "get", "list", "post", "put", "patch", "delete", "deletecollection")


def test_v3_paths_for_core_and_apps() -> None:
    core = openapi.v3_document("", "v1")["paths"]
    pods = core["/api/v1/namespaces/{namespace}/pods"]
    assert pods["get"]["x-kubernetes-action"] == "list"
    assert pods["post"]["x-kubernetes-action"] == "post"
    assert pods["delete"]["x-kubernetes-action"] == "deletecollection"
    assert {p["name"] for p in pods["get"]["parameters"]} >= {"labelSelector", "fieldSelector", "watch", "limit"}
    assert core["/api/v1/namespaces/{namespace}/pods/{name}/binding"]["post"]["x-kubernetes-group-version-kind"] == {
        "group": "", "kind": "Binding", "version": "v1"}
    assert "put" in core["/api/v1/namespaces/{name}/finalize"]
    assert "/api/v1/pods" in core
    assert "/api/v1/nodes/{name}/status" in core
    assert "delete" not in core["/api/v1/namespaces"]  # namespaces have no deletecollection
    apps = openapi.v3_document("apps", "v1")["paths"]
    scale = apps["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale",
                                                                 "version": "v1"}
    assert set(scale) == {"get", "put", "patch", "parameters"}


@pytest.mark.parametrize(
    ("path", "merge_key", "strategy"),
    [
        (["spec", "template", "spec", "containers"], "name", "merge"),
        (["spec", "template", "spec", "containers", "*", "env"], "name", "merge"),
        (["spec", "template", "spec", "containers", "*", "ports"], "containerPort", "merge"),
        (["spec", "template", "spec", "volumes"], "name", "merge,retainKeys"),
        (["metadata", "ownerReferences"], "uid", "merge"),
        (["spec", "strategy"], None, "retainKeys"),
    ],
    ids=["containers", "env", "ports", "volumes", "ownerReferences", "strategy"],
)
def test_apply_patch_metadata_reachable_from_deployment(path: list[str], merge_key: str | None,
                                                       strategy: str) -> None:
    doc = openapi.v3_document("apps", "v1")
    s = doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    prop: dict[str, Any] = {}
    for key in path:
        if key == "*":
            s = _resolve(doc, prop["items"])
            continue
        prop = s["properties"][key]
        s = _resolve(doc, prop)
    assert prop.get("x-kubernetes-patch-merge-key") == merge_key
    assert prop.get("x-kubernetes-patch-strategy") == strategy


def test_index_points_at_documents_by_stable_hash() -> None:
    index = openapi.v3_index()
    expected = {f"apis/{g}/{v}" if g else f"api/{v}" for g, v in registry.group_versions()}
    assert set(index["paths"]) == expected
    for g, v in registry.group_versions():
        key = f"apis/{g}/{v}" if g else f"api/{v}"
        raw = openapi.v3_document_json(g, v)
        digest = hashlib.sha512(raw).hexdigest().upper()
        assert index["paths"][key]["serverRelativeURL"] == f"/openapi/v3/{key}?hash={digest}"
        assert json.loads(raw) == openapi.v3_document(g, v)
    assert openapi.v3_index() is index


def test_unserved_group_version_is_404() -> None:
    with pytest.raises(openapi.errors.StatusError) as e:
        openapi.v3_document("batch", "v1")
    assert e.value.code == 404


def test_v2_document() -> None:
    doc = openapi.v2_document()
    assert doc["swagger"] == "2.0"
    for ref in _refs(doc):
        assert ref.removeprefix("#/definitions/") in doc["definitions"]
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in op["consumes"]
    names = {p["name"]: p for p in op["parameters"]}
    assert names["fieldValidation"]["in"] == "query" and names["fieldValidation"]["type"] == "string"
    assert names["body"]["in"] == "body"
    containers = doc["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Container"}
    assert json.loads(openapi.v2_document_json()) == doc


def _wire(buf: bytes) -> dict[int, list[Any]]:
    from sliceplane.apiserver.protobuf import _fields_of

    out: dict[int, list[Any]] = {}
    for number, _, value in _fields_of(buf):
        out.setdefault(number, []).append(value)
    return out


def test_v2_protobuf_carries_the_json_document() -> None:
    """Spot checks of gnostic's encoding (kubectl itself reads it in test_apiserver_clients)."""
    doc = openapi.v2_document()
    top = _wire(openapi.v2_document_protobuf())
    assert top[1] == [b"2.0"]
    info = _wire(top[2][0])
    assert (info[1], info[2]) == ([b"Kubernetes"], [b"v1.32.0"])
    definitions = {_wire(pair)[1][0].decode(): _wire(pair)[2][0] for pair in _wire(top[9][0])[1]}
    assert list(definitions) == list(doc["definitions"])
    spec = _wire(definitions["io.k8s.api.core.v1.PodSpec"])
    assert _wire(spec[22][0])[1] == [b"object"]  # type, as a TypeItem
    assert b"containers" in spec[19]  # required
    props = {_wire(p)[1][0].decode(): _wire(_wire(p)[2][0]) for p in _wire(spec[25][0])[1]}
    containers = props["containers"]
    assert _wire(containers[22][0])[1] == [b"array"]
    assert _wire(_wire(containers[23][0])[1][0])[1] == [b"#/definitions/io.k8s.api.core.v1.Container"]
    extensions = {_wire(e)[1][0].decode(): json.loads(_wire(_wire(e)[2][0])[2][0]) for e in containers[31]}
    assert extensions["x-kubernetes-patch-merge-key"] == "name"
    deployment = _wire(definitions["io.k8s.api.apps.v1.Deployment"])
    gvk = {_wire(e)[1][0].decode(): json.loads(_wire(_wire(e)[2][0])[2][0]) for e in deployment[31]}
    assert gvk["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    paths = [_wire(p)[1][0].decode() for p in _wire(top[8][0])[2]]
    assert paths == list(doc["paths"])
