"""Evaluation metrics and recording an evaluation in model.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.bundle import model_dir
from training.evaluate import confusion, main, metrics, roc_auc


def test_metrics_on_a_known_case() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.6, 0.2, 0.9, 0.8, 0.4, 0.7])
    result = metrics(labels, scores)
    # predicted: 0 1 0 1 1 0 1 -> tp 3, tn 2, fp 1, fn 1
    assert result["accuracy"] == pytest.approx(5 / 7)
    assert result["precision"] == pytest.approx(3 / 4)
    assert result["recall"] == pytest.approx(3 / 4)
    assert confusion(labels, scores).tolist() == [[2, 1], [1, 3]]


def test_roc_auc_matches_pairwise_counting() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) * 0.5 + labels * 0.3, 2)  # with ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(labels, scores) == pytest.approx(pairs / (len(pos) * len(neg)))
    assert roc_auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


@pytest.mark.slow
def test_evaluate_cli_records_in_model_json(
    trained_model: Path, tiny_dataset: Path, tmp_path: Path, capsys
) -> None:
    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    live = model_dir(model)
    live_before = (live / "model.json").read_bytes()
    code = main([str(tiny_dataset), "--model", str(model), "--record", "tiny set, seed 11"])
    assert code == 0
    # The live version was not rewritten: the evaluation is a new version, now current.
    assert (live / "model.json").read_bytes() == live_before
    assert model_dir(model) != live
    printed = json.loads(capsys.readouterr().out)
    assert printed["count"] == 48
    meta = json.loads((model_dir(model) / "model.json").read_text())
    [evaluation] = meta["evaluations"]
    assert evaluation["data"] == "tiny set, seed 11"
    assert evaluation["accuracy"] == pytest.approx(printed["accuracy"])
    assert set(meta["files"]) == {"model.keras", "model.tflite", "detector.npz"}  # hashes survive


def test_evaluate_cli_errors(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "none"), "--model", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("error: ")
