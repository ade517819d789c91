"""Text renderings of an agent snapshot for `sliceplane table` (pure: snapshot in, lines out)."""

from __future__ import annotations

from typing import Any


def _state(e: dict[str, Any]) -> str:
    if e.get("ready"):
        return "ready"
    if e.get("serving") and e.get("terminating"):
        return "serving,terminating"
    if e.get("terminating"):
        return "terminating"
    return "not-ready"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.1f}ms"


def table_lines(snap: dict[str, Any]) -> list[str]:
    """Service ports, then their endpoints; `*` marks those traffic from this node goes to."""
    lines = [f"# node {snap.get('node')} zone {snap.get('zone') or '-'} source {snap.get('source')} "
             f"mode {snap.get('mode')} {'synced' if snap.get('synced') else 'NOT SYNCED'}"]
    for entry in snap.get("table") or []:
        eps = entry.get("endpoints") or []
        used = set(entry.get("used") or [])
        n_ready = sum(1 for e in eps if e.get("ready"))
        lines.append(f"{entry.get('servicePort')}  {entry.get('clusterIP')}:{entry.get('port')}/{entry.get('protocol')}"
                     f"  endpoints {len(eps)} ready {n_ready} used {len(used)}")
        for e in eps:
            addr = e.get("address", "")
            key = f"[{addr}]:{e.get('port')}" if ":" in addr else f"{addr}:{e.get('port')}"
            mark = "*" if key in used else " "
            lines.append(f"  {mark} {key:<24} {_state(e):<20} node={e.get('nodeName') or '-'} "
                         f"zone={e.get('zone') or '-'}")
    return lines


def stats_lines(snap: dict[str, Any]) -> list[str]:
    m = snap.get("metrics") or {}
    lat = m.get("latency") or {}
    lines = [f"network programming latency: n={lat.get('count', 0)} p50={_ms(lat.get('p50'))} "
             f"p90={_ms(lat.get('p90'))} p99={_ms(lat.get('p99'))} max={_ms(lat.get('max'))}"]
    for name, r in (m.get("resources") or {}).items():
        lines.append(f"{name}: events {r.get('eventsTotal', 0)} {r.get('events', {})} bytes {r.get('bytes', 0)} "
                     f"decode {r.get('decodeSeconds', 0) * 1000:.1f}ms lists {r.get('lists', 0)} "
                     f"relists {r.get('relists', 0)} reconnects {r.get('reconnects', 0)}")
    lines.append(f"table: {m.get('tableServicePorts', 0)} service ports, {m.get('tableEndpoints', 0)} endpoints, "
                 f"{m.get('tableSyncs', 0)} syncs")
    return lines
