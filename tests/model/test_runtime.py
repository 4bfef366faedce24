"""The serving runtime: loading, both backends, predictions, and refusing broken model folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.bundle import ModelError, model_dir
from model.runtime import Classifier, Prediction, resolve_backend
from training.data import load_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(tiny_dataset: Path) -> np.ndarray:
    return load_dataset(tiny_dataset).images[:8]


@pytest.fixture(scope="module")
def litert(trained_model: Path) -> Classifier:
    return Classifier.load(trained_model, "litert")


def test_predictions_follow_the_scores(litert: Classifier, images: np.ndarray) -> None:
    scores = litert.scores(images)
    predictions = litert.predict(list(images))
    assert len(predictions) == len(images)
    for score, prediction in zip(scores, predictions, strict=True):
        assert prediction.score == pytest.approx(float(score))
        assert prediction.label == ("sith" if score >= 0.5 else "jedi")
        assert 0.5 <= prediction.confidence <= 1.0
    assert litert.predict([]) == []


def test_a_batch_scores_like_single_images(litert: Classifier, images: np.ndarray) -> None:
    batch = litert.scores(images)
    single = np.array([litert.scores(image[None])[0] for image in images])
    np.testing.assert_allclose(batch, single, atol=1e-6)


def test_features_give_five_maps_and_the_same_score(litert: Classifier, images: np.ndarray) -> None:
    maps = litert.features(images[0])
    assert maps.layers == ("conv1", "conv2", "conv3", "conv4", "conv5")
    assert [m.shape for m in maps.maps] == [
        (198, 198, 16),
        (97, 97, 32),
        (46, 46, 64),
        (21, 21, 64),
        (8, 8, 64),
    ]
    assert all(np.all(m >= 0) for m in maps.maps)  # after ReLU
    assert maps.score == pytest.approx(float(litert.scores(images[:1])[0]), abs=1e-6)


def test_tensorflow_backend_matches_litert(
    trained_model: Path, litert: Classifier, images: np.ndarray
) -> None:
    tensorflow = Classifier.load(trained_model, "tensorflow")
    np.testing.assert_allclose(tensorflow.scores(images), litert.scores(images), atol=1e-4)
    tf_maps = tensorflow.features(images[1]).maps
    lite_maps = litert.features(images[1]).maps
    for a, b in zip(tf_maps, lite_maps, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)
    tf_outputs = tensorflow.backend.classify(images)
    lite_outputs = litert.backend.classify(images)
    for name in ("embedding", "stats"):  # the features a server's head reads (model.head)
        np.testing.assert_allclose(tf_outputs[name], lite_outputs[name], rtol=1e-5, atol=1e-5)
    tf_distances = [p.distance for p in tensorflow.predict(images)]
    lite_distances = [p.distance for p in litert.predict(images)]
    np.testing.assert_allclose(tf_distances, lite_distances, rtol=1e-3)


def test_litert_features_match_keras(
    trained_model: Path, litert: Classifier, images: np.ndarray
) -> None:
    """`embedding` is the dense layer's 512 outputs after its ReLU; `stats` the detector's."""
    import keras

    from model.architecture import build_inference_model
    from model.detector import STAT_LAYERS, channel_statistics

    network = keras.saving.load_model(model_dir(trained_model) / "model.keras", compile=False)
    dense = keras.Model(network.input, network.get_layer("dense").output)
    outputs = build_inference_model(network)(images.astype(np.float32), training=False)
    got = litert.backend.classify(images)
    expected = np.asarray(dense(images.astype(np.float32), training=False))
    assert np.all(got["embedding"] >= 0)
    np.testing.assert_allclose(got["embedding"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        got["stats"], channel_statistics(outputs, STAT_LAYERS), rtol=1e-5, atol=1e-5
    )


def test_litert_distances_match_the_reference_on_keras_maps(
    trained_model: Path, litert: Classifier, images: np.ndarray
) -> None:
    import keras

    from model.architecture import build_inference_model
    from model.detector import channel_statistics

    network = keras.saving.load_model(model_dir(trained_model) / "model.keras", compile=False)
    outputs = build_inference_model(network)(images.astype(np.float32), training=False)
    maps = {name: np.asarray(outputs[name]) for name in litert.detector.layers}
    statistics = channel_statistics(maps, litert.detector.layers)
    logits = np.asarray(outputs["logit"]).reshape(-1)
    expected = litert.detector.combined(statistics, logits, images)
    got = np.array([p.distance for p in litert.predict(images)])
    np.testing.assert_allclose(got, expected, rtol=1e-3)


def test_predictions_carry_the_calibrated_score_and_the_detector(
    litert: Classifier, images: np.ndarray
) -> None:
    assert litert.calibration is not None and litert.detector is not None
    outputs = litert.backend.classify(images)
    assert set(outputs) == {"score", "logit", "distance", "embedding", "stats"}
    assert outputs["embedding"].shape == (len(images), 512)
    assert outputs["stats"].shape == (len(images), 288)
    predictions = litert.predict(images)
    expected = litert.calibration.apply(outputs["logit"])
    for prediction, score, raw, distance in zip(
        predictions, expected, outputs["score"], outputs["distance"], strict=True
    ):
        assert prediction.score == pytest.approx(float(score))
        assert prediction.raw_score == pytest.approx(float(raw))
        assert prediction.distance == pytest.approx(float(distance))
        assert prediction.threshold == litert.detector.threshold
        assert prediction.in_distribution == (distance <= litert.detector.threshold)
    features = litert.features(images[0])
    assert features.prediction.distance == pytest.approx(predictions[0].distance, rel=1e-5)


def test_a_folder_without_a_detector_still_serves(
    old_model: Path, images: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="model.runtime"):
        old = Classifier.load(old_model, "litert")
    notes = [r for r in caplog.records if "no out-of-distribution detector" in r.getMessage()]
    assert len(notes) == 1
    assert old.detector is None and old.calibration is None
    for prediction in old.predict(images):
        assert prediction.distance is None and prediction.in_distribution is None
        assert prediction.raw_score is None
    assert old.features(images[0]).prediction.in_distribution is None


def test_outputs_of_a_graph_with_only_a_score(litert: Classifier) -> None:
    """A model.tflite exported before the logit and distance existed gives only `score`."""
    from model.runtime import Classifier as Fresh

    bare = Fresh(litert.backend, litert.info, calibration=litert.calibration, detector=None)
    (prediction,) = bare.predictions({"score": np.array([0.8], np.float32)})
    assert prediction.score == pytest.approx(0.8)  # no logit: the raw score, uncalibrated
    assert prediction.label == "sith" and prediction.in_distribution is None


def test_wrong_input_shape_is_refused(litert: Classifier) -> None:
    with pytest.raises(ValueError, match="uint8 images of shape"):
        litert.scores(np.zeros((1, 100, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        litert.scores(np.zeros((1, 200, 200, 3), np.float32))


def test_missing_and_broken_model_folders(tmp_path: Path, trained_model: Path) -> None:
    with pytest.raises(ModelError, match="no model folder"):
        Classifier.load(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match=r"model\.json is missing"):
        Classifier.load(empty, "litert")

    tampered = tmp_path / "tampered"
    shutil.copytree(trained_model, tampered)
    data = bytearray((model_dir(tampered) / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_dir(tampered) / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the hash"):
        Classifier.load(tampered, "litert")

    garbage = tmp_path / "garbage"
    shutil.copytree(trained_model, garbage)
    (model_dir(garbage) / "model.tflite").write_bytes(b"not a flatbuffer")
    meta = json.loads((model_dir(garbage) / "model.json").read_text())
    del meta["files"]
    (model_dir(garbage) / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="not a jedisith model"):
        Classifier.load(garbage, "litert")

    wrong_detector = tmp_path / "wrong-detector"
    shutil.copytree(trained_model, wrong_detector)
    (model_dir(wrong_detector) / "detector.npz").write_bytes(b"swapped")
    with pytest.raises(ModelError, match=r"detector\.npz does not match the hash"):
        Classifier.load(wrong_detector, "litert")

    bad_meta = tmp_path / "bad-meta"
    shutil.copytree(trained_model, bad_meta)
    (model_dir(bad_meta) / "model.json").write_text('{"class_names": ["jedi"]}')
    with pytest.raises(ModelError, match=r"model\.json"):
        Classifier.load(bad_meta, "litert")


def test_backend_names() -> None:
    assert resolve_backend("litert") == "litert"
    assert resolve_backend("tensorflow") == "tensorflow"
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("onnx")


@pytest.mark.parametrize(
    ("driver", "installed", "gpu", "expected"),
    [
        (False, True, True, "litert"),  # no NVIDIA driver: TensorFlow is never even imported
        (True, False, True, "litert"),  # a GPU but no TensorFlow extra
        (True, True, False, "litert"),  # a driver, but TensorFlow sees no GPU
        (True, True, True, "tensorflow"),
    ],
)
def test_auto_picks_tensorflow_only_for_a_usable_gpu(
    monkeypatch, driver: bool, installed: bool, gpu: bool, expected: str
) -> None:
    import model.runtime as runtime

    monkeypatch.setattr(runtime, "_has_gpu_driver", lambda: driver)
    monkeypatch.setattr(runtime, "tensorflow_installed", lambda: installed)

    def gpu_available() -> bool:
        assert driver and installed, "TensorFlow was asked about a GPU it cannot use"
        return gpu

    monkeypatch.setattr(runtime, "gpu_available", gpu_available)
    assert resolve_backend("auto") == expected


def test_prediction_confidence() -> None:
    assert Prediction("jedi", 0.1).confidence == pytest.approx(0.9)
    assert Prediction("sith", 0.75).confidence == pytest.approx(0.75)
