"""Field schemas of the kinds we serve, from `data/schema.json` (made by scripts/gen_schema.py).

One data file answers three questions: which fields a kind has (strict field validation drops
or rejects the rest, as Kubernetes' strict decoder does), how a strategic merge patch treats
a field (merge key, strategy), and what the OpenAPI documents describe.

Types in the data file are compact: a scalar name (`string`, `integer`, `number`, `boolean`,
`byte`, `Time`, `MicroTime`, `IntOrString`, `Quantity`, `any`), a definition name
(`io.k8s.api.core.v1.PodSpec`), or `["array", T]` / `["map", T]`.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import msgspec

from sliceplane.api.registry import ResourceInfo

Type = str | list[Any]

SCALARS = frozenset(
    {"string", "integer", "number", "boolean", "byte", "Time", "MicroTime", "IntOrString", "Quantity", "any"}
)


@cache
def data() -> dict[str, Any]:
    """The parsed schema.json, loaded once per process."""
    text = resources.files("sliceplane.api").joinpath("data/schema.json").read_text()
    return json.loads(text)


def definitions() -> dict[str, dict[str, Any]]:
    return data()["definitions"]


_ATOMIC = frozenset({str, int, float, bool, type(None)})


def json_copy(value: Any) -> Any:
    """A deep copy of a decoded JSON value: dicts and lists rebuilt, immutable scalars shared.

    Several times cheaper than copy.deepcopy (no memo, no dispatch); anything that is not a
    JSON type (e.g. a YAML set) still goes through copy.deepcopy.
    """
    t = type(value)
    if t is dict:
        return {k: v if type(v) in _ATOMIC else json_copy(v) for k, v in value.items()}
    if t is list:
        return [v if type(v) in _ATOMIC else json_copy(v) for v in value]
    if t in _ATOMIC:
        return value
    return copy.deepcopy(value)


@cache
def _properties(def_name: str) -> dict[str, Any] | None:
    d = definitions().get(def_name)
    return None if d is None else d["properties"]


def descriptions(name: str) -> dict[str, str]:
    """Documentation of a definition: "" is its own, other keys are its fields."""
    return data().get("descriptions", {}).get(name, {})


def definition(name: str) -> dict[str, Any] | None:
    return definitions().get(name)


def definition_name(api_version: str, kind: str) -> str | None:
    """`apps/v1`, `Deployment` -> `io.k8s.api.apps.v1.Deployment` (None for kinds we don't describe)."""
    return data()["kinds"].get(f"{api_version}/{kind}")


def definition_name_for(info: ResourceInfo) -> str | None:
    return definition_name(info.api_version, info.kind)


def definition_for(info: ResourceInfo) -> dict[str, Any] | None:
    name = definition_name_for(info)
    return definition(name) if name else None


def is_definition(t: Type | None) -> bool:
    return isinstance(t, str) and t not in SCALARS


def field_type(def_name: str | None, field: str) -> Type | None:
    """The type of `field` in definition `def_name`; None when unknown."""
    if not def_name:
        return None
    d = definition(def_name)
    if d is None:
        return None
    return d["properties"].get(field)


def element_definition(t: Type | None) -> str | None:
    """The definition an object, or the elements of a list/map, are described by."""
    while isinstance(t, list):
        t = t[1]
    return t if is_definition(t) else None


def patch_meta(def_name: str | None, field: str) -> tuple[str, str]:
    """(patch strategy, merge key) Kubernetes declares for a field; ("", "") when none.

    The strategy is as in the OpenAPI extension: "", "merge", "retainKeys", "merge,retainKeys".
    """
    if not def_name:
        return "", ""
    d = definition(def_name)
    if d is None:
        return "", ""
    ext = d.get("extensions", {}).get(field)
    if not ext:
        return "", ""
    return ext.get("x-kubernetes-patch-strategy", ""), ext.get("x-kubernetes-patch-merge-key", "")


def prune(info: ResourceInfo, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of `obj` without fields the kind does not have, and the paths of those fields.

    Paths read like `.spec.template.spec.containers[0].foo`, in document order; the strict
    decoder's message names them without the leading dot (see `strict_decoding_message`).
    Kinds without a schema are returned whole (opaque kinds such as ConfigMap have one).
    """
    name = definition_name_for(info)
    if name is None:
        return json_copy(obj), []
    unknown = _unknown_in(name, obj)
    if not unknown:
        return json_copy(obj), []
    return _prune_value(name, obj, "", []), unknown


def prune_as(def_name: str, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`prune` against a named definition (e.g. an autoscaling/v1 Scale body)."""
    unknown: list[str] = []
    return _prune_value(def_name, obj, "", unknown), unknown


def unknown_fields(info: ResourceInfo, obj: dict[str, Any]) -> list[str]:
    """Paths of the fields `obj` has that the kind does not (for fieldValidation Strict/Warn).

    Copies nothing: the write path asks this of every body and prunes only when it names some.
    """
    name = definition_name_for(info)
    if name is None:
        return []
    return _unknown_in(name, obj)


def _unknown_in(def_name: str, obj: Any) -> list[str]:
    unknown: list[str] = []
    _find_unknown(def_name, obj, "", unknown)
    return unknown


def _find_unknown(def_name: str, value: Any, path: str, unknown: list[str]) -> None:
    """`_prune_value`'s walk without building anything; paths are formatted only where needed."""
    props = _properties(def_name)
    if props is None or type(value) is not dict:
        return
    for k, v in value.items():
        sub = props.get(k)
        if sub is None:
            unknown.append(f"{path}.{k}")
            continue
        tv = type(v)
        if tv is not dict and tv is not list:
            continue
        if type(sub) is str:
            if sub not in SCALARS:
                _find_unknown(sub, v, f"{path}.{k}", unknown)
        else:
            _find_unknown_in(sub, v, f"{path}.{k}", unknown)


def _find_unknown_in(t: Any, value: Any, path: str, unknown: list[str]) -> None:
    if isinstance(t, list):
        kind, elem = t
        if type(elem) is str and elem in SCALARS:
            return
        if kind == "array" and type(value) is list:
            for i, v in enumerate(value):
                if type(v) is dict or type(v) is list:
                    _find_unknown_in(elem, v, f"{path}[{i}]", unknown)
        elif kind == "map" and type(value) is dict:
            for k, v in value.items():
                if type(v) is dict or type(v) is list:
                    _find_unknown_in(elem, v, f"{path}[{k}]", unknown)
        return
    if t not in SCALARS:
        _find_unknown(t, value, path, unknown)


def strict_decoding_message(paths: list[str]) -> str:
    """The text Kubernetes' strict decoder gives for unknown fields."""
    fields = ", ".join(f'unknown field "{p.lstrip(".")}"' for p in paths)
    return f"strict decoding error: {fields}"


def _prune_value(t: Type, value: Any, path: str, unknown: list[str]) -> Any:
    if isinstance(t, list):
        kind, elem = t
        if kind == "array" and isinstance(value, list):
            return [_prune_value(elem, v, f"{path}[{i}]", unknown) for i, v in enumerate(value)]
        if kind == "map" and isinstance(value, dict):
            return {k: _prune_value(elem, v, f"{path}[{k}]", unknown) for k, v in value.items()}
        return json_copy(value)
    if t in SCALARS or not isinstance(value, dict):
        return json_copy(value)
    d = definition(t)
    if d is None:
        return json_copy(value)
    props = d["properties"]
    out: dict[str, Any] = {}
    for k, v in value.items():
        sub = props.get(k)
        if sub is None:
            unknown.append(f"{path}.{k}")
            continue
        out[k] = _prune_value(sub, v, f"{path}.{k}", unknown)
    return out


# ---- type errors (what Kubernetes' JSON decoder refuses before anything else) ----

# Integer fields Kubernetes declares int64; every other integer is an int32.
INT64_FIELDS = frozenset({
    "generation", "deletionGracePeriodSeconds", "observedGeneration", "terminationGracePeriodSeconds",
    "activeDeadlineSeconds", "runAsUser", "runAsGroup", "fsGroup", "supplementalGroups", "expirationSeconds",
    "tolerationSeconds", "gracePeriodSeconds", "remainingItemCount",
})
QUANTITY_PATTERN = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
INT32_RANGE = (-(2**31), 2**31 - 1)


def type_errors(info: ResourceInfo, obj: dict[str, Any]) -> list[str]:
    """Values of the wrong JSON type, as Go's decoder words them (Kubernetes reports the first).

    e.g. `json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type
    int32`. The server answers 400 BadRequest with `decode_error_message`. Opaque kinds too.
    """
    name = definition_name_for(info)
    if name is None:
        return []
    found: list[str] = []
    _check_struct(name, obj, [], found)
    return found


def decode_error_message(info: ResourceInfo, error: str) -> str:
    return f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: {error}'


def field_problems(info: ResourceInfo, obj: dict[str, Any],
                   old: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(`unknown_fields(info, obj)`, `type_errors(info, obj)`) in one walk.

    `old`, when given, is a stored object that passed both checks: parts of `obj` that are the
    same (in their JSON text) as the same place in `old` are not walked again, so an update
    costs what it changes. Pass `old` only for objects stored by this server.
    """
    name = definition_name_for(info)
    if name is None:
        return [], []
    unknown: list[str] = []
    found: list[str] = []
    _scan_struct(name, obj, old, "", [], unknown, found)
    return unknown, found


_MISSING: Any = object()
_encode_json = msgspec.json.Encoder().encode


def _unchanged(v: Any, ov: Any) -> bool:
    """Whether `v` is `ov` in JSON text (Python's == alone says True == 1 == 1.0)."""
    if v is ov:
        return True
    if ov is _MISSING or v != ov:
        return False
    try:
        return _encode_json(v) == _encode_json(ov)
    except (TypeError, ValueError, msgspec.EncodeError):
        return False


def _scan_struct(def_name: str, value: Any, old: Any, upath: str, kpath: list[str], unknown: list[str],
                 found: list[str]) -> None:
    props = _properties(def_name)
    if props is None or type(value) is not dict:
        return
    old_d = old if type(old) is dict else None
    for key, v in value.items():
        t = props.get(key)
        if t is None:
            unknown.append(f"{upath}.{key}")
            continue
        if v is None:
            continue
        tv = type(v)
        if tv is dict or tv is list:
            ov = old_d.get(key, _MISSING) if old_d is not None else _MISSING
            if ov is not _MISSING and _unchanged(v, ov):
                continue
            _scan_value(t, v, ov, _short(def_name), [*kpath, key], key, f"{upath}.{key}", unknown, found)
            continue
        if tv is str:
            if t == "string" or t == "IntOrString" or t == "any" or t == "Time" or t == "MicroTime":
                continue
        elif tv is int:
            if t == "integer" and (key in INT64_FIELDS or INT32_RANGE[0] <= v <= INT32_RANGE[1]):
                continue
            if t == "IntOrString" or t == "number" or t == "any":
                continue
        elif tv is bool and (t == "boolean" or t == "any"):
            continue
        _check_value(t, v, _short(def_name), [*kpath, key], key, found)


def _scan_value(t: Type, v: Any, old: Any, owner: str, kpath: list[str], field: str, upath: str,
                unknown: list[str], found: list[str]) -> None:
    """`_check_value` on a dict or list value, also collecting unknown fields below it."""
    if isinstance(t, list):
        kind, elem = t
        if kind == "array":
            if type(v) is not list:
                _check_value(t, v, owner, kpath, field, found)
                return
            olds = old if type(old) is list else ()
            for i, item in enumerate(v):
                oi = olds[i] if i < len(olds) else _MISSING
                if type(item) is dict or type(item) is list:
                    if oi is not _MISSING and _unchanged(item, oi):
                        continue
                    _scan_value(elem, item, oi, owner, kpath, field, f"{upath}[{i}]", unknown, found)
                else:
                    _check_value(elem, item, owner, kpath, field, found)
        else:
            if type(v) is not dict:
                _check_value(t, v, owner, kpath, field, found)
                return
            olds_d = old if type(old) is dict else {}
            for k, item in v.items():
                if type(item) is dict or type(item) is list:
                    oi = olds_d.get(k, _MISSING)
                    if oi is not _MISSING and _unchanged(item, oi):
                        continue
                    _scan_value(elem, item, oi, owner, kpath, field, f"{upath}[{k}]", unknown, found)
                else:
                    _check_value(elem, item, owner, kpath, field, found)
        return
    if t in SCALARS or type(v) is not dict:
        _check_value(t, v, owner, kpath, field, found)
    else:
        _scan_struct(t, v, old, upath, kpath, unknown, found)


@cache
def _short(def_name: str) -> str:
    return def_name.rsplit(".", 1)[-1]


def _go_type(t: Type, field: str) -> str:
    if isinstance(t, list):
        inner = _go_type(t[1], field)
        return f"[]{inner}" if t[0] == "array" else f"map[string]{inner}"
    simple = {"string": "string", "boolean": "bool", "number": "float64", "byte": "[]uint8", "any": "interface {}",
              "Time": "v1.Time", "MicroTime": "v1.MicroTime", "IntOrString": "intstr.IntOrString",
              "Quantity": "resource.Quantity"}
    if t == "integer":
        return "int64" if field in INT64_FIELDS else "int32"
    if t in simple:
        return simple[t]
    package = t.rsplit(".", 2)[-2]
    return f"{package}.{_short(t)}"


def json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return f"number {value}"


def _check_struct(def_name: str, value: Any, path: list[str], found: list[str]) -> None:
    props = _properties(def_name)
    if props is None or not isinstance(value, dict):
        return
    for key, v in value.items():
        t = props.get(key)
        if t is None or v is None:
            continue
        # The common, well-typed scalars are settled here, without a call per field.
        tv = type(v)
        if tv is str:
            if t == "string" or t == "IntOrString" or t == "any" or t == "Time" or t == "MicroTime":
                continue
        elif tv is int:
            if t == "integer" and (key in INT64_FIELDS or INT32_RANGE[0] <= v <= INT32_RANGE[1]):
                continue
            if t == "IntOrString" or t == "number" or t == "any":
                continue
        elif tv is bool and (t == "boolean" or t == "any"):
            continue
        _check_value(t, v, _short(def_name), [*path, key], key, found)


def _check_value(t: Type, v: Any, owner: str, path: list[str], field: str, found: list[str]) -> None:
    def bad() -> None:
        found.append(f"json: cannot unmarshal {json_kind(v)} into Go struct field {owner}.{'.'.join(path)} "
                     f"of type {_go_type(t, field)}")

    if v is None:
        return
    if isinstance(t, list):
        kind, elem = t
        if kind == "array":
            if not isinstance(v, list):
                return bad()
            for item in v:
                _check_value(elem, item, owner, path, field, found)
        else:
            if not isinstance(v, dict):
                return bad()
            for item in v.values():
                _check_value(elem, item, owner, path, field, found)
        return None
    if t in ("string", "byte", "Time", "MicroTime"):
        if not isinstance(v, str):
            bad()
        elif t == "byte":
            error = base64_error(v)
            if error:
                found.append(error)
    elif t == "boolean":
        if not isinstance(v, bool):
            bad()
    elif t == "integer":
        whole = (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
        in_range = field in INT64_FIELDS or (whole and INT32_RANGE[0] <= v <= INT32_RANGE[1])
        if not (whole and in_range):
            bad()
    elif t == "number":
        if isinstance(v, bool) or not isinstance(v, int | float):
            bad()
    elif t == "IntOrString":
        if isinstance(v, bool) or not isinstance(v, int | str):
            bad()
    elif t == "Quantity":
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            bad()
        elif isinstance(v, str) and not _quantity_ok(v):
            found.append(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
    elif t == "any":
        return None
    elif not isinstance(v, dict):
        bad()
    else:
        _check_struct(t, v, path, found)
    return None


_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def base64_error(text: str) -> str:
    """Go's error for a `[]byte` field whose JSON string is not padded standard base64 ("" if it is).

    Newlines are skipped as Go skips them; the byte offset is the one Go reports.
    """
    src = text.encode()
    if _B64_FAST.fullmatch(src):
        return ""
    n, si = len(src), 0
    while True:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return ""
                return f"illegal base64 data at input byte {si - j}"
            c = src[si]
            si += 1
            if c in _B64_ALPHABET:
                j += 1
                continue
            if c in b"\r\n":
                continue
            if c != ord("=") or j < 2:
                return f"illegal base64 data at input byte {si - 1}"
            if j == 2:  # a second "=" must follow
                while si < n and src[si] in b"\r\n":
                    si += 1
                if si == n:
                    return f"illegal base64 data at input byte {n}"
                if src[si] != ord("="):
                    return f"illegal base64 data at input byte {si - 1}"
                si += 1
            while si < n and src[si] in b"\r\n":
                si += 1
            return f"illegal base64 data at input byte {si}" if si < n else ""


_B64_FAST = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


@lru_cache(maxsize=4096)
def _quantity_ok(text: str) -> bool:
    from sliceplane.api.defaults import parse_quantity

    return parse_quantity(text) is not None
