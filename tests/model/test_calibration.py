"""Temperature scaling and the figures that say whether scores mean what they say."""

from __future__ import annotations

import numpy as np
import pytest

from model.calibration import (
    Calibration,
    brier_score,
    expected_calibration_error,
    reliability,
    sigmoid,
)


def _overconfident(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model `temperature` times too sure: labels drawn from sigmoid(z / T)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, n)
    labels = (rng.random(n) < sigmoid(logits / temperature)).astype(int)
    return logits, labels


def test_the_fitted_temperature_recovers_the_true_one() -> None:
    logits, labels = _overconfident(20_000, temperature=2.5)
    assert Calibration.fit(logits, labels).temperature == pytest.approx(2.5, rel=0.08)


def test_calibration_lowers_ece_and_brier_and_keeps_every_verdict() -> None:
    logits, labels = _overconfident(5_000, temperature=3.0, seed=1)
    raw = sigmoid(logits)
    calibrated = Calibration.fit(logits, labels).apply(logits)
    assert expected_calibration_error(calibrated, labels) < 0.03
    assert expected_calibration_error(raw, labels) > 0.08
    assert brier_score(calibrated, labels) < brier_score(raw, labels)
    np.testing.assert_array_equal(calibrated >= 0.5, raw >= 0.5)


def test_temperature_one_is_the_identity_and_bad_ones_are_refused() -> None:
    logits = np.array([-30.0, -2.0, 0.0, 3.0, 40.0])
    np.testing.assert_allclose(Calibration().apply(logits), sigmoid(logits))
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            Calibration(bad)


def test_one_class_or_no_data_leaves_scores_alone() -> None:
    assert Calibration.fit(np.array([1.0, 2.0]), np.array([1, 1])).temperature == 1.0
    assert Calibration.fit(np.array([]), np.array([])).temperature == 1.0


def test_ece_of_known_bins() -> None:
    # Four images at confidence 0.8, three right: |0.75 - 0.8| = 0.05 in one bin.
    scores = np.array([0.8, 0.8, 0.2, 0.8])
    labels = np.array([1, 1, 0, 0])
    assert expected_calibration_error(scores, labels) == pytest.approx(0.05)
    rows = reliability(scores, labels)
    assert len(rows) == 1 and rows[0]["count"] == 4
    assert rows[0]["accuracy"] == pytest.approx(0.75) and rows[0]["confidence"] == 0.8
    assert brier_score(scores, labels) == pytest.approx((0.04 * 3 + 0.64) / 4)


def test_sigmoid_inverts_the_logit_and_is_stable() -> None:
    p = np.array([1e-6, 0.1, 0.5, 0.9, 1 - 1e-6])
    np.testing.assert_allclose(sigmoid(np.log(p) - np.log1p(-p)), p, rtol=1e-6)
    assert sigmoid(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]


def test_a_split_with_no_mistake_does_not_make_every_answer_certain() -> None:
    """Platt's targets: 276 images all right give about 1 - 1/140 at most, not T's floor."""
    rng = np.random.default_rng(3)
    labels = np.array([0, 1] * 138)
    logits = np.where(labels == 1, 1.0, -1.0) * rng.uniform(2.0, 6.0, len(labels))
    calibration = Calibration.fit(logits, labels)
    assert 0.1 < calibration.temperature < 1.0
    assert 0.98 < float(calibration.apply(np.array([4.0]))[0]) < 0.9999
