"""RESTClient and Informer against a real API server over the memory store."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from sliceplane.api.registry import CONFIG_MAPS, NAMESPACES
from sliceplane.apiserver.app import APIServer
from sliceplane.apiserver.config import ServerConfig
from sliceplane.client.informer import Informer
from sliceplane.client.kubeconfig import write_kubeconfig
from sliceplane.client.rest import APIConnectionError, ApiError, RESTClient
from sliceplane.store.memory import MemoryStore


def _dead_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def server() -> AsyncIterator[APIServer]:
    srv = APIServer(ServerConfig(port=0, store_url="memory://"))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def client(server: APIServer) -> AsyncIterator[RESTClient]:
    c = RESTClient(server.url, timeout=10)
    try:
        yield c
    finally:
        await c.close()


def cm(name: str, ns: str = "default", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "data": {"k": "v"}}


async def set_data(c: RESTClient, name: str, value: str, **labels: str) -> dict:
    """Read-modify-write through PUT (patch is exercised in its own test)."""
    obj = await c.get(CONFIG_MAPS, name, "default")
    obj["data"]["k"] = value
    if labels:
        obj["metadata"]["labels"] = labels
    return await c.update(CONFIG_MAPS, obj)


async def eventually(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def test_crud_round_trip(client: RESTClient) -> None:
    created = await client.create(CONFIG_MAPS, cm("a", app="x"))
    assert created["metadata"]["name"] == "a" and created["metadata"]["uid"]
    got = await client.get(CONFIG_MAPS, "a", "default")
    assert got["data"] == {"k": "v"}
    await client.create(CONFIG_MAPS, cm("b", app="y"))
    lst = await client.list(CONFIG_MAPS, "default", label_selector="app=x")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a"]
    assert lst["metadata"]["resourceVersion"]
    got["data"]["k"] = "v2"
    updated = await client.update(CONFIG_MAPS, got)
    assert updated["data"]["k"] == "v2"
    assert updated["metadata"]["resourceVersion"] != got["metadata"]["resourceVersion"]
    merged = await client.patch(CONFIG_MAPS, "a", {"data": {"m": "1"}}, namespace="default")
    assert merged["data"] == {"k": "v2", "m": "1"}
    jsonp = await client.patch(CONFIG_MAPS, "a", [{"op": "remove", "path": "/data/m"}], namespace="default",
                               patch_type="json")
    assert jsonp["data"] == {"k": "v2"}
    await client.delete(CONFIG_MAPS, "a", "default")
    with pytest.raises(ApiError) as exc:
        await client.get(CONFIG_MAPS, "a", "default")
    assert (exc.value.code, exc.value.reason) == (404, "NotFound")
    assert client.counts["create"] == 2


@pytest.mark.parametrize(
    ("call", "code", "reason"),
    [
        ("duplicate", 409, "AlreadyExists"),
        ("stale-update", 409, "Conflict"),
        ("missing-delete", 404, "NotFound"),
        ("uid-precondition", 409, "Conflict"),
    ],
    ids=["already-exists", "stale-resource-version", "delete-missing", "delete-uid-precondition"],
)
async def test_errors_carry_status(client: RESTClient, call: str, code: int, reason: str) -> None:
    first = await client.create(CONFIG_MAPS, cm("e"))
    with pytest.raises(ApiError) as exc:
        if call == "duplicate":
            await client.create(CONFIG_MAPS, cm("e"))
        elif call == "stale-update":
            await set_data(client, "e", "newer")
            await client.update(CONFIG_MAPS, first)
        elif call == "missing-delete":
            await client.delete(CONFIG_MAPS, "nope", "default")
        else:
            await client.delete(CONFIG_MAPS, "e", "default", preconditions={"uid": "not-the-uid"})
    assert (exc.value.code, exc.value.reason) == (code, reason)
    assert exc.value.message


async def test_fails_over_to_a_live_server(server: APIServer) -> None:
    c = RESTClient([_dead_url(), server.url], timeout=5)
    try:
        ns = await c.list(NAMESPACES)
        assert ns["kind"] == "NamespaceList"
        assert c.url == server.url
    finally:
        await c.close()


async def test_all_servers_down_is_a_connection_error() -> None:
    c = RESTClient([_dead_url(), _dead_url()], timeout=5)
    try:
        with pytest.raises(ConnectionError) as exc:
            await c.list(NAMESPACES)
        assert isinstance(exc.value, APIConnectionError)
    finally:
        await c.close()


async def test_from_kubeconfig(server: APIServer, tmp_path) -> None:
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, server.url)
    c = RESTClient.from_kubeconfig(str(path))
    try:
        assert (await c.get(NAMESPACES, "default"))["metadata"]["name"] == "default"
    finally:
        await c.close()


async def test_watch_streams_changes(client: RESTClient) -> None:
    rv = (await client.list(CONFIG_MAPS, "default"))["metadata"]["resourceVersion"]
    seen: list[tuple[str, str, str]] = []

    async def follow() -> None:
        async for typ, obj in client.watch(CONFIG_MAPS, "default", resource_version=rv, allow_bookmarks=False):
            seen.append((typ, obj["metadata"]["name"], (obj.get("data") or {}).get("k", "")))
            if typ == "DELETED":
                return

    task = asyncio.create_task(follow())
    await client.create(CONFIG_MAPS, cm("w"))
    await set_data(client, "w", "v2")
    await client.delete(CONFIG_MAPS, "w", "default")
    await asyncio.wait_for(task, 10)
    assert seen == [("ADDED", "w", "v"), ("MODIFIED", "w", "v2"), ("DELETED", "w", "v2")]


async def test_watch_ends_when_server_times_it_out(client: RESTClient) -> None:
    rv = (await client.list(CONFIG_MAPS))["metadata"]["resourceVersion"]
    events = [t async for t, _ in client.watch(CONFIG_MAPS, resource_version=rv, allow_bookmarks=False,
                                               timeout_seconds=1)]
    assert events == []


async def test_watch_from_expired_version_is_410() -> None:
    store = MemoryStore()
    await store.start()
    first = APIServer(ServerConfig(port=0), store=store)
    await first.start()
    c = RESTClient(first.url, timeout=10)
    try:
        old_rv = (await c.create(CONFIG_MAPS, cm("x")))["metadata"]["resourceVersion"]
        for i in range(3):
            await c.create(CONFIG_MAPS, cm(f"y{i}"))
        await first.stop()
        second = APIServer(ServerConfig(port=0), store=store)  # its watch cache starts after old_rv
        await second.start()
        c2 = RESTClient(second.url, timeout=10)
        try:
            with pytest.raises(ApiError) as exc:
                async for _ in c2.watch(CONFIG_MAPS, resource_version=str(int(old_rv) - 1)):
                    pass
            assert exc.value.code == 410
        finally:
            await c2.close()
            await second.stop()
    finally:
        await c.close()
        await first.stop()
        await store.close()


class Recorder:
    """Keeps the handler-side view of the world: what a controller would believe."""

    def __init__(self) -> None:
        self.objects: dict[str, str] = {}  # key -> data.k
        self.log: list[tuple[str, str]] = []

    def on_add(self, obj: dict) -> None:
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        assert key not in self.objects, f"add of known {key}"
        self.objects[key] = obj["data"]["k"]
        self.log.append(("add", key))

    def on_update(self, old: dict, new: dict) -> None:
        key = f"{new['metadata']['namespace']}/{new['metadata']['name']}"
        assert key in self.objects, f"update of unknown {key}"
        assert old["metadata"]["name"] == new["metadata"]["name"]
        self.objects[key] = new["data"]["k"]
        self.log.append(("update", key))

    def on_delete(self, obj: dict) -> None:
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        assert key in self.objects, f"delete of unknown {key}"
        del self.objects[key]
        self.log.append(("delete", key))


async def test_informer_lists_watches_and_indexes(client: RESTClient) -> None:
    await client.create(CONFIG_MAPS, cm("pre", app="a"))
    inf = Informer(client, CONFIG_MAPS)
    rec = Recorder()
    inf.add_handlers(rec.on_add, rec.on_update, rec.on_delete)
    inf.add_index("app", lambda o: [o["metadata"].get("labels", {}).get("app", "")])
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.wait_for(inf.wait_synced(), 10)
        assert rec.objects == {"default/pre": "v"}
        await client.create(CONFIG_MAPS, cm("new", app="a"))
        await set_data(client, "pre", "v2", app="b")
        await eventually(lambda: rec.objects == {"default/pre": "v2", "default/new": "v"})
        assert [o["metadata"]["name"] for o in inf.by_index("app", "a")] == ["new"]
        assert [o["metadata"]["name"] for o in inf.by_index("app", "b")] == ["pre"]
        await client.delete(CONFIG_MAPS, "new", "default")
        await eventually(lambda: "default/new" not in rec.objects)
        assert inf.by_index("app", "a") == []
        assert inf.get("default/pre")["data"]["k"] == "v2"
        assert inf.last_resource_version
        late = Recorder()  # handlers added after sync get the current objects as adds
        inf.add_handlers(late.on_add, late.on_update, late.on_delete)
        assert late.objects == {"default/pre": "v2"}
    finally:
        await inf.stop()
        await asyncio.wait_for(task, 5)


async def test_informer_resumes_and_relists_across_server_restarts() -> None:
    """Drop the connection (server restart on the same port). While no server answers the
    informer's URL, change things through another one: the informer must come back with
    exactly the server's state, via resumed watch or re-list, and handlers stay consistent."""
    store = MemoryStore()
    await store.start()
    first = APIServer(ServerConfig(port=0), store=store)
    await first.start()
    port = first.port
    c = RESTClient(first.url, timeout=10)
    inf = Informer(c, CONFIG_MAPS)
    rec = Recorder()
    inf.add_handlers(rec.on_add, rec.on_update, rec.on_delete)
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.wait_for(inf.wait_synced(), 10)
        for name in ("keep", "change", "drop"):
            await c.create(CONFIG_MAPS, cm(name))
        await eventually(lambda: len(rec.objects) == 3)
        await first.stop()

        side = APIServer(ServerConfig(port=0), store=store)  # changes while the informer is cut off
        await side.start()
        sc = RESTClient(side.url, timeout=10)
        await set_data(sc, "change", "changed")
        await sc.delete(CONFIG_MAPS, "drop", "default")
        await sc.create(CONFIG_MAPS, cm("added"))
        await sc.close()
        await side.stop()

        back = APIServer(ServerConfig(port=port), store=store)
        await back.start()
        try:
            expected = {"default/keep": "v", "default/change": "changed", "default/added": "v"}
            await eventually(lambda: rec.objects == expected, 20)
            assert inf.relists == 1  # the new server's watch cache started after our resourceVersion: 410
            assert ("delete", "default/drop") in rec.log
            # and it keeps following the new server's stream
            await c.create(CONFIG_MAPS, cm("after"))
            await eventually(lambda: "default/after" in rec.objects)
        finally:
            await inf.stop()
            await asyncio.wait_for(task, 5)
            await back.stop()
    finally:
        await c.close()
        await first.stop()
        await store.close()


async def test_kubectl_uses_written_kubeconfig(server: APIServer, tmp_path) -> None:
    """The real kubectl reads our kubeconfig (extra servers in the extension are ignored by it)."""
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, [server.url, _dead_url()])
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(path), "--cache-dir", str(tmp_path / "cache"), "get", "namespace", "default",
        "-o", "jsonpath={.metadata.name}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "HOME": str(tmp_path)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode() == "default"


async def test_informer_follows_bookmarks() -> None:
    """Changes to other kinds advance the informer's resourceVersion through bookmarks, so a
    resumed watch starts from a recent revision rather than an old one."""
    srv = APIServer(ServerConfig(port=0, bookmark_interval=0.1))
    await srv.start()
    c = RESTClient(srv.url, timeout=10)
    inf = Informer(c, CONFIG_MAPS, namespace="quiet")
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.wait_for(inf.wait_synced(), 10)
        start = int(inf.last_resource_version)
        latest = 0
        for i in range(3):  # writes elsewhere: no events for this informer
            latest = int((await c.create(CONFIG_MAPS, cm(f"other-{i}")))["metadata"]["resourceVersion"])
        await eventually(lambda: int(inf.last_resource_version) >= latest)
        assert latest > start
        assert inf.events == 0 and len(inf) == 0
    finally:
        await inf.stop()
        await asyncio.wait_for(task, 5)
        await c.close()
        await srv.stop()


async def test_watch_delivers_large_objects_whole(client: RESTClient) -> None:
    rv = (await client.list(CONFIG_MAPS, "default"))["metadata"]["resourceVersion"]
    blob = "x" * (1024 * 1024)
    got: list[int] = []

    async def follow() -> None:
        async for _, obj in client.watch(CONFIG_MAPS, "default", resource_version=rv, allow_bookmarks=False):
            got.append(len(obj["data"]["k"]))
            if len(got) == 3:
                return

    task = asyncio.create_task(follow())
    for i, size in enumerate((len(blob), 10, len(blob) // 2)):
        await client.create(CONFIG_MAPS, {**cm(f"big-{i}"), "data": {"k": blob[:size]}})
    await asyncio.wait_for(task, 20)
    assert got == [len(blob), 10, len(blob) // 2]


async def test_informer_resumes_watch_without_relisting() -> None:
    """A dropped connection with nothing missed: the watch resumes from the last
    resourceVersion (no re-list), and later changes still arrive."""
    store = MemoryStore()
    await store.start()
    first = APIServer(ServerConfig(port=0), store=store)
    await first.start()
    port = first.port
    c = RESTClient(first.url, timeout=10)
    inf = Informer(c, CONFIG_MAPS)
    rec = Recorder()
    inf.add_handlers(rec.on_add, rec.on_update, rec.on_delete)
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.wait_for(inf.wait_synced(), 10)
        await c.create(CONFIG_MAPS, cm("one"))
        await eventually(lambda: "default/one" in rec.objects)
        await first.stop()
        back = APIServer(ServerConfig(port=port), store=store)
        await back.start()
        try:
            await c.create(CONFIG_MAPS, cm("two"))
            await eventually(lambda: "default/two" in rec.objects)
            assert inf.relists == 0
            assert rec.log == [("add", "default/one"), ("add", "default/two")]
        finally:
            await inf.stop()
            await asyncio.wait_for(task, 5)
            await back.stop()
    finally:
        await c.close()
        await first.stop()
        await store.close()
