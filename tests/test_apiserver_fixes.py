"""Regressions found by testing the API server against Kubernetes 1.32's behaviour, each against a real
APIServer over the memory store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sliceplane.api import registry
from sliceplane.apiserver.app import APIServer
from sliceplane.apiserver.config import ServerConfig

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
NAMESPACES = "/api/v1/namespaces"


@pytest.fixture
async def server() -> AsyncIterator[APIServer]:
    s = APIServer(ServerConfig())
    await s.start()
    yield s
    await s.stop()


async def send(url: str, method: str, path: str, body: Any = None, ctype: str = "application/json",
               session: aiohttp.ClientSession | None = None) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body)
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        async with session.request(method, url + path, data=data, headers={"Content-Type": ctype}) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None
    finally:
        if own:
            await session.close()


def configmap(name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data or {"a": "1"}}


# ---- 1. dryRun never persists --------------------------------------------------------------

DRY_BODY = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background", "dryRun": ["All"]}


@pytest.mark.parametrize(("path", "query", "body"), [
    (f"{CONFIGMAPS}/dry", "", DRY_BODY),
    (f"{CONFIGMAPS}/dry", "?dryRun=All", None),
    (CONFIGMAPS, "", DRY_BODY),
    (CONFIGMAPS, "?dryRun=All", None),
], ids=["delete-body", "delete-query", "deletecollection-body", "deletecollection-query"])
async def test_dry_run_delete_keeps_the_object(server: APIServer, path: str, query: str, body: Any) -> None:
    assert (await send(server.url, "POST", CONFIGMAPS, configmap("dry")))[0] == 201
    status, out = await send(server.url, "DELETE", path + query, body)
    assert status == 200, out
    status, got = await send(server.url, "GET", f"{CONFIGMAPS}/dry")
    assert (status, got["data"]) == (200, {"a": "1"})


async def test_dry_run_namespace_delete_does_not_terminate(server: APIServer) -> None:
    assert (await send(server.url, "POST", NAMESPACES, {"metadata": {"name": "keep"}}))[0] == 201
    status, out = await send(server.url, "DELETE", f"{NAMESPACES}/keep", DRY_BODY)
    assert status == 200, out
    assert out["status"]["phase"] == "Terminating"  # what would happen, as Kubernetes answers
    _, got = await send(server.url, "GET", f"{NAMESPACES}/keep")
    assert got["status"]["phase"] == "Active"
    assert "deletionTimestamp" not in got["metadata"]


@pytest.mark.parametrize(("method", "path", "body", "ctype"), [
    ("POST", CONFIGMAPS, configmap("new"), "application/json"),
    ("PUT", f"{CONFIGMAPS}/cm", configmap("cm", {"a": "2"}), "application/json"),
    ("PATCH", f"{CONFIGMAPS}/cm", {"data": {"a": "2"}}, "application/merge-patch+json"),
    ("PATCH", f"{CONFIGMAPS}/cm", [{"op": "replace", "path": "/data/a", "value": "2"}],
     "application/json-patch+json"),
], ids=["create", "update", "merge-patch", "json-patch"])
async def test_dry_run_writes_do_not_persist(server: APIServer, method: str, path: str, body: Any,
                                             ctype: str) -> None:
    assert (await send(server.url, "POST", CONFIGMAPS, configmap("cm")))[0] == 201
    status, out = await send(server.url, method, path + "?dryRun=All", body, ctype)
    assert status in (200, 201), out
    _, listed = await send(server.url, "GET", CONFIGMAPS)
    assert [(i["metadata"]["name"], i["data"]) for i in listed["items"]] == [("cm", {"a": "1"})]


# ---- 2. system namespaces ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
async def test_system_namespaces_may_not_be_deleted(server: APIServer, name: str) -> None:
    status, out = await send(server.url, "DELETE", f"{NAMESPACES}/{name}")
    assert (status, out["reason"], out["message"]) == (
        403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted')
    assert out["details"] == {"name": name, "kind": "namespaces"}
    _, got = await send(server.url, "GET", f"{NAMESPACES}/{name}")
    assert "deletionTimestamp" not in got["metadata"]


# ---- 3. unconditional writes retry until they win -------------------------------------------

@pytest.mark.parametrize(("method", "ctype", "body_of"), [
    ("PUT", "application/json", lambda i: configmap("race", {"a": "1", f"k{i}": "v"})),
    ("PATCH", "application/merge-patch+json", lambda i: {"data": {f"k{i}": "v"}}),
    ("PATCH", "application/strategic-merge-patch+json", lambda i: {"metadata": {"labels": {f"l{i}": "v"}}}),
    ("PATCH", "application/json-patch+json",
     lambda i: [{"op": "add", "path": f"/data/k{i}", "value": "v"}]),
], ids=["put", "merge-patch", "strategic-patch", "json-patch"])
async def test_concurrent_unconditional_writes_all_succeed(server: APIServer, method: str, ctype: str,
                                                           body_of: Any) -> None:
    assert (await send(server.url, "POST", CONFIGMAPS, configmap("race")))[0] == 201
    n = 40
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(send(server.url, method, f"{CONFIGMAPS}/race", body_of(i), ctype,
                                              session=session) for i in range(n)))
    assert [s for s, _ in results] == [200] * n
    _, got = await send(server.url, "GET", f"{CONFIGMAPS}/race")
    if method == "PATCH":  # every patch landed on top of the others
        assert len(got["data"]) + len(got["metadata"].get("labels") or {}) == n + 1


async def test_stale_resource_version_still_conflicts(server: APIServer) -> None:
    _, created = await send(server.url, "POST", CONFIGMAPS, configmap("pin"))
    rv = created["metadata"]["resourceVersion"]
    assert (await send(server.url, "PUT", f"{CONFIGMAPS}/pin", configmap("pin", {"a": "2"})))[0] == 200
    stale = {**configmap("pin", {"a": "3"}), "metadata": {"name": "pin", "resourceVersion": rv}}
    status, out = await send(server.url, "PUT", f"{CONFIGMAPS}/pin", stale)
    assert (status, out["reason"]) == (409, "Conflict")
    status, out = await send(server.url, "PATCH", f"{CONFIGMAPS}/pin",
                             {"metadata": {"resourceVersion": rv}, "data": {"a": "4"}},
                             "application/merge-patch+json")
    assert (status, out["reason"]) == (409, "Conflict")


# ---- 11. writes to resources that are not served ---------------------------------------------

@pytest.mark.parametrize(("method", "path", "code"), [
    ("POST", "/apis/batch/v1/namespaces/default/jobs", 404),
    ("PUT", "/apis/batch/v1/namespaces/default/jobs/j", 404),
    ("PATCH", "/apis/batch/v1/namespaces/default/jobs/j", 404),
    ("DELETE", "/apis/batch/v1/namespaces/default/jobs/j", 404),
    ("POST", "/apis/apps/v1/namespaces/default/nothings", 404),
    ("POST", "/apis/apps/v1", 405),
], ids=["post-jobs", "put-job", "patch-job", "delete-job", "unknown-resource", "discovery-doc"])
async def test_writes_to_unserved_resources(server: APIServer, method: str, path: str, code: int) -> None:
    status, out = await send(server.url, method, path, {})
    assert status == code, out
    if code == 404:
        assert (out["reason"], out["message"]) == ("NotFound", "the server could not find the requested resource")


# ---- 4/5. opaque kinds: unknown fields, wrong types, Secret data ----------------------------

SECRETS = "/api/v1/namespaces/default/secrets"


@pytest.mark.parametrize(("path", "body", "message"), [
    (CONFIGMAPS, {**configmap("u"), "extra": 1},
     'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "extra"'),
    (SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "u"}, "datta": {}},
     'Secret in version "v1" cannot be handled as a Secret: strict decoding error: unknown field "datta"'),
    ("/api/v1/namespaces/default/serviceaccounts",
     {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "u", "labelz": {}}},
     'ServiceAccount in version "v1" cannot be handled as a ServiceAccount: strict decoding error: '
     'unknown field "metadata.labelz"'),
], ids=["configmap", "secret", "serviceaccount-metadata"])
async def test_opaque_kinds_strict_unknown_fields(server: APIServer, path: str, body: Any, message: str) -> None:
    status, out = await send(server.url, "POST", path + "?fieldValidation=Strict", body)
    assert (status, out["reason"], out["message"]) == (400, "BadRequest", message)
    status, out = await send(server.url, "POST", path, body)  # Warn: stored without the field
    assert status == 201, out
    assert "extra" not in out and "datta" not in out and "labelz" not in out["metadata"]


@pytest.mark.parametrize(("path", "body", "message"), [
    (CONFIGMAPS, {**configmap("t"), "data": "str"},
     'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal string into Go struct '
     "field ConfigMap.data of type map[string]string"),
    (CONFIGMAPS, {**configmap("t"), "data": {"a": 1}},
     'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number 1 into Go struct '
     "field ConfigMap.data of type string"),
    (SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "data": {"a": "not base64"}},
     'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'),
    (CONFIGMAPS, {**configmap("t"), "metadata": {"name": 5}},
     'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number 5 into Go struct '
     "field ObjectMeta.metadata.name of type string"),
], ids=["cm-data-string", "cm-data-number", "secret-not-base64", "name-number"])
async def test_opaque_kinds_wrong_types_are_400(server: APIServer, path: str, body: Any, message: str) -> None:
    status, out = await send(server.url, "POST", path, body)
    assert (status, out["reason"], out["message"]) == (400, "BadRequest", message)
    _, listed = await send(server.url, "GET", path)
    assert [i["metadata"]["name"] for i in listed["items"] if i["metadata"]["name"] == "t"] == []


async def test_secret_string_data_is_merged_into_data(server: APIServer) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sd"},
            "data": {"a": "MQ==", "b": "Mg=="}, "stringData": {"b": "two", "c": "three"}}
    status, out = await send(server.url, "POST", SECRETS, body)
    assert status == 201, out
    assert (out["data"], "stringData" in out) == ({"a": "MQ==", "b": "dHdv", "c": "dGhyZWU="}, False)
    status, out = await send(server.url, "PATCH", f"{SECRETS}/sd", {"stringData": {"a": "one"}},
                             "application/merge-patch+json")
    assert status == 200, out
    _, got = await send(server.url, "GET", f"{SECRETS}/sd")
    assert (got["data"], "stringData" in got) == ({"a": "b25l", "b": "dHdv", "c": "dGhyZWU="}, False)


async def test_configmap_rules_are_422(server: APIServer) -> None:
    status, out = await send(server.url, "POST", CONFIGMAPS, configmap("big", {"a": "x" * (1024 * 1024 + 1)}))
    assert (status, out["reason"], out["message"]) == (
        422, "Invalid", 'ConfigMap "big" is invalid: []: Too long: may not be more than 1048576 bytes')
    status, out = await send(server.url, "POST", CONFIGMAPS, configmap("k", {"a/b": "x"}))
    assert (status, out["details"]["causes"][0]["field"]) == (422, "data[a/b]")


# ---- 8. deep nesting -------------------------------------------------------------------------

def nested_json(depth: int) -> bytes:
    return b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"x":' + b"[" * depth + b"]" * depth + b"}"


def nested_yaml(depth: int) -> bytes:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: deep", "x:"]
    lines += ["  " * i + "- " for i in range(1, depth)]
    return ("\n".join(lines) + "1\n").encode()


@pytest.mark.parametrize(("method", "path", "body", "ctype", "message"), [
    ("POST", CONFIGMAPS, nested_json(5000), "application/json",
     "couldn't get version/kind; json parse error: exceeded max depth"),
    ("POST", CONFIGMAPS, nested_json(150), "application/json",
     "couldn't get version/kind; json parse error: exceeded max depth"),
    ("POST", CONFIGMAPS, nested_yaml(600), "application/yaml",
     "error converting YAML to JSON: yaml: exceeded max depth of 100"),
    ("POST", CONFIGMAPS, b"x: " + b"[" * 3000 + b"]" * 3000, "application/yaml",
     "error converting YAML to JSON: yaml: exceeded max depth of 100"),
    ("PATCH", f"{CONFIGMAPS}/cm", b'{"data":' + b"[" * 5000 + b"]" * 5000 + b"}", "application/merge-patch+json",
     "json: exceeded max depth"),
    ("PATCH", f"{CONFIGMAPS}/cm", b'{"data":' + b"[" * 500 + b"]" * 500 + b"}",
     "application/strategic-merge-patch+json", "json: exceeded max depth"),
], ids=["json-5000", "json-150", "yaml-block-600", "yaml-flow-3000", "merge-patch-5000", "strategic-patch-500"])
async def test_deep_bodies_are_400(server: APIServer, method: str, path: str, body: bytes, ctype: str,
                                   message: str) -> None:
    assert (await send(server.url, "POST", CONFIGMAPS, configmap("cm")))[0] == 201
    status, out = await send(server.url, method, path, body, ctype)
    assert (status, out["reason"], out["message"]) == (400, "BadRequest", message)


def alias_bomb(levels: int) -> bytes:
    """A few hundred bytes of YAML that spell out 10**levels strings through chained aliases."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: bomb", 'x0: &x0 ["lol"]']
    lines += [f"x{i}: &x{i} [{','.join([f'*x{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return ("\n".join(lines) + "\n").encode()


def merge_bomb(levels: int) -> bytes:
    """Merge keys double a map at every level; PyYAML expands them while it builds the object."""
    lines = ["m0: &m0 {k: v}"]
    lines += [f"m{i}: &m{i}\n  <<: [*m{i - 1}, *m{i - 1}]" for i in range(1, levels + 1)]
    lines += ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: merges"]
    return ("\n".join(lines) + "\n").encode()


EXCESSIVE = "error converting YAML to JSON: yaml: document contains excessive aliasing"
CONTAINS_ITSELF = "error converting YAML to JSON: yaml: an anchor's value contains itself"


@pytest.mark.parametrize(("body", "want"), [
    (alias_bomb(9), (400, EXCESSIVE)),
    (alias_bomb(6), (400, EXCESSIVE)),
    (merge_bomb(20), (400, EXCESSIVE)),
    (merge_bomb(40), (400, EXCESSIVE)),
    (b"x: &a [*a]\n", (400, CONTAINS_ITSELF)),
    (b"a: &a\n  <<: *a\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: selfmerge}\n", (400, CONTAINS_ITSELF)),
    # anchors as manifests use them: a few reuses are fine
    (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: anchors, labels: &l {app: web}, annotations: *l}\n",
     (201, "")),
], ids=["bomb-9-levels", "bomb-6-levels", "merge-bomb-20", "merge-bomb-40", "self-alias", "self-merge",
        "plain-anchor"])
async def test_yaml_aliases(server: APIServer, body: bytes, want: tuple[int, str]) -> None:
    """An alias bomb is refused at once (it used to stall the server for a minute while its
    billion nodes were walked); ordinary anchors still work."""
    status, out = await send(server.url, "POST", CONFIGMAPS + "?fieldValidation=Ignore", body, "application/yaml")
    assert (status, out.get("message", "") if status != 201 else "") == want
    if status == 201:
        assert out["metadata"]["annotations"] == {"app": "web"}


@pytest.mark.parametrize(("text", "shape"), [
    ("scalar", (1, 0)),
    ("{a: 1, b: [1, 2]}", (7, 2)),  # a map counts its keys and values
    ("[[], []]", (3, 2)),
], ids=["scalar", "map-with-list", "lists"])
def test_yaml_expanded_shape(text: str, shape: tuple[int, int]) -> None:
    import yaml

    from sliceplane.apiserver.negotiation import yaml_expanded_shape

    assert yaml_expanded_shape(yaml.compose(text)) == shape
    # one node behind 1000 aliases: counted 1000 times, walked once
    shared = yaml.compose("- &x " + text + "\n" + "- *x\n" * 999)
    assert yaml_expanded_shape(shared) == (1 + 1000 * shape[0], shape[1] + 1)


async def test_nesting_below_the_limit_is_fine(server: APIServer) -> None:
    body = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod"}}
    assert (await send(server.url, "POST", "/api/v1/namespaces/default/events", body))[0] == 201
    status, _ = await send(server.url, "POST", CONFIGMAPS + "?fieldValidation=Ignore", nested_json(90))
    assert status == 201


# ---- 13. bodies that are not objects -----------------------------------------------------------

GO_KIND_STRUCT = ('struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
                  'Kind string "json:\\"kind,omitempty\\"" }')


@pytest.mark.parametrize(("body", "code", "message"), [
    (b"[]", 400, "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; "
                 f"json parse error: json: cannot unmarshal array into Go value of type {GO_KIND_STRUCT} (5b5d)"),
    (b'"x"', 400, "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; "
                  f"json parse error: json: cannot unmarshal string into Go value of type {GO_KIND_STRUCT} (227822)"),
    (b"null", 422, 'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required'),
], ids=["array", "string", "null"])
async def test_non_object_bodies(server: APIServer, body: bytes, code: int, message: str) -> None:
    status, out = await send(server.url, "POST", CONFIGMAPS, body)
    assert (status, out["message"]) == (code, message)
    assert "NoneType" not in out["message"] and "list" not in out["message"]


# ---- 7. Service port duplicates ----------------------------------------------------------------

SERVICES = "/api/v1/namespaces/default/services"
DUP_80 = ('core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, '
          'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')


@pytest.mark.parametrize(("ports", "causes"), [
    ([{"name": "a", "port": 80}, {"name": "b", "port": 80}], [("spec.ports[1]", f"Duplicate value: {DUP_80}")]),
    ([{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30080}],
     [("spec.ports[1].nodePort", "Duplicate value: 30080")]),
], ids=["port", "node-port"])
async def test_service_duplicate_ports_are_422(server: APIServer, ports: list[Any], causes: list[Any]) -> None:
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dup"},
            "spec": {"type": "NodePort", "selector": {"app": "a"}, "ports": ports}}
    status, out = await send(server.url, "POST", SERVICES, body)
    assert (status, out["reason"]) == (422, "Invalid"), out
    assert [(c["field"], c["message"]) for c in out["details"]["causes"]] == causes
    # Nothing stays allocated: the same nodePort is free for the next Service.
    ok = {**body, "spec": {**body["spec"], "ports": [{"port": 80, "nodePort": 30080}]}}
    status, out = await send(server.url, "POST", SERVICES, ok)
    assert status == 201, out


async def test_service_node_port_shared_by_tcp_and_udp(server: APIServer) -> None:
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns"},
            "spec": {"type": "NodePort", "selector": {"app": "a"},
                     "ports": [{"name": "tcp", "port": 53, "protocol": "TCP", "nodePort": 30053},
                               {"name": "udp", "port": 53, "protocol": "UDP", "nodePort": 30053}]}}
    status, out = await send(server.url, "POST", SERVICES, body)
    assert status == 201, out
    assert [p["nodePort"] for p in out["spec"]["ports"]] == [30053, 30053]


# ---- 9. resourceVersionMatch on lists ----------------------------------------------------------

@pytest.mark.parametrize(("query", "causes"), [
    ("?resourceVersionMatch=Exact", [("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden unless "
                                      "resourceVersion is provided")]),
    ("?resourceVersionMatch=NotOlderThan", [("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden "
                                             "unless resourceVersion is provided")]),
    ("?resourceVersion=0&resourceVersionMatch=Exact",
     [("resourceVersionMatch", 'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"')]),
    ("?resourceVersion=1&resourceVersionMatch=Newest",
     [("resourceVersionMatch", 'Unsupported value: "Newest": supported values: "Exact", "NotOlderThan", ""')]),
    ("?sendInitialEvents=true", [("sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for list")]),
], ids=["exact-without-rv", "notolderthan-without-rv", "exact-rv-0", "unknown-match", "send-initial-on-list"])
async def test_list_options_rules(server: APIServer, query: str, causes: list[Any]) -> None:
    status, out = await send(server.url, "GET", CONFIGMAPS + query)
    assert (status, out["reason"]) == (422, "Invalid"), out
    assert out["message"].startswith('ListOptions.meta.k8s.io "" is invalid: ')
    assert [(c["field"], c["message"]) for c in out["details"]["causes"]] == causes


async def test_list_exact_resource_version(server: APIServer) -> None:
    _, a = await send(server.url, "POST", CONFIGMAPS, configmap("a", {"v": "1"}))
    rv_a = a["metadata"]["resourceVersion"]
    await send(server.url, "PUT", f"{CONFIGMAPS}/a", configmap("a", {"v": "2"}))
    await send(server.url, "POST", CONFIGMAPS, configmap("b"))
    await send(server.url, "DELETE", f"{CONFIGMAPS}/a")
    _, now = await send(server.url, "GET", CONFIGMAPS)
    assert [i["metadata"]["name"] for i in now["items"]] == ["b"]
    status, then = await send(server.url, "GET", f"{CONFIGMAPS}?resourceVersion={rv_a}&resourceVersionMatch=Exact")
    assert status == 200, then
    assert then["metadata"]["resourceVersion"] == rv_a
    assert [(i["metadata"]["name"], i["data"], i["metadata"]["resourceVersion"]) for i in then["items"]] == [
        ("a", {"v": "1"}, rv_a)]
    status, newer = await send(server.url, "GET",
                               f"{CONFIGMAPS}?resourceVersion={rv_a}&resourceVersionMatch=NotOlderThan")
    assert (status, [i["metadata"]["name"] for i in newer["items"]]) == (200, ["b"])


async def test_list_exact_before_the_cache_window_is_410() -> None:
    s = APIServer(ServerConfig(watch_cache_capacity=2))
    await s.start()
    try:
        _, first = await send(s.url, "POST", CONFIGMAPS, configmap("old"))
        for i in range(4):
            await send(s.url, "POST", CONFIGMAPS, configmap(f"n{i}"))
        rv = first["metadata"]["resourceVersion"]
        status, out = await send(s.url, "GET", f"{CONFIGMAPS}?resourceVersion={rv}&resourceVersionMatch=Exact")
        assert (status, out["reason"], out["message"]) == (
            410, "Expired", "The resourceVersion for the provided list is too old.")
    finally:
        await s.stop()


# ---- 10. sendInitialEvents watches -------------------------------------------------------------

async def read_until_bookmark(url: str, query: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.get(url + query) as r:
        assert r.status == 200, await r.text()
        while True:
            line = await asyncio.wait_for(r.content.readline(), 10)
            assert line, events
            events.append(json.loads(line))
            if events[-1]["type"] == "BOOKMARK":
                return events


@pytest.mark.parametrize("query", [
    "?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
    "?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    "&resourceVersion=1",
    "?watch=true&allowWatchBookmarks=true",
], ids=["send-initial-events", "send-initial-events-not-older-than-1", "legacy-watch-defaults-to-it"])
async def test_initial_events_end_bookmark(server: APIServer, query: str) -> None:
    for name in ("a", "b"):
        await send(server.url, "POST", CONFIGMAPS, configmap(name))
    _, listed = await send(server.url, "GET", CONFIGMAPS)
    events = await read_until_bookmark(server.url + CONFIGMAPS, query)
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events] == [
        ("ADDED", "a"), ("ADDED", "b"), ("BOOKMARK", None)]
    bookmark = events[-1]["object"]
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(listed["metadata"]["resourceVersion"])


async def test_send_initial_events_false_starts_from_now(server: APIServer) -> None:
    await send(server.url, "POST", CONFIGMAPS, configmap("before"))
    async with aiohttp.ClientSession() as session, session.get(
            server.url + CONFIGMAPS + "?watch=true&sendInitialEvents=false&resourceVersionMatch=NotOlderThan") as r:
        assert r.status == 200
        await send(server.url, "POST", CONFIGMAPS, configmap("after"))
        event = json.loads(await asyncio.wait_for(r.content.readline(), 10))
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "after")


@pytest.mark.parametrize(("query", "causes"), [
    ("&sendInitialEvents=true", [("resourceVersionMatch", "Forbidden: sendInitialEvents requires setting "
                                  "resourceVersionMatch to NotOlderThan")]),
    ("&resourceVersionMatch=NotOlderThan", [("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden "
                                             "for watch unless sendInitialEvents is provided")]),
    ("&sendInitialEvents=true&resourceVersionMatch=Exact",
     [("resourceVersionMatch", "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"),
      ("resourceVersionMatch", 'Unsupported value: "Exact": supported values: "NotOlderThan"')]),
], ids=["send-initial-without-match", "match-without-send-initial", "exact"])
async def test_watch_options_rules(server: APIServer, query: str, causes: list[Any]) -> None:
    status, out = await send(server.url, "GET", CONFIGMAPS + "?watch=true" + query)
    assert (status, out["reason"]) == (422, "Invalid"), out
    assert [(c["field"], c["message"]) for c in out["details"]["causes"]] == causes


# ---- 12. watches end quietly when the client goes or the server stops ---------------------------

@pytest.mark.parametrize("stop_server", [False, True], ids=["client-gone", "server-stopping"])
async def test_watch_ends_without_a_traceback(caplog: pytest.LogCaptureFixture, stop_server: bool) -> None:
    s = APIServer(ServerConfig())
    await s.start()
    stopped = False
    try:
        async with aiohttp.ClientSession() as watchers, aiohttp.ClientSession() as writer:
            streams = [await watchers.get(s.url + CONFIGMAPS + "?watch=true") for _ in range(3)]
            for r in streams[:2]:  # two clients vanish without a word
                assert r.connection is not None
                r.connection.transport.abort()  # type: ignore[union-attr]
            for i in range(30):
                async with writer.post(s.url + CONFIGMAPS, json=configmap(f"c{i}", {"x": "y" * 5000})) as w:
                    assert w.status == 201
            if stop_server:
                await s.stop()
                stopped = True
            for r in streams:
                r.close()
    finally:
        if not stopped:
            await s.stop()
    errors = [r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= 40]
    assert [r.getMessage() for r in errors] == []


async def test_missing_system_namespaces_are_recreated(server: APIServer) -> None:
    state = server.state
    assert server.store is not None
    key = registry.NAMESPACES.key("kube-node-lease")
    await server.store.delete(key)
    assert await state.cache.wait_until(await server.store.current_revision(), 5)
    assert (await send(server.url, "GET", f"{NAMESPACES}/kube-node-lease"))[0] == 404
    assert await state.ensure_system_namespaces() == ["kube-node-lease"]
    status, got = await send(server.url, "GET", f"{NAMESPACES}/kube-node-lease")
    assert (status, got["status"]["phase"]) == (200, "Active")
    assert await state.ensure_system_namespaces() == []
