"""What counting agents read of a watch line: its type, the object's resourceVersion and an
error code, found by scanning the raw bytes, never by decoding the JSON. That is enough to
count events by type and to resume or re-list like any other watcher."""

from __future__ import annotations

import re

_TYPE_RE = re.compile(rb'"type"\s*:\s*"([A-Z]+)"')
_RV_RE = re.compile(rb'"resourceVersion"\s*:\s*"(\d+)"')
_CODE_RE = re.compile(rb'"code"\s*:\s*(\d+)')


def peek_event(line: bytes) -> tuple[str, str, int | None]:
    """(type, resourceVersion, error code) of a raw watch line without decoding it.

    The event type is the first `type` key of the line, and the object's own resourceVersion is
    the first `resourceVersion` after the first `metadata` key (the object's: the kinds agents
    watch have no nested metadata, and references inside them may carry older versions).
    """
    m = _TYPE_RE.search(line, 0, 64)
    typ = m.group(1).decode() if m else "UNKNOWN"
    rv_m = _RV_RE.search(line, max(line.find(b'"metadata"'), 0))
    code_m = _CODE_RE.search(line) if typ == "ERROR" else None
    return typ, rv_m.group(1).decode() if rv_m else "", int(code_m.group(1)) if code_m else None
