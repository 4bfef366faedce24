"""Fixtures shared by the whole suite: a tiny generated dataset and a model trained on it once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 synthetic Jedi and 24 Sith images, generated for this run."""
    from training.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("tiny-dataset")
    generate_dataset(root, jedi=24, sith=24, seed=11)
    return root


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> Path:
    """A model folder trained for two epochs on `tiny_dataset` by the project's own pipeline."""
    from training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("trained") / "model"
    train(TrainConfig(data_dir=tiny_dataset, out=out, epochs=2, batch_size=16, verbose=0))
    return out


@pytest.fixture(scope="session")
def old_model(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> Path:
    """`trained_model` as a flat folder made before versions, the detector and calibration."""
    import json
    import shutil

    import keras

    from model.bundle import model_dir
    from training.export import export_tflite

    old = tmp_path_factory.mktemp("old") / "model"
    shutil.copytree(model_dir(trained_model), old)  # flat: the files right in the folder
    network = keras.saving.load_model(old / "model.keras", compile=False)
    (old / "model.tflite").write_bytes(export_tflite(network))  # no detector in the graph
    (old / "detector.npz").unlink()
    (old / "calibration.png").unlink()
    metadata = json.loads((old / "model.json").read_text())
    for key in ("calibration", "detector"):
        metadata.pop(key)
    metadata["files"].pop("detector.npz")
    metadata["files"]["model.tflite"] = _sha256(old / "model.tflite")
    (old / "model.json").write_text(json.dumps(metadata))
    return old


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
