"""The out-of-distribution detector: statistics, fitting, the threshold, storage, and its graph."""

from __future__ import annotations

import numpy as np
import pytest

from model.combination import (
    INPUT_STATISTICS,
    OOD_FEATURES,
    fit_combination,
    input_statistics,
    input_statistics_graph,
    ood_features,
)
from model.detector import (
    STAT_LAYERS,
    Detector,
    DetectorError,
    channel_statistics,
    covering_rank,
    distance_graph,
)


def _maps(rng: np.random.Generator, n: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Maps of every layer the detector reads: 4 channels each, gamma-distributed."""
    return {name: rng.gamma(2.0, scale, (n, 9, 9, 4)).astype(np.float32) for name in STAT_LAYERS}


def test_statistics_are_the_log_of_mean_std_and_max_per_channel() -> None:
    values = np.zeros((1, 2, 2, 2), np.float32)
    values[0, :, :, 0] = [[0, 2], [4, 6]]  # mean 3, std sqrt(5), max 6
    values[0, :, :, 1] = 1.0  # mean 1, std 0, max 1
    got = channel_statistics({"pool2": values}, ["pool2"])
    expected = np.log1p([[3.0, 1.0, np.sqrt(5.0), 0.0, 6.0, 1.0]])
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_training_images_are_near_and_unlike_images_far() -> None:
    rng = np.random.default_rng(0)
    train = channel_statistics(_maps(rng, 200), STAT_LAYERS)
    detector = Detector.fit(train, k=5)
    near = detector.distances(channel_statistics(_maps(rng, 50), STAT_LAYERS))
    far = detector.distances(channel_statistics(_maps(rng, 50, scale=4.0), STAT_LAYERS))
    assert near.max() < far.min()
    assert detector.k == 5 and detector.dimensions == 12 * len(STAT_LAYERS)
    assert len(detector.bank) == 200


def test_the_threshold_keeps_the_asked_share_of_validation_images() -> None:
    rng = np.random.default_rng(1)
    detector = Detector.fit(channel_statistics(_maps(rng, 100), STAT_LAYERS))
    validation = detector.distances(channel_statistics(_maps(rng, 200), STAT_LAYERS))
    median_rule = detector.with_threshold(validation, keep=0.9, confidence=0.5)
    assert 0.9 <= np.mean(validation <= median_rule.threshold) <= 0.91
    careful = detector.with_threshold(validation, keep=0.9, confidence=0.9)
    assert careful.threshold > median_rule.threshold and careful.keep == 0.9
    assert 0.92 <= np.mean(validation <= careful.threshold) <= 0.94
    assert detector.with_threshold(validation, keep=1.0).threshold == validation.max()
    with pytest.raises(DetectorError):
        detector.with_threshold(validation, keep=0.0)
    with pytest.raises(DetectorError):
        detector.with_threshold(validation, confidence=1.0)
    with pytest.raises(DetectorError):
        detector.with_threshold(np.array([]))


def test_the_covering_rank_keeps_its_promise_on_new_images() -> None:
    """Thresholds chosen on 276 images keep >= 95% of new ones in about 90% of draws."""
    assert covering_rank(276, 0.95, 0.9) == 268  # 97.1% of the validation images
    assert covering_rank(10_000, 0.95, 0.9) / 10_000 == pytest.approx(0.953, abs=0.001)
    assert covering_rank(10, 0.95, 0.9) == 10  # too few: the largest
    rng = np.random.default_rng(7)
    kept = []
    for _ in range(400):
        validation, new = rng.normal(size=276), rng.normal(size=2_000)
        threshold = np.sort(validation)[covering_rank(276, 0.95, 0.9) - 1]
        kept.append(np.mean(new <= threshold))
    assert 0.85 <= np.mean(np.array(kept) >= 0.95) <= 0.95


def test_k_never_exceeds_the_bank_and_the_bank_is_capped() -> None:
    rng = np.random.default_rng(2)
    small = Detector.fit(channel_statistics(_maps(rng, 3), STAT_LAYERS), k=5)
    assert small.k == 3
    big = Detector.fit(channel_statistics(_maps(rng, 50), STAT_LAYERS), max_bank=20)
    assert len(big.bank) == 20
    with pytest.raises(DetectorError):
        Detector.fit(np.zeros((1, 12 * len(STAT_LAYERS))))


def test_a_silent_channel_does_not_divide_by_zero() -> None:
    rng = np.random.default_rng(3)
    maps = _maps(rng, 40)
    maps[STAT_LAYERS[0]][..., 2] = 0.0  # a dead ReLU channel in every training image
    detector = Detector.fit(channel_statistics(maps, STAT_LAYERS))
    assert np.all(detector.scale > 0)
    woken = _maps(rng, 1)
    assert np.isfinite(detector.distances(channel_statistics(woken, STAT_LAYERS))).all()


def test_it_survives_saving_and_loading() -> None:
    rng = np.random.default_rng(4)
    detector = Detector.fit(channel_statistics(_maps(rng, 30), STAT_LAYERS))
    detector = detector.with_threshold(np.array([1.0, 2.0, 3.0]), keep=0.95)
    loaded = Detector.from_bytes(detector.to_bytes())
    assert loaded.layers == detector.layers and loaded.k == detector.k
    assert loaded.threshold == detector.threshold and loaded.keep == detector.keep
    queries = channel_statistics(_maps(rng, 5), STAT_LAYERS)
    np.testing.assert_array_equal(loaded.distances(queries), detector.distances(queries))
    assert loaded.describe()["bank"] == 30


def test_a_damaged_file_is_refused_with_a_reason() -> None:
    with pytest.raises(DetectorError, match="not a detector"):
        Detector.from_bytes(b"not an npz")
    rng = np.random.default_rng(5)
    detector = Detector.fit(channel_statistics(_maps(rng, 10), STAT_LAYERS))
    broken = Detector(
        detector.layers, 50, detector.center, detector.scale, detector.bank, 1.0, 0.95
    )
    with pytest.raises(DetectorError, match="k=50"):
        Detector.from_bytes(broken.to_bytes())


@pytest.mark.slow
def test_the_tensorflow_graph_matches_the_numpy_reference() -> None:
    rng = np.random.default_rng(6)
    detector = Detector.fit(channel_statistics(_maps(rng, 60), STAT_LAYERS))
    queries = {**_maps(rng, 7), "unused": np.zeros((7, 1, 1, 1), np.float32)}
    queries[STAT_LAYERS[0]][3] *= 5  # one far image
    expected = detector.distances_of_maps(queries)
    got = np.asarray(distance_graph(detector, queries))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    """Drawing-like images: two flat colours split by a sharp vertical edge, a little noise."""
    images = np.empty((n, 200, 200, 3), np.uint8)
    for i in range(n):
        left, right = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        edge = int(rng.integers(40, 160))
        canvas = np.where(np.arange(200)[None, :, None] < edge, left, right)
        canvas = canvas + rng.normal(0, 3, (200, 200, 3))
        images[i] = np.clip(np.broadcast_to(canvas, (200, 200, 3)), 0, 255).astype(np.uint8)
    return images


def test_a_combined_detector_refuses_what_only_the_input_statistics_tell_apart() -> None:
    """Noise has the same k-NN distance and logits as the drawings here; the input
    statistics alone separate it, and the combination learns to read them."""
    rng = np.random.default_rng(7)
    detector = Detector.fit(channel_statistics(_maps(rng, 60), STAT_LAYERS))
    drawings = _images(rng, 60)
    noise = rng.integers(0, 256, (30, 200, 200, 3), dtype=np.uint8)

    def features(images: np.ndarray) -> np.ndarray:
        stats = channel_statistics(_maps(rng, len(images)), STAT_LAYERS)
        logits = rng.normal(0.0, 3.0, len(images))
        return ood_features(detector.distances(stats), logits, input_statistics(images))

    combination = fit_combination(features(drawings[:40]), [features(noise[:15])])
    combined = detector.with_combination(combination)
    inside = combination.apply(features(drawings[40:]))
    combined = combined.with_threshold(combination.apply(features(drawings[:40])), keep=0.9)
    assert np.all(combination.apply(features(noise[15:])) > combined.threshold)
    assert np.mean(inside <= combined.threshold) >= 0.8
    weights = dict(zip(OOD_FEATURES, combination.weights[0], strict=True))
    assert max(abs(weights[name]) for name in INPUT_STATISTICS) > abs(weights["log k-NN distance"])

    loaded = Detector.from_bytes(combined.to_bytes())
    assert loaded.combination is not None and loaded.threshold == combined.threshold
    stats = channel_statistics(_maps(rng, 3), STAT_LAYERS)
    np.testing.assert_allclose(
        loaded.combined(stats, np.zeros(3), noise[:3]),
        combined.combined(stats, np.zeros(3), noise[:3]),
        rtol=1e-5,
    )
    assert "combination" in loaded.describe()
    assert Detector.from_bytes(detector.to_bytes()).combination is None  # older files load


@pytest.mark.slow
def test_the_combined_graph_matches_the_numpy_reference() -> None:
    rng = np.random.default_rng(8)
    detector = Detector.fit(channel_statistics(_maps(rng, 60), STAT_LAYERS))
    images = np.concatenate(
        [_images(rng, 3), rng.integers(0, 256, (2, 200, 200, 3), dtype=np.uint8)]
    )
    images[4] = 90  # a blank image: every input statistic at its floor
    maps, logits = _maps(rng, 5), rng.normal(0.0, 4.0, 5).astype(np.float32)
    inside = ood_features(
        detector.distances(channel_statistics(_maps(rng, 40), STAT_LAYERS)),
        rng.normal(0.0, 4.0, 40),
        input_statistics(_images(rng, 40)),
    )
    outside = ood_features(
        detector.distances(channel_statistics(_maps(rng, 20, 3.0), STAT_LAYERS)),
        rng.normal(0.0, 0.5, 20),
        input_statistics(rng.integers(0, 256, (20, 200, 200, 3), dtype=np.uint8)),
    )
    combined = detector.with_combination(fit_combination(inside, [outside]))
    np.testing.assert_allclose(
        np.asarray(input_statistics_graph(images)), input_statistics(images), atol=1e-3
    )
    expected = combined.combined(channel_statistics(maps, STAT_LAYERS), logits, images)
    got = np.asarray(distance_graph(combined, maps, None, logits, images))
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6)
    with pytest.raises(DetectorError, match="logits and the images"):
        distance_graph(combined, maps)
