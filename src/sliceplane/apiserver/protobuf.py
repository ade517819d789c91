"""Reading `application/vnd.kubernetes.protobuf` request bodies into JSON objects.

kubectl's typed clients (`kubectl create namespace`, `create configmap`, `create deployment`,
...) send protobuf. The body is the magic `k8s\\0` and a runtime.Unknown envelope (apiVersion,
kind, raw bytes of the typed message). Field numbers and types come from `data/protobuf.json`
(see scripts/gen_protobuf_fields.py). Pure: bytes in, dict out.

Go marshals non-pointer fields even when empty; JSON would have omitted them, so empty
strings, empty messages and lists, zero times, and zero numbers and false booleans are dropped
(map values are kept as sent). The exception is `KEEP_ZERO`: fields that are pointers in Go,
where 0 or false is a value the client chose (`replicas: 0`, `automountServiceAccountToken:
false`); the wire carries them only when set.
"""

from __future__ import annotations

import base64
import json
import struct
from functools import cache
from importlib import resources
from typing import Any

from sliceplane.api.errors import StatusError, bad_request
from sliceplane.api.meta import rfc3339, rfc3339_micro

MAGIC = b"k8s\x00"
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
# meta/v1 kinds that Kubernetes registers in every group version (AddToGroupVersion).
META_KINDS_IN_EVERY_GROUP = frozenset({"DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions",
                                       "GetOptions", "ListOptions", "Status", "WatchEvent"})


@cache
def _messages() -> dict[str, list[list[Any]]]:
    text = resources.files("sliceplane.apiserver").joinpath("data/protobuf.json").read_text()
    return json.loads(text)["messages"]


@cache
def _fields(message: str) -> dict[int, tuple[str, Any, str]]:
    return {num: (name, typ, flag) for num, name, typ, flag in _messages()[message]}


class _Malformed(Exception):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Malformed("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise _Malformed("varint too long")


def _fields_of(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) in wire order."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 2:
            ln, pos = _varint(buf, pos)
            if pos + ln > n:
                raise _Malformed("truncated field")
            val = buf[pos:pos + ln]
            pos += ln
        elif wt == 1:
            val = buf[pos:pos + 8]
            pos += 8
        elif wt == 5:
            val = buf[pos:pos + 4]
            pos += 4
        else:
            raise _Malformed(f"unsupported wire type {wt}")
        out.append((num, wt, val))
    return out


def _signed(v: int, bits: int) -> int:
    v &= (1 << 64) - 1
    if v >= 1 << 63:
        v -= 1 << 64
    if bits == 32:
        v = ((v + (1 << 31)) % (1 << 32)) - (1 << 31)
    return v


def _scalar(typ: str, wt: int, raw: Any) -> Any:
    if typ == "string":
        return bytes(raw).decode("utf-8")
    if typ == "bytes":
        return base64.b64encode(bytes(raw)).decode()
    if typ == "bool":
        return bool(raw)
    if typ in ("int32", "int64"):
        return _signed(raw, 32 if typ == "int32" else 64)
    if typ in ("uint32", "uint64"):
        return raw
    if typ == "double":
        return struct.unpack("<d", raw)[0]
    if typ == "float":
        return struct.unpack("<f", raw)[0]
    raise _Malformed(f"unknown scalar type {typ}")


def _packed(typ: str, raw: bytes) -> list[Any]:
    if typ in ("double", "float"):
        size = 8 if typ == "double" else 4
        return [_scalar(typ, 1, raw[i:i + size]) for i in range(0, len(raw), size)]
    out = []
    pos = 0
    while pos < len(raw):
        v, pos = _varint(raw, pos)
        out.append(_scalar(typ, 0, v))
    return out


def _special(message: str, buf: bytes) -> tuple[bool, Any]:
    """Types whose JSON form is not an object of their fields."""
    if message in (_META + "Time", _META + "MicroTime"):
        seconds = nanos = 0
        for num, _, raw in _fields_of(buf):
            if num == 1:
                seconds = _signed(raw, 64)
            elif num == 2:
                nanos = _signed(raw, 32)
        if seconds == 0 and nanos == 0:
            return True, None
        ts = seconds + nanos / 1e9
        return True, rfc3339_micro(ts) if message.endswith("MicroTime") else rfc3339(ts)
    if message == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        kind = int_val = 0
        str_val = ""
        for num, _, raw in _fields_of(buf):
            if num == 1:
                kind = raw
            elif num == 2:
                int_val = _signed(raw, 32)
            elif num == 3:
                str_val = bytes(raw).decode()
        return True, str_val if kind == 1 else int_val
    if message == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        for num, _, raw in _fields_of(buf):
            if num == 1:
                return True, bytes(raw).decode()
        return True, None
    if message in ("k8s.io.apimachinery.pkg.runtime.RawExtension", _META + "FieldsV1"):
        for num, _, raw in _fields_of(buf):
            if num == 1 and raw:
                return True, json.loads(bytes(raw))
        return True, None
    if message == _META + "Duration":
        for num, _, raw in _fields_of(buf):
            if num == 1:
                return True, f"{_signed(raw, 64) / 1e9:g}s"
        return True, None
    return False, None


def _value(typ: str, wt: int, raw: Any) -> Any:
    if typ in _SCALAR_TYPES:
        return _scalar(typ, wt, raw)
    return decode_message(typ, bytes(raw))


_SCALAR_TYPES = frozenset({"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float"})


KEEP_ZERO = frozenset({
    "replicas", "terminationGracePeriodSeconds", "activeDeadlineSeconds", "automountServiceAccountToken",
    "allocateLoadBalancerNodePorts", "enableServiceLinks", "revisionHistoryLimit", "progressDeadlineSeconds",
    "runAsUser", "runAsGroup", "fsGroup", "runAsNonRoot", "privileged", "allowPrivilegeEscalation",
    "readOnlyRootFilesystem", "ready", "serving", "terminating", "shareProcessNamespace", "hostUsers",
    "setHostnameAsFQDN", "defaultMode", "mode", "optional", "immutable", "expirationSeconds", "minDomains",
    "deletionGracePeriodSeconds", "gracePeriodSeconds", "orphanDependents", "holdIdentity",
    "leaseDurationSeconds", "leaseTransitions", "count", "unschedulable", "hostname", "observedGeneration",
    "availableReplicas", "readyReplicas", "updatedReplicas", "unavailableReplicas", "fullyLabeledReplicas",
    "collisionCount", "restartCount", "started", "maxSkew", "priority", "terminationGracePeriod",
})


def _empty(name: str, v: Any) -> bool:
    if v is None or v == "" or v == {} or v == []:
        return True
    zero = v is False or (isinstance(v, int) and not isinstance(v, bool) and v == 0)
    return zero and name not in KEEP_ZERO


def decode_message(message: str, buf: bytes) -> Any:
    """One message as its JSON value (usually a dict)."""
    handled, value = _special(message, buf)
    if handled:
        return value
    fields = _fields(message)
    out: dict[str, Any] = {}
    for num, wt, raw in _fields_of(buf):
        spec = fields.get(num)
        if spec is None:
            continue  # a field newer than our table: skip it, as proto readers do
        name, typ, flag = spec
        if flag == "m":
            ktyp, vtyp = typ
            key: Any = ""
            val: Any = "" if vtyp in ("string", "bytes") else None
            for enum, ewt, eraw in _fields_of(bytes(raw)):
                if enum == 1:
                    key = _value(ktyp, ewt, eraw)
                elif enum == 2:
                    val = _value(vtyp, ewt, eraw)
            out.setdefault(name, {})[key] = val
        elif flag == "r":
            lst = out.setdefault(name, [])
            if wt == 2 and typ in _SCALAR_TYPES and typ not in ("string", "bytes"):
                lst.extend(_packed(typ, bytes(raw)))
            else:
                lst.append(_value(typ, wt, raw))
        else:
            out[name] = _value(typ, wt, raw)
    return {k: v for k, v in out.items() if not _empty(k, v)}


def _package(api_version: str) -> str:
    group, _, version = api_version.rpartition("/")
    if group in ("", "core"):
        return f"k8s.io.api.core.{version}"
    if group == "meta.k8s.io":
        return f"k8s.io.apimachinery.pkg.apis.meta.{version}"
    return f"k8s.io.api.{group.split('.')[0]}.{version}"


def decode(body: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf body -> the same object as JSON would carry it. 400 when unreadable."""
    if not body.startswith(MAGIC):
        raise bad_request("the body of the request was not Kubernetes protobuf (missing the k8s magic prefix)")
    try:
        envelope = _fields_of(body[len(MAGIC):])
        api_version = kind = ""
        raw = b""
        for num, _, val in envelope:
            if num == 1:
                for tnum, _, tval in _fields_of(bytes(val)):
                    if tnum == 1:
                        api_version = bytes(tval).decode()
                    elif tnum == 2:
                        kind = bytes(tval).decode()
            elif num == 2:
                raw = bytes(val)
        message = f"{_package(api_version)}.{kind}"
        if message not in _messages() and kind in META_KINDS_IN_EVERY_GROUP:
            message = _META + kind  # typed clients send DeleteOptions as "v1", "apps/v1", ...
        if message not in _messages():
            raise StatusError(415, "UnsupportedMediaType",
                              f"protobuf bodies of {kind} ({api_version}) are not supported; send JSON")
        obj = decode_message(message, raw)
    except (_Malformed, UnicodeDecodeError, struct.error, ValueError) as e:
        raise bad_request(f"unable to decode the protobuf body: {e}") from None
    return {"apiVersion": api_version, "kind": kind, **obj}
