"""The legacy Endpoints controller: one Endpoints object per selector Service.

This is the design the seed measures against: one object holding every address of the
Service, rewritten whole on every change. We reproduce Kubernetes' behaviour:

- addresses grouped into subsets of identical port sets (ready ones in `addresses`, the rest
  in `notReadyAddresses`; an address not ready on any port is not ready on all of them);
- terminating pods only with publishNotReadyAddresses, which also makes every address ready;
- at most 1000 addresses (ready ones kept first), marked with the annotation
  `endpoints.kubernetes.io/over-capacity: truncated`, removed when back under;
- the Service's labels, plus `service.kubernetes.io/headless` for headless Services;
- the last-change-trigger-time annotation;
- no Endpoints managed for ExternalName Services or Services without a selector (those are
  the user's); the Endpoints of a deleted Service are deleted.

`desired_endpoints` is pure and decides whether a write is needed at all (comparison ignores
ordering); `EndpointsController` is the shell. `max_addresses=None` lifts the cap, to
reproduce the seed's ever-growing objects in benchmarks.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter as PromCounter

from sliceplane.api.meta import key_of, name_of, namespace_of, split_key, uid_of
from sliceplane.api.registry import ENDPOINTS, PODS, SERVICES
from sliceplane.client.informer import SharedInformerFactory
from sliceplane.controllers import podutil
from sliceplane.controllers.base import MAX_RETRIES, QueueController, requeue_or_forget, wait_idle
from sliceplane.controllers.endpointslice.triggertime import TriggerTimeTracker, format_trigger_time

log = logging.getLogger(__name__)

Obj = dict[str, Any]

MAX_CAPACITY = 1000
ANNOTATION_OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
TRUNCATED = "truncated"
ANNOTATION_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
LABEL_HEADLESS = "service.kubernetes.io/headless"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"

SYNCS = PromCounter("endpoint_controller_syncs", "Endpoints controller syncs, by result", ["result"])
CHANGES = PromCounter("endpoint_controller_changes", "Endpoints writes by the controller, by operation",
                      ["operation"])


# ---- pure core ------------------------------------------------------------------------------


def wants_endpoints(service: Obj) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") != "ExternalName" and podutil.service_selector(service) is not None


def _service_family(service: Obj, pod: Obj) -> str:
    spec = service.get("spec") or {}
    families = spec.get("ipFamilies") or []
    if families:
        return families[0]
    cip = spec.get("clusterIP")
    if cip and cip != "None":
        return podutil.ip_family(cip) or podutil.IPV4
    first = (pod.get("status") or {}).get("podIP") or ""
    return podutil.ip_family(first) or podutil.IPV4


def pod_address(service: Obj, pod: Obj) -> Obj | None:
    """The EndpointAddress of a pod for this Service: its first IP of the Service's family."""
    family = _service_family(service, pod)
    ip = next((i for i in podutil.pod_ips(pod) if podutil.ip_family(i) == family), None)
    if ip is None:
        return None
    addr: Obj = {"ip": ip}
    if podutil.should_set_hostname(pod, service):
        addr["hostname"] = (pod.get("spec") or {})["hostname"]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    addr["targetRef"] = {"kind": "Pod", "namespace": namespace_of(pod), "name": name_of(pod), "uid": uid_of(pod)}
    return addr


def _endpoint_port(service_port: Obj, number: int) -> Obj:
    port: Obj = {}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    port["port"] = number
    port["protocol"] = service_port.get("protocol") or "TCP"
    if service_port.get("appProtocol") is not None:
        port["appProtocol"] = service_port["appProtocol"]
    return port


_NO_PORT = "{}"  # the port-less group of a headless Service without ports


def endpoint_subsets(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The Service's subsets in canonical form (same input, same output, whatever the order)."""
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    service_ports = spec.get("ports") or []
    headless_no_ports = not service_ports and podutil.is_headless(service)
    # port (as canonical JSON) -> address key -> (address, ready)
    by_port: dict[str, dict[tuple[str, str], tuple[Obj, bool]]] = {}

    def add(port_json: str, addr: Obj, ready: bool) -> None:
        addrs = by_port.setdefault(port_json, {})
        k = (addr["ip"], addr.get("targetRef", {}).get("uid", ""))
        prev = addrs.get(k)
        # not ready on one port means not ready on all of them
        addrs[k] = (addr if prev is None else prev[0], ready and (prev is None or prev[1]))

    for pod in sorted(pods, key=name_of):
        if not podutil.service_selects(service, pod):
            continue
        if not podutil.should_pod_be_in_endpoints(pod, include_terminating=publish):
            continue
        addr = pod_address(service, pod)
        if addr is None:
            continue
        ready = publish or podutil.is_pod_ready(pod)
        if headless_no_ports:
            add(_NO_PORT, addr, ready)
            continue
        for sp in service_ports:
            number = podutil.find_port(pod, sp)
            if number is None:
                continue
            add(_canon(_endpoint_port(sp, number)), addr, ready)

    # Ports offered by exactly the same addresses (with the same readiness) share a subset.
    groups: dict[str, tuple[dict[tuple[str, str], tuple[Obj, bool]], list[Obj]]] = {}
    for port_json, addrs in by_port.items():
        sig = _canon(sorted([k[0], k[1], r] for k, (_, r) in addrs.items()))
        entry = groups.setdefault(sig, (addrs, []))
        if port_json != _NO_PORT:
            entry[1].append(json.loads(port_json))
    subsets = []
    for addrs, ports in groups.values():
        subsets.append(_subset(
            [a for a, r in addrs.values() if r], [a for a, r in addrs.values() if not r], ports
        ))
    return canonical_subsets(subsets)


def _subset(ready: list[Obj], not_ready: list[Obj], ports: list[Obj]) -> Obj:
    s: Obj = {}
    if ready:
        s["addresses"] = ready
    if not_ready:
        s["notReadyAddresses"] = not_ready
    if ports:
        s["ports"] = ports
    return s


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _address_order(a: Obj) -> tuple[str, str]:
    return (a.get("ip", ""), (a.get("targetRef") or {}).get("uid", ""))


def _port_order(p: Obj) -> tuple[str, int, str]:
    return (p.get("name", ""), int(p.get("port") or 0), p.get("protocol", ""))


def canonical_subsets(subsets: Iterable[Obj] | None) -> list[Obj]:
    """Subsets with addresses, ports and the subsets themselves in a fixed order.

    Target references are compared without their resourceVersion, which changes with every
    pod write and says nothing about the endpoint.
    """
    out = []
    for s in subsets or []:
        c: Obj = {}
        for field in ("addresses", "notReadyAddresses"):
            addrs = [_strip_ref_rv(a) for a in s.get(field) or []]
            if addrs:
                c[field] = sorted(addrs, key=_address_order)
        ports = sorted((dict(p) for p in s.get("ports") or []), key=_port_order)
        if ports:
            c["ports"] = ports
        if c:
            out.append(c)
    return sorted(out, key=_canon)


def _strip_ref_rv(addr: Obj) -> Obj:
    ref = addr.get("targetRef")
    if not ref or "resourceVersion" not in ref:
        return dict(addr)
    return {**addr, "targetRef": {k: v for k, v in ref.items() if k != "resourceVersion"}}


def truncate_subsets(subsets: list[Obj], max_addresses: int) -> tuple[list[Obj], bool]:
    """Cap the address count, ready addresses first, spreading the cut over the subsets.

    Each subset keeps a share proportional to its size (rounded up, so the last subsets may get
    less). Returns the new subsets and whether anything was cut.
    """
    total_ready = sum(len(s.get("addresses") or []) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if total_ready + total_not_ready <= max_addresses:
        return subsets, False
    cut_ready = total_ready > max_addresses
    budget = max_addresses if cut_ready else max_addresses - total_ready
    pool = total_ready if cut_ready else total_not_ready
    left = budget
    out = []
    for s in subsets:
        s = dict(s)
        field = "addresses" if cut_ready else "notReadyAddresses"
        have = s.get(field) or []
        share = min(math.ceil(len(have) / pool * budget) if pool else 0, left)
        kept = have[:share]
        left -= len(kept)
        if kept:
            s[field] = kept
        else:
            s.pop(field, None)
        if cut_ready:
            s.pop("notReadyAddresses", None)
        out.append(s)
    return [s for s in out if s.get("addresses") or s.get("notReadyAddresses")], True


def endpoints_labels(service: Obj) -> dict[str, str]:
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    if podutil.is_headless(service):
        labels[LABEL_HEADLESS] = ""
    else:
        labels.pop(LABEL_HEADLESS, None)
    return labels


def desired_endpoints(
    service: Obj,
    pods: Iterable[Obj],
    current: Obj | None,
    *,
    trigger_time: float | None = None,
    max_addresses: int | None = MAX_CAPACITY,
) -> Obj | None:
    """The Endpoints object to write for `service`, or None when no write is needed.

    `current` is the Endpoints object as cached (None: there is none, so it is created).
    Services that get no managed Endpoints (ExternalName, no selector) always give None.
    """
    if not wants_endpoints(service):
        return None
    subsets = endpoint_subsets(service, pods)
    truncated = False
    if max_addresses is not None:
        subsets, truncated = truncate_subsets(subsets, max_addresses)
        subsets = canonical_subsets(subsets)
    labels = endpoints_labels(service)
    if current is not None:
        cur_meta = current.get("metadata") or {}
        cur_annotations = cur_meta.get("annotations") or {}
        if (
            canonical_subsets(current.get("subsets")) == subsets
            and (cur_meta.get("labels") or {}) == labels
            and (cur_annotations.get(ANNOTATION_OVER_CAPACITY) == TRUNCATED) == truncated
        ):
            return None
        obj = copy.deepcopy(current)
    else:
        obj = {"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": name_of(service), "namespace": namespace_of(service)}}
    obj["apiVersion"], obj["kind"] = "v1", "Endpoints"
    meta = obj.setdefault("metadata", {})
    meta["labels"] = labels
    annotations = dict(meta.get("annotations") or {})
    if trigger_time is not None:
        annotations[ANNOTATION_TRIGGER_TIME] = format_trigger_time(trigger_time)
    else:
        annotations.pop(ANNOTATION_TRIGGER_TIME, None)
    if truncated:
        annotations[ANNOTATION_OVER_CAPACITY] = TRUNCATED
    else:
        annotations.pop(ANNOTATION_OVER_CAPACITY, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    obj["subsets"] = subsets
    return obj


# ---- shell ----------------------------------------------------------------------------------


def _by_namespace(obj: Obj) -> list[str]:
    return [namespace_of(obj)]


def _rv(obj: Obj | None) -> int | None:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion", ""))
    except ValueError:
        return None


class StaleEndpointsError(Exception):
    """The Endpoints informer has not yet shown our last write of this object."""


class EndpointsController(QueueController):
    """Keeps one Endpoints object per selector Service, as kube-controller-manager does."""

    def __init__(self, client: Any, *, max_addresses: int | None = MAX_CAPACITY, workers: int = 5,
                 batch_period: float = 0.0, informers: SharedInformerFactory | None = None) -> None:
        from sliceplane.client.workqueue import WorkQueue

        if max_addresses is not None and max_addresses < 1:
            raise ValueError(f"max_addresses must be positive or None, got {max_addresses!r}")
        super().__init__(client, informers)
        self.max_addresses = max_addresses
        self.workers = workers
        self.batch_period = batch_period
        self.services = self._informer(SERVICES)
        self.pods = self._informer(PODS)
        self.endpoints = self._informer(ENDPOINTS)
        self.services.add_index("namespace", _by_namespace)
        self.pods.add_index("namespace", _by_namespace)
        self.queue = WorkQueue("endpoint")
        self.trigger_times = TriggerTimeTracker()
        self._written_rv: dict[str, int] = {}  # key -> resourceVersion of our last write
        self.plan_in_thread = 2000  # Services with at least this many pods are planned off the loop
        self.stats: Counter[str] = Counter()
        self.services.add_handlers(self._on_service, lambda old, new: self._on_service(new), self._on_service)
        self.pods.add_handlers(lambda p: self._on_pod(None, p), self._on_pod, lambda p: self._on_pod(p, None))
        self.endpoints.add_handlers(None, None, self._on_endpoints_delete)

    @property
    def writes(self) -> int:
        return self.stats["create"] + self.stats["update"] + self.stats["delete"]

    async def run(self, workers: int | None = None) -> None:
        try:
            if not await self._start_informers((self.services, self.pods, self.endpoints)):
                return
            # Endpoints left behind by Services deleted while we were down.
            for ep in self.endpoints.list():
                if LEADER_ANNOTATION not in ((ep.get("metadata") or {}).get("annotations") or {}):
                    self.queue.add(key_of(ep))
            await self._work_until_stopped(self.queue, self.sync, workers or self.workers, log, self._handle_result)
        finally:
            await self._cancel_tasks()

    async def stop(self) -> None:
        await self._shutdown(self.queue)

    async def wait_idle(self, settle: float = 0.05) -> None:
        """Return once nothing is queued, parked or being synced (for tests and benchmarks)."""
        await wait_idle([self.queue], self._busy, settle=settle, include_parked=True)

    # --- handlers ---------------------------------------------------------------------------

    def _on_service(self, svc: Obj) -> None:
        self.queue.add(key_of(svc))

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        for key in podutil.services_to_update(self.services.by_index("namespace", namespace_of(pod)), old, new):
            self.queue.add_after(key, self.batch_period)

    def _on_endpoints_delete(self, ep: Obj) -> None:
        self._written_rv.pop(key_of(ep), None)
        self.queue.add(key_of(ep))

    # --- workers ----------------------------------------------------------------------------

    def _handle_result(self, key: str, err: Exception | None) -> None:
        stale = isinstance(err, StaleEndpointsError)
        if err is None:
            SYNCS.labels("success").inc()
        else:
            SYNCS.labels("stale" if stale else "error").inc()
            self.stats["stale" if stale else "errors"] += 1
        requeue_or_forget(self.queue, key, err, log, max_retries=MAX_RETRIES, quiet=stale,
                          what="syncing endpoints", queue_name="endpoints")

    async def sync(self, key: str) -> None:
        from sliceplane.client.rest import ApiError

        ns, name = split_key(key)
        svc = self.services.get(key)
        if svc is None:
            self.trigger_times.delete_service(key)
            self._written_rv.pop(key, None)
            if self.endpoints.get(key) is None:
                return
            try:
                await self.client.delete(ENDPOINTS, name, ns)
                self._count("delete")
            except ApiError as e:
                if e.code != 404:
                    raise
            return
        if not wants_endpoints(svc):
            return
        current = self.endpoints.get(key)
        written = self._written_rv.get(key)
        cur_rv = _rv(current)
        if written is not None and (current is None or (cur_rv is not None and cur_rv < written)):
            # Our last write is not in the cache yet (a deletion by someone else clears `written`).
            raise StaleEndpointsError(f"endpoints informer cache is out of date for {key}")
        pods = [p for p in self.pods.by_index("namespace", ns) if podutil.service_selects(svc, p)]
        trigger = self.trigger_times.observe_all(svc, pods)
        if len(pods) >= self.plan_in_thread:
            # O(P) on every change is this design's cost; keep the loop reading watches meanwhile.
            obj = await asyncio.to_thread(desired_endpoints, svc, pods, current, trigger_time=trigger,
                                          max_addresses=self.max_addresses)
        else:
            obj = desired_endpoints(svc, pods, current, trigger_time=trigger, max_addresses=self.max_addresses)
        self.stats["syncs"] += 1
        if obj is None:
            return
        if current is None:
            obj["metadata"].pop("resourceVersion", None)
            try:
                result = await self.client.create(ENDPOINTS, obj, ns)
            except ApiError as e:
                if e.code == 403 and any(c.type == "NamespaceTerminating" for c in e.causes):
                    return
                if e.code == 409:
                    # exists already but our cache has not shown it yet: retry from the cache
                    raise StaleEndpointsError(f"endpoints {key} exists but is not cached yet") from e
                raise
            self._count("create")
        else:
            result = await self.client.update(ENDPOINTS, obj)
            self._count("update")
        rv = _rv(result)
        if rv is not None:
            self._written_rv[key] = rv

    def _count(self, operation: str) -> None:
        self.stats[operation] += 1
        CHANGES.labels(operation).inc()
