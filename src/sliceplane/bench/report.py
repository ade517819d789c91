"""Measurements beside the model and the seed: rich tables, the JSON document, the plot.

Every comparison is built by pure functions (`compare`, `bench_document`, `plan_document`);
printing and plotting are thin shells over them.
"""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sliceplane.bench.model import (
    METRICS,
    SCENARIOS,
    SEED_NODES,
    SEED_PODS,
    Costs,
    Representation,
    Shape,
    predict,
    seed_figure,
)
from sliceplane.bench.runner import Measurement

SCHEMA_VERSION = 1
LABELS = {"writes": "writes", "events_per_watcher": "events / watcher", "object_bytes": "object bytes (max)",
          "watchers": "watchers", "total_events": "total events", "total_bytes": "total bytes"}


def measured_costs(m: Measurement) -> Costs:
    """A measurement in the model's terms: per-watcher figures are means over the real watchers."""
    w = max(1, m.watchers)
    return Costs(writes=m.writes, events_per_watcher=m.total_events / w, object_bytes=m.object_max_bytes,
                 watchers=m.watchers, total_events=m.total_events, total_bytes=m.total_bytes)


def ratio(measured: float, predicted: float) -> float | None:
    return measured / predicted if predicted else None


def compare(m: Measurement, shape: Shape, project_nodes: int) -> dict[str, Any]:
    """One result of the JSON document: measured, model, ratio, seed figure, projection."""
    rep = Representation.parse(m.representation)
    run_shape = Shape(pods=m.pods, nodes=max(1, m.watchers), bytes_per_endpoint=shape.bytes_per_endpoint,
                      overhead_bytes=shape.overhead_bytes)
    model = predict(run_shape, m.scenario, rep).as_dict()  # type: ignore[arg-type]
    measured = measured_costs(m).as_dict()
    seed = {}
    for metric in METRICS:
        f = seed_figure(m.scenario, rep, metric)
        if f is not None:
            seed[metric] = {"value": f.value, "text": f.text, "kind": f.kind}
    per_watcher_bytes = m.total_bytes / max(1, m.watchers)
    result: dict[str, Any] = {
        "run": m.run, "representation": m.representation, "scenario": m.scenario,
        "measured": {**measured, "bytes_per_watcher": per_watcher_bytes,
                     "events_per_watcher_each": m.events_per_watcher, "bytes_per_watcher_each": m.bytes_per_watcher,
                     "writes_by_operation": m.writes_by_operation, "objects": m.objects,
                     "object_max_bytes": m.object_max_bytes, "object_mean_bytes": round(m.object_mean_bytes, 1),
                     "endpoint_entry_bytes": round(m.endpoint_entry_bytes, 1),
                     "object_overhead_bytes": round(m.object_overhead_bytes, 1),
                     "latency_p50_seconds": m.latency_p50, "latency_p99_seconds": m.latency_p99,
                     "latency_samples": m.latency_samples, "cpu_seconds_apiserver": round(m.cpu_apiserver, 3),
                     "cpu_seconds_controller_manager": round(m.cpu_controller, 3),
                     "cpu_seconds_workloads": round(m.cpu_workloads, 3), "seconds": round(m.seconds, 2)},
        "model": model,
        "ratio": {k: ratio(measured[k], model[k]) for k in METRICS},
        "seed": seed,
        "projected": {"nodes": project_nodes, "total_events": m.total_events / max(1, m.watchers) * project_nodes,
                      "total_bytes": per_watcher_bytes * project_nodes},
        "failure": m.failure, "skipped": m.skipped, "per_replaced_pod": None,
    }
    if m.scenario == "rolling" and m.replaced_pods:
        result["per_replaced_pod"] = {"replaced_pods": m.replaced_pods, "writes": m.writes / m.replaced_pods,
                                      "events_per_watcher": m.total_events / max(1, m.watchers) / m.replaced_pods}
    return result


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]}


def bench_document(measurements: Iterable[Measurement], shape: Shape, project_nodes: int, *, watchers: int,
                   full_watchers: int, runs: list[dict[str, Any]], seconds: float, started_at: str,
                   command: str) -> dict[str, Any]:
    """The `--json` document (schema in the README)."""
    return {
        "schemaVersion": SCHEMA_VERSION, "command": command, "startedAt": started_at, "seconds": round(seconds, 1),
        "machine": machine(),
        "shape": {"pods": shape.pods, "watchers": watchers, "fullWatchers": full_watchers,
                  "projectNodes": project_nodes, "bytesPerEndpoint": shape.bytes_per_endpoint,
                  "overheadBytes": shape.overhead_bytes},
        "seedShape": {"pods": SEED_PODS, "nodes": SEED_NODES},
        "runs": runs,
        "results": [compare(m, shape, project_nodes) for m in measurements],
    }


def plan_document(shape: Shape, reps: list[Representation]) -> dict[str, Any]:
    """`sliceplane plan --json`: every cell of the model for this shape, with the seed's figure."""
    cells = []
    for scenario in SCENARIOS:
        for rep in reps:
            model = predict(shape, scenario, rep).as_dict()
            seed = {m: {"value": f.value, "text": f.text, "kind": f.kind}
                    for m in METRICS if (f := seed_figure(scenario, rep, m)) is not None}
            cells.append({"scenario": scenario, "representation": rep.name, "model": model, "seed": seed})
    return {"schemaVersion": SCHEMA_VERSION, "shape": _shape_json(shape), "cells": cells}


def _shape_json(shape: Shape) -> dict[str, int]:
    """A shape as both JSON documents spell it (camelCase, as Kubernetes' own JSON)."""
    return {"pods": shape.pods, "nodes": shape.nodes, "bytesPerEndpoint": shape.bytes_per_endpoint,
            "overheadBytes": shape.overhead_bytes}


# --- rendering -------------------------------------------------------------------------------


def human(value: float | None, unit: str = "") -> str:
    """1234567 -> 1.23M (bytes: 1.23 MB, decimal units as the seed's)."""
    if value is None:
        return "-"
    if value == float("inf"):
        return "+Inf"
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{' ' if unit else ''}{suffix}{unit}"
    if value == int(value):
        return f"{int(value)}{' ' + unit if unit else ''}"
    return f"{value:.3g}{' ' + unit if unit else ''}"


def _unit(metric: str) -> str:
    return "B" if "bytes" in metric else ""


def render_plan(console: Console, doc: dict[str, Any]) -> None:
    s = doc["shape"]
    for scenario in SCENARIOS:
        t = Table(title=f"{scenario}: model at P={s['pods']:,}, N={s['nodes']:,}, "
                        f"{s['bytesPerEndpoint']} B/endpoint + {s['overheadBytes']} B/object")
        t.add_column("representation")
        for metric in METRICS:
            t.add_column(LABELS[metric], justify="right")
        for cell in (c for c in doc["cells"] if c["scenario"] == scenario):
            t.add_row(cell["representation"], *(human(cell["model"][m], _unit(m)) for m in METRICS))
            if cell["seed"]:
                t.add_row("  seed (P=20k, N=5k)", *(cell["seed"].get(m, {}).get("text", "-") for m in METRICS),
                          style="dim")
        console.print(t)


def render_bench(console: Console, doc: dict[str, Any]) -> None:
    s = doc["shape"]
    for scenario in SCENARIOS:
        results = [r for r in doc["results"] if r["scenario"] == scenario]
        if not results:
            continue
        t = Table(title=f"{scenario}: measured at P={s['pods']:,} with {s['watchers']} real watchers; "
                        f"model at {s['bytesPerEndpoint']} B/endpoint; seed's hand figure at P=20k, N=5k")
        for col, just in (("run", "left"), ("metric", "left"), ("model", "right"), ("measured", "right"),
                          ("ratio", "right"), ("seed", "right")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for r in results:
            if r["skipped"]:
                t.add_row(r["run"], "[yellow]skipped[/]", "", r["skipped"], "", "")
                t.add_section()
                continue
            if r["failure"]:
                t.add_row(r["run"], "[red]FAILED[/]", "", f"[red]{r['failure']['code']} "
                          f"{r['failure']['reason']}[/]: {r['failure']['message']}", "", "")
            for metric in METRICS:
                ratio_value = r["ratio"][metric]
                t.add_row(r["run"] if metric == "writes" else "", LABELS[metric],
                          human(r["model"][metric], _unit(metric)), human(r["measured"][metric], _unit(metric)),
                          "-" if ratio_value is None else f"{ratio_value:.2f}",
                          r["seed"].get(metric, {}).get("text", "-"))
            m = r["measured"]
            if m["endpoint_entry_bytes"]:
                t.add_row("", "bytes / endpoint", f"{s['bytesPerEndpoint']} B", f"{m['endpoint_entry_bytes']:.0f} B "
                          f"(+{m['object_overhead_bytes']:.0f} B/object)",
                          f"{m['endpoint_entry_bytes'] / s['bytesPerEndpoint']:.2f}", "100 B")
            pr = r["projected"]
            t.add_row("", f"projected to N={pr['nodes']:,}", "", f"{human(pr['total_events'])} events, "
                      f"{human(pr['total_bytes'], 'B')}", "", "", style="italic")
            if r["per_replaced_pod"]:
                p = r["per_replaced_pod"]
                t.add_row("", "per replaced pod", "1 write, 1 event", f"{p['writes']:.3f} writes, "
                          f"{p['events_per_watcher']:.3f} events/watcher", "", "1")
            t.add_section()
        console.print(t)
    t = Table(title="latency and CPU (measured)")
    for col in ("scenario", "run", "p50 (s, bucket bound)", "p99 (s, bucket bound)", "API server CPU s",
                "controller CPU s", "workloads CPU s", "object mean bytes", "objects", "wall s"):
        t.add_column(col, justify="left" if col in ("scenario", "run") else "right")
    for r in doc["results"]:
        if r["skipped"]:
            continue
        m = r["measured"]
        t.add_row(r["scenario"], r["run"], human(m["latency_p50_seconds"]), human(m["latency_p99_seconds"]),
                  f"{m['cpu_seconds_apiserver']:.2f}", f"{m['cpu_seconds_controller_manager']:.2f}",
                  f"{m['cpu_seconds_workloads']:.2f}",
                  human(m["object_mean_bytes"], "B"), str(m["objects"]), f"{m['seconds']:.1f}")
    console.print(t)


def _md_row(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    align = ["---" if i < 2 else "---:" for i in range(len(header))]
    return [_md_row(header), _md_row(align), *(_md_row(r) for r in rows)]


def _seconds(v: float | None) -> str:
    return "-" if v is None else ("> 300" if v == float("inf") else f"{v:g}")


def markdown(doc: dict[str, Any]) -> str:
    """One bench document as Markdown tables (for a results page): measured beside model and seed."""
    s = doc["shape"]
    n = s["projectNodes"]
    out = [f"P={s['pods']:,}, {s['watchers']} real watchers ({s['fullWatchers']} full), "
           f"projected to N={n:,}; model at {s['bytesPerEndpoint']} B/endpoint.", ""]
    rows = []
    for r in doc["results"]:
        if r["skipped"]:
            rows.append([r["scenario"], r["run"], "skipped: " + r["skipped"], *[""] * 8])
            continue
        m, pr = r["measured"], r["projected"]
        seed = r["seed"].get("total_bytes", {}).get("text", "-")
        writes = f"{m['writes']:,}"
        events = f"{m['events_per_watcher']:,.0f}"
        if r["per_replaced_pod"]:
            p = r["per_replaced_pod"]
            writes += f" ({p['writes']:.3f}/pod)"
            events += f" ({p['events_per_watcher']:.3f}/pod)"
        if r["failure"]:
            writes += f" **{r['failure']['code']} {r['failure']['reason']}**"
        rows.append([r["scenario"], r["run"], writes, events, human(m["object_max_bytes"], "B"),
                     f"{m['endpoint_entry_bytes']:.0f} + {m['object_overhead_bytes']:.0f}",
                     human(m["bytes_per_watcher"], "B"), human(pr["total_bytes"], "B"), seed,
                     f"{_seconds(m['latency_p50_seconds'])} / {_seconds(m['latency_p99_seconds'])}",
                     f"{m['cpu_seconds_apiserver']:.1f} / {m['cpu_seconds_controller_manager']:.1f} / "
                     f"{m.get('cpu_seconds_workloads', 0.0):.1f}"])
    out += _md_table(["scenario", "run", "writes", "events / watcher", "object max",
                      "B/endpoint + B/object", "bytes / watcher", f"projected total bytes, N={n:,}",
                      "seed's total bytes (P=20k, N=5k)", "latency p50 / p99 s",
                      "CPU s: API server / controller / workloads"], rows)
    out += ["", "Measured / model (model at the run's own P and N = watchers):", ""]
    out += _md_table(["scenario", "run", *(LABELS[k] for k in METRICS if k != "watchers")],
                     [[r["scenario"], r["run"], *("-" if r["ratio"][k] is None else f"{r['ratio'][k]:.3g}"
                                                  for k in METRICS if k != "watchers")]
                      for r in doc["results"] if not r["skipped"]])
    return "\n".join(out) + "\n"


def sweep_markdown(sweep: dict[str, Any]) -> str:
    """A sweep as Markdown: bytes per watcher by P for every scenario and run, and the fitted k."""
    pods = sweep["pods"]
    out: list[str] = []
    for scenario in SCENARIOS:
        series = sweep_series(sweep["sweep"], scenario)
        if not series:
            continue
        rows = []
        for run, points in series.items():
            by_p = dict(points)
            k = sweep["growth"].get(scenario, {}).get(run)
            rows.append(["", run, *(human(by_p[p], "B") if p in by_p else "-" for p in pods),
                         "-" if k is None else f"{k:g}"])
        rows[0][0] = scenario
        out += [*_md_table(["scenario", "run", *(f"P={p:,}" for p in pods), "k (bytes ~ P^k)"], rows), ""]
    return "\n".join(out)


def plot(doc: dict[str, Any], path: Path) -> None:
    """Bytes per watcher for each scenario and run (measured bars, model markers), log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in doc["results"] if not r["skipped"]]
    runs = list(dict.fromkeys(r["run"] for r in results))
    scenarios = [s for s in SCENARIOS if any(r["scenario"] == s for r in results)]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        xs, measured, model = [], [], []
        for j, scenario in enumerate(scenarios):
            r = next((r for r in results if r["run"] == run and r["scenario"] == scenario), None)
            if r is None:
                continue
            xs.append(j + (i - (len(runs) - 1) / 2) * width)
            measured.append(max(1.0, r["measured"]["bytes_per_watcher"]))
            model.append(max(1.0, r["model"]["total_bytes"] / max(1, r["model"]["watchers"])))
        ax.bar(xs, measured, width * 0.95, label=f"{run} (measured)")
        ax.scatter(xs, model, marker="_", s=400, color="black",
                   linewidths=2, zorder=3)
    ax.set_yscale("log")
    ax.set_xticks(range(len(scenarios)), scenarios)
    ax.set_ylabel("bytes per watcher (log)")
    s = doc["shape"]
    ax.set_title(f"Bytes per watcher, P={s['pods']:,}, {s['watchers']} real watchers "
                 f"(bars: measured; dashes: model at {s['bytesPerEndpoint']} B/endpoint)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_document(docs: list[dict[str, Any]], command: str) -> dict[str, Any]:
    """`--sweep --json`: one bench document per P, in order, and how each cost grew with P."""
    growth = {scenario: {run: growth_exponent(points) for run, points in sweep_series(docs, scenario).items()}
              for scenario in SCENARIOS}
    return {"schemaVersion": SCHEMA_VERSION, "command": command, "machine": machine(),
            "pods": [d["shape"]["pods"] for d in docs], "growth": growth, "sweep": docs}


def growth_exponent(points: list[tuple[int, float]]) -> float | None:
    """k in cost ~ P^k: the least-squares slope of log(cost) on log(P); None under two distinct P."""
    pts = [(math.log(p), math.log(c)) for p, c in points if p > 0 and c > 0]
    if len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    return round(sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts), 2)


def sweep_series(docs: list[dict[str, Any]], scenario: str) -> dict[str, list[tuple[int, float]]]:
    """run -> [(P, bytes per watcher)] for one scenario, measured runs only."""
    out: dict[str, list[tuple[int, float]]] = {}
    for d in docs:
        for r in d["results"]:
            if r["scenario"] == scenario and not r["skipped"] and not r["failure"]:
                out.setdefault(r["run"], []).append((d["shape"]["pods"], r["measured"]["bytes_per_watcher"]))
    return out


def plot_sweep(docs: list[dict[str, Any]], path: Path) -> None:
    """How bytes per watcher grow with P, per scenario (log-log), with each run's fitted exponent:
    the seed's O(P²N) for Endpoints' rolling update against O(PN) for slices shows as k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = [s for s in SCENARIOS if any(sweep_series(docs, s).values())]
    # One colour per run in every panel: the default cycle would shift when a run sits out a scenario.
    runs = list(dict.fromkeys(r["run"] for d in docs for r in d["runs"]))
    colour = {run: f"C{i % 10}" for i, run in enumerate(runs)}
    fig, axes = plt.subplots(1, max(1, len(scenarios)), figsize=(5 * max(1, len(scenarios)), 4.5), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios, strict=False):
        for run, points in sweep_series(docs, scenario).items():
            xs, ys = zip(*sorted(points), strict=True)
            k = growth_exponent(points)
            ax.plot(xs, [max(1.0, y) for y in ys], marker="o", color=colour.get(run),
                    label=run + ("" if k is None else f" (~P^{k:g})"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("P (pods)")
        ax.set_ylabel("bytes per watcher")
        ax.set_title(scenario)
        ax.legend(fontsize=7)
    fig.suptitle("Measured bytes per watcher as P grows (multiply by N for the total)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
