"""`python -m benchmarks.servers --quick`: a few dozen servers' heads are built and published,
each condition is served in a fresh process, and the report has every figure and outcome the
RESULTS.md section takes (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import servers


def test_zipf_plan_has_a_few_busy_servers_and_a_long_tail() -> None:
    plan = servers.zipf_plan(1000, 5000, 1.1, seed=3)
    assert len(plan) == 5000 and min(plan) >= 0 and max(plan) < 1000
    counts = np.sort(np.bincount(plan, minlength=1000))[::-1]
    assert counts[0] > 0.1 * 5000  # the busiest server: rank 1's share is 1/H(1000, 1.1)
    assert (counts == 0).sum() > 200  # many quiet servers are not asked at all
    assert servers.zipf_plan(1000, 50, 1.1, seed=3) == servers.zipf_plan(1000, 50, 1.1, seed=3)


def test_server_labels_differ_between_servers_and_keep_both_classes() -> None:
    labels = np.arange(40) % 2
    rng = np.random.default_rng(0)
    own = [servers.server_labels(rng, labels) for _ in range(20)]
    assert all(np.bincount(o, minlength=2).min() >= 2 for o in own)
    assert len({o.tobytes() for o in own}) == 20


@pytest.mark.slow
def test_quick_run_serves_every_condition(tmp_path: Path) -> None:
    out = tmp_path / "servers.json"
    assert servers.main(["--quick", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    figures = report["figures"]
    assert figures["fit_ms"]["n"] == 30 and figures["disk_kb"]["n"] == 30
    for name in ("shared", "heads", "heads_small"):
        assert figures[f"{name}_latency_ms"]["n"] == 240
        assert figures[f"{name}_hwm_mb"]["value"] >= figures[f"{name}_rss_ready_mb"]["value"] > 0
    assert figures["shared_loads"]["value"] == 0 and figures["heads_loads"]["value"] > 0
    assert figures["heads_cold_ms"]["n"] == figures["heads_warm_ms"]["n"] == 5
    assert all(check["ok"] for check in report["checks"])
    names = [outcome["name"] for outcome in report["outcomes"]]
    assert names[-1] == "median latency, heads / shared"
    assert {"disk per server model, largest", "peak RSS, heads"} <= set(names)
    targets = {o["name"]: o["met"] for o in report["outcomes"] if o["target"] is not None}
    assert set(targets.values()) <= {True, False}
