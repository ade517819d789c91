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
    # (shape, representation, scenario, writes, object bytes (max), bytes per watcher)
    # P not a multiple of B: the last slice is partial (2 x 100 + 50 endpoints, 3 overheads);
    # a slice never holds more than P
    (Shape(pods=250, nodes=4, bytes_per_endpoint=200, overhead_bytes=500), SLICES_100, "create", 3, 20_500,
     51_500),
    (Shape(pods=250, nodes=4, bytes_per_endpoint=200, overhead_bytes=500), SLICES_100, "rolling", 250, 20_500,
     5_125_000),
    (Shape(pods=50, nodes=4, bytes_per_endpoint=200, overhead_bytes=500), SLICES_100, "update", 1, 10_500, 10_500),
    (Shape(pods=50, nodes=4, bytes_per_endpoint=200, overhead_bytes=500), ENDPOINTS, "update", 1, 10_500, 10_500),
    (Shape(pods=50, nodes=4, bytes_per_endpoint=200, overhead_bytes=500), ENDPOINTS, "create", 1, 10_500, 10_500),
    (Shape(pods=7, nodes=2), SLICES_1, "create", 7, 100, 700),
]


@pytest.mark.parametrize(("shape", "rep", "scenario", "writes", "size", "per_watcher"), SHAPES,
                         ids=["partial-slice-create", "partial-slice-rolling", "small-service", "endpoints-small",
                              "endpoints-create", "one-per-slice"])
def test_model_other_shapes(shape: Shape, rep: Representation, scenario: str, writes: int, size: int,
                            per_watcher: int) -> None:
    c = predict(shape, scenario, rep)  # type: ignore[arg-type]
    assert (c.writes, c.object_bytes, c.bytes_per_watcher) == (writes, size, per_watcher)
    assert c.total_bytes == per_watcher * shape.nodes


@pytest.mark.parametrize("kwargs", [{"pods": 0, "nodes": 1}, {"pods": 1, "nodes": 0},
                                    {"pods": 1, "nodes": 1, "bytes_per_endpoint": 0},
                                    {"pods": 1, "nodes": 1, "overhead_bytes": -1}], ids=str)
def test_bad_shape(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Shape(**kwargs)


def test_seed_failure_point() -> None:
    # 1.5 MB at the seed's 100 bytes per endpoint: about the seed's O(5000)... times three
    assert failing_pods(1536 * 1024, SEED_SHAPE) == 15729


@pytest.mark.parametrize("text", ["slices-0", "slices", "endpoint", "slices-1001"], ids=str)
def test_bad_representation(text: str) -> None:
    with pytest.raises(ValueError):
        Representation.parse(text)


GROWTH_CASES = [
    ("linear", [(500, 5e4), (1000, 1e5), (2000, 2e5)], 1.0),
    ("quadratic", [(500, 2.5e5), (1000, 1e6), (5000, 2.5e7)], 2.0),
    ("flat", [(500, 300.0), (20000, 300.0)], 0.0),
    ("one-point", [(500, 10.0)], None),
    ("same-p-twice", [(500, 10.0), (500, 20.0)], None),
    ("zero-cost-dropped", [(500, 0.0), (1000, 10.0)], None),
]


@pytest.mark.parametrize(("points", "want"), [c[1:] for c in GROWTH_CASES], ids=[c[0] for c in GROWTH_CASES])
def test_growth_exponent(points: list[tuple[int, float]], want: float | None) -> None:
    from sliceplane.bench.report import growth_exponent

    assert growth_exponent(points) == want


def test_latency_from_two_agents_expositions() -> None:
    """The bench sums the agents' histograms and reads percentiles as bucket upper bounds; a
    rollout's minute-long samples land in whole-second (then 5 s, 30 s) buckets, not +Inf."""
    from prometheus_client import CollectorRegistry, generate_latest

    from sliceplane.agent.metrics import AgentMetrics, AgentsCollector
    from sliceplane.bench.runner import bucket_percentile, latency_buckets

    a, b = AgentMetrics("node-0"), AgentMetrics("node-1")
    for v in (0.3, 0.7, 1.5, 42.2):
        a.observe_latency(v)
    for v in (44.9, 97.0, 250.0, 900.0):
        b.observe_latency(v)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentsCollector(lambda: [a, b]))
    counts = latency_buckets(generate_latest(registry).decode())
    assert sum(counts) == 8
    assert [bucket_percentile(counts, q) for q in (0.25, 0.5, 0.75, 0.875, 1.0)] == [1.0, 43.0, 100.0, 270.0,
                                                                                      float("inf")]
    assert bucket_percentile([0] * len(counts), 0.5) is None


def test_endpoint_bytes_of_slices_and_endpoints() -> None:
    """Per-endpoint bytes and per-object overhead, as the compact JSON stores them."""
    import msgspec

    from sliceplane.bench.runner import endpoint_bytes

    e1 = {"addresses": ["10.0.0.1"], "conditions": {"ready": True}}
    e2 = {"addresses": ["10.0.0.22"], "conditions": {"ready": False}}
    sl = {"metadata": {"name": "a"}, "endpoints": [e1, e2]}
    per, over = endpoint_bytes(Representation("slices", 100), [sl])
    entries = len(msgspec.json.encode(e1)) + len(msgspec.json.encode(e2)) + 2
    assert per == entries / 2
    assert over == len(msgspec.json.encode(sl)) - entries
    ep = {"metadata": {"name": "a"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}],
                                                  "notReadyAddresses": [{"ip": "10.0.0.2"}]}]}
    per, over = endpoint_bytes(Representation("endpoints"), [ep])
    assert per == len(b'{"ip":"10.0.0.1"}') + 1
    assert over == len(msgspec.json.encode(ep)) - 2 * per
    assert endpoint_bytes(Representation("endpoints"), []) == (0.0, 0.0)


@pytest.mark.parametrize(("text", "want"), [("25%", "25%"), ("1", 1), (" 0 ", 0), ("100%", "100%"),
                                            ("x", None), ("1.5", None), ("%", None), ("-1", None)])
def test_rollout_bounds(text: str, want: int | str | None) -> None:
    from sliceplane.bench.scenarios import deployment, int_or_percent

    if want is None:
        with pytest.raises(ValueError, match="a number of pods or a percentage"):
            int_or_percent(text)
        return
    assert int_or_percent(text) == want
    strategy = deployment(10, want, 0)["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": want, "maxUnavailable": 0}}


@pytest.mark.parametrize(("surge", "unavailable", "want"), [
    ("1", "0", (1, 0)),
    ("25%", "25%", ("25%", "25%")),
    ("200%", "0", ("200%", 0)),  # a surge may exceed 100%
    ("0", "100%", (0, "100%")),
    ("0", "150%", "maxUnavailable must not be greater than 100%"),
    ("0", "0%", "may not both be 0"),
    ("0%", "0", "may not both be 0"),
    ("x", "0", "a number of pods or a percentage"),
])
def test_rollout_bounds_together(surge: str, unavailable: str, want: tuple[int | str, int | str] | str) -> None:
    from sliceplane.bench.scenarios import rollout_bounds

    if isinstance(want, str):
        with pytest.raises(ValueError, match=want):
            rollout_bounds(surge, unavailable)
        return
    assert rollout_bounds(surge, unavailable) == want


@pytest.mark.parametrize(("object_limit", "request_limit"), [(64 * 1024, 3 << 20), (1536 * 1024, 3 << 20),
                                                             (1 << 30, 1 << 30)])
def test_raised_object_limit_raises_the_request_limit(object_limit: int, request_limit: int) -> None:
    """An Endpoints object of 20,000 addresses (~3.4 MB) is one request: a run that raises the
    object limit must raise Kubernetes' 3 MiB request limit with it, or it measures the wrong 413."""
    from sliceplane.bench.runner import RunSpec

    assert RunSpec(ENDPOINTS, object_limit).max_request_bytes == request_limit
