"""Kubernetes protobuf request bodies -> JSON objects (what kubectl's typed `create` commands send).

The bodies here are built field by field with the wire format, so the test needs no protobuf
library; `test_apiserver_clients.py` checks the same path with the real kubectl.
"""

from __future__ import annotations

from typing import Any

import pytest

from sliceplane.api.errors import StatusError
from sliceplane.api.openapi_proto import varint
from sliceplane.apiserver import protobuf


def vfield(num: int, value: int) -> bytes:
    return varint(num << 3) + varint(value)


def lfield(num: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(num << 3 | 2) + varint(len(data)) + data


def entry(key: str, value: bytes | str) -> bytes:
    return lfield(1, key) + lfield(2, value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = lfield(1, api_version) + lfield(2, kind)
    return protobuf.MAGIC + lfield(1, type_meta) + lfield(2, raw) + lfield(3, "") + lfield(4, "")


# ObjectMeta as Go marshals it: every non-pointer field present, most of them empty.
def object_meta(name: str, labels: dict[str, str] | None = None) -> bytes:
    out = lfield(1, name) + lfield(2, "") + lfield(3, "") + lfield(5, "") + lfield(6, "") + vfield(7, 0)
    out += lfield(8, b"")  # creationTimestamp: a zero Time
    for k, v in (labels or {}).items():
        out += lfield(11, entry(k, v))
    return out


def int_or_string(value: int | str) -> bytes:
    if isinstance(value, str):
        return vfield(1, 1) + vfield(2, 0) + lfield(3, value)
    return vfield(1, 0) + vfield(2, value) + lfield(3, "")


CASES: list[tuple[str, bytes, dict[str, Any]]] = [
    ("configmap-keeps-empty-map-values",
     envelope("v1", "ConfigMap", lfield(1, object_meta("cfg")) + lfield(2, entry("a", "b")) + lfield(2, entry("e", ""))),
     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "b", "e": ""}}),
    ("secret-bytes-are-base64",
     envelope("v1", "Secret", lfield(1, object_meta("s")) + lfield(2, entry("p", b"secret")) + lfield(3, "Opaque")),
     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"p": "c2VjcmV0"}, "type": "Opaque"}),
    ("namespace-labels",
     envelope("v1", "Namespace", lfield(1, object_meta("team", {"env": "dev"})) + lfield(2, b"") + lfield(3, b"")),
     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"env": "dev"}}}),
    ("deployment-pointer-zero-and-intorstring",
     envelope("apps/v1", "Deployment", lfield(1, object_meta("web")) + lfield(2, (
         vfield(1, 0)  # replicas: 0, a pointer the client set
         + lfield(2, lfield(1, entry("app", "web")))
         + lfield(4, lfield(1, "RollingUpdate") + lfield(2, lfield(1, int_or_string("25%")) + lfield(2, int_or_string(2))))
         + vfield(5, 0) + vfield(7, 0)))),  # minReadySeconds 0, paused false: Go zero values, dropped
     {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
      "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
               "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 2}}}}),
    ("negative-int-and-time",
     envelope("v1", "Pod", lfield(1, object_meta("p") + lfield(8, vfield(1, 1_700_000_000)))
              + lfield(2, lfield(2, lfield(1, "c") + lfield(2, "nginx")) + vfield(4, -1 & ((1 << 64) - 1)))),
     {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "creationTimestamp": "2023-11-14T22:13:20Z"},
      "spec": {"containers": [{"name": "c", "image": "nginx"}], "terminationGracePeriodSeconds": -1}}),
    # kubectl drain (typed client) sends DeleteOptions under the pod's group version, "v1".
    ("delete-options-as-v1",
     envelope("v1", "DeleteOptions", vfield(1, 0) + lfield(2, lfield(1, "u-1")) + lfield(4, "Background")),
     {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": "u-1"},
      "propagationPolicy": "Background"}),
    ("eviction",
     envelope("policy/v1", "Eviction", lfield(1, object_meta("web-1")) + lfield(2, vfield(1, 30))),
     {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1"},
      "deleteOptions": {"gracePeriodSeconds": 30}}),
]


@pytest.mark.parametrize(("body", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decode(body: bytes, want: dict[str, Any]) -> None:
    assert protobuf.decode(body) == want


BAD = [
    ("no-magic", b"{}", 400),
    ("truncated", protobuf.MAGIC + b"\x0a\x05ab", 400),
    ("unserved-kind", envelope("batch/v1", "Job", b""), 415),
]


@pytest.mark.parametrize(("body", "code"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_bodies(body: bytes, code: int) -> None:
    with pytest.raises(StatusError) as e:
        protobuf.decode(body)
    assert e.value.code == code
