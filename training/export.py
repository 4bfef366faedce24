"""Export a trained network for serving: `model.tflite`, with `classify` and `features` signatures.

The inference graph starts at Rescaling (Keras' Random* layers do not convert and are identity at
inference anyway) and takes uint8 images, so callers never build float copies. `classify` gives
`score`, `logit`, the features a server's head reads (`embedding`: the `dense` layer's 512
outputs; `stats`: the detector's 288 statistics) and, with a detector, its `distance`, all from one
forward pass; `features` adds the five feature maps. `python -m training.export MODEL_DIR`
re-exports a model folder's `model.tflite` from its `model.keras` and `detector.npz` (same
weights), checks that its scores did not move, and records the new hashes in `model.json`.
The converted graph is always checked against Keras (features included, and the detector
against its NumPy reference) before it is written: a conversion that silently loses weights (as
`from_concrete_functions` did here) is refused.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from model.architecture import CONV_LAYERS, IMAGE_SIZE, build_inference_model
from model.bundle import DETECTOR_FILE, KERAS_FILE, TFLITE_FILE, model_dir, seal
from model.detector import STAT_LAYERS, Detector, channel_statistics, heads_graph

log = logging.getLogger(__name__)

TOLERANCE = 1e-4
FEATURE_TOLERANCE = 1e-4  # relative to the feature's scale: `embedding` and `stats`
DISTANCE_TOLERANCE = 1e-3  # relative: float32 statistics of 40,000 activations against float64


class ExportError(RuntimeError):
    """The converted model does not compute what the Keras model computes."""


def export_tflite(
    model, check_images: np.ndarray | None = None, detector: Detector | None = None
) -> bytes:
    """Convert `model` (the training network) to LiteRT and verify it on `check_images`."""
    import keras
    import tensorflow as tf

    inference = build_inference_model(model)
    spec = [tf.TensorSpec([None, *IMAGE_SIZE, 3], tf.uint8, name="image")]

    def classify(image):
        outputs = inference(tf.cast(image, tf.float32), training=False)
        return heads_graph(outputs, detector, image)

    def features(image):
        outputs = inference(tf.cast(image, tf.float32), training=False)
        heads = heads_graph(outputs, detector, image)
        return {**heads, **{name: outputs[name] for name in CONV_LAYERS}}

    archive = keras.export.ExportArchive()
    archive.track(inference)
    archive.add_endpoint("classify", classify, input_signature=spec)
    archive.add_endpoint("features", features, input_signature=spec)
    with tempfile.TemporaryDirectory() as saved_model:
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model, signature_keys=["classify", "features"]
        )
        flatbuffer = converter.convert()

    if check_images is None:
        check_images = np.random.default_rng(0).integers(0, 256, (4, *IMAGE_SIZE, 3), np.uint8)
    verify_tflite(flatbuffer, inference, check_images, detector)
    return flatbuffer


def verify_tflite(
    flatbuffer: bytes, inference, images: np.ndarray, detector: Detector | None = None
) -> float:
    """Largest score difference between LiteRT and Keras on `images`; raises past TOLERANCE.

    With a detector, LiteRT's distances must also match the NumPy reference on Keras' maps.
    """
    from model.runtime import LiteRTBackend

    backend = LiteRTBackend(flatbuffer)
    outputs = inference(images.astype(np.float32), training=False)
    expected = np.asarray(outputs["score"]).reshape(-1)
    got = backend.classify(images)
    got_features, _ = backend.features(images[:1])
    difference = float(
        max(
            np.max(np.abs(expected - got["score"])),
            abs(float(expected[0]) - float(got_features["score"][0])),
        )
    )
    if not np.all(np.isfinite(got["score"])) or difference > TOLERANCE:
        raise ExportError(
            f"the LiteRT model's scores differ from Keras' by {difference:.2g} "
            f"(tolerance {TOLERANCE}); not exporting a model that answers differently"
        )
    features = {
        "embedding": np.asarray(outputs["embedding"]),
        "stats": channel_statistics(outputs, STAT_LAYERS),
    }
    for name, reference in features.items():
        value = got.get(name)
        gap = np.inf if value is None else float(np.max(np.abs(value - reference)))
        if not gap <= FEATURE_TOLERANCE * max(1.0, float(np.max(np.abs(reference)))):
            raise ExportError(
                f"the LiteRT model's {name} differs from Keras' by {gap:.2g}; not exporting"
            )
    if detector is not None:
        maps = {name: np.asarray(outputs[name]) for name in detector.layers}
        statistics = channel_statistics(maps, detector.layers)
        logits = np.asarray(outputs["logit"]).reshape(-1)
        reference = detector.combined(statistics, logits, images)
        distance = got.get("distance", np.full_like(reference, np.nan))
        relative = np.abs(distance - reference) / np.maximum(reference, 1.0)
        if not np.all(relative <= DISTANCE_TOLERANCE):  # NaN (no distance) fails too
            raise ExportError(
                "the LiteRT model's detector distances differ from the reference by up to "
                f"{float(np.max(relative)):.2g} (relative; tolerance {DISTANCE_TOLERANCE})"
            )
    log.info("LiteRT export matches Keras: largest score difference %.2g", difference)
    return difference


def reexport(folder: Path, check_images: np.ndarray | None = None) -> float:
    """Rewrite `folder`'s `model.tflite` from its `model.keras` and `detector.npz` (the weights
    stay; `model.keras` is not rewritten), refuse if any score moves by more than 1e-6 on
    `check_images`, and record the new hashes in `model.json`. Returns the largest move."""
    import keras

    from model.runtime import LiteRTBackend

    folder = model_dir(Path(folder))
    detector_path = folder / DETECTOR_FILE
    detector = Detector.from_bytes(detector_path.read_bytes()) if detector_path.exists() else None
    if check_images is None:
        check_images = synthetic_samples()
    before = LiteRTBackend((folder / TFLITE_FILE).read_bytes()).classify(check_images)
    network = keras.saving.load_model(folder / KERAS_FILE, compile=False)
    flatbuffer = export_tflite(network, check_images, detector)
    after = LiteRTBackend(flatbuffer).classify(check_images)
    moved = max(  # relative to 1, or to the output's size (a distance is about 10)
        float(np.max(np.abs(before[name] - after[name]) / np.maximum(np.abs(before[name]), 1.0)))
        for name in before
    )
    if moved > 1e-6:
        raise ExportError(f"re-exporting moved the outputs by {moved:.2g}; {folder} left as it is")
    (folder / TFLITE_FILE).write_bytes(flatbuffer)
    seal(folder)
    return moved


def synthetic_samples(count: int = 8, seed: int = 0) -> np.ndarray:
    """`count` synthetic drawings (half Jedi, half Sith; `training.synthetic`) as uint8 images."""
    from training.synthetic import draw_scene

    rng = np.random.default_rng(seed)
    scenes = [draw_scene(("jedi", "sith")[i % 2], rng) for i in range(count)]
    return np.stack([np.asarray(scene.convert("RGB"), np.uint8) for scene in scenes])


def main(argv: list[str] | None = None) -> int:
    """`python -m training.export MODEL_DIR`: re-export a model folder's `model.tflite`."""
    parser = argparse.ArgumentParser(prog="python -m training.export", description=main.__doc__)
    parser.add_argument("model_dir", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        moved = reexport(args.model_dir)
    except ExportError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"Re-exported {args.model_dir}: outputs moved by at most {moved:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
