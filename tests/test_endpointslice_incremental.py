"""The incremental planner against the full one.

Property: on random histories of pod changes, syncing incrementally (only the changed pods)
leaves the same endpoints as the full planner would, keeps every slice within the size limit,
and leaves nothing for a full reconcile to do. Plus the cost claim: one pod change reads only
the slices it touches, whatever the number of pods.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from sliceplane.controllers.endpointslice.cache import ServiceSlices, SliceIndex
from sliceplane.controllers.endpointslice.reconciler import SlicePlan, reconcile, reconcile_changes
from sliceplane.controllers.endpointslice.values import SliceValue
from test_endpointslice_reconciler import NS, FakeServer, new_nodes, new_pod, new_service

Obj = dict[str, Any]
KEY = f"{NS}/svc"


def feed(index: SliceIndex, server: FakeServer) -> None:
    """What the informer would deliver after the server applied a plan."""
    svc = index.service(KEY)
    seen = {s.name: s.resource_version for s in svc}
    for name in list(seen):
        if name not in server.slices:
            index.delete(svc.get(name))  # type: ignore[arg-type]
    for name, obj in server.slices.items():
        if seen.get(name) != obj["metadata"]["resourceVersion"]:
            index.upsert(obj)


def sync(svc: Obj, pods: dict[str, Obj], dirty: set[str], nodes: dict[str, Obj], server: FakeServer,
         index: SliceIndex, max_eps: int, *, full: bool = False) -> SlicePlan:
    plan = None
    if not full:
        plan = reconcile_changes(svc, index.service(KEY), {n: pods.get(n) for n in dirty}, nodes, max_eps)
    if plan is None:
        plan = reconcile(svc, pods.values(), nodes, list(index.service(KEY)), max_eps)
    server.apply(plan)
    feed(index, server)
    return plan


def endpoint_set(slices: list[Obj]) -> set[tuple[Any, ...]]:
    out = set()
    for s in slices:
        ports = tuple(sorted((p.get("name"), p.get("port"), p.get("protocol")) for p in s.get("ports") or []))
        for e in s.get("endpoints") or []:
            c = e["conditions"]
            out.add((s["addressType"], ports, tuple(e["addresses"]), e["targetRef"]["name"], c["ready"],
                     c["serving"], c["terminating"], e.get("hostname"), e.get("zone"), str(e.get("hints"))))
    return out


def check_invariants(svc: Obj, pods: dict[str, Obj], nodes: dict[str, Obj], server: FakeServer,
                     max_eps: int) -> None:
    slices = server.list()
    fresh = FakeServer()
    fresh.apply(reconcile(svc, pods.values(), nodes, [], max_eps))
    assert endpoint_set(slices) == endpoint_set(fresh.list())
    by_type: dict[str, list[Obj]] = {}
    for s in slices:
        by_type.setdefault(s["addressType"], []).append(s)
        assert len(s["endpoints"]) <= max_eps
    for at, group in by_type.items():
        empties = [s for s in group if not s["endpoints"]]
        if empties:
            assert len(group) == 1 and not group[0].get("ports"), f"stray empty {at} slice"
    pairs = [(s["addressType"], e["targetRef"]["name"]) for s in slices for e in s["endpoints"]]
    assert len(pairs) == len(set(pairs)), "an endpoint in two slices"
    assert reconcile(svc, pods.values(), nodes, slices, max_eps).empty


def _random_pod(rng: random.Random, i: int, named: bool, dual: bool) -> Obj:
    ips = [f"10.1.{i // 200}.{i % 200 + 1}"]
    if dual and rng.random() < 0.8:
        ips.append(f"fd00::{i + 1:x}")
    ports = [{"name": "web", "containerPort": rng.choice([8080, 8080, 8080, 9090]), "protocol": "TCP"}]
    if named and rng.random() < 0.1:
        ports = []
    return new_pod(
        i, ready=rng.random() < 0.8, ips=ips, node=rng.choice(["n1", "n2", "n3"]),
        container_ports=ports, hostname=f"h{i}" if rng.random() < 0.1 else None,
        subdomain="svc" if rng.random() < 0.5 else None, ready_time=1000.0 + i,
    )


def _mutate(rng: random.Random, pod: Obj) -> Obj | None:
    """One random change of a pod; None deletes it."""
    op = rng.choice(["ready", "ready", "terminate", "ip", "unselect", "phase", "delete", "zone-node"])
    pod = {**pod, "metadata": dict(pod["metadata"]), "status": dict(pod["status"]), "spec": dict(pod["spec"])}
    if op == "ready":
        ok = pod["status"]["conditions"][0]["status"] == "True"
        pod["status"]["conditions"] = [{**pod["status"]["conditions"][0], "status": "False" if ok else "True"}]
    elif op == "terminate":
        pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    elif op == "ip":
        last = rng.randrange(1, 250)
        pod["status"]["podIPs"] = [{"ip": f"10.2.{rng.randrange(250)}.{last}"}]
        pod["status"]["podIP"] = pod["status"]["podIPs"][0]["ip"]
    elif op == "unselect":
        labels = pod["metadata"].get("labels") or {}
        pod["metadata"]["labels"] = {"app": "other"} if labels.get("app") == "web" else {"app": "web"}
    elif op == "phase":
        pod["status"]["phase"] = rng.choice(["Succeeded", "Failed", "Running"])
    elif op == "zone-node":
        pod["spec"]["nodeName"] = rng.choice(["n1", "n2", "n3"])
    else:
        return None
    return pod


SEEDS = list(range(16))


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_incremental_matches_full_on_random_histories(seed: int) -> None:
    rng = random.Random(seed)
    max_eps = rng.choice([1, 3, 7, 20, 100])
    named = rng.random() < 0.5
    dual = rng.random() < 0.4
    ports = [{"name": "http", "port": 80, "targetPort": "web" if named else 8080, "protocol": "TCP"}]
    svc = new_service(ports=ports, ip_families=("IPv4", "IPv6") if dual else ("IPv4",))
    if rng.random() < 0.4:
        svc["spec"]["trafficDistribution"] = "PreferClose"
    nodes = {**new_nodes("n1", "n2", zone="zone-a"), **new_nodes("n3", zone="zone-b")}
    server, index = FakeServer(), SliceIndex()
    n_start = 0 if seed % 4 == 0 else rng.randrange(1, 120)  # some histories start from the placeholder
    pods = {p["metadata"]["name"]: p for p in (_random_pod(rng, i, named, dual) for i in range(n_start))}
    sync(svc, pods, set(), nodes, server, index, max_eps, full=True)
    check_invariants(svc, pods, nodes, server, max_eps)
    next_id = 1000
    incremental_syncs = 0
    for _step in range(30):
        dirty: set[str] = set()
        for _ in range(rng.choice([1, 1, 2, 5, 20])):
            if pods and rng.random() < 0.7:
                name = rng.choice(sorted(pods))
                changed = _mutate(rng, pods[name])
                if changed is None:
                    del pods[name]
                else:
                    pods[name] = changed
            else:
                p = _random_pod(rng, next_id, named, dual)
                next_id += 1
                name = p["metadata"]["name"]
                pods[name] = p
            dirty.add(name)
        plan = sync(svc, pods, dirty, nodes, server, index, max_eps)
        incremental_syncs += plan.incremental
        check_invariants(svc, pods, nodes, server, max_eps)
    assert incremental_syncs == 30, "every pod-only sync should take the incremental path"


def test_index_counters_return_to_zero() -> None:
    svc, nodes, server, index = new_service(), new_nodes(), FakeServer(), SliceIndex()
    pods = {f"pod{i}": new_pod(i) for i in range(250)}
    sync(svc, pods, set(), nodes, server, index, 100, full=True)
    state = index.service(KEY)
    assert len(state) == 3 and state.incremental_ok("uid-svc-svc", ["IPv4"], 100)
    assert not state.incremental_ok("uid-other", ["IPv4"], 100)
    assert not state.incremental_ok("uid-svc-svc", ["IPv6"], 100)  # slices of a family no longer served
    for obj in server.list():
        index.delete(obj)
    assert not index.has_service(KEY)
    empty = ServiceSlices()
    for obj in server.list():
        empty.put(SliceValue.from_dict(obj))
    for obj in server.list():
        empty.remove(obj["metadata"]["name"])
    assert (empty.slots, empty.fill, empty.non_pod_endpoints, empty.duplicate_slots, dict(empty.owner_uids),
            dict(empty.sizes)) == ({}, {}, 0, 0, {}, {})


class CountingSlices(ServiceSlices):
    """Counts how many slices' endpoint maps a plan reads: the cost that must not grow with P."""

    reads: set[str]

    def endpoints_of(self, name: str) -> Any:
        self.reads.add(name)
        return super().endpoints_of(name)


@pytest.mark.parametrize("n_pods", [500, 5000], ids=["P500", "P5000"])
def test_one_pod_change_reads_only_its_slice(n_pods: int) -> None:
    svc, nodes, server, index = new_service(), new_nodes(), FakeServer(), SliceIndex()
    pods = {f"pod{i}": new_pod(i) for i in range(n_pods)}
    sync(svc, pods, set(), nodes, server, index, 100, full=True)
    counting = CountingSlices()
    counting.reads = set()
    for s in index.service(KEY):
        counting.put(s)
    pods["pod42"] = new_pod(42, ready=False)
    plan = reconcile_changes(svc, counting, {"pod42": pods["pod42"]}, nodes, 100)
    assert plan is not None and plan.incremental
    assert (len(plan.to_create), len(plan.to_update), len(plan.to_delete)) == (0, 1, 0)
    assert len(counting.reads) == 1
    (upd,) = plan.to_update
    assert next(e for e in upd.endpoints if e.pod_name == "pod42").ready is False
    # a new pod goes into the slice closest to full without reading any full slice
    counting.reads = set()
    pods["newpod"] = new_pod(n_pods + 1, name="newpod")
    plan = reconcile_changes(svc, counting, {"newpod": pods["newpod"]}, nodes, 100)
    assert plan is not None and plan.writes == 1
    assert len(counting.reads) <= 1


def test_incremental_declines_when_index_is_unusual() -> None:
    svc, nodes, server, index = new_service(), new_nodes(), FakeServer(), SliceIndex()
    pods = {f"pod{i}": new_pod(i) for i in range(10)}
    sync(svc, pods, set(), nodes, server, index, 100, full=True)
    (name,) = server.slices
    obj = server.slices[name]
    obj["endpoints"].append({"addresses": ["192.0.2.1"], "conditions": {"ready": True}})  # not a pod
    index.upsert(obj)
    assert reconcile_changes(svc, index.service(KEY), {"pod1": pods["pod1"]}, nodes, 100) is None
    external = new_service(type_="ExternalName", cluster_ip=None)
    assert reconcile_changes(external, index.service(KEY), {}, nodes, 100) is None


def test_pods_leaving_and_rejoining_keep_slices_compact() -> None:
    svc, nodes, server, index = new_service(), new_nodes(), FakeServer(), SliceIndex()
    pods = {f"pod{i}": new_pod(i) for i in range(300)}
    sync(svc, pods, set(), nodes, server, index, 100, full=True)
    # a rolling update: replace every pod, 25 at a time
    for start in range(0, 300, 25):
        dirty = set()
        for i in range(start, start + 25):
            del pods[f"pod{i}"]
            dirty.add(f"pod{i}")
            new = new_pod(1000 + i)
            pods[new["metadata"]["name"]] = new
            dirty.add(new["metadata"]["name"])
        plan = sync(svc, pods, dirty, nodes, server, index, 100)
        assert plan.incremental and plan.to_create == ()
    assert sorted(len(s["endpoints"]) for s in server.list()) == [100, 100, 100]
    check_invariants(svc, pods, nodes, server, 100)


def test_placeholder_replaced_then_restored_incrementally() -> None:
    svc, nodes, server, index = new_service(), new_nodes(), FakeServer(), SliceIndex()
    pods: dict[str, Obj] = {}
    sync(svc, pods, set(), nodes, server, index, 100, full=True)
    (placeholder,) = server.slices
    pods["pod1"] = new_pod(1)
    plan = sync(svc, pods, {"pod1"}, nodes, server, index, 100)
    # the placeholder is reused for the first endpoint rather than kept beside a new slice
    assert plan.incremental and [s.name for s in plan.to_update] == [placeholder]
    assert plan.to_create == () and plan.to_delete == ()
    assert [len(s["endpoints"]) for s in server.list()] == [1]
    del pods["pod1"]
    plan = sync(svc, pods, {"pod1"}, nodes, server, index, 100)
    assert plan.incremental and [s.name for s in plan.to_update] == [placeholder]
    (only,) = server.list()
    assert only["endpoints"] == [] and "ports" not in only
    check_invariants(svc, pods, nodes, server, 100)


def test_lowered_limit_leaves_full_slices_and_stays_incremental() -> None:
    svc, nodes, server, index = new_service(), new_nodes(), FakeServer(), SliceIndex()
    pods = {f"pod{i}": new_pod(i) for i in range(150)}
    sync(svc, pods, set(), nodes, server, index, 100, full=True)
    assert reconcile(svc, pods.values(), nodes, server.list(), 50).empty  # as Kubernetes: no reshuffle
    pods["newpod"] = new_pod(999, name="newpod")
    plan = sync(svc, pods, {"newpod"}, nodes, server, index, 50)
    assert plan.incremental and sizes_of(plan) == ([1], [], [])
    del pods["pod3"]
    plan = sync(svc, pods, {"pod3"}, nodes, server, index, 50)
    assert plan.incremental and sizes_of(plan) == ([], [99], [])
    assert reconcile(svc, pods.values(), nodes, server.list(), 50).empty


def sizes_of(plan: SlicePlan) -> tuple[list[int], list[int], list[int]]:
    return tuple(sorted((len(s.endpoints) for s in part), reverse=True)  # type: ignore[return-value]
                 for part in (plan.to_create, plan.to_update, plan.to_delete))
