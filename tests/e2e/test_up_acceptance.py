"""The acceptance run of `sliceplane up`, as a new user does it: real processes, real kubectl."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import FIXTURES, Kubectl, Up, all_pods_ready, free_port, ready_endpoints, slices_of, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Up, Kubectl]]:
    up = Up(tmp_path_factory.mktemp("up") / "data", free_port(), nodes=3)
    up.start()
    try:
        yield up, Kubectl(up.kubeconfig)
    finally:
        code = up.stop()
        assert code == 0, f"sliceplane up exited with {code}:\n{up.logs()}"


def _ports(slices: list[dict]) -> set[tuple[str, int]]:
    return {(p.get("name", ""), p["port"]) for s in slices for p in (s.get("ports") or [])}


def _endpoints_addresses(k: Kubectl, name: str, namespace: str = "default") -> list[str]:
    ep = k.json("get", "endpoints", name, "-n", namespace)
    return sorted(a["ip"] for sub in ep.get("subsets") or [] for a in sub.get("addresses") or [])


def test_guestbook(cluster: tuple[Up, Kubectl]) -> None:
    _, k = cluster
    k.run("apply", "-f", str(FIXTURES / "guestbook-all-in-one.yaml"))
    wait_for(lambda: all_pods_ready(k) and len(k.json("get", "pods")["items"]) == 6, 30, what="pods ready")

    expected = {"frontend": (3, 80), "redis-replica": (2, 6379), "redis-master": (1, 6379)}

    def converged() -> bool:
        return all(len(ready_endpoints(slices_of(k, svc))) == n for svc, (n, _) in expected.items())

    wait_for(converged, 15, what="guestbook slices")
    pods_by_ip = {p["status"]["podIP"]: p for p in k.json("get", "pods")["items"]}
    for svc, (n, port) in expected.items():
        slices = slices_of(k, svc)
        assert len(slices) == 1
        s = slices[0]
        assert s["addressType"] == "IPv4"
        assert _ports(slices) == {("", port)}
        labels = s["metadata"]["labels"]
        assert labels["kubernetes.io/service-name"] == svc
        assert labels["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        owner = s["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("Service", svc, True)
        assert "endpoints.kubernetes.io/last-change-trigger-time" in s["metadata"]["annotations"]
        eps = ready_endpoints(slices)
        assert len(eps) == n
        for ep in eps:
            pod = pods_by_ip[ep["addresses"][0]]
            assert ep["targetRef"]["name"] == pod["metadata"]["name"]
            assert ep["nodeName"] == pod["spec"]["nodeName"]
            assert ep["zone"] in ("zone-a", "zone-b", "zone-c")
            assert ep["conditions"] == {"ready": True, "serving": True, "terminating": False}
        # The legacy Endpoints object agrees.
        assert _endpoints_addresses(k, svc) == sorted(ep["addresses"][0] for ep in eps)

    # kubectl get prints Kubernetes' columns.
    out = k.run("get", "endpointslices").stdout.splitlines()
    assert out[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    svc_out = k.run("get", "svc", "frontend").stdout.splitlines()
    assert svc_out[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert svc_out[1].split()[1] == "NodePort"
    assert svc_out[1].split()[4].startswith("80:3")


def test_bookinfo(cluster: tuple[Up, Kubectl]) -> None:
    _, k = cluster
    k.run("create", "namespace", "bookinfo")
    k.run("apply", "-n", "bookinfo", "-f", str(FIXTURES / "bookinfo.yaml"))
    wait_for(lambda: all_pods_ready(k, "bookinfo") and len(k.json("get", "pods", "-n", "bookinfo")["items"]) == 6,
             30, what="bookinfo pods ready")
    wait_for(lambda: len(ready_endpoints(slices_of(k, "reviews", "bookinfo"))) == 3, 15, what="reviews slices")
    slices = slices_of(k, "reviews", "bookinfo")
    assert _ports(slices) == {("http", 9080)}
    versions = {
        p["metadata"]["labels"]["version"]
        for p in k.json("get", "pods", "-n", "bookinfo", "-l", "app=reviews")["items"]
    }
    assert versions == {"v1", "v2", "v3"}
    assert k.json("get", "serviceaccount", "bookinfo-reviews", "-n", "bookinfo")["metadata"]["name"] == (
        "bookinfo-reviews"
    )


def test_scale_and_rollout(cluster: tuple[Up, Kubectl]) -> None:
    _, k = cluster
    with k.stream("get", "endpointslices", "-w", "-l", "kubernetes.io/service-name=frontend") as watch:
        k.run("scale", "deployment", "frontend", "--replicas=250")

        def scaled() -> bool:
            return len(ready_endpoints(slices_of(k, "frontend"))) == 250

        wait_for(scaled, 90, interval=1, what="250 ready endpoints")
        slices = slices_of(k, "frontend")
        # Slices of at most 100, at least 3 of them. How many more depends on how pod changes were
        # grouped into syncs, as in Kubernetes: a batch goes to a new slice unless an untouched one
        # has room for all of it, so batches of 60, 60, 70 and 60 make 4 (seen under load).
        assert len(slices) >= 3
        assert all(len(s["endpoints"]) <= 100 for s in slices)
        assert sum(len(s["endpoints"]) for s in slices) == 250

        k.run("rollout", "restart", "deployment", "frontend")
        k.run("rollout", "status", "deployment", "frontend", "--timeout=180s", timeout=200)

        def only_new_pods() -> bool:
            pods = [p for p in k.json("get", "pods", "-l", "app=guestbook,tier=frontend")["items"]
                    if not p["metadata"].get("deletionTimestamp")]
            new_ips = sorted(p["status"].get("podIP", "") for p in pods)
            eps = [ep for s in slices_of(k, "frontend") for ep in s.get("endpoints") or []]
            return (len(pods) == 250 and len(eps) == 250 and all(ep["conditions"]["ready"] for ep in eps)
                    and sorted(ep["addresses"][0] for ep in eps) == new_ips)

        wait_for(only_new_pods, 60, interval=1, what="slices hold exactly the new pods")
        time.sleep(1)
    streamed = watch.stdout.read() if watch.stdout else ""  # type: ignore[union-attr]
    lines = [ln for ln in streamed.splitlines() if ln.strip()]
    assert lines[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert len(lines) > 10, streamed  # every slice change was streamed


def test_python_client_lists_and_watches(cluster: tuple[Up, Kubectl]) -> None:
    from kubernetes import client, config, watch

    up, _ = cluster
    api_client = config.new_client_from_config(str(up.kubeconfig))
    try:
        discovery = client.DiscoveryV1Api(api_client)
        slices = discovery.list_namespaced_endpoint_slice("default")
        names = {s.metadata.labels["kubernetes.io/service-name"] for s in slices.items}
        assert {"frontend", "redis-master", "redis-replica"} <= names
        w = watch.Watch()
        seen = []
        for ev in w.stream(discovery.list_namespaced_endpoint_slice, "default",
                           resource_version="0", timeout_seconds=5):
            seen.append((ev["type"], ev["object"].metadata.name))
            if len(seen) >= len(slices.items):
                w.stop()
        assert {t for t, _ in seen} == {"ADDED"}
        assert {n for _, n in seen} == {s.metadata.name for s in slices.items}
    finally:
        api_client.close()


BAD_SLICE = {
    "apiVersion": "discovery.k8s.io/v1",
    "kind": "EndpointSlice",
    "metadata": {"name": "bad"},
    "addressType": "IPv4",
    "endpoints": [{"addresses": ["10.0.0.1"]}],
    "ports": [{"port": 80}],
}


def _bad(k: Kubectl, obj: dict, *extra: str) -> str:
    p = k.run("create", *extra, "-f", "-", input=json.dumps(obj), check=False)
    assert p.returncode != 0, p.stdout
    return p.stderr


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"endpoints": [{"addresses": [f"10.1.{i // 250}.{i % 250 + 1}"]} for i in range(1001)]},
         "endpoints: Too many: 1001: must have at most 1000 items"),
        ({"addressType": "IPv5"}, 'addressType: Unsupported value: "IPv5"'),
        ({"endpoints": [{"addresses": ["not-an-ip"]}]}, "endpoints[0].addresses[0]: Invalid value: \"not-an-ip\""),
    ],
    ids=["1001-endpoints", "bad-address-type", "invalid-ip"],
)
def test_bad_slices(cluster: tuple[Up, Kubectl], change: dict, expect: str) -> None:
    _, k = cluster
    err = _bad(k, {**BAD_SLICE, **change})
    assert "is invalid" in err and expect in err, err


def test_bad_service_port(cluster: tuple[Up, Kubectl]) -> None:
    _, k = cluster
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad-port"},
           "spec": {"selector": {"a": "b"}, "ports": [{"port": 0}]}}
    err = _bad(k, svc)
    assert 'The Service "bad-port" is invalid' in err and "spec.ports[0].port: Invalid value: 0" in err, err


def test_malformed_input(cluster: tuple[Up, Kubectl], tmp_path: Path) -> None:
    up, k = cluster
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [unclosed\n")
    p = k.run("apply", "-f", str(bad_yaml), check=False)
    assert p.returncode != 0 and "error" in p.stderr.lower()
    # Malformed bodies straight to the server: 400 BadRequest Status, server stays up.
    import urllib.error
    import urllib.request

    for body, ctype in ((b'{"apiVersion": "v1", "kind": ', "application/json"),
                        (b"kind: [unclosed", "application/yaml")):
        req = urllib.request.Request(f"{up.url}/api/v1/namespaces/default/configmaps", data=body,
                                     method="POST", headers={"Content-Type": ctype})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        status = json.loads(exc.value.read())
        assert (exc.value.code, status["kind"], status["reason"], status["code"]) == (
            400, "Status", "BadRequest", 400)
    assert k.run("get", "--raw", "/healthz").stdout.strip() == "ok"


def test_unknown_field_strict(cluster: tuple[Up, Kubectl]) -> None:
    _, k = cluster
    cm = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "strict"},
          "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}], "bogusField": 1}}
    err = _bad(k, cm)
    assert 'unknown field "spec.bogusField"' in err, err


def test_object_over_size_limit(cluster: tuple[Up, Kubectl]) -> None:
    """The seed's failure: an Endpoints object with 80,000 addresses (about 1.8 MB) is valid but over
    the 1.5 MiB object limit, so the API server refuses it with 413, whatever the store."""
    _, k = cluster
    addresses = [{"ip": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"} for i in range(80_000)]
    ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "huge"},
          "subsets": [{"addresses": addresses, "ports": [{"port": 80}]}]}
    body = json.dumps(ep)
    assert 1536 * 1024 < len(body) < 3 * 1024 * 1024
    err = _bad(k, ep)
    assert "Request entity too large" in err or "is too large" in err, err
    assert k.run("get", "endpoints", "huge", check=False).returncode != 0


def test_stale_resource_version(cluster: tuple[Up, Kubectl]) -> None:
    _, k = cluster
    k.run("create", "configmap", "cas", "--from-literal=a=1")
    cm = k.json("get", "configmap", "cas")
    cm["data"]["a"] = "2"
    k.run("replace", "-f", "-", input=json.dumps(cm))
    cm["data"]["a"] = "3"  # still carries the old resourceVersion
    p = k.run("replace", "-f", "-", input=json.dumps(cm), check=False)
    assert p.returncode != 0
    assert "the object has been modified; please apply your changes to the latest version" in p.stderr, p.stderr
    assert k.json("get", "configmap", "cas")["data"]["a"] == "2"
