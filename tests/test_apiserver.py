"""The API server over the memory store, driven over HTTP like kubectl and the client libraries do."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from sliceplane.apiserver.app import APIServer
from sliceplane.apiserver.config import ServerConfig
from sliceplane.store.memory import MemoryStore

Json = dict[str, Any]


class Client:
    """Tiny HTTP helper: returns (status, decoded JSON body)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def req(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                  raw: bytes | None = None, params: dict[str, str] | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        async with self.session.request(method, self.base + path, data=data, headers=h, params=params) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, out = await self.req(method, path, body, **kw)
        assert status in (200, 201), (status, out)
        return out

    async def watch(self, path: str, n: int, *, params: dict[str, str] | None = None,
                    headers: dict[str, str] | None = None, trigger: Callable[[], Awaitable[Any]] | None = None,
                    ) -> list[Json]:
        """Open a watch, optionally run `trigger` once it is open, and collect `n` events."""
        events: list[Json] = []
        async with self.session.get(self.base + path, params={"watch": "true", **(params or {})},
                                    headers=headers or {}) as r:
            assert r.status == 200
            task = asyncio.create_task(trigger()) if trigger else None
            while len(events) < n:
                line = await asyncio.wait_for(r.content.readline(), 10)
                if not line:
                    break
                events.append(json.loads(line))
            if task:
                await task
        return events


def pod(name: str, labels: dict[str, str] | None = None, node: str | None = None, **spec: Any) -> Json:
    s: Json = {"containers": [{"name": "c", "image": "nginx"}], **spec}
    if node:
        s["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": s}


def deployment(name: str, replicas: int = 1) -> Json:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def service(name: str, **spec: Any) -> Json:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}], **spec}}


PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., Awaitable[tuple[APIServer, Client]]]]:
    servers: list[APIServer] = []
    session = aiohttp.ClientSession()

    async def make(store: MemoryStore | None = None, **cfg: Any) -> tuple[APIServer, Client]:
        s = APIServer(ServerConfig(**cfg), store=store)
        await s.start()
        servers.append(s)
        return s, Client(session, s.url)

    yield make
    await session.close()
    for s in servers:
        await s.stop()


@pytest.fixture
async def api(make_server: Any) -> Client:
    _, client = await make_server()
    return client


# ---- discovery ----------------------------------------------------------------------------

async def test_version_and_health(api: Client) -> None:
    v = await api.ok("GET", "/version")
    assert (v["major"], v["minor"]) == ("1", "32")
    assert v["gitVersion"].startswith("v1.32.")
    for path in ("/healthz", "/readyz", "/livez"):
        status, body = await api.req("GET", path)
        assert (status, body) == (200, "ok")


async def test_discovery_documents(api: Client) -> None:
    apis = await api.ok("GET", "/api")
    assert apis["kind"] == "APIVersions" and apis["versions"] == ["v1"]
    groups = await api.ok("GET", "/apis")
    names = [g["name"] for g in groups["groups"]]
    assert {"apps", "discovery.k8s.io", "coordination.k8s.io"} <= set(names)
    core = await api.ok("GET", "/api/v1")
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["shortNames"] == ["po"] and by_name["pods"]["namespaced"] is True
    assert "watch" in by_name["pods"]["verbs"] and by_name["pods"]["categories"] == ["all"]
    assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["pods/binding"]["kind"] == "Binding"
    eviction = by_name["pods/eviction"]  # what kubectl drain looks for
    assert (eviction["group"], eviction["version"], eviction["kind"], eviction["verbs"]) == (
        "policy", "v1", "Eviction", ["create"])
    assert by_name["namespaces"]["namespaced"] is False
    apps = await api.ok("GET", "/apis/apps/v1")
    scale = {r["name"]: r for r in apps["resources"]}["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    status, body = await api.req("GET", "/apis/nope.example.com/v1")
    assert (status, body["reason"]) == (404, "NotFound")


async def test_system_namespaces_exist(api: Client) -> None:
    lst = await api.ok("GET", "/api/v1/namespaces")
    names = [n["metadata"]["name"] for n in lst["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]


# ---- CRUD ---------------------------------------------------------------------------------

async def test_create_get_update_delete(api: Client) -> None:
    created = await api.ok("POST", PODS, pod("web", {"app": "web"}))
    md = created["metadata"]
    assert md["namespace"] == "default" and len(md["uid"]) == 36 and md["creationTimestamp"].endswith("Z")
    assert int(md["resourceVersion"]) > 0
    got = await api.ok("GET", f"{PODS}/web")
    assert got == created
    got["metadata"]["labels"]["tier"] = "front"
    updated = await api.ok("PUT", f"{PODS}/web", got)
    assert updated["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert int(updated["metadata"]["resourceVersion"]) > int(md["resourceVersion"])
    assert updated["metadata"]["uid"] == md["uid"]
    all_ns = await api.ok("GET", "/api/v1/pods")
    assert [p["metadata"]["name"] for p in all_ns["items"]] == ["web"]
    assert all_ns["kind"] == "PodList" and all_ns["metadata"]["resourceVersion"]
    deleted = await api.ok("DELETE", f"{PODS}/web")
    assert deleted["metadata"]["name"] == "web"
    status, body = await api.req("GET", f"{PODS}/web")
    assert status == 404 and body["message"] == 'pods "web" not found' and body["reason"] == "NotFound"


async def test_empty_list_has_items_array(api: Client) -> None:
    lst = await api.ok("GET", "/apis/apps/v1/namespaces/default/deployments")
    assert lst["items"] == [] and lst["kind"] == "DeploymentList" and lst["apiVersion"] == "apps/v1"


async def test_yaml_body_and_generate_name(api: Client) -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: cfg-\ndata:\n  a: b\n"
    created = await api.ok("POST", "/api/v1/namespaces/default/configmaps", raw=body,
                           headers={"Content-Type": "application/yaml"})
    name = created["metadata"]["name"]
    assert name.startswith("cfg-") and len(name) == len("cfg-") + 5
    assert created["data"] == {"a": "b"}


async def test_generation_tracks_spec_changes(api: Client) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments"
    d = await api.ok("POST", path, deployment("web"))
    assert d["metadata"]["generation"] == 1
    d["metadata"]["labels"] = {"x": "y"}
    d = await api.ok("PUT", f"{path}/web", d)
    assert d["metadata"]["generation"] == 1
    d["spec"]["replicas"] = 3
    d = await api.ok("PUT", f"{path}/web", d)
    assert d["metadata"]["generation"] == 2


async def test_noop_update_keeps_resource_version(api: Client) -> None:
    created = await api.ok("POST", PODS, pod("same"))
    again = await api.ok("PUT", f"{PODS}/same", created)
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_dry_run_stores_nothing(api: Client) -> None:
    out = await api.ok("POST", PODS, pod("dry"), params={"dryRun": "All"})
    assert out["metadata"]["name"] == "dry"
    status, _ = await api.req("GET", f"{PODS}/dry")
    assert status == 404


# ---- errors -------------------------------------------------------------------------------

ERROR_CASES = [
    ("malformed-json", "POST", PODS, b"{not json", 400, "BadRequest", "json parse error"),
    ("kind-mismatch", "POST", PODS, json.dumps({**service("s"), "metadata": {"name": "x"}}).encode(), 400,
     "BadRequest", "does not match the expected kind (Pod)"),
    ("namespace-mismatch", "POST", PODS,
     json.dumps({**pod("x"), "metadata": {"name": "x", "namespace": "other"}}).encode(), 400, "BadRequest",
     "the namespace of the provided object does not match the namespace sent on the request"),
    ("missing-namespace", "POST", "/api/v1/namespaces/nope/pods", json.dumps(pod("x")).encode(), 404,
     "NotFound", 'namespaces "nope" not found'),
    ("no-name", "POST", PODS, json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {}}).encode(), 422,
     "Invalid", "name or generateName is required"),
    ("put-missing", "PUT", f"{PODS}/ghost", json.dumps(pod("ghost")).encode(), 404, "NotFound",
     'pods "ghost" not found'),
    ("unknown-path", "GET", "/api/v1/nothings", None, 404, "NotFound", "could not find the requested resource"),
    ("post-to-named", "POST", f"{PODS}/x", json.dumps(pod("x")).encode(), 405, "MethodNotAllowed", "not allow"),
    ("unsupported-verb", "DELETE", "/api/v1/namespaces", None, 405, "MethodNotAllowed", "not allow"),
    ("apply-patch", "PATCH", f"{PODS}/x", b"{}", 415, "UnsupportedMediaType", ""),
]


@pytest.mark.parametrize(("method", "path", "body", "code", "reason", "text"),
                         [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
async def test_errors_are_status_objects(api: Client, method: str, path: str, body: bytes | None, code: int,
                                         reason: str, text: str) -> None:
    headers = {"Content-Type": "application/apply-patch+yaml"} if method == "PATCH" else None
    status, out = await api.req(method, path, raw=body, headers=headers)
    assert status == code, out
    assert out["kind"] == "Status" and out["status"] == "Failure"
    assert out["code"] == code and out["reason"] == reason
    assert text in out["message"]


async def test_already_exists(api: Client) -> None:
    await api.ok("POST", PODS, pod("dup"))
    status, out = await api.req("POST", PODS, pod("dup"))
    assert (status, out["reason"], out["message"]) == (409, "AlreadyExists", 'pods "dup" already exists')


async def test_stale_update_conflicts(api: Client) -> None:
    first = await api.ok("POST", PODS, pod("c"))
    newer = {**first, "metadata": {**first["metadata"], "labels": {"v": "2"}}}
    await api.ok("PUT", f"{PODS}/c", newer)
    stale = {**first, "metadata": {**first["metadata"], "labels": {"v": "3"}}}
    status, out = await api.req("PUT", f"{PODS}/c", stale)
    assert status == 409 and out["reason"] == "Conflict"
    assert out["message"] == ('Operation cannot be fulfilled on pods "c": the object has been modified; '
                              "please apply your changes to the latest version and try again")
    unconditional = {**stale, "metadata": {k: v for k, v in stale["metadata"].items() if k != "resourceVersion"}}
    out = await api.ok("PUT", f"{PODS}/c", unconditional)
    assert out["metadata"]["labels"] == {"v": "3"}


async def test_request_and_object_size_limits(make_server: Any) -> None:
    _, api = await make_server(max_object_bytes=2000, max_request_bytes=10_000)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": "x" * 3000}}
    status, out = await api.req("POST", "/api/v1/namespaces/default/configmaps", cm)
    assert (status, out["reason"]) == (413, "RequestEntityTooLarge")
    assert "exceeds the limit of 2000 bytes" in out["message"]
    cm["data"]["k"] = "x" * 20_000
    status, out = await api.req("POST", "/api/v1/namespaces/default/configmaps", cm)
    assert (status, out["reason"]) == (413, "RequestEntityTooLarge")
    assert "limit is 10000" in out["message"]


# ---- subresources -------------------------------------------------------------------------

async def test_status_subresource_semantics(api: Client) -> None:
    created = await api.ok("POST", PODS, pod("s"))
    assert created["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    body = {**created, "status": {"phase": "Running"}, "metadata": {**created["metadata"], "labels": {"a": "b"}}}
    main = await api.ok("PUT", f"{PODS}/s", body)
    assert main["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert main["metadata"]["labels"] == {"a": "b"}
    body = {**main, "status": {"phase": "Running"}, "spec": {**main["spec"], "nodeName": "n1"}}
    body["metadata"] = {**main["metadata"], "labels": {"changed": "yes"}}
    st = await api.ok("PUT", f"{PODS}/s/status", body)
    assert st["status"] == {"phase": "Running"}
    assert "nodeName" not in st["spec"] and st["metadata"]["labels"] == {"a": "b"}
    assert (await api.ok("GET", f"{PODS}/s/status"))["status"] == {"phase": "Running"}


async def test_scale_subresource(api: Client) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments"
    await api.ok("POST", path, deployment("web", 2))
    scale = await api.ok("GET", f"{path}/web/scale")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2} and scale["status"]["selector"] == "app=web"
    scale["spec"]["replicas"] = 5
    out = await api.ok("PUT", f"{path}/web/scale", scale)
    assert out["spec"]["replicas"] == 5
    d = await api.ok("GET", f"{path}/web")
    assert d["spec"]["replicas"] == 5 and d["metadata"]["generation"] == 2


SCALE_BODY_ERRORS = [
    ("other-name", {"metadata": {"name": "other"}, "spec": {"replicas": 2}}, "",
     "the name of the object (other) does not match the name on the URL (web)"),
    ("other-namespace", {"metadata": {"name": "web", "namespace": "kube-system"}, "spec": {"replicas": 2}}, "",
     "the namespace of the provided object does not match the namespace sent on the request"),
    ("string-replicas", {"metadata": {"name": "web"}, "spec": {"replicas": "x"}}, "",
     'Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal string into Go struct field '
     "ScaleSpec.spec.replicas of type int32"),
    ("strict-unknown", {"metadata": {"name": "web"}, "spec": {"replicas": 2, "bogus": 1}}, "?fieldValidation=Strict",
     'Scale in version "v1" cannot be handled as a Scale: strict decoding error: unknown field "spec.bogus"'),
]


@pytest.mark.parametrize(("body", "query", "message"), [c[1:] for c in SCALE_BODY_ERRORS],
                         ids=[c[0] for c in SCALE_BODY_ERRORS])
async def test_scale_body_errors(api: Client, body: Json, query: str, message: str) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments"
    await api.ok("POST", path, deployment("web", 3))
    status, out = await api.req("PUT", f"{path}/web/scale{query}",
                                {"apiVersion": "autoscaling/v1", "kind": "Scale", **body})
    assert (status, out["reason"], out["message"]) == (400, "BadRequest", message)
    assert (await api.ok("GET", f"{path}/web"))["spec"]["replicas"] == 3


async def test_binding(api: Client) -> None:
    await api.ok("POST", PODS, pod("b"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    status, out = await api.req("POST", f"{PODS}/b/binding", binding)
    assert (status, out["status"]) == (201, "Success")
    p = await api.ok("GET", f"{PODS}/b")
    assert p["spec"]["nodeName"] == "node-1"
    assert [c["type"] for c in p["status"]["conditions"]] == ["PodScheduled"]
    status, out = await api.req("POST", f"{PODS}/b/binding", binding)
    assert status == 409 and 'pod b is already assigned to node "node-1"' in out["message"]


def eviction(name: str, **delete_options: Any) -> Json:
    out: Json = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}
    if delete_options:
        out["deleteOptions"] = delete_options
    return out


async def test_eviction_marks_and_deletes_the_pod(api: Client) -> None:
    await api.ok("POST", PODS, pod("e", node="n1", terminationGracePeriodSeconds=30))
    status, out = await api.req("POST", f"{PODS}/e/eviction", eviction("e"))
    assert (status, out["kind"], out["status"], out["code"]) == (201, "Status", "Success", 201)
    p = await api.ok("GET", f"{PODS}/e")
    assert p["metadata"]["deletionGracePeriodSeconds"] == 30
    target = next(c for c in p["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (target["status"], target["reason"], target["message"]) == (
        "True", "EvictionByEvictionAPI", "Eviction API: evicting")
    # The Eviction's deleteOptions apply: a zero grace period removes it now.
    assert (await api.req("POST", f"{PODS}/e/eviction", eviction("e", gracePeriodSeconds=0)))[0] == 201
    assert (await api.req("GET", f"{PODS}/e"))[0] == 404


EVICTION_ERRORS = [
    ("name-mismatch", "POST", "e", eviction("other"), 400, "BadRequest",
     "name in URL does not match name in Eviction object"),
    ("no-name", "POST", "e", {"apiVersion": "policy/v1", "kind": "Eviction"}, 400, "BadRequest",
     "name in URL does not match name in Eviction object"),
    ("namespace-mismatch", "POST", "e", {**eviction("e"), "metadata": {"name": "e", "namespace": "kube-system"}},
     400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request"),
    ("missing-pod", "POST", "nope", eviction("nope"), 404, "NotFound", 'pods "nope" not found'),
    ("uid-precondition", "POST", "e", eviction("e", preconditions={"uid": "not-its-uid"}), 409, "Conflict",
     "Precondition failed: UID in precondition: not-its-uid"),
    ("bad-propagation", "POST", "e", eviction("e", propagationPolicy="Sideways"), 422, "Invalid",
     'Unsupported value: "Sideways"'),
    ("other-version", "POST", "e", {**eviction("e"), "apiVersion": "apps/v1"}, 400, "BadRequest",
     'no kind "Eviction" is registered for version "apps/v1"'),
    ("strict-unknown", "POST", "e?fieldValidation=Strict", {**eviction("e", bogus2=2), "bogus": 1}, 400, "BadRequest",
     'Eviction in version "v1" cannot be handled as a Eviction: strict decoding error: unknown field "bogus", '
     'unknown field "deleteOptions.bogus2"'),
    ("orphan-and-propagation", "POST", "e", eviction("e", orphanDependents=True, propagationPolicy="Background"),
     422, "Invalid", 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Background": '
     "orphanDependents and deletionPropagation cannot be both set"),
    ("dry-run-string", "POST", "e", eviction("e", dryRun="All"), 400, "BadRequest",
     "json: cannot unmarshal string into Go struct field DeleteOptions.dryRun of type []string"),
    ("dry-run-unsupported", "POST", "e", eviction("e", dryRun=["Bogus"]), 400, "BadRequest",
     'dryRun: Unsupported value: []string{"Bogus"}: supported values: "All"'),
    ("get", "GET", "e", None, 405, "MethodNotAllowed", "the server does not allow this method"),
    ("delete", "DELETE", "e", None, 405, "MethodNotAllowed", "the server does not allow this method"),
]


@pytest.mark.parametrize(("method", "name", "body", "code", "reason", "message"), [c[1:] for c in EVICTION_ERRORS],
                         ids=[c[0] for c in EVICTION_ERRORS])
async def test_eviction_errors(api: Client, method: str, name: str, body: Json | None, code: int, reason: str,
                               message: str) -> None:
    await api.ok("POST", PODS, pod("e", node="n1"))
    name, _, query = name.partition("?")
    status, out = await api.req(method, f"{PODS}/{name}/eviction" + (f"?{query}" if query else ""), body)
    assert (status, out["reason"]) == (code, reason), out
    assert message in out["message"]
    p = await api.ok("GET", f"{PODS}/e")  # still there, untouched
    assert not p["metadata"].get("deletionTimestamp")
    assert "DisruptionTarget" not in [c["type"] for c in p.get("status", {}).get("conditions", [])]


async def test_eviction_dry_run(api: Client) -> None:
    await api.ok("POST", PODS, pod("e", node="n1"))
    for path, body in ((f"{PODS}/e/eviction?dryRun=All", eviction("e")),
                       (f"{PODS}/e/eviction", eviction("e", dryRun=["All"]))):
        status, _ = await api.req("POST", path, body)
        assert status == 201
    p = await api.ok("GET", f"{PODS}/e")
    assert not p["metadata"].get("deletionTimestamp")
    assert "DisruptionTarget" not in [c["type"] for c in p.get("status", {}).get("conditions", [])]


# ---- deletion -----------------------------------------------------------------------------

async def test_graceful_pod_deletion(api: Client) -> None:
    await api.ok("POST", PODS, pod("bound", node="n1", terminationGracePeriodSeconds=30))
    out = await api.ok("DELETE", f"{PODS}/bound")
    assert out["metadata"]["deletionGracePeriodSeconds"] == 30 and out["metadata"]["deletionTimestamp"]
    still = await api.ok("GET", f"{PODS}/bound")
    assert still["metadata"]["deletionTimestamp"] == out["metadata"]["deletionTimestamp"]
    # the kubelet's status writes during the grace period keep the pod
    still["status"] = {"phase": "Running"}
    await api.ok("PUT", f"{PODS}/bound/status", still)
    assert (await api.ok("GET", f"{PODS}/bound"))["status"] == {"phase": "Running"}
    await api.ok("DELETE", f"{PODS}/bound", params={"gracePeriodSeconds": "0"})
    assert (await api.req("GET", f"{PODS}/bound"))[0] == 404
    await api.ok("POST", PODS, pod("unbound"))
    await api.ok("DELETE", f"{PODS}/unbound")
    assert (await api.req("GET", f"{PODS}/unbound"))[0] == 404


async def test_finalizers_hold_deletion(api: Client) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f", "finalizers": ["example.com/x"]}}
    await api.ok("POST", path, cm)
    out = await api.ok("DELETE", f"{path}/f")
    assert out["metadata"]["deletionTimestamp"]
    held = await api.ok("GET", f"{path}/f")
    held["metadata"]["finalizers"] = []
    await api.ok("PUT", f"{path}/f", held)
    assert (await api.req("GET", f"{path}/f"))[0] == 404


@pytest.mark.parametrize(("policy", "finalizer"), [("Foreground", "foregroundDeletion"), ("Orphan", "orphan")],
                         ids=["foreground", "orphan"])
async def test_propagation_policy_finalizers(api: Client, policy: str, finalizer: str) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments"
    await api.ok("POST", path, deployment("d"))
    out = await api.ok("DELETE", f"{path}/d", {"kind": "DeleteOptions", "apiVersion": "v1",
                                                 "propagationPolicy": policy})
    assert out["metadata"]["finalizers"] == [finalizer] and out["metadata"]["deletionTimestamp"]


async def test_delete_preconditions(api: Client) -> None:
    await api.ok("POST", PODS, pod("pre"))
    status, out = await api.req("DELETE", f"{PODS}/pre", {"preconditions": {"uid": "wrong"}})
    assert status == 409 and "Precondition failed: UID in precondition: wrong" in out["message"]


async def test_delete_collection_with_selector(api: Client) -> None:
    for name, tier in (("a", "front"), ("b", "front"), ("c", "back")):
        await api.ok("POST", PODS, pod(name, {"tier": tier}))
    out = await api.ok("DELETE", PODS, params={"labelSelector": "tier=front"})
    assert sorted(p["metadata"]["name"] for p in out["items"]) == ["a", "b"]
    left = await api.ok("GET", PODS)
    assert [p["metadata"]["name"] for p in left["items"]] == ["c"]


async def test_namespace_deletion(api: Client) -> None:
    await api.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": "team"}, "spec": {"finalizers": ["kubernetes"]}})
    await api.ok("POST", "/api/v1/namespaces/team/pods", pod("p"))
    out = await api.ok("DELETE", "/api/v1/namespaces/team")
    assert out["status"]["phase"] == "Terminating" and out["metadata"]["deletionTimestamp"]
    status, err = await api.req("POST", "/api/v1/namespaces/team/pods", pod("q"))
    assert status == 403 and err["reason"] == "Forbidden"
    assert "unable to create new content in namespace team because it is being terminated" in err["message"]
    ns = await api.ok("GET", "/api/v1/namespaces/team")
    ns["spec"]["finalizers"] = []
    await api.ok("PUT", "/api/v1/namespaces/team/finalize", ns)
    assert (await api.req("GET", "/api/v1/namespaces/team"))[0] == 404


# ---- list selectors -----------------------------------------------------------------------

SELECTOR_CASES = [
    ("label-eq", {"labelSelector": "tier=front"}, ["a", "b"]),
    ("label-in", {"labelSelector": "tier in (back)"}, ["c"]),
    ("label-exists-not", {"labelSelector": "!tier"}, ["d"]),
    ("field-name", {"fieldSelector": "metadata.name=c"}, ["c"]),
    ("field-node", {"fieldSelector": "spec.nodeName=n1"}, ["b"]),
    ("both", {"labelSelector": "tier=front", "fieldSelector": "metadata.name!=a"}, ["b"]),
]


@pytest.mark.parametrize(("params", "names"), [c[1:] for c in SELECTOR_CASES], ids=[c[0] for c in SELECTOR_CASES])
async def test_list_selectors(api: Client, params: dict[str, str], names: list[str]) -> None:
    await api.ok("POST", PODS, pod("a", {"tier": "front"}))
    await api.ok("POST", PODS, pod("b", {"tier": "front"}, node="n1"))
    await api.ok("POST", PODS, pod("c", {"tier": "back"}))
    await api.ok("POST", PODS, pod("d"))
    out = await api.ok("GET", PODS, params=params)
    assert [p["metadata"]["name"] for p in out["items"]] == names


async def test_bad_selector_is_400(api: Client) -> None:
    status, out = await api.req("GET", PODS, params={"fieldSelector": "spec.bogus=1"})
    assert status == 400 and "field label not supported: spec.bogus" in out["message"]


# ---- services -----------------------------------------------------------------------------

SVC = "/api/v1/namespaces/default/services"


async def test_service_allocations(api: Client) -> None:
    s = await api.ok("POST", SVC, service("web"))
    ip = s["spec"]["clusterIP"]
    assert ip.startswith("10.") and s["spec"]["clusterIPs"] == [ip] and s["spec"]["ipFamilies"] == ["IPv4"]
    np = await api.ok("POST", SVC, service("np", type="NodePort"))
    assert 30000 <= np["spec"]["ports"][0]["nodePort"] <= 32767
    headless = await api.ok("POST", SVC, service("hl", clusterIP="None"))
    assert headless["spec"]["clusterIP"] == "None"
    status, out = await api.req("POST", SVC, service("taken", clusterIP=ip))
    assert status == 422 and "provided IP is already allocated" in out["message"]
    status, out = await api.req("POST", SVC, service("far", clusterIP="192.168.0.1"))
    assert status == 422 and "not in the valid range" in out["message"]
    await api.ok("DELETE", f"{SVC}/web")
    again = await api.ok("POST", SVC, service("web2", clusterIP=ip))
    assert again["spec"]["clusterIP"] == ip


async def test_allocations_rebuilt_on_restart(make_server: Any) -> None:
    store = MemoryStore()
    first, api1 = await make_server(store=store)
    s = await api1.ok("POST", SVC, service("web"))
    await first.stop()
    _, api2 = await make_server(store=store)
    status, out = await api2.req("POST", SVC, service("copy", clusterIP=s["spec"]["clusterIP"]))
    assert status == 422 and "already allocated" in out["message"]


# ---- watch --------------------------------------------------------------------------------

async def test_watch_initial_state_then_changes(api: Client) -> None:
    await api.ok("POST", PODS, pod("w1"))

    async def change() -> None:
        await asyncio.sleep(0.05)
        await api.ok("POST", PODS, pod("w2"))
        await api.ok("DELETE", f"{PODS}/w1")

    events = await api.watch(PODS, 3, trigger=change)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w1"), ("ADDED", "w2"), ("DELETED", "w1")]
    assert int(events[2]["object"]["metadata"]["resourceVersion"]) > int(
        events[1]["object"]["metadata"]["resourceVersion"])


async def test_watch_from_resource_version(api: Client) -> None:
    first = await api.ok("POST", PODS, pod("r1"))
    await api.ok("POST", PODS, pod("r2"))
    rv = first["metadata"]["resourceVersion"]
    events = await api.watch(PODS, 1, params={"resourceVersion": rv})
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "r2")]


async def test_watch_too_old_resource_version_gets_410(make_server: Any) -> None:
    _, api = await make_server(watch_cache_capacity=3)
    first = await api.ok("POST", PODS, pod("o0"))
    for i in range(1, 6):
        await api.ok("POST", PODS, pod(f"o{i}"))
    events = await api.watch(PODS, 1, params={"resourceVersion": first["metadata"]["resourceVersion"]})
    assert events[0]["type"] == "ERROR"
    st = events[0]["object"]
    assert (st["code"], st["reason"]) == (410, "Expired")
    assert st["message"].startswith(f"too old resource version: {first['metadata']['resourceVersion']} (")


async def test_watch_bookmarks(make_server: Any) -> None:
    _, api = await make_server(bookmark_interval=0.05)
    created = await api.ok("POST", PODS, pod("bm"))
    events = await api.watch(PODS, 1, params={"allowWatchBookmarks": "true",
                                              "resourceVersion": created["metadata"]["resourceVersion"]})
    assert events[0] == {"type": "BOOKMARK", "object": {
        "kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}}}


async def test_watch_selector_transitions(api: Client) -> None:
    created = await api.ok("POST", PODS, pod("t", {"tier": "back"}))

    async def relabel() -> None:
        await asyncio.sleep(0.05)
        p = await api.ok("GET", f"{PODS}/t")
        p["metadata"]["labels"] = {"tier": "front"}
        p = await api.ok("PUT", f"{PODS}/t", p)
        p["metadata"]["labels"] = {"tier": "back"}
        await api.ok("PUT", f"{PODS}/t", p)

    events = await api.watch(PODS, 2, params={"labelSelector": "tier=front",
                                              "resourceVersion": created["metadata"]["resourceVersion"]},
                             trigger=relabel)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]
    assert events[1]["object"]["metadata"]["labels"] == {"tier": "front"}


async def test_watch_timeout_seconds_ends_stream(api: Client) -> None:
    events = await api.watch(PODS, 5, params={"timeoutSeconds": "1"})
    assert events == []


async def test_watch_event_serialized_once_for_many_watchers(make_server: Any) -> None:
    server, api = await make_server()
    metrics = server.state.metrics
    n = 4

    async def one() -> list[Json]:
        return await api.watch(PODS, 1, params={"resourceVersion": "1"})

    before = metrics.value("sliceplane_watch_event_serializations_total", resource="pods")
    tasks = [asyncio.create_task(one()) for _ in range(n)]
    while server.state.cache.watcher_count() < n:
        await asyncio.sleep(0.01)
    await api.ok("POST", PODS, pod("fan"))
    results = await asyncio.gather(*tasks)
    assert all(r[0]["object"]["metadata"]["name"] == "fan" for r in results)
    assert metrics.value("sliceplane_watch_event_serializations_total", resource="pods") - before == 1
    assert metrics.value("sliceplane_watch_events_sent_total", resource="pods") >= n


async def test_metrics_endpoint(api: Client) -> None:
    await api.ok("POST", PODS, pod("m"))
    status, text = await api.req("GET", "/metrics")
    assert status == 200
    assert 'apiserver_request_total{code="201",resource="pods",subresource="",verb="create"} 1.0' in text
    assert 'sliceplane_store_writes_total{operation="create",resource="pods"} 1.0' in text


# ---- tables, field validation, patches ------------------------------------------------------

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def test_table_list_and_get(api: Client) -> None:
    await api.ok("POST", PODS, pod("web", node="n1"))
    table = await api.ok("GET", PODS, headers={"Accept": TABLE})
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"]["resourceVersion"]
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:2] == ["Name", "Ready"] and "Node" in names
    assert table["rows"][0]["cells"][0] == "web"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    one = await api.ok("GET", f"{PODS}/web", headers={"Accept": TABLE}, params={"includeObject": "Object"})
    assert one["rows"][0]["object"]["kind"] == "Pod"


async def test_table_watch_sends_one_row_tables(api: Client) -> None:
    await api.ok("POST", PODS, pod("tw"))
    events = await api.watch(PODS, 1, headers={"Accept": TABLE})
    assert events[0]["type"] == "ADDED"
    assert events[0]["object"]["kind"] == "Table" and len(events[0]["object"]["rows"]) == 1
    assert events[0]["object"]["rows"][0]["cells"][0] == "tw"


FIELD_VALIDATION_CASES = [
    ("strict", "Strict", 400, None),
    ("warn", "Warn", 201, 'unknown field \\"spec.bogus\\"'),
    ("ignore", "Ignore", 201, None),
]


async def test_strict_unknown_field_in_a_patch_is_not_a_decode_error(api: Client) -> None:
    await api.ok("POST", PODS, pod("fvp"))
    status, out = await api.req("PATCH", f"{PODS}/fvp?fieldValidation=Strict", {"spec": {"bogus": 1}},
                                headers={"Content-Type": "application/merge-patch+json"})
    assert (status, out["reason"], out["message"]) == (400, "BadRequest",
                                                       'strict decoding error: unknown field "spec.bogus"')


@pytest.mark.parametrize(("mode", "code", "warning"), [c[1:] for c in FIELD_VALIDATION_CASES],
                         ids=[c[0] for c in FIELD_VALIDATION_CASES])
async def test_field_validation(api: Client, mode: str, code: int, warning: str | None) -> None:
    body = pod("fv")
    body["spec"]["bogus"] = 1
    async with api.session.post(api.base + PODS, json=body, params={"fieldValidation": mode}) as r:
        out = await r.json()
        assert r.status == code, out
        warnings = r.headers.getall("Warning", [])
    if code == 400:
        assert out["message"] == ('Pod in version "v1" cannot be handled as a Pod: '
                                  'strict decoding error: unknown field "spec.bogus"')
        return
    assert "bogus" not in out["spec"]
    assert warnings == ([f'299 - "{warning}"'] if warning else [])


PATCH_CASES = [
    ("merge", "application/merge-patch+json", {"metadata": {"labels": {"b": "2"}}}, {"a": "1", "b": "2"}),
    ("strategic", "application/strategic-merge-patch+json", {"metadata": {"labels": {"a": None}}}, {}),
    ("json", "application/json-patch+json", [{"op": "add", "path": "/metadata/labels/c", "value": "3"}],
     {"a": "1", "c": "3"}),
]


@pytest.mark.parametrize(("ctype", "patch", "labels"), [c[1:] for c in PATCH_CASES], ids=[c[0] for c in PATCH_CASES])
async def test_patch_types(api: Client, ctype: str, patch: Any, labels: dict[str, str]) -> None:
    await api.ok("POST", PODS, pod("pt", {"a": "1"}))
    out = await api.ok("PATCH", f"{PODS}/pt", raw=json.dumps(patch).encode(), headers={"Content-Type": ctype})
    assert (out["metadata"].get("labels") or {}) == labels


async def test_patch_status_and_scale(api: Client) -> None:
    await api.ok("POST", PODS, pod("ps"))
    merge = {"Content-Type": "application/merge-patch+json"}
    out = await api.ok("PATCH", f"{PODS}/ps/status", raw=b'{"status":{"phase":"Running"},"spec":{"nodeName":"x"}}',
                       headers=merge)
    assert out["status"]["phase"] == "Running" and "nodeName" not in out["spec"]
    path = "/apis/apps/v1/namespaces/default/deployments"
    await api.ok("POST", path, deployment("sc", 1))
    scale = await api.ok("PATCH", f"{path}/sc/scale", raw=b'{"spec":{"replicas":4}}', headers=merge)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 4
    assert (await api.ok("GET", f"{path}/sc"))["spec"]["replicas"] == 4


async def test_patch_with_stale_resource_version_conflicts(api: Client) -> None:
    created = await api.ok("POST", PODS, pod("pc"))
    await api.ok("PATCH", f"{PODS}/pc", raw=b'{"metadata":{"labels":{"x":"1"}}}',
                 headers={"Content-Type": "application/merge-patch+json"})
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"], "labels": {"x": "2"}}}
    status, out = await api.req("PATCH", f"{PODS}/pc", stale, headers={"Content-Type": "application/merge-patch+json"})
    assert (status, out["reason"]) == (409, "Conflict")


async def test_service_type_change_releases_node_ports(api: Client) -> None:
    np = await api.ok("POST", SVC, service("tc", type="NodePort"))
    port = np["spec"]["ports"][0]["nodePort"]
    np["spec"]["type"] = "ClusterIP"
    out = await api.ok("PUT", f"{SVC}/tc", np)
    assert "nodePort" not in out["spec"]["ports"][0]
    assert out["spec"]["clusterIP"] == np["spec"]["clusterIP"]
    other = await api.ok("POST", SVC, {**service("tc2", type="NodePort"),
                                       "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}})
    assert other["spec"]["ports"][0]["nodePort"] == port


async def test_dual_stack_service(make_server: Any) -> None:
    _, api = await make_server(service_cidr_v6="fd00:10:96::/108")
    out = await api.ok("POST", SVC, service("ds", ipFamilyPolicy="PreferDualStack"))
    assert out["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    v4, v6 = out["spec"]["clusterIPs"]
    assert v4.startswith("10.") and v6.startswith("fd00:10:96::")


DUAL = "fd00:10:96::/112"
BOTH = ["IPv4", "IPv6"]
NOT_DUAL = "this cluster is not configured for dual-stack services"


@pytest.mark.parametrize(("v6_range", "spec", "want"), [
    (None, {"ipFamilyPolicy": "RequireDualStack"}, ("RequireDualStack", NOT_DUAL)),
    (None, {"ipFamilyPolicy": "PreferDualStack"}, ("PreferDualStack", ["IPv4"])),  # settles for one family
    (None, {"ipFamilies": BOTH}, ("RequireDualStack", NOT_DUAL,  # two families, no policy: both required
                                  ("spec.ipFamilies[1]", 'Invalid value: "IPv6": not configured on this cluster'))),
    (DUAL, {"ipFamilyPolicy": "RequireDualStack"}, ("RequireDualStack", BOTH)),
    (DUAL, {"ipFamilyPolicy": "SingleStack"}, ("SingleStack", ["IPv4"])),
    (DUAL, {"ipFamilies": ["IPv6", "IPv4"]}, ("RequireDualStack", ["IPv6", "IPv4"])),
    (DUAL, {"ipFamilyPolicy": "SingleStack", "ipFamilies": BOTH},
     ("SingleStack", "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified")),
    (DUAL, {"ipFamilyPolicy": "SingleStack", "clusterIPs": ["10.96.100.100", "fd00:10:96::100"]},
     ("SingleStack", "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified")),
    (DUAL, {"clusterIPs": ["10.96.100.101", "fd00:10:96::101"]}, ("RequireDualStack", BOTH)),
    (None, {"clusterIP": "None", "selector": None}, ("RequireDualStack", BOTH)),  # selectorless: both, always
    (None, {"clusterIP": "None", "selector": None, "ipFamilyPolicy": "SingleStack"}, ("SingleStack", ["IPv4"])),
    (None, {"clusterIP": "None"}, ("SingleStack", ["IPv4"])),
    (DUAL, {"clusterIP": "None", "ipFamilyPolicy": "PreferDualStack"}, ("PreferDualStack", BOTH)),
    (None, {"clusterIP": "None", "ipFamilyPolicy": "RequireDualStack"}, ("RequireDualStack", NOT_DUAL)),
], ids=["single-require", "single-prefer", "single-two-families", "dual-require", "dual-single",
        "dual-two-families", "single-stack-two-families", "single-stack-two-ips", "dual-two-ips",
        "headless-selectorless", "headless-selectorless-single", "headless", "headless-dual-prefer",
        "headless-single-require"])
async def test_ip_family_policy(make_server: Any, v6_range: str | None, spec: dict[str, Any],
                                want: tuple[Any, ...]) -> None:
    """Families as Kubernetes settles them: RequireDualStack is refused on a single-stack cluster,
    two families without a policy mean both, and SingleStack with two is refused, never quietly
    cut to one family."""
    _, api = await make_server(service_cidr_v6=v6_range)
    body = service("fam")
    body["spec"].update(spec)
    status, out = await api.req("POST", SVC, body)
    policy, result, *more = want
    if isinstance(result, str):
        assert (status, out["reason"]) == (422, "Invalid")
        causes = [("spec.ipFamilyPolicy", f'Invalid value: "{policy}": {result}'), *more]
        assert out["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": f, "message": m}
                                            for f, m in causes]
        return
    assert status == 201, out
    assert (out["spec"]["ipFamilies"], out["spec"]["ipFamilyPolicy"]) == (result, policy)
    headless = spec.get("clusterIP") == "None"
    assert out["spec"]["clusterIPs"] == ["None"] if headless else len(out["spec"]["clusterIPs"]) == len(result)


async def test_cluster_ip_of_an_unconfigured_family(api: Client) -> None:
    status, out = await api.req("POST", SVC, service("v6", clusterIP="fd00:10:96::7"))
    assert (status, out["details"]["causes"]) == (422, [{
        "reason": "FieldValueInvalid", "field": "spec.clusterIPs[0]",
        "message": 'Invalid value: []string{"fd00:10:96::7"}: IPv6 is not configured on this cluster'}])


RELEASE_IP = "must be 'SingleStack' to release the secondary cluster IP"


@pytest.mark.parametrize(("v6_range", "created", "change", "want"), [
    # Upgrade: a dual-stack policy on update adds the second family and allocates its IP.
    (DUAL, {}, {"ipFamilyPolicy": "PreferDualStack"}, ("PreferDualStack", BOTH)),
    (DUAL, {}, {"ipFamilyPolicy": "RequireDualStack"}, ("RequireDualStack", BOTH)),
    (None, {}, {"ipFamilyPolicy": "PreferDualStack"}, ("PreferDualStack", ["IPv4"])),
    (None, {}, {"ipFamilyPolicy": "RequireDualStack"}, ("RequireDualStack", NOT_DUAL)),
    # Downgrade: SingleStack is intent enough; the second IP and family go.
    (DUAL, {"ipFamilyPolicy": "RequireDualStack"}, {"ipFamilyPolicy": "SingleStack"}, ("SingleStack", ["IPv4"])),
    # Dropping the second IP without saying SingleStack is refused.
    (DUAL, {"ipFamilyPolicy": "RequireDualStack"}, {"clusterIPs": "first"}, ("RequireDualStack", RELEASE_IP)),
    # A PUT without a policy keeps the old one, unless it names two IPs: those default to RequireDualStack.
    (None, {"ipFamilyPolicy": "PreferDualStack"}, {"ipFamilyPolicy": None}, ("PreferDualStack", ["IPv4"])),
    (DUAL, {"ipFamilyPolicy": "PreferDualStack"}, {"ipFamilyPolicy": None}, ("RequireDualStack", BOTH)),
    # Headless keeps no IPs whatever the families.
    (DUAL, {"clusterIP": "None"}, {"ipFamilyPolicy": "PreferDualStack"}, ("PreferDualStack", BOTH)),
], ids=["upgrade-prefer", "upgrade-require", "single-cluster-prefer", "single-cluster-require", "downgrade",
        "release-without-single-stack", "put-keeps-policy", "put-two-ips", "headless-upgrade"])
async def test_ip_family_policy_on_update(make_server: Any, v6_range: str | None, created: dict[str, Any],
                                          change: dict[str, Any], want: tuple[str, Any]) -> None:
    """Switching a Service between single- and dual-stack, as Kubernetes' service storage allows:
    the first cluster IP never changes, and a released second IP can be taken by another Service."""
    _, api = await make_server(service_cidr_v6=v6_range)
    before = await api.ok("POST", SVC, service("sw", **created))
    body = copy.deepcopy(before)
    for key, value in change.items():
        if value is None:
            body["spec"].pop(key)
        elif value == "first":
            body["spec"][key] = body["spec"][key][:1]
        else:
            body["spec"][key] = value
    status, out = await api.req("PUT", f"{SVC}/sw", body)
    policy, result = want
    if isinstance(result, str):
        assert (status, out["details"]["causes"]) == (422, [{
            "reason": "FieldValueInvalid", "field": "spec.ipFamilyPolicy",
            "message": f'Invalid value: "{policy}": {result}'}])
        return
    assert status == 200, out
    assert (out["spec"]["ipFamilyPolicy"], out["spec"]["ipFamilies"]) == (policy, result)
    ips = out["spec"]["clusterIPs"]
    if before["spec"]["clusterIP"] == "None":
        assert ips == ["None"]
        return
    assert ips[0] == before["spec"]["clusterIP"] == out["spec"]["clusterIP"]
    assert len(ips) == len(result)
    released = set(before["spec"]["clusterIPs"]) - set(ips)
    for ip in released:  # free again: another Service may ask for it
        taken = await api.ok("POST", SVC, service("other", clusterIPs=["10.96.200.200", ip]))
        assert taken["spec"]["clusterIPs"][1] == ip


async def test_departed_watch_client_is_forgotten(make_server: Any) -> None:
    server, api = await make_server()
    async with api.session.get(api.base + PODS, params={"watch": "true"}) as r:
        assert r.status == 200
        while server.state.cache.watcher_count() == 0:
            await asyncio.sleep(0.01)
        r.close()  # drop the connection without reading anything
    for _ in range(100):
        if server.state.cache.watcher_count() == 0:
            break
        await asyncio.sleep(0.05)
    assert server.state.cache.watcher_count() == 0


async def test_list_pages_with_limit_and_continue(api: Client) -> None:
    for i in range(5):
        await api.ok("POST", PODS, pod(f"p{i}"))
    first = await api.ok("GET", PODS, params={"limit": "2"})
    assert [p["metadata"]["name"] for p in first["items"]] == ["p0", "p1"]
    assert first["metadata"]["remainingItemCount"] == 3
    await api.ok("DELETE", f"{PODS}/p2")  # changes between pages show up in later pages
    second = await api.ok("GET", PODS, params={"limit": "2", "continue": first["metadata"]["continue"]})
    assert [p["metadata"]["name"] for p in second["items"]] == ["p3", "p4"]
    assert "continue" not in second["metadata"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    status, out = await api.req("GET", PODS, params={"limit": "2", "continue": "garbage"})
    assert (status, out["reason"]) == (400, "BadRequest")


META = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


async def test_partial_object_metadata(api: Client) -> None:
    await api.ok("POST", PODS, pod("meta", {"a": "b"}))
    lst = await api.ok("GET", PODS, headers={"Accept": META})
    assert lst["kind"] == "PartialObjectMetadataList" and lst["metadata"]["resourceVersion"]
    assert lst["items"][0]["kind"] == "PartialObjectMetadata" and "spec" not in lst["items"][0]
    assert lst["items"][0]["metadata"]["labels"] == {"a": "b"}
    one = await api.ok("GET", f"{PODS}/meta", headers={"Accept": META})
    assert one["kind"] == "PartialObjectMetadata" and one["metadata"]["name"] == "meta"
    events = await api.watch(PODS, 1, headers={"Accept": META})
    assert events[0]["object"]["kind"] == "PartialObjectMetadata"


async def test_cluster_ip_is_immutable(api: Client) -> None:
    s = await api.ok("POST", SVC, service("imm"))
    s["spec"]["clusterIP"] = "10.96.0.99"
    s["spec"]["clusterIPs"] = ["10.96.0.99"]
    status, out = await api.req("PUT", f"{SVC}/imm", s)
    assert (status, out["reason"]) == (422, "Invalid")
    assert "spec.clusterIPs" in out["message"] or "spec.clusterIP" in out["message"]


async def test_put_creates_leases_but_not_pods(api: Client) -> None:
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-1"},
             "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}}
    status, out = await api.req("PUT", f"{path}/node-1", lease)
    assert status == 201 and out["spec"]["holderIdentity"] == "node-1"
    status, _ = await api.req("PUT", f"{PODS}/nope", pod("nope"))
    assert status == 404


async def test_put_creates_a_service_with_its_cluster_ip(api: Client) -> None:
    """Services allow create-on-update, as Kubernetes' service strategy does; the created Service
    goes through create, so it gets its ClusterIP. A PATCH of a missing Service stays 404."""
    status, out = await api.req("PUT", f"{SVC}/made-by-put", service("made-by-put"))
    assert status == 201, out
    assert out["spec"]["clusterIP"].startswith("10.") and out["spec"]["ipFamilies"] == ["IPv4"]
    assert (await api.ok("GET", f"{SVC}/made-by-put"))["metadata"]["uid"] == out["metadata"]["uid"]
    status, _ = await api.req("PATCH", f"{SVC}/ghost", {"metadata": {"labels": {"a": "b"}}},
                              headers={"Content-Type": "application/merge-patch+json"})
    assert status == 404


async def test_invalid_object_lists_causes(api: Client) -> None:
    bad = service("bad")
    bad["spec"]["ports"] = [{"port": 0}]
    status, out = await api.req("POST", SVC, bad)
    assert (status, out["reason"]) == (422, "Invalid")
    assert out["message"].startswith('Service "bad" is invalid: ')
    assert out["details"]["name"] == "bad" and out["details"]["kind"] == "Service"
    assert {"reason": "FieldValueInvalid", "field": "spec.ports[0].port"}.items() <= out["details"]["causes"][0].items()
