"""A fleet of hollow nodes (like kwok): Node objects, a scheduler, pod IPs, readiness, termination.

The shell around the pure parts (`lifecycle` decides, `ipam` allocates, `scheduler` picks,
`objects` builds bodies): one pod informer whose handlers only enqueue pod keys, a work queue,
and a bounded number of workers, so thousands of pods get their writes concurrently while no
pod is ever handled by two workers at once. Timers are the work queue's `add_after`: a pod
becoming Ready after `pod_ready_delay`, a deletion finishing after its grace period.

On restart the fleet reuses its Node objects (same names, same pod CIDRs) and rebuilds its
address allocations from the pods it finds, before any worker starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sliceplane.api.meta import key_of, parse_time, rfc3339, split_key, uid_of
from sliceplane.api.registry import LEASES, NODE_LEASE_NAMESPACE, NODES, PODS, ResourceInfo
from sliceplane.api.taints import taints_of
from sliceplane.client.informer import Informer
from sliceplane.client.rest import APIConnectionError, ApiError, RESTClient
from sliceplane.client.workqueue import ShutDown, WorkQueue
from sliceplane.controllers.workload_util import EventRecorder
from sliceplane.fleet.ipam import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_CLUSTER_CIDR_V6,
    DEFAULT_NODE_MASK,
    DEFAULT_NODE_MASK_V6,
    ClusterCIDRs,
    IPAMError,
    NodeIPAM,
    node_internal_ip,
    sort_pod_ips,
)
from sliceplane.fleet.lifecycle import (
    Action,
    NodeEvent,
    NodeState,
    PodState,
    is_ready,
    node_name_of,
    node_transition,
    observe,
    plan_pod,
    pod_transitions,
    ready_time,
    termination_deadline,
    wants_default_scheduler,
)
from sliceplane.fleet.objects import (
    NodeShape,
    binding,
    kubelet_stopped,
    node_lease,
    node_metadata_patch,
    node_object,
    node_status,
    pod_status,
)
from sliceplane.fleet.scheduler import NodeFit, pick_node, unschedulable_message

log = logging.getLogger(__name__)

Obj = dict[str, Any]

UNSCHEDULABLE_RETRY = 2.0  # seconds before trying again to place a pod no node fits
NODE_LEASE_DURATION = 40  # seconds: the kubelet's nodeLeaseDurationSeconds
LEASE_RENEW_FRACTION = 0.25  # of the duration between renewals (the kubelet's 10 s)
NODE_INDEX = "spec.nodeName"


@dataclass
class TrackedPod:
    """What the fleet remembers about one pod: where it is in the lifecycle, and what it gave it."""

    uid: str
    state: PodState
    node: str = ""
    ips: tuple[str, ...] = ()
    resync_ready: bool = False  # write Ready again if the API shows it False (see plan_pod)
    started_at: float | None = None
    unschedulable_reported: bool = False


@dataclass
class HollowNode:
    shape: NodeShape
    state: NodeState
    ipam: tuple[NodeIPAM, ...]  # one per family, IPv4 first
    uid: str = ""  # the Node object's, for its Lease's owner reference
    resync_rounds: int = 0  # lease rounds left in which its not-ready pods are made Ready again

    def fit(self, live: Obj | None) -> NodeFit:
        """The scheduler's view of this node: the Node object as the API shows it when known
        (labels, cordon and taints set with kubectl count), else the node as we registered it."""
        if live is None:
            labels = {
                "kubernetes.io/hostname": self.shape.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": self.shape.zone,
                "topology.kubernetes.io/region": self.shape.region,
            }
            return NodeFit(self.shape.name, labels, self.shape.max_pods)
        spec = live.get("spec") or {}
        return NodeFit(self.shape.name, dict((live.get("metadata") or {}).get("labels") or {}), self.shape.max_pods,
                       bool(spec.get("unschedulable")), tuple(taints_of(live)))


class Fleet:
    """`count` hollow nodes named `<name_prefix><i>`; `await run()` until `stop()`."""

    def __init__(
        self,
        client: RESTClient,
        count: int,
        *,
        name_prefix: str = "node-",
        zones: Sequence[str] = ("zone-a", "zone-b", "zone-c"),
        region: str = "region-1",
        pod_ready_delay: float = 0.5,
        max_grace_period: float | None = None,
        dual_stack: bool = False,
        cpu: str = "8",
        memory: str = "32Gi",
        max_pods: int | None = None,
        cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
        node_cidr_mask: int = DEFAULT_NODE_MASK,
        cluster_cidr_v6: str = DEFAULT_CLUSTER_CIDR_V6,
        node_cidr_mask_v6: int = DEFAULT_NODE_MASK_V6,
        concurrency: int = 64,
        lease_duration: int = NODE_LEASE_DURATION,
    ) -> None:
        if count < 0:
            raise ValueError("count must be >= 0")
        if not zones:
            raise ValueError("at least one zone is needed")
        self.client = client
        self.count = count
        self.name_prefix = name_prefix
        self.zones = tuple(zones)
        self.region = region
        self.pod_ready_delay = pod_ready_delay
        self.max_grace_period = max_grace_period
        self.dual_stack = dual_stack
        self.cpu = cpu
        self.memory = memory
        self.max_pods = max_pods
        self.concurrency = max(1, concurrency)
        if lease_duration < 1:
            raise ValueError("lease_duration must be at least 1 second")
        self.lease_duration = lease_duration
        self._cidrs = [ClusterCIDRs(cluster_cidr, node_cidr_mask)]
        if dual_stack:
            self._cidrs.append(ClusterCIDRs(cluster_cidr_v6, node_cidr_mask_v6))
        self.nodes: dict[str, HollowNode] = {}
        self._node_order: list[str] = []
        self._tracked: dict[str, TrackedPod] = {}
        self._pods_per_node: Counter[str] = Counter()
        self.node_informer = Informer(client, NODES)
        self.informer = Informer(client, PODS)
        self.informer.add_index(NODE_INDEX, lambda p: [node_name_of(p)])
        self.queue = WorkQueue("fleet-pods")
        self.stats: Counter[str] = Counter()  # binds, status writes, deletes, errors
        self.recorder = EventRecorder(client, "default-scheduler")  # FailedScheduling, as the scheduler
        self._merge_patch = True  # cleared if the server answers 415 to merge patches
        self._ready = asyncio.Event()
        self._stopped = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None
        self._done: asyncio.Future[None] | None = None

    # --- public -------------------------------------------------------------------------------

    def node_names(self) -> list[str]:
        return [f"{self.name_prefix}{i}" for i in range(self.count)]

    async def wait_ready(self) -> None:
        """Until the nodes are registered Ready and the pod cache has synced."""
        await self._ready.wait()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def addresses_in_use(self) -> int:
        """Pod addresses currently allocated across the fleet's nodes (all families)."""
        return sum(len(ipam.used) for hn in self.nodes.values() for ipam in hn.ipam)

    def pods_per_node(self) -> dict[str, int]:
        """The scheduler's view: pods the fleet counts on each of its nodes."""
        return {name: self._pods_per_node.get(name, 0) for name in self._node_order}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._run_task = asyncio.current_task()
        informer_task: asyncio.Task[None] | None = None
        workers: list[asyncio.Task[None]] = []
        try:
            await self._until_stopped(self._register_nodes())
            if self._stopped.is_set():
                return
            self.informer.add_handlers(self._enqueue, lambda _old, new: self._enqueue(new), self._enqueue)
            informer_task = asyncio.create_task(self.informer.run(), name="fleet-pod-informer")
            self.node_informer.add_handlers(None, self._node_changed, None)
            workers.append(asyncio.create_task(self.node_informer.run(), name="fleet-node-informer"))
            # Both caches first: whether a node's kubelet is stopped or its Node gone comes from the nodes'.
            await self._until_stopped(self.informer.wait_synced())
            await self._until_stopped(self.node_informer.wait_synced())
            if self._stopped.is_set():
                return
            self._rebuild_from_pods(self.informer.list())
            workers += [asyncio.create_task(self._worker(), name=f"fleet-worker-{i}")
                        for i in range(self.concurrency)]
            workers.append(asyncio.create_task(self._lease_loop(), name="fleet-node-leases"))
            self._ready.set()
            log.info("fleet ready: %d nodes, %d pods known", len(self.nodes), len(self.informer))
            await self._stopped.wait()
        finally:
            self.queue.shutdown()
            for w in workers:
                w.cancel()
            self.node_informer.stop()
            if informer_task is not None:
                self.informer.stop()
                informer_task.cancel()
            pending = [t for t in (*workers, informer_task) if t is not None]
            try:
                if pending:
                    await asyncio.gather(*pending, return_exceptions=True)
                await self.recorder.close()
            finally:
                if not self._done.done():
                    self._done.set_result(None)

    def stop(self) -> asyncio.Future[None]:
        """Ask run() to end; the returned future (awaiting it is optional) resolves once it has."""
        self._stopped.set()
        loop = asyncio.get_running_loop()
        if self._done is None or (self._run_task is not None and self._run_task.done()):
            fut: asyncio.Future[None] = loop.create_future()
            fut.set_result(None)
            return fut
        return asyncio.shield(self._done)

    # --- nodes --------------------------------------------------------------------------------

    async def _until_stopped(self, aw: Any) -> None:
        """Await `aw` unless stop() comes first."""
        task = asyncio.ensure_future(aw)
        stopper = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return
        task.result()

    async def _register_nodes(self) -> None:
        existing = await self._retry(lambda: self.client.list(NODES))
        by_name = {(n.get("metadata") or {}).get("name", ""): n for n in existing.get("items") or []}
        for node in by_name.values():  # never hand out a CIDR another node holds
            for cidr in (node.get("spec") or {}).get("podCIDRs") or []:
                for pool in self._cidrs:
                    pool.reserve(cidr)
        sem = asyncio.Semaphore(self.concurrency)

        async def one(index: int, name: str) -> None:
            async with sem:
                await self._register_node(index, name, by_name.get(name))

        names = self.node_names()
        self._node_order = names
        await asyncio.gather(*(one(i, name) for i, name in enumerate(names)))

    def _shape(self, index: int, name: str, pod_cidrs: tuple[str, ...]) -> NodeShape:
        ips = [node_internal_ip(index, 4)]
        if self.dual_stack:
            ips.append(node_internal_ip(index, 6))
        max_pods = self.max_pods
        if max_pods is None:
            max_pods = NodeIPAM(pod_cidrs[0]).capacity
        return NodeShape(
            name=name, zone=self.zones[index % len(self.zones)], region=self.region,
            internal_ips=tuple(ips), pod_cidrs=pod_cidrs, cpu=self.cpu, memory=self.memory, max_pods=max_pods,
            fleet=self.name_prefix,
        )

    def _pod_cidrs_for(self, existing: Obj | None) -> tuple[str, ...]:
        """Reuse the node's CIDRs (one per family we serve), allocating only what is missing."""
        have = list((existing or {}).get("spec", {}).get("podCIDRs") or [])
        if not have and (existing or {}).get("spec", {}).get("podCIDR"):
            have = [existing["spec"]["podCIDR"]]  # type: ignore[index]
        cidrs: list[str] = []
        for pool in self._cidrs:
            mine = next((c for c in have if pool.index_of(c) is not None), None)
            cidrs.append(mine or pool.allocate())
        return tuple(cidrs)

    async def _register_node(self, index: int, name: str, existing: Obj | None) -> None:
        cidrs = self._pod_cidrs_for(existing)
        shape = self._shape(index, name, cidrs)
        now = time.time()
        state = NodeState.ABSENT
        if existing is None:
            try:
                existing = await self._retry(lambda: self.client.create(NODES, node_object(shape, now)))
            except ApiError as e:
                if e.code != 409:
                    raise
                existing = await self._retry(lambda: self.client.get(NODES, name))
        else:
            patch = node_metadata_patch(existing, shape)
            if patch:
                try:
                    existing = await self._retry(lambda: self._patch_object(NODES, name, None, patch))
                except ApiError as e:
                    log.warning("node %s: could not update labels/CIDRs: %s", name, e.message)
        state = node_transition(state, NodeEvent.REGISTER)
        self.stats["node_writes"] += 1
        if kubelet_stopped(existing):
            # A dead kubelet stays dead across our restart: no status, no Lease, until the annotation goes.
            self.nodes[name] = HollowNode(shape, state, tuple(NodeIPAM(c) for c in cidrs), uid_of(existing or {}))
            return
        status = node_status(shape, now, (existing or {}).get("status"))
        await self._retry(lambda: self._write_status(NODES, None, name, status))
        state = node_transition(state, NodeEvent.REPORT_READY)
        self.stats["node_writes"] += 1
        self.nodes[name] = HollowNode(shape, state, tuple(NodeIPAM(c) for c in cidrs), uid_of(existing or {}))
        await self._retry(lambda: self._renew_lease(name))

    async def _renew_lease(self, name: str) -> None:
        """The kubelet's heartbeat: renewTime of kube-node-lease/<node> (created when missing)."""
        node = self.nodes[name]
        lease = node_lease(name, node.uid, time.time(), self.lease_duration)
        try:
            await self.client.patch(LEASES, name, {"spec": lease["spec"]}, namespace=NODE_LEASE_NAMESPACE)
        except ApiError as e:
            if e.code != 404:
                raise
            try:
                await self.client.create(LEASES, lease, NODE_LEASE_NAMESPACE)
            except ApiError as e2:
                if e2.code != 409:  # created meanwhile: renewed on the next round
                    raise
        self.stats["lease_writes"] += 1

    async def _report_ready_again(self, name: str) -> None:
        """The kubelet's node status sync: a node of ours that the API shows not Ready (the node
        lifecycle controller marked it Unknown while we were silent) is reported Ready again."""
        node = self.node_informer.get(name)
        if node is None or is_ready(node):
            return
        status = node_status(self.nodes[name].shape, time.time(), node.get("status"))
        await self._write_status(NODES, None, name, status)
        self.stats["node_writes"] += 1
        # The controller marks the pods right after the node: look again next round too.
        self.nodes[name].resync_rounds = 2
        log.info("node %s: reported Ready again", name)

    def _node_changed(self, old: Obj, new: Obj) -> None:
        """A kubelet started again (its stopped annotation removed): look at all of its pods."""
        name = (new.get("metadata") or {}).get("name", "")
        if name in self.nodes and kubelet_stopped(old) and not kubelet_stopped(new):
            log.info("node %s: kubelet started again", name)
            for pod in self.informer.by_index(NODE_INDEX, name):
                self.queue.add(key_of(pod))

    def _node_deleted(self, node: str) -> bool:
        """Is our node gone from the API? (A kubelet does not register again until it restarts;
        the pod GC deletes the pods left on it.)"""
        return self.node_informer.has_synced and self.node_informer.get(node) is None

    def _kubelet_down(self, node: str) -> bool:
        """Does this node's kubelet do nothing? Stopped by its annotation, or its Node deleted."""
        return bool(node) and (self._node_deleted(node) or kubelet_stopped(self.node_informer.get(node)))

    def _resync_pods(self, name: str) -> None:
        """Queue the pods on a node that came back whose Ready the API shows False but we do not."""
        hn = self.nodes[name]
        if hn.resync_rounds <= 0:
            return
        hn.resync_rounds -= 1
        for pod in self.informer.by_index(NODE_INDEX, name):
            key = key_of(pod)
            tr = self._tracked.get(key)
            if tr is not None and tr.state == PodState.READY and not is_ready(pod):
                tr.resync_ready = True
                self.queue.add(key)

    async def _lease_loop(self) -> None:
        """Every node renews its Lease every quarter of its duration (10 s of 40 s), as kubelets do."""
        interval = self.lease_duration * LEASE_RENEW_FRACTION
        sem = asyncio.Semaphore(self.concurrency)

        async def one(name: str) -> None:
            async with sem:
                if self._kubelet_down(name):
                    return
                try:
                    await self._renew_lease(name)
                    await self._report_ready_again(name)
                    self._resync_pods(name)
                except (ApiError, APIConnectionError) as e:
                    log.warning("node %s: renewing its lease failed: %s", name, e)

        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), interval)
            if not self._stopped.is_set():
                await asyncio.gather(*(one(name) for name in list(self.nodes)))

    async def _retry(self, call: Any) -> Any:
        """Retry while the API server is unreachable or overloaded (it may still be starting)."""
        delay = 0.05
        while True:
            try:
                return await call()
            except APIConnectionError as e:
                log.info("fleet: API server unreachable (%s); retrying", e)
            except ApiError as e:
                if e.code < 500 and e.code != 429:
                    raise
                log.info("fleet: API server answered %s (%s); retrying", e.code, e.message)
            if self._stopped.is_set():
                raise asyncio.CancelledError
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    # --- writing ------------------------------------------------------------------------------

    async def _write_status(self, info: ResourceInfo, ns: str | None, name: str, status: Obj,
                            current: Obj | None = None) -> Obj:
        """Replace an object's status: a merge patch of /status (no resourceVersion, so no
        conflicts), or, on a server without merge patch, a read-modify-PUT of /status."""
        if self._merge_patch:
            try:
                return await self.client.patch(info, name, {"status": status}, namespace=ns,
                                               subresource="status")
            except ApiError as e:
                if e.code != 415:
                    raise
                log.warning("fleet: the API server refuses merge patches; writing status with PUT")
                self._merge_patch = False
        for attempt in range(5):
            obj = current if (current is not None and attempt == 0) else await self.client.get(info, name, ns)
            try:
                return await self.client.update(info, {**obj, "status": status}, subresource="status")
            except ApiError as e:
                if e.code != 409:
                    raise
        raise ApiError(409, "Conflict", f"status of {name}: too many conflicts")

    async def _patch_object(self, info: ResourceInfo, name: str, ns: str | None, patch: Obj) -> Obj:
        if self._merge_patch:
            try:
                return await self.client.patch(info, name, patch, namespace=ns)
            except ApiError as e:
                if e.code != 415:
                    raise
                self._merge_patch = False
        obj = await self.client.get(info, name, ns)
        return await self.client.update(info, _merge(obj, patch))

    # --- pods: bookkeeping --------------------------------------------------------------------

    def _enqueue(self, pod: Obj) -> None:
        node = node_name_of(pod)
        if node and node not in self.nodes and key_of(pod) not in self._tracked:
            return  # someone else's pod
        self.queue.add(key_of(pod))

    def _node_ipam(self, node: str) -> tuple[NodeIPAM, ...]:
        hn = self.nodes.get(node)
        return hn.ipam if hn else ()

    def _status_ips(self, pod: Obj) -> tuple[str, ...]:
        st = pod.get("status") or {}
        ips = [p.get("ip") for p in st.get("podIPs") or [] if p.get("ip")]
        if not ips and st.get("podIP"):
            ips = [st["podIP"]]
        return tuple(ips)

    def _track(self, key: str, pod: Obj) -> TrackedPod:
        """Start tracking a pod first seen now (or at restart): take over the addresses it holds."""
        state = observe(pod)
        node = node_name_of(pod)
        tr = TrackedPod(uid_of(pod), state, node)
        if node:
            self._pods_per_node[node] += 1
        ips = self._status_ips(pod)
        if ips and state in (PodState.RUNNING, PodState.READY):
            for ip in ips:
                for ipam in self._node_ipam(node):
                    ipam.reserve(ip)
            tr.ips = ips
        start = (pod.get("status") or {}).get("startTime")
        if start and state in (PodState.RUNNING, PodState.READY):
            try:
                tr.started_at = parse_time(start)
            except ValueError:
                tr.started_at = None
        self._tracked[key] = tr
        return tr

    def _forget(self, key: str) -> None:
        tr = self._tracked.pop(key, None)
        if tr is None:
            return
        if tr.node:
            self._pods_per_node[tr.node] -= 1
            if self._pods_per_node[tr.node] <= 0:
                del self._pods_per_node[tr.node]
        for ip in tr.ips:
            for ipam in self._node_ipam(tr.node):
                ipam.release(ip)

    def _rebuild_from_pods(self, pods: list[Obj]) -> None:
        for pod in pods:
            node = node_name_of(pod)
            if node in self.nodes:
                self._track(key_of(pod), pod)

    def _allocate_ips(self, tr: TrackedPod, pod: Obj) -> tuple[str, ...]:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return self.nodes[tr.node].shape.internal_ips  # the node's own addresses, nothing allocated
        ips = []
        for ipam in self._node_ipam(tr.node):
            ips.append(ipam.allocate())
        return tuple(sort_pod_ips(ips))

    # --- pods: the workers --------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self._sync(str(key))
                self.queue.forget(key)
            except asyncio.CancelledError:
                raise
            except (APIConnectionError, ApiError) as e:
                self.stats["errors"] += 1
                log.info("fleet: pod %s: %s; retrying", key, e)
                self.queue.add_rate_limited(key)
            except Exception:
                self.stats["errors"] += 1
                log.exception("fleet: pod %s failed", key)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    async def _sync(self, key: str) -> None:
        pod = self.informer.get(key)
        tr = self._tracked.get(key)
        if tr is not None and pod is not None and tr.uid != uid_of(pod):
            self._forget(key)  # the name was reused by a new pod
            tr = None
        if tr is None:
            if pod is None:
                return
            node = node_name_of(pod)
            if node and node not in self.nodes:
                return
            if not node and not wants_default_scheduler(pod):
                return
            tr = self._track(key, pod)
        for _ in range(6):  # a few steps in one go: bind, then the first status write
            now = time.time()
            deleting = pod is not None and bool((pod.get("metadata") or {}).get("deletionTimestamp"))
            finish_at = termination_deadline(pod, self.max_grace_period, now) if deleting and pod else None
            ready_at = ready_time(tr.started_at if tr.started_at is not None else now, self.pod_ready_delay)
            plan = plan_pod(tr.state, pod, now, ready_at=ready_at, finish_at=finish_at,
                            resync_ready=tr.resync_ready)
            tr.resync_ready = False
            if plan.action not in (Action.BIND, Action.FORGET) and self._kubelet_down(tr.node):
                break  # a stopped kubelet does nothing; its pods are queued again when it starts
            if plan.action == Action.NOTHING:
                if tr.state == PodState.GONE and pod is None:
                    self._tracked.pop(key, None)
                elif plan.wake_at is not None:
                    self.queue.add_after(key, max(0.0, plan.wake_at - now))
                break
            result = await self._execute(key, tr, pod, plan.action, now)
            if result is _RETRY_LATER:
                return
            if result is _GONE:
                self._forget(key)
                return
            tr.state = pod_transitions(tr.state, plan.events)
            if tr.state == PodState.GONE:
                self._release_addresses(tr)
            if isinstance(result, dict):
                pod = result
            if plan.wake_at is not None:
                self.queue.add_after(key, max(0.0, plan.wake_at - time.time()))
                break

    def _release_addresses(self, tr: TrackedPod) -> None:
        for ip in tr.ips:
            for ipam in self._node_ipam(tr.node):
                ipam.release(ip)
        tr.ips = ()
        if tr.node:
            self._pods_per_node[tr.node] -= 1
            if self._pods_per_node[tr.node] <= 0:
                del self._pods_per_node[tr.node]
            tr.node = ""

    async def _execute(self, key: str, tr: TrackedPod, pod: Obj | None, action: Action, now: float) -> object:
        """Do one API action; returns the updated pod, or _GONE / _RETRY_LATER / None."""
        ns, name = split_key(key)
        if action == Action.FORGET:
            return _GONE
        assert pod is not None
        try:
            if action == Action.BIND:
                return await self._bind(key, tr, pod)
            if action in (Action.WRITE_RUNNING, Action.WRITE_READY, Action.WRITE_TERMINATED):
                if not tr.ips:
                    try:
                        tr.ips = self._allocate_ips(tr, pod)
                    except IPAMError as e:
                        log.warning("fleet: pod %s: %s", key, e)
                        self.queue.add_after(key, UNSCHEDULABLE_RETRY)
                        return _RETRY_LATER
                if tr.started_at is None:
                    tr.started_at = now
                phase = {Action.WRITE_RUNNING: "running", Action.WRITE_READY: "ready",
                         Action.WRITE_TERMINATED: "terminated"}[action]
                hn = self.nodes[tr.node]
                status = pod_status(pod, phase, host_ips=hn.shape.internal_ips, pod_ips=tr.ips,  # type: ignore[arg-type]
                                    started_at=tr.started_at, now=now)
                self.stats["status_writes"] += 1
                return await self._write_status(PODS, ns, name, status, pod)
            if action == Action.DELETE:
                if (pod.get("metadata") or {}).get("finalizers") and tr.node in self.nodes:
                    # Finalizers will hold the pod after our delete: record its end first, as the
                    # kubelet does, so that it stops counting as running (and leaves its slices).
                    hn = self.nodes[tr.node]
                    status = pod_status(pod, "terminated", host_ips=hn.shape.internal_ips, pod_ips=tr.ips,
                                        started_at=tr.started_at, now=now)
                    self.stats["status_writes"] += 1
                    await self._write_status(PODS, ns, name, {**status, "phase": "Succeeded"}, pod)
                self.stats["deletes"] += 1
                try:
                    await self.client.delete(PODS, name, ns, grace_period_seconds=0,
                                             preconditions={"uid": tr.uid})
                except ApiError as e:
                    if e.code not in (404, 409):
                        raise
                return None
        except ApiError as e:
            if e.code == 404:
                return _GONE
            raise
        raise AssertionError(f"unhandled action {action}")

    async def _bind(self, key: str, tr: TrackedPod, pod: Obj) -> object:
        fits = [self.nodes[n].fit(self.node_informer.get(n)) for n in self._node_order
                if n in self.nodes and not self._node_deleted(n)]
        node = pick_node(pod, fits, self._pods_per_node)
        if node is None:
            if not tr.unschedulable_reported:
                await self._report_unschedulable(key, pod, unschedulable_message(pod, fits, self._pods_per_node))
                tr.unschedulable_reported = True
            self.queue.add_after(key, UNSCHEDULABLE_RETRY)
            return _RETRY_LATER
        ns, _ = split_key(key)
        self._pods_per_node[node] += 1  # claim the slot before awaiting, so concurrent binds spread
        try:
            await self.client.create(PODS, binding(pod, node), namespace=ns, subresource="binding")
        except ApiError as e:
            self._pods_per_node[node] -= 1
            if e.code == 409:  # bound by someone else meanwhile, or a new pod with this name
                log.debug("fleet: binding %s: %s", key, e.message)
                self.queue.add_after(key, 0.05)
                self._tracked.pop(key, None)
                return _RETRY_LATER
            raise
        except BaseException:
            self._pods_per_node[node] -= 1
            raise
        self.stats["binds"] += 1
        tr.node = node
        return None

    async def _report_unschedulable(self, key: str, pod: Obj, message: str) -> None:
        ns, name = split_key(key)
        cond = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                "lastTransitionTime": _now_text(), "reason": "Unschedulable", "message": message}
        self.recorder.record(pod, "v1", "Pod", "Warning", "FailedScheduling", message, time.time())
        try:
            await self._write_status(PODS, ns, name, {**(pod.get("status") or {}), "phase": "Pending",
                                                      "conditions": [cond]}, pod)
        except ApiError as e:
            log.info("fleet: pod %s: could not report Unschedulable: %s", key, e.message)


def _merge(obj: Obj, patch: Obj) -> Obj:
    """RFC 7386 merge of `patch` into a copy of `obj` (for servers without merge patch)."""
    out = dict(obj)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


_GONE = object()
_RETRY_LATER = object()


def _now_text() -> str:
    return rfc3339(time.time())

