"""Export a trained network for serving: `model.tflite`, with `classify` and `features` signatures.

The inference graph starts at Rescaling (Keras' Random* layers do not convert and are identity at
inference anyway) and takes uint8 images, so callers never build float copies. The converted
graph is always checked against Keras before it is written: a conversion that silently loses
weights (as `from_concrete_functions` did here) is refused.
"""

from __future__ import annotations

import logging
import tempfile

import numpy as np

from model.architecture import CONV_LAYERS, IMAGE_SIZE, build_inference_model

log = logging.getLogger(__name__)

TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """The converted model does not compute what the Keras model computes."""


def export_tflite(model, check_images: np.ndarray | None = None) -> bytes:
    """Convert `model` (the training network) to LiteRT and verify it on `check_images`."""
    import keras
    import tensorflow as tf

    inference = build_inference_model(model)
    spec = [tf.TensorSpec([None, *IMAGE_SIZE, 3], tf.uint8, name="image")]

    def classify(image):
        return {"score": inference(tf.cast(image, tf.float32), training=False)[0]}

    def features(image):
        score, *maps = inference(tf.cast(image, tf.float32), training=False)
        return {"score": score, **dict(zip(CONV_LAYERS, maps, strict=True))}

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
    verify_tflite(flatbuffer, inference, check_images)
    return flatbuffer


def verify_tflite(flatbuffer: bytes, inference, images: np.ndarray) -> float:
    """Largest score difference between LiteRT and Keras on `images`; raises past TOLERANCE."""
    from model.runtime import LiteRTBackend

    backend = LiteRTBackend(flatbuffer)
    expected = np.asarray(inference(images.astype(np.float32), training=False)[0]).reshape(-1)
    got = backend.classify(images)
    got_features, _ = backend.features(images[:1])
    difference = float(
        max(np.max(np.abs(expected - got)), abs(float(expected[0]) - float(got_features[0])))
    )
    if not np.all(np.isfinite(got)) or difference > TOLERANCE:
        raise ExportError(
            f"the LiteRT model's scores differ from Keras' by {difference:.2g} "
            f"(tolerance {TOLERANCE}); not exporting a model that answers differently"
        )
    log.info("LiteRT export matches Keras: largest score difference %.2g", difference)
    return difference
