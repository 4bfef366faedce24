"""The training pipeline end to end, on a small generated dataset."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.bundle import model_dir, read_info
from model.detector import STAT_LAYERS
from model.runtime import Classifier
from training.data import DatasetError, find_classes, load_dataset
from training.train import TrainConfig, main, parse_args, train

pytestmark = pytest.mark.slow


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (its versions and CURRENT too) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


OUTPUTS = (
    "model.keras",
    "model.tflite",
    "model.json",
    "detector.npz",
    "calibration.png",
    "history.csv",
    "curves.png",
    "confusion.png",
    "metrics.csv",
)


def test_training_writes_every_output(trained_model: Path) -> None:
    for name in OUTPUTS:
        assert (model_dir(trained_model) / name).stat().st_size > 0, name
    for name in ("curves.png", "confusion.png", "calibration.png"):
        with Image.open(model_dir(trained_model) / name) as image:
            assert image.format == "PNG" and image.width > 200
    with open(model_dir(trained_model) / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])


def test_metadata_records_the_run(trained_model: Path, tiny_dataset: Path) -> None:
    meta = json.loads((model_dir(trained_model) / "model.json").read_text())
    assert meta["class_names"] == ["jedi", "sith"]
    assert meta["image_size"] == [200, 200]
    assert meta["parameters"] == 622_753
    assert meta["dataset"]["counts"] == {"jedi": 24, "sith": 24}
    assert meta["dataset"]["train"] + meta["dataset"]["validation"] == 48
    assert meta["training"]["seed"] == 123 and meta["training"]["epochs"] == 2
    assert 1 <= meta["training"]["best_epoch"] <= 2
    validation = meta["metrics"]["validation"]
    assert set(validation) >= {"accuracy", "precision", "recall", "roc_auc"}
    assert 0.0 <= validation["accuracy"] <= 1.0
    assert np.sum(meta["metrics"]["confusion"]) == meta["dataset"]["validation"]
    assert set(meta["files"]) == {"model.keras", "model.tflite", "detector.npz"}
    assert meta["created"].startswith("20")
    info = read_info(trained_model)
    assert info.positive_class == "sith"


def test_metadata_records_the_calibration_and_the_detector(trained_model: Path) -> None:
    meta = json.loads((model_dir(trained_model) / "model.json").read_text())
    calibration = meta["calibration"]
    assert calibration["method"] == "temperature scaling" and calibration["temperature"] > 0
    for key in ("ece_before", "ece_after", "brier_before", "brier_after"):
        assert 0.0 <= calibration[key] <= 1.0, key
    assert "cross-validation" in calibration["reported_on"]
    detector = meta["detector"]
    assert detector["layers"] == list(STAT_LAYERS) and detector["k"] >= 1
    assert detector["keep"] == 0.95 and detector["threshold"] > 0
    assert detector["validation"]["images"] == meta["dataset"]["validation"]
    assert detector["validation"]["refused"] <= 0.2
    assert detector["refused_unlike"] == {"noise": 1.0, "blank": 1.0}
    loaded = Classifier.load(trained_model, "litert")
    assert loaded.detector.threshold == detector["threshold"]
    assert loaded.calibration.temperature == calibration["temperature"]


def test_training_exposes_outliers_and_combines_the_detector_by_default(
    trained_model: Path,
) -> None:
    """Outlier Exposure is on unless asked off, never changes the labelled counts, and the
    detector combines the k-NN distance, the confidence and the input statistics."""
    meta = json.loads((model_dir(trained_model) / "model.json").read_text())
    exposure = meta["training"]["outlier_exposure"]
    assert exposure["outliers"] == "generated" and exposure["images"] >= 64
    assert exposure["target"] == 0.5 and exposure["weight"] == 0.5
    assert (
        sum(meta["dataset"]["counts"].values())
        == meta["dataset"]["train"] + meta["dataset"]["validation"]
    )
    detector = meta["detector"]
    assert set(detector["combination"]["weights"]) >= {"log k-NN distance", "confidence |logit|"}
    assert set(detector["refused_tuning_outliers"]) >= {"noise", "gradients", "text", "plots"}
    assert Classifier.load(trained_model, "litert").detector.combination is not None
    assert parse_args(["data"]).outliers == "generated"
    assert parse_args(["data", "--outliers", "none"]).outliers == "none"


def test_refit_gives_an_old_folder_a_detector_and_keeps_its_weights(
    tmp_path: Path, old_model: Path, tiny_dataset: Path, capsys
) -> None:
    out = tmp_path / "model"
    shutil.copytree(old_model, out)
    weights = (out / "model.keras").read_bytes()  # flat, before the refit
    images = load_dataset(tiny_dataset).images[:6]
    raw_before = Classifier.load(out, "litert").scores(images)

    assert main([str(tiny_dataset), "--out", str(out), "--refit", "--quiet"]) == 0
    assert (model_dir(out) / "model.keras").read_bytes() == weights
    meta = json.loads((model_dir(out) / "model.json").read_text())
    assert {"calibration", "detector", "refit"} <= set(meta)
    assert set(meta["files"]) == {"model.keras", "model.tflite", "detector.npz"}
    assert meta["metrics"] == json.loads((old_model / "model.json").read_text())["metrics"]
    refitted = Classifier.load(out, "litert")
    predictions = refitted.predict(images)
    assert all(p.distance is not None for p in predictions)
    np.testing.assert_allclose([p.raw_score for p in predictions], raw_before, atol=1e-6)
    assert (model_dir(out) / "calibration.png").stat().st_size > 0
    from model.cli import main as jedisith

    capsys.readouterr()
    assert jedisith(["info", "--model", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "refitted" in printed and "--refit" in printed and "detector threshold" in printed


def test_refit_refuses_other_data_and_folders_it_did_not_make(
    tmp_path: Path, old_model: Path, tiny_dataset: Path, capsys
) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    next(iter(sorted((other / "jedi").iterdir()))).unlink()
    out = tmp_path / "model"
    shutil.copytree(old_model, out)
    before = snapshot(out)
    assert main([str(other), "--out", str(out), "--refit", "--quiet"]) == 1
    assert "not the images the model was trained on" in capsys.readouterr().err
    assert snapshot(out) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(tiny_dataset), "--out", str(empty), "--refit", "--quiet"]) == 1
    assert "made by jedisith-train" in capsys.readouterr().err


def test_published_model_loads_back_and_backends_agree(
    trained_model: Path, tiny_dataset: Path
) -> None:
    images = load_dataset(tiny_dataset).images[::4]
    litert = Classifier.load(trained_model, "litert")
    tensorflow = Classifier.load(trained_model, "tensorflow")
    assert litert.backend_name == "litert" and tensorflow.backend_name == "tensorflow"
    np.testing.assert_allclose(litert.scores(images), tensorflow.scores(images), atol=1e-4)
    import keras

    keras_model = keras.saving.load_model(model_dir(trained_model) / "model.keras")
    expected = np.asarray(keras_model(images.astype(np.float32), training=False)).reshape(-1)
    raw = [prediction.raw_score for prediction in litert.predict(images)]
    np.testing.assert_allclose(raw, expected, atol=1e-4)  # the network's own, uncalibrated


def test_best_epoch_weights_are_kept(tmp_path: Path, tiny_dataset: Path) -> None:
    out = train(
        TrainConfig(data_dir=tiny_dataset, out=tmp_path / "m", epochs=3, batch_size=16, verbose=0)
    )
    meta = json.loads((model_dir(out) / "model.json").read_text())
    with open(model_dir(out) / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    best = max(
        range(len(rows)),
        key=lambda i: (float(rows[i]["val_accuracy"]), -float(rows[i]["val_loss"])),
    )
    assert meta["training"]["best_epoch"] == best + 1
    best_accuracy = float(rows[best]["val_accuracy"])
    assert meta["metrics"]["validation"]["accuracy"] == pytest.approx(best_accuracy, abs=1e-6)


def test_unusable_files_are_listed_and_skipped(tmp_path: Path, tiny_dataset: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    (data / "jedi" / "notes.txt").write_text("not an image")
    good = next((data / "sith").iterdir()).read_bytes()
    (data / "sith" / "broken.png").write_bytes(good[: len(good) // 3])
    dataset = load_dataset(data)
    assert len(dataset.labels) == 48
    assert sorted(s.path.name for s in dataset.skipped) == ["broken.png", "notes.txt"]
    assert all(s.reason for s in dataset.skipped)


def test_dataset_errors_are_clear(tmp_path: Path, tiny_dataset: Path) -> None:
    with pytest.raises(DatasetError, match="not a folder"):
        find_classes(tmp_path / "missing")
    one = tmp_path / "one"
    (one / "jedi").mkdir(parents=True)
    with pytest.raises(DatasetError, match="exactly two class folders"):
        find_classes(one)
    (one / "sith").mkdir()
    (one / "jedi" / "a.png").write_bytes((tiny_dataset / "jedi").iterdir().__next__().read_bytes())
    with pytest.raises(DatasetError, match="empty"):
        find_classes(one)
    (one / "sith" / "a.txt").write_text("text")
    with pytest.raises(DatasetError, match="no usable image"):
        load_dataset(one)
    (one / "yoda").mkdir()
    with pytest.raises(DatasetError, match="found jedi, sith, yoda"):
        find_classes(one)


def test_split_is_deterministic_and_disjoint(tiny_dataset: Path) -> None:
    dataset = load_dataset(tiny_dataset)
    train_a, val_a = dataset.split(0.25, seed=5)
    _, val_b = dataset.split(0.25, seed=5)
    _, val_c = dataset.split(0.25, seed=6)
    assert [p.name for p in val_a.paths] == [p.name for p in val_b.paths]
    assert [p.name for p in val_a.paths] != [p.name for p in val_c.paths]
    assert len(val_a.labels) == 12 and len(train_a.labels) == 36
    assert not set(train_a.paths) & set(val_a.paths)


def test_cli_reports_a_bad_folder_without_traceback(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "nothing"), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_cli_flags_have_the_notebook_defaults() -> None:
    config = parse_args(["data"])
    assert (config.epochs, config.batch_size, config.val_split, config.learning_rate) == (
        29,
        32,
        0.2,
        1e-4,
    )
    with pytest.raises(SystemExit):
        parse_args(["data", "--val-split", "1.5"])
    assert config.ood_keep == 0.95 and not config.refit
    with pytest.raises(SystemExit):
        parse_args(["data", "--ood-keep", "0.2"])


def test_interrupted_run_leaves_the_previous_model_intact(
    tmp_path: Path, tiny_dataset: Path, trained_model: Path, monkeypatch
) -> None:
    out = tmp_path / "model"
    shutil.copytree(trained_model, out)
    before = snapshot(out)

    import keras

    original_fit = keras.Model.fit

    def fit_then_interrupt(self, *args, **kwargs):
        kwargs["epochs"] = 1
        original_fit(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "fit", fit_then_interrupt)
    code = main([str(tiny_dataset), "--out", str(out), "--epochs", "1", "--quiet"])
    assert code == 130
    assert snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]  # none left behind


def test_a_full_disk_is_one_line_and_the_old_model_stays(
    tmp_path: Path, tiny_dataset: Path, trained_model: Path, monkeypatch, capsys
) -> None:
    import errno

    out = tmp_path / "model"
    shutil.copytree(trained_model, out)
    before = snapshot(out)
    real_write = Path.write_bytes

    def full_disk(self: Path, data: bytes) -> int:
        if self.name == "model.tflite":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    code = main([str(tiny_dataset), "--out", str(out), "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "No space left on device" in err and "nothing was published" in err
    assert "Traceback" not in err
    assert snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]  # the staging is gone


def test_an_unwritable_out_is_one_line(tmp_path: Path, tiny_dataset: Path, capsys) -> None:
    # Under a regular file no folder can be made, whoever runs the tests (root ignores modes).
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main([str(tiny_dataset), "--out", str(blocker / "model"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "Not a directory" in err and "Traceback" not in err
    assert blocker.read_text() == "not a folder"
