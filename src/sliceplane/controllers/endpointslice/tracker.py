"""Track our own EndpointSlice writes so we never plan from a cache that has not seen them.

After the controller writes a slice, the informer shows the write a little later. Planning in
between would start from the old content and write again (or conflict). Like Kubernetes'
EndpointSliceTracker we record what we wrote, by resourceVersion, and what we deleted; a
Service is stale while the informer has not yet shown all of it, and its sync is retried
instead of planned. Informer events that merely echo our own writes are recognised, so they
do not wake the Service again; anything else (someone edited or deleted a managed slice) does.

Unlike Kubernetes we settle expectations as events arrive rather than by scanning the
Service's slices on each sync, so the staleness check is O(1).

ResourceVersions come from one revisioned store and are compared as integers; a version that
is not an integer only matches itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DELETION = -1


def _rv(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


class WriteTracker:
    """Expected resourceVersions (or deletions) of our writes, per Service key."""

    def __init__(self) -> None:
        # service key -> slice uid -> resourceVersion we wrote, or DELETION.
        self._expected: dict[str, dict[str, int | str]] = {}
        self._service_uid: dict[str, str] = {}

    def wrote(self, service_key: str, written: Mapping[str, Any],
              cached: Mapping[str, Any] | None = None) -> None:
        """Record a create or update, with the object the server returned.

        `cached` is the informer's copy of that slice right now: the watch event may have
        been handled while we were still waiting for the response, and an expectation the
        informer has already met must not be recorded (it would never be settled).
        """
        meta = _meta(written)
        uid, rv = meta.get("uid", ""), meta.get("resourceVersion", "")
        if not uid or not rv:
            return
        n = _rv(rv)
        if cached is not None and _meta(cached).get("uid") == uid:
            seen = _rv(_meta(cached).get("resourceVersion", ""))
            if (n is not None and seen is not None and seen >= n) or _meta(cached).get("resourceVersion") == rv:
                return
        self._expected.setdefault(service_key, {})[uid] = n if n is not None else rv

    def expect_deletion(self, service_key: str, deleted: Mapping[str, Any],
                        cached: Mapping[str, Any] | None = None) -> None:
        """Record a delete; `cached` as for `wrote` (None: the informer no longer has it)."""
        uid = _meta(deleted).get("uid", "")
        if not uid:
            return
        if cached is None or _meta(cached).get("uid") != uid:
            self._settle(service_key, uid)  # already gone from the cache: nothing left to wait for
            return
        self._expected.setdefault(service_key, {})[uid] = DELETION

    def observe(self, service_key: str, obj: Mapping[str, Any]) -> bool:
        """An informer add/update of a slice. True when it is news to us (not our own echo)."""
        meta = _meta(obj)
        uid = meta.get("uid", "")
        expected = self._expected.get(service_key)
        if not expected or uid not in expected:
            return True
        want = expected[uid]
        if want == DELETION:
            return False  # an update racing our delete; the deletion event settles it
        rv = meta.get("resourceVersion", "")
        n = _rv(rv)
        if isinstance(want, int) and n is not None:
            if n < want:
                return False  # an older version still in flight
            self._settle(service_key, uid)
            return n > want
        if rv == want:
            self._settle(service_key, uid)
            return False
        return True

    def observe_deletion(self, service_key: str, obj: Mapping[str, Any]) -> bool:
        """An informer delete of a slice. True when we did not cause it."""
        uid = _meta(obj).get("uid", "")
        expected = self._expected.get(service_key)
        if not expected or uid not in expected:
            return True
        want = expected[uid]
        self._settle(service_key, uid)
        return want != DELETION

    def stale(self, service_key: str, service_uid: str = "") -> bool:
        """Whether the informer has not yet shown every write we made for this Service.

        A Service recreated under the same name (new uid) starts afresh: writes for the old one
        can never block the new one.
        """
        if service_uid:
            known = self._service_uid.get(service_key)
            if known and known != service_uid:
                self._expected.pop(service_key, None)
            self._service_uid[service_key] = service_uid
        return bool(self._expected.get(service_key))

    def pending(self, service_key: str) -> int:
        return len(self._expected.get(service_key) or {})

    def forget_service(self, service_key: str) -> None:
        self._expected.pop(service_key, None)
        self._service_uid.pop(service_key, None)

    def _settle(self, service_key: str, uid: str) -> None:
        expected = self._expected.get(service_key)
        if expected is None:
            return
        expected.pop(uid, None)
        if not expected:
            del self._expected[service_key]
