"""`benchmarks.asking --quick` runs end to end on the synthetic task: every labelling arm, its
holdout curve and the target's outcome; no timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import asking
from bot.asking import AskingRate, RecentMargins
from model.runtime import Prediction

pytestmark = pytest.mark.slow


def test_the_quick_run_reports_every_arm(tmp_path: Path) -> None:
    out = tmp_path / "asking.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.asking", "--quick", "--json", str(out)],
        check=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        cwd=Path(__file__).resolve().parents[2],
    )
    result = json.loads(out.read_text())
    assert result["tasks"] == ["synthetic"]
    assert set(result["table"]["synthetic"]) == set(asking.ARMS)
    for arm in asking.ARMS:
        row = result["table"]["synthetic"][arm]
        assert row["runs"] == 2
        assert {str(n) for n in result["checkpoints"]} <= set(row["mean"])
        assert all(0.0 <= value <= 1.0 for value in row["mean"].values())
    for run in result["runs"]:  # every run labels up to the last count, 2 per class a round
        assert max(int(n) for n in run["curve"]) == result["checkpoints"][-1]
        if run["arm"] == "asking":
            assert run["picked"] + run["filled"] == 2 * (result["checkpoints"][-1] - asking.START)
    (outcome,) = result["outcomes"]
    assert outcome["met"] in (True, False) and outcome["line"].startswith("synthetic: asking")
    assert result["reported_outcomes"] == result["outcomes"]  # not the split the rule was chosen on


def test_the_rule_before_flags_near_the_band_or_the_threshold_the_most_unsure_first() -> None:
    """Flagged images (near 0.5, or near the detector's threshold) first, the most unsure
    first; sure images are left to chance."""
    predictions = [
        Prediction("sith", 0.95, distance=1.0, threshold=2.0),  # sure, far inside: never asked
        Prediction("sith", 0.62, distance=1.0, threshold=2.0),  # within the band + margin
        Prediction("jedi", 0.49, distance=1.0, threshold=2.0),  # nearest the decision
        Prediction("sith", 0.99, distance=2.05, threshold=2.0),  # at the detector's threshold
    ]
    order, rest = asking.band_order(predictions, band=0.1)
    assert list(order) == [2, 3, 1] and list(rest) == [0]
    assert np.array_equal(np.sort(np.concatenate([order, rest])), np.arange(4))


def test_asking_streams_verdicts_through_bot_askings_rule_and_rate() -> None:
    """The first verdict asks, then one in five at most, each the least sure one in five of the
    recent verdicts (or near the detector's threshold)."""
    sure = [Prediction("sith", 0.9, raw_score=0.99)] * 4
    stream = [Prediction("sith", 0.6, raw_score=0.7), *sure]  # asked: the first verdict
    stream += [Prediction("jedi", 0.45, raw_score=0.4), *sure]  # the least sure of ten
    stream += [Prediction("sith", 0.9, raw_score=0.99, distance=2.05, threshold=2.0), *sure[:3]]
    stream += [Prediction("jedi", 0.45, raw_score=0.4)]  # unsure, but one in five at most
    margins, rate = RecentMargins(), AskingRate(clock=lambda: 0.0)
    asked, flags = asking.asked_online(stream, margins, rate, wanted=10)
    assert asked == [0, 5, 10]
    assert [i for i, flag in enumerate(flags) if flag] == [0, 5, 10, 14]
    assert asking.asked_online(stream, RecentMargins(), AskingRate(), wanted=2)[0] == [0, 5]
