"""PATCH bodies applied to stored objects: JSON merge patch, JSON patch, strategic merge patch.

All three are pure functions of (object, patch) -> new object. The strategic merge patch reads
its list semantics (merge keys, strategies) from schema.json, so `kubectl apply`'s three-way
patches (with `$setElementOrder`, `$retainKeys`, `$deleteFromPrimitiveList` and `$patch`
directives) land as they would on Kubernetes. Errors carry the codes and messages Kubernetes
gives: 400 for a body that is not a patch, 422 for a JSON patch that does not apply, 500 (no
reason) for a strategic patch that contradicts the schema, 415 for server-side apply.
"""

from __future__ import annotations

import json
from typing import Any

from sliceplane.api import errors, schema
from sliceplane.api.errors import Cause, StatusError
from sliceplane.api.schema import json_copy

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

MAX_JSON_PATCH_OPERATIONS = 10000

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"

# Messages of Kubernetes' strategic-merge-patch errors.
ERR_BAD_PATCH_FORMAT_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_BAD_PATCH_FORMAT_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_BAD_PATCH_FORMAT_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"


def apply_patch(original: dict[str, Any], patch: bytes, content_type: str, *,
                def_name: str | None = None) -> dict[str, Any]:
    """`original` with `patch` applied, as a new dict (the input is never changed).

    The strategic merge patch finds the schema from the object's apiVersion/kind, or from
    `def_name` (e.g. `io.k8s.api.autoscaling.v1.Scale` for a scale subresource).
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media == MERGE_PATCH:
        return merge_patch(original, _decode_merge_patch(patch))
    if media == JSON_PATCH:
        return json_patch(original, _decode_json_patch(patch))
    if media == STRATEGIC_MERGE_PATCH:
        if def_name is None:
            def_name = schema.definition_name(str(original.get("apiVersion", "")), str(original.get("kind", "")))
        return strategic_merge_patch(original, _decode_strategic_patch(patch), def_name)
    if media in (APPLY_PATCH, APPLY_PATCH_CBOR):
        raise StatusError(415, "UnsupportedMediaType",
                          "the body of the request was in an unknown format - accepted media types include: "
                          + ", ".join(PATCH_TYPES) + " (server-side apply is not supported by this server; "
                          "use client-side `kubectl apply`)")
    raise StatusError(415, "UnsupportedMediaType",
                      "the body of the request was in an unknown format - accepted media types include: "
                      + ", ".join(PATCH_TYPES))


# ---- decoding ----

def _go_json_error(data: bytes) -> str | None:
    """None when `data` is valid JSON, else the message Go's encoding/json would give."""
    text = data.decode("utf-8", errors="replace")
    if not text.strip():
        return "unexpected end of JSON input"
    try:
        json.loads(text, parse_constant=_reject_constant)
    except _NotJSON as e:
        return f"invalid character '{e.args[0][:1]}' looking for beginning of value"
    except json.JSONDecodeError as e:
        if e.pos >= len(text.rstrip()):
            return "unexpected end of JSON input"
        ch = text[e.pos]
        context = {
            "Expecting value": "looking for beginning of value",
            "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
            "Expecting ':' delimiter": "after object key",
            "Expecting ',' delimiter": ("after array element" if _inside_array(text, e.pos)
                                        else "after object key:value pair"),
            "Extra data": "after top-level value",
        }.get(e.msg, "in string literal" if "control character" in e.msg or "escape" in e.msg else
              "looking for beginning of value")
        return f"invalid character {_go_char(ch)} {context}"
    return None


def _inside_array(text: str, pos: int) -> bool:
    """Whether the innermost open bracket before `pos` is `[` (strings skipped)."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return bool(stack) and stack[-1] == "["


class _NotJSON(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotJSON(name)


def _go_char(ch: str) -> str:
    return "'\\''" if ch == "'" else f"'{ch}'"


def _loads(data: bytes) -> tuple[Any, str | None]:
    err = _go_json_error(data)
    if err is not None:
        return None, err
    return json.loads(data), None


def _go_type(v: Any) -> str:
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    return "number"


def _decode_merge_patch(data: bytes) -> dict[str, Any]:
    value, err = _loads(data)
    if err:
        raise errors.bad_request(f"error decoding patch: {err}")
    if value is None:
        raise errors.bad_request("Invalid JSON Patch")
    if not isinstance(value, dict):
        raise errors.bad_request(f"error decoding patch: json: cannot unmarshal {_go_type(value)} into Go value "
                                 "of type map[string]interface {}")
    return value


def _decode_strategic_patch(data: bytes) -> dict[str, Any]:
    value, err = _loads(data)
    if err:
        raise errors.bad_request(err)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.bad_request(f"json: cannot unmarshal {_go_type(value)} into Go value of type "
                                 "map[string]interface {}")
    return value


def _decode_json_patch(data: bytes) -> list[dict[str, Any]]:
    value, err = _loads(data)
    if err:
        raise errors.bad_request(f"error decoding patch: {err}")
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.bad_request(f"error decoding patch: json: cannot unmarshal {_go_type(value)} into Go value "
                                 "of type []handlers.jsonPatchOp")
    for op in value:
        if not isinstance(op, dict):
            raise errors.bad_request(f"error decoding patch: json: cannot unmarshal {_go_type(op)} into Go value "
                                     "of type handlers.jsonPatchOp")
    if len(value) > MAX_JSON_PATCH_OPERATIONS:
        raise errors.too_large(f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
                               f"got {len(value)}")
    return value


# ---- RFC 7386 JSON merge patch ----

def merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces.

    Copy-on-write: new dicts along the paths the patch names; what it leaves alone is shared
    with `original` (which is never changed), so the cost follows the patch, not the object.
    """
    if not isinstance(patch, dict):
        return json_copy(patch)
    out = dict(original) if isinstance(original, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---- RFC 6902 JSON patch ----

class _PatchFailed(Exception):
    pass


def _unprocessable(message: str) -> StatusError:
    """Kubernetes' answer to a JSON patch that does not apply: 422 with the reason as a cause."""
    return StatusError(422, "Invalid", "the server rejected our request due to an error in our request",
                       None, [Cause("UnexpectedServerResponse", message)])


def json_patch(original: dict[str, Any], ops: list[dict[str, Any]]) -> Any:
    doc: Any = json_copy(original)
    for op in ops:
        try:
            doc = _apply_op(doc, op)
        except _PatchFailed as e:
            raise _unprocessable(str(e)) from None
    return doc


def _pointer(path: Any) -> list[str] | None:
    if not isinstance(path, str):
        return None
    if path == "":
        return []
    if not path.startswith("/"):
        return None
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(token: str, size: int, *, allow_end: bool) -> int:
    """A JSON pointer array index (negative counts from the end, `-` is the end when adding)."""
    if token == "-" and allow_end:
        return size
    try:
        i = int(token)
    except ValueError:
        raise _PatchFailed(f"Unable to access invalid index: {token}: invalid index referenced") from None
    limit = size if allow_end else size - 1
    if i < -size or i > limit:
        raise _PatchFailed(f"Unable to access invalid index: {i}: invalid index referenced")
    return i + size if i < 0 else i


def _container(doc: Any, tokens: list[str]) -> Any:
    """The object or array holding the pointer's last token; None when the path is missing."""
    node = doc
    for t in tokens[:-1]:
        if isinstance(node, dict):
            if t not in node:
                return None
            node = node[t]
        elif isinstance(node, list):
            try:
                i = int(t)
            except ValueError:
                return None
            if not -len(node) <= i < len(node):
                return None
            node = node[i]
        else:
            return None
    return node if isinstance(node, dict | list) else None


def _get(doc: Any, tokens: list[str]) -> tuple[bool, Any]:
    if not tokens:
        return True, doc
    con = _container(doc, tokens)
    key = tokens[-1]
    if isinstance(con, dict):
        return (key in con), con.get(key)
    if isinstance(con, list):
        try:
            i = int(key)
        except ValueError:
            return False, None
        if -len(con) <= i < len(con):
            return True, con[i]
    return False, None


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    if kind not in ("add", "remove", "replace", "move", "copy", "test"):
        raise _PatchFailed(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
    path = op.get("path")
    tokens = _pointer(path)
    if tokens is None:
        raise _PatchFailed(f"{kind} operation failed to decode path: missing value")
    if kind == "add":
        return _add(doc, tokens, json_copy(op.get("value")), path)
    if kind == "remove":
        return _remove(doc, tokens, path)[0]
    if kind == "replace":
        return _replace(doc, tokens, json_copy(op.get("value")), path)
    if kind == "test":
        found, value = _get(doc, tokens)
        if tokens and _container(doc, tokens) is None:
            raise _PatchFailed(f"test operation does not apply: is missing path: {path}: missing value")
        expected = op.get("value")
        if (not found and expected is None) or (found and _json_equal(value, expected)):
            return doc
        raise _PatchFailed(f"testing value {path} failed: test failed")
    source = op.get("from")
    from_tokens = _pointer(source)
    found, value = (False, None) if from_tokens is None else _get(doc, from_tokens)
    if from_tokens is None or not found:
        raise _PatchFailed(f"{kind} operation does not apply: doc is missing from path: {source}: missing value")
    if kind == "move":
        doc, value = _remove(doc, from_tokens, source)
        return _add(doc, tokens, value, path)
    return _add(doc, tokens, json_copy(value), path)


def _add(doc: Any, tokens: list[str], value: Any, path: str) -> Any:
    if not tokens:
        return value
    con = _container(doc, tokens)
    if con is None:
        raise _PatchFailed(f'add operation does not apply: doc is missing path: "{path}": missing value')
    key = tokens[-1]
    if isinstance(con, dict):
        con[key] = value
    else:
        con.insert(_index(key, len(con), allow_end=True), value)
    return doc


def _remove(doc: Any, tokens: list[str], path: str) -> tuple[Any, Any]:
    con = _container(doc, tokens) if tokens else None
    if con is None:
        raise _PatchFailed(f'remove operation does not apply: doc is missing path: "{path}": missing value')
    key = tokens[-1]
    if isinstance(con, dict):
        if key not in con:
            raise _PatchFailed(f"error in remove for path: '{path}': Unable to remove nonexistent key: {key}: "
                               "missing value")
        return doc, con.pop(key)
    try:
        i = _index(key, len(con), allow_end=False)
    except _PatchFailed as e:
        raise _PatchFailed(f"error in remove for path: '{path}': {e}") from None
    return doc, con.pop(i)


def _replace(doc: Any, tokens: list[str], value: Any, path: str) -> Any:
    if not tokens:
        return value
    con = _container(doc, tokens)
    if con is None:
        raise _PatchFailed(f"replace operation does not apply: doc is missing path: {path}: missing value")
    key = tokens[-1]
    if isinstance(con, dict):
        if key not in con:
            raise _PatchFailed(f"replace operation does not apply: doc is missing key: {path}: missing value")
        con[key] = value
        return doc
    try:
        i = _index(key, len(con), allow_end=False)
    except _PatchFailed as e:
        raise _PatchFailed(f"error in replace for path: '{path}': {e}") from None
    con[i] = value
    return doc


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


# ---- strategic merge patch ----

def _smp_error(message: str) -> StatusError:
    """Strategic patch errors Kubernetes does not classify reach clients as a bare 500."""
    return StatusError(500, "", message)


def _go_fmt(v: Any) -> str:
    """Go's %v of a decoded JSON value, as Kubernetes' messages print them."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_fmt(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go_fmt(x) for x in v) + "]"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def go_value(v: Any) -> str:
    """A decoded JSON value as Go's %v prints it (Kubernetes shows patch maps this way in errors)."""
    return _go_fmt(v)


def strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any], def_name: str | None) -> dict[str, Any]:
    """Kubernetes' strategic merge patch of `patch` onto `original`, typed by definition `def_name`.

    Copy-on-write on `original` (each map the patch reaches is copied before it changes; the
    rest is shared, never changed); the patch is copied whole, as the merge consumes it.
    """
    return _merge_map(original, json_copy(patch), def_name)


def _def(t: schema.Type | None) -> str | None:
    return t if schema.is_definition(t) else None


def _child_type(t: schema.Type | None, key: str) -> schema.Type | None:
    """The type of `key` inside a value of type `t` (a definition or a map)."""
    if isinstance(t, list):
        return t[1] if t[0] == "map" else None
    return schema.field_type(_def(t), key)


def _meta(t: schema.Type | None, key: str) -> tuple[str, str]:
    return schema.patch_meta(_def(t), key)


def _merge_map(original: dict[str, Any], patch: dict[str, Any], t: schema.Type | None) -> dict[str, Any]:
    """A merged copy of the map `original` (unchanged); `patch` is owned and consumed."""
    original = dict(original)
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            return _merge_map({}, {k: v for k, v in patch.items() if k != DIRECTIVE}, t)
        if directive == "delete":
            return {}
        raise _smp_error(f"unknown patch type: {_go_fmt(directive)} in map: {_go_fmt(patch)}")

    if RETAIN_KEYS in patch:
        retain = patch.pop(RETAIN_KEYS)
        if not isinstance(retain, list):
            raise errors.bad_request(ERR_BAD_PATCH_FORMAT_RETAIN_KEYS)
        keep = {k for k in retain if isinstance(k, str)}
        for k, v in patch.items():
            if v is None or k.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
                continue
            if k not in keep:
                raise errors.bad_request(ERR_BAD_PATCH_FORMAT_RETAIN_KEYS)
        for k in list(original):
            if k not in keep:
                del original[k]

    for k in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(k)
        field = k[len(SET_ELEMENT_ORDER):]
        _merge_with_element_order(original, patch, t, field, order)

    for k in [k for k in patch if k.startswith(DELETE_FROM_PRIMITIVE_LIST)]:
        doomed = patch.pop(k)
        field = k[len(DELETE_FROM_PRIMITIVE_LIST):]
        if not isinstance(doomed, list):
            raise errors.bad_request(ERR_BAD_PATCH_FORMAT_PRIMITIVE_LIST)
        current = original.get(field)
        if isinstance(current, list):
            original[field] = [x for x in current if not any(_json_equal(x, d) for d in doomed)]

    for k, v in patch.items():
        if k.startswith("$"):
            continue  # a directive we do not know; Kubernetes' typed decode drops it too
        if v is None:
            original.pop(k, None)
            continue
        original[k] = _merge_value(original.get(k), v, t, k, k in original)
    return original


def _merge_value(old: Any, new: Any, parent: schema.Type | None, key: str, present: bool) -> Any:
    sub = _child_type(parent, key)
    if isinstance(new, dict):
        base = old if present and isinstance(old, dict) else {}
        return _merge_map(base, new, sub)
    if isinstance(new, list):
        base_list = old if present and isinstance(old, list) else []
        return _merge_list(base_list, new, parent, key)
    return new


def _elem_type(parent: schema.Type | None, key: str) -> schema.Type | None:
    t = _child_type(parent, key)
    return t[1] if isinstance(t, list) and t[0] == "array" else None


def _merge_list(original: list[Any], patch: list[Any], parent: schema.Type | None, key: str) -> list[Any]:
    strategy, merge_key = _meta(parent, key)
    elem = _elem_type(parent, key)
    if "merge" not in strategy.split(","):
        return [_clean(x, elem) for x in patch]
    if any(isinstance(x, list) for x in original + patch):
        raise _unprocessable(ERR_NO_LIST_OF_LISTS)
    if not original and not patch:
        return original
    if not any(isinstance(x, dict) for x in original + patch):
        merged = _dedupe(original + patch)
        return _normalize_order(merged, patch, original, "")
    if not merge_key:
        raise _smp_error("cannot merge lists without merge key for type struct")
    base, items = _special_elements(original, patch, merge_key)
    merged = list(base)
    for item in items:
        if not isinstance(item, dict) or merge_key not in item:
            raise _smp_error(f"map: {_go_fmt(item)} does not contain declared merge key: {merge_key}")
        i = _find(merged, merge_key, item[merge_key])
        if i is None:
            merged.append(_merge_map({}, item, elem))
        else:
            merged[i] = _merge_map(merged[i], item, elem)
    return _normalize_order(merged, patch, original, merge_key)


def _clean(value: Any, t: schema.Type | None) -> Any:
    """A patch value taken whole: directives and nulls dropped, as a typed decode would."""
    if isinstance(value, dict):
        return _merge_map({}, value, t)
    return value


def _special_elements(original: list[Any], patch: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Apply `$patch: delete|replace` list elements; return (original, remaining patch items)."""
    items: list[Any] = []
    replace = False
    for v in patch:
        if not isinstance(v, dict) or DIRECTIVE not in v:
            items.append(v)
            continue
        directive = v[DIRECTIVE]
        if directive == "delete":
            if merge_key not in v:
                raise _smp_error(f"map: {_go_fmt(v)} does not contain declared merge key: {merge_key}")
            original = [o for o in original
                        if not (isinstance(o, dict) and _json_equal(o.get(merge_key), v[merge_key]))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _smp_error("merging lists cannot yet be specified in the patch")
        else:
            raise _smp_error(f"unknown patch type: {_go_fmt(directive)} in map: {_go_fmt(v)}")
    if replace:
        return [], items
    return original, items


def _find(items: list[Any], merge_key: str, value: Any) -> int | None:
    for i, item in enumerate(items):
        if isinstance(item, dict) and merge_key in item and _json_equal(item[merge_key], value):
            return i
    return None


def _dedupe(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in items:
        if not any(_json_equal(x, y) for y in out):
            out.append(x)
    return out


def _identity(item: Any, merge_key: str) -> Any:
    return item.get(merge_key) if merge_key and isinstance(item, dict) else item


def _position(order: list[Any], item: Any, merge_key: str) -> int:
    ident = _identity(item, merge_key)
    for i, o in enumerate(order):
        if _json_equal(_identity(o, merge_key), ident):
            return i
    return -1


def _normalize_order(merged: list[Any], patch_order: list[Any], server_order: list[Any],
                     merge_key: str) -> list[Any]:
    """Items named by the patch in the patch's order, the rest where the server had them.

    The two runs are interleaved by the server's order wherever both items were already there,
    so a patch reorders only what it names.
    """
    in_patch = [m for m in merged if _position(patch_order, m, merge_key) >= 0]
    server_only = [m for m in merged if _position(patch_order, m, merge_key) < 0]
    in_patch.sort(key=lambda m: _position(patch_order, m, merge_key))
    server_only.sort(key=lambda m: _position(server_order, m, merge_key))
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(in_patch):
        if j >= len(in_patch):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(in_patch[j])
            j += 1
        else:
            li = _position(server_order, server_only[i], merge_key)
            ri = _position(server_order, in_patch[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(in_patch[j])
                j += 1
    return out


def _merge_with_element_order(original: dict[str, Any], patch: dict[str, Any], t: schema.Type | None,
                              field: str, order: Any) -> None:
    """`$setElementOrder/<field>`: merge the field's patch list, then order the result as listed."""
    if not isinstance(order, list):
        raise errors.bad_request(ERR_BAD_PATCH_FORMAT_SET_ELEMENT_ORDER)
    patch_list = patch.pop(field, None)
    if patch_list is not None and not isinstance(patch_list, list):
        raise errors.bad_request(ERR_BAD_PATCH_FORMAT_SET_ELEMENT_ORDER)
    _, merge_key = _meta(t, field)
    _check_order(patch_list or [], order, merge_key)
    current = original.get(field)
    base = current if isinstance(current, list) else []
    merged = _merge_list(base, patch_list, t, field) if patch_list is not None else list(base)
    if not merged:
        if field in original or patch_list is not None:
            original[field] = merged
        return
    original[field] = _normalize_order(merged, order, base, merge_key)


def _check_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """Every patch item must appear in the order list, in the same relative order."""
    items = [p for p in patch_list if not (isinstance(p, dict) and DIRECTIVE in p)]
    i = j = 0
    while i < len(items) and j < len(order):
        if _json_equal(_identity(items[i], merge_key), _identity(order[j], merge_key)):
            i += 1
        j += 1
    if i < len(items):
        raise _smp_error(f"The order in patch list:\n{_go_fmt(patch_list)}\n doesn't match "
                         f"$setElementOrder list:\n{_go_fmt(order)}\n")
