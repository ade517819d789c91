"""Small helpers over object metadata. Objects are plain JSON dicts, as clients sent them."""

from __future__ import annotations

import datetime as _dt
from typing import Any

Obj = dict[str, Any]


def rfc3339(ts: float) -> str:
    """Seconds since the epoch -> Kubernetes' metav1.Time text (second precision, UTC)."""
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(ts: float) -> str:
    """metav1.MicroTime text, used by Leases and Events."""
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> float:
    """metav1.Time or MicroTime text -> seconds since the epoch."""
    t = text.replace("Z", "+00:00")
    return _dt.datetime.fromisoformat(t).timestamp()


def metadata(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def name_of(obj: Obj) -> str:
    return metadata(obj).get("name", "")


def namespace_of(obj: Obj) -> str:
    return metadata(obj).get("namespace", "")


def key_of(obj: Obj) -> str:
    """`namespace/name` for namespaced objects, `name` otherwise (the informer key)."""
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


def split_key(key: str) -> tuple[str, str]:
    ns, _, name = key.rpartition("/")
    return ns, name


def labels_of(obj: Obj) -> dict[str, str]:
    return metadata(obj).get("labels") or {}


def annotations_of(obj: Obj) -> dict[str, str]:
    return metadata(obj).get("annotations") or {}


def uid_of(obj: Obj) -> str:
    return metadata(obj).get("uid", "")


def resource_version_of(obj: Obj) -> str:
    return metadata(obj).get("resourceVersion", "")


def is_terminating(obj: Obj) -> bool:
    return bool(metadata(obj).get("deletionTimestamp"))


def controller_ref(obj: Obj) -> dict[str, Any] | None:
    for ref in metadata(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref(owner: Obj, *, controller: bool = True, block_owner_deletion: bool = True) -> dict[str, Any]:
    """An ownerReference pointing at `owner`."""
    return {
        "apiVersion": owner.get("apiVersion", ""),
        "kind": owner.get("kind", ""),
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }
