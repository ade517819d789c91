"""Content negotiation: what a request body is, and what encoding the client accepts back.

Pure functions over header values; the handlers pass them the raw header text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import yaml

from sliceplane.api.errors import bad_request, not_acceptable, unsupported_media_type
from sliceplane.apiserver import protobuf

JSON = "application/json"
YAML = "application/yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

_json_decoder = msgspec.json.Decoder()
_json_encoder = msgspec.json.Encoder()

# How deeply objects and arrays may nest in a body. Kubernetes allows 10000 levels; the server's
# walks over a body (type checks, patches, defaulting) recurse in Python, so we allow 100:
# real objects nest about 15 levels (a Deployment's pod template is among the deepest).
MAX_NESTING_DEPTH = 100


def encode_json(obj: Any) -> bytes:
    return _json_encoder.encode(obj)


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


class _JSONishLoader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: converted to JSON first, so an unquoted timestamp is text
    (a datetime would be refused by the type check and stored in another spelling)."""


_JSONishLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def decode_body(body: bytes, content_type: str | None) -> Any:
    """Decode a create/update body (JSON, or YAML when the client says so)."""
    mt = media_type(content_type)
    if mt in ("application/yaml", "application/x-yaml", "text/yaml"):
        too_deep = bad_request(f"error converting YAML to JSON: yaml: exceeded max depth of {MAX_NESTING_DEPTH}")
        try:
            return _load_yaml(body) if body.strip() else None
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise bad_request(f"error converting YAML to JSON: {_one_line(str(e))}") from None
        except RecursionError:
            raise too_deep from None
    if mt == PROTOBUF:
        return protobuf.decode(body)
    if mt in ("", JSON, "*/*") or mt.endswith("+json"):
        return decode_json(body)
    raise unsupported_media_type(content_type or "")


def decode_json(body: bytes) -> Any:
    if not body.strip():
        raise bad_request("the body of the request was empty")
    too_deep = bad_request("couldn't get version/kind; json parse error: exceeded max depth")
    try:
        value = _json_decoder.decode(body)
    except msgspec.DecodeError as e:
        raise bad_request(f"couldn't get version/kind; json parse error: {e}") from None
    except RecursionError:
        raise too_deep from None
    if _too_deep(value, body):
        raise too_deep
    return value


def check_nesting(body: bytes) -> None:
    """400 for a JSON body (a patch) nested deeper than MAX_NESTING_DEPTH, before anything walks it."""
    if body.count(b"{") + body.count(b"[") <= MAX_NESTING_DEPTH:
        return
    try:
        value = _json_decoder.decode(body)
    except msgspec.DecodeError:
        return  # the patch's own decoder reports it
    except RecursionError:
        raise bad_request("json: exceeded max depth") from None
    if _too_deep(value, body):
        raise bad_request("json: exceeded max depth")


# A YAML document without aliases has fewer nodes than bytes. Aliases (and `<<` merge keys)
# let a few hundred bytes stand for a billion nodes (an "alias bomb"), which building the object
# would expand; past its own size plus this many nodes a document is refused before it is built,
# as Kubernetes' YAML decoder refuses excessive aliasing.
ALIAS_EXPANSION_ALLOWANCE = 100_000


class _Cycle(Exception):
    """A YAML anchor whose value contains its own alias: an object nested without end."""


def _load_yaml(body: bytes) -> Any:
    """Compose the document, measure it, and only then build it (PyYAML expands merge keys while
    building, so a check on the built value would come too late)."""
    loader = _JSONishLoader(body.decode("utf-8"))
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            nodes, depth = yaml_expanded_shape(node)
        except _Cycle:
            raise bad_request("error converting YAML to JSON: yaml: an anchor's value contains itself") from None
        if depth > MAX_NESTING_DEPTH:
            raise bad_request(f"error converting YAML to JSON: yaml: exceeded max depth of {MAX_NESTING_DEPTH}")
        if nodes > len(body) + ALIAS_EXPANSION_ALLOWANCE:
            raise bad_request("error converting YAML to JSON: yaml: document contains excessive aliasing")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def yaml_expanded_shape(node: yaml.Node) -> tuple[int, int]:
    """(nodes, depth) of a composed YAML document as JSON would spell it out, aliases expanded.

    The composer gives an anchor and its aliases one shared node, so each distinct node is
    measured once: the cost is the document's own size, never its expansion.
    """
    measured: dict[int, tuple[int, int] | None] = {}

    def walk(n: yaml.Node) -> tuple[int, int]:
        if isinstance(n, yaml.ScalarNode):
            return 1, 0
        known = measured.get(id(n), ())
        if known is None:
            raise _Cycle
        if known:
            return known  # type: ignore[return-value]
        measured[id(n)] = None
        children = [c for pair in n.value for c in pair] if isinstance(n, yaml.MappingNode) else n.value
        total, depth = 1, 0
        for c in children:
            size, d = walk(c)
            total += size
            depth = max(depth, d)
        measured[id(n)] = (total, depth + 1)
        return total, depth + 1

    return walk(node)


def _too_deep(value: Any, json_body: bytes | None) -> bool:
    """Whether `value` nests deeper than MAX_NESTING_DEPTH; a walk without recursion, skipped
    when a JSON body has too few brackets to nest that deep."""
    if json_body is not None and json_body.count(b"{") + json_body.count(b"[") <= MAX_NESTING_DEPTH:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        children = v.values() if type(v) is dict else v if type(v) is list else ()
        for c in children:
            if type(c) is dict or type(c) is list:
                if depth >= MAX_NESTING_DEPTH:
                    return True
                stack.append((c, depth + 1))
    return False


def decode_object(body: bytes, content_type: str | None, kind: str = "") -> dict[str, Any]:
    """The body as an object. `null` is an empty object, as Go decodes it; any other non-object
    is refused in the words of Kubernetes' decoder (`kind`: what the URL expects)."""
    obj = decode_body(body, content_type)
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        jkind = "array" if isinstance(obj, list) else "bool" if isinstance(obj, bool) else \
            "string" if isinstance(obj, str) else "number"
        error = ("couldn't get version/kind; json parse error: json: cannot unmarshal " + jkind +
                 ' into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
                 'Kind string "json:\\"kind,omitempty\\"" }')
        if not kind:
            raise bad_request(error)
        raw = body.strip()
        summary = raw[:30].hex() + (" ..." if len(raw) > 30 else "")
        raise bad_request(f"the object provided is unrecognized (must be of type {kind}): {error} ({summary})")
    return obj


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Accept:
    """The response shape a client asked for."""

    table: bool = False
    table_version: str = "v1"  # meta.k8s.io version of the Table the client named
    yaml: bool = False
    metadata_only: bool = False  # PartialObjectMetadata(List), as metadata-only clients ask


def parse_accept(header: str | None) -> Accept:
    """Pick the first acceptable media range: a meta.k8s.io Table, JSON, or YAML.

    kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io,application/json`; the
    official client for `application/json`; metadata-only clients for PartialObjectMetadata. Protobuf is never chosen when JSON is also acceptable.
    """
    if not header:
        return Accept()
    saw_unacceptable = False
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        mt = fields[0].lower()
        params = {}
        for f in fields[1:]:
            k, _, v = f.partition("=")
            params[k.strip().lower()] = v.strip()
        if mt in ("application/json", "*/*", "application/*", "application/json+stream"):
            wants = params.get("as", "")
            if wants == "Table":
                if params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
                    return Accept(table=True, table_version=params["v"])
                saw_unacceptable = True
                continue
            if wants in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                if params.get("g") == "meta.k8s.io" and params.get("v") == "v1":
                    return Accept(metadata_only=True)
                saw_unacceptable = True
                continue
            return Accept()
        if mt in ("application/yaml",):
            return Accept(yaml=True)
        saw_unacceptable = True
    if saw_unacceptable:
        raise not_acceptable(f"only the following media types are accepted: {JSON}, {YAML}")
    return Accept()


def table_accept_header_value(version: str = "v1") -> str:
    return f"application/json;as=Table;v={version};g=meta.k8s.io"

