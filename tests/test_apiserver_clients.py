"""The API server driven by the real clients: kubectl and the official `kubernetes` Python client."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sliceplane.api.registry import PODS
from sliceplane.apiserver.app import APIServer
from sliceplane.apiserver.config import ServerConfig
from sliceplane.apiserver.handlers import RequestContext

FIXTURES = Path(os.environ.get("SLICEPLANE_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: sliceplane
  cluster:
    server: {url}
contexts:
- name: sliceplane
  context: {{cluster: sliceplane, user: sliceplane}}
users:
- name: sliceplane
  user: {{}}
current-context: sliceplane
"""


@pytest.fixture
async def server() -> AsyncIterator[APIServer]:
    s = APIServer(ServerConfig())
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
def kubeconfig(tmp_path: Path, server: APIServer) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG.format(url=server.url))
    return path


async def kubectl(tmp_path: Path, kubeconfig: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """Run kubectl with a fresh HOME (its discovery cache must not outlive this server)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(kubeconfig)}
    proc = await asyncio.create_subprocess_exec(
        "kubectl", *args, env=env, stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), 120)
    return proc.returncode or 0, out.decode(), err.decode()


needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")

POD_YAML = b"""apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: web
    image: nginx
"""


@needs_kubectl
@pytest.mark.e2e
async def test_kubectl_create_get_delete(tmp_path: Path, kubeconfig: Path) -> None:
    rc, out, err = await kubectl(tmp_path, kubeconfig, "version", "-o", "json")
    assert rc == 0, err
    assert '"minor": "32"' in out
    rc, out, err = await kubectl(tmp_path, kubeconfig, "create", "-f", "-", stdin=POD_YAML)
    assert rc == 0, err
    assert out.strip() == "pod/web created"
    rc, out, err = await kubectl(tmp_path, kubeconfig, "get", "pods", "-o", "wide")
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split()[0] == "NAME" and lines[1].split()[0] == "web"
    rc, out, err = await kubectl(tmp_path, kubeconfig, "get", "pod", "web", "-o", "jsonpath={.metadata.labels.app}")
    assert (rc, out) == (0, "web"), err
    rc, out, err = await kubectl(tmp_path, kubeconfig, "get", "pods", "-l", "app=other")
    assert rc == 0 and "No resources found in default namespace." in err
    rc, out, err = await kubectl(tmp_path, kubeconfig, "delete", "pod", "web")
    assert (rc, out.strip()) == (0, 'pod "web" deleted'), err
    rc, out, err = await kubectl(tmp_path, kubeconfig, "get", "pod", "web")
    assert rc == 1 and 'pods "web" not found' in err


@needs_kubectl
@pytest.mark.e2e
async def test_kubectl_apply_fixture_manifest(tmp_path: Path, kubeconfig: Path) -> None:
    manifest = FIXTURES / "manifests" / "guestbook-all-in-one.yaml"
    if not manifest.exists():
        pytest.skip(f"fixture {manifest} not present")
    rc, out, err = await kubectl(tmp_path, kubeconfig, "apply", "-f", str(manifest))
    assert rc == 0, err
    assert "service/frontend created" in out and "deployment.apps/frontend created" in out
    rc, out, err = await kubectl(tmp_path, kubeconfig, "get", "svc", "frontend", "-o", "jsonpath={.spec.clusterIP}")
    assert rc == 0 and out.startswith("10."), err
    rc, out, err = await kubectl(tmp_path, kubeconfig, "apply", "-f", str(manifest))
    assert rc == 0 and "service/frontend unchanged" in out, err


def _python_client_list_and_watch(url: str, results: dict[str, Any], ready: threading.Event) -> None:
    from kubernetes import client, watch

    cfg = client.Configuration()
    cfg.host = url
    api = client.CoreV1Api(client.ApiClient(cfg))
    lst = api.list_namespaced_pod("default")
    results["list_rv"] = lst.metadata.resource_version
    results["listed"] = [p.metadata.name for p in lst.items]
    w = watch.Watch()
    seen: list[tuple[str, str]] = []
    ready.set()
    for ev in w.stream(api.list_namespaced_pod, "default", resource_version=lst.metadata.resource_version,
                       timeout_seconds=20):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 2:
            w.stop()
    results["seen"] = seen


@pytest.mark.e2e
async def test_official_python_client_list_and_watch(server: APIServer) -> None:
    handlers = server.state.handlers
    spec = {"containers": [{"name": "c", "image": "nginx"}]}
    await handlers.create(PODS, "default", {"metadata": {"name": "first"}, "spec": spec})
    results: dict[str, Any] = {}
    ready = threading.Event()
    thread = threading.Thread(target=_python_client_list_and_watch, args=(server.url, results, ready))
    thread.start()
    while not ready.is_set():
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # let the client's watch request arrive; it resumes from the list's version anyway
    await handlers.create(PODS, "default", {"metadata": {"name": "second"}, "spec": spec})
    await handlers.delete_one(PODS, "default", "first", {}, RequestContext())
    while thread.is_alive():
        await asyncio.sleep(0.05)
    assert results["listed"] == ["first"]
    assert results["seen"] == [("ADDED", "second"), ("DELETED", "first")]


LIST_YAML = b"""
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: listed}, data: {x: "1"}}
- {apiVersion: v1, kind: Service, metadata: {name: listed}, spec: {selector: {app: l}, ports: [{port: 80}]}}
"""

BAD_LIST_YAML = b"""
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: bad}, spec: {bogus: 1, ports: [{port: "eighty"}]}}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: bad}
  spec: {replicas: "x", selector: {matchLabels: {a: b}},
         template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: nginx}]}}}
"""


@needs_kubectl
@pytest.mark.e2e
async def test_kubectl_applies_a_list_document(tmp_path: Path, kubeconfig: Path) -> None:
    """kubectl validates a `kind: List` file itself, against /openapi/v2 in protobuf."""
    rc, out, err = await kubectl(tmp_path, kubeconfig, "apply", "-f", "-", stdin=LIST_YAML)
    assert rc == 0, err
    assert out.split("\n")[:2] == ["configmap/listed created", "service/listed created"]
    rc, out, err = await kubectl(tmp_path, kubeconfig, "apply", "-f", "-", stdin=BAD_LIST_YAML)
    assert rc == 1
    for problem in ('ValidationError(Service.spec): unknown field "bogus" in io.k8s.api.core.v1.ServiceSpec',
                    "ValidationError(Service.spec.ports[0].port): invalid type for io.k8s.api.core.v1.ServicePort.port: "
                    'got "string", expected "integer"',
                    "ValidationError(Deployment.spec.replicas): invalid type for io.k8s.api.apps.v1.DeploymentSpec."
                    'replicas: got "string", expected "integer"'):
        assert problem in err, err
    rc, out, err = await kubectl(tmp_path, kubeconfig, "get", "svc,deploy", "bad", "--ignore-not-found", "-o", "name")
    assert (rc, out) == (0, ""), err  # refused before anything was sent


@needs_kubectl
@pytest.mark.e2e
async def test_kubectl_typed_creates_send_protobuf(tmp_path: Path, kubeconfig: Path) -> None:
    """`kubectl create <kind>` uses typed clients, whose bodies are Kubernetes protobuf."""
    for args in (("create", "namespace", "team"),
                 ("create", "configmap", "cfg", "--from-literal=a=b", "--from-literal=empty="),
                 ("create", "deployment", "web", "--image=nginx", "--replicas=0", "--port=80")):
        rc, out, err = await kubectl(tmp_path, kubeconfig, *args)
        assert rc == 0, err
    rc, out, err = await kubectl(tmp_path, kubeconfig, "get", "configmap", "cfg", "-o", "json")
    assert rc == 0, err
    assert json.loads(out)["data"] == {"a": "b", "empty": ""}
    rc, out, err = await kubectl(tmp_path, kubeconfig, "get", "deployment", "web", "-o", "json")
    d = json.loads(out)
    assert d["spec"]["replicas"] == 0 and d["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    container = d["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx" and container["ports"][0]["containerPort"] == 80
    assert "hostPort" not in container["ports"][0] and "tty" not in container
    rc, out, err = await kubectl(tmp_path, kubeconfig, "get", "namespace", "team", "-o", "jsonpath={.metadata.name}")
    assert (rc, out) == (0, "team"), err
