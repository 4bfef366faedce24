"""benchmarks/why.py: its masks of the synthetic drawings are right, and it runs end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import why
from training.synthetic import LABELS, draw_scene


@pytest.mark.parametrize("label", ["jedi", "sith"])
def test_drawing_the_masks_leaves_the_drawing_unchanged(label: str) -> None:
    image, mask = why.scene_with_masks(label, 3)
    plain = np.asarray(draw_scene(label, np.random.default_rng([11, LABELS.index(label), 3])))
    assert np.array_equal(image, plain)
    assert mask.shape == (200, 200) and mask.dtype == bool
    assert 0.02 < mask.mean() < 0.6  # a figure and a saber, not the whole picture


def test_the_mask_covers_the_blade() -> None:
    image, mask = why.scene_with_masks("sith", 0)
    # The blade's glowing core is nearly white: most such pixels are inside the saber mask.
    core = (image.astype(int).sum(axis=2) > 600) & (image.min(axis=2) > 180)
    assert core.any()
    assert mask[core].mean() > 0.8


def test_widen_grows_a_mask() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[10, 10] = True
    assert why.widen(mask, 2).sum() == 25


@pytest.mark.slow
def test_the_benchmark_runs_quick(tmp_path) -> None:
    pytest.importorskip("tensorflow")
    out = tmp_path / "why.json"
    assert why.main(["--quick", "--images", "2", "--rounds", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {"occlusion_mass", "gradcam_mass", "why_s", "features_s"} <= set(result["figures"])
    assert result["checks"][0]["ok"]
