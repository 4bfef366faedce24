"""The detector's and the calibration's honest fallbacks for small validation splits."""

from __future__ import annotations

import numpy as np
import pytest

from model.detector import covering_rank
from training.uncertainty import MIN_SHARPEN_IMAGES, fit_temperature, threshold_rule


def test_few_validation_images_fall_back_to_the_largest_distance_and_say_what_it_keeps() -> None:
    rule = threshold_rule(8, 0.95, 0.9)
    assert rule["threshold_rule"] == "largest validation distance"
    assert covering_rank(8, 0.95, 0.9) == 8  # what Detector.with_threshold then takes
    assert rule["guarantee"] == {"keep": pytest.approx(0.1 ** (1 / 8)), "confidence": 0.9}
    assert rule["expected_keep"] == pytest.approx(8 / 9)
    assert "only 8 validation images" in rule["note"] and "needs 45" in rule["note"]
    assert threshold_rule(44, 0.95, 0.9)["threshold_rule"] == "largest validation distance"
    enough = threshold_rule(45, 0.95, 0.9)
    assert enough["threshold_rule"] == "coverage bound" and "note" not in enough
    assert enough["guarantee"] == {"keep": 0.95, "confidence": 0.9}
    shipped = threshold_rule(276, 0.95, 0.9)
    assert shipped["expected_keep"] == pytest.approx(covering_rank(276, 0.95, 0.9) / 277)


def test_a_few_images_never_sharpen_the_scores() -> None:
    labels = np.array([0, 1] * 4)
    separable = np.where(labels == 1, 3.0, -3.0)  # all right: Platt's targets (5/6) soften
    assert fit_temperature(separable, labels).temperature == pytest.approx(1.864, abs=0.01)
    sure = np.where(labels == 1, 1.0, -1.0)  # all right, shy: a plain fit would sharpen
    assert fit_temperature(sure, labels).temperature == 1.0
    rng = np.random.default_rng(0)
    many = np.array([0, 1] * 100)
    logits = np.where(many == 1, 1.0, -1.0) + rng.normal(0, 0.2, len(many))
    assert len(many) >= MIN_SHARPEN_IMAGES
    assert fit_temperature(logits, many).temperature < 1.0  # enough images: it may sharpen
    wrong = -separable + rng.normal(0, 0.1, len(labels))  # too sure of wrong answers
    wrong[0] = -wrong[0]
    assert fit_temperature(wrong, labels).temperature > 1.0  # softening is still allowed
