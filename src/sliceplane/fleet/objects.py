"""The objects a hollow kubelet writes: its Node, and the status of its pods (pure).

The shapes follow what a v1.32 kubelet with containerd reports, so `kubectl get -o wide`,
`kubectl describe` and the EndpointSlice controller read them as they would a real node's.
Times arrive as arguments; container and image ids are derived from the pod's uid, so the same
pod always gets the same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sliceplane.api.meta import rfc3339, rfc3339_micro
from sliceplane.api.registry import NODE_LEASE_NAMESPACE

Obj = dict[str, Any]

KUBELET_VERSION = "v1.32.0"
CONTAINER_RUNTIME = "containerd://1.7.24"
KERNEL_VERSION = "6.8.0-sliceplane"
OS_IMAGE = "Debian GNU/Linux 12 (bookworm)"
KUBELET_PORT = 10250

ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
HOSTNAME_LABEL = "kubernetes.io/hostname"
FLEET_ANNOTATION = "sliceplane.io/fleet"
# "true" on a Node: its hollow kubelet acts dead (no Lease renewals, no node or pod status, no
# finished deletions) until the annotation goes. How to fail some nodes and not others.
KUBELET_STOPPED_ANNOTATION = "sliceplane.io/kubelet-stopped"


def kubelet_stopped(node: Obj | None) -> bool:
    return ((node or {}).get("metadata") or {}).get("annotations", {}).get(KUBELET_STOPPED_ANNOTATION) == "true"


@dataclass(frozen=True, slots=True)
class NodeShape:
    """Everything that makes one simulated node."""

    name: str
    zone: str
    region: str
    internal_ips: tuple[str, ...]  # IPv4 first
    pod_cidrs: tuple[str, ...]  # IPv4 first
    cpu: str = "8"
    memory: str = "32Gi"
    ephemeral_storage: str = "100Gi"
    max_pods: int = 110
    fleet: str = "sliceplane"


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def node_metadata(shape: NodeShape) -> Obj:
    return {
        "name": shape.name,
        "labels": {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            HOSTNAME_LABEL: shape.name,
            "kubernetes.io/os": "linux",
            ZONE_LABEL: shape.zone,
            REGION_LABEL: shape.region,
            "failure-domain.beta.kubernetes.io/zone": shape.zone,
            "failure-domain.beta.kubernetes.io/region": shape.region,
            "node.kubernetes.io/instance-type": "sliceplane-hollow",
        },
        "annotations": {
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            FLEET_ANNOTATION: shape.fleet,
        },
    }


def node_lease(name: str, node_uid: str, now: float, duration_seconds: int) -> Obj:
    """The kubelet's heartbeat: kube-node-lease/<node>, owned by its Node."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": NODE_LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}],
        },
        "spec": {"holderIdentity": name, "leaseDurationSeconds": duration_seconds, "renewTime": rfc3339_micro(now)},
    }


def node_spec(shape: NodeShape) -> Obj:
    return {"podCIDR": shape.pod_cidrs[0], "podCIDRs": list(shape.pod_cidrs)}


def node_status(shape: NodeShape, now: float, old_status: Obj | None = None) -> Obj:
    """A Ready node's status; condition transition times survive from `old_status`."""
    resources = {
        "cpu": shape.cpu,
        "ephemeral-storage": shape.ephemeral_storage,
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": shape.memory,
        "pods": str(shape.max_pods),
    }
    old = {c.get("type"): c for c in (old_status or {}).get("conditions") or []}
    stamp = rfc3339(now)

    def cond(type_: str, status: str, reason: str, message: str) -> Obj:
        prev = old.get(type_) or {}
        since = prev.get("lastTransitionTime") if prev.get("status") == status else None
        return {"type": type_, "status": status, "lastHeartbeatTime": stamp,
                "lastTransitionTime": since or stamp, "reason": reason, "message": message}

    addresses = [{"type": "InternalIP", "address": ip} for ip in shape.internal_ips]
    addresses.append({"type": "Hostname", "address": shape.name})
    return {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": addresses,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "machineID": _digest("machine", shape.name)[:32],
            "systemUUID": _uuid(_digest("system", shape.name)),
            "bootID": _uuid(_digest("boot", shape.name)),
            "kernelVersion": KERNEL_VERSION,
            "osImage": OS_IMAGE,
            "containerRuntimeVersion": CONTAINER_RUNTIME,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",  # deprecated and empty, but required: kubectl's client-side validation wants it
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
        "images": [],
    }


def node_metadata_patch(existing: Obj, shape: NodeShape) -> Obj:
    """A merge patch bringing an existing node's labels, annotation and pod CIDRs in line with
    `shape`; empty when nothing differs (a converged node is not rewritten)."""
    want = node_metadata(shape)
    meta = existing.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    patch: Obj = {}
    label_diff = {k: v for k, v in want["labels"].items() if labels.get(k) != v}
    if label_diff:
        patch.setdefault("metadata", {})["labels"] = label_diff
    if annotations.get(FLEET_ANNOTATION) != shape.fleet:
        patch.setdefault("metadata", {})["annotations"] = {FLEET_ANNOTATION: shape.fleet}
    if list((existing.get("spec") or {}).get("podCIDRs") or []) != list(shape.pod_cidrs):
        patch["spec"] = node_spec(shape)
    return patch


def node_object(shape: NodeShape, now: float) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": node_metadata(shape), "spec": node_spec(shape),
            "status": node_status(shape, now)}


def _uuid(hexdigest: str) -> str:
    h = hexdigest
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


# --- pods ------------------------------------------------------------------------------------

ContainerPhase = Literal["running", "ready", "terminated"]


def normalize_image(image: str) -> str:
    """The image reference containerd reports: registry and tag spelled out (`nginx` ->
    `docker.io/library/nginx:latest`)."""
    name, at, digest = image.partition("@")
    first, slash, _ = name.partition("/")
    if not slash:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    if at:
        return f"{name}@{digest}"
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def image_id(image: str) -> str:
    ref = normalize_image(image)
    if "@" in ref:
        return ref
    repo = ref.rsplit(":", 1)[0]
    return f"{repo}@sha256:{_digest('image', ref)}"


def container_id(uid: str, name: str) -> str:
    return f"containerd://{_digest('container', uid, name)}"


def qos_class(pod: Obj) -> str:
    """Guaranteed / Burstable / BestEffort from the containers' requests and limits."""
    containers = [*((pod.get("spec") or {}).get("containers") or []),
                  *((pod.get("spec") or {}).get("initContainers") or [])]
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        requests = res.get("requests") or {}
        limits = res.get("limits") or {}
        if requests or limits:
            any_set = True
        for r in ("cpu", "memory"):
            lim = limits.get(r)
            req = requests.get(r, lim)
            if lim is None or str(req) != str(lim):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _container_status(pod: Obj, c: Obj, phase: ContainerPhase, started: str, finished: str) -> Obj:
    uid = (pod.get("metadata") or {}).get("uid", "")
    cid = container_id(uid, c.get("name", ""))
    if phase == "terminated":
        state: Obj = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                     "finishedAt": finished, "containerID": cid}}
    else:
        state = {"running": {"startedAt": started}}
    return {
        "name": c.get("name", ""),
        "state": state,
        "lastState": {},
        "ready": phase == "ready",
        "restartCount": 0,
        "image": normalize_image(c.get("image", "")),
        "imageID": image_id(c.get("image", "")),
        "containerID": cid,
        "started": phase != "terminated",
    }


def _init_status(pod: Obj, c: Obj, started: str) -> Obj:
    uid = (pod.get("metadata") or {}).get("uid", "")
    cid = container_id(uid, c.get("name", ""))
    return {
        "name": c.get("name", ""),
        "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                 "finishedAt": started, "containerID": cid}},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": normalize_image(c.get("image", "")),
        "imageID": image_id(c.get("image", "")),
        "containerID": cid,
        "started": False,
    }


def pod_status(pod: Obj, phase: ContainerPhase, *, host_ips: Sequence[str], pod_ips: Sequence[str],
               started_at: float, now: float) -> Obj:
    """The status a kubelet reports for a pod whose containers are running (not ready yet),
    ready, or terminated after a deletion. Transition times survive from the pod's current status."""
    spec = pod.get("spec") or {}
    old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    stamp = rfc3339(now)
    started = rfc3339(started_at)
    containers = spec.get("containers") or []
    ready = phase == "ready"

    def cond(type_: str, status: bool, reason: str = "", message: str = "") -> Obj:
        text = "True" if status else "False"
        prev = old.get(type_) or {}
        since = prev.get("lastTransitionTime") if prev.get("status") == text else None
        c: Obj = {"type": type_, "status": text, "lastProbeTime": None, "lastTransitionTime": since or stamp}
        if not status and reason:
            c["reason"] = reason
            c["message"] = message
        return c

    unready = "containers with unready status: [" + " ".join(c.get("name", "") for c in containers) + "]"
    status: Obj = {
        "phase": "Running",
        "conditions": [
            cond("PodReadyToStartContainers", phase != "terminated"),
            cond("Initialized", True),
            cond("Ready", ready, "ContainersNotReady", unready),
            cond("ContainersReady", ready, "ContainersNotReady", unready),
            cond("PodScheduled", True),
        ],
        "hostIP": host_ips[0] if host_ips else None,
        "hostIPs": [{"ip": ip} for ip in host_ips],
        "podIP": pod_ips[0] if pod_ips else None,
        "podIPs": [{"ip": ip} for ip in pod_ips],
        "startTime": started,
        "containerStatuses": [_container_status(pod, c, phase, started, stamp) for c in containers],
        "qosClass": qos_class(pod),
    }
    inits = spec.get("initContainers") or []
    if inits:
        status["initContainerStatuses"] = [_init_status(pod, c, started) for c in inits]
    return status


def binding(pod: Obj, node_name: str) -> Obj:
    meta = pod.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": meta.get("name", ""), "namespace": meta.get("namespace", ""), "uid": meta.get("uid", "")},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
    }
