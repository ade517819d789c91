"""The client's I/O-free parts: paths, errors, delete options, the informer's re-list diff, kubeconfig."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sliceplane.api.errors import StatusError
from sliceplane.api.registry import DEPLOYMENTS, ENDPOINT_SLICES, NODES, PODS
from sliceplane.client.informer import Delta, relist_diff
from sliceplane.client.kubeconfig import read_kubeconfig, servers_from_document, write_kubeconfig
from sliceplane.client.rest import ApiError, _watch_event, delete_options, list_params, path_for


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ((PODS, None), "/api/v1/pods"),
        ((PODS, "ns1"), "/api/v1/namespaces/ns1/pods"),
        ((PODS, "ns1", "p"), "/api/v1/namespaces/ns1/pods/p"),
        ((PODS, "ns1", "p", "binding"), "/api/v1/namespaces/ns1/pods/p/binding"),
        ((NODES, "ignored", "n1", "status"), "/api/v1/nodes/n1/status"),
        ((ENDPOINT_SLICES, None), "/apis/discovery.k8s.io/v1/endpointslices"),
        ((ENDPOINT_SLICES, "d", "s"), "/apis/discovery.k8s.io/v1/namespaces/d/endpointslices/s"),
        ((DEPLOYMENTS, "d", "web", "scale"), "/apis/apps/v1/namespaces/d/deployments/web/scale"),
    ],
    ids=["all-pods", "ns-pods", "pod", "binding", "cluster-scoped-status", "group-all", "group-obj",
         "scale"],
)
def test_path_for(args: tuple, path: str) -> None:
    assert path_for(*args) == path


@pytest.mark.parametrize(
    ("kw", "params"),
    [
        ({}, {}),
        ({"label_selector": "a=b", "resource_version": "0"}, {"labelSelector": "a=b", "resourceVersion": "0"}),
        ({"field_selector": "spec.nodeName=n", "limit": 5, "continue_": "tok"},
         {"fieldSelector": "spec.nodeName=n", "limit": "5", "continue": "tok"}),
    ],
    ids=["none", "labels-rv", "fields-paging"],
)
def test_list_params(kw: dict, params: dict) -> None:
    assert list_params(**kw) == params


@pytest.mark.parametrize(
    ("kw", "body"),
    [
        ({}, None),
        ({"grace_period_seconds": 0, "preconditions": {"uid": "u1"}},
         {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": "u1"}}),
        ({"propagation_policy": "Foreground"},
         {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}),
    ],
    ids=["defaults", "grace-zero-uid", "propagation"],
)
def test_delete_options(kw: dict, body: dict | None) -> None:
    assert delete_options(**kw) == body


@pytest.mark.parametrize(
    ("body", "http_code", "code", "reason", "message", "causes"),
    [
        ({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
          "message": 'pods "x" not found', "details": {"name": "x", "kind": "pods"}},
         404, 404, "NotFound", 'pods "x" not found', []),
        ({"kind": "Status", "status": "Failure", "reason": "Invalid", "code": 422, "message": "bad",
          "details": {"causes": [{"reason": "FieldValueRequired", "message": "Required value",
                                  "field": "spec.x"}]}},
         422, 422, "Invalid", "bad", [("FieldValueRequired", "spec.x")]),
        ({"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410, "message": "too old"},
         200, 410, "Expired", "too old", []),
        (b"404: Not Found", 404, 404, "NotFound", "404: Not Found", []),
        (b"", 503, 503, "ServiceUnavailable", "the server responded with HTTP 503", []),
    ],
    ids=["not-found", "invalid-causes", "in-stream-expired", "plain-text", "empty-body"],
)
def test_api_error_from_status(body: object, http_code: int, code: int, reason: str, message: str,
                               causes: list) -> None:
    err = ApiError.from_status(body, http_code)
    assert isinstance(err, StatusError)
    assert (err.code, err.reason, err.message) == (code, reason, message)
    assert [(c.type, c.field) for c in err.causes] == causes


def _obj(name: str, rv: str, ns: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}}


@pytest.mark.parametrize(
    ("known", "items", "expected"),
    [
        ({}, [_obj("a", "1"), _obj("b", "2")], [("ADDED", "default/a"), ("ADDED", "default/b")]),
        ({"default/a": _obj("a", "1")}, [_obj("a", "1")], []),
        ({"default/a": _obj("a", "1")}, [_obj("a", "5")], [("MODIFIED", "default/a")]),
        ({"default/a": _obj("a", "1"), "default/b": _obj("b", "1")}, [_obj("b", "1")],
         [("DELETED", "default/a")]),
        ({"default/z": _obj("z", "1"), "default/a": _obj("a", "1"), "default/m": _obj("m", "3")},
         [_obj("m", "4"), _obj("n", "4")],
         [("MODIFIED", "default/m"), ("ADDED", "default/n"), ("DELETED", "default/a"), ("DELETED", "default/z")]),
        ({"x/a": _obj("a", "1", "x")}, [_obj("a", "1", "y")], [("ADDED", "y/a"), ("DELETED", "x/a")]),
    ],
    ids=["first-list", "unchanged", "modified", "deleted", "mixed-order", "same-name-other-namespace"],
)
def test_relist_diff(known: dict, items: list, expected: list) -> None:
    deltas = relist_diff(known, items)
    assert [(d.type, d.key) for d in deltas] == expected
    for d in deltas:
        assert isinstance(d, Delta)
        assert (d.old is None) == (d.type == "ADDED")
        assert (d.new is None) == (d.type == "DELETED")


def test_kubeconfig_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "kubeconfig"
    write_kubeconfig(path, "http://127.0.0.1:6443")
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "sliceplane"
    assert doc["clusters"] == [{"name": "sliceplane", "cluster": {"server": "http://127.0.0.1:6443"}}]
    assert doc["users"] == [{"name": "sliceplane", "user": {}}]
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_kubeconfig(path) == (["http://127.0.0.1:6443"], None)


def test_kubeconfig_several_servers_and_token(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, ["http://127.0.0.1:1", "http://127.0.0.1:2/"], token="t0k", name="lab")
    assert read_kubeconfig(path) == (["http://127.0.0.1:1", "http://127.0.0.1:2"], "t0k")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("just a string", "not a kubeconfig document"),
        ({"contexts": []}, "no current-context"),
        ({"current-context": "x", "contexts": []}, "context 'x' not found"),
        ({"current-context": "x", "contexts": [{"name": "x", "context": {"cluster": "c"}}],
          "clusters": [{"name": "c", "cluster": {}}]}, "cluster 'c' has no server"),
    ],
    ids=["not-a-mapping", "no-current-context", "missing-context", "no-server"],
)
def test_kubeconfig_errors(doc: object, message: str) -> None:
    with pytest.raises(StatusError) as exc:
        servers_from_document(doc)
    assert exc.value.code == 400
    assert message in exc.value.message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}', ("ADDED", {"metadata": {"name": "a"}})),
        (b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}',
         ("BOOKMARK", {"metadata": {"resourceVersion": "12"}})),
        (b'{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired",'
         b'"code":410,"message":"too old resource version: 1 (5)"}}', (410, "Expired")),
        (b'{"type":"ADDED","object":', (500, "InternalError")),
    ],
    ids=["added", "bookmark", "in-stream-410", "truncated"],
)
def test_watch_event_lines(line: bytes, expected: tuple) -> None:
    if isinstance(expected[0], int):
        with pytest.raises(ApiError) as exc:
            _watch_event(line)
        assert (exc.value.code, exc.value.reason) == expected
    else:
        assert _watch_event(line) == expected
