"""Issue 6 acceptance: --endpointslice-updates-batch-period coalesces pod changes per Service.

Scaling a Deployment from 0 to 100 with a 1 s batch period writes fewer EndpointSlices than
with no batching; writes are read from the API server's store-write counter.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness import Kubectl, Up, free_port, ready_endpoints, slices_of, wait_for

pytestmark = pytest.mark.e2e

SAMPLE = re.compile(r'^sliceplane_store_writes_total\{([^}]*)\}\s+([0-9.eE+]+)$', re.M)


def slice_writes(up: Up) -> int:
    with urllib.request.urlopen(f"{up.url}/metrics", timeout=10) as r:
        text = r.read().decode()
    return int(sum(float(v) for labels, v in SAMPLE.findall(text) if 'resource="endpointslices' in labels))


def scale_up_writes(tmp: Path, batch_period: float) -> int:
    """Slice writes made while a Deployment goes from 0 to 100 ready pods."""
    up = Up(tmp / "data", free_port(), nodes=3, extra=["--endpointslice-updates-batch-period", str(batch_period)])
    up.start()
    try:
        k = Kubectl(up.kubeconfig)
        objs = [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"labels": {"app": "web"}},
                                   "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
             "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        ]
        k.run("apply", "-f", "-", input=yaml.safe_dump_all(objs))
        wait_for(lambda: slices_of(k, "web"), 30, what="placeholder slice")
        before = slice_writes(up)
        k.run("scale", "deployment", "web", "--replicas=100")
        wait_for(lambda: len(ready_endpoints(slices_of(k, "web"))) == 100, 120, what="100 ready endpoints")
        # Let the last batch land: the count is stable once nothing more is pending.
        wait_for(lambda: slice_writes(up) == slice_writes(up) and len(ready_endpoints(slices_of(k, "web"))) == 100,
                 10, interval=1.5)
        return slice_writes(up) - before
    finally:
        code = up.stop()
        assert code == 0, f"sliceplane up exited with {code}:\n{up.logs()}"


def test_batching_makes_fewer_slice_writes(tmp_path: Path) -> None:
    unbatched = scale_up_writes(tmp_path / "unbatched", 0.0)
    batched = scale_up_writes(tmp_path / "batched", 1.0)
    print(f"slice writes scaling 0 -> 100: batch period 0 s: {unbatched}, 1 s: {batched}")
    assert 0 < batched < unbatched
