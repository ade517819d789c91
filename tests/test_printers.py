"""Table printing: column headers and cells as `kubectl get [-o wide]` shows them from a 1.32 server."""

from __future__ import annotations

from typing import Any

import pytest

from sliceplane.api import registry
from sliceplane.api.meta import parse_time
from sliceplane.api.printers import human_duration, table

NOW = parse_time("2026-12-03T12:00:00Z")


def ago(seconds: int) -> str:
    from sliceplane.api.meta import rfc3339

    return rfc3339(NOW - seconds)


def meta(name: str, age: int = 300, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "42",
            "creationTimestamp": ago(age), **extra}


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0s"), (-1, "0s"), (-5, "<invalid>"), (5, "5s"), (119, "119s"), (120, "2m"), (182, "3m2s"),
     (599, "9m59s"), (600, "10m"), (10799, "179m"), (10800, "3h"), (18180, "5h3m"), (28800, "8h"),
     (47 * 3600, "47h"), (48 * 3600, "2d"), (3 * 86400 + 5 * 3600, "3d5h"), (8 * 86400, "8d"),
     (400 * 86400, "400d"), (730 * 86400, "2y"), (735 * 86400, "2y5d"), (9 * 365 * 86400, "9y")],
    ids=lambda v: str(v),
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


HEADERS = [
    (registry.NAMESPACES, ["NAME", "STATUS", "AGE"], []),
    (registry.NODES, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
     ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]),
    (registry.PODS, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]),
    (registry.SERVICES, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], ["SELECTOR"]),
    (registry.ENDPOINTS, ["NAME", "ENDPOINTS", "AGE"], []),
    (registry.ENDPOINT_SLICES, ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"], []),
    (registry.DEPLOYMENTS, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"]),
    (registry.REPLICA_SETS, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"]),
    (registry.LEASES, ["NAME", "HOLDER", "AGE"], []),
    (registry.SERVICE_ACCOUNTS, ["NAME", "SECRETS", "AGE"], []),
    (registry.CONFIG_MAPS, ["NAME", "DATA", "AGE"], []),
    (registry.SECRETS, ["NAME", "TYPE", "DATA", "AGE"], []),
]


@pytest.mark.parametrize("info, normal, wide", HEADERS, ids=[h[0].kind for h in HEADERS])
def test_headers(info: registry.ResourceInfo, normal: list[str], wide: list[str]) -> None:
    cols = table(info, [], NOW)["columnDefinitions"]
    assert [c["name"].upper() for c in cols if c["priority"] == 0] == normal
    assert [c["name"].upper() for c in cols if c["priority"] == 1] == wide
    assert cols[0] == {**cols[0], "name": "Name", "type": "string", "format": "name", "priority": 0}
    assert all(set(c) == {"name", "type", "format", "description", "priority"} and c["description"] for c in cols)


def test_generic_headers_for_other_kinds() -> None:
    info = registry.ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True, opaque=True)
    t = table(info, [{"metadata": meta("w1", age=45)}], NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]
    assert t["rows"][0]["cells"] == ["w1", "45s"]


def running_pod(name: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta(name, age=3600),
        "spec": {"nodeName": "node-2", "containers": [{"name": "app", "image": "nginx"}, {"name": "sidecar",
                                                                                          "image": "envoy"}]},
        "status": {
            "phase": "Running", "podIP": "10.244.2.7", "podIPs": [{"ip": "10.244.2.7"}],
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": ago(3500)}}},
                {"name": "sidecar", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": ago(3500)}}},
            ],
            **status,
        },
    }


def with_container_status(pod: dict[str, Any], index: int, **cs: Any) -> dict[str, Any]:
    import copy

    pod = copy.deepcopy(pod)
    pod["status"]["containerStatuses"][index].update(cs)
    return pod


PENDING = {"apiVersion": "v1", "kind": "Pod", "metadata": meta("pending", age=5),
           "spec": {"containers": [{"name": "app", "image": "nginx"}]}, "status": {"phase": "Pending"}}

POD_ROWS = [
    ("running", running_pod("web-1"),
     ["web-1", "2/2", "Running", "0", "60m", "10.244.2.7", "node-2", "<none>", "<none>"]),
    ("pending-unscheduled", PENDING, ["pending", "0/1", "Pending", "0", "5s", "<none>", "<none>", "<none>", "<none>"]),
    ("crashloop", with_container_status(
        running_pod("web-2"), 0, ready=False, restartCount=4,
        state={"waiting": {"reason": "CrashLoopBackOff"}},
        lastState={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(62)}}),
     ["web-2", "1/2", "CrashLoopBackOff", "4 (62s ago)", "60m", "10.244.2.7", "node-2", "<none>", "<none>"]),
    ("container-creating", with_container_status(
        running_pod("web-3", phase="Pending"), 1, ready=False, state={"waiting": {"reason": "ContainerCreating"}}),
     ["web-3", "1/2", "ContainerCreating", "0", "60m", "10.244.2.7", "node-2", "<none>", "<none>"]),
    ("completed", {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta("job-x", age=7200),
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "nodeName": "node-1"},
        "status": {"phase": "Succeeded", "containerStatuses": [
            {"name": "c", "ready": False, "restartCount": 0,
             "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}},
     ["job-x", "0/1", "Completed", "0", "120m", "<none>", "node-1", "<none>", "<none>"]),
    ("exit-code", with_container_status(running_pod("web-4"), 1, ready=False,
                                        state={"terminated": {"exitCode": 137}}),
     ["web-4", "1/2", "ExitCode:137", "0", "60m", "10.244.2.7", "node-2", "<none>", "<none>"]),
    ("terminating", {**running_pod("web-5"), "metadata": meta("web-5", age=3600, deletionTimestamp=ago(0))},
     ["web-5", "2/2", "Terminating", "0", "60m", "10.244.2.7", "node-2", "<none>", "<none>"]),
    ("init-waiting", {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta("init", age=30),
        "spec": {"initContainers": [{"name": "setup", "image": "busybox"}, {"name": "migrate", "image": "m"}],
                 "containers": [{"name": "app", "image": "nginx"}]},
        "status": {"phase": "Pending", "initContainerStatuses": [
            {"name": "setup", "state": {"terminated": {"exitCode": 0}}, "restartCount": 0},
            {"name": "migrate", "state": {"running": {}}, "restartCount": 0}],
            "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}},
     ["init", "0/1", "Init:1/2", "0", "30s", "<none>", "<none>", "<none>", "<none>"]),
    ("init-error", {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta("init-err", age=30),
        "spec": {"initContainers": [{"name": "setup", "image": "busybox"}], "containers": [{"name": "a", "image": "x"}]},
        "status": {"phase": "Pending", "initContainerStatuses": [
            {"name": "setup", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 2,
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(10)}}}]}},
     ["init-err", "0/1", "Init:CrashLoopBackOff", "2 (10s ago)", "30s", "<none>", "<none>", "<none>", "<none>"]),
    ("sidecar-init", {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta("side", age=100),
        "spec": {"initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
                 "containers": [{"name": "a", "image": "x"}], "nodeName": "node-1"},
        "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                   "initContainerStatuses": [{"name": "proxy", "started": True, "ready": True, "restartCount": 1,
                                              "state": {"running": {}}}],
                   "containerStatuses": [{"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}}]}},
     ["side", "2/2", "Running", "1", "100s", "<none>", "node-1", "<none>", "<none>"]),
    ("readiness-gates", {**running_pod("web-6"), "spec": {
        **running_pod("web-6")["spec"], "readinessGates": [{"conditionType": "example.com/lb"},
                                                           {"conditionType": "example.com/other"}]}},
     ["web-6", "2/2", "Running", "0", "60m", "10.244.2.7", "node-2", "<none>", "0/2"]),
    ("nominated", running_pod("web-7", nominatedNodeName="node-9"),
     ["web-7", "2/2", "Running", "0", "60m", "10.244.2.7", "node-2", "node-9", "<none>"]),
]


@pytest.mark.parametrize("case, pod, cells", POD_ROWS, ids=[r[0] for r in POD_ROWS])
def test_pod_rows(case: str, pod: dict[str, Any], cells: list[Any]) -> None:
    assert table(registry.PODS, [pod], NOW)["rows"][0]["cells"] == cells


def test_pod_row_conditions() -> None:
    done = POD_ROWS[4][1]
    row = table(registry.PODS, [done], NOW)["rows"][0]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]
    assert "conditions" not in table(registry.PODS, [PENDING], NOW)["rows"][0]


def svc(name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, age=182), "spec": spec,
            "status": status or {"loadBalancer": {}}}


SERVICE_ROWS = [
    ("cluster-ip", svc("web", {"type": "ClusterIP", "clusterIP": "10.96.12.4", "clusterIPs": ["10.96.12.4"],
                               "selector": {"tier": "frontend", "app": "guestbook"},
                               "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}),
     ["web", "ClusterIP", "10.96.12.4", "<none>", "80/TCP", "3m2s", "app=guestbook,tier=frontend"]),
    ("headless-multi-port", svc("db", {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                                       "ports": [{"name": "a", "port": 5432, "protocol": "TCP"},
                                                 {"name": "b", "port": 53, "protocol": "UDP"}]}),
     ["db", "ClusterIP", "None", "<none>", "5432/TCP,53/UDP", "3m2s", "<none>"]),
    ("node-port", svc("np", {"type": "NodePort", "clusterIP": "10.96.0.9", "externalIPs": ["192.0.2.10"],
                             "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}], "selector": {"a": "b"}}),
     ["np", "NodePort", "10.96.0.9", "192.0.2.10", "80:30080/TCP", "3m2s", "a=b"]),
    ("lb-pending", svc("lb", {"type": "LoadBalancer", "clusterIPs": ["10.96.0.3"],
                              "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
     ["lb", "LoadBalancer", "10.96.0.3", "<pending>", "443:31443/TCP", "3m2s", "<none>"]),
    ("lb-ingress", svc("lb2", {"type": "LoadBalancer", "clusterIPs": ["10.96.0.4"],
                               "ports": [{"port": 443, "nodePort": 31444, "protocol": "TCP"}]},
                       {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}, {"ip": "203.0.113.5"}]}}),
     ["lb2", "LoadBalancer", "10.96.0.4", "203.0.113.5,lb.example.com", "443:31444/TCP", "3m2s", "<none>"]),
    ("external-name", svc("ext", {"type": "ExternalName", "externalName": "db.example.com"}),
     ["ext", "ExternalName", "<none>", "db.example.com", "<none>", "3m2s", "<none>"]),
]


@pytest.mark.parametrize("case, obj, cells", SERVICE_ROWS, ids=[r[0] for r in SERVICE_ROWS])
def test_service_rows(case: str, obj: dict[str, Any], cells: list[Any]) -> None:
    assert table(registry.SERVICES, [obj], NOW)["rows"][0]["cells"] == cells


def endpoints(subsets: list[dict[str, Any]] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta("web", age=600)}
    if subsets is not None:
        obj["subsets"] = subsets
    return obj


def addrs(n: int, base: str = "10.244.0.") -> list[dict[str, str]]:
    return [{"ip": f"{base}{i + 1}"} for i in range(n)]


ENDPOINTS_ROWS = [
    ("none", endpoints(None), "<none>"),
    ("one", endpoints([{"addresses": addrs(1), "ports": [{"port": 8080, "protocol": "TCP"}]}]), "10.244.0.1:8080"),
    ("three", endpoints([{"addresses": addrs(3), "ports": [{"port": 80}]}]),
     "10.244.0.1:80,10.244.0.2:80,10.244.0.3:80"),
    ("more", endpoints([{"addresses": addrs(5), "ports": [{"port": 80}]}]),
     "10.244.0.1:80,10.244.0.2:80,10.244.0.3:80 + 2 more..."),
    ("two-ports", endpoints([{"addresses": addrs(2), "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 443}]}]),
     "10.244.0.1:80,10.244.0.2:80,10.244.0.1:443 + 1 more..."),
    ("headless-no-ports", endpoints([{"addresses": addrs(4)}]), "10.244.0.1,10.244.0.2,10.244.0.3 + 1 more..."),
    ("ipv6", endpoints([{"addresses": [{"ip": "fd00::5"}], "ports": [{"port": 80}]}]), "[fd00::5]:80"),
    ("only-not-ready", endpoints([{"notReadyAddresses": addrs(2), "ports": [{"port": 80}]}]), ""),
]


@pytest.mark.parametrize("case, obj, text", ENDPOINTS_ROWS, ids=[r[0] for r in ENDPOINTS_ROWS])
def test_endpoints_rows(case: str, obj: dict[str, Any], text: str) -> None:
    assert table(registry.ENDPOINTS, [obj], NOW)["rows"][0]["cells"] == ["web", text, "10m"]


def eps(addresses: list[list[str]], ports: list[dict[str, Any]] | None, address_type: str = "IPv4") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta("web-abc12", age=18180),
        "addressType": address_type,
        "endpoints": [{"addresses": a, "conditions": {"ready": True}} for a in addresses],
    }
    if ports is not None:
        obj["ports"] = ports
    return obj


SLICE_ROWS = [
    ("one", eps([["10.244.1.5"]], [{"name": "http", "port": 80, "protocol": "TCP"}]), "80", "10.244.1.5"),
    ("no-endpoints", eps([], [{"name": "", "port": 80, "protocol": "TCP"}]), "80", "<unset>"),
    ("no-ports", eps([["10.244.1.5"]], None), "<unset>", "10.244.1.5"),
    ("nil-port-named", eps([["10.244.1.5"]], [{"name": "", "port": None, "protocol": "TCP"}]), "<unset>", "10.244.1.5"),
    ("nil-port-no-name", eps([["10.244.1.5"]], [{"protocol": "TCP"}]), "*", "10.244.1.5"),
    ("many", eps([[f"10.244.1.{i}"] for i in range(1, 8)],
                 [{"name": f"p{i}", "port": 8000 + i, "protocol": "TCP"} for i in range(5)]),
     "8000,8001,8002 + 2 more...", "10.244.1.1,10.244.1.2,10.244.1.3 + 4 more..."),
    ("exactly-three", eps([["10.244.1.1", "10.244.1.2"], ["10.244.1.3"]], [{"name": "a", "port": 1}]), "1",
     "10.244.1.1,10.244.1.2,10.244.1.3"),
]


@pytest.mark.parametrize("case, obj, ports, endpoints_text", SLICE_ROWS, ids=[r[0] for r in SLICE_ROWS])
def test_endpoint_slice_rows(case: str, obj: dict[str, Any], ports: str, endpoints_text: str) -> None:
    assert table(registry.ENDPOINT_SLICES, [obj], NOW)["rows"][0]["cells"] == [
        "web-abc12", "IPv4", ports, endpoints_text, "5h3m"]


DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("frontend", age=3 * 86400),
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "guestbook", "tier": "frontend"}},
             "template": {"metadata": {"labels": {"app": "guestbook", "tier": "frontend"}},
                          "spec": {"containers": [{"name": "php-redis", "image": "gb-frontend:v5"},
                                                  {"name": "log", "image": "busybox"}]}}},
    "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
}


def test_deployment_row() -> None:
    assert table(registry.DEPLOYMENTS, [DEPLOYMENT], NOW)["rows"][0]["cells"] == [
        "frontend", "2/3", 3, 2, "3d", "php-redis,log", "gb-frontend:v5,busybox", "app=guestbook,tier=frontend"]


def test_deployment_without_status_and_expressions() -> None:
    d = {"metadata": meta("d", age=1), "spec": {
        "selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                          {"key": "app", "operator": "Exists"}]},
        "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    assert table(registry.DEPLOYMENTS, [d], NOW)["rows"][0]["cells"] == [
        "d", "0/1", 0, 0, "1s", "c", "i", "app,tier in (a,b)"]


def test_replica_set_row() -> None:
    rs = {"metadata": meta("frontend-6c6d4b", age=600),
          "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "guestbook", "pod-template-hash": "6c6d4b"}},
                   "template": {"spec": {"containers": [{"name": "php-redis", "image": "gb-frontend:v5"}]}}},
          "status": {"replicas": 3, "readyReplicas": 1}}
    assert table(registry.REPLICA_SETS, [rs], NOW)["rows"][0]["cells"] == [
        "frontend-6c6d4b", 3, 3, 1, "10m", "php-redis", "gb-frontend:v5", "app=guestbook,pod-template-hash=6c6d4b"]


NODE_ROWS = [
    ("ready-worker", {"metadata": meta("node-1", age=5 * 86400, labels={"kubernetes.io/hostname": "node-1"}),
                      "spec": {"podCIDR": "10.244.1.0/24"},
                      "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                                {"type": "Ready", "status": "True"}],
                                 "addresses": [{"type": "InternalIP", "address": "172.18.0.2"},
                                               {"type": "Hostname", "address": "node-1"}],
                                 "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                              "kernelVersion": "6.1.0-18-amd64",
                                              "containerRuntimeVersion": "containerd://1.7.13"}}},
     ["node-1", "Ready", "<none>", "5d", "v1.32.0", "172.18.0.2", "<none>", "Debian GNU/Linux 12 (bookworm)",
      "6.1.0-18-amd64", "containerd://1.7.13"]),
    ("cordoned-control-plane", {
        "metadata": meta("cp", age=90, labels={"node-role.kubernetes.io/control-plane": "",
                                               "node-role.kubernetes.io/etcd": "", "kubernetes.io/role": "master"}),
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
     ["cp", "NotReady,SchedulingDisabled", "control-plane,etcd,master", "90s", "", "<none>", "<none>", "<unknown>",
      "<unknown>", "<unknown>"]),
    ("no-conditions", {"metadata": meta("new", age=1)},
     ["new", "Unknown", "<none>", "1s", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]),
]


@pytest.mark.parametrize("case, obj, cells", NODE_ROWS, ids=[r[0] for r in NODE_ROWS])
def test_node_rows(case: str, obj: dict[str, Any], cells: list[Any]) -> None:
    assert table(registry.NODES, [obj], NOW)["rows"][0]["cells"] == cells


OTHER_ROWS = [
    (registry.NAMESPACES, {"metadata": meta("team-a", age=400 * 86400), "status": {"phase": "Active"}},
     ["team-a", "Active", "400d"]),
    (registry.NAMESPACES, {"metadata": meta("old", age=60), "status": {"phase": "Terminating"}},
     ["old", "Terminating", "60s"]),
    (registry.LEASES, {"metadata": meta("kcm", age=10), "spec": {"holderIdentity": "cm-1_abc"}},
     ["kcm", "cm-1_abc", "10s"]),
    (registry.LEASES, {"metadata": meta("free", age=10), "spec": {}}, ["free", "", "10s"]),
    (registry.SERVICE_ACCOUNTS, {"metadata": meta("bookinfo-details", age=30)}, ["bookinfo-details", 0, "30s"]),
    (registry.CONFIG_MAPS, {"metadata": meta("cfg", age=30), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}},
     ["cfg", 3, "30s"]),
    (registry.SECRETS, {"metadata": meta("tls", age=30), "type": "kubernetes.io/tls",
                        "data": {"tls.crt": "x", "tls.key": "y"}}, ["tls", "kubernetes.io/tls", 2, "30s"]),
    (registry.SECRETS, {"metadata": meta("s", age=30)}, ["s", "Opaque", 0, "30s"]),
    (registry.PODS, {"metadata": {"name": "no-time"}}, ["no-time", "0/0", "", "0", "<unknown>", "<none>", "<none>",
                                                       "<none>", "<none>"]),
]


@pytest.mark.parametrize("info, obj, cells", OTHER_ROWS, ids=[f"{r[0].kind}-{r[1]['metadata']['name']}" for r in OTHER_ROWS])
def test_other_rows(info: registry.ResourceInfo, obj: dict[str, Any], cells: list[Any]) -> None:
    assert table(info, [obj], NOW)["rows"][0]["cells"] == cells


@pytest.mark.parametrize(
    "include, expected",
    [
        ("Metadata", {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                      "metadata": DEPLOYMENT["metadata"]}),
        ("Object", DEPLOYMENT),
        ("None", None),
    ],
    ids=["metadata", "object", "none"],
)
def test_row_object(include: str, expected: dict[str, Any] | None) -> None:
    t = table(registry.DEPLOYMENTS, [DEPLOYMENT], NOW, include_object=include)
    assert t["kind"] == "Table"
    assert t["apiVersion"] == "meta.k8s.io/v1"
    assert t["rows"][0].get("object") == expected


def test_rows_keep_order_and_never_fail_on_garbage() -> None:
    objs = [{"metadata": meta(f"p{i}", age=i)} for i in range(3)]
    garbage: list[dict[str, Any]] = [{"metadata": "x", "spec": 5, "status": []},
                                     {"spec": {"containers": "x", "ports": 7}, "status": {"containerStatuses": [1]}}]
    for info in registry.RESOURCES:
        t = table(info, objs + garbage, NOW)
        assert len(t["rows"]) == 5
        width = len(t["columnDefinitions"])
        assert all(len(r["cells"]) == width for r in t["rows"])
    assert [r["cells"][0] for r in table(registry.PODS, objs, NOW)["rows"]] == ["p0", "p1", "p2"]


@pytest.mark.parametrize(
    "info, selector, text",
    [
        (registry.DEPLOYMENTS, {}, ""),
        (registry.DEPLOYMENTS, {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, "<invalid>"),
        (registry.REPLICA_SETS, {}, "<none>"),
        (registry.REPLICA_SETS, {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, "<error>"),
        (registry.REPLICA_SETS, {"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ],
    ids=["deploy-empty", "deploy-invalid", "rs-empty", "rs-invalid", "rs-sorted"],
)
def test_selector_cell(info: registry.ResourceInfo, selector: dict[str, Any], text: str) -> None:
    obj = {"metadata": meta("x"), "spec": {"replicas": 1, "selector": selector, "template": {"spec": {}}}}
    assert table(info, [obj], NOW)["rows"][0]["cells"][-1] == text


EVENT_ROWS = [
    ("classic", {"metadata": meta("web-1.17a", age=600), "involvedObject": {"kind": "Pod", "name": "web-1",
                                                                             "fieldPath": "spec.containers{app}"},
                 "reason": "Pulled", "message": "Container image already present\n", "type": "Normal",
                 "source": {"component": "kubelet", "host": "node-1"}, "count": 3,
                 "firstTimestamp": ago(600), "lastTimestamp": ago(65)},
     ["65s", "Normal", "Pulled", "pod/web-1", "spec.containers{app}", "kubelet, node-1",
      "Container image already present", "10m", 3, "web-1.17a"]),
    ("new-api-singleton", {"metadata": meta("e2", age=30), "involvedObject": {"kind": "Node"},
                           "reason": "Starting", "message": "m", "type": "Normal",
                           "reportingComponent": "sliceplane-fleet", "eventTime": "2026-12-03T11:59:30.000000Z"},
     ["30s", "Normal", "Starting", "node", "", "sliceplane-fleet", "m", "30s", 1, "e2"]),
    ("series", {"metadata": meta("e3", age=300), "involvedObject": {"kind": "Pod", "name": "p"},
                "reason": "BackOff", "message": "x", "type": "Warning", "firstTimestamp": ago(300),
                "series": {"count": 7, "lastObservedTime": "2026-12-03T11:59:50.000000Z"}},
     ["10s", "Warning", "BackOff", "pod/p", "", "", "x", "5m", 7, "e3"]),
]


@pytest.mark.parametrize("case, obj, cells", EVENT_ROWS, ids=[r[0] for r in EVENT_ROWS])
def test_event_rows(case: str, obj: dict[str, Any], cells: list[Any]) -> None:
    t = table(registry.EVENTS, [obj], NOW)
    assert [c["name"] for c in t["columnDefinitions"] if c["priority"] == 0] == [
        "Last Seen", "Type", "Reason", "Object", "Message"]
    assert t["rows"][0]["cells"] == cells


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@pytest.mark.parametrize(
    "info, base",
    [(registry.PODS, POD_ROWS[2][1]), (registry.PODS, POD_ROWS[9][1]), (registry.SERVICES, SERVICE_ROWS[4][1]),
     (registry.ENDPOINTS, ENDPOINTS_ROWS[4][1]), (registry.ENDPOINT_SLICES, SLICE_ROWS[5][1]),
     (registry.NODES, NODE_ROWS[0][1]), (registry.DEPLOYMENTS, DEPLOYMENT), (registry.EVENTS, EVENT_ROWS[0][1])],
    ids=["pod", "pod-sidecar", "svc-lb", "endpoints", "slice", "node", "deployment", "event"],
)
def test_garbage_at_any_depth_still_prints(info: registry.ResourceInfo, base: dict[str, Any]) -> None:
    """A stored object with wrong types anywhere still gets a full row (kubectl get must not fail)."""
    import copy

    width = len(table(info, [], NOW)["columnDefinitions"])
    for path in _paths(base):
        for value in (None, 7, "x", [1, None], {"a": [1]}, True):
            bad = copy.deepcopy(base)
            cur: Any = bad
            for key in path[:-1]:
                cur = cur[key]
            cur[path[-1]] = copy.deepcopy(value)
            assert len(table(info, [bad], NOW)["rows"][0]["cells"]) == width
