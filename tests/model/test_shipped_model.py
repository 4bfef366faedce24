"""The model that ships in model/default: complete, consistent, and as good as model.json says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.bundle import DEFAULT_MODEL_DIR, read_info, read_model_file
from model.runtime import Classifier
from training.data import load_dataset
from training.evaluate import metrics

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def holdout(tmp_path_factory: pytest.TempPathFactory):
    """A synthetic set the shipped model never saw (another seed than its training set's)."""
    from training.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("holdout")
    generate_dataset(root, jedi=60, sith=60, seed=2026)
    return load_dataset(root)


def test_the_folder_is_complete_and_consistent() -> None:
    info = read_info(DEFAULT_MODEL_DIR)
    assert info.class_names == ("jedi", "sith")
    assert info.parameters == 622_753
    for name in ("model.keras", "model.tflite"):
        read_model_file(DEFAULT_MODEL_DIR, name)  # raises if the hash does not match
    for name in ("history.csv", "curves.png", "confusion.png", "metrics.csv"):
        assert (DEFAULT_MODEL_DIR / name).stat().st_size > 0


def test_metadata_says_what_it_was_trained_on() -> None:
    raw = read_info(DEFAULT_MODEL_DIR).raw
    assert "synthetic" in raw["dataset"]["notes"]
    assert raw["dataset"]["counts"] == {"jedi": 745, "sith": 637}
    assert raw["training"]["epochs"] == 29
    fresh = [e for e in raw.get("evaluations", []) if "seed" in e["data"]]
    assert fresh and fresh[-1]["accuracy"] >= 0.97 and fresh[-1]["count"] >= 1000


def test_it_tells_fresh_synthetic_jedi_from_sith(holdout) -> None:
    classifier = Classifier.load(DEFAULT_MODEL_DIR, "litert")
    result = metrics(holdout.labels, classifier.scores(holdout.images))
    assert result["accuracy"] >= 0.95
    assert result["roc_auc"] >= 0.98


def test_both_backends_agree_on_the_shipped_model(holdout) -> None:
    images = holdout.images[::6]
    litert = Classifier.load(DEFAULT_MODEL_DIR, "litert").scores(images)
    tensorflow = Classifier.load(DEFAULT_MODEL_DIR, "tensorflow").scores(images)
    np.testing.assert_allclose(litert, tensorflow, atol=1e-4)


def test_default_model_path_is_inside_the_package() -> None:
    assert Path(__file__).resolve().parents[2] / "model" / "default" == DEFAULT_MODEL_DIR
