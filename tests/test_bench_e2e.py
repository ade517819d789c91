"""A small real bench run: exact write and event counts measured on real processes.

P=200 pods, 4 agents (2 full, 2 counting). Service creation with B=100 makes ceil(P/100) slice
writes and every watcher receives ceil(P/100) events; a single readiness flip makes one write and
one event per watcher, for every representation; an Endpoints object over the API server's size
limit (500 pods at 64 KiB) is recorded as a 413 failure, not a crash.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from sliceplane.bench.model import Representation, Shape
from sliceplane.bench.report import bench_document
from sliceplane.bench.runner import RunSpec, run_one

PODS = 200
WATCHERS = 4

pytestmark = pytest.mark.timeout(300)


def _quiet(_phase: str, _done: int, _total: int) -> None:
    pass


@pytest.fixture(scope="module")
def slices_100(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    import asyncio

    spec = RunSpec(Representation("slices", 100), scenarios=("create", "update"))
    ms = asyncio.run(run_one(spec, PODS, WATCHERS, 2, tmp_path_factory.mktemp("s100"), _quiet, timeout=120))
    return {m.scenario: m for m in ms}


def test_create_with_b100_writes_and_events(slices_100: dict) -> None:
    m = slices_100["create"]
    want = math.ceil(PODS / 100)
    assert m.failure is None
    assert m.writes == want
    assert m.writes_by_operation == {"create": want}
    assert m.events_per_watcher == [want] * WATCHERS
    assert m.objects == want
    # every watcher read the same bytes: at least the two slices it was sent
    assert len(set(m.bytes_per_watcher)) == 1
    assert m.bytes_per_watcher[0] >= want * m.object_mean_bytes


def test_single_update_on_slices(slices_100: dict) -> None:
    m = slices_100["update"]
    assert (m.writes, m.events_per_watcher) == (1, [1] * WATCHERS)
    assert m.cpu_apiserver >= 0 and m.cpu_controller >= 0


@pytest.mark.parametrize(("rep", "limit"), [("endpoints", 1 << 30), ("slices-1", 1536 * 1024)],
                         ids=["endpoints", "slices-1"])
def test_single_update_other_representations(rep: str, limit: int, tmp_path: Path) -> None:
    import asyncio

    spec = RunSpec(Representation.parse(rep), limit, ("create", "update"))
    ms = {m.scenario: m for m in asyncio.run(run_one(spec, PODS, WATCHERS, 2, tmp_path, _quiet, timeout=120))}
    create, update = ms["create"], ms["update"]
    expected_create = 1 if rep == "endpoints" else PODS
    assert (create.writes, create.events_per_watcher) == (expected_create, [expected_create] * WATCHERS)
    assert (update.writes, update.events_per_watcher) == (1, [1] * WATCHERS)


def test_over_size_endpoints_is_a_413_record(tmp_path: Path) -> None:
    import asyncio

    # 500 addresses (about 170 bytes each) do not fit in the smallest limit the API server takes
    spec = RunSpec(Representation("endpoints"), 65_536, ("create", "update"))
    ms = asyncio.run(run_one(spec, 500, WATCHERS, 2, tmp_path, _quiet, timeout=120))
    create, update = ms
    assert create.failure is not None
    assert (create.failure["code"], create.failure["reason"]) == (413, "RequestEntityTooLarge")
    assert create.failure["refusedWrites"] >= 1
    assert (create.writes, create.objects, create.events_per_watcher) == (0, 0, [0] * WATCHERS)
    assert update.skipped
    assert create.failure["maxObjectBytes"] == 65_536
    doc = bench_document(ms, Shape(500, WATCHERS), 5000, watchers=WATCHERS, full_watchers=2, runs=[],
                         seconds=1.0, started_at="", command="test")
    assert doc["results"][0]["failure"]["code"] == 413
    json.dumps(doc)


def test_plan_command_json(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = subprocess.run([sys.executable, "-m", "sliceplane", "plan", "--pods", "20000", "--nodes", "5000",
                        "--json", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    cells = {(c["scenario"], c["representation"]): c for c in json.loads(out.read_text())["cells"]}
    assert cells[("create", "slices-100")]["model"]["writes"] == 200
    assert cells[("rolling", "endpoints")]["model"]["total_bytes"] == 200e12
    assert cells[("update", "slices-100")]["seed"]["total_bytes"]["text"] == "~10k * 5000 = 50MB"
    assert json.loads(out.read_text())["shape"] == {"pods": 20000, "nodes": 5000, "bytesPerEndpoint": 100,
                                                    "overheadBytes": 0}
    assert "model at P=20,000, N=5,000, 100 B/endpoint + 0 B/object" in " ".join(r.stdout.split())


BAD_INPUT = [
    ("plan-slice-size", ["plan", "--max-endpoints-per-slice", "0"],
     "Invalid value for '--max-endpoints-per-slice': must be between 1 and 1000, got 0"),
    ("up-agents-source", ["up", "--agents-source", "foo"],
     "Invalid value for '--agents-source': must be slices or endpoints, not 'foo'"),
    ("up-negative-delay", ["up", "--pod-ready-delay", "-1"], "Invalid value for '--pod-ready-delay'"),
    ("up-node-grace-negative", ["up", "--node-monitor-grace-period", "-5"],
     "Invalid value for '--node-monitor-grace-period': must be a positive number of seconds, got -5.0"),
    ("plan-negative-bytes", ["plan", "--bytes-per-endpoint", "-100"], "'--bytes-per-endpoint'"),
    ("plan-past-int32", ["plan", "--pods", "99999999999999999999"], "less than or equal to 2147483647"),
    ("plan-json-dir-missing", ["plan", "--json", "/nonexistent/x.json"], "directory /nonexistent does not exist"),
    ("representation", ["bench", "--representations", "slices,pods"], "takes endpoints and/or slices"),
    ("pods-and-sweep", ["bench", "--pods", "5", "--sweep", "10,20"], "either --pods or --sweep"),
    ("sweep-zero", ["bench", "--sweep", "10,0"], "every pod count must be between 1"),
    ("sweep-words", ["bench", "--sweep", "10,x"], "comma-separated pod counts"),
    ("full-over-watchers", ["bench", "--full", "5", "--watchers", "2"], "5 full agents, but only 2 watchers"),
    ("timeout-nan", ["bench", "--timeout", "nan"], "positive number of seconds"),
    ("timeout-zero", ["bench", "--timeout", "0"], "positive number of seconds"),
    ("project-nodes", ["bench", "--project-nodes", "0"], "'--project-nodes'"),
    ("bytes-per-endpoint", ["bench", "--bytes-per-endpoint", "0"], "'--bytes-per-endpoint'"),
    ("raised-below-default", ["bench", "--raised-max-object-bytes", "100000"], "above the default limit"),
    ("unavailable-over-100", ["bench", "--rollout-max-unavailable", "150%"], "not be greater than 100%"),
    ("no-limited-scenario", ["bench", "--default-limit-scenarios", ","], "takes scenarios among"),
    ("batch-without-slices", ["bench", "--representations", "endpoints", "--batch-period", "1"],
     "--representations has none"),
    ("json-is-a-dir", ["bench", "--json", "/"], "/ is a directory"),
    ("json-in-proc", ["bench", "--json", "/proc/x.json"], "Invalid value for '--json': cannot create /proc/x.json"),
    ("plot-format", ["bench", "--plot", "out.txt"], "the plot's format comes from its suffix"),
    ("markdown-dir-missing", ["bench", "--markdown", "/nonexistent/a.md"], "directory /nonexistent does not exist"),
    ("work-dir-uncreatable", ["bench", "--work-dir", "/proc/x"], "Invalid value for '--work-dir': cannot create /proc/x"),
    # Click checks flags in command-line order: the flag under test comes before the missing kubeconfig.
    ("agent-metrics-port", ["agent", "--metrics-port", "-1", "--kubeconfig", "k", "--node", "n"],
     "Invalid value for '--metrics-port'"),
    ("agents-count", ["agents", "--count", "-1", "--kubeconfig", "k"], "Invalid value for '--count'"),
    ("nodes-count", ["nodes", "--count", "-1", "--kubeconfig", "k"], "Invalid value for '--count'"),
    ("agents-kubeconfig-missing", ["agents", "--kubeconfig", "/nonexistent/k"],
     "Invalid value for '--kubeconfig': /nonexistent/k does not exist"),
    ("agent-kubeconfig-not-one", ["agent", "--kubeconfig", "/etc/passwd", "--node", "n"],
     "Invalid value for '--kubeconfig': /etc/passwd: invalid kubeconfig:"),
    ("nodes-kubeconfig-dir", ["nodes", "--kubeconfig", "/"], "Invalid value for '--kubeconfig': / is a directory"),
    ("verify-kubeconfig-missing", ["verify", "--kubeconfig", "/nonexistent/k"], "/nonexistent/k does not exist"),
    ("table-kubeconfig-not-one", ["table", "--kubeconfig", "/etc/passwd", "--node", "n"], "invalid kubeconfig"),
    ("controller-manager-no-kubeconfig", ["controller-manager", "--kubeconfig", "/nonexistent/k"],
     "/nonexistent/k does not exist (and no --server was given)"),
    ("batch-period-nan", ["up", "--endpointslice-updates-batch-period", "nan"],
     "Invalid value for '--endpointslice-updates-batch-period'"),
    ("up-store-scheme", ["up", "--store", "postgres://x"], "Invalid value for '--store': unknown store URL"),
    ("up-store-relative", ["up", "--store", "sqlite://state.db"], "sqlite store URL needs an absolute path"),
    ("apiserver-etcd-empty", ["apiserver", "--store", "etcd://"], "etcd store URL needs at least one endpoint"),
    ("controller-manager-nothing", ["controller-manager"],
     "Invalid value for '--kubeconfig': give --kubeconfig, or the API server's URL with --server"),
    ("controller-manager-server-not-url", ["controller-manager", "--server", "notaurl"],
     "Invalid value for '--server': must be an http:// or https:// URL with a host, got 'notaurl'"),
    ("kubeconfig-server-bad-port", ["kubeconfig", "-o", "/tmp/x", "--server", "http://127.0.0.1:99999"],
     "Invalid value for '--server'"),
    ("node-monitor-grace-zero", ["controller-manager", "--node-monitor-grace-period", "0", "--kubeconfig", "k"],
     "Invalid value for '--node-monitor-grace-period': must be a positive number of seconds, got 0.0"),
    ("node-monitor-period-inf", ["controller-manager", "--node-monitor-period", "inf", "--kubeconfig", "k"],
     "Invalid value for '--node-monitor-period'"),
    ("node-lease-zero", ["nodes", "--node-lease-duration-seconds", "0", "--kubeconfig", "k"],
     "Invalid value for '--node-lease-duration-seconds'"),
]


@pytest.mark.parametrize(("args", "message"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_command_bad_input(args: list[str], message: str) -> None:
    """Bad flags are refused before any cluster starts, with a usage error (exit 2) that names the
    problem, never a traceback."""
    r = subprocess.run([sys.executable, "-m", "sliceplane", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in " ".join(r.stderr.split()), r.stderr  # rich wraps long messages
    assert "Traceback" not in r.stderr


def _children(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(c) for c in (task / "children").read_text().split()}
    return out


def test_sigterm_stops_the_cluster_and_keeps_finished_sweep_points(tmp_path: Path) -> None:
    """SIGTERM (a CI job's timeout, `kill`) stops the bench as Ctrl-C does: every role it started
    is gone, its temp dir is removed, and a sweep writes the points it finished."""
    import os
    import signal
    import time

    out, log = tmp_path / "sweep.json", tmp_path / "bench.log"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with log.open("w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "sliceplane", "bench", "--sweep", "20,40", "--watchers", "2",
                                 "--representations", "slices", "--max-endpoints-per-slice", "100",
                                 "--json", str(out)], stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, "TMPDIR": str(tmp)})
    try:
        deadline = time.monotonic() + 200
        while "P=20: finished" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        roles: set[int] = set()
        while len(roles) < 6 and time.monotonic() < deadline:  # P=40's cluster: its six roles
            roles = _children(proc.pid)
            time.sleep(0.2)
        assert len(roles) >= 6, log.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 143, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not [pid for pid in roles if Path(f"/proc/{pid}").exists()
                and "zombie" not in Path(f"/proc/{pid}/status").read_text()]
    assert list(tmp.iterdir()) == []
    text = log.read_text()
    assert "terminated at P=40" in text
    doc = json.loads(out.read_text())
    assert doc["pods"] == [20]
    assert doc["sweep"][0]["results"][0]["measured"]["writes"] == 1  # ceil(20/100) slices at creation


def test_batching_reports_fewer_rolling_writes(tmp_path: Path) -> None:
    """The bench runs a slice size with and without a batch period; a rollout batched over 1 s
    makes fewer slice writes and events per watcher than the unbatched one."""
    import asyncio

    counts = {}
    for period in (0.0, 1.0):
        spec = RunSpec(Representation("slices", 100), scenarios=("rolling",), batch_period=period)
        assert spec.label == ("slices-100@batch=1s" if period else "slices-100")
        ms = asyncio.run(run_one(spec, 100, WATCHERS, 1, tmp_path / spec.label, _quiet, timeout=120))
        rolling = next(m for m in ms if m.scenario == "rolling")
        counts[period] = (rolling.writes, rolling.events_per_watcher[0])
    assert counts[1.0][0] < counts[0.0][0], counts
    assert counts[1.0][1] < counts[0.0][1], counts


def test_bench_command_sweep_end_to_end(tmp_path: Path) -> None:
    """The CLI as a user runs it: a two-point sweep of slices of 10, JSON and plot written, the
    creation writes exact at each P, and the growth exponent fitted across P."""
    out, png, md = tmp_path / "sweep.json", tmp_path / "sweep.png", tmp_path / "sweep.md"
    r = subprocess.run([sys.executable, "-m", "sliceplane", "bench", "--sweep", "30,60", "--watchers", "2",
                        "--representations", "slices", "--max-endpoints-per-slice", "10", "--json", str(out),
                        "--plot", str(png), "--markdown", str(md), "--work-dir", str(tmp_path / "work")],
                       capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["pods"] == [30, 60]
    for d, p in zip(doc["sweep"], (30, 60), strict=True):
        assert [x["run"] for x in d["runs"]] == ["slices-10"]
        create = next(x for x in d["results"] if x["scenario"] == "create")
        assert create["measured"]["writes"] == p // 10
        assert create["measured"]["events_per_watcher_each"] == [p // 10, p // 10]
    # creation doubles its bytes when P doubles: k near 1
    assert 0.8 < doc["growth"]["create"]["slices-10"] < 1.2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "P=60: finished" in r.stdout
    page = md.read_text()
    k = doc["growth"]["create"]["slices-10"]
    assert "| create | slices-10 | " in page and f"| {k:g} |" in page  # bytes by P, and the fitted k
    assert "| create | slices-10 | 3 | 3 | " in page and "| create | slices-10 | 6 | 6 | " in page  # writes, events
