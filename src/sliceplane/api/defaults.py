"""Kubernetes 1.32's defaulting of the kinds we type, as a function of values.

`apply_defaults` fills what Kubernetes' API defaulters fill when an object is decoded, plus the
few values Kubernetes' registry and default admission plugins set on create that clients see
in every object (a Pod's service account, priority, default tolerations, Pending phase; a
Namespace's `kubernetes` finalizer). It never allocates anything: cluster IPs, ipFamilies and
node ports are the server's job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from sliceplane.api.registry import ResourceInfo
from sliceplane.api.schema import json_copy
from sliceplane.api.taints import NOT_READY_TAINT, UNREACHABLE_TAINT

Obj = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD = 30
DEFAULT_SCHEDULER = "default-scheduler"
DEFAULT_MODE = 0o644  # secret, configMap, downwardAPI and projected volumes (420)
DEFAULT_TOLERATION_SECONDS = 300
CLIENT_IP_AFFINITY_SECONDS = 10800
NAMESPACE_FINALIZER = "kubernetes"
METADATA_NAME_LABEL = "kubernetes.io/metadata.name"


def apply_defaults(info: ResourceInfo, obj: Obj, *, create: bool | None = None) -> Obj:
    """A defaulted copy of `obj` (the input is never changed).

    `create` says whether the object is being created; create-only values (Pod phase, the
    Namespace finalizer) are set only then. When None, an object with neither
    `metadata.resourceVersion` nor a deletion timestamp counts as a create: a stored object
    carries its resourceVersion (status, finalize), and values already present are never
    overwritten, so a main-resource update that passes as a create changes nothing.
    """
    return apply_defaults_in_place(info, json_copy(obj), create=create)


def apply_defaults_in_place(info: ResourceInfo, obj: Obj, *, create: bool | None = None) -> Obj:
    """`apply_defaults` without the copy: fills `obj` itself and returns it.

    For a caller that owns every part of `obj` (the API server defaults a fresh decode of the
    object it is about to store, which costs less than copying it here).
    """
    defaulter = _DEFAULTERS.get((info.group, info.kind))
    if defaulter is not None and isinstance(obj, dict):
        if create is None:
            meta = _dict(obj.get("metadata"))
            create = not meta.get("resourceVersion") and not meta.get("deletionTimestamp")
        defaulter(obj, create)
    return obj


# ---- helpers ----

def _dict(v: Any) -> Obj:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _child(parent: Obj, key: str) -> Obj:
    """parent[key] as a dict, created when absent (left alone, and a throwaway returned, when not a dict)."""
    v = parent.get(key)
    if v is None:
        v = parent[key] = {}
    return v if isinstance(v, dict) else {}


def _set(obj: Obj, key: str, value: Any) -> None:
    """Kubernetes defaults empty values: absent, null, "" and 0 all count as unset."""
    if obj.get(key) in (None, "", 0) and not isinstance(obj.get(key), bool):
        obj[key] = value


# ---- pods and pod templates ----

def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an image without tag or digest, IfNotPresent otherwise."""
    if not image:
        return "IfNotPresent"  # Kubernetes cannot parse it and falls through to IfNotPresent
    name = image.split("@", 1)
    if len(name) == 2:  # a digest pins the image; a tag beside it still decides
        tag = _tag(name[0])
        return "Always" if tag == "latest" else "IfNotPresent"
    tag = _tag(image)
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _tag(ref: str) -> str:
    last = ref.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    _set(probe, "timeoutSeconds", 1)
    _set(probe, "periodSeconds", 10)
    _set(probe, "successThreshold", 1)
    _set(probe, "failureThreshold", 3)
    _default_http_get(probe.get("httpGet"))


def _default_http_get(action: Any) -> None:
    if isinstance(action, dict):
        _set(action, "path", "/")
        _set(action, "scheme", "HTTP")


def _default_lifecycle(lifecycle: Any) -> None:
    for hook in ("postStart", "preStop"):
        handler = _dict(_dict(lifecycle).get(hook))
        _default_http_get(handler.get("httpGet"))


def _default_env(env: Any) -> None:
    for var in _list(env):
        if type(var) is not dict or var.get("valueFrom") is None:
            continue  # the common case: a plain value
        source = _dict(var.get("valueFrom"))
        if isinstance(source.get("fieldRef"), dict):
            _set(source["fieldRef"], "apiVersion", "v1")
        ref = source.get("resourceFieldRef")
        if isinstance(ref, dict):
            ref["divisor"] = canonical_quantity(ref.get("divisor", 0)) or ref.get("divisor")


def _default_ports(ports: Any) -> None:
    for port in _list(ports):
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")


def _default_container(c: Any) -> None:
    if not isinstance(c, dict):
        return
    if not c.get("imagePullPolicy") and isinstance(c.get("image", ""), str):
        c["imagePullPolicy"] = image_pull_policy(c.get("image", ""))
    resources = c.get("resources")
    if isinstance(resources, dict):
        _canonical_resource_list(resources.get("limits"))
        _canonical_resource_list(resources.get("requests"))
    _set(c, "terminationMessagePath", "/dev/termination-log")
    _set(c, "terminationMessagePolicy", "File")
    _default_ports(c.get("ports"))
    _default_env(c.get("env"))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    _default_lifecycle(c.get("lifecycle"))


def _default_items(items: Any) -> None:
    for item in _list(items):
        ref = _dict(item).get("fieldRef")
        if isinstance(ref, dict):
            _set(ref, "apiVersion", "v1")


VOLUME_SOURCES_WITH_MODE = ("secret", "configMap", "downwardAPI", "projected")


def _default_volume(v: Any) -> None:
    if not isinstance(v, dict):
        return
    if not any(k != "name" and v[k] is not None for k in v):
        v["emptyDir"] = {}
    for source in VOLUME_SOURCES_WITH_MODE:
        if isinstance(v.get(source), dict) and v[source].get("defaultMode") is None:
            v[source]["defaultMode"] = DEFAULT_MODE
    if isinstance(v.get("downwardAPI"), dict):
        _default_items(v["downwardAPI"].get("items"))
    empty_dir = v.get("emptyDir")
    if isinstance(empty_dir, dict) and empty_dir.get("sizeLimit") is not None:
        empty_dir["sizeLimit"] = canonical_quantity(empty_dir["sizeLimit"]) or empty_dir["sizeLimit"]
    if isinstance(v.get("hostPath"), dict) and v["hostPath"].get("type") is None:
        v["hostPath"]["type"] = ""
    for projection in _list(_dict(v.get("projected")).get("sources")):
        token = _dict(projection).get("serviceAccountToken")
        if isinstance(token, dict):
            _set(token, "expirationSeconds", 3600)
        downward = _dict(projection).get("downwardAPI")
        if isinstance(downward, dict):
            _default_items(downward.get("items"))


def _default_pod_spec(spec: Obj) -> None:
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD
    _set(spec, "schedulerName", DEFAULT_SCHEDULER)
    _canonical_resource_list(spec.get("overhead"))
    # v1's deprecated serviceAccount mirrors serviceAccountName.
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in _list(spec.get(key)):
            _default_container(c)
    for v in _list(spec.get("volumes")):
        _default_volume(v)


def _default_template(owner_spec: Obj) -> None:
    template = owner_spec.get("template")
    if isinstance(template, dict):
        spec = template.get("spec")
        if isinstance(spec, dict):
            _default_pod_spec(spec)


def _tolerates_no_execute(tolerations: list[Any], key: str) -> bool:
    for t in tolerations:
        t = _dict(t)
        if t.get("effect") not in (None, "", "NoExecute"):
            continue
        if t.get("key") in (key, None, ""):
            return True
    return False


def _default_pod(pod: Obj, create: bool) -> None:
    spec = _child(pod, "spec")
    _default_pod_spec(spec)
    for key in ("containers", "initContainers"):
        for c in _list(spec.get(key)):
            resources = _dict(_dict(c).get("resources"))
            limits = resources.get("limits")
            if isinstance(limits, dict) and limits:
                requests = resources.get("requests")
                if not isinstance(requests, dict):
                    requests = resources["requests"] = {}
                for name, qty in limits.items():
                    requests.setdefault(name, qty)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for c in _list(spec.get(key)):
                for port in _list(_dict(c).get("ports")):
                    if isinstance(port, dict) and not port.get("hostPort") and port.get("containerPort"):
                        port["hostPort"] = port["containerPort"]
    # What the ServiceAccount, Priority and DefaultTolerationSeconds admission plugins add.
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"] = "default"
    if spec.get("priority") is None and not spec.get("priorityClassName"):
        spec["priority"] = 0
    _set(spec, "preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.get("tolerations")
    if tolerations is None or isinstance(tolerations, list):
        added = [
            {"key": key, "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}
            for key in (NOT_READY_TAINT, UNREACHABLE_TAINT)
            if not _tolerates_no_execute(tolerations or [], key)
        ]
        if added:
            spec["tolerations"] = [*(tolerations or []), *added]
    if create:
        # Kubernetes' registry also records status.qosClass here (see pod_qos_class); our
        # server builds the create-time status itself.
        _set(_child(pod, "status"), "phase", "Pending")


# ---- QoS class ----

_SUFFIXES = {
    "": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
    "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
    "Pi": 2**50, "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(value: Any) -> Decimal | None:
    """A resource.Quantity (`500m`, `1Gi`, `2`, 0.5) as a number; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    return _parse_quantity_text(value)  # Decimals are immutable: cached results are safe to share


@lru_cache(maxsize=4096)
def _parse_quantity_text(value: str) -> Decimal | None:
    m = _QUANTITY.match(value.strip())
    if not m:
        return None
    try:
        return Decimal(m.group(1)) * Decimal(_SUFFIXES[m.group(2) or ""])
    except InvalidOperation:
        return None


_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}


def canonical_quantity(value: Any) -> str | None:
    """The text Kubernetes stores for a resource quantity (`0.5` -> `500m`, `1024Mi` -> `1Gi`).

    Values are rounded up to milli precision, as Kubernetes defaults resource lists; the
    suffix family (binary, decimal, exponent) of the input is kept when it can say the value
    exactly. None when `value` is not a quantity (left for validation to reject).
    """
    if type(value) in (str, int, float):
        return _canonical_cached(value)  # every pod repeats a handful of quantities
    return _canonical(value)


@lru_cache(maxsize=4096, typed=True)
def _canonical_cached(value: str | int | float) -> str | None:
    return _canonical(value)


def _canonical(value: Any) -> str | None:
    number = parse_quantity(value)
    if number is None:
        return None
    text = str(value).strip()
    if text.endswith(tuple(_BINARY)):
        family = "binary"
    elif "e" in text.lower() and not text.endswith(("E", "P")):
        family = "exponent"
    else:
        family = "decimal"
    sign = -1 if number < 0 else 1
    magnitude = (abs(number) * 1000).to_integral_value(rounding="ROUND_CEILING") / 1000
    if magnitude == 0:
        return "0"
    prefix = "-" if sign < 0 else ""
    if family == "binary" and magnitude == magnitude.to_integral_value() and magnitude >= 1024:
        for suffix, power in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
            scaled = magnitude / (Decimal(1024) ** power)
            if scaled == scaled.to_integral_value():
                return f"{prefix}{int(scaled)}{suffix}"
    for exp in sorted(_DECIMAL_SUFFIX, reverse=True):
        scaled = magnitude / (Decimal(10) ** exp)
        if scaled == scaled.to_integral_value():
            if family == "exponent":
                return f"{prefix}{int(scaled)}e{exp}" if exp else f"{prefix}{int(scaled)}"
            return f"{prefix}{int(scaled)}{_DECIMAL_SUFFIX[exp]}"
    return None


def _canonical_resource_list(resources: Any) -> None:
    if isinstance(resources, dict):
        for name, qty in resources.items():
            text = canonical_quantity(qty)
            if text is not None:
                resources[name] = text


QOS_RESOURCES = ("cpu", "memory")


def pod_qos_class(pod: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' cpu and memory requests and limits."""
    spec = _dict(pod.get("spec"))
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for key in ("containers", "initContainers"):
        for c in _list(spec.get(key)):
            res = _dict(_dict(c).get("resources"))
            c_limits: set[str] = set()
            for name in QOS_RESOURCES:
                req = parse_quantity(_dict(res.get("requests")).get(name))
                lim = parse_quantity(_dict(res.get("limits")).get(name))
                if req:
                    requests[name] = requests.get(name, Decimal(0)) + req
                if lim:
                    c_limits.add(name)
                    limits[name] = limits.get(name, Decimal(0)) + lim
            if c_limits != set(QOS_RESOURCES):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(requests.get(n, limits[n]) == limits[n] for n in limits):
        return "Guaranteed"
    return "Burstable"


# ---- workloads ----

def _default_deployment(d: Obj, create: bool) -> None:
    spec = _child(d, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _child(spec, "strategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy.get("type") == "RollingUpdate":
        rolling = _child(strategy, "rollingUpdate")
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = "25%"
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_template(spec)


def _default_replica_set(rs: Obj, create: bool) -> None:
    spec = _child(rs, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_template(spec)


# ---- services and endpoints ----

def _default_service(svc: Obj, create: bool) -> None:
    spec = _child(svc, "spec")
    _set(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec.get("sessionAffinity") == "ClientIP":
        client_ip = _dict(_dict(spec.get("sessionAffinityConfig")).get("clientIP"))
        if client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": CLIENT_IP_AFFINITY_SECONDS}}
    _set(spec, "type", "ClusterIP")
    for port in _list(spec.get("ports")):
        if not isinstance(port, dict):
            continue
        _set(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, "") and port.get("port") is not None:
            port["targetPort"] = port["port"]
    kind = spec.get("type")
    if kind in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if kind in ("ClusterIP", "NodePort", "LoadBalancer") and spec.get("internalTrafficPolicy") is None:
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    # Two families or two IPs ask for both; any other missing policy depends on the old object and
    # the cluster, so the allocator settles it.
    if kind != "ExternalName" and spec.get("ipFamilyPolicy") is None and (
            len(_list(spec.get("ipFamilies"))) == 2 or len(_list(spec.get("clusterIPs"))) == 2):
        spec["ipFamilyPolicy"] = "RequireDualStack"
    status = _child(svc, "status")
    if status.get("loadBalancer") is None:
        status["loadBalancer"] = {}
    for ingress in _list(_dict(status.get("loadBalancer")).get("ingress")):
        if isinstance(ingress, dict) and ingress.get("ip") and ingress.get("ipMode") is None:
            ingress["ipMode"] = "VIP"


def _default_endpoints(ep: Obj, create: bool) -> None:
    for subset in _list(ep.get("subsets")):
        _default_ports(_dict(subset).get("ports"))


def _default_endpoint_slice(slice_: Obj, create: bool) -> None:
    for port in _list(slice_.get("ports")):
        if not isinstance(port, dict):
            continue
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


# ---- cluster objects ----

def _default_namespace(ns: Obj, create: bool) -> None:
    meta = _child(ns, "metadata")
    if meta.get("name"):
        labels = meta.get("labels")
        if labels is None:
            labels = meta["labels"] = {}
        if isinstance(labels, dict):  # anything else is validation's to reject
            labels[METADATA_NAME_LABEL] = meta["name"]
    if create:
        spec = _child(ns, "spec")
        finalizers = spec.get("finalizers")
        if not isinstance(finalizers, list):
            spec["finalizers"] = [NAMESPACE_FINALIZER]
        elif NAMESPACE_FINALIZER not in finalizers:
            finalizers.append(NAMESPACE_FINALIZER)
    status = _child(ns, "status")
    _set(status, "phase", "Active")


def _default_node(node: Obj, create: bool) -> None:
    status = node.get("status")
    if not isinstance(status, dict):
        return
    _canonical_resource_list(status.get("capacity"))
    _canonical_resource_list(status.get("allocatable"))
    if status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def _default_secret(secret: Obj, create: bool) -> None:
    _set(secret, "type", "Opaque")


_DEFAULTERS: dict[tuple[str, str], Callable[[Obj, bool], None]] = {
    ("", "Pod"): _default_pod,
    ("", "Service"): _default_service,
    ("", "Endpoints"): _default_endpoints,
    ("", "Namespace"): _default_namespace,
    ("", "Node"): _default_node,
    ("", "Secret"): _default_secret,
    ("apps", "Deployment"): _default_deployment,
    ("apps", "ReplicaSet"): _default_replica_set,
    ("discovery.k8s.io", "EndpointSlice"): _default_endpoint_slice,
}
