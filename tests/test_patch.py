"""Merge, JSON and strategic merge patches, table-driven."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from sliceplane.api.errors import StatusError
from sliceplane.api.patch import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    apply_patch,
)


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "u1", "finalizers": ["a.example/x"],
                     "labels": {"app": "web", "tier": "front"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1.25",
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                        {"name": "side", "image": "busybox"},
                    ],
                    "volumes": [{"name": "v", "emptyDir": {}}],
                },
            },
        },
    }


def _apply(obj: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    body = patch if isinstance(patch, bytes) else json.dumps(patch).encode()
    before = copy.deepcopy(obj)
    out = apply_patch(obj, body, content_type)
    assert obj == before  # never mutates the original
    return out


def _spec(out: dict[str, Any]) -> dict[str, Any]:
    return out["spec"]["template"]["spec"]


# ---- strategic merge patch ----

KUBECTL_APPLY_PATCH = {
    "metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/x"],
                 "$setElementOrder/finalizers": ["b.example/y"], "finalizers": ["b.example/y"]},
    "spec": {"replicas": 3, "template": {"spec": {
        "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
        "$setElementOrder/volumes": [{"name": "v"}],
        "containers": [{
            "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
            "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
            "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}],
            "image": "nginx:1.26", "name": "app", "ports": [{"containerPort": 443}]}],
        "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "emptyDir": None,
                     "name": "v"}]}}},
}

SMP_CASES: list[tuple[str, dict[str, Any], Any]] = [
    ("kubectl-apply-finalizers", KUBECTL_APPLY_PATCH, ("metadata.finalizers", ["b.example/y"])),
    ("kubectl-apply-replicas", KUBECTL_APPLY_PATCH, ("spec.replicas", 3)),
    ("kubectl-apply-container-order", KUBECTL_APPLY_PATCH,
     ("containers.names", ["side", "app"])),
    ("kubectl-apply-env", KUBECTL_APPLY_PATCH,
     ("containers.1.env", [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])),
    ("kubectl-apply-ports", KUBECTL_APPLY_PATCH,
     ("containers.1.ports", [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}])),
    ("kubectl-apply-image", KUBECTL_APPLY_PATCH, ("containers.1.image", "nginx:1.26")),
    ("kubectl-apply-volume-retainKeys", KUBECTL_APPLY_PATCH, ("volumes", [{"name": "v", "configMap": {"name": "cm"}}])),
    ("rollout-restart",
     {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}}},
     ("spec.template.metadata", {"labels": {"app": "web"},
                                 "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}})),
    ("set-image", {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox:1.36"}]}}}},
     ("containers.1", {"name": "side", "image": "busybox:1.36"})),
    ("add-container-appends",
     {"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "x", "args": None}]}}}},
     ("containers.names", ["new", "app", "side"])),  # Kubernetes puts new items first
    ("delete-container", {"spec": {"template": {"spec": {"containers": [{"$patch": "delete", "name": "side"}]}}}},
     ("containers.names", ["app"])),
    ("replace-list", {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only",
                                                                                         "image": "y"}]}}}},
     ("containers", [{"name": "only", "image": "y"}])),
    ("replace-map", {"spec": {"selector": {"$patch": "replace", "matchLabels": {"x": "y"}}}},
     ("spec.selector", {"matchLabels": {"x": "y"}})),
    ("delete-map", {"spec": {"strategy": {"$patch": "delete"}}}, ("spec.strategy", {})),
    ("retainKeys-strategy",
     {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}},
     ("spec.strategy", {"type": "Recreate"})),
    ("null-deletes-label", {"metadata": {"labels": {"tier": None, "new": "1"}}},
     ("metadata.labels", {"app": "web", "new": "1"})),
    ("finalizers-union", {"metadata": {"finalizers": ["b.example/y", "a.example/x"]}},
     ("metadata.finalizers", ["b.example/y", "a.example/x"])),
    ("finalizers-delete", {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/x"]}},
     ("metadata.finalizers", [])),
    ("atomic-list-replaced", {"spec": {"template": {"spec": {"containers": [{"name": "app",
                                                                            "args": ["b"]}]}}}},
     ("containers.0.args", ["b"])),
    ("merge-env-in-place", {"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [
        {"name": "B", "value": "20"}]}]}}}},
     ("containers.0.env", [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}])),
    ("unknown-field-kept", {"spec": {"foo": {"bar": [1, 2]}}}, ("spec.foo", {"bar": [1, 2]})),
    ("null-patch-is-noop", b"null", ("spec.replicas", 2)),
]


def _pick(out: dict[str, Any], path: str) -> Any:
    if path.startswith("containers"):
        node: Any = _spec(out)["containers"]
        path = path.removeprefix("containers").lstrip(".")
        if path == "names":
            return [c["name"] for c in node]
    elif path.startswith("volumes"):
        return _spec(out)["volumes"]
    else:
        node = out
    for part in [p for p in path.split(".") if p]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


@pytest.mark.parametrize(("patch", "expect"), [c[1:] for c in SMP_CASES], ids=[c[0] for c in SMP_CASES])
def test_strategic_merge_patch(patch: Any, expect: tuple[str, Any]) -> None:
    out = _apply(_deployment(), patch, STRATEGIC_MERGE_PATCH)
    path, value = expect
    assert _pick(out, path) == value


def test_kubectl_apply_three_way_patch_whole_result() -> None:
    out = _apply(_deployment(), KUBECTL_APPLY_PATCH, STRATEGIC_MERGE_PATCH)
    assert _spec(out) == {
        "containers": [
            {"name": "side", "image": "busybox"},
            {"name": "app", "image": "nginx:1.26",
             "env": [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}],
             "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]},
        ],
        "volumes": [{"name": "v", "configMap": {"name": "cm"}}],
    }
    assert "$setElementOrder/containers" not in json.dumps(out)


@pytest.mark.parametrize(
    ("original", "patch", "expected"),
    [
        ({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80, "name": "http"},
                                                                    {"port": 443, "name": "https"}]}},
         {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}},
         {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https", "targetPort": 8443}]}),
        ({"apiVersion": "v1", "kind": "Pod", "status": {"conditions": [{"type": "Ready", "status": "False"},
                                                                       {"type": "PodScheduled", "status": "True"}]}},
         {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
         {"conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}},
         {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}},
         {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "name": "a"}]}),
        ({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "endpoints": [{"addresses": ["1.1.1.1"]}]},
         {"endpoints": [{"addresses": ["2.2.2.2"]}]},
         [{"addresses": ["2.2.2.2"]}]),
        ({"apiVersion": "v1", "kind": "Node", "spec": {"podCIDRs": ["10.0.0.0/24"]}},
         {"spec": {"podCIDRs": ["10.0.1.0/24"]}},
         {"podCIDRs": ["10.0.1.0/24", "10.0.0.0/24"]}),
    ],
    ids=["service-ports-by-port", "pod-conditions-by-type", "ownerReferences-by-uid", "slice-endpoints-atomic",
         "node-podCIDRs-set"],
)
def test_strategic_merge_patch_other_kinds(original: dict[str, Any], patch: dict[str, Any], expected: Any) -> None:
    out = _apply(original, patch, STRATEGIC_MERGE_PATCH)
    part = {k: v for k, v in out.items() if k not in ("apiVersion", "kind")}
    got = next(iter(part.values()))
    if isinstance(expected, list):
        got = part["endpoints"]
    assert got == expected


def test_scale_subresource_by_definition_name() -> None:
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": 1}}
    assert _apply(scale, {"spec": {"replicas": 5}}, MERGE_PATCH)["spec"] == {"replicas": 5}
    out = apply_patch(scale, b'{"spec":{"replicas":4}}', STRATEGIC_MERGE_PATCH,
                      def_name="io.k8s.api.autoscaling.v1.Scale")
    assert out["spec"] == {"replicas": 4}


@pytest.mark.parametrize(
    ("patch", "code", "message"),
    [
        (b"{", 400, "unexpected end of JSON input"),
        (b"{x}", 400, "invalid character 'x' looking for beginning of object key string"),
        (b"[]", 400, "json: cannot unmarshal array into Go value of type map[string]interface {}"),
        (b'{"a":[1 2]}', 400, "invalid character '2' after array element"),
        (b'{"a":1 "b":2}', 400, "invalid character '\"' after object key:value pair"),
        (b'{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}', 500,
         "map: map[image:x] does not contain declared merge key: name"),
        (b'{"spec":{"$patch":"merge"}}', 500, "unknown patch type: merge in map: map[$patch:merge]"),
        (b'{"metadata":{"$deleteFromPrimitiveList/finalizers":"x"}}', 400, "invalid patch format of primitive list"),
        (b'{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{}}}}', 400,
         "invalid patch format of retainKeys"),
        (b'{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"}],'
         b'"containers":[{"name":"side","image":"y"}]}}}}', 500, "doesn't match $setElementOrder list"),
    ],
    ids=["truncated", "bad-key", "array-body", "array-syntax", "object-syntax", "missing-merge-key", "bad-directive", "bad-primitive-delete",
         "retainKeys-mismatch", "order-mismatch"],
)
def test_strategic_merge_patch_errors(patch: bytes, code: int, message: str) -> None:
    with pytest.raises(StatusError) as e:
        apply_patch(_deployment(), patch, STRATEGIC_MERGE_PATCH)
    assert e.value.code == code
    assert message in e.value.message


# ---- JSON merge patch ----

@pytest.mark.parametrize(
    ("patch", "path", "expected"),
    [
        ({"spec": {"replicas": 5}}, "spec.replicas", 5),
        ({"metadata": {"labels": {"tier": None}}}, "metadata.labels", {"app": "web"}),
        ({"spec": {"template": {"spec": {"containers": [{"name": "x", "image": "y"}]}}}}, "containers",
         [{"name": "x", "image": "y"}]),
        ({"spec": {"strategy": {"rollingUpdate": None, "type": "Recreate"}}}, "spec.strategy", {"type": "Recreate"}),
        ({"spec": {"new": {"a": None, "b": 1}}}, "spec.new", {"b": 1}),
    ],
    ids=["scale", "remove-label", "list-replaced", "strategy", "nulls-dropped-in-new-object"],
)
def test_merge_patch(patch: dict[str, Any], path: str, expected: Any) -> None:
    assert _pick(_apply(_deployment(), patch, MERGE_PATCH), path) == expected


@pytest.mark.parametrize(
    ("patch", "message"),
    [(b"null", "Invalid JSON Patch"), (b"[1]", "error decoding patch: json: cannot unmarshal array"),
     (b"{'a':1}", "error decoding patch: invalid character"), (b"", "unexpected end of JSON input"),
     (b'{"a": NaN}', "invalid character 'N'")],
    ids=["null", "array", "single-quotes", "empty", "nan"],
)
def test_merge_patch_bad_body(patch: bytes, message: str) -> None:
    with pytest.raises(StatusError) as e:
        apply_patch(_deployment(), patch, MERGE_PATCH)
    assert e.value.code == 400 and e.value.reason == "BadRequest"
    assert message in e.value.message


# ---- JSON patch ----

@pytest.mark.parametrize(
    ("ops", "path", "expected"),
    [
        ([{"op": "replace", "path": "/spec/replicas", "value": 7}], "spec.replicas", 7),
        ([{"op": "add", "path": "/metadata/labels/a~1b", "value": "x"}], "metadata.labels.a/b", "x"),
        ([{"op": "add", "path": "/metadata/labels/t~0", "value": "x"}], "metadata.labels.t~", "x"),
        ([{"op": "remove", "path": "/metadata/labels/tier"}], "metadata.labels", {"app": "web"}),
        ([{"op": "add", "path": "/metadata/finalizers/-", "value": "z"}], "metadata.finalizers", ["a.example/x", "z"]),
        ([{"op": "add", "path": "/metadata/finalizers/0", "value": "z"}], "metadata.finalizers", ["z", "a.example/x"]),
        ([{"op": "test", "path": "/spec/replicas", "value": 2},
          {"op": "replace", "path": "/spec/replicas", "value": 3}], "spec.replicas", 3),
        ([{"op": "copy", "from": "/metadata/labels", "path": "/metadata/annotations"}], "metadata.annotations",
         {"app": "web", "tier": "front"}),
        ([{"op": "move", "from": "/metadata/labels/tier", "path": "/metadata/labels/layer"}], "metadata.labels",
         {"app": "web", "layer": "front"}),
        ([{"op": "remove", "path": "/spec/template/spec/containers/-1"}], "containers.names", ["app"]),
        ([{"op": "test", "path": "/metadata/missing", "value": None}], "spec.replicas", 2),
    ],
    ids=["replace", "escape-slash", "escape-tilde", "remove", "append", "insert", "test-then-replace", "copy",
         "move", "negative-index", "test-absent-null"],
)
def test_json_patch(ops: list[dict[str, Any]], path: str, expected: Any) -> None:
    assert _pick(_apply(_deployment(), ops, JSON_PATCH), path) == expected


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        ([{"op": "test", "path": "/spec/replicas", "value": 5}], 422, "testing value /spec/replicas failed: test failed"),
        ([{"op": "test", "path": "/spec/paused", "value": 0}], 422, "testing value /spec/paused failed"),
        ([{"op": "replace", "path": "/spec/nope", "value": 1}], 422,
         "replace operation does not apply: doc is missing key: /spec/nope: missing value"),
        ([{"op": "remove", "path": "/metadata/labels/nope"}], 422, "Unable to remove nonexistent key: nope"),
        ([{"op": "add", "path": "/no/such/parent", "value": 1}], 422, 'doc is missing path: "/no/such/parent"'),
        ([{"op": "add", "path": "/metadata/finalizers/9", "value": 1}], 422, "Unable to access invalid index: 9"),
        ([{"op": "jump", "path": "/x"}], 422, "Unexpected kind: jump"),
        ([{"op": "move", "from": "/nope", "path": "/x"}], 422, "move operation does not apply: doc is missing from path"),
        ({"op": "add"}, 400, "cannot unmarshal object into Go value of type []handlers.jsonPatchOp"),
        (b"[", 400, "error decoding patch: unexpected end of JSON input"),
        ([{"op": "add", "path": "/a", "value": 1}] * 10001, 413, "The allowed maximum operations in a JSON patch"),
    ],
    ids=["test-failed", "test-bool-vs-number", "replace-missing", "remove-missing", "add-missing-parent",
         "bad-index", "bad-op", "move-missing", "object-body", "truncated", "too-many"],
)
def test_json_patch_errors(body: Any, code: int, text: str) -> None:
    with pytest.raises(StatusError) as e:
        _apply(_deployment(), body, JSON_PATCH)
    assert e.value.code == code
    status = e.value.to_status()
    assert text in " ".join([status["message"], *(c["message"] for c in status.get("details", {}).get("causes", []))])
    if code == 422:
        assert status["reason"] == "Invalid"
        assert status["details"]["causes"][0]["reason"] == "UnexpectedServerResponse"


# ---- content types ----

@pytest.mark.parametrize(
    ("content_type", "code", "text"),
    [(APPLY_PATCH, 415, "server-side apply is not supported"), ("application/json", 415, "unknown format"),
     ("text/plain", 415, "application/strategic-merge-patch+json")],
    ids=["apply", "json", "text"],
)
def test_unsupported_content_types(content_type: str, code: int, text: str) -> None:
    with pytest.raises(StatusError) as e:
        apply_patch(_deployment(), b"{}", content_type)
    assert (e.value.code, e.value.reason) == (code, "UnsupportedMediaType")
    assert text in e.value.message


def test_content_type_parameters_are_ignored() -> None:
    out = apply_patch(_deployment(), b'{"spec":{"replicas":9}}', "application/merge-patch+json; charset=utf-8")
    assert out["spec"]["replicas"] == 9


# ---- kubectl against the real API server ----

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{{name: s, cluster: {{server: "{url}"}}}}]
contexts: [{{name: s, context: {{cluster: s, user: s, namespace: default}}}}]
users: [{{name: s, user: {{}}}}]
current-context: s
"""

APPLIED_V1 = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1.25
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        ports: [{containerPort: 80}]
      - name: side
        image: busybox
      volumes: [{name: v, emptyDir: {}}]
"""

APPLIED_V2 = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: side
        image: busybox
      - name: app
        image: nginx:1.26
        env: [{name: A, value: "1"}, {name: C, value: "3"}]
        ports: [{containerPort: 80}, {containerPort: 443}]
      volumes: [{name: v, configMap: {name: cm}}]
"""


@pytest.fixture
async def kubectl_env(tmp_path: Any) -> Any:
    import shutil

    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    from sliceplane.apiserver.app import APIServer
    from sliceplane.apiserver.config import ServerConfig

    server = APIServer(ServerConfig())
    await server.start()
    (tmp_path / "kubeconfig").write_text(KUBECONFIG.format(url=server.url))
    (tmp_path / "home").mkdir()
    yield tmp_path
    await server.stop()


async def _kubectl(tmp: Any, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    import asyncio
    import os

    env = {**os.environ, "HOME": str(tmp / "home"), "KUBECONFIG": str(tmp / "kubeconfig")}
    proc = await asyncio.create_subprocess_exec(
        "kubectl", *args, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else b""), 120)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.e2e
async def test_kubectl_apply_three_way_patch_against_the_server(kubectl_env: Any) -> None:
    assert (await _kubectl(kubectl_env, "apply", "-f", "-", stdin=APPLIED_V1))[0] == 0
    rc, out, err = await _kubectl(kubectl_env, "apply", "-f", "-", stdin=APPLIED_V2)
    assert rc == 0, err
    assert "configured" in out
    assert "warning" not in err.lower()  # the patch came from our OpenAPI v3 schemas without complaint
    rc, out, err = await _kubectl(kubectl_env, "get", "deployment", "web", "-o", "json")
    assert rc == 0, err
    spec = json.loads(out)["spec"]
    assert spec["replicas"] == 3
    containers = spec["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["side", "app"]
    assert containers[1]["env"] == [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]
    assert [p["containerPort"] for p in containers[1]["ports"]] == [80, 443]
    assert spec["template"]["spec"]["volumes"] == [{"name": "v", "configMap": {"name": "cm", "defaultMode": 420}}]


@pytest.mark.e2e
async def test_kubectl_relies_on_server_side_field_validation(kubectl_env: Any) -> None:
    rc, _, err = await _kubectl(kubectl_env, "apply", "-f", "-",
                                stdin=APPLIED_V1.replace("  replicas: 2\n", "  replicas: 2\n  bogus: 1\n"))
    assert rc != 0
    # kubectl found fieldValidation in our OpenAPI v3 document and asked the server to be strict.
    assert 'strict decoding error: unknown field "spec.bogus"' in err
