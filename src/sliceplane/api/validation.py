"""Validation of typed kinds, with Kubernetes' field paths and messages.

`validate(info, obj, old)` returns the field errors (`Cause`s) Kubernetes 1.32 would report for
a create (old is None) or an update; the API server turns a non-empty list into
`errors.invalid(kind, name, causes)`, a 422 whose message kubectl prints verbatim, so the
paths and phrases below follow Kubernetes' own. Objects are checked as they arrive (after
defaulting): a value of the wrong JSON type is reported as a cause, never raised.

The string checks at the top (`is_qualified_name`, `is_dns1123_label`, ...) return the
messages Kubernetes' util/validation returns, and are shared with `selectors`.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

from .errors import (
    Cause,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
    too_long,
    too_many,
)
from .registry import ResourceInfo

Causes = list[Cause]

# --- string checks (messages as Kubernetes' util/validation) ----------------------------------

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                       "with an alphanumeric character")
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
                    "or '.', and must start and end with an alphanumeric character")
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                      "and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                          "'-' or '.', and must start and end with an alphanumeric character")
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_RE = re.compile(f"^{_DNS1035_LABEL_FMT}$")
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
                      "an alphabetic character, and end with an alphanumeric character")
_PERCENT_FMT = "[0-9]+%"
_PERCENT_RE = re.compile(f"^{_PERCENT_FMT}$")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def _full(rx: re.Pattern[str], value: str) -> bool:
    # Go's regexp `$` does not match before a trailing newline; fullmatch is the same.
    return rx.fullmatch(value) is not None


def is_qualified_name(value: str) -> list[str]:
    """Label keys and annotation keys: `[prefix/]name`."""
    return list(_qualified_name_errors(value))


@functools.lru_cache(maxsize=8192)
def _qualified_name_errors(value: str) -> tuple[str, ...]:
    return tuple(_qualified_name_check(value))


def _qualified_name_check(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name " + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _full(_QUALIFIED_NAME_RE, name):
        errs.append("name part " + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name",
                                               "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    return list(_label_value_errors(value))


@functools.lru_cache(maxsize=8192)
def _label_value_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _full(_LABEL_VALUE_RE, value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_dns1123_label(value: str) -> list[str]:
    return list(_dns1123_label_errors(value))


@functools.lru_cache(maxsize=8192)
def _dns1123_label_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _full(_DNS1123_LABEL_RE, value):
        if _full(_DNS1123_SUBDOMAIN_RE, value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    return list(_dns1123_subdomain_errors(value))


@functools.lru_cache(maxsize=8192)
def _dns1123_subdomain_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _full(_DNS1123_SUBDOMAIN_RE, value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _full(_DNS1035_LABEL_RE, value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else ["must be between 1 and 65535, inclusive"]


def is_valid_port_name(port: str) -> list[str]:
    """IANA_SVC_NAME, as named container ports and targetPorts must be."""
    errs: list[str] = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not re.fullmatch(r"[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


@functools.lru_cache(maxsize=65536)
def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Addresses repeat across every write of a slice, so parses are cached."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _ip_causes(path: str, value: str, family: str = "") -> Causes:
    """EndpointSlice addresses: the family check, then the endpoint-IP rules (both may fire)."""
    causes: Causes = []
    ip = _parse_ip(value)
    # Go's view: an IPv4-mapped IPv6 address (::ffff:1.2.3.4) is an IPv4 address.
    v4 = ip is not None and (ip.version == 4 or getattr(ip, "ipv4_mapped", None) is not None)
    if family == "IPv4" and not v4:
        causes.append(invalid_value(path, value, "must be a valid IPv4 address"))
    elif family == "IPv6" and (ip is None or v4):
        causes.append(invalid_value(path, value, "must be a valid IPv6 address"))
    return causes + _endpoint_ip(path, value)


def _legacy_endpoint_ip_causes(path: str, value: str) -> Causes:
    """Endpoints addresses: a valid IP first; the endpoint-IP rules only for a parsable one."""
    if _parse_ip(value) is None:
        return [invalid_value(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    return _endpoint_ip(path, value)


@functools.lru_cache(maxsize=65536)
def _is_special(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (ip.is_unspecified or ip.is_loopback or any(ip in net for net in _LINK_LOCAL)
            or any(ip in net for net in _LINK_LOCAL_MULTICAST))


_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_LINK_LOCAL_MULTICAST = (ipaddress.ip_network("224.0.0.0/24"), ipaddress.ip_network("ff02::/16"))


def _endpoint_ip(path: str, value: str) -> Causes:
    """Addresses that make no sense as an endpoint: unspecified, loopback, link-local."""
    ip = _parse_ip(value)
    if ip is None:
        return [invalid_value(path, value, "must be a valid IP address")]
    if not _is_special(ip):
        return []
    causes: Causes = []
    if ip.is_unspecified:
        causes.append(invalid_value(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        causes.append(invalid_value(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if any(ip in net for net in _LINK_LOCAL):
        causes.append(invalid_value(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if any(ip in net for net in _LINK_LOCAL_MULTICAST):
        causes.append(invalid_value(path, value,
                                    "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return causes


def _fqdn_causes(path: str, name: str) -> Causes:
    if not name:
        return [required(path)]
    if name.endswith("."):
        name = name[:-1]
    errs = is_dns1123_subdomain(name)
    if errs:
        return [invalid_value(path, name, ",".join(errs))]
    if len(name.split(".")) < 2:
        return [invalid_value(path, name, "should be a domain with at least two segments separated by dots")]
    for label in name.split("."):
        errs = is_dns1123_label(label)
        if errs:
            return [invalid_value(path, label, ",".join(errs))]
    return []


# --- typed access: wrong JSON types become causes ---------------------------------------------


class _Ctx:
    """Collects causes while walking one object."""

    def __init__(self) -> None:
        self.causes: Causes = []

    def add(self, *causes: Cause) -> None:
        self.causes.extend(causes)

    def extend(self, causes: Causes) -> None:
        self.causes.extend(causes)

    def dict(self, parent: Any, key: str, path: str) -> dict[str, Any]:
        v = parent.get(key) if isinstance(parent, dict) else None
        if v is None:
            return {}
        if not isinstance(v, dict):
            self.add(invalid_value(path, _shown(v), "must be an object"))
            return {}
        return v

    def list(self, parent: Any, key: str, path: str) -> list[Any]:
        v = parent.get(key) if isinstance(parent, dict) else None
        if v is None:
            return []
        if not isinstance(v, list):
            self.add(invalid_value(path, _shown(v), "must be a list"))
            return []
        return v

    def str(self, parent: Any, key: str, path: str) -> str | None:
        v = parent.get(key) if isinstance(parent, dict) else None
        if v is None or isinstance(v, str):
            return v
        self.add(invalid_value(path, _shown(v), "must be a string"))
        return None

    def int(self, parent: Any, key: str, path: str) -> int | None:
        v = parent.get(key) if isinstance(parent, dict) else None
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                return int(v)
            self.add(invalid_value(path, _shown(v), "must be an integer"))
            return None
        return v

    def str_map(self, parent: Any, key: str, path: str) -> dict[str, str]:
        m = self.dict(parent, key, path)
        out: dict[str, str] = {}
        for k, v in m.items():
            if not isinstance(v, str):
                self.add(invalid_value(f"{path}[{k}]", _shown(v), "must be a string"))
                continue
            out[k] = v
        return out


def _shown(v: Any) -> Any:
    """A value as a cause renders it: scalars as they are, structures as compact JSON."""
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    try:
        return _Raw(json.dumps(v, separators=(",", ":"), sort_keys=True))
    except (TypeError, ValueError):
        return _Raw(str(v))


def _idx(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _go_map(m: dict[str, str]) -> str:
    """A map as Go's %#v prints it (Kubernetes shows label maps this way)."""
    if not m:
        return "map[string]string(nil)" if m is None else "map[string]string{}"
    inner = ", ".join(f"{_go_quote(k)}:{_go_quote(str(v))}" for k, v in sorted(m.items()))
    return f"map[string]string{{{inner}}}"


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


class _Raw:
    """A pre-rendered bad value: shown without quotes."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def _go_selector(sel: Any) -> _Raw:
    if not isinstance(sel, dict):
        return _Raw("nil")
    ml = sel.get("matchLabels")
    labels = _go_map(ml) if isinstance(ml, dict) and ml else "map[string]string(nil)"
    exprs = sel.get("matchExpressions")
    if isinstance(exprs, list) and exprs:
        parts = []
        for e in exprs:
            e = e if isinstance(e, dict) else {}
            vals = e.get("values")
            shown_vals = ("[]string{" + ", ".join(_go_quote(str(v)) for v in vals) + "}"
                          if isinstance(vals, list) and vals else "[]string(nil)")
            parts.append(f'v1.LabelSelectorRequirement{{Key:{_go_quote(str(e.get("key", "")))}, '
                         f'Operator:{_go_quote(str(e.get("operator", "")))}, Values:{shown_vals}}}')
        shown_exprs = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    else:
        shown_exprs = "[]v1.LabelSelectorRequirement(nil)"
    return _Raw(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{shown_exprs}}}")


def _go_int_or_string(v: Any) -> _Raw:
    if isinstance(v, str):
        return _Raw(f'intstr.IntOrString{{Type:1, IntVal:0, StrVal:{_go_quote(v)}}}')
    n = v if isinstance(v, int) and not isinstance(v, bool) else 0
    return _Raw(f'intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:""}}')


# --- ObjectMeta ------------------------------------------------------------------------------

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

NameCheck = Callable[[str], list[str]]


def _name_check(info: ResourceInfo) -> NameCheck:
    if info.kind == "Service":
        return is_dns1035_label
    if info.kind == "Namespace":
        return is_dns1123_label
    return is_dns1123_subdomain


def _path_segment_errors(name: str) -> list[str]:
    """Every stored name must be usable in a URL path, whatever the kind."""
    if name in (".", ".."):
        return [f'may not be \'{name}\'']
    for bad in ("/", "%"):
        if bad in name:
            return [f"may not contain '{bad}'"]
    return []


def validate_name(info: ResourceInfo, name: str) -> Causes:
    """metadata.name causes for `name` as a name of `info`'s kind."""
    msgs = _path_segment_errors(name) or _name_check(info)(name)
    return [invalid_value("metadata.name", name, m) for m in msgs]


def validate_labels(ctx: _Ctx, labels: dict[str, str], path: str) -> None:
    for k, v in labels.items():
        ctx.add(*(invalid_value(path, k, m) for m in is_qualified_name(k)))
        ctx.add(*(invalid_value(path, v, m) for m in is_valid_label_value(v)))


def _validate_meta(ctx: _Ctx, info: ResourceInfo, obj: dict[str, Any], path: str = "metadata",
                   name_check: bool = True) -> None:
    meta = ctx.dict(obj, "metadata", path)
    name = ctx.str(meta, "name", f"{path}.name")
    generate = ctx.str(meta, "generateName", f"{path}.generateName")
    if name_check:
        if not name:
            if not generate:
                ctx.add(required(f"{path}.name", "name or generateName is required"))
        else:
            ctx.extend(validate_name(info, name))
        if generate:
            # a prefix may end in '-': Kubernetes masks the tail as it does (two characters become "a")
            masked = generate[:-2] + "a" if len(generate) > 1 and generate.endswith("-") else generate
            ctx.add(*(invalid_value(f"{path}.generateName", generate, m) for m in _name_check(info)(masked)))
    namespace = ctx.str(meta, "namespace", f"{path}.namespace")
    if namespace and not info.namespaced and name_check:
        ctx.add(forbidden(f"{path}.namespace", "not allowed on this type"))
    elif namespace and name_check:
        ctx.add(*(invalid_value(f"{path}.namespace", namespace, m) for m in is_dns1123_label(namespace)))
    validate_labels(ctx, ctx.str_map(meta, "labels", f"{path}.labels"), f"{path}.labels")
    annotations = ctx.str_map(meta, "annotations", f"{path}.annotations")
    for k in annotations:
        ctx.add(*(invalid_value(f"{path}.annotations", k, m) for m in is_qualified_name(k.lower())))
    if sum(len(k) + len(v) for k, v in annotations.items()) > TOTAL_ANNOTATION_SIZE_LIMIT:
        ctx.add(too_long(f"{path}.annotations", TOTAL_ANNOTATION_SIZE_LIMIT))
    finalizers = ctx.list(meta, "finalizers", f"{path}.finalizers")
    for f in finalizers:
        if isinstance(f, str):
            ctx.add(*(invalid_value(f"{path}.finalizers", f, m) for m in is_qualified_name(f)))
        else:
            ctx.add(invalid_value(f"{path}.finalizers", _shown(f), "must be a string"))
    for i, f in enumerate(finalizers):
        if isinstance(f, str) and "/" not in f and f not in STANDARD_FINALIZERS:
            ctx.add(invalid_value(_idx(f"{path}.finalizers", i), f,
                                  "name is neither a standard finalizer name nor is it fully qualified"))
    _validate_owner_references(ctx, ctx.list(meta, "ownerReferences", f"{path}.ownerReferences"),
                               f"{path}.ownerReferences")


STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def _validate_owner_references(ctx: _Ctx, refs: list[Any], path: str) -> None:
    controller = ""
    for ref in refs:
        if not isinstance(ref, dict):
            ctx.add(invalid_value(path, _shown(ref), "must be an object"))
            continue
        api_version = ref.get("apiVersion") if isinstance(ref.get("apiVersion"), str) else ""
        if not api_version.rpartition("/")[2]:
            ctx.add(invalid_value(f"{path}.apiVersion", api_version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            value = ref.get(key) if isinstance(ref.get(key), str) else ""
            if not value:
                ctx.add(invalid_value(f"{path}.{key}", value, f"{key} must not be empty"))
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if controller:
                ctx.add(invalid_value(path, _shown(refs), "Only one reference can have Controller set to true. "
                                      f'Found "true" in references for {controller} and {current}'))
            else:
                controller = current


def _validate_meta_update(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any]) -> None:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    old_meta = old.get("metadata") if isinstance(old.get("metadata"), dict) else {}
    # creationTimestamp is not here: the server keeps the old one whatever the client sends
    for key in ("name", "namespace", "uid"):
        new_v, old_v = meta.get(key), old_meta.get(key)
        if key == "uid" and not new_v:
            continue  # the server carries it over
        if (new_v or "") != (old_v or ""):
            ctx.add(invalid_value(f"metadata.{key}", _shown(new_v or ""), "field is immutable"))


# --- EndpointSlice ---------------------------------------------------------------------------

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
PROTOCOLS = ("SCTP", "TCP", "UDP")
MAX_SLICE_ENDPOINTS = 1000
MAX_SLICE_ADDRESSES = 100
MAX_SLICE_PORTS = 100  # the documented limit (API reference: "a maximum of 100 ports")
MAX_ZONE_HINTS = 8
MAX_TOPOLOGY_LABELS = 16


def _validate_endpoint_slice(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    address_type = ctx.str(obj, "addressType", "addressType")
    if not address_type and obj.get("addressType") in (None, ""):  # a non-string was reported already
        ctx.add(required("addressType"))
    elif address_type not in ADDRESS_TYPES and not (old is not None and address_type == "IP"):
        ctx.add(not_supported("addressType", address_type, list(ADDRESS_TYPES)))
    endpoints = ctx.list(obj, "endpoints", "endpoints")
    if len(endpoints) > MAX_SLICE_ENDPOINTS:
        ctx.add(too_many("endpoints", len(endpoints), MAX_SLICE_ENDPOINTS))
    else:
        for i, ep in enumerate(endpoints):
            _validate_slice_endpoint(ctx, ep, _idx("endpoints", i), address_type or "")
    _validate_slice_ports(ctx, ctx.list(obj, "ports", "ports"))
    if old is not None and obj.get("addressType") != old.get("addressType"):
        ctx.add(invalid_value("addressType", _shown(obj.get("addressType")), "field is immutable"))


def _validate_slice_endpoint(ctx: _Ctx, ep: Any, path: str, address_type: str) -> None:
    if not isinstance(ep, dict):
        ctx.add(invalid_value(path, _shown(ep), "must be an object"))
        return
    apath = f"{path}.addresses"
    addresses = ctx.list(ep, "addresses", apath)
    if not addresses:
        ctx.add(required(apath, "must contain at least 1 address"))
    elif len(addresses) > MAX_SLICE_ADDRESSES:
        ctx.add(too_many(apath, len(addresses), MAX_SLICE_ADDRESSES))
    for j, addr in enumerate(addresses):
        p = _idx(apath, j)
        if not isinstance(addr, str):
            ctx.add(invalid_value(p, _shown(addr), "must be a string"))
        elif address_type in ("IPv4", "IPv6"):
            ctx.extend(_ip_causes(p, addr, address_type))
        elif address_type == "FQDN":
            ctx.extend(_fqdn_causes(p, addr))
    node_name = ctx.str(ep, "nodeName", f"{path}.nodeName")
    if node_name is not None:
        ctx.add(*(invalid_value(f"{path}.nodeName", node_name, m) for m in is_dns1123_subdomain(node_name)))
    topo_path = f"{path}.deprecatedTopology"
    topology = ctx.str_map(ep, "deprecatedTopology", topo_path)
    if len(topology) > MAX_TOPOLOGY_LABELS:
        ctx.add(too_many(topo_path, len(topology), MAX_TOPOLOGY_LABELS))
    validate_labels(ctx, topology, topo_path)
    hostname = ctx.str(ep, "hostname", f"{path}.hostname")
    if hostname is not None:
        ctx.add(*(invalid_value(f"{path}.hostname", hostname, m) for m in is_dns1123_label(hostname)))
    ctx.str(ep, "zone", f"{path}.zone")
    conditions = ctx.dict(ep, "conditions", f"{path}.conditions")
    for key in ("ready", "serving", "terminating"):
        v = conditions.get(key)
        if v is not None and not isinstance(v, bool):
            ctx.add(invalid_value(f"{path}.conditions.{key}", _shown(v), "must be a boolean"))
    hints = ctx.dict(ep, "hints", f"{path}.hints")
    zpath = f"{path}.hints.forZones"
    for_zones = ctx.list(hints, "forZones", zpath)
    if len(for_zones) > MAX_ZONE_HINTS:
        ctx.add(too_many(zpath, len(for_zones), MAX_ZONE_HINTS))
        return
    seen: set[str] = set()
    for k, fz in enumerate(for_zones):
        zp = f"{_idx(zpath, k)}.name"
        name = ctx.str(fz, "name", zp) if isinstance(fz, dict) else None
        if name is None:
            name = ""
        if name in seen:
            ctx.add(duplicate(zp, name))
        seen.add(name)
        ctx.add(*(invalid_value(zp, name, m) for m in is_valid_label_value(name)))


def _validate_slice_ports(ctx: _Ctx, ports: list[Any]) -> None:
    if len(ports) > MAX_SLICE_PORTS:
        ctx.add(too_many("ports", len(ports), MAX_SLICE_PORTS))
        return
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = _idx("ports", i)
        if not isinstance(port, dict):
            ctx.add(invalid_value(p, _shown(port), "must be an object"))
            continue
        name = ctx.str(port, "name", f"{p}.name") or ""
        if name:
            ctx.add(*(invalid_value(f"{p}.name", name, m) for m in is_dns1123_label(name)))
        if name in names:
            ctx.add(duplicate(f"{p}.name", name))
        names.add(name)
        protocol = ctx.str(port, "protocol", f"{p}.protocol")
        if protocol is None:
            if "protocol" not in port or port["protocol"] is None:
                ctx.add(required(f"{p}.protocol"))
        elif protocol not in PROTOCOLS:
            ctx.add(not_supported(f"{p}.protocol", protocol, list(PROTOCOLS)))
        number = ctx.int(port, "port", f"{p}.port")
        if number is not None:
            ctx.add(*(invalid_value(f"{p}.port", number, m) for m in is_valid_port_num(number)))
        app = ctx.str(port, "appProtocol", f"{p}.appProtocol")
        if app is not None:
            ctx.add(*(invalid_value(f"{p}.appProtocol", app, m) for m in is_qualified_name(app)))


# --- Service ---------------------------------------------------------------------------------

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
TRAFFIC_DISTRIBUTIONS = ("PreferClose",)
NODE_PORT_RANGE = (30000, 32767)
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400


def _validate_port_num_or_name(ctx: _Ctx, value: Any, path: str) -> None:
    if isinstance(value, bool):
        ctx.add(invalid_value(path, _shown(value), "must be an integer or a string"))
    elif isinstance(value, int):
        ctx.add(*(invalid_value(path, value, m) for m in is_valid_port_num(value)))
    elif isinstance(value, str):
        ctx.add(*(invalid_value(path, value, m) for m in is_valid_port_name(value)))
    elif value is not None:
        ctx.add(invalid_value(path, _shown(value), "must be an integer or a string"))


def _validate_service(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = ctx.dict(obj, "spec", "spec")
    svc_type = ctx.str(spec, "type", "spec.type")
    if svc_type is None:
        svc_type = "ClusterIP"  # the default
    elif svc_type == "":
        ctx.add(required("spec.type"))
    elif svc_type not in SERVICE_TYPES:
        ctx.add(not_supported("spec.type", svc_type, list(SERVICE_TYPES)))
    cluster_ip = ctx.str(spec, "clusterIP", "spec.clusterIP") or ""
    cluster_ips = [c for c in ctx.list(spec, "clusterIPs", "spec.clusterIPs")]
    headless = cluster_ip == "None"
    ports = ctx.list(spec, "ports", "spec.ports")
    if not ports and not headless and svc_type != "ExternalName":
        ctx.add(required("spec.ports"))

    if svc_type == "ExternalName":
        if _normalized_cluster_ips(spec):
            ctx.add(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            ctx.add(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy"):
            ctx.add(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        external = ctx.str(spec, "externalName", "spec.externalName")
        if not external:
            ctx.add(required("spec.externalName"))
        else:
            clean = external[:-1] if external.endswith(".") else external
            if not clean:
                ctx.add(required("spec.externalName"))
            ctx.add(*(invalid_value("spec.externalName", clean, m) for m in is_dns1123_subdomain(clean) if clean))
    elif spec.get("externalName"):
        pass  # tolerated by Kubernetes for other types

    names: set[str] = set()
    for i, port in enumerate(ports):
        p = _idx("spec.ports", i)
        if not isinstance(port, dict):
            ctx.add(invalid_value(p, _shown(port), "must be an object"))
            continue
        name = ctx.str(port, "name", f"{p}.name") or ""
        if len(ports) > 1 and not name:
            ctx.add(required(f"{p}.name"))
        elif name:
            ctx.add(*(invalid_value(f"{p}.name", name, m) for m in is_dns1123_label(name)))
            if name in names:
                ctx.add(duplicate(f"{p}.name", name))
            names.add(name)
        number = ctx.int(port, "port", f"{p}.port")
        if number is None and port.get("port") is None:
            number = 0
        if number is not None:
            ctx.add(*(invalid_value(f"{p}.port", number, m) for m in is_valid_port_num(number)))
        protocol = ctx.str(port, "protocol", f"{p}.protocol")
        if protocol == "":
            ctx.add(required(f"{p}.protocol"))
        elif protocol is not None and protocol not in PROTOCOLS:
            ctx.add(not_supported(f"{p}.protocol", protocol, list(PROTOCOLS)))
        _validate_port_num_or_name(ctx, port.get("targetPort"), f"{p}.targetPort")
        app = ctx.str(port, "appProtocol", f"{p}.appProtocol")
        if app is not None:
            ctx.add(*(invalid_value(f"{p}.appProtocol", app, m) for m in is_qualified_name(app)))
        node_port = ctx.int(port, "nodePort", f"{p}.nodePort")
        if node_port:
            if svc_type == "ClusterIP":
                ctx.add(forbidden(f"{p}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif svc_type == "ExternalName":
                ctx.add(forbidden(f"{p}.nodePort", "may not be used when `type` is 'ExternalName'"))
            elif not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                ctx.add(invalid_value(f"{p}.nodePort", node_port,
                                      "provided port is not in the valid range. The range of valid ports is "
                                      f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}"))

    _validate_service_port_duplicates(ctx, ports)
    validate_labels(ctx, ctx.str_map(spec, "selector", "spec.selector"), "spec.selector")

    affinity = ctx.str(spec, "sessionAffinity", "spec.sessionAffinity")
    if affinity == "":
        ctx.add(required("spec.sessionAffinity"))
    elif affinity is not None and affinity not in SESSION_AFFINITIES:
        ctx.add(not_supported("spec.sessionAffinity", affinity, list(SESSION_AFFINITIES)))
    affinity_config = spec.get("sessionAffinityConfig")
    if affinity == "None" and affinity_config is not None:
        ctx.add(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    elif affinity == "ClientIP" and isinstance(affinity_config, dict):
        tpath = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        timeout = ctx.int(ctx.dict(affinity_config, "clientIP", "spec.sessionAffinityConfig.clientIP"),
                          "timeoutSeconds", tpath)
        if timeout is not None and not 0 < timeout <= MAX_CLIENT_IP_AFFINITY_SECONDS:
            ctx.add(invalid_value(tpath, timeout,
                                  f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"))

    if svc_type != "ExternalName":
        _validate_cluster_ips(ctx, cluster_ip, cluster_ips, spec)
        families = spec.get("ipFamilies") if isinstance(spec.get("ipFamilies"), list) else []
        policy = spec.get("ipFamilyPolicy") if isinstance(spec.get("ipFamilyPolicy"), str) else None
        if (cause := single_stack_problem(policy, _normalized_cluster_ips(spec), families)) is not None:
            ctx.add(cause)

    itp = ctx.str(spec, "internalTrafficPolicy", "spec.internalTrafficPolicy")
    if itp is not None and itp not in TRAFFIC_POLICIES:
        ctx.add(not_supported("spec.internalTrafficPolicy", itp, list(TRAFFIC_POLICIES)))
    etp = ctx.str(spec, "externalTrafficPolicy", "spec.externalTrafficPolicy")
    if etp:
        if svc_type not in ("NodePort", "LoadBalancer"):
            ctx.add(invalid_value("spec.externalTrafficPolicy", etp,
                                  "may only be set when `type` is 'NodePort' or 'LoadBalancer'"))
        elif etp not in TRAFFIC_POLICIES:
            ctx.add(not_supported("spec.externalTrafficPolicy", etp, list(TRAFFIC_POLICIES)))
    td = ctx.str(spec, "trafficDistribution", "spec.trafficDistribution")
    if td is not None and td not in TRAFFIC_DISTRIBUTIONS:
        ctx.add(not_supported("spec.trafficDistribution", td, list(TRAFFIC_DISTRIBUTIONS)))

    if old is not None:
        _validate_service_update(ctx, spec, old.get("spec") if isinstance(old.get("spec"), dict) else {})


def _validate_service_port_duplicates(ctx: _Ctx, ports: list[Any]) -> None:
    """A (protocol, nodePort) or (protocol, port) pair may appear once; Kubernetes shows the
    repeated port pair as a Go ServicePort with only those two fields set."""
    node_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        if not isinstance(port, dict) or not port.get("nodePort"):
            continue
        key = (_shown(port.get("protocol")), _shown(port["nodePort"]))  # wrong types are hashable too
        if key in node_ports:
            ctx.add(duplicate(f"{_idx('spec.ports', i)}.nodePort", port["nodePort"]))
        node_ports.add(key)
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        if not isinstance(port, dict):
            continue
        key = (_shown(port.get("protocol")), _shown(port.get("port")))
        if key in seen:
            protocol, number = key
            shown = (f"core.ServicePort{{Name:\"\", Protocol:{_go_quote(str(protocol or ''))}, "
                     f"AppProtocol:(*string)(nil), Port:{number if isinstance(number, int) else 0}, "
                     "TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}")
            ctx.add(duplicate(_idx("spec.ports", i), _Raw(shown)))
        seen.add(key)


def _go_strings(values: list[Any], type_name: str = "string") -> _Raw:
    return _Raw(f"[]{type_name}{{" + ", ".join(_go_quote(str(v)) for v in values) + "}")


def _normalized_cluster_ips(spec: dict[str, Any]) -> list[Any]:
    """clusterIPs as the server normalizes them: `clusterIP` alone stands for `[clusterIP]`."""
    ips = spec.get("clusterIPs")
    if isinstance(ips, list) and ips:
        return ips
    ip = spec.get("clusterIP")
    return [ip] if isinstance(ip, str) and ip else []


def _validate_cluster_ips(ctx: _Ctx, cluster_ip: str, cluster_ips: list[Any], spec: dict[str, Any]) -> None:
    """clusterIP/clusterIPs/ipFamilies/ipFamilyPolicy, with the server's normalization applied first."""
    if cluster_ips and cluster_ip and cluster_ips[0] != cluster_ip:
        ctx.add(invalid_value("spec.clusterIPs", _go_strings(cluster_ips), "first value must match `clusterIP`"))
    ips = cluster_ips or ([cluster_ip] if cluster_ip else [])
    families = ctx.list(spec, "ipFamilies", "spec.ipFamilies")
    seen: set[str] = set()
    for i, fam in enumerate(families):
        fp = _idx("spec.ipFamilies", i)
        if fam not in IP_FAMILIES:
            ctx.add(not_supported(fp, _shown(fam), list(IP_FAMILIES)))
        key = fam if isinstance(fam, str) else json.dumps(fam)
        if key in seen:
            ctx.add(duplicate(fp, _shown(fam)))
        seen.add(key)
    policy = ctx.str(spec, "ipFamilyPolicy", "spec.ipFamilyPolicy")
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        ctx.add(not_supported("spec.ipFamilyPolicy", policy, list(IP_FAMILY_POLICIES)))
    path_of = (lambda i: _idx("spec.clusterIPs", i)) if cluster_ips else (lambda i: "spec.clusterIP")
    has_invalid = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                has_invalid = True
                ctx.add(invalid_value("spec.clusterIPs", _go_strings(ips), "'None' must be the first and only value"))
            continue
        if not isinstance(ip, str) or _parse_ip(ip) is None:
            has_invalid = True
            ctx.add(invalid_value(path_of(i), _shown(ip),
                                  "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    if len(ips) > 2:
        ctx.add(invalid_value("spec.clusterIPs", _go_strings(ips), "may only hold up to 2 values"))
    if has_invalid:
        return
    parsed = [_parse_ip(ip) for ip in ips if ip != "None"]
    if len(ips) > 1 and len({p.version for p in parsed if p is not None}) != len(ips):
        ctx.add(invalid_value("spec.clusterIPs", _go_strings(ips), "may specify no more than one IP for each IP family"))
    headless = ips == ["None"]
    if not headless:
        for i, ip in enumerate(ips):
            if i >= len(families):
                break
            p = _parse_ip(ip)
            if families[i] == "IPv4" and p is not None and p.version == 6:
                ctx.add(invalid_value(path_of(i), ip, f"expected an IPv4 value as indicated by `ipFamilies[{i}]`"))
            if families[i] == "IPv6" and p is not None and p.version == 4:
                ctx.add(invalid_value(path_of(i), ip, f"expected an IPv6 value as indicated by `ipFamilies[{i}]`"))


def cluster_ip_problems(spec: dict[str, Any]) -> Causes:
    """The clusterIP/ipFamily checks alone, which the allocator runs first (as Kubernetes does)
    so that it only ever settles families for well-formed input."""
    ctx = _Ctx()
    cluster_ip = ctx.str(spec, "clusterIP", "spec.clusterIP") or ""
    _validate_cluster_ips(ctx, cluster_ip, ctx.list(spec, "clusterIPs", "spec.clusterIPs"), spec)
    return ctx.causes


def single_stack_problem(policy: str | None, ips: list[Any], families: list[Any]) -> Cause | None:
    """SingleStack with two cluster IPs or two families; shared with the allocator, which must
    refuse it before it would keep only the first family."""
    if policy != "SingleStack":
        return None
    if len(ips) > 1:
        return invalid_value("spec.ipFamilyPolicy", policy, "must be 'RequireDualStack' or 'PreferDualStack' "
                             "when multiple cluster IPs are specified")
    if len(families) > 1:
        return invalid_value("spec.ipFamilyPolicy", policy, "must be 'RequireDualStack' or 'PreferDualStack' "
                             "when multiple IP families are specified")
    return None


def _validate_service_update(ctx: _Ctx, spec: dict[str, Any], old_spec: dict[str, Any]) -> None:
    """clusterIPs and ipFamilies may be added to or released, never changed (ExternalName aside)."""
    new_type = spec.get("type") or "ClusterIP"
    old_type = old_spec.get("type") or "ClusterIP"
    if "ExternalName" in (new_type, old_type):
        return
    new_ips = _normalized_cluster_ips(spec)
    old_ips = _normalized_cluster_ips(old_spec)
    if not new_ips:
        return  # an update without clusterIP keeps the allocated one; the server carries it over
    new_headless, old_headless = new_ips == ["None"], old_ips == ["None"]
    if not (new_headless and old_headless):
        if len(old_ips) == len(new_ips):
            for i, ip in enumerate(old_ips):
                if ip != new_ips[i]:
                    ctx.add(invalid_value(_idx("spec.clusterIPs", i), _go_strings(new_ips), "may not change once set"))
        elif old_ips and new_ips[0] != old_ips[0]:
            ctx.add(invalid_value("spec.clusterIPs[0]", _go_strings(new_ips), "may not change once set"))
    new_fams = spec.get("ipFamilies") if isinstance(spec.get("ipFamilies"), list) else []
    old_fams = old_spec.get("ipFamilies") if isinstance(old_spec.get("ipFamilies"), list) else []
    if new_headless or old_headless or not new_fams:
        return
    if len(old_fams) == len(new_fams):
        for i, fam in enumerate(old_fams):
            if fam != new_fams[i]:
                ctx.add(invalid_value("spec.ipFamilies[0]", _go_strings(new_fams, "core.IPFamily"),
                                      "may not change once set"))
    elif old_fams and new_fams[0] != old_fams[0]:
        ctx.add(invalid_value("spec.ipFamilies[0]", _go_strings(new_ips), "may not change once set"))


# --- Pods and pod templates ------------------------------------------------------------------

RESTART_POLICIES = ("Always", "OnFailure", "Never")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")


STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
# Kubernetes' standard resource names (quota and container ones), for names without a domain.
STANDARD_RESOURCES = STANDARD_CONTAINER_RESOURCES | {
    "requests.cpu", "requests.memory", "requests.ephemeral-storage", "limits.cpu", "limits.memory",
    "limits.ephemeral-storage", "pods", "services", "replicationcontrollers", "resourcequotas", "secrets",
    "configmaps", "persistentvolumeclaims", "storage", "requests.storage", "services.nodeports",
    "services.loadbalancers"}


def _container_resource_name_problems(name: str) -> list[str]:
    """Kubernetes' validateContainerResourceName, its messages in its order."""
    problems = is_qualified_name(name)
    if not problems and "/" not in name and name not in STANDARD_RESOURCES and not name.startswith("hugepages-"):
        problems.append("must be a standard resource type or fully qualified")
    if "/" not in name:
        if name not in STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            problems.append("must be a standard resource for containers")
    elif "kubernetes.io/" not in name and (name.startswith("requests.") or is_qualified_name("requests." + name)):
        problems.append("doesn't follow extended resource name standard")
    return problems


def _validate_resources(ctx: _Ctx, resources: dict[str, Any], path: str) -> None:
    """Requests and limits: known names, no negative quantity, whole numbers of extended
    resources, and no request above its limit."""
    from .defaults import parse_quantity

    parsed: dict[str, dict[str, Any]] = {}
    for kind in ("limits", "requests"):
        values = resources.get(kind)
        if not isinstance(values, dict):
            continue
        parsed[kind] = {}
        for name, value in values.items():
            fp = f"{path}.{kind}[{name}]"
            name_problems = _container_resource_name_problems(str(name))
            ctx.add(*(invalid_value(fp, name, m) for m in name_problems))
            qty = parse_quantity(value)
            if qty is None:
                continue  # its syntax is the decoder's to refuse
            if qty < 0:
                ctx.add(invalid_value(fp, str(value), "must be greater than or equal to 0"))
            elif "/" in str(name) and "kubernetes.io/" not in str(name) and qty != qty.to_integral_value():
                ctx.add(invalid_value(fp, str(value), "must be an integer"))
            parsed[kind][name] = (qty, value)
    for name, (qty, value) in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(name)
        if limit is not None and qty > limit[0] >= 0 and qty >= 0:
            ctx.add(invalid_value(f"{path}.requests[{name}]", str(value),
                                  f"must be less than or equal to {name} limit of {limit[1]}"))


def _validate_containers(ctx: _Ctx, spec: dict[str, Any], path: str, key: str, names: set[str],
                         needed: bool, volumes: set[str]) -> None:
    cpath = f"{path}.{key}"
    containers = ctx.list(spec, key, cpath)
    if needed and not containers:
        ctx.add(required(cpath))
    for i, c in enumerate(containers):
        p = _idx(cpath, i)
        if not isinstance(c, dict):
            ctx.add(invalid_value(p, _shown(c), "must be an object"))
            continue
        name = ctx.str(c, "name", f"{p}.name")
        if not name:
            ctx.add(required(f"{p}.name"))
        else:
            ctx.add(*(invalid_value(f"{p}.name", name, m) for m in is_dns1123_label(name)))
            if name in names:
                ctx.add(duplicate(f"{p}.name", name))
            names.add(name)
        image = ctx.str(c, "image", f"{p}.image")
        if not image or not image.strip():
            ctx.add(required(f"{p}.image"))
        pull = ctx.str(c, "imagePullPolicy", f"{p}.imagePullPolicy")
        if pull is not None and pull not in PULL_POLICIES:
            ctx.add(not_supported(f"{p}.imagePullPolicy", pull, list(PULL_POLICIES)))
        port_names: set[str] = set()
        for j, port in enumerate(ctx.list(c, "ports", f"{p}.ports")):
            pp = _idx(f"{p}.ports", j)
            if not isinstance(port, dict):
                ctx.add(invalid_value(pp, _shown(port), "must be an object"))
                continue
            pname = ctx.str(port, "name", f"{pp}.name")
            if pname:
                ctx.add(*(invalid_value(f"{pp}.name", pname, m) for m in is_valid_port_name(pname)))
                if pname in port_names:
                    ctx.add(duplicate(f"{pp}.name", pname))
                port_names.add(pname)
            cport = ctx.int(port, "containerPort", f"{pp}.containerPort")
            if cport is None and port.get("containerPort") is None:
                cport = 0
            if cport is not None:
                ctx.add(*(invalid_value(f"{pp}.containerPort", cport, m) for m in is_valid_port_num(cport)))
            hport = ctx.int(port, "hostPort", f"{pp}.hostPort")
            if hport:
                ctx.add(*(invalid_value(f"{pp}.hostPort", hport, m) for m in is_valid_port_num(hport)))
            proto = ctx.str(port, "protocol", f"{pp}.protocol")
            if proto == "":
                ctx.add(required(f"{pp}.protocol"))
            elif proto is not None and proto not in PROTOCOLS:
                ctx.add(not_supported(f"{pp}.protocol", proto, list(PROTOCOLS)))
        _validate_volume_mounts(ctx, c, p, volumes)
        if isinstance(c.get("resources"), dict):
            _validate_resources(ctx, c["resources"], f"{p}.resources")
        env_path = f"{p}.env"
        for j, env in enumerate(ctx.list(c, "env", env_path)):
            if type(env) is dict and type(env.get("name")) is str and env["name"]:
                continue  # the common case, settled without building its paths
            ep = _idx(env_path, j)
            ename = ctx.str(env, "name", f"{ep}.name") if isinstance(env, dict) else None
            if not ename:
                ctx.add(required(f"{ep}.name"))


def _validate_volumes(ctx: _Ctx, spec: dict[str, Any], path: str) -> set[str]:
    names: set[str] = set()
    for i, vol in enumerate(ctx.list(spec, "volumes", f"{path}.volumes")):
        np = f"{_idx(f'{path}.volumes', i)}.name"
        name = ctx.str(vol, "name", np) if isinstance(vol, dict) else None
        if not name:
            ctx.add(required(np))
            continue
        ctx.add(*(invalid_value(np, name, m) for m in is_dns1123_label(name)))
        if name in names:
            ctx.add(duplicate(np, name))
        names.add(name)
    return names


def _validate_volume_mounts(ctx: _Ctx, container: dict[str, Any], path: str, volumes: set[str]) -> None:
    mount_paths: set[str] = set()
    for j, mount in enumerate(ctx.list(container, "volumeMounts", f"{path}.volumeMounts")):
        mp = _idx(f"{path}.volumeMounts", j)
        if not isinstance(mount, dict):
            ctx.add(invalid_value(mp, _shown(mount), "must be an object"))
            continue
        name = ctx.str(mount, "name", f"{mp}.name")
        if not name:
            ctx.add(required(f"{mp}.name"))
        elif name not in volumes:
            ctx.add(Cause(NOT_FOUND, f'Not found: "{name}"', f"{mp}.name"))
        mount_path = ctx.str(mount, "mountPath", f"{mp}.mountPath")
        if not mount_path:
            ctx.add(required(f"{mp}.mountPath"))
        elif mount_path in mount_paths:
            ctx.add(invalid_value(f"{mp}.mountPath", mount_path, "must be unique"))
        else:
            mount_paths.add(mount_path)


NOT_FOUND = "FieldValueNotFound"


def _validate_pod_spec(ctx: _Ctx, spec: dict[str, Any], path: str) -> None:
    # Kubernetes' order: volumes, containers, then init containers (whose names must not clash)
    volumes = _validate_volumes(ctx, spec, path)
    names: set[str] = set()
    _validate_containers(ctx, spec, path, "containers", names, needed=True, volumes=volumes)
    _validate_containers(ctx, spec, path, "initContainers", names, needed=False, volumes=volumes)
    restart = ctx.str(spec, "restartPolicy", f"{path}.restartPolicy")
    if restart == "":
        ctx.add(required(f"{path}.restartPolicy"))
    elif restart is not None and restart not in RESTART_POLICIES:
        ctx.add(not_supported(f"{path}.restartPolicy", restart, list(RESTART_POLICIES)))
    dns = ctx.str(spec, "dnsPolicy", f"{path}.dnsPolicy")
    if dns is not None and dns not in DNS_POLICIES:
        ctx.add(not_supported(f"{path}.dnsPolicy", dns, list(DNS_POLICIES)))
    for key in ("terminationGracePeriodSeconds", "activeDeadlineSeconds"):
        v = ctx.int(spec, key, f"{path}.{key}")
        if key == "activeDeadlineSeconds" and v is not None and v <= 0:
            ctx.add(invalid_value(f"{path}.{key}", v, "must be between 1 and 2147483647, inclusive"))
    node_name = ctx.str(spec, "nodeName", f"{path}.nodeName")
    if node_name:
        ctx.add(*(invalid_value(f"{path}.nodeName", node_name, m) for m in is_dns1123_subdomain(node_name)))
    sa = ctx.str(spec, "serviceAccountName", f"{path}.serviceAccountName")
    if sa:
        ctx.add(*(invalid_value(f"{path}.serviceAccountName", sa, m) for m in is_dns1123_subdomain(sa)))
    hostname = ctx.str(spec, "hostname", f"{path}.hostname")
    if hostname:
        ctx.add(*(invalid_value(f"{path}.hostname", hostname, m) for m in is_dns1123_label(hostname)))
    subdomain = ctx.str(spec, "subdomain", f"{path}.subdomain")
    if subdomain:
        ctx.add(*(invalid_value(f"{path}.subdomain", subdomain, m) for m in is_dns1123_label(subdomain)))
    validate_labels(ctx, ctx.str_map(spec, "nodeSelector", f"{path}.nodeSelector"), f"{path}.nodeSelector")


_POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _mutable_pod_fields_cleared(spec: dict[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    for key in ("containers", "initContainers"):
        if isinstance(out.get(key), list):
            out[key] = [{k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c
                        for c in out[key]]
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        out.pop(key, None)
    return out


def _validate_pod_update(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any]) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    if _mutable_pod_fields_cleared(spec) != _mutable_pod_fields_cleared(old_spec):
        ctx.add(forbidden("spec", _POD_UPDATE_FORBIDDEN))
    old_tol = old_spec.get("tolerations") or []
    new_tol = spec.get("tolerations") or []
    if isinstance(old_tol, list) and isinstance(new_tol, list) and any(t not in new_tol for t in old_tol):
        ctx.add(forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"))
    old_ads = old_spec.get("activeDeadlineSeconds")
    new_ads = spec.get("activeDeadlineSeconds")
    if isinstance(old_ads, int) and (new_ads is None or (isinstance(new_ads, int) and new_ads > old_ads)):
        ctx.add(invalid_value("spec.activeDeadlineSeconds", _shown(new_ads),
                              "must be less than or equal to previous value"))


def _validate_pod(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = ctx.dict(obj, "spec", "spec")
    _validate_pod_spec(ctx, spec, "spec")
    status = ctx.dict(obj, "status", "status")
    pod_ip = ctx.str(status, "podIP", "status.podIP")
    if pod_ip and _parse_ip(pod_ip) is None:
        ctx.add(invalid_value("status.podIP", pod_ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    if old is not None:
        _validate_pod_update(ctx, obj, old)


# --- Deployments and ReplicaSets -------------------------------------------------------------


def _nonnegative(ctx: _Ctx, parent: dict[str, Any], key: str, path: str) -> int | None:
    v = ctx.int(parent, key, path)
    if v is not None and v < 0:
        ctx.add(invalid_value(path, v, "must be greater than or equal to 0"))
    return v


def _validate_selector_spec(ctx: _Ctx, sel: dict[str, Any], path: str) -> bool:
    """metav1 LabelSelector rules; True when the selector can be used for matching."""
    before = len(ctx.causes)
    validate_labels(ctx, ctx.str_map(sel, "matchLabels", f"{path}.matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(ctx.list(sel, "matchExpressions", f"{path}.matchExpressions")):
        ep = _idx(f"{path}.matchExpressions", i)
        if not isinstance(expr, dict):
            ctx.add(invalid_value(ep, _shown(expr), "must be an object"))
            continue
        op = expr.get("operator")
        values = ctx.list(expr, "values", f"{ep}.values")
        if op in ("In", "NotIn"):
            if not values:
                ctx.add(required(f"{ep}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                ctx.add(forbidden(f"{ep}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            ctx.add(invalid_value(f"{ep}.operator", _shown(op), "not a valid selector operator"))
        key = ctx.str(expr, "key", f"{ep}.key") or ""
        ctx.add(*(invalid_value(f"{ep}.key", key, m) for m in is_qualified_name(key)))
        for j, v in enumerate(values):
            vp = _idx(f"{ep}.values", j)
            if not isinstance(v, str):
                ctx.add(invalid_value(vp, _shown(v), "must be a string"))
                continue
            ctx.add(*(invalid_value(vp, v, m) for m in is_valid_label_value(v)))
    return len(ctx.causes) == before


def _validate_workload(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any] | None, deployment: bool) -> None:
    """Deployment and ReplicaSet specs, in the order Kubernetes reports them."""
    spec = ctx.dict(obj, "spec", "spec")
    _nonnegative(ctx, spec, "replicas", "spec.replicas")
    if not deployment:
        _nonnegative(ctx, spec, "minReadySeconds", "spec.minReadySeconds")
    sel = spec.get("selector")
    if sel is None:
        ctx.add(required("spec.selector"))
    elif not isinstance(sel, dict):
        ctx.add(invalid_value("spec.selector", _shown(sel), "must be an object"))
    else:
        _validate_selector_spec(ctx, sel, "spec.selector")
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            ctx.add(invalid_value("spec.selector", _go_selector(sel), "empty selector is invalid for deployment"))
    template = ctx.dict(spec, "template", "spec.template")
    tmeta = ctx.dict(template, "metadata", "spec.template.metadata")
    tlabels = ctx.str_map(tmeta, "labels", "spec.template.metadata.labels")
    from .selectors import label_selector_from_spec  # selectors imports this module

    try:
        selector = label_selector_from_spec(sel if isinstance(sel, dict) else None)
    except Exception:
        selector = None
    if selector is None:
        ctx.add(invalid_value("spec.selector", _go_selector(sel), "invalid label selector"))
    else:
        if not selector.empty and not selector.matches(tlabels):
            ctx.add(invalid_value("spec.template.metadata.labels", _Raw(_go_map(tlabels)),
                                  "`selector` does not match template `labels`"))
        validate_labels(ctx, tlabels, "spec.template.labels")
        annotations = ctx.str_map(tmeta, "annotations", "spec.template.annotations")
        for k in annotations:
            ctx.add(*(invalid_value("spec.template.annotations", k, m) for m in is_qualified_name(k.lower())))
        tspec = ctx.dict(template, "spec", "spec.template.spec")
        _validate_pod_spec(ctx, tspec, "spec.template.spec")
        restart = tspec.get("restartPolicy")
        if isinstance(restart, str) and restart and restart != "Always":
            ctx.add(not_supported("spec.template.spec.restartPolicy", restart, ["Always"]))
        if tspec.get("activeDeadlineSeconds") is not None:
            ctx.add(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in ReplicaSet is not Supported"))
    if deployment:
        _validate_strategy(ctx, ctx.dict(spec, "strategy", "spec.strategy"))
        _nonnegative(ctx, spec, "minReadySeconds", "spec.minReadySeconds")
        if spec.get("revisionHistoryLimit") is not None:
            _nonnegative(ctx, spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
        pds = _nonnegative(ctx, spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds")
        mrs = spec.get("minReadySeconds") if isinstance(spec.get("minReadySeconds"), int) else 0
        if pds is not None and pds <= mrs:
            ctx.add(invalid_value("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    if old is not None:
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        if _selector_key(sel) != _selector_key(old_spec.get("selector")):
            ctx.add(invalid_value("spec.selector", _go_selector(sel), "field is immutable"))


def _selector_key(sel: Any) -> str:
    """A selector's identity for the immutability check: empty and absent parts are the same."""
    if not isinstance(sel, dict):
        return json.dumps(sel, default=str)
    parts = {"matchLabels": sel.get("matchLabels") or None, "matchExpressions": sel.get("matchExpressions") or None}
    return json.dumps(parts, sort_keys=True, default=str)


def _int_or_percent(v: Any) -> tuple[int, bool] | None:
    """(value, is_percent), or None for a malformed value."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v, False
    if isinstance(v, str) and _full(_PERCENT_RE, v):
        return int(v[:-1]), True
    return None


def _validate_strategy(ctx: _Ctx, strategy: dict[str, Any]) -> None:
    stype = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if stype == "Recreate":
        if rolling is not None:
            ctx.add(forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
        return
    if stype not in (None, "RollingUpdate"):
        pointer = "(nil)" if rolling is None else "(0xc000000000)"
        shown = _Raw(f"apps.DeploymentStrategy{{Type:{_go_quote(str(stype))}, "
                     f"RollingUpdate:(*apps.RollingUpdateDeployment){pointer}}}")
        ctx.add(not_supported("spec.strategy", shown, ["Recreate", "RollingUpdate"]))
        return
    if rolling is None:
        return  # defaulting fills 25%/25%
    if not isinstance(rolling, dict):
        ctx.add(invalid_value("spec.strategy.rollingUpdate", _shown(rolling), "must be an object"))
        return
    base = "spec.strategy.rollingUpdate"
    values: dict[str, int] = {}
    for key in ("maxUnavailable", "maxSurge"):
        raw = rolling.get(key)
        if raw is None:
            values[key] = -1  # defaulted later
            continue
        parsed = _int_or_percent(raw)
        if parsed is None:
            if isinstance(raw, str):
                ctx.add(invalid_value(f"{base}.{key}", _go_int_or_string(raw), regex_error(
                    "a valid percent string must be a numeric string followed by an ending '%'", _PERCENT_FMT,
                    "1%", "93%")))
            else:
                ctx.add(invalid_value(f"{base}.{key}", _shown(raw), "must be an integer or percentage (e.g '5%')"))
            # Kubernetes reads a malformed string as its integer value (0 when not a number)
            values[key] = int(raw) if isinstance(raw, str) and raw.isdigit() else 0
            continue
        n, is_percent = parsed
        if not is_percent and n < 0:
            ctx.add(invalid_value(f"{base}.{key}", n, "must be greater than or equal to 0"))
        values[key] = n
        if key == "maxUnavailable" and is_percent and n > 100:
            ctx.add(invalid_value(f"{base}.{key}", _go_int_or_string(raw), "must not be greater than 100%"))
    if values["maxUnavailable"] == 0 and values["maxSurge"] == 0:
        ctx.add(invalid_value(f"{base}.maxUnavailable", _go_int_or_string(rolling.get("maxUnavailable")),
                              "may not be 0 when `maxSurge` is 0"))


# --- Endpoints, Node, Namespace, Lease ---------------------------------------------------------


def _validate_endpoints(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    for i, subset in enumerate(ctx.list(obj, "subsets", "subsets")):
        p = _idx("subsets", i)
        if not isinstance(subset, dict):
            ctx.add(invalid_value(p, _shown(subset), "must be an object"))
            continue
        ready = ctx.list(subset, "addresses", f"{p}.addresses")
        not_ready = ctx.list(subset, "notReadyAddresses", f"{p}.notReadyAddresses")
        if not ready and not not_ready:
            ctx.add(required(p, "must specify `addresses` or `notReadyAddresses`"))
        for key, addrs in (("addresses", ready), ("notReadyAddresses", not_ready)):
            for j, addr in enumerate(addrs):
                ap = _idx(f"{p}.{key}", j)
                if not isinstance(addr, dict):
                    ctx.add(invalid_value(ap, _shown(addr), "must be an object"))
                    continue
                ip = ctx.str(addr, "ip", f"{ap}.ip")
                ctx.extend(_legacy_endpoint_ip_causes(f"{ap}.ip", ip or ""))
                hostname = ctx.str(addr, "hostname", f"{ap}.hostname")
                if hostname:
                    ctx.add(*(invalid_value(f"{ap}.hostname", hostname, m) for m in is_dns1123_label(hostname)))
                node = ctx.str(addr, "nodeName", f"{ap}.nodeName")
                if node is not None:
                    ctx.add(*(invalid_value(f"{ap}.nodeName", node, m) for m in is_dns1123_subdomain(node)))
        ports = ctx.list(subset, "ports", f"{p}.ports")
        for j, port in enumerate(ports):
            pp = _idx(f"{p}.ports", j)
            if not isinstance(port, dict):
                ctx.add(invalid_value(pp, _shown(port), "must be an object"))
                continue
            name = ctx.str(port, "name", f"{pp}.name") or ""
            if len(ports) > 1 and not name:
                ctx.add(required(f"{pp}.name"))
            elif name:
                ctx.add(*(invalid_value(f"{pp}.name", name, m) for m in is_dns1123_label(name)))
            number = ctx.int(port, "port", f"{pp}.port")
            if number is None and port.get("port") is None:
                number = 0
            if number is not None:
                ctx.add(*(invalid_value(f"{pp}.port", number, m) for m in is_valid_port_num(number)))
            proto = ctx.str(port, "protocol", f"{pp}.protocol")
            if proto == "":
                ctx.add(required(f"{pp}.protocol"))
            elif proto is not None and proto not in PROTOCOLS:
                ctx.add(not_supported(f"{pp}.protocol", proto, list(PROTOCOLS)))
            app = ctx.str(port, "appProtocol", f"{pp}.appProtocol")
            if app is not None:
                ctx.add(*(invalid_value(f"{pp}.appProtocol", app, m) for m in is_qualified_name(app)))


def _validate_node(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = ctx.dict(obj, "spec", "spec")
    cidrs = ctx.list(spec, "podCIDRs", "spec.podCIDRs")
    cidr = ctx.str(spec, "podCIDR", "spec.podCIDR")
    for i, c in enumerate(cidrs or ([cidr] if cidr else [])):
        path = _idx("spec.podCIDRs", i) if cidrs else "spec.podCIDR"
        try:
            ipaddress.ip_network(str(c), strict=False)
        except ValueError:
            ctx.add(invalid_value(path, _shown(c), "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    if len(cidrs) > 2:
        ctx.add(invalid_value("spec.podCIDRs", _shown(cidrs), "may specify no more than one CIDR for each IP family"))
    unsched = spec.get("unschedulable")
    if unsched is not None and not isinstance(unsched, bool):
        ctx.add(invalid_value("spec.unschedulable", _shown(unsched), "must be a boolean"))
    for i, taint in enumerate(ctx.list(spec, "taints", "spec.taints")):
        tp = _idx("spec.taints", i)
        if not isinstance(taint, dict):
            ctx.add(invalid_value(tp, _shown(taint), "must be an object"))
            continue
        key = ctx.str(taint, "key", f"{tp}.key") or ""
        ctx.add(*(invalid_value(f"{tp}.key", key, m) for m in is_qualified_name(key)))
        effect = ctx.str(taint, "effect", f"{tp}.effect")
        if not effect:
            ctx.add(required(f"{tp}.effect"))
        elif effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            ctx.add(not_supported(f"{tp}.effect", effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
    if old is not None:
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        old_cidrs = old_spec.get("podCIDRs") or []
        if old_cidrs and cidrs and old_cidrs != cidrs:
            ctx.add(forbidden("spec.podCIDRs", "node updates may not change podCIDR except from \"\" to valid"))
    for i, addr in enumerate(ctx.list(ctx.dict(obj, "status", "status"), "addresses", "status.addresses")):
        ap = _idx("status.addresses", i)
        if not isinstance(addr, dict) or not isinstance(addr.get("type"), str):
            ctx.add(required(f"{ap}.type"))


def _validate_namespace(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = ctx.dict(obj, "spec", "spec")
    for i, f in enumerate(ctx.list(spec, "finalizers", "spec.finalizers")):
        fp = _idx("spec.finalizers", i)
        if not isinstance(f, str):
            ctx.add(invalid_value(fp, _shown(f), "must be a string"))
            continue
        msgs = is_qualified_name(f)
        if not msgs and "/" not in f and f not in STANDARD_FINALIZERS:
            msgs = ["name is neither a standard finalizer name nor is it fully qualified"]
        ctx.add(*(invalid_value(fp, f, m) for m in msgs))
    phase = ctx.str(ctx.dict(obj, "status", "status"), "phase", "status.phase")
    if phase is not None and phase not in ("", "Active", "Terminating"):
        ctx.add(not_supported("status.phase", phase, ["Active", "Terminating"]))


def _validate_lease(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = ctx.dict(obj, "spec", "spec")
    ctx.str(spec, "holderIdentity", "spec.holderIdentity")
    duration = ctx.int(spec, "leaseDurationSeconds", "spec.leaseDurationSeconds")
    if duration is not None and duration <= 0:
        ctx.add(invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = ctx.int(spec, "leaseTransitions", "spec.leaseTransitions")
    if transitions is not None and transitions < 0:
        ctx.add(invalid_value("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    for key in ("acquireTime", "renewTime"):
        ctx.str(spec, key, f"spec.{key}")


# --- ConfigMap and Secret ------------------------------------------------------------------------

MAX_CONFIG_BYTES = 1024 * 1024  # a ConfigMap's or Secret's data, all values together
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_RE = re.compile(_CONFIG_KEY_FMT)
_IMMUTABLE_SET = "field is immutable when `immutable` is set"


def is_config_map_key(key: str) -> list[str]:
    """Keys of ConfigMap/Secret data: they become file names in volumes."""
    msgs: list[str] = []
    if len(key) > 253:
        msgs.append(max_len_error(253))
    if not _full(_CONFIG_KEY_RE, key):
        msgs.append(regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                                _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if key == ".":
        msgs.append("must not be '.'")
    elif key == "..":
        msgs.append("must not be '..'")
    elif key.startswith(".."):
        msgs.append("must not start with '..'")
    return msgs


def _decoded_len(value: str) -> int:
    """Bytes a base64 value (already checked by the decoder) stands for."""
    text = value.replace("\n", "").replace("\r", "")
    return len(text) * 3 // 4 - text[-2:].count("=")


def _validate_config_map(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    data = ctx.dict(obj, "data", "data")
    binary = ctx.dict(obj, "binaryData", "binaryData")
    total = 0
    for key in sorted(data):
        ctx.add(*(invalid_value(f"data[{key}]", key, m) for m in is_config_map_key(key)))
        if key in binary:
            ctx.add(invalid_value(f"data[{key}]", key, "duplicate of key present in binaryData"))
        v = data[key]
        total += len(v.encode()) if isinstance(v, str) else 0
    for key in sorted(binary):
        ctx.add(*(invalid_value(f"binaryData[{key}]", key, m) for m in is_config_map_key(key)))
        if key in data:
            ctx.add(invalid_value(f"binaryData[{key}]", key, "duplicate of key present in data"))
        v = binary[key]
        total += _decoded_len(v) if isinstance(v, str) else 0
    if total > MAX_CONFIG_BYTES:
        ctx.add(too_long("[]", MAX_CONFIG_BYTES))  # the whole object: Kubernetes' empty path prints as []
    if old is not None:
        _validate_immutable_update(ctx, obj, old, ("data", "binaryData"))


def _validate_immutable_update(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any], fields: tuple[str, ...]) -> None:
    if old.get("immutable") is not True:
        return
    if obj.get("immutable") is not True:
        ctx.add(forbidden("immutable", _IMMUTABLE_SET))
    for f in fields:
        if (obj.get(f) or {}) != (old.get(f) or {}):
            ctx.add(forbidden(f, _IMMUTABLE_SET))


# Keys a Secret of each type must have in data (Kubernetes checks them on every write).
_SECRET_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def _validate_secret(ctx: _Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    data = ctx.dict(obj, "data", "data")
    total = 0
    for key in sorted(data):
        ctx.add(*(invalid_value(f"data[{key}]", key, m) for m in is_config_map_key(key)))
        v = data[key]
        total += _decoded_len(v) if isinstance(v, str) else 0
    if total > MAX_CONFIG_BYTES:
        ctx.add(too_long("data", MAX_CONFIG_BYTES))
    typ = obj.get("type") or "Opaque"
    if typ == "kubernetes.io/service-account-token":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get("kubernetes.io/service-account.name"):
            ctx.add(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif typ == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        ctx.add(required("data[username]"), required("data[password]"))
    for key in _SECRET_REQUIRED_KEYS.get(typ, ()):
        if not data.get(key):
            ctx.add(required(f"data[{key}]"))
    if old is not None:
        old_type = old.get("type") or "Opaque"
        if typ != old_type:
            ctx.add(invalid_value("type", typ, "field is immutable"))
        _validate_immutable_update(ctx, obj, old, ("data",))


# --- entry points ----------------------------------------------------------------------------

_Validator = Callable[[_Ctx, dict[str, Any], "dict[str, Any] | None"], None]

_BY_KIND: dict[str, _Validator] = {
    "EndpointSlice": _validate_endpoint_slice,
    "Service": _validate_service,
    "Pod": _validate_pod,
    "Deployment": lambda ctx, obj, old: _validate_workload(ctx, obj, old, deployment=True),
    "ReplicaSet": lambda ctx, obj, old: _validate_workload(ctx, obj, old, deployment=False),
    "Endpoints": _validate_endpoints,
    "Node": _validate_node,
    "Namespace": _validate_namespace,
    "Lease": _validate_lease,
    "ConfigMap": _validate_config_map,
    "Secret": _validate_secret,
}



def validate(info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
    """Field errors for `obj` (a create when `old` is None, else an update of `old`)."""
    ctx = _Ctx()
    if not isinstance(obj, dict):
        return [invalid_value("", _shown(obj), "must be an object")]
    _validate_meta(ctx, info, obj)
    if old is not None and isinstance(old, dict):
        _validate_meta_update(ctx, obj, old)
    check = _BY_KIND.get(info.kind)
    if check is not None:
        check(ctx, obj, old if isinstance(old, dict) else None)
    return ctx.causes
