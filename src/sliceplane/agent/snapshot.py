"""How agents publish their tables and metrics: one JSON file per agent in a state directory.

By default the directory is `agents/` next to the kubeconfig, so `sliceplane table` and
`sliceplane verify` given the same kubeconfig find them. Files are replaced atomically; an agent
rewrites its file when its table changes (debounced) and at least every few seconds as a
heartbeat, and removes it when it stops. Readers skip files whose writer is gone (dead pid on
this host) or silent for too long.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

# A snapshot not rewritten for this long belongs to an agent that is gone or wedged.
STALE_AFTER = 15.0


def default_state_dir(kubeconfig: str | Path) -> Path:
    return Path(kubeconfig).resolve().parent / "agents"


def snapshot_path(state_dir: Path, node: str) -> Path:
    return state_dir / f"{node}.json"


def write_snapshot(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)


def remove_snapshot(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def read_snapshot(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_live(snap: dict[str, Any], now: float, stale_after: float = STALE_AFTER) -> bool:
    if now - float(snap.get("updated") or 0) > stale_after:
        return False
    pid = snap.get("pid")
    if snap.get("host") == socket.gethostname() and isinstance(pid, int):
        return _pid_alive(pid)
    return True


def live_snapshots(state_dir: Path, now: float, stale_after: float = STALE_AFTER) -> list[dict[str, Any]]:
    """Snapshots of running agents, by node name."""
    out = []
    if not state_dir.is_dir():
        return out
    for path in sorted(state_dir.glob("*.json")):
        snap = read_snapshot(path)
        if snap is not None and is_live(snap, now, stale_after):
            out.append(snap)
    return out
