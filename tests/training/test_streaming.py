"""The streamed data path (`--data-path stream`) against the in-memory one, and the switch.

What is identical with the same seed: the files kept and skipped, the split (the same paths
in training and validation), every batch (the same images, byte for byte, in the same order,
epoch after epoch), hence the training itself: the weights after an epoch agree to float
rounding (1e-6) and so do the validation figures. What differs: the memory held.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.bundle import model_dir
from training.data import (
    IMAGE_BYTES,
    TRAINING_RESERVE,
    DatasetError,
    DecodedCache,
    StreamedImages,
    choose_data_path,
    load_dataset,
    steps_per_epoch,
    to_tf_dataset,
    training_batches,
)


@pytest.fixture(scope="module")
def both(tiny_dataset: Path):
    return load_dataset(tiny_dataset), load_dataset(tiny_dataset, stream=True)


def batches(ds, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in ds.take(count)]


def same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x, u) and np.array_equal(y, v) for (x, y), (u, v) in zip(a, b, strict=True)
    )


def test_both_paths_split_alike_and_give_the_same_batches(both) -> None:
    memory, streamed = both
    assert not memory.streamed and streamed.streamed
    assert streamed.paths == memory.paths and np.array_equal(streamed.labels, memory.labels)
    (train_m, val_m), (train_s, val_s) = memory.split(0.25, 123), streamed.split(0.25, 123)
    assert train_s.paths == train_m.paths and val_s.paths == val_m.paths
    assert np.array_equal(train_s.images[:], train_m.images)  # decoded again: the same bytes

    steps = steps_per_epoch(len(train_m.labels), 16)
    assert steps == 3  # 36 images: 16, 16, 4
    epochs_m = batches(training_batches(train_m, 16, 123), 3 * steps)
    epochs_s = batches(training_batches(train_s, 16, 123), 3 * steps)
    assert same(epochs_m, epochs_s)
    assert [len(y) for _, y in epochs_m] == [16, 16, 4] * 3
    for epoch in range(3):  # each epoch is every training image once, in a new order
        labels = np.concatenate([y for _, y in epochs_m[epoch * steps : (epoch + 1) * steps]])
        assert sorted(labels) == sorted(train_m.labels.astype(np.float32))
    assert not np.array_equal(epochs_m[0][0], epochs_m[steps][0])
    # The order depends on the seed and the epoch alone, not on iterators made before.
    again = training_batches(train_s, 16, 123)
    batches(again, 1)
    assert same(batches(again, steps), epochs_m[:steps])
    assert not same(batches(training_batches(train_m, 16, 124), steps), epochs_m[:steps])

    assert same(
        batches(to_tf_dataset(val_m, 16, False, 123), 9),
        batches(to_tf_dataset(val_s, 16, False, 123), 9),
    )


def test_streamed_images_read_like_the_array(both) -> None:
    memory, streamed = both
    images = streamed.images
    assert isinstance(images, StreamedImages)
    assert len(images) == len(memory.images) and images.shape == memory.images.shape
    assert images.nbytes == memory.images.nbytes == len(memory.images) * IMAGE_BYTES
    assert np.array_equal(images[3], memory.images[3])
    assert np.array_equal(images[2:9], memory.images[2:9])
    assert np.array_equal(images[[7, 1, 7]], memory.images[[7, 1, 7]])
    assert images[5:5].shape == (0, 200, 200, 3)
    subset = images.subset([4, 0])
    assert isinstance(subset, StreamedImages) and subset.paths == [images.paths[4], images.paths[0]]


def test_the_cache_keeps_the_first_images_up_to_its_size(tiny_dataset: Path) -> None:
    cached = load_dataset(tiny_dataset, stream=True, cache_bytes=10 * IMAGE_BYTES + 1)
    cache = cached.images.cache
    assert isinstance(cache, DecodedCache) and len(cache) == 10 and cache.nbytes == 10 * IMAGE_BYTES
    kept = next(path for path in cached.paths if cache.get(path) is not None)
    index = cached.paths.index(kept)
    assert cached.images[index] is cache.get(kept)  # served from the cache, not decoded
    cached.images[:]  # reading everything stores nothing more
    assert len(cache) == 10
    assert load_dataset(tiny_dataset, stream=True).images.cache is None  # 0 MB: no cache


@pytest.mark.slow
def test_a_file_that_changes_while_streaming_is_a_dataset_error(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    import keras

    from training.train import TrainConfig, fit_network

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    streamed = load_dataset(data, stream=True)
    train_set, val_set = streamed.split(0.25, 123)
    victim = train_set.paths[0]
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(DatasetError, match="changed since it was checked"):
        train_set.images[0]

    def tiny(seed: int) -> keras.Model:
        inputs = keras.Input((200, 200, 3))
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
        return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))

    config = TrainConfig(data, epochs=1, batch_size=16, verbose=0)
    with pytest.raises(DatasetError, match=f"{victim.name} changed since it was checked"):
        fit_network(config, train_set, val_set, network=tiny)


def test_auto_streams_beyond_a_quarter_of_the_memory_left_after_tensorflow() -> None:
    available = TRAINING_RESERVE + 4_000 * IMAGE_BYTES  # room for 1,000 images in memory
    at_limit = choose_data_path("auto", 1_000, available)
    assert at_limit.chosen == "memory" and at_limit.limit_bytes == 1_000 * IMAGE_BYTES
    beyond = choose_data_path("auto", 1_001, available)
    assert beyond.chosen == "stream" and "more than" in beyond.reason
    assert choose_data_path("memory", 10**6, available).chosen == "memory"
    assert choose_data_path("stream", 1, available).chosen == "stream"
    assert choose_data_path("auto", 10**6, 0).chosen == "memory"  # unknown: as before
    assert choose_data_path("auto", 1, 10**9).chosen == "stream"  # less than the reserve
    record = beyond.as_dict()
    assert record["chosen"] == "stream" and record["asked"] == "auto"
    assert "25%" in record["rule"] and record["decoded_bytes"] == 1_001 * IMAGE_BYTES
    with pytest.raises(ValueError, match="--data-path"):
        choose_data_path("disk", 1, available)


@pytest.mark.slow
def test_jedisith_train_streamed_gives_the_in_memory_model(
    tmp_path: Path, tiny_dataset: Path, trained_model: Path
) -> None:
    """The whole pipeline (training, the detector and calibration fitted on streamed images,
    the export check, model.json), streamed, against the session's model trained in memory
    with the same settings."""
    from training.train import main

    out = tmp_path / "streamed"
    argv = [str(tiny_dataset), "--out", str(out), "--epochs", "2", "--batch-size", "16"]
    assert main([*argv, "--data-path", "stream", "--quiet"]) == 0
    streamed = json.loads((model_dir(out) / "model.json").read_text())
    memory = json.loads((model_dir(trained_model) / "model.json").read_text())
    assert streamed["training"]["data_path"]["chosen"] == "stream"
    assert memory["training"]["data_path"]["chosen"] == "memory"
    assert "auto" in memory["training"]["data_path"]["reason"]
    assert streamed["training"]["placement"]["kind"] == "one device"
    assert streamed["dataset"] == memory["dataset"]
    assert streamed["training"]["best_epoch"] == memory["training"]["best_epoch"]
    for key, value in memory["metrics"]["validation"].items():
        assert streamed["metrics"]["validation"][key] == pytest.approx(value, abs=1e-6), key
    assert streamed["metrics"]["confusion"] == memory["metrics"]["confusion"]
    rows = [
        list(csv.DictReader((model_dir(folder) / "history.csv").read_text().splitlines()))
        for folder in (out, trained_model)
    ]
    for a, b in zip(*rows, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-5), key
    assert streamed["detector"]["threshold"] == pytest.approx(
        memory["detector"]["threshold"], rel=1e-4
    )
