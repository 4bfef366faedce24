"""`benchmarks.heads --quick` runs end to end: tasks split by source photo, every head variant,
a baseline, the reference; no timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import _heads_tasks, heads
from benchmarks._ood_data import WALLPAPER_PHOTOS, WALLPAPER_ROOT

pytestmark = pytest.mark.slow


def test_the_quick_run_reports_every_variant(tmp_path: Path) -> None:
    out = tmp_path / "heads.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.heads", "--quick", "--json", str(out)],
        check=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        cwd=Path(__file__).resolve().parents[2],
    )
    result = json.loads(out.read_text())
    real = list(_heads_tasks.REAL_TASKS) if _heads_tasks.available() else []
    assert result["tasks"] == ["synthetic", *real]  # the photos' tasks where they are installed
    assert result["chosen"] in heads.VARIANTS
    assert {row["variant"] for row in result["runs"]} == set(heads.VARIANTS)
    assert all(0.0 <= row["holdout"] <= 1.0 for row in result["runs"])
    assert {row["variant"] for row in result["baselines"]} >= {
        "network from random weights (1 epochs)",
        "network from shipped weights (1 epochs)",
    }
    assert result["fit"]["default"]["seconds"] > 0 and result["references"]
    assert any(o["name"].endswith("< 2 s") for o in result["outcomes"])


def test_every_photo_of_the_tasks_is_allow_listed() -> None:
    """Checked by eye and installed by the set-up step: in `WALLPAPER_PHOTOS` or `EXTRA_PHOTOS`."""
    listed = {str(WALLPAPER_ROOT / rel) for files in WALLPAPER_PHOTOS.values() for rel in files}
    listed |= {path for files in _heads_tasks.EXTRA_PHOTOS.values() for path in files}
    for first, second in _heads_tasks.REAL_TASKS.values():
        assert {str(WALLPAPER_ROOT / name) for name in first + second} <= listed
        assert len(first) >= 11 and len(second) >= 11 and not set(first) & set(second)


def test_no_source_photo_is_on_two_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The split by source photo, on stand-in crops (the photos need not be installed)."""

    def stand_in(path, count: int, seed: int) -> np.ndarray:
        return np.full((count, 8, 8, 3), seed % 251, dtype=np.uint8)

    monkeypatch.setattr(_heads_tasks, "crops", stand_in)
    for name in _heads_tasks.REAL_TASKS:
        task = _heads_tasks.real_task(name, per_photo=1)
        sides = [set(getattr(task, part).sources) for part in ("pool", "validation", "holdout")]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
        for part in ("pool", "validation", "holdout"):
            assert set(np.unique(getattr(task, part).labels)) == {0, 1}
