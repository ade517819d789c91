"""The seed's cost model reproduces every cell of the seed's table at P=20,000, N=5,000."""

from __future__ import annotations

import pytest

from sliceplane.bench.model import (
    ENDPOINTS,
    METRICS,
    SEED_FIGURES,
    SEED_SHAPE,
    SLICES_1,
    SLICES_100,
    Representation,
    Shape,
    agrees_with_seed,
    failing_pods,
    predict,
)

CELLS = [(sc, rep, m) for (sc, rep) in SEED_FIGURES for m in METRICS]


@pytest.mark.parametrize(("scenario", "rep", "metric"), CELLS, ids=[f"{s}-{r}-{m}" for s, r, m in CELLS])
def test_model_reproduces_seed_cell(scenario: str, rep: str, metric: str) -> None:
    figure = SEED_FIGURES[(scenario, rep)][metric]
    predicted = predict(SEED_SHAPE, scenario, Representation.parse(rep)).as_dict()[metric]  # type: ignore[arg-type]
    assert agrees_with_seed(predicted, figure), (predicted, figure)


EXACT = [
    # (scenario, representation, writes, events per watcher, total events, total bytes)
    ("create", ENDPOINTS, 1, 1, 5000, 10_000_000_000),
    ("create", SLICES_100, 200, 200, 1_000_000, 10_000_000_000),
    ("create", SLICES_1, 20000, 20000, 100_000_000, 10_000_000_000),
    ("update", ENDPOINTS, 1, 1, 5000, 10_000_000_000),
    ("update", SLICES_100, 1, 1, 5000, 50_000_000),
    ("update", SLICES_1, 1, 1, 5000, 500_000),
    ("rolling", ENDPOINTS, 20000, 20000, 100_000_000, 200_000_000_000_000),
    ("rolling", SLICES_100, 20000, 20000, 100_000_000, 1_000_000_000_000),
    ("rolling", SLICES_1, 20000, 20000, 100_000_000, 10_000_000_000),
]


@pytest.mark.parametrize(("scenario", "rep", "writes", "events", "total_events", "total_bytes"), EXACT,
                         ids=[f"{e[0]}-{e[1].name}" for e in EXACT])
def test_model_values_at_seed_shape(scenario: str, rep: Representation, writes: int, events: int,
                                    total_events: int, total_bytes: int) -> None:
    c = predict(SEED_SHAPE, scenario, rep)  # type: ignore[arg-type]
    assert (c.writes, c.events_per_watcher, c.watchers, c.total_events, c.total_bytes) == (
        writes, events, 5000, total_events, total_bytes)


SHAPES = [
    # P not a multiple of B: the last slice is partial; a slice never holds more than P
    (Shape(pods=250, nodes=4, bytes_per_endpoint=200, overhead_bytes=500), SLICES_100, "create", 3, 20_500),
    (Shape(pods=50, nodes=4, bytes_per_endpoint=200, overhead_bytes=500), SLICES_100, "update", 1, 10_500),
    (Shape(pods=50, nodes=4, bytes_per_endpoint=200, overhead_bytes=500), ENDPOINTS, "update", 1, 10_500),
    (Shape(pods=7, nodes=2), SLICES_1, "create", 7, 100),
]


@pytest.mark.parametrize(("shape", "rep", "scenario", "writes", "size"), SHAPES,
                         ids=["partial-slice", "small-service", "endpoints-small", "one-per-slice"])
def test_model_other_shapes(shape: Shape, rep: Representation, scenario: str, writes: int, size: int) -> None:
    c = predict(shape, scenario, rep)  # type: ignore[arg-type]
    assert (c.writes, c.object_bytes, c.bytes_per_watcher) == (writes, size, writes * size)


def test_seed_failure_point() -> None:
    # 1.5 MB at the seed's 100 bytes per endpoint: about the seed's O(5000)... times three
    assert failing_pods(1536 * 1024, SEED_SHAPE) == 15729


@pytest.mark.parametrize("text", ["slices-0", "slices", "endpoint", "slices-1001"], ids=str)
def test_bad_representation(text: str) -> None:
    with pytest.raises(ValueError):
        Representation.parse(text)
