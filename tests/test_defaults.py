"""Kubernetes 1.32 defaulting, table-driven."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sliceplane.api import registry
from sliceplane.api.defaults import (
    apply_defaults,
    canonical_quantity,
    image_pull_policy,
    parse_quantity,
    pod_qos_class,
)


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def _svc(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
            "spec": {"ports": [{"port": 80}], **spec}}


def _pod(containers: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": containers or [{"name": "c", "image": "nginx:1.25"}], **spec}}


def _deploy(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx",
                                                           "ports": [{"containerPort": 80}]}]}},
                     **spec}}


CASES: list[tuple[str, registry.ResourceInfo, dict[str, Any], str, Any]] = [
    # Service
    ("svc-type", registry.SERVICES, _svc(), "spec.type", "ClusterIP"),
    ("svc-affinity", registry.SERVICES, _svc(), "spec.sessionAffinity", "None"),
    ("svc-protocol", registry.SERVICES, _svc(), "spec.ports.0.protocol", "TCP"),
    ("svc-targetPort", registry.SERVICES, _svc(), "spec.ports.0.targetPort", 80),
    ("svc-named-targetPort", registry.SERVICES, _svc(ports=[{"port": 80, "targetPort": "http"}]),
     "spec.ports.0.targetPort", "http"),
    ("svc-itp", registry.SERVICES, _svc(), "spec.internalTrafficPolicy", "Cluster"),
    ("svc-two-families", registry.SERVICES, _svc(ipFamilies=["IPv4", "IPv6"]), "spec.ipFamilyPolicy",
     "RequireDualStack"),
    ("svc-two-ips", registry.SERVICES, _svc(clusterIPs=["10.0.0.9", "fd00::9"]), "spec.ipFamilyPolicy",
     "RequireDualStack"),
    ("svc-nodeport-etp", registry.SERVICES, _svc(type="NodePort"), "spec.externalTrafficPolicy", "Cluster"),
    ("svc-lb-nodeports", registry.SERVICES, _svc(type="LoadBalancer"), "spec.allocateLoadBalancerNodePorts",
     True),
    ("svc-clientip-timeout", registry.SERVICES, _svc(sessionAffinity="ClientIP"),
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 10800),
    ("svc-status", registry.SERVICES, _svc(), "status", {"loadBalancer": {}}),
    # Pod
    ("pod-restartPolicy", registry.PODS, _pod(), "spec.restartPolicy", "Always"),
    ("pod-dnsPolicy", registry.PODS, _pod(), "spec.dnsPolicy", "ClusterFirst"),
    ("pod-grace", registry.PODS, _pod(), "spec.terminationGracePeriodSeconds", 30),
    ("pod-scheduler", registry.PODS, _pod(), "spec.schedulerName", "default-scheduler"),
    ("pod-securityContext", registry.PODS, _pod(), "spec.securityContext", {}),
    ("pod-serviceLinks", registry.PODS, _pod(), "spec.enableServiceLinks", True),
    ("pod-priority", registry.PODS, _pod(), "spec.priority", 0),
    ("pod-preemption", registry.PODS, _pod(), "spec.preemptionPolicy", "PreemptLowerPriority"),
    ("pod-sa-name", registry.PODS, _pod(), "spec.serviceAccountName", "default"),
    ("pod-sa", registry.PODS, _pod(), "spec.serviceAccount", "default"),
    ("pod-sa-kept", registry.PODS, _pod(serviceAccountName="bookinfo"), "spec.serviceAccount", "bookinfo"),
    ("pod-pull", registry.PODS, _pod(), "spec.containers.0.imagePullPolicy", "IfNotPresent"),
    ("pod-term-path", registry.PODS, _pod(), "spec.containers.0.terminationMessagePath", "/dev/termination-log"),
    ("pod-term-policy", registry.PODS, _pod(), "spec.containers.0.terminationMessagePolicy", "File"),
    ("pod-port-protocol", registry.PODS, _pod([{"name": "c", "image": "x", "ports": [{"containerPort": 53}]}]),
     "spec.containers.0.ports.0.protocol", "TCP"),
    ("pod-phase", registry.PODS, _pod(), "status.phase", "Pending"),
    ("pod-tolerations", registry.PODS, _pod(), "spec.tolerations", [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}]),
    ("pod-tolerate-all", registry.PODS, _pod(tolerations=[{"operator": "Exists"}]), "spec.tolerations",
     [{"operator": "Exists"}]),
    ("pod-requests-from-limits", registry.PODS,
     _pod([{"name": "c", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]),
     "spec.containers.0.resources.requests", {"cpu": "1", "memory": "1Gi"}),
    ("pod-probe", registry.PODS,
     _pod([{"name": "c", "image": "x", "readinessProbe": {"httpGet": {"port": 8080}}}]),
     "spec.containers.0.readinessProbe",
     {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10,
      "successThreshold": 1, "failureThreshold": 3}),
    ("pod-fieldRef", registry.PODS,
     _pod([{"name": "c", "image": "x", "env": [{"name": "N", "valueFrom": {"fieldRef": {
         "fieldPath": "metadata.name"}}}]}]),
     "spec.containers.0.env.0.valueFrom.fieldRef.apiVersion", "v1"),
    ("pod-volume-emptyDir", registry.PODS, _pod(volumes=[{"name": "v"}]), "spec.volumes.0", {"name": "v",
                                                                                            "emptyDir": {}}),
    ("pod-volume-secret-mode", registry.PODS, _pod(volumes=[{"name": "v", "secret": {"secretName": "s"}}]),
     "spec.volumes.0.secret.defaultMode", 420),
    ("pod-hostNetwork-ports", registry.PODS,
     _pod([{"name": "c", "image": "x", "ports": [{"containerPort": 80}]}], hostNetwork=True),
     "spec.containers.0.ports.0.hostPort", 80),
    ("pod-quantities-canonical", registry.PODS,
     _pod([{"name": "c", "image": "x", "resources": {"requests": {"cpu": 0.5, "memory": "1024Mi"},
                                                     "limits": {"cpu": 1, "memory": "1.5Gi"}}}]),
     "spec.containers.0.resources", {"requests": {"cpu": "500m", "memory": "1Gi"},
                                     "limits": {"cpu": "1", "memory": "1536Mi"}}),
    ("pod-ephemeral-container", registry.PODS,
     _pod(ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
     "spec.ephemeralContainers.0.imagePullPolicy", "Always"),
    # Deployment
    ("deploy-replicas", registry.DEPLOYMENTS, _deploy(), "spec.replicas", 1),
    ("deploy-replicas-zero-kept", registry.DEPLOYMENTS, _deploy(replicas=0), "spec.replicas", 0),
    ("deploy-strategy", registry.DEPLOYMENTS, _deploy(), "spec.strategy",
     {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
    ("deploy-recreate", registry.DEPLOYMENTS, _deploy(strategy={"type": "Recreate"}), "spec.strategy",
     {"type": "Recreate"}),
    ("deploy-history", registry.DEPLOYMENTS, _deploy(), "spec.revisionHistoryLimit", 10),
    ("deploy-deadline", registry.DEPLOYMENTS, _deploy(), "spec.progressDeadlineSeconds", 600),
    ("deploy-template", registry.DEPLOYMENTS, _deploy(), "spec.template.spec.restartPolicy", "Always"),
    ("deploy-template-pull", registry.DEPLOYMENTS, _deploy(), "spec.template.spec.containers.0.imagePullPolicy",
     "Always"),
    ("deploy-template-port", registry.DEPLOYMENTS, _deploy(), "spec.template.spec.containers.0.ports.0.protocol",
     "TCP"),
    # ReplicaSet
    ("rs-replicas", registry.REPLICA_SETS,
     {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
      "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:latest"}]}}}},
     "spec.replicas", 1),
    # EndpointSlice and Endpoints
    ("slice-port", registry.ENDPOINT_SLICES,
     {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"},
      "addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]},
     "ports", [{"port": 80, "name": "", "protocol": "TCP"}]),
    ("endpoints-port", registry.ENDPOINTS,
     {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
      "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80, "name": "http"}]}]},
     "subsets.0.ports.0", {"port": 80, "name": "http", "protocol": "TCP"}),
    # Namespace and Node
    ("ns-finalizer", registry.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
     "spec.finalizers", ["kubernetes"]),
    ("ns-phase", registry.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
     "status.phase", "Active"),
    ("ns-label", registry.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
     "metadata.labels", {"kubernetes.io/metadata.name": "n"}),
    ("node-allocatable", registry.NODES,
     {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}}},
     "status.allocatable", {"cpu": "4"}),
]


@pytest.mark.parametrize(("info", "obj", "path", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_defaults(info: registry.ResourceInfo, obj: dict[str, Any], path: str, expected: Any) -> None:
    before = copy.deepcopy(obj)
    out = apply_defaults(info, obj)
    assert _get(out, path) == expected
    assert obj == before  # never mutates its input
    assert apply_defaults(info, out) == out  # idempotent


@pytest.mark.parametrize(
    ("obj", "absent"),
    [
        (_svc(type="ExternalName", externalName="x.example.com"), ["internalTrafficPolicy", "ipFamilyPolicy",
                                                                   "externalTrafficPolicy"]),
        # One family or none: the policy depends on the old object and the cluster (the allocator's call).
        (_svc(), ["externalTrafficPolicy", "allocateLoadBalancerNodePorts", "sessionAffinityConfig", "clusterIP",
                  "ipFamilies", "ipFamilyPolicy"]),
    ],
    ids=["externalname", "clusterip"],
)
def test_service_fields_left_unset(obj: dict[str, Any], absent: list[str]) -> None:
    spec = apply_defaults(registry.SERVICES, obj)["spec"]
    assert [k for k in absent if k in spec] == []


def test_template_gets_no_pod_admission_values() -> None:
    spec = apply_defaults(registry.DEPLOYMENTS, _deploy())["spec"]["template"]["spec"]
    assert [k for k in ("priority", "serviceAccountName", "tolerations", "enableServiceLinks") if k in spec] == []


def test_namespace_finalizer_only_on_create() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "n", "uid": "u", "deletionTimestamp": "2024-01-01T00:00:00Z"},
          "spec": {}, "status": {"phase": "Terminating"}}
    out = apply_defaults(registry.NAMESPACES, ns)
    assert out["spec"] == {}
    assert out["status"]["phase"] == "Terminating"
    assert apply_defaults(registry.NAMESPACES, {"metadata": {"name": "n"}}, create=False).get("spec") in (None, {})
    assert apply_defaults(registry.NAMESPACES, {"metadata": {"name": "n"}, "spec": {"finalizers": ["x"]}},
                          create=True)["spec"]["finalizers"] == ["x", "kubernetes"]


def test_pod_status_untouched_on_update() -> None:
    pod = _pod()
    pod["metadata"].update(uid="u", resourceVersion="7")
    assert "status" not in apply_defaults(registry.PODS, pod)


def test_create_is_inferred_from_resource_version() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "uid": "u"}}
    assert apply_defaults(registry.NAMESPACES, ns)["spec"]["finalizers"] == ["kubernetes"]
    finalized = {**ns, "metadata": {**ns["metadata"], "resourceVersion": "9"}, "spec": {}}
    assert apply_defaults(registry.NAMESPACES, finalized)["spec"] == {}


def test_opaque_kinds_pass_through() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    assert apply_defaults(registry.CONFIG_MAPS, cm) == cm


@pytest.mark.parametrize(
    ("image", "policy"),
    [("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
     ("localhost:5000/nginx", "Always"), ("localhost:5000/nginx:v1", "IfNotPresent"),
     ("nginx@sha256:abc", "IfNotPresent"), ("docker.io/istio/examples-bookinfo-reviews-v1:1.20.2", "IfNotPresent")],
    ids=lambda v: v,
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", "0.5"), ("1", "1"), ("1Gi", str(2**30)), ("1k", "1000"), (2, "2"), ("1e3", "1000"), ("x", None)],
    ids=lambda v: str(v),
)
def test_parse_quantity(text: Any, value: str | None) -> None:
    got = parse_quantity(text)
    assert (None if got is None else got.normalize()) == (None if value is None else type(got)(value).normalize())


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ([{}], "BestEffort"),
        ([{"requests": {"cpu": "100m"}}], "Burstable"),
        ([{"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1Gi"}}], "Guaranteed"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
    ],
    ids=["besteffort", "burstable", "guaranteed", "one-unlimited"],
)
def test_qos_class(resources: list[dict[str, Any]], qos: str) -> None:
    pod = apply_defaults(registry.PODS, _pod([{"name": f"c{i}", "image": "x", "resources": r}
                                              for i, r in enumerate(resources)]), create=False)
    assert pod_qos_class(pod) == qos


@pytest.mark.parametrize(
    ("value", "canonical"),
    [("0.5", "500m"), (0.5, "500m"), (1, "1"), ("1000m", "1"), ("1500", "1500"), ("2000", "2k"),
     ("1024Mi", "1Gi"), ("1.5Gi", "1536Mi"), ("128974848", "128974848"), ("0.0001", "1m"), ("1e3", "1e3"),
     ("0.5Ki", "512"), ("0", "0"), ("100m", "100m"), ("nope", None), (True, None)],
    ids=lambda v: repr(v),
)
def test_canonical_quantity(value: Any, canonical: str | None) -> None:
    assert canonical_quantity(value) == canonical
