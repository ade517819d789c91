"""The seed's cost model: what distributing one Service's endpoints costs, by hand, as a pure function.

The seed (the talk behind KEP-0752) costs three scenarios (create, update, rolling) for three
representations (one legacy Endpoints object, EndpointSlices of B, one endpoint per slice) in
writes, watch events per watcher, object size, watchers, total watch events and total bytes, at
P=20,000 endpoints and N=5,000 nodes. `predict` gives every cell of that table for any shape;
`SEED_FIGURES` holds the seed's own hand figures so a report can put them beside a measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

ScenarioName = Literal["create", "update", "rolling"]
SCENARIOS: tuple[ScenarioName, ...] = ("create", "update", "rolling")
# The seed's "const": bytes one endpoint adds to an object ("20k * const = ~2.0 MB").
SEED_BYTES_PER_ENDPOINT = 100
SEED_PODS = 20_000
SEED_NODES = 5_000
# The cells of the seed's table, in its order.
METRICS = ("writes", "events_per_watcher", "object_bytes", "watchers", "total_events", "total_bytes")


@dataclass(frozen=True)
class Shape:
    """A cluster shape: P endpoints behind the Service, N nodes (one watcher each), object costs."""

    pods: int
    nodes: int
    bytes_per_endpoint: int = SEED_BYTES_PER_ENDPOINT
    overhead_bytes: int = 0  # per object: metadata, ports, labels

    def __post_init__(self) -> None:
        if self.pods < 1 or self.nodes < 1:
            raise ValueError("pods and nodes must be at least 1")
        if self.bytes_per_endpoint < 1 or self.overhead_bytes < 0:
            raise ValueError("bytes per endpoint must be at least 1, and overhead bytes at least 0")


@dataclass(frozen=True)
class Representation:
    """How a Service's endpoints are stored: `endpoints` (one object) or `slices` of at most B."""

    kind: Literal["endpoints", "slices"]
    max_per_slice: int = 0  # B; unused for endpoints

    @property
    def name(self) -> str:
        return "endpoints" if self.kind == "endpoints" else f"slices-{self.max_per_slice}"

    @staticmethod
    def parse(text: str) -> Representation:
        """`endpoints`, `slices-100`, `slices-1`, ..."""
        if text == "endpoints":
            return Representation("endpoints")
        kind, _, b = text.partition("-")
        if kind != "slices" or not b.isdigit() or not 1 <= int(b) <= 1000:
            raise ValueError(f"representation must be endpoints or slices-B (1 <= B <= 1000), not {text!r}")
        return Representation("slices", int(b))


ENDPOINTS = Representation("endpoints")
SLICES_100 = Representation("slices", 100)
SLICES_1 = Representation("slices", 1)
SEED_REPRESENTATIONS = (ENDPOINTS, SLICES_100, SLICES_1)


@dataclass(frozen=True)
class Costs:
    """One column of the seed's table. Bytes are per object / in total over every watcher."""

    writes: float
    events_per_watcher: float
    object_bytes: float
    watchers: float
    total_events: float
    total_bytes: float

    @property
    def bytes_per_watcher(self) -> float:
        return self.total_bytes / self.watchers if self.watchers else 0.0

    def as_dict(self) -> dict[str, float]:
        return {m: getattr(self, m) for m in METRICS}


def endpoints_per_object(shape: Shape, rep: Representation) -> int:
    """Endpoints in the object a watch event carries (a full slice; the whole Endpoints object)."""
    return shape.pods if rep.kind == "endpoints" else min(rep.max_per_slice, shape.pods)


def object_bytes(shape: Shape, rep: Representation) -> int:
    return shape.overhead_bytes + shape.bytes_per_endpoint * endpoints_per_object(shape, rep)


def writes(shape: Shape, scenario: ScenarioName, rep: Representation) -> int:
    """The seed's write counts: creation writes every object once, an update one object, and a
    rolling update one write per replaced pod (a real rollout makes more: see the bench)."""
    if scenario == "create":
        return 1 if rep.kind == "endpoints" else math.ceil(shape.pods / rep.max_per_slice)
    if scenario == "update":
        return 1
    if scenario == "rolling":
        return shape.pods
    raise ValueError(f"unknown scenario {scenario!r}")


def predict(shape: Shape, scenario: ScenarioName, rep: Representation) -> Costs:
    """Every cell of the seed's table for one scenario and representation.

    Each write is one watch event to each of the N watchers, and each event carries the whole
    object it changed. Creation sends every object once: when B does not divide P the last slice
    is partial, so the bytes are P endpoints and one overhead per object, not writes x a full
    slice (the two agree at the seed's shape).
    """
    w = writes(shape, scenario, rep)
    size = object_bytes(shape, rep)
    per_watcher = w * size
    if scenario == "create":
        per_watcher = w * shape.overhead_bytes + shape.pods * shape.bytes_per_endpoint
    return Costs(writes=w, events_per_watcher=w, object_bytes=size, watchers=shape.nodes,
                 total_events=w * shape.nodes, total_bytes=per_watcher * shape.nodes)


def failing_pods(max_object_bytes: int, shape: Shape) -> int:
    """The smallest P whose Endpoints object no longer fits under `max_object_bytes` (the seed's 💥)."""
    return (max_object_bytes - shape.overhead_bytes) // shape.bytes_per_endpoint + 1


# --- the seed's own figures ---------------------------------------------------------------------

FigureKind = Literal["exact", "approx", "upper"]


@dataclass(frozen=True)
class SeedFigure:
    """One cell as the seed wrote it: `value` in plain units, `text` as printed, and whether it
    is an exact count, an approximation ("~") or a bound ("< ~1KB" and what was derived from it)."""

    value: float
    text: str
    kind: FigureKind = "exact"


def _f(value: float, text: str, kind: FigureKind = "exact") -> SeedFigure:
    return SeedFigure(float(value), text, kind)


_SIZES = {"endpoints": _f(2.0e6, "~2.0 MB", "approx"), "slices-100": _f(1e4, "~10 KB", "approx"),
          "slices-1": _f(1e3, "< ~1KB", "upper")}
_N = _f(5000, "5000")


def _column(writes: SeedFigure, rep: str, total_events: SeedFigure, total_bytes: SeedFigure) -> dict[str, SeedFigure]:
    return {"writes": writes, "events_per_watcher": writes, "object_bytes": _SIZES[rep], "watchers": _N,
            "total_events": total_events, "total_bytes": total_bytes}


# (scenario, representation name) -> metric -> figure, at P=20,000, N=5,000, B=100 / 1.
SEED_FIGURES: dict[tuple[str, str], dict[str, SeedFigure]] = {
    ("update", "endpoints"): _column(_f(1, "1"), "endpoints", _f(5000, "5000"),
                                     _f(10e9, "~2.0MB * 5000 = 10GB", "approx")),
    ("update", "slices-100"): _column(_f(1, "1"), "slices-100", _f(5000, "5000"),
                                      _f(50e6, "~10k * 5000 = 50MB", "approx")),
    ("update", "slices-1"): _column(_f(1, "1"), "slices-1", _f(5000, "5000"),
                                    _f(5e6, "~1KB * 5000 = ~5MB", "upper")),
    ("rolling", "endpoints"): _column(_f(20000, "20k"), "endpoints", _f(100e6, "5000 * 20k"),
                                      _f(200e12, "2.0MB * 5000 * 20k = 200 TB", "approx")),
    ("rolling", "slices-100"): _column(_f(20000, "20k"), "slices-100", _f(100e6, "5000 * 20k"),
                                       _f(1e12, "10KB * 5000 * 20k = 1 TB", "approx")),
    ("rolling", "slices-1"): _column(_f(20000, "20k"), "slices-1", _f(100e6, "5000 * 20k"),
                                     _f(100e9, "~1KB * 5000 * 20k = ~100 GB", "upper")),
    ("create", "endpoints"): _column(_f(1, "1"), "endpoints", _f(5000, "5000"),
                                     _f(10e9, "2.0MB * 5000 = 10GB", "approx")),
    ("create", "slices-100"): _column(_f(200, "200"), "slices-100", _f(1e6, "5000 * 200 = 1,000,000"),
                                      _f(10e9, "10KB * 5000 * 200 = 10GB", "approx")),
    ("create", "slices-1"): _column(_f(20000, "20000"), "slices-1", _f(100e6, "5000 * 20000 = 100,000,000"),
                                    _f(10e9, "~10GB", "approx")),
}
SEED_SHAPE = Shape(pods=SEED_PODS, nodes=SEED_NODES)


def seed_figure(scenario: str, rep: Representation, metric: str) -> SeedFigure | None:
    """The seed's figure for a cell, when the seed costed that representation."""
    return SEED_FIGURES.get((scenario, rep.name), {}).get(metric)


def agrees_with_seed(predicted: float, figure: SeedFigure, tolerance: float = 0.05) -> bool:
    """Whether a predicted value matches a seed figure of its kind (bounds: not above it)."""
    if figure.kind == "exact":
        return predicted == figure.value
    if figure.kind == "upper":
        return predicted <= figure.value * (1 + tolerance)
    return abs(predicted - figure.value) <= tolerance * figure.value
