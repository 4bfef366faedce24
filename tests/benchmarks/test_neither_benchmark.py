"""`benchmarks.neither --quick` runs end to end: every rule at one false-refusal rate, the rule
chosen on the choosing part, the served head's own threshold; no timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import neither

pytestmark = pytest.mark.slow


def test_the_quick_run_reports_every_rule(tmp_path: Path) -> None:
    out = tmp_path / "neither.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.neither", "--quick", "--json", str(out)],
        check=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        cwd=Path(__file__).resolve().parents[2],
    )
    result = json.loads(out.read_text())
    assert result["chosen"] in neither.RULES[1:]
    for run in result["runs"]:
        assert set(run) == {*neither.RULES, "served"}
        for rule in neither.RULES:
            assert run[rule]["choose_false"] <= neither.FALSE_REFUSALS + 1e-9
            assert 0.0 <= run[rule]["report_outliers"] <= 1.0
