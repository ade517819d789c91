"""The OpenAPI v2 document in gnostic's protobuf encoding (openapi.v2.Document).

kubectl fetches /openapi/v2 only as protobuf, and only when its server-side validation check
cannot answer for a kind: a `kind: List` file is validated client-side, item by item, against
these definitions. Only the parts of the OpenAPI v2 schema that our document uses are encoded;
field numbers follow gnostic's OpenAPIv2.proto. Vendor extensions and other free-form values
travel as YAML text (JSON is YAML), which is how gnostic's `Any` carries them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

Encoder = Callable[[Any], bytes]


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint (also used by tests that build Kubernetes protobuf bodies)."""
    out = bytearray()
    n &= (1 << 64) - 1  # negative int64 values take ten bytes, as in Go
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + varint(len(payload)) + payload


def _string(value: Any) -> bytes:
    return str(value).encode()


def _any(value: Any) -> bytes:
    """openapi.v2.Any with only its `yaml` (2) set."""
    return _bytes_field(2, json.dumps(value, sort_keys=True).encode())


def _named(value_encoder: Encoder) -> Encoder:
    """A map as gnostic's ordered (name=1, value=2) pairs, encoded one pair per call."""
    def encode(pair: tuple[str, Any]) -> bytes:
        name, value = pair
        return _bytes_field(1, name.encode()) + _bytes_field(2, value_encoder(value))
    return encode


# A field: (JSON key, number, kind). Kinds: "string", "bool", "double", "int64", "strings",
# "any", "anys", or a message encoder (repeated when the JSON value is a list).
Field = tuple[str, int, Any]


def _message(fields: list[Field], vendor_number: int | None = None) -> Encoder:
    def encode(obj: Any) -> bytes:
        out = bytearray()
        if not isinstance(obj, dict):
            return b""
        for key, number, kind in fields:
            if key not in obj:
                continue
            out += _field(number, kind, obj[key])
        if vendor_number is not None:
            for name, value in obj.items():
                if name.startswith("x-"):
                    out += _bytes_field(vendor_number, _named(_any)((name, value)))
        return bytes(out)
    return encode


def _field(number: int, kind: Any, value: Any) -> bytes:
    if kind == "string":
        return _bytes_field(number, _string(value)) if value != "" else b""
    if kind == "bool":
        return _key(number, 0) + b"\x01" if value else b""
    if kind == "double":
        return _key(number, 1) + struct.pack("<d", float(value))
    if kind == "int64":
        return _key(number, 0) + varint(int(value))
    if kind == "strings":
        return b"".join(_bytes_field(number, _string(v)) for v in value)
    if kind == "any":
        return _bytes_field(number, _any(value))
    if kind == "anys":
        return b"".join(_bytes_field(number, _any(v)) for v in value)
    if isinstance(value, list):
        return b"".join(_bytes_field(number, kind(v)) for v in value)
    return _bytes_field(number, kind(value))


def _map(value_encoder: Encoder) -> Encoder:
    """A message whose only field (1) is a map, as gnostic's repeated Named* pairs."""
    pair = _named(value_encoder)
    return lambda obj: b"".join(_bytes_field(1, pair(item)) for item in (obj or {}).items())


def _schema(obj: Any) -> bytes:
    return _SCHEMA(obj)


def _additional_properties(value: Any) -> bytes:
    if isinstance(value, bool):
        return _key(2, 0) + (b"\x01" if value else b"\x00")
    return _bytes_field(1, _schema(value))


def _type_item(value: Any) -> bytes:
    return b"".join(_bytes_field(1, _string(v)) for v in (value if isinstance(value, list) else [value]))


def _items_item(value: Any) -> bytes:
    return b"".join(_bytes_field(1, _schema(v)) for v in (value if isinstance(value, list) else [value]))


_SCHEMA = _message([
    ("$ref", 1, "string"), ("format", 2, "string"), ("title", 3, "string"), ("description", 4, "string"),
    ("default", 5, "any"), ("multipleOf", 6, "double"), ("maximum", 7, "double"), ("exclusiveMaximum", 8, "bool"),
    ("minimum", 9, "double"), ("exclusiveMinimum", 10, "bool"), ("maxLength", 11, "int64"),
    ("minLength", 12, "int64"), ("pattern", 13, "string"), ("maxItems", 14, "int64"), ("minItems", 15, "int64"),
    ("uniqueItems", 16, "bool"), ("maxProperties", 17, "int64"), ("minProperties", 18, "int64"),
    ("required", 19, "strings"), ("enum", 20, "anys"), ("additionalProperties", 21, _additional_properties),
    ("type", 22, _type_item), ("items", 23, _items_item), ("allOf", 24, _schema),
    ("properties", 25, _map(_schema)), ("discriminator", 26, "string"), ("readOnly", 27, "bool"),
    ("example", 30, "any"),
], vendor_number=31)

# Numbers of the fields that every non-body parameter kind shares, after their first four
# (required, in, description, name): query and formData parameters have allowEmptyValue at 5
# and everything after it one higher than path and header parameters.
_PRIMITIVE_TAIL = ["type", "format", "items", "collectionFormat", "default", "maximum", "exclusiveMaximum",
                   "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
                   "uniqueItems", "enum", "multipleOf"]
_PRIMITIVE_KINDS: dict[str, Any] = {
    "type": "string", "format": "string", "collectionFormat": "string", "default": "any", "maximum": "double",
    "exclusiveMaximum": "bool", "minimum": "double", "exclusiveMinimum": "bool", "maxLength": "int64",
    "minLength": "int64", "pattern": "string", "maxItems": "int64", "minItems": "int64", "uniqueItems": "bool",
    "enum": "anys", "multipleOf": "double",
}


def _primitives_items(obj: Any) -> bytes:
    return _PRIMITIVES_ITEMS(obj)


_PRIMITIVE_KINDS["items"] = _primitives_items
_PRIMITIVES_ITEMS = _message([(k, i + 1, _PRIMITIVE_KINDS[k]) for i, k in enumerate(_PRIMITIVE_TAIL)],
                             vendor_number=18)


def _sub_schema(allow_empty_value: bool) -> Encoder:
    head: list[Field] = [("required", 1, "bool"), ("in", 2, "string"), ("description", 3, "string"),
                         ("name", 4, "string")]
    start = 5
    if allow_empty_value:
        head.append(("allowEmptyValue", 5, "bool"))
        start = 6
    tail = [(k, start + i, _PRIMITIVE_KINDS[k]) for i, k in enumerate(_PRIMITIVE_TAIL)]
    return _message(head + tail, vendor_number=start + len(_PRIMITIVE_TAIL))


_NON_BODY_NUMBERS = {"header": (1, _sub_schema(False)), "formData": (2, _sub_schema(True)),
                     "query": (3, _sub_schema(True)), "path": (4, _sub_schema(False))}
_BODY_PARAMETER = _message([("description", 1, "string"), ("name", 2, "string"), ("in", 3, "string"),
                            ("required", 4, "bool"), ("schema", 5, _schema)], vendor_number=6)


def _parameters_item(obj: Any) -> bytes:
    """ParametersItem: a $ref (json_reference, 2) or a parameter (1), body or not."""
    if "$ref" in obj:
        return _bytes_field(2, _message([("$ref", 1, "string"), ("description", 2, "string")])(obj))
    if obj.get("in") == "body":
        parameter = _bytes_field(1, _BODY_PARAMETER(obj))
    else:
        number, encode = _NON_BODY_NUMBERS.get(obj.get("in"), _NON_BODY_NUMBERS["query"])
        parameter = _bytes_field(2, _bytes_field(number, encode(obj)))
    return _bytes_field(1, parameter)


_RESPONSE = _message([("description", 1, "string"),
                      ("schema", 2, lambda s: _bytes_field(1, _schema(s)))], vendor_number=5)


def _responses(obj: Any) -> bytes:
    pair = _named(lambda r: _bytes_field(2, _message([("$ref", 1, "string")])(r)) if "$ref" in r
                  else _bytes_field(1, _RESPONSE(r)))
    return b"".join(_bytes_field(1, pair(item)) for item in obj.items() if not item[0].startswith("x-"))


_OPERATION = _message([
    ("tags", 1, "strings"), ("summary", 2, "string"), ("description", 3, "string"), ("operationId", 5, "string"),
    ("produces", 6, "strings"), ("consumes", 7, "strings"), ("parameters", 8, _parameters_item),
    ("responses", 9, _responses), ("schemes", 10, "strings"), ("deprecated", 11, "bool"),
], vendor_number=13)

_PATH_ITEM = _message([
    ("$ref", 1, "string"), ("get", 2, _OPERATION), ("put", 3, _OPERATION), ("post", 4, _OPERATION),
    ("delete", 5, _OPERATION), ("options", 6, _OPERATION), ("head", 7, _OPERATION), ("patch", 8, _OPERATION),
    ("parameters", 9, _parameters_item),
], vendor_number=10)


def _paths(obj: Any) -> bytes:
    pair = _named(_PATH_ITEM)
    return b"".join(_bytes_field(2, pair(item)) for item in obj.items() if not item[0].startswith("x-"))


def _security_definition(obj: Any) -> bytes:
    """Only the kinds a Kubernetes document uses: apiKey (2) and basic (1)."""
    if obj.get("type") == "basic":
        return _bytes_field(1, _message([("type", 1, "string"), ("description", 2, "string")], 3)(obj))
    fields: list[Field] = [("type", 1, "string"), ("name", 2, "string"), ("in", 3, "string"),
                           ("description", 4, "string")]
    return _bytes_field(2, _message(fields, 5)(obj))


def _security_requirement(obj: Any) -> bytes:
    return _map(lambda names: b"".join(_bytes_field(1, _string(n)) for n in names))(obj)


_DOCUMENT = _message([
    ("swagger", 1, "string"),
    ("info", 2, _message([("title", 1, "string"), ("version", 2, "string"), ("description", 3, "string")], 7)),
    ("host", 3, "string"), ("basePath", 4, "string"), ("schemes", 5, "strings"), ("consumes", 6, "strings"),
    ("produces", 7, "strings"), ("paths", 8, _paths), ("definitions", 9, _map(_schema)),
    ("security", 12, _security_requirement), ("securityDefinitions", 13, _map(_security_definition)),
], vendor_number=16)


def encode_document(doc: dict[str, Any]) -> bytes:
    """An OpenAPI v2 document (as JSON data) in gnostic's protobuf encoding."""
    return _DOCUMENT(doc)
