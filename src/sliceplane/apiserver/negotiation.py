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
        try:
            return yaml.load(body.decode("utf-8"), Loader=_JSONishLoader) if body.strip() else None
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise bad_request(f"error converting YAML to JSON: {_one_line(str(e))}") from None
    if mt == PROTOBUF:
        return protobuf.decode(body)
    if mt in ("", JSON, "*/*") or mt.endswith("+json"):
        return decode_json(body)
    raise unsupported_media_type(content_type or "")


def decode_json(body: bytes) -> Any:
    if not body.strip():
        raise bad_request("the body of the request was empty")
    try:
        return _json_decoder.decode(body)
    except msgspec.DecodeError as e:
        raise bad_request(f"couldn't get version/kind; json parse error: {e}") from None


def decode_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    obj = decode_body(body, content_type)
    if not isinstance(obj, dict):
        raise bad_request(
            f"couldn't get version/kind; json parse error: expected a JSON object, got {type(obj).__name__}"
        )
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

