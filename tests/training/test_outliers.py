"""Outlier Exposure: the outliers, their batches and loss weights, and the accuracy metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training import outliers
from training.data import DatasetError
from training.outliers import (
    GENERATED,
    KINDS,
    NONE,
    OUTLIER_TARGET,
    OUTLIER_WEIGHT,
    describe_outliers,
    generated_outliers,
    load_outliers,
    outlier_groups,
    outlier_pool,
    package_images,
)


def test_generated_outliers_are_inputs_drawn_from_the_seed() -> None:
    first = generated_outliers(16, seed=3)
    assert first.shape == (16, 200, 200, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, generated_outliers(16, seed=3))
    assert not np.array_equal(first, generated_outliers(16, seed=4))
    assert len({image.tobytes() for image in first}) == 16


def test_outlier_groups_hold_every_kind_and_package_images_stay_out_of_the_benchmark() -> None:
    groups = outlier_groups(2, seed=5)
    expected = [kind for kind in KINDS if kind != "package photos" or package_images()]
    assert list(groups) == expected
    assert all(group.shape == (2, 200, 200, 3) for group in groups.values())
    for path in package_images():  # never the benchmark's held-out photos, nor scikit-image's
        assert not str(path).startswith("/usr/share/backgrounds")
        assert "skimage" not in str(path) and "sample_data" not in str(path)
        assert path.stem != "screenshot"


def test_a_folder_gives_its_images_and_none_gives_no_outliers(tmp_path: Path) -> None:
    Image.new("RGB", (64, 48), (10, 200, 30)).save(tmp_path / "green.png")
    (tmp_path / "notes.txt").write_text("not an image")
    images = load_outliers(str(tmp_path))
    assert images.shape == (1, 200, 200, 3) and tuple(images[0, 0, 0]) == (10, 200, 30)
    assert load_outliers(NONE).shape == (0, 200, 200, 3)
    with pytest.raises(DatasetError, match="neither a folder"):
        outlier_pool(str(tmp_path / "missing"), 100, 0)
    (tmp_path / "green.png").unlink()
    with pytest.raises(DatasetError, match="no image"):
        outlier_pool(str(tmp_path), 100, 0)
    assert describe_outliers(NONE, 0, 32) == {"outliers": NONE}
    described = describe_outliers(GENERATED, 64, 32)
    assert described["per_batch"] == 8 and described["weight"] == OUTLIER_WEIGHT


@pytest.mark.slow
def test_batches_carry_outliers_at_one_half_with_the_outlier_exposure_weights() -> None:
    """Keras' weighted mean loss over a joined batch is mean(labelled) + 0.5 * mean(outliers),
    also for the epoch's last, smaller batch; outliers never carry a class label."""
    import tensorflow as tf

    pool = np.full((5, 200, 200, 3), 7, np.uint8)
    labelled = tf.data.Dataset.from_tensor_slices(
        (np.zeros((6, 200, 200, 3), np.float32), np.array([0, 1, 1, 0, 1, 0], np.float32))
    ).batch(4)
    batches = list(outliers.with_outliers(labelled, pool, 2, seed=1))
    assert [len(targets) for _, targets, _ in batches] == [6, 4]
    for images, targets, weights in batches:
        targets, weights = targets.numpy(), weights.numpy()
        inside = targets != OUTLIER_TARGET
        assert inside.sum() == len(targets) - 2 and np.all(images.numpy()[~inside] == 7.0)
        losses = np.random.default_rng(0).uniform(0.1, 2.0, len(targets))
        keras_mean = np.sum(weights * losses) / len(targets)
        wanted = losses[inside].mean() + OUTLIER_WEIGHT * losses[~inside].mean()
        assert keras_mean == pytest.approx(wanted, rel=1e-6)


@pytest.mark.slow
def test_the_accuracy_counts_only_the_labelled_images() -> None:
    metric = outliers.labelled_accuracy()
    metric.update_state(np.array([1.0, 0.0, 0.5, 0.5]), np.array([0.9, 0.8, 0.9, 0.1]))
    assert float(metric.result()) == pytest.approx(0.5)
    assert metric.name == "accuracy"
