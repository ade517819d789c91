"""The write pipeline's refusals and create-time values: wrong JSON types, etcd's size refusal,
a Pod's QoS class; and that a write never changes the objects it was handed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from etcd_cluster import EtcdCluster, requires_etcd
from sliceplane.api import registry
from sliceplane.apiserver.app import APIServer
from sliceplane.apiserver.config import ServerConfig
from sliceplane.apiserver.handlers import RequestContext
from sliceplane.store.etcd import EtcdStore

PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


@pytest.fixture
async def server() -> AsyncIterator[APIServer]:
    s = APIServer(ServerConfig())
    await s.start()
    yield s
    await s.stop()


async def send(url: str, method: str, path: str, body: Any, ctype: str = "application/json") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
            method, url + path, data=body if isinstance(body, bytes) else json.dumps(body),
            headers={"Content-Type": ctype}) as r:
        return r.status, await r.json(content_type=None)


def pod(name: str, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "c", "image": "nginx:1.27"}
    if resources is not None:
        c["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [c]}}


def deployment(name: str, replicas: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


@pytest.mark.parametrize(("resources", "qos"), [
    (None, "BestEffort"),
    ({"requests": {"cpu": "100m"}}, "Burstable"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
    ({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}, "Burstable"),
], ids=["nothing", "requests-only", "limits-only", "requests-below-limits"])
async def test_pod_create_records_qos_class(server: APIServer, resources: Any, qos: str) -> None:
    status, out = await send(server.url, "POST", PODS, pod("q", resources))
    assert status == 201, out
    assert out["status"] == {"phase": "Pending", "qosClass": qos}


@pytest.mark.parametrize(("method", "path", "body", "message"), [
    ("POST", DEPLOYMENTS, deployment("d", "3"),
     'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct '
     "field DeploymentSpec.spec.replicas of type int32"),
    ("POST", PODS, {**pod("p"), "spec": {"containers": [{"name": "c", "image": 7}]}},
     'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number 7 into Go struct field '
     "Container.spec.containers.image of type string"),
    ("POST", PODS, {**pod("p"), "metadata": {"name": "p", "labels": {"a": True}}},
     'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal bool into Go struct field '
     "ObjectMeta.metadata.labels of type string"),
], ids=["string-replicas", "number-image", "bool-label"])
async def test_wrong_types_are_400_and_not_stored(server: APIServer, method: str, path: str, body: Any,
                                                 message: str) -> None:
    status, out = await send(server.url, method, path, body)
    assert (status, out["reason"], out["message"]) == (400, "BadRequest", message)
    name = body["metadata"]["name"]
    status, _ = await send(server.url, "GET", f"{path}/{name}", None)
    assert status == 404


async def test_wrong_types_on_put_and_patch(server: APIServer) -> None:
    status, created = await send(server.url, "POST", DEPLOYMENTS, deployment("d", 2))
    assert status == 201
    put = {**created, "spec": {**created["spec"], "replicas": "4"}}
    status, out = await send(server.url, "PUT", f"{DEPLOYMENTS}/d", put)
    assert (status, out["reason"]) == (400, "BadRequest")
    assert "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32" in out["message"]
    status, out = await send(server.url, "PATCH", f"{DEPLOYMENTS}/d", {"spec": {"replicas": "4"}},
                             "application/merge-patch+json")
    assert (status, out["reason"]) == (422, "Invalid")
    assert out["details"]["causes"][0]["field"] == "patch"
    assert out["message"].startswith(' "" is invalid: patch: Invalid value: "{')
    assert out["message"].endswith(": json: cannot unmarshal string into Go struct field "
                                   "DeploymentSpec.spec.replicas of type int32")
    status, out = await send(server.url, "PATCH", f"{DEPLOYMENTS}/d", {"spec": {"replicas": "4"}},
                             "application/strategic-merge-patch+json")
    assert (status, out["reason"]) == (422, "Invalid")
    assert out["message"].startswith(' "" is invalid: patch: Invalid value: "map[spec:map[replicas:4]]": ')
    status, out = await send(server.url, "GET", f"{DEPLOYMENTS}/d", None)
    assert out["spec"]["replicas"] == 2


async def test_yaml_timestamps_stay_strings(server: APIServer) -> None:
    """YAML's unquoted timestamps are text in Kubernetes (YAML is converted to JSON first)."""
    body = (b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: y\n  annotations:\n    when: 2026-01-02T03:04:05Z\n"
            b"spec:\n  containers:\n  - name: c\n    image: nginx\n")
    status, out = await send(server.url, "POST", PODS, body, "application/yaml")
    assert status == 201, out
    assert out["metadata"]["annotations"] == {"when": "2026-01-02T03:04:05Z"}


async def test_writes_leave_their_inputs_alone(server: APIServer) -> None:
    h = server.state.handlers
    body = pod("w", {"limits": {"cpu": "1"}})
    before = json.loads(json.dumps(body))
    created = await h.create(registry.PODS, "default", body, RequestContext())
    assert body == before
    seen: list[Any] = []

    def relabel(old: dict[str, Any]) -> dict[str, Any]:
        seen.append(json.loads(json.dumps(old)))
        return {**old, "metadata": {**old["metadata"], "labels": {"x": "y"}}}

    updated, _ = await h.update(registry.PODS, "default", "w", relabel, RequestContext())
    assert seen[0] == created
    assert updated["metadata"]["labels"] == {"x": "y"}
    assert updated["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}
    again, _ = await h.read(registry.PODS, "default", "w")
    assert again == updated


@requires_etcd
async def test_etcd_size_refusal_is_413() -> None:
    with EtcdCluster(1, max_request_bytes=64 * 1024) as cluster:
        store = EtcdStore(cluster.endpoints, compact_interval=None)
        await store.start()
        s = APIServer(ServerConfig(max_object_bytes=1024 * 1024), store=store)
        await s.start()
        try:
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                  "data": {"k": "x" * 200_000}}
            status, out = await send(s.url, "POST", "/api/v1/namespaces/default/configmaps", cm)
            assert (status, out["reason"]) == (413, "RequestEntityTooLarge")
            assert "too large" in out["message"]
        finally:
            await s.stop()
            await store.close()


def _stored_deployment() -> dict[str, Any]:
    d = deployment("d", 2)
    d["spec"]["paused"] = True
    d["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    return d


def _changed(path: list[Any], value: Any) -> dict[str, Any]:
    d = _stored_deployment()
    node: Any = d
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return d


CONTAINER = ["spec", "template", "spec", "containers", 0]


@pytest.mark.parametrize("obj", [
    _stored_deployment(),
    _changed(["spec", "paused"], 1),  # equal to True in Python, still the wrong JSON type
    _changed(["spec", "replicas"], 2.0),
    _changed(["spec", "replicas"], "2"),
    _changed([*CONTAINER, "resources"], {"limits": {"cpu": "lots"}}),
    _changed([*CONTAINER, "bogus"], 1),
    _changed([*CONTAINER, "ports"], [{"containerPort": "80", "extra": True}]),
    _changed(["metadata", "labels"], {"a": 1}),
], ids=["unchanged", "bool-as-1", "int-as-float", "string-replicas", "bad-quantity", "unknown-field",
        "port-type-and-unknown", "label-number"])
def test_field_problems_with_and_without_the_stored_object(obj: dict[str, Any]) -> None:
    """One walk gives what unknown_fields and type_errors give, and skipping the parts equal to
    the stored object never hides a problem."""
    from sliceplane.api import schema

    info = registry.DEPLOYMENTS
    stored = _stored_deployment()
    assert schema.field_problems(info, stored) == ([], [])
    expected = (schema.unknown_fields(info, obj), schema.type_errors(info, obj))
    assert schema.field_problems(info, obj) == expected
    assert schema.field_problems(info, obj, stored) == expected
