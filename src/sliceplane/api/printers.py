"""Server-side Table printing: the rows `kubectl get` and `kubectl get -o wide` show.

`table(info, objs, now)` returns a `meta.k8s.io/v1` Table with the column definitions and
cells Kubernetes 1.32's printers produce for each kind. Priority-1 columns are the `-o wide`
ones; the server always fills them and kubectl hides them unless asked. AGE is computed from
`now` (seconds since the epoch), never from a clock, so the same input prints the same table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .meta import parse_time
from .registry import ResourceInfo

Obj = dict[str, Any]
Cells = list[Any]

_DOC = {
    'name': (
        'Name must be unique within a namespace. Is required when creating resources, although some'
        ' resources may allow a client to request the generation of an appropriate name '
        'automatically. Name is primarily intended for creation idempotence and configuration '
        'definition. Cannot be updated. More info: '
        'https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names'
    ),
    'creationTimestamp': (
        'CreationTimestamp is a timestamp representing the server time when this object was '
        'created. It is not guaranteed to be set in happens-before order across separate '
        'operations. Clients may not set this value. It is represented in RFC3339 form and is in '
        'UTC.  Populated by the system. Read-only. Null for lists. More info: '
        'https://git.k8s.io/community/contributors/devel/sig-architecture/api-'
        'conventions.md#metadata'
    ),
    'podIP': (
        'podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet'
        ' allocated.'
    ),
    'nodeName': (
        'NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate '
        'for scheduling by the scheduler defined in schedulerName. Once this field is set, the '
        'kubelet for this node becomes responsible for the lifecycle of this pod. This field should'
        ' not be used to express a desire for the pod to be scheduled on a specific node. '
        'https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename'
    ),
    'nominatedNodeName': (
        'nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot'
        ' be scheduled right away as preemption victims receive their graceful termination periods.'
        ' This field does not guarantee that the pod will be scheduled on this node. Scheduler may '
        'decide to place the pod elsewhere if other nodes become available sooner. Scheduler may '
        'also decide to give the resources on this node to a higher priority pod that is created '
        'after preemption. As a result, this field may be different than PodSpec.nodeName when the '
        'pod is scheduled.'
    ),
    'readinessGates': (
        'If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when'
        ' all its containers are ready AND all conditions specified in the readiness gates have '
        'status equal to "True" More info: https://git.k8s.io/enhancements/keps/sig-'
        'network/580-pod-readiness-gates'
    ),
    'service.type': (
        'type determines how the Service is exposed. Defaults to ClusterIP. Valid options are '
        'ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a cluster-'
        'internal IP address for load-balancing to endpoints. Endpoints are determined by the '
        'selector or if that is not specified, by manual construction of an Endpoints object or '
        'EndpointSlice objects. If clusterIP is "None", no virtual IP is allocated and the '
        'endpoints are published as a set of endpoints rather than a virtual IP. "NodePort" builds '
        'on ClusterIP and allocates a port on every node which routes to the same endpoints as the '
        'clusterIP. "LoadBalancer" builds on NodePort and creates an external load-balancer (if '
        'supported in the current cloud) which routes to the same endpoints as the clusterIP. '
        '"ExternalName" aliases this service to the specified externalName. Several other fields do'
        ' not apply to ExternalName services. More info: '
        'https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-'
        'service-types'
    ),
    'clusterIP': (
        'clusterIP is the IP address of the service and is usually assigned randomly. If an address'
        ' is specified manually, is in-range (as per system configuration), and is not in use, it '
        'will be allocated to the service; otherwise creation of the service will fail. This field '
        'may not be changed through updates unless the type field is also being changed to '
        'ExternalName (which requires this field to be blank) or the type field is being changed '
        'from ExternalName (in which case this field may optionally be specified, as describe '
        'above).  Valid values are "None", empty string (""), or a valid IP address. Setting this '
        'to "None" makes a "headless service" (no virtual IP), which is useful when direct endpoint'
        ' connections are preferred and proxying is not required.  Only applies to types ClusterIP,'
        ' NodePort, and LoadBalancer. If this field is specified when creating a Service of type '
        'ExternalName, creation will fail. This field will be wiped when updating a Service to type'
        ' ExternalName. More info: https://kubernetes.io/docs/concepts/services-'
        'networking/service/#virtual-ips-and-service-proxies'
    ),
    'externalIPs': (
        'externalIPs is a list of IP addresses for which nodes in the cluster will also accept '
        'traffic for this service.  These IPs are not managed by Kubernetes.  The user is '
        'responsible for ensuring that traffic arrives at a node with this IP.  A common example is'
        ' external load-balancers that are not part of the Kubernetes system.'
    ),
    'service.ports': (
        'The list of ports that are exposed by this service. More info: '
        'https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-'
        'proxies'
    ),
    'service.selector': (
        'Route service traffic to pods with label keys and values matching this selector. If empty '
        'or not present, the service is assumed to have an external process managing its endpoints,'
        ' which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and '
        'LoadBalancer. Ignored if type is ExternalName. More info: '
        'https://kubernetes.io/docs/concepts/services-networking/service/'
    ),
    'subsets': (
        'The set of all endpoints is the union of all subsets. Addresses are placed into subsets '
        'according to the IPs they share. A single address with multiple ports, some of which are '
        'ready and some of which are not (because they come from different containers) will result '
        'in the address being displayed in different subsets for the different ports. No address '
        'will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses '
        'and ports that comprise a service.'
    ),
    'addressType': (
        'addressType specifies the type of address carried by this EndpointSlice. All addresses in '
        'this slice must be the same type. This field is immutable after creation. The following '
        'address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: '
        'Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated)'
        ' The EndpointSlice controller only generates, and kube-proxy only processes, slices of '
        'addressType "IPv4" and "IPv6". No semantics are defined for the "FQDN" type.'
    ),
    'slice.ports': (
        'ports specifies the list of network ports exposed by each endpoint in this slice. Each '
        'port must have a unique name. Each slice may include a maximum of 100 ports. Services '
        'always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller '
        'will likewise always have at least 1 port. EndpointSlices used for other purposes may have'
        ' an empty ports list.'
    ),
    'slice.endpoints': (
        'endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of'
        ' 1000 endpoints.'
    ),
    'kubeletVersion': (
        'Kubelet Version reported by the node.'
    ),
    'addresses': (
        'List of addresses reachable to the node. Queried from cloud provider, if available. More '
        'info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is'
        ' declared as mergeable, but the merge key is not sufficiently unique, which can cause data'
        ' corruption when it is merged. Callers should instead use a full-replacement patch. See '
        'https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change '
        'during the lifetime of a Node. However, there are some exceptions where this may not be '
        "possible, such as Pods that inherit a Node's address in its own status or consumers of the"
        ' downward API (status.hostIP).'
    ),
    'osImage': (
        'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).'
    ),
    'kernelVersion': (
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."
    ),
    'containerRuntimeVersion': (
        'ContainerRuntime Version reported by the node through runtime remote API (e.g. '
        'containerd://1.4.2).'
    ),
    'updatedReplicas': (
        'Total number of non-terminating pods targeted by this deployment that have the desired '
        'template spec.'
    ),
    'availableReplicas': (
        'Total number of available non-terminating pods (ready for at least minReadySeconds) '
        'targeted by this deployment.'
    ),
    'rs.replicas': (
        'Replicas is the number of desired pods. This is a pointer to distinguish between explicit '
        'zero and unspecified. Defaults to 1. More info: '
        'https://kubernetes.io/docs/concepts/workloads/controllers/replicaset'
    ),
    'rs.status.replicas': (
        'Replicas is the most recently observed number of non-terminating pods. More info: '
        'https://kubernetes.io/docs/concepts/workloads/controllers/replicaset'
    ),
    'rs.readyReplicas': (
        'The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.'
    ),
    'holderIdentity': (
        'holderIdentity contains the identity of the holder of a current lease. If Coordinated '
        'Leader Election is used, the holder identity must be equal to the elected '
        'LeaseCandidate.metadata.name field.'
    ),
    'sa.secrets': (
        'Secrets is a list of the secrets in the same namespace that pods running using this '
        'ServiceAccount are allowed to use. Pods are only limited to this list if this service '
        'account has a "kubernetes.io/enforce-mountable-secrets" annotation set to "true". The '
        '"kubernetes.io/enforce-mountable-secrets" annotation is deprecated since v1.32. Prefer '
        'separate namespaces to isolate access to mounted secrets. This field should not be used to'
        ' find auto-generated service account token secrets for use outside of pods. Instead, '
        'tokens can be requested directly using the TokenRequest API, or service account token '
        'secrets can be manually created. More info: '
        'https://kubernetes.io/docs/concepts/configuration/secret'
    ),
    'cm.data': (
        'Data contains the configuration data. Each key must consist of alphanumeric characters, '
        "'-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The "
        'keys stored in Data must not overlap with the keys in the BinaryData field, this is '
        'enforced during validation process.'
    ),
    'secret.type': (
        'Used to facilitate programmatic handling of secret data. More info: '
        'https://kubernetes.io/docs/concepts/configuration/secret/#secret-types'
    ),
    'secret.data': (
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' "
        "or '.'. The serialized form of the secret data is a base64 encoded string, representing "
        'the arbitrary (possibly non-string) data value here. Described in '
        'https://tools.ietf.org/html/rfc4648#section-4'
    ),
}

# Descriptions not in the client's models, as Kubernetes' printers state them.
_DOC["deployment.selector"] = ("Label selector for pods. Existing ReplicaSets whose pods are selected by this will be "
                               "the ones affected by this deployment. It must match the pod template's labels.")
_DOC["rs.selector"] = ("Selector is a label query over pods that should match the replica count. Label keys and "
                       "values that must match in order to be controlled by this replica set. It must match the "
                       "pod template's labels. More info: "
                       "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors")


def _col(name: str, description: str, *, type_: str = "string", priority: int = 0, format_: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


_NAME = _col("Name", _DOC["name"], format_="name")
_AGE = _col("Age", _DOC["creationTimestamp"])
_CONTAINERS = _col("Containers", "Names of each container in the template.", priority=1)
_IMAGES = _col("Images", "Images referenced by each container in the template.", priority=1)


# --- human durations -------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """Kubernetes' duration.HumanDuration: `45s`, `3m2s`, `10m`, `5h3m`, `3d`, `2y5d`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _since(ts: Any, now: float) -> str:
    """translateTimestampSince: `<unknown>` for a missing time."""
    if not isinstance(ts, str) or not ts:
        return "<unknown>"
    try:
        return human_duration(now - parse_time(ts))
    except ValueError:
        return "<unknown>"


def _age(obj: Obj, now: float) -> str:
    return _since(_meta(obj).get("creationTimestamp"), now)


# --- safe access -----------------------------------------------------------------------------


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _i(v: Any, default: int = 0) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _s(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _meta(obj: Obj) -> dict[str, Any]:
    return _d(obj.get("metadata"))


def _name(obj: Obj) -> str:
    return _s(_meta(obj).get("name"))


def _format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted `k=v` pairs, `<none>` when empty."""
    labels = _d(labels)
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _selector_text(spec: Any, *, empty: str = "", bad: str = "<invalid>") -> str:
    """A metav1.LabelSelector as selector text; Deployments and ReplicaSets differ on the edges."""
    from .selectors import label_selector_from_spec

    try:
        text = str(label_selector_from_spec(spec if isinstance(spec, dict) else None))
    except Exception:  # an unparsable selector prints a marker rather than failing the list
        return bad
    return text or empty


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    text = ",".join(items)
    if more:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"


def _container_cells(spec: dict[str, Any]) -> tuple[str, str]:
    containers = [c for c in _l(spec.get("containers")) if isinstance(c, dict)]
    return ",".join(_s(c.get("name")) for c in containers), ",".join(_s(c.get("image")) for c in containers)


# --- per-kind printers -----------------------------------------------------------------------

Printer = Callable[[Obj, float], tuple[Cells, list[dict[str, Any]]]]


def _print_namespace(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    return [_name(obj), _s(_d(obj.get("status")).get("phase")), _age(obj, now)], []


def _node_roles(labels: dict[str, Any]) -> list[str]:
    roles: set[str] = set()
    for k, v in labels.items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(str(v))
    return sorted(roles)


def _node_address(status: dict[str, Any], kind: str) -> str:
    for a in _l(status.get("addresses")):
        if isinstance(a, dict) and a.get("type") == kind:
            return _s(a.get("address"))
    return "<none>"


def _print_node(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    status = _d(obj.get("status"))
    spec = _d(obj.get("spec"))
    states: list[str] = []
    for cond in _l(status.get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            states = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if not states:
        states = ["Unknown"]
    if spec.get("unschedulable") is True:
        states.append("SchedulingDisabled")
    roles = ",".join(_node_roles(_d(_meta(obj).get("labels")))) or "<none>"
    info = _d(status.get("nodeInfo"))
    cells: Cells = [_name(obj), ",".join(states), roles, _age(obj, now), _s(info.get("kubeletVersion"))]
    cells += [
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        _s(info.get("osImage")) or "<unknown>",
        _s(info.get("kernelVersion")) or "<unknown>",
        _s(info.get("containerRuntimeVersion")) or "<unknown>",
    ]
    return cells, []


_POD_SUCCEEDED = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}]
_POD_FAILED = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]


def _is_restartable_init(container: dict[str, Any] | None) -> bool:
    return bool(container) and container.get("restartPolicy") == "Always"


def _terminated_reason(term: dict[str, Any], prefix: str = "") -> str:
    if _s(term.get("reason")):
        return prefix + term["reason"]
    if _i(term.get("signal")):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{_i(term.get('exitCode'))}"


def _later(a: str, b: Any) -> str:
    """The later of two RFC 3339 times (empty counts as zero)."""
    b = _s(b)
    if not b:
        return a
    if not a:
        return b
    try:
        return b if parse_time(b) > parse_time(a) else a
    except ValueError:
        return a


def _print_pod(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    phase = _s(status.get("phase"))
    reason = _s(status.get("reason")) or phase
    conditions = [c for c in _l(status.get("conditions")) if isinstance(c, dict)]
    for cond in conditions:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    row_conditions = _POD_SUCCEEDED if phase == "Succeeded" else _POD_FAILED if phase == "Failed" else []

    init_specs = {_s(c.get("name")): c for c in _l(spec.get("initContainers")) if isinstance(c, dict)}
    total = len(_l(spec.get("containers"))) + sum(1 for c in init_specs.values() if _is_restartable_init(c))
    ready = 0
    restarts = 0
    restartable_restarts = 0
    last_restart = ""
    last_restartable_restart = ""

    init_statuses = [c for c in _l(status.get("initContainerStatuses")) if isinstance(c, dict)]
    initializing = False
    for i, cs in enumerate(init_statuses):
        count = _i(cs.get("restartCount"))
        restarts += count
        last_term = _d(_d(cs.get("lastState")).get("terminated"))
        if last_term:
            last_restart = _later(last_restart, last_term.get("finishedAt"))
        restartable = _is_restartable_init(init_specs.get(_s(cs.get("name"))))
        if restartable:
            restartable_restarts += count
            if last_term:
                last_restartable_restart = _later(last_restartable_restart, last_term.get("finishedAt"))
        state = _d(cs.get("state"))
        term = _d(state.get("terminated"))
        waiting = _d(state.get("waiting"))
        terminated = isinstance(state.get("terminated"), dict)
        if terminated and _i(term.get("exitCode")) == 0:
            continue
        if restartable and cs.get("started") is True:
            if cs.get("ready") is True:
                ready += 1
            continue
        if terminated:
            reason = _terminated_reason(term, "Init:")
        elif _s(waiting.get("reason")) and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True" for c in conditions)
    if not initializing or initialized:
        restarts = restartable_restarts
        last_restart = last_restartable_restart
        has_running = False
        for cs in reversed([c for c in _l(status.get("containerStatuses")) if isinstance(c, dict)]):
            restarts += _i(cs.get("restartCount"))
            last_term = _d(_d(cs.get("lastState")).get("terminated"))
            if last_term:
                last_restart = _later(last_restart, last_term.get("finishedAt"))
            state = _d(cs.get("state"))
            waiting = _d(state.get("waiting"))
            term = _d(state.get("terminated"))
            if _s(waiting.get("reason")):
                reason = waiting["reason"]
            elif isinstance(state.get("terminated"), dict):
                reason = _terminated_reason(term)
            elif cs.get("ready") is True and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            reason = "Running" if pod_ready else "NotReady"

    if _meta(obj).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restarts_text = str(restarts)
    if restarts and last_restart:
        restarts_text = f"{restarts} ({_since(last_restart, now)} ago)"

    pod_ips = [p for p in _l(status.get("podIPs")) if isinstance(p, dict)]
    pod_ip = _s(pod_ips[0].get("ip")) if pod_ips else _s(status.get("podIP"))
    gates = [g for g in _l(spec.get("readinessGates")) if isinstance(g, dict)]
    gates_text = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            for cond in conditions:
                if cond.get("type") == gate.get("conditionType"):
                    true_count += cond.get("status") == "True"
                    break
        gates_text = f"{true_count}/{len(gates)}"
    cells: Cells = [_name(obj), f"{ready}/{total}", reason, restarts_text, _age(obj, now),
                    pod_ip or "<none>", _s(spec.get("nodeName")) or "<none>",
                    _s(status.get("nominatedNodeName")) or "<none>", gates_text]
    return cells, row_conditions


def _service_external_ip(spec: dict[str, Any], status: dict[str, Any]) -> str:
    svc_type = _s(spec.get("type")) or "ClusterIP"
    external_ips = [str(ip) for ip in _l(spec.get("externalIPs"))]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if svc_type == "LoadBalancer":
        found: set[str] = set()
        for ing in _l(_d(status.get("loadBalancer")).get("ingress")):
            ing = _d(ing)
            if _s(ing.get("ip")):
                found.add(ing["ip"])
            elif _s(ing.get("hostname")):
                found.add(ing["hostname"])
        ingress = sorted(found)
        if external_ips:
            return ",".join(ingress + external_ips)
        return ",".join(ingress) if ingress else "<pending>"
    if svc_type == "ExternalName":
        return _s(spec.get("externalName"))
    return "<unknown>"


def _service_ports(ports: list[Any]) -> str:
    pieces = []
    for p in ports:
        p = _d(p)
        proto = _s(p.get("protocol")) or "TCP"
        node_port = _i(p.get("nodePort"))
        if node_port > 0:
            pieces.append(f"{_i(p.get('port'))}:{node_port}/{proto}")
        else:
            pieces.append(f"{_i(p.get('port'))}/{proto}")
    return ",".join(pieces)


def _print_service(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    spec = _d(obj.get("spec"))
    cluster_ips = _l(spec.get("clusterIPs")) or ([spec["clusterIP"]] if _s(spec.get("clusterIP")) else [])
    internal_ip = _s(cluster_ips[0]) if cluster_ips else "<none>"
    ports = _service_ports(_l(spec.get("ports"))) or "<none>"
    cells: Cells = [_name(obj), _s(spec.get("type")) or "ClusterIP", internal_ip,
                    _service_external_ip(spec, _d(obj.get("status"))), ports, _age(obj, now),
                    _format_labels(spec.get("selector"))]
    return cells, []


_MAX_SHOWN = 3


def format_endpoints(obj: Obj) -> str:
    """The ENDPOINTS cell of an Endpoints object: up to 3 `ip:port`, then `+ N more...`."""
    subsets = [s for s in _l(obj.get("subsets")) if isinstance(s, dict)]
    if not subsets:
        return "<none>"
    shown: list[str] = []
    more = False
    count = 0
    for ss in subsets:
        addresses = [_d(a) for a in _l(ss.get("addresses"))]
        ports = [_d(p) for p in _l(ss.get("ports"))]
        if not ports:
            count += len(addresses)
            for a in addresses:
                if len(shown) == _MAX_SHOWN:
                    more = True
                    break
                shown.append(_s(a.get("ip")))
            continue
        for port in ports:
            count += len(addresses)
            for a in addresses:
                if len(shown) == _MAX_SHOWN:
                    more = True
                    break
                shown.append(_join_host_port(_s(a.get("ip")), _i(port.get("port"))))
    text = ",".join(shown)
    return f"{text} + {count - _MAX_SHOWN} more..." if more else text


def _print_endpoints(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    return [_name(obj), format_endpoints(obj), _age(obj, now)], []


def _slice_ports(ports: list[Any]) -> str:
    shown: list[str] = []
    more = False
    count = 0
    for p in ports:
        p = _d(p)
        if len(shown) < _MAX_SHOWN:
            if isinstance(p.get("port"), int):
                shown.append(str(p["port"]))
            elif isinstance(p.get("name"), str):
                shown.append(p["name"])
            else:
                shown.append("*")
        elif len(shown) == _MAX_SHOWN:
            more = True
        count += 1
    return _list_with_more(shown, more, count, _MAX_SHOWN)


def _slice_endpoints(endpoints: list[Any]) -> str:
    """First three addresses across endpoints; the rest are only counted (slices hold up to 1000)."""
    shown: list[str] = []
    count = 0
    for ep in endpoints:
        addresses = ep.get("addresses") if isinstance(ep, dict) else None
        if not isinstance(addresses, list):
            continue
        if len(shown) < _MAX_SHOWN:
            shown.extend(str(a) for a in addresses[: _MAX_SHOWN - len(shown)])
        count += len(addresses)
    return _list_with_more(shown, count > _MAX_SHOWN, count, _MAX_SHOWN)


def _print_endpoint_slice(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    return [_name(obj), _s(obj.get("addressType")), _slice_ports(_l(obj.get("ports"))),
            _slice_endpoints(_l(obj.get("endpoints"))), _age(obj, now)], []


def _replicas(spec: dict[str, Any]) -> int:
    v = spec.get("replicas")
    return 1 if v is None else _i(v)


def _print_deployment(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    names, images = _container_cells(_d(_d(spec.get("template")).get("spec")))
    cells: Cells = [_name(obj), f"{_i(status.get('readyReplicas'))}/{_replicas(spec)}",
                    _i(status.get("updatedReplicas")), _i(status.get("availableReplicas")), _age(obj, now),
                    names, images, _selector_text(spec.get("selector"))]
    return cells, []


def _print_replica_set(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    names, images = _container_cells(_d(_d(spec.get("template")).get("spec")))
    cells: Cells = [_name(obj), _replicas(spec), _i(status.get("replicas")), _i(status.get("readyReplicas")),
                    _age(obj, now), names, images,
                    _selector_text(spec.get("selector"), empty="<none>", bad="<error>")]
    return cells, []


def _print_lease(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    holder = _d(obj.get("spec")).get("holderIdentity")
    return [_name(obj), holder if isinstance(holder, str) else "", _age(obj, now)], []


def _print_service_account(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    return [_name(obj), len(_l(obj.get("secrets"))), _age(obj, now)], []


def _print_config_map(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    return [_name(obj), len(_d(obj.get("data"))) + len(_d(obj.get("binaryData"))), _age(obj, now)], []


def _print_secret(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    keys = set(_d(obj.get("data"))) | set(_d(obj.get("stringData")))
    return [_name(obj), _s(obj.get("type")) or "Opaque", len(keys), _age(obj, now)], []


def _print_event(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    first = _since(obj.get("firstTimestamp"), now) if _s(obj.get("firstTimestamp")) else _since(
        obj.get("eventTime"), now)
    last = _since(obj.get("lastTimestamp"), now) if _s(obj.get("lastTimestamp")) else first
    count = _i(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last = _since(series.get("lastObservedTime"), now)
        count = _i(series.get("count"))
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    involved = _d(obj.get("involvedObject"))
    kind = _s(involved.get("kind")).lower()
    target = f"{kind}/{involved['name']}" if _s(involved.get("name")) else kind
    source = _d(obj.get("source"))
    component = _s(source.get("component")) or _s(obj.get("reportingComponent"))
    instance = _s(source.get("host")) or _s(obj.get("reportingInstance"))
    source_text = f"{component}, {instance}" if instance else component
    return [last, _s(obj.get("type")), _s(obj.get("reason")), target, _s(involved.get("fieldPath")),
            source_text, _s(obj.get("message")).strip(), first, count, _name(obj)], []


def _print_generic(obj: Obj, now: float) -> tuple[Cells, list[dict[str, Any]]]:
    return [_name(obj), _age(obj, now)], []


_COLUMNS: dict[str, list[dict[str, Any]]] = {
    "Namespace": [_NAME, _col("Status", "The status of the namespace"), _AGE],
    "Node": [
        _NAME, _col("Status", "The status of the node"), _col("Roles", "The roles of the node"), _AGE,
        _col("Version", _DOC["kubeletVersion"]),
        _col("Internal-IP", _DOC["addresses"], priority=1), _col("External-IP", _DOC["addresses"], priority=1),
        _col("OS-Image", _DOC["osImage"], priority=1), _col("Kernel-Version", _DOC["kernelVersion"], priority=1),
        _col("Container-Runtime", _DOC["containerRuntimeVersion"], priority=1),
    ],
    "Pod": [
        _NAME,
        _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", "The aggregate status of the containers in this pod."),
        _col("Restarts", "The number of times the containers in this pod have been restarted and when the last "
                         "container in this pod has restarted."),
        _AGE,
        _col("IP", _DOC["podIP"], priority=1), _col("Node", _DOC["nodeName"], priority=1),
        _col("Nominated Node", _DOC["nominatedNodeName"], priority=1),
        _col("Readiness Gates", _DOC["readinessGates"], priority=1),
    ],
    "Service": [
        _NAME, _col("Type", _DOC["service.type"]), _col("Cluster-IP", _DOC["clusterIP"]),
        _col("External-IP", _DOC["externalIPs"]), _col("Port(s)", _DOC["service.ports"]), _AGE,
        _col("Selector", _DOC["service.selector"], priority=1),
    ],
    "Endpoints": [_NAME, _col("Endpoints", _DOC["subsets"]), _AGE],
    "EndpointSlice": [
        _NAME, _col("AddressType", _DOC["addressType"]), _col("Ports", _DOC["slice.ports"]),
        _col("Endpoints", _DOC["slice.endpoints"]), _AGE,
    ],
    "Deployment": [
        _NAME, _col("Ready", "Number of the pod with ready state"),
        _col("Up-to-date", _DOC["updatedReplicas"]), _col("Available", _DOC["availableReplicas"]), _AGE,
        _CONTAINERS, _IMAGES, _col("Selector", _DOC["deployment.selector"], priority=1),
    ],
    "ReplicaSet": [
        _NAME, _col("Desired", _DOC["rs.replicas"], type_="integer"),
        _col("Current", _DOC["rs.status.replicas"], type_="integer"),
        _col("Ready", _DOC["rs.readyReplicas"], type_="integer"), _AGE,
        _CONTAINERS, _IMAGES, _col("Selector", _DOC["rs.selector"], priority=1),
    ],
    "Lease": [_NAME, _col("Holder", _DOC["holderIdentity"]), _AGE],
    "ServiceAccount": [_NAME, _col("Secrets", _DOC["sa.secrets"]), _AGE],
    "ConfigMap": [_NAME, _col("Data", _DOC["cm.data"]), _AGE],
    "Secret": [_NAME, _col("Type", _DOC["secret.type"]), _col("Data", _DOC["secret.data"]), _AGE],
    "Event": [
        _col("Last Seen", "Last time the event was observed"),
        _col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
        _col("Reason", "This should be a short, machine understandable string that gives the reason for the "
                       "transition into the object's current status."),
        _col("Object", "Name of the referent."),
        _col("Subobject", "The field of the referent that the event is about.", priority=1),
        _col("Source", "The component reporting this event.", priority=1),
        _col("Message", "A human-readable description of the status of this operation."),
        _col("First Seen", "The time at which the event was first recorded.", priority=1),
        _col("Count", "The number of times this event has occurred.", priority=1),
        _col("Name", _DOC["name"], priority=1, format_="name"),
    ],
}
_GENERIC_COLUMNS = [_NAME, _AGE]

_PRINTERS: dict[str, Printer] = {
    "Namespace": _print_namespace,
    "Node": _print_node,
    "Pod": _print_pod,
    "Service": _print_service,
    "Endpoints": _print_endpoints,
    "EndpointSlice": _print_endpoint_slice,
    "Deployment": _print_deployment,
    "ReplicaSet": _print_replica_set,
    "Lease": _print_lease,
    "ServiceAccount": _print_service_account,
    "ConfigMap": _print_config_map,
    "Secret": _print_secret,
    "Event": _print_event,
}


def column_definitions(info: ResourceInfo) -> list[dict[str, Any]]:
    return [dict(c) for c in _COLUMNS.get(info.kind, _GENERIC_COLUMNS)]


def partial_object_metadata(obj: Obj) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": dict(_meta(obj))}


def table_row(info: ResourceInfo, obj: Obj, now: float, include_object: str = "Metadata") -> dict[str, Any]:
    printer = _PRINTERS.get(info.kind, _print_generic)
    cells, conditions = printer(obj if isinstance(obj, dict) else {}, now)
    row: dict[str, Any] = {"cells": cells}
    if conditions:
        row["conditions"] = [dict(c) for c in conditions]
    if include_object == "Object":
        row["object"] = obj
    elif include_object != "None":
        row["object"] = partial_object_metadata(obj)
    return row


def table(info: ResourceInfo, objs: list[Obj], now: float, include_object: str = "Metadata") -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of `objs`; the caller sets `metadata` (resourceVersion, continue)."""
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": column_definitions(info),
        "rows": [table_row(info, o, now, include_object) for o in objs],
    }
