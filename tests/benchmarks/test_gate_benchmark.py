"""`python -m benchmarks.gate` runs and reports both gates; no figure is asserted but the exact
test's guarantee (an equal candidate is published at most 5% of the time, here with room)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks import gate


def test_the_gate_benchmark_reports_both_gates(tmp_path: Path, capsys) -> None:
    out = tmp_path / "gate.json"
    assert gate.main(["--runs", "40", "--json", str(out)]) == 0
    assert "worse candidates published by 'surely better'" in capsys.readouterr().out
    figures = json.loads(out.read_text())["figures"]
    assert "n40_d-0.10_surely" in figures and "n40_d-0.10_not_worse" in figures


def test_an_equal_candidate_is_rarely_published_by_surely_better() -> None:
    _, surely = gate.simulate(40, 0.0, 400, 0.7, np.random.default_rng(1))
    assert surely.mean() <= 0.05
