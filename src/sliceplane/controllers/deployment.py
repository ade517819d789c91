"""Deployment controller: rolls a Deployment's pod template out through ReplicaSets.

Pure core: `plan_deployment(deployment, replica_sets, pods_by_rs_uid, now) -> DeploymentPlan`
decides, for one sync, which ReplicaSet to create, which to rescale or annotate, which old ones
to delete (revision history), the Deployment's revision annotation and its status, following
Kubernetes' rollout rules (RollingUpdate with maxSurge/maxUnavailable, Recreate, scaling
events with proportional scaling, pause, progress deadline). Helpers such as
`pod_template_hash`, `resolve_fenceposts` and `calculate_status` are pure too.
The shell `DeploymentController` watches Deployments and ReplicaSets and applies plans.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sliceplane.api.meta import (
    controller_ref,
    key_of,
    labels_of,
    metadata,
    name_of,
    namespace_of,
    parse_time,
    rfc3339,
    split_key,
    uid_of,
)
from sliceplane.api.registry import DEPLOYMENTS, PODS, REPLICA_SETS
from sliceplane.client.informer import SharedInformerFactory
from sliceplane.controllers.base import QueueController
from sliceplane.controllers.workload_util import (
    POD_TEMPLATE_HASH,
    EventRecorder,
    WriteTracker,
    by_creation,
    controller_ref_to,
    creation_time,
    is_controlled_by,
    mutate,
    plan_claims,
    selector_is_empty,
    selector_matches,
    with_owner_ref,
    without_owner_refs,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
# Deployment annotations that are not copied onto its ReplicaSets.
SKIP_COPY_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                                   ROLLBACK_TO})
MAX_REVISION_HISTORY_CHARS = 2000

PROGRESSING = "Progressing"
AVAILABLE = "Available"
REPLICA_FAILURE = "ReplicaFailure"
# Condition reasons, as `kubectl rollout status` and `kubectl describe` read them.
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

DEPLOYMENT_API_VERSION = "apps/v1"
DEPLOYMENT_KIND = "Deployment"
MAX_INT32 = 2**31 - 1
# Recreate waits for the old pods to be gone; with no pod cache it looks again this often.
RECREATE_POLL = 0.25

# Characters Kubernetes uses to spell hashes (no vowels, no confusable digits).
_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


# --- small pure helpers ------------------------------------------------------------------------


def _fnv1a_32(data: bytes, h: int = 0x811C9DC5) -> int:
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(_SAFE_ALPHANUMS[ord(c) % len(_SAFE_ALPHANUMS)] for c in text)


def semantic(value: Any) -> Any:
    """A value with nulls, empty maps and empty lists dropped: Kubernetes' semantic equality treats
    them as absent (`kubectl rollout undo` sends `creationTimestamp: null` in the template)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = semantic(v)
            if v is None or v == {} or v == []:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def pod_template_hash(template: Obj, collision_count: int | None = None) -> str:
    """Stable hash of a pod template (sorted-key JSON of its semantic value) and the collision count,
    spelled as Kubernetes spells hashes."""
    h = _fnv1a_32(json.dumps(semantic(template), sort_keys=True, separators=(",", ":")).encode())
    if collision_count is not None:
        h = _fnv1a_32(struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\0\0\0\0", h)
    return safe_encode(str(h))


def replicas_of(obj: Obj | None) -> int:
    if obj is None:
        return 0
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def _status(obj: Obj | None, field_name: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field_name) or 0)


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """An IntOrString (`3` or `"25%"`) resolved against `total`."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        try:
            pct = int(text[:-1])
        except ValueError as e:
            raise ValueError(f"invalid value for IntOrString: invalid value {text!r}") from e
        v = pct * total / 100
        return math.ceil(v) if round_up else math.floor(v)
    try:
        return int(text)
    except ValueError as e:
        raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage") from e


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None, desired: int) -> tuple[int, int]:
    """(surge, unavailable): surge rounds up, unavailable rounds down, never both zero."""
    surge = scaled_value("25%" if max_surge is None else max_surge, desired, True)
    unavailable = scaled_value("25%" if max_unavailable is None else max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def strategy_type(d: Obj) -> str:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate"


def _rolling_params(d: Obj) -> tuple[Any, Any]:
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    return ru.get("maxSurge"), ru.get("maxUnavailable")


def max_surge(d: Obj) -> int:
    if strategy_type(d) != "RollingUpdate":
        return 0
    return resolve_fenceposts(*_rolling_params(d), replicas_of(d))[0]


def max_unavailable(d: Obj) -> int:
    if strategy_type(d) != "RollingUpdate" or replicas_of(d) == 0:
        return 0
    unavailable = resolve_fenceposts(*_rolling_params(d), replicas_of(d))[1]
    return min(unavailable, replicas_of(d))


def _template_without_hash(template: Obj | None) -> Obj:
    t = semantic(template or {})
    meta = t.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    labels.pop(POD_TEMPLATE_HASH, None)
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    if meta:
        t["metadata"] = meta
    else:
        t.pop("metadata", None)
    return t


def equal_ignore_hash(t1: Obj | None, t2: Obj | None) -> bool:
    """Two pod templates are the same rollout target when equal but for pod-template-hash."""
    return _template_without_hash(t1) == _template_without_hash(t2)


def revision_of(rs: Obj | None) -> int:
    if rs is None:
        return 0
    try:
        return int((metadata(rs).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision_of(rs) for rs in rss), default=0)


def find_new_rs(d: Obj, rss: Sequence[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's."""
    template = (d.get("spec") or {}).get("template")
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
            return rs
    return None


def has_progress_deadline(d: Obj) -> bool:
    pds = (d.get("spec") or {}).get("progressDeadlineSeconds", 600)
    return pds is not None and pds != MAX_INT32


def get_condition(status: Obj | None, ctype: str) -> Obj | None:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def new_condition(ctype: str, status: str, reason: str, message: str, now: float) -> Obj:
    ts = rfc3339(now)
    return {"type": ctype, "status": status, "lastUpdateTime": ts, "lastTransitionTime": ts,
            "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """Kubernetes' SetDeploymentCondition: same status and reason is a no-op; the condition moves last."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    cond = dict(cond)
    if current is not None and current.get("status") == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime", cond["lastTransitionTime"])
    rest = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]]
    status["conditions"] = [*rest, cond]


def remove_condition(status: Obj, ctype: str) -> None:
    rest = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
    if rest:
        status["conditions"] = rest
    else:
        status.pop("conditions", None)


def deployment_complete(d: Obj, status: Obj) -> bool:
    n = replicas_of(d)
    return (
        int(status.get("updatedReplicas") or 0) == n
        and int(status.get("replicas") or 0) == n
        and int(status.get("availableReplicas") or 0) == n
        and int(status.get("observedGeneration") or 0) >= int(metadata(d).get("generation") or 0)
    )


def deployment_progressing(d: Obj, new_status: Obj) -> bool:
    old = d.get("status") or {}

    def g(s: Obj, k: str) -> int:
        return int(s.get(k) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new_status, "replicas") - g(new_status, "updatedReplicas")
    return (
        g(new_status, "updatedReplicas") > g(old, "updatedReplicas")
        or new_old < old_old
        or g(new_status, "readyReplicas") > g(old, "readyReplicas")
        or g(new_status, "availableReplicas") > g(old, "availableReplicas")
    )


def deployment_timed_out(d: Obj, status: Obj, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    try:
        since = parse_time(cond.get("lastUpdateTime") or "")
    except ValueError:
        return False
    return since + int((d.get("spec") or {}).get("progressDeadlineSeconds", 600)) < now


def calculate_status(all_rss: Sequence[Obj | None], new_rs: Obj | None, d: Obj, now: float) -> Obj:
    """Counts summed over the ReplicaSets, plus the Available condition."""
    rss = [rs for rs in all_rss if rs is not None]
    available = sum(_status(rs, "availableReplicas") for rs in rss)
    total = sum(replicas_of(rs) for rs in rss)
    old = d.get("status") or {}
    status: Obj = {}
    generation = int(metadata(d).get("generation") or 0)
    counts = {
        "observedGeneration": generation,
        "replicas": sum(_status(rs, "replicas") for rs in rss),
        "updatedReplicas": _status(new_rs, "replicas"),
        "readyReplicas": sum(_status(rs, "readyReplicas") for rs in rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
    }
    status.update({k: v for k, v in counts.items() if v})
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if available >= replicas_of(d) - max_unavailable(d):
        cond = new_condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        cond = new_condition(AVAILABLE, "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.",
                             now)
    set_condition(status, cond)
    return status


_STATUS_COUNTS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                  "unavailableReplicas")


def status_equal(a: Obj | None, b: Obj | None) -> bool:
    """Equal up to omitted zero counts (the API omits zero values)."""
    a, b = a or {}, b or {}
    if any(int(a.get(k) or 0) != int(b.get(k) or 0) for k in _STATUS_COUNTS):
        return False
    if a.get("collisionCount") != b.get("collisionCount"):
        return False
    return (a.get("conditions") or []) == (b.get("conditions") or [])


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = metadata(rs).get("annotations") or {}
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    if not replicas_annotations_need_update(rs, desired, max_replicas):
        return False
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    ann[DESIRED_REPLICAS] = str(desired)
    ann[MAX_REPLICAS] = str(max_replicas)
    return True


def _copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    changed = False
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    for k, v in (metadata(d).get("annotations") or {}).items():
        if k in SKIP_COPY_ANNOTATIONS or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """Copy the Deployment's annotations and raise the RS's revision; True when `rs` changed."""
    changed = _copy_deployment_annotations(d, rs)
    ann = rs["metadata"]["annotations"]
    old_text = ann.get(REVISION)
    try:
        old_revision = int(old_text) if old_text is not None else 0
    except ValueError:
        return changed
    if old_revision < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old_text is not None:
            # Rolling back to this ReplicaSet: remember the revisions it had.
            history = [h for h in (ann.get(REVISION_HISTORY) or "").split(",") if h]
            history.append(old_text)
            while len(",".join(history)) > MAX_REVISION_HISTORY_CHARS and len(history) > 1:
                history.pop(0)
            ann[REVISION_HISTORY] = ",".join(history)
    if not exists and set_replicas_annotations(rs, replicas_of(d), replicas_of(d) + max_surge(d)):
        changed = True
    return changed


def new_rs_new_replicas(d: Obj, all_rss: Sequence[Obj | None], new_rs: Obj | None) -> int:
    """How big the new ReplicaSet may be now (RollingUpdate: within maxSurge)."""
    if strategy_type(d) != "RollingUpdate":
        return replicas_of(d)
    surge = max_surge(d)
    current = sum(replicas_of(rs) for rs in all_rss if rs is not None)
    max_total = replicas_of(d) + surge
    if current >= max_total:
        return replicas_of(new_rs)
    scale_up = min(max_total - current, replicas_of(d) - replicas_of(new_rs))
    return replicas_of(new_rs) + scale_up


def _by_revision(rss: Iterable[Obj]) -> list[Obj]:
    return sorted(rss, key=lambda rs: (revision_of(rs), creation_time(rs) or 0.0, name_of(rs)))


def _active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas_of(rs) > 0]


def find_active_or_latest(new_rs: Obj | None, old_rss: Sequence[Obj]) -> Obj | None:
    """The one ReplicaSet with replicas, or the newest when none has any; None when several do."""
    if new_rs is None and not old_rss:
        return None
    olds = list(reversed(by_creation(old_rss)))
    active = _active([*olds, new_rs])
    if len(active) == 0:
        return new_rs if new_rs is not None else olds[0]
    if len(active) == 1:
        return active[0]
    return None


def _max_replicas_annotation(rs: Obj) -> int | None:
    text = (metadata(rs).get("annotations") or {}).get(MAX_REPLICAS)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _desired_annotation(rs: Obj) -> int | None:
    text = (metadata(rs).get("annotations") or {}).get(DESIRED_REPLICAS)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    if replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    if replicas_of(d) == 0:
        fraction = -replicas_of(rs)
    else:
        deployment_replicas = replicas_of(d) + max_surge(d)
        annotated = _max_replicas_annotation(rs)
        if annotated is None:
            annotated = _status(d, "replicas")
        if annotated <= 0:
            fraction = 0
        else:
            fraction = _round_half_away(replicas_of(rs) * deployment_replicas / annotated) - replicas_of(rs)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _round_half_away(x: float) -> int:
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    return (
        _desired_annotation(rs) == replicas_of(d)
        and replicas_of(rs) == replicas_of(d)
        and _status(rs, "availableReplicas") == replicas_of(d)
    )


def collision_status(d: Obj) -> Obj:
    """The status after a hash collision: collisionCount + 1, so the next hash differs."""
    status = copy.deepcopy(d.get("status") or {})
    status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
    return status


def new_rs_name(d: Obj) -> str:
    return f"{name_of(d)}-{pod_template_hash((d.get('spec') or {}).get('template') or {}, _collision_count(d))}"


def _collision_count(d: Obj) -> int | None:
    cc = (d.get("status") or {}).get("collisionCount")
    return None if cc is None else int(cc)


# --- the plan ----------------------------------------------------------------------------------


@dataclass
class DeploymentPlan:
    """The writes of one sync, applied in this order by the shell."""

    create: Obj | None = None  # the new ReplicaSet
    updates: list[Obj] = field(default_factory=list)  # ReplicaSets to PUT (replicas, annotations)
    deletes: list[Obj] = field(default_factory=list)  # old ReplicaSets past revisionHistoryLimit
    revision: str | None = None  # the Deployment's new revision annotation
    status: Obj | None = None  # the Deployment's new status, when it changed
    requeue_after: float | None = None  # look again then (progress deadline)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message) about d
    waiting_for_pods: bool = False  # Recreate: old pods still run and nothing signals their end

    @property
    def empty(self) -> bool:
        return not (self.create or self.updates or self.deletes or self.revision or self.status)


class _Sync:
    """One sync of one Deployment over copies of its objects, recording writes instead of doing them."""

    def __init__(self, d: Obj, rss: Sequence[Obj], pods_by_rs_uid: dict[str, list[Obj]], now: float) -> None:
        self.d = copy.deepcopy(d)
        self.d.setdefault("status", {})
        self.orig_status = copy.deepcopy(d.get("status") or {})
        self.rss = [copy.deepcopy(rs) for rs in rss]
        self.pods_by_rs_uid = pods_by_rs_uid
        self.now = now
        self.plan = DeploymentPlan()
        self._dirty: list[Obj] = []

    # writes ------------------------------------------------------------------------------------

    def _mark(self, rs: Obj) -> None:
        if rs is self.plan.create or any(rs is x for x in self._dirty):
            return
        self._dirty.append(rs)

    def scale_rs(self, rs: Obj, new_scale: int) -> bool:
        """Set replicas and the replicas annotations; True when the size changed."""
        old_scale = replicas_of(rs)
        size_changed = old_scale != new_scale
        desired, maximum = replicas_of(self.d), replicas_of(self.d) + max_surge(self.d)
        if size_changed:
            direction = "up" if new_scale > old_scale else "down"
            self.plan.events.append(("Normal", "ScalingReplicaSet",
                                     f"Scaled {direction} replica set {name_of(rs)} to {new_scale} from {old_scale}"))
        if size_changed or replicas_annotations_need_update(rs, desired, maximum):
            rs.setdefault("spec", {})["replicas"] = new_scale
            set_replicas_annotations(rs, desired, maximum)
            self._mark(rs)
        return size_changed

    def scale_rs_if_needed(self, rs: Obj | None, new_scale: int) -> bool:
        if rs is None or replicas_of(rs) == new_scale:
            return False
        return self.scale_rs(rs, new_scale)

    def set_revision(self, revision: str) -> bool:
        ann = self.d.setdefault("metadata", {}).setdefault("annotations", {})
        if ann.get(REVISION) == revision:
            return False
        ann[REVISION] = revision
        self.plan.revision = revision
        return True

    def finish(self, status: Obj | None) -> DeploymentPlan:
        self.plan.updates = list(self._dirty)
        if status is not None and not status_equal(status, self.orig_status):
            self.plan.status = status
        elif not status_equal(self.d["status"], self.orig_status):
            self.plan.status = self.d["status"]
        return self.plan

    # reading -----------------------------------------------------------------------------------

    def all_and_new(self, create: bool) -> tuple[Obj | None, list[Obj]]:
        """Kubernetes' getAllReplicaSetsAndSyncRevision: the new RS (maybe created) and the old ones."""
        existing = find_new_rs(self.d, self.rss)
        olds = [rs for rs in self.rss if rs is not existing]
        new_revision = max_revision(olds) + 1
        if existing is not None:
            changed = set_new_rs_annotations(self.d, existing, new_revision, exists=True)
            min_ready = (self.d.get("spec") or {}).get("minReadySeconds") or 0
            if changed or ((existing.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
                existing.setdefault("spec", {})["minReadySeconds"] = min_ready
                self._mark(existing)
                return existing, olds
            self.set_revision(str(revision_of(existing) or new_revision))
            if has_progress_deadline(self.d) and get_condition(self.d["status"], PROGRESSING) is None:
                set_condition(self.d["status"], new_condition(
                    PROGRESSING, "True", FOUND_NEW_RS, f'Found new replica set "{name_of(existing)}"', self.now))
            return existing, olds
        if not create:
            return None, olds
        new_rs = self._new_rs_object(olds, new_revision)
        self.plan.create = new_rs
        if replicas_of(new_rs) > 0:
            self.plan.events.append(("Normal", "ScalingReplicaSet",
                                     f"Scaled up replica set {name_of(new_rs)} to {replicas_of(new_rs)}"))
        self.rss.append(new_rs)
        self.set_revision(str(new_revision))
        if has_progress_deadline(self.d):
            set_condition(self.d["status"], new_condition(
                PROGRESSING, "True", NEW_RS_CREATED, f'Created new replica set "{name_of(new_rs)}"', self.now))
        return new_rs, olds

    def _new_rs_object(self, olds: list[Obj], new_revision: int) -> Obj:
        spec = self.d.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        h = pod_template_hash(template, _collision_count(self.d))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), POD_TEMPLATE_HASH: h}
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), POD_TEMPLATE_HASH: h}
        rs: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name_of(self.d)}-{h}",
                "namespace": namespace_of(self.d),
                "ownerReferences": [controller_ref_to(self.d, DEPLOYMENT_API_VERSION, DEPLOYMENT_KIND)],
                "labels": dict(tmeta["labels"]),
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": spec.get("minReadySeconds") or 0,
                "selector": selector,
                "template": template,
            },
        }
        rs["spec"]["replicas"] = new_rs_new_replicas(self.d, [*olds, rs], rs)
        set_new_rs_annotations(self.d, rs, new_revision, exists=False)
        return rs

    # strategies ----------------------------------------------------------------------------------

    def rolling(self) -> DeploymentPlan:
        new_rs, olds = self.all_and_new(create=True)
        all_rss = [*olds, new_rs]
        if self.reconcile_new(all_rss, new_rs):
            return self.rollout_status(all_rss, new_rs)
        if self.reconcile_old(all_rss, _active(olds), new_rs):
            return self.rollout_status(all_rss, new_rs)
        if deployment_complete(self.d, self.d["status"]):
            self.cleanup(olds)
        return self.rollout_status(all_rss, new_rs)

    def recreate(self) -> DeploymentPlan:
        new_rs, olds = self.all_and_new(create=False)
        all_rss: list[Obj | None] = [*olds, new_rs]
        scaled_down = False
        for rs in _active(olds):
            if self.scale_rs_if_needed(rs, 0):
                scaled_down = True
        if scaled_down:
            return self.rollout_status(all_rss, new_rs)
        if self.old_pods_running(new_rs, olds):
            self.plan.waiting_for_pods = True
            return self.rollout_status(all_rss, new_rs)
        if new_rs is None:
            new_rs, olds = self.all_and_new(create=True)
            all_rss = [*olds, new_rs]
        self.scale_rs_if_needed(new_rs, replicas_of(self.d))
        if deployment_complete(self.d, self.d["status"]):
            self.cleanup(olds)
        return self.rollout_status(all_rss, new_rs)

    def old_pods_running(self, new_rs: Obj | None, olds: Sequence[Obj]) -> bool:
        if sum(_status(rs, "replicas") for rs in olds) > 0:
            return True
        new_uid = uid_of(new_rs) if new_rs is not None else None
        for rs_uid, pods in self.pods_by_rs_uid.items():
            if rs_uid == new_uid:
                continue
            for pod in pods:
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    def reconcile_new(self, all_rss: Sequence[Obj | None], new_rs: Obj | None) -> bool:
        if new_rs is None:
            return False
        if replicas_of(new_rs) == replicas_of(self.d):
            return False
        if replicas_of(new_rs) > replicas_of(self.d):
            return self.scale_rs_if_needed(new_rs, replicas_of(self.d))
        return self.scale_rs_if_needed(new_rs, new_rs_new_replicas(self.d, all_rss, new_rs))

    def reconcile_old(self, all_rss: Sequence[Obj | None], old_active: list[Obj], new_rs: Obj | None) -> bool:
        if sum(replicas_of(rs) for rs in old_active) == 0:
            return False
        all_pods = sum(replicas_of(rs) for rs in all_rss if rs is not None)
        min_available = replicas_of(self.d) - max_unavailable(self.d)
        new_unavailable = replicas_of(new_rs) - _status(new_rs, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = self._cleanup_unhealthy(old_active, max_scaled_down)
        scaled = self._scale_down_old(old_active, new_rs)
        return cleaned + scaled > 0

    def _cleanup_unhealthy(self, old_rss: list[Obj], max_cleanup: int) -> int:
        """Old ReplicaSets' unavailable pods go first: removing them costs no availability."""
        total = 0
        for rs in by_creation(old_rss):
            if total >= max_cleanup:
                break
            if replicas_of(rs) == 0 or replicas_of(rs) == _status(rs, "availableReplicas"):
                continue
            down = min(max_cleanup - total, replicas_of(rs) - _status(rs, "availableReplicas"))
            self.scale_rs_if_needed(rs, replicas_of(rs) - down)
            total += down
        return total

    def _scale_down_old(self, old_rss: list[Obj], new_rs: Obj | None) -> int:
        min_available = replicas_of(self.d) - max_unavailable(self.d)
        available = sum(_status(rs, "availableReplicas") for rs in [*old_rss, new_rs] if rs is not None)
        if available <= min_available:
            return 0
        to_scale_down = available - min_available
        total = 0
        for rs in by_creation(old_rss):
            if total >= to_scale_down:
                break
            if replicas_of(rs) == 0:
                continue
            down = min(replicas_of(rs), to_scale_down - total)
            self.scale_rs_if_needed(rs, replicas_of(rs) - down)
            total += down
        return total

    def cleanup(self, olds: Sequence[Obj]) -> None:
        """Delete the oldest idle ReplicaSets beyond revisionHistoryLimit."""
        limit = (self.d.get("spec") or {}).get("revisionHistoryLimit", 10)
        if limit is None:
            return
        alive = [rs for rs in olds if not metadata(rs).get("deletionTimestamp")]
        diff = len(alive) - int(limit)
        if diff <= 0:
            return
        for rs in _by_revision(alive)[:diff]:
            if (_status(rs, "replicas") != 0 or replicas_of(rs) != 0
                    or int(metadata(rs).get("generation") or 0) > _status(rs, "observedGeneration")):
                continue
            self.plan.deletes.append(rs)

    def scale(self, new_rs: Obj | None, olds: list[Obj]) -> None:
        """A scaling event: resize the active ReplicaSets (proportionally when there are several)."""
        target = find_active_or_latest(new_rs, olds)
        if target is not None:
            self.scale_rs_if_needed(target, replicas_of(self.d))
            return
        if is_saturated(self.d, new_rs):
            for rs in _active(olds):
                self.scale_rs_if_needed(rs, 0)
            return
        if strategy_type(self.d) != "RollingUpdate":
            return
        all_rss = _active([*olds, new_rs])
        all_replicas = sum(replicas_of(rs) for rs in all_rss)
        allowed = replicas_of(self.d) + max_surge(self.d) if replicas_of(self.d) > 0 else 0
        to_add = allowed - all_replicas
        # Larger first; on a tie, the newer first when growing and the older first when shrinking.
        def size_key(rs: Obj) -> tuple[int, float]:
            t = creation_time(rs) or 0.0
            return (-replicas_of(rs), -t if to_add > 0 else t)

        all_rss.sort(key=size_key)
        sizes: dict[int, int] = {}
        added = 0
        for rs in all_rss:
            if to_add != 0:
                p = _proportion(rs, self.d, to_add, added)
                sizes[id(rs)] = replicas_of(rs) + p
                added += p
            else:
                sizes[id(rs)] = replicas_of(rs)
        for i, rs in enumerate(all_rss):
            if i == 0 and to_add != 0:
                sizes[id(rs)] = max(0, sizes[id(rs)] + to_add - added)
            self.scale_rs(rs, sizes[id(rs)])

    def is_scaling_event(self) -> bool:
        new_rs, olds = find_new_rs(self.d, self.rss), None
        olds = [rs for rs in self.rss if rs is not new_rs]
        for rs in _active([*olds, new_rs]):
            desired = _desired_annotation(rs)
            if desired is not None and desired != replicas_of(self.d):
                return True
        return False

    def sync_only(self, paused: bool) -> DeploymentPlan:
        """Kubernetes' sync(): scaling, history cleanup when paused, status without progress."""
        new_rs, olds = self.all_and_new(create=False)
        self.scale(new_rs, olds)
        if paused:
            self.cleanup(olds)
        return self.finish(calculate_status([*olds, new_rs], new_rs, self.d, self.now))

    def status_only(self) -> DeploymentPlan:
        new_rs, olds = self.all_and_new(create=False)
        return self.finish(calculate_status([*olds, new_rs], new_rs, self.d, self.now))

    def check_paused_conditions(self) -> None:
        if not has_progress_deadline(self.d):
            return
        cond = get_condition(self.d["status"], PROGRESSING)
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == PAUSED
        paused = bool((self.d.get("spec") or {}).get("paused"))
        if paused and not paused_cond:
            set_condition(self.d["status"], new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused",
                                                          self.now))
        elif not paused and paused_cond:
            set_condition(self.d["status"], new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed",
                                                          self.now))

    def rollout_status(self, all_rss: Sequence[Obj | None], new_rs: Obj | None) -> DeploymentPlan:
        """Kubernetes' syncRolloutStatus: counts, Available, and the Progressing condition."""
        status = calculate_status(all_rss, new_rs, self.d, self.now)
        if not has_progress_deadline(self.d):
            remove_condition(status, PROGRESSING)
        current = get_condition(self.d["status"], PROGRESSING)
        complete_already = (int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
                            and current is not None and current.get("reason") == NEW_RS_AVAILABLE)
        if has_progress_deadline(self.d) and not complete_already:
            if deployment_complete(self.d, status):
                msg = f'Deployment "{name_of(self.d)}" has successfully progressed.'
                if new_rs is not None:
                    msg = f'ReplicaSet "{name_of(new_rs)}" has successfully progressed.'
                set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, self.now))
            elif deployment_progressing(self.d, status):
                msg = f'Deployment "{name_of(self.d)}" is progressing.'
                if new_rs is not None:
                    msg = f'ReplicaSet "{name_of(new_rs)}" is progressing.'
                cond = new_condition(PROGRESSING, "True", RS_UPDATED, msg, self.now)
                if current is not None and current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime", cond["lastTransitionTime"])
                remove_condition(status, PROGRESSING)
                set_condition(status, cond)
            elif new_rs is not None and deployment_timed_out(self.d, status, self.now):
                msg = f'ReplicaSet "{name_of(new_rs)}" has timed out progressing.'
                set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT, msg, self.now))
        failure = self._replica_failure(all_rss, new_rs)
        if failure is not None:
            set_condition(status, failure)
        else:
            remove_condition(status, REPLICA_FAILURE)
        if status_equal(status, self.d["status"]):
            self.plan.requeue_after = self._stuck_requeue(status)
        return self.finish(status)

    def _replica_failure(self, all_rss: Sequence[Obj | None], new_rs: Obj | None) -> Obj | None:
        ordered = [new_rs, *[rs for rs in all_rss if rs is not new_rs]]
        for rs in ordered:
            if rs is None:
                continue
            cond = get_condition(rs.get("status"), "ReplicaFailure")
            if cond is not None and cond.get("status") == "True":
                return {"type": REPLICA_FAILURE, "status": "True",
                        "lastUpdateTime": cond.get("lastTransitionTime") or rfc3339(self.now),
                        "lastTransitionTime": cond.get("lastTransitionTime") or rfc3339(self.now),
                        "reason": cond.get("reason", ""), "message": cond.get("message", "")}
        return None

    def _stuck_requeue(self, status: Obj) -> float | None:
        cond = get_condition(self.d["status"], PROGRESSING)
        if not has_progress_deadline(self.d) or cond is None:
            return None
        if deployment_complete(self.d, status) or cond.get("reason") == TIMED_OUT:
            return None
        try:
            since = parse_time(cond.get("lastUpdateTime") or "")
        except ValueError:
            return None
        after = since + int((self.d.get("spec") or {}).get("progressDeadlineSeconds", 600)) - self.now
        return max(0.0, after) + (1.0 if after >= 1 else 0.0)


def needs_pods(d: Obj, replica_sets: Sequence[Obj]) -> bool:
    """Whether a sync must see the pods: Recreate waits for the old ones to be gone, which their
    ReplicaSets' status no longer shows once they are all terminating."""
    if strategy_type(d) != "Recreate" or metadata(d).get("deletionTimestamp") or (d.get("spec") or {}).get("paused"):
        return False
    new_rs = find_new_rs(d, replica_sets)
    olds = [rs for rs in replica_sets if rs is not new_rs]
    if not olds or any(_status(rs, "replicas") > 0 for rs in olds):
        return False
    return new_rs is None or replicas_of(new_rs) != replicas_of(d)


def plan_deployment(
    d: Obj, replica_sets: Sequence[Obj], pods_by_rs_uid: dict[str, list[Obj]] | None, now: float
) -> DeploymentPlan:
    """The writes one sync of `d` makes, given the ReplicaSets it controls (already claimed).

    `pods_by_rs_uid` (pods controlled by each of those ReplicaSets) is read by Recreate only.
    """
    s = _Sync(d, replica_sets, pods_by_rs_uid or {}, now)
    if selector_is_empty((d.get("spec") or {}).get("selector")):
        # A Deployment selecting every pod is not acted on; only its observedGeneration moves.
        status = copy.deepcopy(d.get("status") or {})
        if int(status.get("observedGeneration") or 0) < int(metadata(d).get("generation") or 0):
            status["observedGeneration"] = int(metadata(d).get("generation") or 0)
        return s.finish(status)
    if metadata(d).get("deletionTimestamp"):
        return s.status_only()
    s.check_paused_conditions()
    if (d.get("spec") or {}).get("paused"):
        return s.sync_only(paused=True)
    if s.is_scaling_event():
        return s.sync_only(paused=False)
    if strategy_type(d) == "Recreate":
        return s.recreate()
    return s.rolling()


# --- shell -------------------------------------------------------------------------------------


def _by_namespace(obj: Obj) -> list[str]:
    return [namespace_of(obj)]


class DeploymentController(QueueController):
    """Watches Deployments and ReplicaSets; one sync per Deployment key applies its plan.

    Pods are read live only while a Recreate rollout waits for old pods to end (no pod cache).
    """

    def __init__(self, client: Any, workers: int = 5, *, record_events: bool = True,
                 informers: SharedInformerFactory | None = None) -> None:
        from sliceplane.client.workqueue import WorkQueue

        super().__init__(client, informers)
        self.workers = workers
        self.d_informer = self._informer(DEPLOYMENTS)
        self.rs_informer = self._informer(REPLICA_SETS)
        self.d_informer.add_index("namespace", _by_namespace)
        self.rs_informer.add_index("namespace", _by_namespace)
        self.queue = WorkQueue("deployment")
        # Our own writes by key (`ns/name` of Deployments, `rs:ns/name` of ReplicaSets), and the
        # ReplicaSets each Deployment wrote: a sync waits until the caches have caught up.
        self.tracker = WriteTracker()
        self.recorder = EventRecorder(client, "deployment-controller", enabled=record_events)
        self._rs_written: dict[str, set[str]] = {}
        self.d_informer.add_handlers(self._on_d, lambda old, new: self._on_d(new), self._on_d)
        self.rs_informer.add_handlers(self._on_rs_add, self._on_rs_update, self._on_rs_delete)

    async def run(self, workers: int | None = None) -> None:
        await self._run_queue([self.d_informer, self.rs_informer], self.queue, self.sync, workers or self.workers, log)

    async def wait_idle(self) -> None:
        """Until the caches have synced, the queue is empty and no sync runs (tests, benchmarks)."""
        await self._wait_synced_idle([self.d_informer, self.rs_informer], self.queue)

    async def stop(self) -> None:
        await self._shutdown(self.queue)
        await self.recorder.close()

    # --- handlers ------------------------------------------------------------------------------

    def _on_d(self, d: Obj) -> None:
        self.queue.add(key_of(d))

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != DEPLOYMENT_KIND:
            return None
        d = self.d_informer.get(f"{namespace}/{ref.get('name', '')}")
        if d is None or uid_of(d) != ref.get("uid"):
            return None
        return d

    def _enqueue_matching(self, rs: Obj) -> None:
        labels = labels_of(rs)
        for d in self.d_informer.by_index("namespace", namespace_of(rs)):
            if selector_matches((d.get("spec") or {}).get("selector"), labels):
                self.queue.add(key_of(d))

    def _on_rs_add(self, rs: Obj) -> None:
        d = self._resolve(namespace_of(rs), controller_ref(rs))
        if d is not None:
            self.queue.add(key_of(d))
        elif controller_ref(rs) is None:
            self._enqueue_matching(rs)

    def _on_rs_update(self, old: Obj, new: Obj) -> None:
        if metadata(old).get("resourceVersion") == metadata(new).get("resourceVersion"):
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if (old_ref or {}).get("uid") != (new_ref or {}).get("uid") and old_ref is not None:
            d = self._resolve(namespace_of(old), old_ref)
            if d is not None:
                self.queue.add(key_of(d))
        if new_ref is not None:
            d = self._resolve(namespace_of(new), new_ref)
            if d is not None:
                self.queue.add(key_of(d))
            return
        if labels_of(old) != labels_of(new) or old_ref is not None:
            self._enqueue_matching(new)

    def _on_rs_delete(self, rs: Obj) -> None:
        self.tracker.forget(f"rs:{key_of(rs)}")
        d = self._resolve(namespace_of(rs), controller_ref(rs))
        if d is not None:
            self.queue.add(key_of(d))

    # --- sync ----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, _ = split_key(key)
        d = self.d_informer.get(key)
        if d is None:
            self.tracker.forget(key)
            self._rs_written.pop(key, None)
            return
        now = time.time()
        if self.tracker.stale(key, d, now) or any(
            self.tracker.stale(f"rs:{k}", self.rs_informer.get(k), now) for k in self._rs_written.get(key, ())
        ):
            self.queue.add_after(key, 1.0)  # normally the watch event of our write comes first
            return
        self._rs_written.pop(key, None)
        rss = await self._claim(d, self.rs_informer.by_index("namespace", namespace))
        pods_by_rs_uid = await self._pods_by_rs_uid(d, rss) if needs_pods(d, rss) else {}
        plan = plan_deployment(d, rss, pods_by_rs_uid, now)
        await self._apply(d, plan)
        for event_type, reason, message in plan.events:
            self.recorder.record(d, DEPLOYMENT_API_VERSION, DEPLOYMENT_KIND, event_type, reason, message, now)
        if plan.waiting_for_pods:
            self.queue.add_after(key, RECREATE_POLL)
        if plan.requeue_after is not None:
            if plan.requeue_after < 1.0:
                self.queue.add_rate_limited(key)
            else:
                self.queue.add_after(key, plan.requeue_after)

    async def _pods_by_rs_uid(self, d: Obj, rss: list[Obj]) -> dict[str, list[Obj]]:
        """The pods of the Deployment's ReplicaSets, read live: no pod cache is kept just for Recreate."""
        from sliceplane.api.selectors import label_selector_from_spec

        selector = str(label_selector_from_spec((d.get("spec") or {}).get("selector")))
        pods = (await self.client.list_all(PODS, namespace_of(d), label_selector=selector or None)).get("items") or []
        uids = {uid_of(rs) for rs in rss}
        out: dict[str, list[Obj]] = {}
        for pod in pods:
            ref = controller_ref(pod)
            if ref is not None and ref.get("uid") in uids:
                out.setdefault(ref["uid"], []).append(pod)
        return out

    async def _claim(self, d: Obj, candidates: list[Obj]) -> list[Obj]:
        selector = (d.get("spec") or {}).get("selector")
        if selector_is_empty(selector):
            return [rs for rs in candidates if is_controlled_by(rs, d)]
        plan = plan_claims(d, selector, candidates)
        owned = list(plan.owned)
        if plan.adopt:
            fresh = await _get_or_none(self.client, DEPLOYMENTS, name_of(d), namespace_of(d))
            if fresh is not None and uid_of(fresh) == uid_of(d) and not metadata(fresh).get("deletionTimestamp"):
                ref = controller_ref_to(d, DEPLOYMENT_API_VERSION, DEPLOYMENT_KIND)
                for rs in plan.adopt:
                    adopted = await mutate(
                        self.client, REPLICA_SETS, name_of(rs), namespace_of(rs),
                        lambda cur: None if controller_ref(cur) is not None or metadata(cur).get(
                            "deletionTimestamp") else with_owner_ref(cur, ref),
                    )
                    if adopted is not None:
                        owned.append(adopted)
        for rs in plan.release:
            await mutate(
                self.client, REPLICA_SETS, name_of(rs), namespace_of(rs),
                lambda cur: without_owner_refs(cur, [uid_of(d)]) if is_controlled_by(cur, d) else None,
            )
        return owned

    async def _apply(self, d: Obj, plan: DeploymentPlan) -> None:
        ns = namespace_of(d)
        if plan.create is not None:
            try:
                created = await self.client.create(REPLICA_SETS, plan.create, ns)
                self._wrote_rs(d, created)
            except Exception as e:
                if getattr(e, "code", None) != 409:
                    raise
                await self._on_create_conflict(d, plan.create)
                return
        cached = {uid_of(rs): rs for rs in self.rs_informer.by_index("namespace", ns)}
        for rs in plan.updates:
            self._wrote_rs(d, await self._update_rs(rs, cached.get(uid_of(rs))))
        for rs in plan.deletes:
            try:
                await self.client.delete(REPLICA_SETS, name_of(rs), ns, preconditions={
                    "uid": uid_of(rs), "resourceVersion": metadata(rs).get("resourceVersion")})
            except Exception as e:
                if getattr(e, "code", None) not in (404, 409):
                    raise
        current = d
        if plan.revision is not None:
            revision = plan.revision

            def with_revision(cur: Obj) -> Obj | None:
                if uid_of(cur) != uid_of(d):
                    return None
                out = copy.deepcopy(cur)
                out["metadata"].setdefault("annotations", {})[REVISION] = revision
                return out

            # GET + PUT rather than a patch: status writes cannot carry metadata here.
            written = await mutate(self.client, DEPLOYMENTS, name_of(d), ns, with_revision)
            if written is None:
                return
            self.tracker.wrote(key_of(d), written, time.time())
            current = written
        if plan.status is not None:
            obj = copy.deepcopy(current)
            obj["status"] = plan.status
            self.tracker.wrote(key_of(d), await self.client.update(DEPLOYMENTS, obj, subresource="status"), time.time())

    async def _update_rs(self, planned: Obj, cached: Obj | None) -> Obj:
        """PUT a rescaled/annotated ReplicaSet. A conflict caused only by status writes (the
        ReplicaSet controller reports pods constantly during a rollout) is resolved by checking
        that what we planned from is unchanged and writing just our fields with a merge patch."""
        try:
            return await self.client.update(REPLICA_SETS, planned)
        except Exception as e:
            if getattr(e, "code", None) != 409 or cached is None:
                raise
            conflict = e
        fresh = await self.client.get(REPLICA_SETS, name_of(planned), namespace_of(planned))
        if (uid_of(fresh) != uid_of(cached) or fresh.get("spec") != cached.get("spec")
                or metadata(fresh).get("annotations") != metadata(cached).get("annotations")
                or metadata(fresh).get("ownerReferences") != metadata(cached).get("ownerReferences")):
            raise conflict  # someone else changed what we planned from: plan again
        spec = planned.get("spec") or {}
        patch = {
            "metadata": {"annotations": metadata(planned).get("annotations") or {}},
            "spec": {"replicas": spec.get("replicas"), "minReadySeconds": spec.get("minReadySeconds") or 0},
        }
        return await self.client.patch(REPLICA_SETS, name_of(planned), patch, namespace=namespace_of(planned),
                                       patch_type="merge")

    def _wrote_rs(self, d: Obj, rs: Obj) -> None:
        key = key_of(rs)
        self.tracker.wrote(f"rs:{key}", rs, time.time())
        self._rs_written.setdefault(key_of(d), set()).add(key)

    async def _on_create_conflict(self, d: Obj, wanted: Obj) -> None:
        """The RS name exists: ours (informer lag) or a hash collision that bumps collisionCount."""
        existing = await _get_or_none(self.client, REPLICA_SETS, name_of(wanted), namespace_of(d))
        if existing is None:
            raise RuntimeError(f"replicaset {name_of(wanted)} conflicted but is gone")
        if is_controlled_by(existing, d) and equal_ignore_hash(
            (existing.get("spec") or {}).get("template"), (d.get("spec") or {}).get("template")
        ):
            self.queue.add_after(key_of(d), 0.05)
            return
        obj = copy.deepcopy(d)
        obj["status"] = collision_status(d)
        await self.client.update(DEPLOYMENTS, obj, subresource="status")
        raise RuntimeError(f"hash collision on replicaset {name_of(wanted)}")


async def _get_or_none(client: Any, info: Any, name: str, namespace: str) -> Obj | None:
    try:
        return await client.get(info, name, namespace)
    except Exception as e:
        if getattr(e, "code", None) == 404:
            return None
        raise
