"""Pure pod helpers shared by the endpoint controllers.

Both the EndpointSlice and the legacy Endpoints controller decide the same questions about a
pod (is it ready, which IPs does it have, which container port does a named target port mean,
which Services select it); Kubernetes answers them the same way in both, so they live here.
Everything takes plain JSON dicts and returns values.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from sliceplane.api.meta import labels_of, name_of, namespace_of, parse_time

Obj = dict[str, Any]

IPV4 = "IPv4"
IPV6 = "IPv6"


NODE_NAME_INDEX = "spec.nodeName"  # an informer index of pods by the node they are bound to


def pod_node_name(pod: Obj) -> list[str]:
    """The NODE_NAME_INDEX function (unbound pods index under "")."""
    return [(pod.get("spec") or {}).get("nodeName") or ""]


def is_pod_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True (what `serving` means on an endpoint)."""
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def ready_condition(pod: Obj) -> dict[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return None


def is_pod_terminal(pod: Obj) -> bool:
    """Succeeded and Failed pods never come back, so they never back a Service."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_pod_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def pod_ips(pod: Obj) -> list[str]:
    """status.podIPs, falling back to status.podIP for writers that only set the singular field."""
    status = pod.get("status") or {}
    ips = [p.get("ip", "") for p in status.get("podIPs") or [] if p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """Terminal pods and pods without an IP are never endpoints; terminating ones only on request."""
    if is_pod_terminal(pod):
        return False
    if not pod_ips(pod):
        return False
    return include_terminating or not is_pod_terminating(pod)


@functools.lru_cache(maxsize=1 << 17)
def _parse_ip(ip: str) -> tuple[str | None, str]:
    """(family, canonical text) of an IP; cached, as the same pod IPs are parsed on every sync."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None, ip
    return (IPV6 if addr.version == 6 else IPV4), str(addr)


def ip_family(ip: str) -> str | None:
    """IPv4 / IPv6 for a textual IP, None when it does not parse."""
    return _parse_ip(ip)[0]


def canonical_ip(ip: str) -> str:
    """Re-stringify an IP the way Kubernetes does before publishing it (e.g. IPv6 compression)."""
    return _parse_ip(ip)[1]


def pod_addresses_for_family(pod: Obj, family: str) -> list[str]:
    out: list[str] = []
    for ip in pod_ips(pod):
        fam, text = _parse_ip(ip)
        if fam == family:
            out.append(text)
    return out


def should_set_hostname(pod: Obj, service: Obj) -> bool:
    """An endpoint carries the pod hostname only when the pod's subdomain names this Service."""
    spec = pod.get("spec") or {}
    return (
        bool(spec.get("hostname"))
        and spec.get("subdomain", "") == name_of(service)
        and namespace_of(service) == namespace_of(pod)
    )


def find_port(pod: Obj, service_port: Mapping[str, Any]) -> int | None:
    """The container port a Service port targets on this pod, None when the pod has no such port.

    A numeric targetPort is used as is; a named one is looked up by name and protocol in the
    containers, then in sidecars (init containers with restartPolicy Always).
    """
    target = service_port.get("targetPort")
    if target is None or target == "":
        target = service_port.get("port")
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    if not isinstance(target, str):
        return None
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                cp = port.get("containerPort")
                return int(cp) if cp is not None else None
    return None


def service_selector(service: Obj) -> dict[str, str] | None:
    """The Service's pod selector; None when it selects nothing (missing or empty).

    An empty selector does not survive Kubernetes' storage round trip, so such Services behave
    as selector-less ones: their endpoints are managed by hand.
    """
    sel = (service.get("spec") or {}).get("selector")
    return dict(sel) if sel else None


def selector_matches(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def service_selects(service: Obj, pod: Obj) -> bool:
    return namespace_of(service) == namespace_of(pod) and selector_matches(
        service_selector(service), labels_of(pod)
    )


def services_selecting(services: Iterable[Obj], labels: Mapping[str, str]) -> set[str]:
    """Keys (`ns/name`) of the Services whose selector matches these labels.

    Callers pass the Services of the pod's namespace only (a namespace index), so the cost is
    the number of Services there, not in the cluster.
    """
    out: set[str] = set()
    for svc in services:
        if selector_matches(service_selector(svc), labels):
            out.add(f"{namespace_of(svc)}/{name_of(svc)}")
    return out


def pod_endpoints_changed(old: Obj, new: Obj) -> tuple[bool, bool]:
    """(pod changed in a way endpoints see, pod changed in a way Service membership sees)."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    labels_changed = (
        labels_of(old) != labels_of(new)
        or old_spec.get("hostname") != new_spec.get("hostname")
        or old_spec.get("subdomain") != new_spec.get("subdomain")
    )
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    if old_meta.get("deletionTimestamp") != new_meta.get("deletionTimestamp"):
        return True, labels_changed
    if is_pod_ready(old) != is_pod_ready(new):
        return True, labels_changed
    if pod_ips(old) != pod_ips(new):
        return True, labels_changed
    # Beyond Kubernetes' list: phase (a pod turning terminal leaves its Services) and the node a
    # pod binds to (set once, but before or together with the IP in our fleet).
    if (old.get("status") or {}).get("phase") != (new.get("status") or {}).get("phase"):
        return True, labels_changed
    if old_spec.get("nodeName") != new_spec.get("nodeName"):
        return True, labels_changed
    return False, labels_changed


def services_to_update(
    services_in_namespace: Iterable[Obj], old: Obj | None, new: Obj | None
) -> set[str]:
    """Service keys a pod add (old None), delete (new None) or update has to wake up."""
    svcs = list(services_in_namespace)
    if old is None and new is None:
        return set()
    if old is None or new is None:
        pod = new if new is not None else old
        assert pod is not None
        return services_selecting(svcs, labels_of(pod))
    if resource_version(old) and resource_version(old) == resource_version(new):
        return set()  # a resync, not a change
    pod_changed, labels_changed = pod_endpoints_changed(old, new)
    if not pod_changed and not labels_changed:
        return set()
    current = services_selecting(svcs, labels_of(new))
    if not labels_changed:
        return current
    previous = services_selecting(svcs, labels_of(old))
    if pod_changed:
        return current | previous
    return current ^ previous | _hostname_services(svcs, old, new, current & previous)


def _hostname_services(svcs: list[Obj], old: Obj, new: Obj, common: set[str]) -> set[str]:
    """Services selecting the pod before and after whose hostname field may have changed.

    Kubernetes folds hostname/subdomain changes into "labels changed" and then wakes only the
    Services gained or lost; a Service that keeps the pod but is its subdomain would miss the
    new hostname. We wake it too.
    """
    o, n = old.get("spec") or {}, new.get("spec") or {}
    if (o.get("hostname"), o.get("subdomain")) == (n.get("hostname"), n.get("subdomain")):
        return set()
    names = {o.get("subdomain"), n.get("subdomain")}
    return {k for k in common if k.split("/", 1)[1] in names}


def resource_version(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion", "")


def pod_trigger_time(pod: Obj) -> float | None:
    """When the pod last changed in a way endpoints publish: its Ready condition's transition."""
    cond = ready_condition(pod)
    if not cond or not cond.get("lastTransitionTime"):
        return None
    try:
        return parse_time(cond["lastTransitionTime"])
    except ValueError:
        return None


def service_trigger_time(service: Obj) -> float | None:
    ts = (service.get("metadata") or {}).get("creationTimestamp")
    if not ts:
        return None
    try:
        return parse_time(ts)
    except ValueError:
        return None


def is_headless(service: Obj) -> bool:
    """No cluster IP to load-balance on: clients resolve the endpoints themselves."""
    cip = (service.get("spec") or {}).get("clusterIP")
    return cip in (None, "", "None")


def service_address_types(service: Obj) -> list[str]:
    """Address types of the Service's endpoint slices, from spec.ipFamilies.

    Without ipFamilies (written by an old API server): the cluster IP's family, or both for
    a headless Service, as Kubernetes does.
    """
    spec = service.get("spec") or {}
    out: list[str] = []
    for fam in spec.get("ipFamilies") or []:
        if fam in (IPV4, IPV6) and fam not in out:
            out.append(fam)
    if out:
        return out
    cip = spec.get("clusterIP")
    if cip and cip != "None":
        return [ip_family(cip) or IPV4]
    return [IPV4, IPV6]
