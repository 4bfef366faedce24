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
