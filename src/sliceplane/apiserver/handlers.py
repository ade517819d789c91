"""Resource handlers: parse the request, run the create/update/delete pipeline against the store,
and answer with Kubernetes' objects and metav1.Status errors.

Reads of collections and watches go through the watch cache; single-object reads and every
write go to the store, with compare-and-swap on the object's mod_revision.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import msgspec
import yaml
from aiohttp import web

from sliceplane.api import registry
from sliceplane.api.disruption import BY_EVICTION_API, with_disruption_target
from sliceplane.api.errors import (
    STALE_OBJECT,
    Cause,
    StatusError,
    already_exists,
    bad_request,
    conflict,
    forbidden_error,
    internal,
    invalid,
    invalid_value,
    method_not_allowed,
    not_found,
    required,
    timeout,
    too_large,
    unsupported_media_type,
)
from sliceplane.api.meta import rfc3339
from sliceplane.api.registry import ResourceInfo
from sliceplane.api.schema import json_kind
from sliceplane.apiserver import negotiation, objects
from sliceplane.apiserver.config import ServerConfig
from sliceplane.apiserver.ipalloc import AllocationError, ServiceAllocations
from sliceplane.apiserver.metrics import APIMetrics
from sliceplane.apiserver.negotiation import Accept
from sliceplane.apiserver.routes import ResourcePath
from sliceplane.apiserver.watchcache import JSON_ENCODING, CachedObject, Encoding, WatchCache, resource_label
from sliceplane.store.base import (
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatchError,
    Store,
)

log = logging.getLogger(__name__)

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode

# Kinds whose PUT may create a missing object (Kubernetes' AllowCreateOnUpdate: true for these
# strategies; false for pods, configmaps, deployments, slices, ...).
CREATE_ON_UPDATE = frozenset({"endpoints", "events", "leases", "services"})
# How long a write keeps re-reading and retrying when another writer won the compare-and-swap
# (Kubernetes' GuaranteedUpdate retries until it wins; only a client-pinned resourceVersion conflicts).
WRITE_RETRY_SECONDS = 10.0
# Namespaces Kubernetes' NamespaceLifecycle admission never lets be deleted.
IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
# Seconds between checks that a watching client is still connected.
PEER_CHECK_INTERVAL = 2.0


_optional_modules: dict[str, ModuleType] = {}


def optional_module(name: str) -> ModuleType | None:
    """A sibling api/ module when it exists (the server runs without it otherwise)."""
    mod = _optional_modules.get(name)
    if mod is not None:
        return mod
    try:
        mod = importlib.import_module(f"sliceplane.api.{name}")
    except ImportError as e:
        if getattr(e, "name", "") != f"sliceplane.api.{name}":
            log.exception("importing sliceplane.api.%s failed", name)
        return None
    _optional_modules[name] = mod
    return mod


def with_rv(obj: dict[str, Any], revision: int) -> dict[str, Any]:
    md = obj.get("metadata")
    if not isinstance(md, dict):
        md = obj["metadata"] = {}
    md["resourceVersion"] = str(revision)
    return obj


def without_rv(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj.get("metadata")
    if isinstance(md, dict) and "resourceVersion" in md:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in md.items() if k != "resourceVersion"}
    return obj


@dataclass
class RequestContext:
    """Per-request options shared by the write paths."""

    dry_run: bool = False
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)


class TableEncoding:
    """Watch events as one-row meta.k8s.io Tables (kubectl get -w)."""

    def __init__(self, include_object: str, version: str) -> None:
        self.include_object = include_object
        self.version = version
        self.key = f"table:{version}:{include_object}"

    def encode(self, info: ResourceInfo, obj: dict[str, Any]) -> bytes:
        printers = optional_module("printers")
        assert printers is not None
        table = printers.table(info, [obj], time.time(), self.include_object)
        if self.version != "v1":
            table = {**table, "apiVersion": f"meta.k8s.io/{self.version}"}
        return _encode(table)


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


class MetadataEncoding:
    """Watch events as PartialObjectMetadata (metadata-only informers)."""

    key = "metadata"

    def encode(self, info: ResourceInfo, obj: dict[str, Any]) -> bytes:
        return _encode(partial_metadata(obj))


METADATA_ENCODING = MetadataEncoding()

# The scale subresource's kind, for checking Scale bodies (it is served only as a subresource).
SCALE = ResourceInfo("autoscaling", "v1", "Scale", "scale", "scale", True)

# The fields of a policy/v1 Eviction and of its DeleteOptions (we hold no schema for them).
EVICTION_FIELDS = frozenset({"apiVersion", "kind", "metadata", "deleteOptions"})
DELETE_OPTIONS_FIELDS = frozenset({"apiVersion", "kind", "gracePeriodSeconds", "preconditions", "orphanDependents",
                                   "propagationPolicy", "dryRun", "ignoreStoreReadErrorWithClusterBreakingPotential"})

# Subresources that cannot be read or patched (405): binding and eviction take POST, finalize PUT.
WRITE_ONLY_SUBRESOURCES = ("binding", "finalize", "eviction")


class ResourceHandlers:
    def __init__(self, store: Store, config: ServerConfig, cache: WatchCache, metrics: APIMetrics,
                 allocations: ServiceAllocations) -> None:
        self.store = store
        self.config = config
        self.cache = cache
        self.metrics = metrics
        self.allocations = allocations
        self._rng = random.Random()

    # ---- entry point -------------------------------------------------------------------
    async def handle(self, request: web.Request, rp: ResourcePath) -> web.StreamResponse:
        q = request.query
        method = request.method
        info = rp.info
        accept = negotiation.parse_accept(request.headers.get("Accept"))
        if rp.legacy_watch:
            if method != "GET":
                raise _not_allowed()
            return await self.watch(request, rp, accept)
        if method == "GET":
            if rp.name is None:
                if _truthy(q.get("watch")):
                    _require_verb(info, "watch")
                    return await self.watch(request, rp, accept)
                _require_verb(info, "list")
                return await self.list(request, rp, accept)
            if rp.subresource == "scale":
                obj, _ = await self.read(info, rp.namespace, rp.name)
                return self.respond(self._scale_of(info, obj), accept)
            if rp.subresource in WRITE_ONLY_SUBRESOURCES:
                raise _not_allowed()
            obj, _ = await self.read(info, rp.namespace, rp.name)
            return self.respond_object(info, obj, accept, q)
        ctx = RequestContext(dry_run=_dry_run(q), field_validation=_field_validation(q))
        if method == "POST":
            if rp.subresource == "binding" and rp.name:
                return await self.bind(request, rp, ctx)
            if rp.subresource == "eviction" and rp.name:
                return await self.evict(request, rp, ctx)
            if rp.name is not None:
                raise _not_allowed()
            _require_verb(info, "create")
            _require_namespace(rp)
            body = await self.read_body(request)
            obj = negotiation.decode_object(body, request.headers.get("Content-Type"), info.kind)
            created = await self.create(info, rp.namespace, obj, ctx)
            return self.respond(created, accept, status=201, warnings=ctx.warnings)
        if rp.name is None:
            if method == "DELETE":
                _require_verb(info, "deletecollection")
                return await self.delete_collection(request, rp, accept, ctx)
            raise _not_allowed()
        if method == "PUT":
            if rp.subresource in ("binding", "eviction"):
                raise _not_allowed()
            body = await self.read_body(request)
            kind = "Scale" if rp.subresource == "scale" else info.kind
            obj = negotiation.decode_object(body, request.headers.get("Content-Type"), kind)
            if rp.subresource == "scale":
                result = await self.put_scale(info, rp, obj, ctx)
                return self.respond(result, accept, warnings=ctx.warnings)
            result, created = await self.update(info, rp.namespace, rp.name, lambda _old: obj, ctx,
                                                subresource=rp.subresource,
                                                allow_create=rp.subresource is None and info.plural in CREATE_ON_UPDATE)
            return self.respond(result, accept, status=201 if created else 200, warnings=ctx.warnings)
        if method == "PATCH":
            if rp.subresource in WRITE_ONLY_SUBRESOURCES:
                raise _not_allowed()
            return await self.patch(request, rp, accept, ctx)
        if method == "DELETE":
            if rp.subresource is not None:
                raise _not_allowed()
            return await self.delete(request, rp, accept, ctx)
        raise _not_allowed()

    # ---- bodies and responses ----------------------------------------------------------
    async def read_body(self, request: web.Request) -> bytes:
        limit = self.config.max_request_bytes
        if request.content_length is not None and request.content_length > limit:
            raise too_large(f"Request entity too large: limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                raise too_large(f"Request entity too large: limit is {limit}")
            chunks.append(chunk)
        return b"".join(chunks)

    def respond(self, obj: Any, accept: Accept, *, status: int = 200, warnings: list[str] | None = None,
                body: bytes | None = None) -> web.Response:
        if accept.yaml:
            data = yaml.safe_dump(_decode(body) if body is not None else obj, sort_keys=False).encode()
            resp = web.Response(body=data, status=status, content_type="application/yaml")
        else:
            resp = web.Response(body=body if body is not None else _encode(obj), status=status,
                                content_type="application/json")
        for w in warnings or ():
            resp.headers.add("Warning", '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"')
        return resp

    def respond_object(self, info: ResourceInfo, obj: dict[str, Any], accept: Accept, q: Any,
                       status: int = 200) -> web.Response:
        if accept.metadata_only:
            return self.respond(partial_metadata(obj), accept, status=status)
        if accept.table and optional_module("printers") is not None:
            return self.respond(self.table(info, [obj], accept, q, None), accept, status=status)
        return self.respond(obj, accept, status=status)

    def table(self, info: ResourceInfo, objs: list[dict[str, Any]], accept: Accept, q: Any,
              resource_version: str | None) -> dict[str, Any]:
        printers = optional_module("printers")
        assert printers is not None
        include = q.get("includeObject") or "Metadata"
        if include not in ("None", "Metadata", "Object"):
            raise bad_request(f'includeObject: Unsupported value: "{include}": supported values: '
                              '"None", "Metadata", "Object"')
        table = printers.table(info, objs, time.time(), include)
        if accept.table_version != "v1":
            table["apiVersion"] = f"meta.k8s.io/{accept.table_version}"
        if resource_version is not None:
            table.setdefault("metadata", {})["resourceVersion"] = resource_version
        return table

    # ---- store access ------------------------------------------------------------------
    async def read(self, info: ResourceInfo, namespace: str | None, name: str) -> tuple[dict[str, Any], KeyValue]:
        kv = await self.store.get(info.key(name, namespace))
        if kv is None:
            raise not_found(info.plural, name, info.group)
        return with_rv(_decode(kv.value), kv.mod_revision), kv

    def _count_write(self, info: ResourceInfo, op: str) -> None:
        self.metrics.store_writes.labels(resource_label(info), op).inc()

    # ---- admission pipeline (pure steps; see api/) -------------------------------------
    def _scan(self, info: ResourceInfo, obj: dict[str, Any], *, old: dict[str, Any] | None = None,
              types: bool = True, patched: Callable[[dict[str, Any]], str] | None = None) -> list[str]:
        """One walk of the body: values of the wrong JSON type are refused as Kubernetes' decoder
        refuses them (400 for a body; for a patch result, 422 on field `patch` showing
        `patched(obj)`, with no kind or name, as Kubernetes words it); returns the paths of
        unknown fields. Parts equal to the stored `old` are not walked again."""
        schema = optional_module("schema")
        if schema is None:
            return []
        unknown, wrong = schema.field_problems(info, obj, old)
        if wrong and types:
            if patched is not None:
                quoted = _encode(patched(obj)).decode()
                raise invalid("", "", [Cause("FieldValueInvalid", f"Invalid value: {quoted}: {wrong[0]}", "patch")])
            raise bad_request(schema.decode_error_message(info, wrong[0]))
        return unknown

    def _check_fields(self, info: ResourceInfo, obj: dict[str, Any], ctx: RequestContext,
                      unknown: list[str] | None = None, *, patch: bool = False) -> dict[str, Any]:
        """Unknown fields: Strict -> 400, Warn -> Warning headers; dropped from what is stored.
        Kubernetes words a body's strict error as a decode error ("Pod in version ... cannot be
        handled as a Pod: strict decoding error: ..."), a patch's without that prefix."""
        schema = optional_module("schema")
        if schema is None:
            return obj
        if unknown is None:
            unknown = schema.unknown_fields(info, obj)  # a walk without copying: most bodies have none
        if not unknown:
            return obj
        pruned, unknown = schema.prune(info, obj)
        names = [u.lstrip(".") for u in unknown]
        if ctx.field_validation == "Strict":
            error = "strict decoding error: " + ", ".join(f'unknown field "{n}"' for n in names)
            raise bad_request(error if patch else schema.decode_error_message(info, error))
        if ctx.field_validation == "Warn":
            ctx.warnings.extend(f'unknown field "{n}"' for n in names)
        return pruned

    def _default(self, info: ResourceInfo, obj: dict[str, Any], *, create: bool | None = None) -> dict[str, Any]:
        """A defaulted copy of `obj`: every later step may change what this returns.

        The copy is a msgspec round trip (C speed; it also makes the value plain JSON, as
        Kubernetes sees every body), defaulted in place.
        """
        out = objects.clone(obj)
        if info is registry.SECRETS:
            objects.merge_string_data(out)
        defaults = optional_module("defaults")
        if defaults is None:
            return out
        in_place = getattr(defaults, "apply_defaults_in_place", None)
        if in_place is None:
            return defaults.apply_defaults(info, out, create=create)
        return in_place(info, out, create=create)

    def _validate(self, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        validation = optional_module("validation")
        if validation is None:
            return
        causes: list[Cause] = list(validation.validate(info, obj, old))
        if causes:
            raise invalid(info.kind, (obj.get("metadata") or {}).get("name", ""), causes, info.group)

    def _encode_checked(self, info: ResourceInfo, obj: dict[str, Any]) -> bytes:
        data = _encode(without_rv(obj))
        limit = self.config.max_object_bytes
        if len(data) > limit:
            name = (obj.get("metadata") or {}).get("name", "")
            raise too_large(f'{info.qualified} "{name}" is too large: the object is {len(data)} bytes '
                            f"after encoding, which exceeds the limit of {limit} bytes")
        return data

    async def _check_namespace(self, info: ResourceInfo, namespace: str, name: str) -> None:
        cached = self.cache.get(registry.NAMESPACES, None, namespace)
        ns_obj = cached.obj if cached is not None else None
        if ns_obj is None or (ns_obj.get("metadata") or {}).get("deletionTimestamp"):
            kv = await self.store.get(registry.NAMESPACES.key(namespace))
            ns_obj = _decode(kv.value) if kv is not None else None
        if ns_obj is None:
            raise not_found("namespaces", namespace)
        if (ns_obj.get("metadata") or {}).get("deletionTimestamp"):
            raise forbidden_error(
                info.plural, name,
                f'{info.qualified} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated", info.group)

    # ---- create ------------------------------------------------------------------------
    async def create(self, info: ResourceInfo, namespace: str | None, obj: dict[str, Any],
                     ctx: RequestContext | None = None) -> dict[str, Any]:
        ctx = ctx or RequestContext()
        objects.check_identity(info, obj, namespace)
        md = obj.get("metadata") or {}
        if md.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        name, generate = md.get("name") or "", md.get("generateName") or ""
        if not name and not generate:
            raise invalid(info.kind, "", [required("metadata.name", "name or generateName is required")],
                          info.group)
        unknown = self._scan(info, obj)
        if info.namespaced:
            namespace = namespace or md.get("namespace") or "default"
            await self._check_namespace(info, namespace, name or generate)
        obj = self._check_fields(info, obj, ctx, unknown)
        attempts = 8 if not name else 1
        for attempt in range(attempts):
            chosen = name or generate + "".join(
                self._rng.choice(objects.NAME_SUFFIX_ALPHABET) for _ in range(objects.NAME_SUFFIX_LEN))
            new = objects.prepare_create(info, obj, namespace=namespace, name=chosen, uid=str(uuid.uuid4()),
                                         now=time.time())
            new = self._default(info, new, create=True)
            if info is registry.PODS:
                defaults = optional_module("defaults")
                if defaults is not None and isinstance(new.get("status"), dict):
                    new["status"]["qosClass"] = defaults.pod_qos_class(new)
            taken: tuple[list[str], list[int]] = ([], [])
            if info is registry.SERVICES:
                try:
                    taken = self.allocations.allocate(new, None)
                except AllocationError as e:
                    raise invalid(info.kind, chosen, e.causes, info.group) from None
            try:
                self._validate(info, new, None)
                data = self._encode_checked(info, new)
                if ctx.dry_run:
                    self.allocations.release_parts(*taken)
                    return new
                kv = await self.store.create(info.key(chosen, namespace), data)
            except KeyExistsError:
                self.allocations.release_parts(*taken)
                if attempt + 1 < attempts:
                    continue
                raise already_exists(info.plural, chosen, info.group) from None
            except BaseException:
                self.allocations.release_parts(*taken)
                raise
            self._count_write(info, "create")
            return with_rv(new, kv.mod_revision)
        raise AssertionError("unreachable")

    # ---- update (PUT, PATCH, status, finalize, scale) ----------------------------------
    async def update(self, info: ResourceInfo, namespace: str | None, name: str,
                     mutate: Callable[[dict[str, Any]], dict[str, Any]], ctx: RequestContext, *,
                     subresource: str | None = None, allow_create: bool = False,
                     check_fields: bool = True,
                     patched: Callable[[dict[str, Any]], str] | None = None) -> tuple[dict[str, Any], bool]:
        """Read-modify-write with compare-and-swap; retried while the client named no resourceVersion.

        `mutate` gets the stored object and returns the new one without changing its argument
        (the patch functions and objects.* helpers copy on write), so each attempt decodes the
        stored bytes once and encodes the result once. Returns the stored object and whether
        it was created.
        """
        key = info.key(name, namespace)
        deadline = time.monotonic() + WRITE_RETRY_SECONDS
        while time.monotonic() < deadline:
            kv = await self.store.get(key)
            if kv is None:
                if allow_create:
                    body = mutate({})
                    objects.check_identity(info, body, namespace, name)
                    md = {k: v for k, v in (body.get("metadata") or {}).items() if k != "resourceVersion"}
                    body = {**body, "metadata": {**md, "name": name}}
                    return await self.create(info, namespace, body, ctx), True
                raise not_found(info.plural, name, info.group)
            old = with_rv(_decode(kv.value), kv.mod_revision)
            body = mutate(old)
            if not isinstance(body, dict):
                raise bad_request("the body of the request must be a JSON object")
            if body is old:
                body = dict(old)  # later steps replace top-level keys; `old` stays as stored
            objects.check_identity(info, body, namespace, name)
            current_rv = str(kv.mod_revision)
            body_rv = str((body.get("metadata") or {}).get("resourceVersion") or "")
            if body_rv and body_rv != current_rv:
                raise conflict(info.plural, name, STALE_OBJECT, info.group)
            body_uid = (body.get("metadata") or {}).get("uid")
            old_uid = (old.get("metadata") or {}).get("uid", "")
            if body_uid and body_uid != old_uid and subresource not in ("binding", "finalize"):
                raise conflict(info.plural, name, f"Precondition failed: UID in precondition: {body_uid}, "
                               f"UID in object meta: {old_uid}", info.group)
            fields = check_fields and subresource != "finalize"
            types = subresource not in ("binding", "finalize")
            if fields or types:
                unknown = self._scan(info, body, old=old, types=types, patched=patched)
                if fields:
                    body = self._check_fields(info, body, ctx, unknown, patch=patched is not None)
            new = objects.prepare_update(info, body, old, subresource=subresource)
            if info is registry.SERVICES and subresource is None:
                new = objects.drop_type_dependent_fields(new, old)
            new = self._default(info, new, create=False)
            taken: tuple[list[str], list[int]] = ([], [])
            if info is registry.SERVICES and subresource is None:
                try:
                    taken = self.allocations.allocate(new, old)
                except AllocationError as e:
                    raise invalid(info.kind, name, e.causes, info.group) from None
            try:
                if subresource != "binding":  # a Binding may set spec.nodeName, which updates may not
                    self._validate(info, new, old)
                finished = (objects.namespace_finalized(new) if info is registry.NAMESPACES
                            else objects.finalized(new))
                if finished:
                    self.allocations.release_parts(*taken)
                    if ctx.dry_run:
                        return new, False
                    try:
                        await self.store.delete(key, kv.mod_revision)
                    except RevisionMismatchError:
                        continue  # the next attempt refuses a client-pinned resourceVersion as stale
                    except KeyNotFoundError:
                        raise not_found(info.plural, name, info.group) from None
                    self._count_write(info, "delete")
                    if info is registry.SERVICES:
                        self.allocations.release(old)
                    return new, False
                if without_rv(new) == without_rv(old):
                    self.allocations.release_parts(*taken)
                    return old, False  # nothing changed: no write, same resourceVersion
                data = self._encode_checked(info, new)
                if ctx.dry_run:
                    self.allocations.release_parts(*taken)
                    return with_rv(new, kv.mod_revision), False
                stored = await self.store.update(key, data, kv.mod_revision)
            except RevisionMismatchError as e:
                self.allocations.release_parts(*taken)
                if e.current is None:
                    raise not_found(info.plural, name, info.group) from None
                # Retried: a resourceVersion the client pinned (in a PUT body or in a patch) is
                # stale on the next attempt and refused there; a patch re-applies to the new object.
                continue
            except BaseException:
                self.allocations.release_parts(*taken)
                raise
            self._count_write(info, "update")
            if info is registry.SERVICES and subresource is None:
                self.allocations.release_parts(*self.allocations.dropped_by_update(old, new))
            return with_rv(new, stored.mod_revision), False
        raise conflict(info.plural, name, STALE_OBJECT, info.group)

    async def patch(self, request: web.Request, rp: ResourcePath, accept: Accept,
                    ctx: RequestContext) -> web.Response:
        info = rp.info
        assert rp.name is not None
        _require_verb(info, "patch")
        ctype = negotiation.media_type(request.headers.get("Content-Type"))
        if ctype == negotiation.APPLY_PATCH:
            raise unsupported_media_type(ctype)
        if ctype not in negotiation.PATCH_TYPES:
            raise unsupported_media_type(request.headers.get("Content-Type") or "")
        data = await self.read_body(request)
        negotiation.check_nesting(data)
        patch_mod = optional_module("patch")
        if patch_mod is None:
            raise StatusError(415, "UnsupportedMediaType", "patch is not available on this server yet")

        if rp.subresource == "scale":
            def mutate_scale(old: dict[str, Any]) -> dict[str, Any]:
                scale = patch_mod.apply_patch(self._scale_of(info, old), data, ctype)
                return self._scaled(info, old, scale)

            result, _ = await self.update(info, rp.namespace, rp.name, mutate_scale, ctx, check_fields=False)
            return self.respond(self._scale_of(info, result), accept, warnings=ctx.warnings)

        def mutate(old: dict[str, Any]) -> dict[str, Any]:
            return patch_mod.apply_patch(old, data, ctype)

        def shown(patched_obj: dict[str, Any]) -> str:
            """What Kubernetes shows of a patch whose result it cannot decode: the patched object,
            or for a strategic merge patch the patch map in Go's %+v."""
            if ctype == negotiation.STRATEGIC_PATCH:
                return patch_mod.go_value(_decode(data))
            return _encode(patched_obj).decode()

        result, _ = await self.update(info, rp.namespace, rp.name, mutate, ctx, subresource=rp.subresource,
                                      patched=shown)
        return self.respond(result, accept, warnings=ctx.warnings)

    # ---- scale -------------------------------------------------------------------------
    def _scale_of(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        selector_text = ""
        selectors = optional_module("selectors")
        spec_selector = (obj.get("spec") or {}).get("selector")
        if selectors is not None and isinstance(spec_selector, dict):
            try:
                selector_text = str(selectors.label_selector_from_spec(spec_selector))
            except StatusError:
                selector_text = ""
        return objects.to_scale(info, obj, selector_text)

    def _scaled(self, info: ResourceInfo, old: dict[str, Any], scale: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(scale, dict):
            raise bad_request("the body of the request must be a Scale object")
        kind = scale.get("kind")
        if kind and kind != "Scale":
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind (Scale)")
        rv = str((scale.get("metadata") or {}).get("resourceVersion") or "")
        current = str((old.get("metadata") or {}).get("resourceVersion") or "")
        if rv and rv != current:
            raise conflict(info.plural, (old.get("metadata") or {}).get("name", ""), STALE_OBJECT, info.group)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid("Scale", (old.get("metadata") or {}).get("name", ""),
                          [invalid_value("spec.replicas", replicas, "must be greater than or equal to 0")],
                          "autoscaling")
        return objects.apply_scale(old, scale)

    async def put_scale(self, info: ResourceInfo, rp: ResourcePath, scale: dict[str, Any],
                        ctx: RequestContext) -> dict[str, Any]:
        """A Scale body is checked as any body: its identity against the URL, its field types
        (400, a decode error) and its unknown fields (fieldValidation)."""
        assert rp.name is not None
        objects.check_identity(SCALE, scale, rp.namespace, rp.name)
        scale = self._check_fields(SCALE, scale, ctx, self._scan(SCALE, scale))
        result, _ = await self.update(info, rp.namespace, rp.name, lambda old: self._scaled(info, old, scale),
                                      ctx, check_fields=False)
        return self._scale_of(info, result)

    # ---- binding -----------------------------------------------------------------------
    async def bind(self, request: web.Request, rp: ResourcePath, ctx: RequestContext) -> web.Response:
        assert rp.name is not None
        body = negotiation.decode_object(await self.read_body(request), request.headers.get("Content-Type"))
        name = rp.name
        bmd = body.get("metadata") or {}
        if bmd.get("name") and bmd["name"] != name:
            raise bad_request(f"the name of the object ({bmd['name']}) does not match the name on the URL ({name})")
        target = body.get("target") or {}
        if not target.get("name"):
            raise invalid("Binding", name, [required("target.name")])

        def mutate(old: dict[str, Any]) -> dict[str, Any]:
            md = old.get("metadata") or {}
            if md.get("deletionTimestamp"):
                raise conflict("pods/binding", name, f"pod {name} is being deleted, cannot be assigned to a host")
            node = (old.get("spec") or {}).get("nodeName")
            if node:
                raise conflict("pods/binding", name, f'pod {name} is already assigned to node "{node}"')
            uid = bmd.get("uid")
            if uid and uid != md.get("uid"):
                raise conflict("pods/binding", name, f"Precondition failed: UID in precondition: {uid}, "
                               f"UID in object meta: {md.get('uid', '')}")
            return objects.bind_pod(old, body, time.time())

        await self.update(registry.PODS, rp.namespace, name, mutate, ctx, subresource="binding",
                          check_fields=False)
        return self.respond(objects.success_status(201), Accept(), status=201)

    # ---- eviction ----------------------------------------------------------------------
    async def evict(self, request: web.Request, rp: ResourcePath, ctx: RequestContext) -> web.Response:
        """POST pods/NAME/eviction (policy/v1 Eviction), what kubectl drain uses: the pod is
        marked DisruptionTarget and deleted with the Eviction's deleteOptions. No
        PodDisruptionBudgets are served, so no budget ever refuses (429) an eviction."""
        assert rp.name is not None
        body = negotiation.decode_object(await self.read_body(request), request.headers.get("Content-Type"))
        if body.get("kind") not in (None, "", "Eviction"):
            raise bad_request(f"the kind in the data ({body['kind']}) does not match the expected kind (Eviction)")
        if body.get("apiVersion") not in (None, "", "policy/v1"):
            raise bad_request(f'no kind "Eviction" is registered for version "{body["apiVersion"]}" in scheme '
                              '"pkg/api/legacyscheme/scheme.go:30"')
        md = body.get("metadata")
        md = md if isinstance(md, dict) else {}
        if md.get("name") != rp.name:
            raise bad_request("name in URL does not match name in Eviction object")
        if md.get("namespace") and md["namespace"] != rp.namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        delete_options = body.get("deleteOptions")
        if delete_options is not None and not isinstance(delete_options, dict):
            raise bad_request("deleteOptions: expected an object")
        unknown = [k for k in body if k not in EVICTION_FIELDS] + [
            f"deleteOptions.{k}" for k in delete_options or {} if k not in DELETE_OPTIONS_FIELDS]
        if unknown and ctx.field_validation == "Strict":
            raise bad_request('Eviction in version "v1" cannot be handled as a Eviction: strict decoding error: '
                              + ", ".join(f'unknown field "{u}"' for u in unknown))
        if unknown and ctx.field_validation == "Warn":
            ctx.warnings.extend(f'unknown field "{u}"' for u in unknown)
        opts = self._checked_delete_options(dict(delete_options or {}), ctx)
        pod, kv = await self.read(registry.PODS, rp.namespace, rp.name)
        objects.check_preconditions(registry.PODS, pod, opts.get("preconditions"), str(kv.mod_revision))
        if not ctx.dry_run and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            now = time.time()
            await self.update(registry.PODS, rp.namespace, rp.name,
                              lambda old: with_disruption_target(old, BY_EVICTION_API, now), ctx, subresource="status",
                              check_fields=False)
        await self.delete_one(registry.PODS, rp.namespace, rp.name, opts, ctx)
        return self.respond(objects.success_status(201), Accept(), status=201, warnings=ctx.warnings)

    # ---- delete ------------------------------------------------------------------------
    async def _delete_options(self, request: web.Request, ctx: RequestContext) -> dict[str, Any]:
        q = request.query
        opts: dict[str, Any] = {}
        body = await self.read_body(request) if request.can_read_body else b""
        if body.strip():
            decoded = negotiation.decode_object(body, request.headers.get("Content-Type"))
            opts.update(decoded)
        if "gracePeriodSeconds" in q:
            opts["gracePeriodSeconds"] = _int_param(q, "gracePeriodSeconds")
        if "propagationPolicy" in q:
            opts["propagationPolicy"] = q["propagationPolicy"]
        if "orphanDependents" in q:
            opts["orphanDependents"] = _truthy(q["orphanDependents"])
        return self._checked_delete_options(opts, ctx)

    def _checked_delete_options(self, opts: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """DeleteOptions checked and normalised (propagationPolicy from orphanDependents; dryRun
        sets the request's dry run)."""
        body_dry_run = opts.get("dryRun")
        if body_dry_run is not None:
            wrong, go_type = (body_dry_run, "[]string") if not isinstance(body_dry_run, list) else next(
                ((v, "string") for v in body_dry_run if not isinstance(v, str)), (None, ""))
            if go_type:
                raise bad_request(f"json: cannot unmarshal {json_kind(wrong)} into Go struct field "
                                  f"DeleteOptions.dryRun of type {go_type}")
        if body_dry_run:
            # kubectl delete --dry-run=server sends dryRun in the DeleteOptions body, not the query.
            if any(v != "All" for v in body_dry_run):
                shown = "[]string{" + ", ".join(json.dumps(v) for v in body_dry_run) + "}"
                raise bad_request(f'dryRun: Unsupported value: {shown}: supported values: "All"')
            ctx.dry_run = True
        if opts.get("orphanDependents") is not None and opts.get("propagationPolicy") is not None:
            raise invalid("DeleteOptions", "", [Cause(
                "FieldValueInvalid", f'Invalid value: "{opts["propagationPolicy"]}": orphanDependents and '
                "deletionPropagation cannot be both set", "propagationPolicy")], "meta.k8s.io")
        policy = opts.get("propagationPolicy")
        if policy is None and opts.get("orphanDependents") is not None:
            policy = "Orphan" if opts["orphanDependents"] else "Background"
        if policy not in (None, "Orphan", "Foreground", "Background"):
            raise invalid("DeleteOptions", "", [Cause("FieldValueNotSupported",
                          f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"',
                          "propagationPolicy")])
        opts["propagationPolicy"] = policy
        grace = opts.get("gracePeriodSeconds")
        if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
            raise bad_request("gracePeriodSeconds must be an integer")
        return opts

    async def delete(self, request: web.Request, rp: ResourcePath, accept: Accept,
                     ctx: RequestContext) -> web.Response:
        assert rp.name is not None
        _require_verb(rp.info, "delete")
        opts = await self._delete_options(request, ctx)
        obj, status = await self.delete_one(rp.info, rp.namespace, rp.name, opts, ctx)
        return self.respond(obj, accept, status=status)

    async def delete_one(self, info: ResourceInfo, namespace: str | None, name: str, opts: dict[str, Any],
                         ctx: RequestContext) -> tuple[dict[str, Any], int]:
        key = info.key(name, namespace)
        if info is registry.NAMESPACES and name in IMMORTAL_NAMESPACES:
            raise forbidden_error("namespaces", name,
                                  f'namespaces "{name}" is forbidden: this namespace may not be deleted')
        deadline = time.monotonic() + WRITE_RETRY_SECONDS
        while time.monotonic() < deadline:
            old, kv = await self.read(info, namespace, name)
            objects.check_preconditions(info, old, opts.get("preconditions"), str(kv.mod_revision))
            now = time.time()
            if info is registry.NAMESPACES:
                plan = self._plan_namespace_delete(old, opts.get("propagationPolicy"), now)
            else:
                plan = objects.plan_delete(info, old, grace_period=opts.get("gracePeriodSeconds"),
                                           propagation=opts.get("propagationPolicy"), now=now)
            if not plan.remove and plan.updated is None:
                return old, 200
            if ctx.dry_run:
                return (old if plan.remove else plan.updated), 200  # type: ignore[return-value]
            try:
                if plan.remove:
                    await self.store.delete(key, kv.mod_revision)
                    self._count_write(info, "delete")
                    if info is registry.SERVICES:
                        self.allocations.release(old)
                    return old, 200
                assert plan.updated is not None
                stored = await self.store.update(key, self._encode_checked(info, plan.updated), kv.mod_revision)
                self._count_write(info, "update")
                return with_rv(plan.updated, stored.mod_revision), 200
            except RevisionMismatchError:
                continue
            except KeyNotFoundError:
                raise not_found(info.plural, name, info.group) from None
        raise conflict(info.plural, name, STALE_OBJECT, info.group)

    def _plan_namespace_delete(self, ns: dict[str, Any], propagation: str | None, now: float) -> objects.DeletePlan:
        md = ns.get("metadata") or {}
        spec_finalizers = (ns.get("spec") or {}).get("finalizers") or []
        if md.get("deletionTimestamp"):
            if not spec_finalizers and not md.get("finalizers"):
                return objects.DeletePlan(True)
            raise conflict("namespaces", md.get("name", ""),
                           "The system is ensuring all content is removed from this namespace.  Upon completion, "
                           "this namespace will automatically be purged by the system.")
        base = objects.plan_delete(registry.NAMESPACES, ns, grace_period=0, propagation=propagation, now=now)
        if base.remove and not spec_finalizers:
            return base
        updated = objects.clone(ns)
        new_md = updated.setdefault("metadata", {})
        if base.updated is not None:
            new_md.update(base.updated.get("metadata") or {})
        new_md["deletionTimestamp"] = new_md.get("deletionTimestamp") or rfc3339(now)
        new_md["deletionGracePeriodSeconds"] = 0
        updated["status"] = {**(updated.get("status") or {}), "phase": "Terminating"}
        return objects.DeletePlan(False, updated)

    async def delete_collection(self, request: web.Request, rp: ResourcePath, accept: Accept,
                                ctx: RequestContext) -> web.Response:
        info = rp.info
        opts = await self._delete_options(request, ctx)
        label_sel, field_sel = self._selectors(request, info)
        objs, _ = await self._snapshot(info, rp.namespace, None)
        deleted: list[dict[str, Any]] = []
        for co in objs:
            if not _selected(co.obj, label_sel, field_sel):
                continue
            md = co.obj.get("metadata") or {}
            try:
                obj, _ = await self.delete_one(info, md.get("namespace"), md.get("name", ""), opts, ctx)
            except StatusError as e:
                if e.code == 404:
                    continue
                raise
            deleted.append(obj)
        return self.respond({"kind": info.list_kind, "apiVersion": info.api_version,
                             "metadata": {"resourceVersion": str(self.cache.revision)}, "items": deleted}, accept)

    # ---- list --------------------------------------------------------------------------
    def _selectors(self, request: web.Request, info: ResourceInfo, rp_name: str | None = None) -> tuple[Any, Any]:
        q = request.query
        label_text = q.get("labelSelector") or ""
        field_text = q.get("fieldSelector") or ""
        selectors = optional_module("selectors")
        label_sel = field_sel = None
        if selectors is None:
            if label_text or field_text:
                raise bad_request("selectors are not available on this server yet")
            return None, None
        if label_text:
            label_sel = selectors.parse_label_selector(label_text)
            if label_sel.empty:
                label_sel = None
        if rp_name:
            field_text = f"metadata.name={rp_name}" + (f",{field_text}" if field_text else "")
        if field_text:
            field_sel = selectors.parse_field_selector(field_text, info)
            if field_sel.empty:
                field_sel = None
        return label_sel, field_sel

    async def _snapshot(self, info: ResourceInfo, namespace: str | None,
                        resource_version: str | None) -> tuple[list[CachedObject], int]:
        """Objects for a list and the revision they are at.

        resourceVersion unset: a consistent read (the cache waits until it has the store's current
        revision; if it cannot catch up in time, the list is read from the store itself);
        "0": whatever the cache has; N: at least N (504 if the cache does not get there).
        """
        ns = namespace if info.namespaced else None
        if resource_version and resource_version != "0":
            rv = _parse_rv(resource_version)
            if not await self.cache.wait_until(rv, self.config.consistent_read_timeout):
                raise timeout(f"Too large resource version: {rv}, current: {self.cache.revision}")
        elif not resource_version:
            target = await self.store.current_revision()
            if not await self.cache.wait_until(target, self.config.consistent_read_timeout):
                log.warning("watch cache at %d behind store at %d: listing %s from the store",
                            self.cache.revision, target, info.qualified)
                kvs, rev = await self.store.range(info.key_prefix(ns))
                objs = [CachedObject(with_rv(_decode(kv.value), kv.mod_revision), kv.mod_revision) for kv in kvs
                        if info.namespaced or kv.key.count("/") == 4]
                return objs, rev
        return self.cache.list(info, ns), self.cache.revision

    async def list(self, request: web.Request, rp: ResourcePath, accept: Accept) -> web.Response:
        info = rp.info
        q = request.query
        label_sel, field_sel = self._selectors(request, info)
        causes = list_options_causes(q, watch=False)
        if causes:
            raise invalid("ListOptions", "", causes, "meta.k8s.io")
        limit = _int_param(q, "limit") if q.get("limit") else 0
        token = q.get("continue") or ""
        start: tuple[str, str] | None = None
        if token:
            first_rv, start = _decode_continue(token)
            objs, _ = await self._snapshot(info, rp.namespace, "0")
        elif q.get("resourceVersionMatch") == "Exact":
            first_rv = _parse_rv(q.get("resourceVersion") or "")
            await self._snapshot(info, rp.namespace, str(first_rv))  # waits until the cache has it
            ns = rp.namespace if info.namespaced else None
            objs = self.cache.list_at(info, ns, first_rv)
        else:
            objs, revision = await self._snapshot(info, rp.namespace, q.get("resourceVersion"))
            first_rv = revision
        # Later pages come from the cache as it is now but carry the first page's resourceVersion,
        # so a watch from it replays whatever changed while the client was paging.
        rv = str(first_rv)
        items = [co for co in objs if _selected(co.obj, label_sel, field_sel)]
        if start is not None:
            items = [co for co in items if _ns_name(co.obj) > start]
        list_meta: dict[str, Any] = {"resourceVersion": rv}
        if limit > 0 and len(items) > limit:
            remaining = len(items) - limit
            items = items[:limit]
            list_meta["continue"] = _encode_continue(first_rv, _ns_name(items[-1].obj))
            list_meta["remainingItemCount"] = remaining
        if accept.table and optional_module("printers") is not None:
            table = self.table(info, [co.obj for co in items], accept, q, rv)
            table.setdefault("metadata", {}).update(list_meta)
            return self.respond(table, accept)
        if accept.metadata_only:
            return self.respond({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": list_meta, "items": [partial_metadata(co.obj) for co in items]}, accept)
        head = _encode({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta})
        body = head[:-1] + b',"items":[' + b",".join(co.json() for co in items) + b"]}"
        return self.respond(None, accept, body=body)

    # ---- watch -------------------------------------------------------------------------
    async def watch(self, request: web.Request, rp: ResourcePath, accept: Accept) -> web.StreamResponse:
        info = rp.info
        q = request.query
        label_sel, field_sel = self._selectors(request, info, rp.name if rp.legacy_watch else None)
        causes = list_options_causes(q, watch=True)
        if causes:
            raise invalid("ListOptions", "", causes, "meta.k8s.io")
        rv_text = q.get("resourceVersion") or ""
        rv = _parse_rv(rv_text) if rv_text and rv_text != "0" else None
        send_initial: bool | None = None
        if "sendInitialEvents" in q:
            send_initial = _truthy(q.get("sendInitialEvents"))
            if send_initial and rv is not None:
                # Initial state "not older than" rv: from the cache once it has reached rv.
                if not await self.cache.wait_until(rv, self.config.consistent_read_timeout):
                    raise timeout(f"Too large resource version: {rv}, current: {self.cache.revision}")
                rv = None
        encoding: Encoding = JSON_ENCODING
        if accept.metadata_only:
            encoding = METADATA_ENCODING
        elif accept.table and optional_module("printers") is not None:
            include = q.get("includeObject") or "Metadata"
            encoding = TableEncoding(include, accept.table_version)
        timeout_s = _int_param(q, "timeoutSeconds") if q.get("timeoutSeconds") else None
        if timeout_s is None or timeout_s <= 0:
            timeout_s = int(1800 * (1 + random.random()))
        resp = web.StreamResponse(status=200)
        resp.content_type = "application/json"
        resp.enable_chunked_encoding()
        label = resource_label(info)
        try:
            watcher = self.cache.watch(info, rp.namespace if info.namespaced else None, resource_version=rv,
                                       label_selector=label_sel, field_selector=field_sel, encoding=encoding,
                                       bookmarks=_truthy(q.get("allowWatchBookmarks")),
                                       send_initial_events=send_initial)
        except StatusError as e:
            # Kubernetes reports an expired resourceVersion inside the stream, as an ERROR event.
            await resp.prepare(request)
            await resp.write(b'{"type":"ERROR","object":' + _encode(e.to_status()) + b"}\n")
            await resp.write_eof()
            return resp
        # One timer ends the watch at timeoutSeconds; no per-chunk timeouts on the hot path.
        loop = asyncio.get_running_loop()
        expiry = loop.call_later(timeout_s, watcher.close)
        # A client that went away is noticed here even while no event is written to it.
        probe: list[asyncio.TimerHandle] = []

        def check_peer() -> None:
            transport = request.transport
            if transport is None or transport.is_closing():
                watcher.close()
                return
            probe[:] = [loop.call_later(PEER_CHECK_INTERVAL, check_peer)]

        probe.append(loop.call_later(PEER_CHECK_INTERVAL, check_peer))
        events_sent = self.metrics.watch_events.labels(label)
        bytes_sent = self.metrics.watch_bytes.labels(label)
        try:
            await resp.prepare(request)
            while True:
                chunk = await watcher.next_chunk()
                if chunk is None:
                    break
                data = b"".join(chunk)
                await resp.write(data)
                events_sent.inc(len(chunk))
                bytes_sent.inc(len(data))
        except ConnectionError:
            # The client went away, or the server is shutting down and closed the connection:
            # the watch is simply over (nothing more can be written, nothing to report).
            return resp
        except asyncio.CancelledError:
            raise
        except Exception as e:
            # Headers are sent: the failure can only be reported inside the stream.
            log.exception("watch of %s failed", info.qualified)
            with contextlib.suppress(Exception):
                await resp.write(b'{"type":"ERROR","object":' + _encode(internal(str(e)).to_status()) + b"}\n")
        finally:
            expiry.cancel()
            for h in probe:
                h.cancel()
            watcher.close()
        with contextlib.suppress(ConnectionResetError, ConnectionError):
            await resp.write_eof()
        return resp


def _ns_name(obj: dict[str, Any]) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return md.get("namespace") or "", md.get("name") or ""


def _encode_continue(revision: int, after: tuple[str, str]) -> str:
    raw = _encode({"v": "sliceplane.v1", "rv": revision, "start": list(after)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = _decode(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        ns, name = data["start"]
        return int(data["rv"]), (str(ns), str(name))
    except (ValueError, KeyError, TypeError, msgspec.DecodeError):
        raise bad_request("continue key is not valid: the provided continue parameter could not be decoded") from None


def _selected(obj: dict[str, Any], label_sel: Any, field_sel: Any) -> bool:
    if label_sel is not None and not label_sel.matches((obj.get("metadata") or {}).get("labels") or {}):
        return False
    return field_sel is None or field_sel.matches(obj)


def _truthy(v: str | None) -> bool:
    return (v or "").lower() in ("true", "1", "yes")


def _int_param(q: Any, name: str) -> int:
    text = q.get(name, "")
    try:
        return int(text)
    except ValueError:
        raise bad_request(f'{name}: Invalid value: "{text}": must be an integer') from None


def _parse_rv(text: str) -> int:
    try:
        rv = int(text)
        if rv < 0:
            raise ValueError
        return rv
    except ValueError:
        raise invalid("ListOptions", "", [Cause("FieldValueInvalid",
                      f'Invalid value: "{text}": strconv.ParseUint: parsing "{text}": invalid syntax',
                      "resourceVersion")]) from None


def list_options_causes(q: Any, *, watch: bool) -> list[Cause]:
    """resourceVersionMatch and sendInitialEvents rules, as Kubernetes (WatchList on) checks them."""
    match = q.get("resourceVersionMatch") or ""
    rv = q.get("resourceVersion") or ""
    cont = q.get("continue") or ""
    send_initial = q.get("sendInitialEvents")
    field = "resourceVersionMatch"
    causes: list[Cause] = []
    if watch:
        if send_initial is not None and match != "NotOlderThan":
            causes.append(Cause("FieldValueForbidden", "Forbidden: sendInitialEvents requires setting "
                                "resourceVersionMatch to NotOlderThan", field))
        if match:
            if send_initial is None:
                causes.append(Cause("FieldValueForbidden", "Forbidden: resourceVersionMatch is forbidden for watch "
                                    "unless sendInitialEvents is provided", field))
            if match != "NotOlderThan":
                causes.append(Cause("FieldValueNotSupported", f'Unsupported value: "{match}": supported values: '
                                    '"NotOlderThan"', field))
            if cont:
                causes.append(Cause("FieldValueForbidden",
                                    "Forbidden: resourceVersionMatch is forbidden when continue is provided", field))
        return causes
    if match:
        if not rv:
            causes.append(Cause("FieldValueForbidden",
                                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided", field))
        if cont:
            causes.append(Cause("FieldValueForbidden",
                                "Forbidden: resourceVersionMatch is forbidden when continue is provided", field))
        if match not in ("Exact", "NotOlderThan"):
            causes.append(Cause("FieldValueNotSupported", f'Unsupported value: "{match}": supported values: '
                                '"Exact", "NotOlderThan", ""', field))
        if match == "Exact" and rv == "0":
            causes.append(Cause("FieldValueForbidden",
                                'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"', field))
    if send_initial is not None:
        causes.append(Cause("FieldValueForbidden", "Forbidden: sendInitialEvents is forbidden for list",
                            "sendInitialEvents"))
    return causes


def _dry_run(q: Any) -> bool:
    values = q.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
    return bool(values)


def _field_validation(q: Any) -> str:
    v = q.get("fieldValidation") or "Warn"
    if v not in ("Strict", "Warn", "Ignore"):
        raise bad_request(f'fieldValidation: Unsupported value: "{v}": supported values: "Ignore", "Strict", "Warn"')
    return v


def _require_verb(info: ResourceInfo, verb: str) -> None:
    if verb not in info.verbs:
        raise _not_allowed()


def _require_namespace(rp: ResourcePath) -> None:
    if rp.info.namespaced and rp.namespace is None:
        raise _not_allowed()


def _not_allowed() -> StatusError:
    return method_not_allowed("the server does not allow this method on the requested resource")
