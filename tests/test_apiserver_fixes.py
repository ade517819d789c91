"""Regressions found by testing the API server against Kubernetes 1.32's behaviour, each against a real
APIServer over the memory store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

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
