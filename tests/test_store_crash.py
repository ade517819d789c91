"""kill -9 a process in the middle of a write storm: every acknowledged write survives, the file is sound."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sliceplane.store.sqlite import SQLiteStore

STORM = Path(__file__).with_name("store_storm.py")


def storm_until_killed(db: Path, writers: int, acks_before_kill: int) -> list[str]:
    """Run the storm, kill -9 it after `acks_before_kill` acknowledged writes, return its complete lines."""
    proc = subprocess.Popen(
        [sys.executable, str(STORM), str(db), str(writers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        acks = 0
        while acks < acks_before_kill:
            raw = proc.stdout.readline()
            if not raw:
                raise AssertionError(f"storm exited early: {proc.wait()} {proc.stderr.read()!r}")  # type: ignore[union-attr]
            lines.append(raw.decode())
            acks += raw.startswith(b"ack ")
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # A line cut by the kill has no newline: its write was acknowledged, but we only count whole lines.
    lines.extend(line for line in rest.decode().splitlines(keepends=True) if line.endswith("\n"))
    return [line.strip() for line in lines]


@pytest.mark.parametrize(("writers", "acks_before_kill"), [(1, 300), (32, 3000)], ids=["serial", "grouped"])
async def test_acknowledged_writes_survive_kill_9(tmp_path: Path, writers: int, acks_before_kill: int) -> None:
    db = tmp_path / "state.db"
    lines = await asyncio.to_thread(storm_until_killed, db, writers, acks_before_kill)
    acked: dict[str, int] = {}
    for line in lines:
        if line.startswith(("ack ", "upd ")):
            _, key, revision = line.split()
            acked[key] = max(acked.get(key, 0), int(revision))

    store = SQLiteStore(str(db), compact_interval=None)
    await store.start()
    try:
        missing = [key for key in acked if await store.get(key) is None]
        stale = [key for key, rev in acked.items() if (kv := await store.get(key)) and kv.mod_revision < rev]
        head = await store.current_revision()
        next_kv = await store.create("/after/restart", b"v")
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()

    assert len(acked) >= acks_before_kill
    assert missing == []
    assert stale == []
    assert head >= max(acked.values())
    assert next_kv.mod_revision == head + 1
    assert integrity == [("ok",)]
