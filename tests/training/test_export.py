"""Re-exporting a model folder (`python -m training.export`): same weights, same scores, new
outputs for the heads, hashes recorded by the project's own code."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from model.bundle import DEFAULT_MODEL_DIR, read_info, read_model_file
from model.runtime import Classifier
from training.export import main, synthetic_samples

pytestmark = pytest.mark.slow


def test_reexporting_the_shipped_model_keeps_its_weights_and_scores(tmp_path: Path) -> None:
    folder = tmp_path / "default"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    samples = synthetic_samples(16, seed=3)
    before = Classifier.load(folder, "litert").backend.classify(samples)
    assert main([str(folder)]) == 0
    assert (folder / "model.keras").read_bytes() == (DEFAULT_MODEL_DIR / "model.keras").read_bytes()
    read_model_file(folder, "model.tflite")  # raises unless model.json has the new hash
    assert read_info(folder).raw["detector"] == read_info(DEFAULT_MODEL_DIR).raw["detector"]
    after = Classifier.load(folder, "litert").backend.classify(samples)
    for name in ("score", "logit"):
        np.testing.assert_allclose(after[name], before[name], atol=1e-6)
    np.testing.assert_allclose(after["distance"], before["distance"], rtol=1e-6)
    assert after["embedding"].shape == (16, 512) and after["stats"].shape == (16, 288)


def test_the_shipped_model_gives_the_features_of_heads() -> None:
    outputs = Classifier.load(DEFAULT_MODEL_DIR, "litert").backend.classify(synthetic_samples(4))
    assert outputs["embedding"].shape == (4, 512) and np.all(outputs["embedding"] >= 0)
    assert outputs["stats"].shape == (4, 288)


def test_a_model_exported_before_heads_serves_but_refuses_heads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `model.tflite` whose signatures give no `embedding` or `stats` (exported before heads
    existed) still serves its own verdicts; a head on its outputs is refused, saying why."""
    import keras

    import training.export as export
    from model.bundle import seal
    from model.detector import Detector, distance_graph
    from model.head import HeadError, fit_head

    def old_heads(outputs, detector, images):
        heads = {"score": outputs["score"], "logit": outputs["logit"]}
        if detector is not None:
            heads["distance"] = distance_graph(detector, outputs, None, outputs["logit"], images)
        return heads

    monkeypatch.setattr(export, "heads_graph", old_heads)
    monkeypatch.setattr(export, "verify_tflite", lambda *args, **kwargs: 0.0)
    folder = tmp_path / "old"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    network = keras.saving.load_model(folder / "model.keras", compile=False)
    detector = Detector.from_bytes((folder / "detector.npz").read_bytes())
    (folder / "model.tflite").write_bytes(export.export_tflite(network, detector=detector))
    seal(folder)

    old = Classifier.load(folder, "litert")
    samples = synthetic_samples(4)
    outputs = old.backend.classify(samples)
    assert set(outputs) == {"score", "logit", "distance"}
    shipped = Classifier.load(DEFAULT_MODEL_DIR, "litert").predict(samples)
    for got, expected in zip(old.predict(samples), shipped, strict=True):
        assert got.label == expected.label
        assert got.score == pytest.approx(expected.score, abs=1e-6)
    with pytest.raises(HeadError, match="re-export"):
        fit_head(outputs, np.array([0, 1, 0, 1]), ("jedi", "sith"), backbone="x")
