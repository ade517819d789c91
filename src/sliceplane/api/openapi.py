"""OpenAPI documents (/openapi/v3, /openapi/v3/<gv>, /openapi/v2), built from the registry and schema.json.

kubectl reads them for two decisions: whether the server validates fields itself (it looks
for the `fieldValidation` query parameter on the kind's PATCH operation in the v3 document of
the group-version), and how to compute `kubectl apply` patches (the `x-kubernetes-patch-*`
extensions of the component schemas, found through `x-kubernetes-group-version-kind`).
Documents are pure functions of the registry and the data file, so they are built once.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from sliceplane.api import errors, registry, schema
from sliceplane.api.registry import ResourceInfo

KUBE_VERSION = "v1.32.0"

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
STATUS = f"{META}.Status"
DELETE_OPTIONS = f"{META}.DeleteOptions"
PATCH = f"{META}.Patch"
WATCH_EVENT = f"{META}.WatchEvent"
SCALE = "io.k8s.api.autoscaling.v1.Scale"
BINDING = "io.k8s.api.core.v1.Binding"

# Components for the compact scalar types of schema.json.
SPECIAL_COMPONENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "Time": (f"{META}.Time", {"type": "string", "format": "date-time"}),
    "MicroTime": (f"{META}.MicroTime", {"type": "string", "format": "date-time"}),
    "IntOrString": ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", {"type": "string", "format": "int-or-string"}),
    "Quantity": ("io.k8s.apimachinery.pkg.api.resource.Quantity", {"type": "string"}),
}
PLAIN_SCALARS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer", "format": "int64"},
    "number": {"type": "number", "format": "double"},
    "boolean": {"type": "boolean"},
    "byte": {"type": "string", "format": "byte"},
    "any": {"type": "object"},
}
PATCH_CONTENT_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def _param(name: str, where: str, description: str, typ: str = "string", *, required: bool = False,
            unique: bool = True) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "description": description}
    if required:
        p["required"] = True
    s: dict[str, Any] = {"type": typ}
    if unique:
        s["uniqueItems"] = True
    p["schema"] = s
    return p


P_PRETTY = _param("pretty", "query", "If 'true', then the output is pretty printed.")
P_DRY_RUN = _param("dryRun", "query", "When present, indicates that modifications should not be persisted. "
                   "Valid values are: - All: all dry run stages will be processed")
P_FIELD_MANAGER = _param("fieldManager", "query", "fieldManager is a name associated with the actor or entity "
                         "that is making these changes.")
P_FIELD_VALIDATION = _param(
    "fieldValidation", "query",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing "
    "unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict (the default).")
P_FORCE = _param("force", "query", "Force is going to \"force\" Apply requests.", "boolean")
P_GRACE = _param("gracePeriodSeconds", "query", "The duration in seconds before the object should be deleted.",
                 "integer")
P_ORPHAN = _param("orphanDependents", "query", "Deprecated: please use the PropagationPolicy.", "boolean")
P_PROPAGATION = _param("propagationPolicy", "query", "Whether and how garbage collection will be performed. "
                       "Acceptable values are: 'Orphan', 'Background', 'Foreground'.")
P_IGNORE_READ_ERRORS = _param("ignoreStoreReadErrorWithClusterBreakingPotential", "query",
                              "if set to true, it will trigger an unsafe deletion of the resource.", "boolean")
LIST_PARAMS = [
    _param("allowWatchBookmarks", "query", "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
           "boolean"),
    _param("continue", "query", "The continue option should be set when retrieving more results from the server."),
    _param("fieldSelector", "query", "A selector to restrict the list of returned objects by their fields."),
    _param("labelSelector", "query", "A selector to restrict the list of returned objects by their labels."),
    _param("limit", "query", "limit is a maximum number of responses to return for a list call.", "integer"),
    _param("resourceVersion", "query", "resourceVersion sets a constraint on what resource versions a request "
           "may be served from."),
    _param("resourceVersionMatch", "query", "resourceVersionMatch determines how resourceVersion is applied to "
           "list calls."),
    _param("sendInitialEvents", "query", "`sendInitialEvents=true` may be set together with `watch=true`.",
           "boolean"),
    _param("timeoutSeconds", "query", "Timeout for the list/watch call.", "integer"),
    _param("watch", "query", "Watch for changes to the described resources and return them as a stream of add, "
           "update, and remove notifications.", "boolean"),
]
WRITE_PARAMS = [P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION]
DELETE_PARAMS = [P_DRY_RUN, P_GRACE, P_IGNORE_READ_ERRORS, P_ORPHAN, P_PROPAGATION]
DELETE_COLLECTION_PARAMS = sorted(
    [p for p in LIST_PARAMS if p["name"] not in ("allowWatchBookmarks", "watch")]
    + [P_DRY_RUN, P_GRACE, P_IGNORE_READ_ERRORS, P_ORPHAN, P_PROPAGATION],
    key=lambda p: p["name"],
)


def _camel_group(group: str) -> str:
    if not group:
        return "Core"
    return "".join(part[:1].upper() + part[1:] for part in group.split(".")[0].split("-"))


def _tag(info: ResourceInfo) -> str:
    return f"{(info.group.split('.')[0] or 'core').replace('-', '_')}_{info.version}"


class _Builder:
    """Builds one document; `v2` switches the dialect (swagger 2.0 vs OpenAPI 3.0)."""

    def __init__(self, v2: bool) -> None:
        self.v2 = v2
        self.prefix = "#/definitions/" if v2 else "#/components/schemas/"
        self.schemas: dict[str, Any] = {}

    # ---- schemas ----
    def ref(self, name: str) -> dict[str, Any]:
        self.add_definition(name)
        return {"$ref": self.prefix + name}

    def add_definition(self, name: str) -> None:
        if name in self.schemas:
            return
        if name == PATCH:
            self.schemas[name] = {"type": "object", "description": "Patch is provided to give a concrete name and "
                                  "type to the Kubernetes PATCH request body."}
            return
        for comp, body in SPECIAL_COMPONENTS.values():
            if comp == name:
                self.schemas[name] = dict(body)
                return
        d = schema.definition(name)
        if d is None:
            self.schemas[name] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            return
        self.schemas[name] = {}  # placeholder against cycles
        texts = schema.descriptions(name)
        out: dict[str, Any] = {"description": texts[""]} if texts.get("") else {}
        out["type"] = "object"
        props: dict[str, Any] = {}
        exts = d.get("extensions", {})
        for field, t in d["properties"].items():
            props[field] = self.property(t, exts.get(field, {}), texts.get(field, ""))
        out["properties"] = props
        if d.get("required"):
            out["required"] = list(d["required"])
        if d.get("gvk"):
            out["x-kubernetes-group-version-kind"] = [dict(g) for g in d["gvk"]]
        self.schemas[name] = out

    def type_schema(self, t: schema.Type) -> dict[str, Any]:
        if isinstance(t, list):
            kind, elem = t
            if kind == "array":
                return {"type": "array", "items": self.type_schema(elem)}
            return {"type": "object", "additionalProperties": self.type_schema(elem)}
        if t in PLAIN_SCALARS:
            return dict(PLAIN_SCALARS[t])
        if t in SPECIAL_COMPONENTS:
            return self.ref(SPECIAL_COMPONENTS[t][0])
        return self.ref(t)

    def property(self, t: schema.Type, ext: dict[str, Any], description: str = "") -> dict[str, Any]:
        s = self.type_schema(t)
        if "$ref" in s and not self.v2:
            # OpenAPI 3 ignores siblings of $ref, so Kubernetes wraps references in allOf there; its
            # swagger 2.0 document keeps them as siblings, which is what kubectl's v2 parser reads.
            s = {"allOf": [s]}
        if description:
            s["description"] = description
        s.update(ext)
        return s

    # ---- operations ----
    def content(self, name: str) -> dict[str, Any]:
        return {mt: {"schema": self.ref(name)} for mt in ("application/json", "application/yaml")}

    def responses(self, name: str, codes: tuple[str, ...]) -> dict[str, Any]:
        text = {"200": "OK", "201": "Created", "202": "Accepted"}
        out: dict[str, Any] = {}
        for code in codes:
            if self.v2:
                out[code] = {"description": text[code], "schema": self.ref(name)}
            else:
                out[code] = {"description": text[code], "content": self.content(name)}
        out["401"] = {"description": "Unauthorized"}
        return out

    def param(self, p: dict[str, Any]) -> dict[str, Any]:
        if not self.v2:
            return dict(p)
        q = {k: v for k, v in p.items() if k != "schema"}
        q.update(p["schema"])
        return q

    def body(self, op: dict[str, Any], name: str, content_types: tuple[str, ...] = ("application/json",
                                                                                    "application/yaml")) -> None:
        if self.v2:
            op["consumes"] = list(content_types)
            op.setdefault("parameters", []).insert(
                0, {"name": "body", "in": "body", "required": True, "schema": self.ref(name)})
        else:
            op["requestBody"] = {"content": {ct: {"schema": self.ref(name)} for ct in content_types},
                                 "required": True}

    def operation(self, op_id: str, action: str, gvk: dict[str, str], tag: str, params: list[dict[str, Any]],
                  description: str) -> dict[str, Any]:
        op: dict[str, Any] = {
            "tags": [tag],
            "description": description,
            "operationId": op_id,
        }
        if params:
            op["parameters"] = [self.param(p) for p in params]
        if self.v2:
            op["produces"] = ["application/json", "application/yaml"]
            op["schemes"] = ["https"]
        op["x-kubernetes-action"] = action
        op["x-kubernetes-group-version-kind"] = dict(gvk)
        return op


def _gvk(info: ResourceInfo, kind: str | None = None, group: str | None = None,
         version: str | None = None) -> dict[str, str]:
    return {"group": info.group if group is None else group, "kind": kind or info.kind,
            "version": info.version if version is None else version}


def _describe(verb: str, sub: str, kind: str) -> str:
    return f"{verb} {sub} of the specified {kind}" if sub else f"{verb} the specified {kind}"


def _paths_for(b: _Builder, info: ResourceInfo) -> dict[str, dict[str, Any]]:
    root = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    gv = _camel_group(info.group) + info.version.capitalize()
    scope = "Namespaced" if info.namespaced else ""
    tag = _tag(info)
    kind_def = schema.definition_name(info.api_version, info.kind) or f"{info.api_version}.{info.kind}"
    list_def = schema.definition_name(info.api_version, info.list_kind) or f"{info.api_version}.{info.list_kind}"
    gvk = _gvk(info)
    verbs = set(info.verbs)
    p_ns = _param("namespace", "path", "object name and auth scope, such as for teams and projects",
                  required=True)
    p_name = _param("name", "path", f"name of the {info.kind}", required=True)
    coll = f"{root}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{root}/{info.plural}"
    item = f"{coll}/{{name}}"
    paths: dict[str, dict[str, Any]] = {}

    def item_ops(path: str, suffix: str, desc: str, action_verbs: tuple[str, ...],
                 def_name: str, op_gvk: dict[str, str]) -> None:
        entry: dict[str, Any] = {}
        if "get" in action_verbs:
            op = b.operation(f"read{gv}{scope}{info.kind}{suffix}", "get", op_gvk, tag, [],
                             _describe("read", desc, info.kind))
            op["responses"] = b.responses(def_name, ("200",))
            entry["get"] = op
        if "update" in action_verbs:
            op = b.operation(f"replace{gv}{scope}{info.kind}{suffix}", "put", op_gvk, tag, WRITE_PARAMS,
                             _describe("replace", desc, info.kind))
            b.body(op, def_name)
            op["responses"] = b.responses(def_name, ("200", "201"))
            entry["put"] = op
        if "delete" in action_verbs:
            op = b.operation(f"delete{gv}{scope}{info.kind}", "delete", op_gvk, tag, DELETE_PARAMS,
                             f"delete a {info.kind}")
            b.body(op, DELETE_OPTIONS)
            op["responses"] = b.responses(STATUS, ("200", "202"))
            entry["delete"] = op
        if "patch" in action_verbs:
            op = b.operation(f"patch{gv}{scope}{info.kind}{suffix}", "patch", op_gvk, tag,
                             [*WRITE_PARAMS, P_FORCE], _describe("partially update", desc, info.kind))
            b.body(op, PATCH, PATCH_CONTENT_TYPES)
            op["responses"] = b.responses(def_name, ("200", "201"))
            entry["patch"] = op
        if entry:
            params = [p_name] + ([p_ns] if info.namespaced else []) + [P_PRETTY]
            entry["parameters"] = [b.param(p) for p in params]
            paths[path] = entry

    # collection
    entry: dict[str, Any] = {}
    if "list" in verbs:
        op = b.operation(f"list{gv}{scope}{info.kind}", "list", gvk, tag, LIST_PARAMS,
                         f"list or watch objects of kind {info.kind}")
        op["responses"] = b.responses(list_def, ("200",))
        entry["get"] = op
    if "create" in verbs:
        op = b.operation(f"create{gv}{scope}{info.kind}", "post", gvk, tag, WRITE_PARAMS,
                         f"create a {info.kind}")
        b.body(op, kind_def)
        op["responses"] = b.responses(kind_def, ("200", "201", "202"))
        entry["post"] = op
    if "deletecollection" in verbs:
        op = b.operation(f"delete{gv}Collection{scope}{info.kind}", "deletecollection", gvk, tag,
                         DELETE_COLLECTION_PARAMS, f"delete collection of {info.kind}")
        b.body(op, DELETE_OPTIONS)
        op["responses"] = b.responses(STATUS, ("200",))
        entry["delete"] = op
    if entry:
        params = ([p_ns] if info.namespaced else []) + [P_PRETTY]
        entry["parameters"] = [b.param(p) for p in params]
        paths[coll] = entry

    item_ops(item, "", "", tuple(v for v in ("get", "update", "delete", "patch") if v in verbs),
             kind_def, gvk)
    for sub in info.subresources:
        path = f"{item}/{sub}"
        if sub == "status":
            item_ops(path, "Status", "status", ("get", "update", "patch"), kind_def, gvk)
        elif sub == "scale":
            item_ops(path, "Scale", "scale", ("get", "update", "patch"), SCALE,
                     {"group": "autoscaling", "kind": "Scale", "version": "v1"})
        elif sub == "finalize":
            item_ops(path, "Finalize", "finalize", ("update",), kind_def, gvk)
        elif sub == "binding":
            op = b.operation(f"create{gv}{scope}{info.kind}Binding", "post",
                             {"group": "", "kind": "Binding", "version": "v1"}, tag, WRITE_PARAMS,
                             f"create binding of a {info.kind}")
            b.body(op, BINDING)
            op["responses"] = b.responses(BINDING, ("200", "201", "202"))
            params = [_param("name", "path", "name of the Binding", required=True)]
            params += [p_ns] if info.namespaced else []
            paths[path] = {"post": op, "parameters": [b.param(p) for p in [*params, P_PRETTY]]}
    if info.namespaced and "list" in verbs:
        op = b.operation(f"list{gv}{info.kind}ForAllNamespaces", "list", gvk, tag, LIST_PARAMS,
                         f"list or watch objects of kind {info.kind}")
        op["responses"] = b.responses(list_def, ("200",))
        paths[f"{root}/{info.plural}"] = {"get": op, "parameters": [b.param(P_PRETTY)]}
    return paths


def _document(infos: list[ResourceInfo], *, v2: bool) -> dict[str, Any]:
    b = _Builder(v2)
    paths: dict[str, Any] = {}
    for info in infos:
        paths.update(_paths_for(b, info))
    for always in (STATUS, DELETE_OPTIONS, WATCH_EVENT):
        b.add_definition(always)
    schemas = dict(sorted(b.schemas.items()))
    paths = dict(sorted(paths.items()))
    info_block = {"title": "Kubernetes", "version": KUBE_VERSION}
    security = {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header",
                                "description": "Bearer Token authentication"}}
    if v2:
        return {"swagger": "2.0", "info": info_block, "paths": paths, "definitions": schemas,
                "securityDefinitions": security, "security": [{"BearerToken": []}]}
    return {"openapi": "3.0.0", "info": info_block, "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": security}}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=False).encode()


@cache
def _v3(group: str, version: str) -> tuple[dict[str, Any], bytes, str]:
    infos = registry.resources_in(group, version)
    if not infos:
        raise errors.not_found("openapi", _gv_path(group, version))
    doc = _document(infos, v2=False)
    raw = _dumps(doc)
    return doc, raw, hashlib.sha512(raw).hexdigest().upper()


def v3_document(group: str, version: str) -> dict[str, Any]:
    """The OpenAPI v3 document of one group-version (shared; do not mutate). 404 StatusError if unserved."""
    return _v3(group, version)[0]


def v3_document_json(group: str, version: str) -> bytes:
    """`v3_document` serialized once, for the server to send as is."""
    return _v3(group, version)[1]


def v3_hash(group: str, version: str) -> str:
    """The stable hash kubectl sees in the index (`?hash=`), usable as an ETag."""
    return _v3(group, version)[2]


@cache
def v3_index() -> dict[str, Any]:
    """The /openapi/v3 discovery document: every served group-version and its document URL."""
    paths: dict[str, Any] = {}
    for group, version in registry.group_versions():
        p = _gv_path(group, version)
        paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={v3_hash(group, version)}"}
    return {"paths": paths}


@cache
def v2_document() -> dict[str, Any]:
    """The swagger 2.0 document of everything served (shared; do not mutate)."""
    return _document(list(registry.RESOURCES), v2=True)


@cache
def v2_document_json() -> bytes:
    return _dumps(v2_document())


@cache
def v2_document_protobuf() -> bytes:
    """What kubectl asks for (gnostic's encoding), to validate a `kind: List` file client-side."""
    from sliceplane.api.openapi_proto import encode_document

    return encode_document(v2_document())
