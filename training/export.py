"""Export a trained network for serving: `model.tflite`, with `classify` and `features` signatures.

The inference graph starts at Rescaling (Keras' Random* layers do not convert and are identity at
inference anyway) and takes uint8 images, so callers never build float copies. `classify` gives
`score`, `logit` and, with a detector, its `distance`, all from one forward pass; `features` adds
the five feature maps. The converted graph is always checked against Keras (and the detector
against its NumPy reference) before it is written: a conversion that silently loses weights (as
`from_concrete_functions` did here) is refused.
"""

from __future__ import annotations

import logging
import tempfile

import numpy as np

from model.architecture import CONV_LAYERS, IMAGE_SIZE, build_inference_model
from model.detector import Detector, heads_graph

log = logging.getLogger(__name__)

TOLERANCE = 1e-4
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
        return heads_graph(inference(tf.cast(image, tf.float32), training=False), detector)

    def features(image):
        outputs = inference(tf.cast(image, tf.float32), training=False)
        return {**heads_graph(outputs, detector), **{name: outputs[name] for name in CONV_LAYERS}}

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
    if detector is not None:
        maps = {name: np.asarray(outputs[name]) for name in detector.layers}
        reference = detector.distances_of_maps(maps)
        distance = got.get("distance", np.full_like(reference, np.nan))
        relative = np.abs(distance - reference) / np.maximum(reference, 1.0)
        if not np.all(relative <= DISTANCE_TOLERANCE):  # NaN (no distance) fails too
            raise ExportError(
                "the LiteRT model's detector distances differ from the reference by up to "
                f"{float(np.max(relative)):.2g} (relative; tolerance {DISTANCE_TOLERANCE})"
            )
    log.info("LiteRT export matches Keras: largest score difference %.2g", difference)
    return difference
