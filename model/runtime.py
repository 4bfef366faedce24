"""Run the network: one `Classifier` interface over two backends.

- `litert`: the exported `model.tflite` on LiteRT's CPU kernels (XNNPACK). The default without a
  GPU: it imports in a fraction of a second and serves in tens of megabytes.
- `tensorflow`: `model.keras` in TensorFlow, compiled with `tf.function`; picked by `auto` when a
  GPU is visible (with memory growth on, as in the notebook).

Both take batches of (200, 200, 3) uint8 arrays from `model.preprocess` and give the same outputs
(to about 1e-6): the network's score and logit and, when the model folder has one, the
out-of-distribution detector's distance (`model.detector`). The `Classifier` turns them into a
`Prediction`: the calibrated probability of the second class ("sith"; `model.calibration`), the
raw score, and whether the image looks like what the network was trained on.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from model.architecture import CONV_LAYERS
from model.bundle import (
    DETECTOR_FILE,
    KERAS_FILE,
    TFLITE_FILE,
    ModelError,
    ModelInfo,
    read_model_files,
)
from model.calibration import Calibration
from model.detector import Detector, DetectorError, heads_graph
from model.litert_log import without_banner

log = logging.getLogger(__name__)

BackendName = Literal["auto", "litert", "tensorflow"]
BACKENDS: tuple[str, ...] = ("auto", "litert", "tensorflow")


@dataclass(frozen=True)
class Prediction:
    """The verdict for one image: the winning class and the probability of the second class.

    `score` is calibrated; `raw_score` is the network's own (None: no calibration, the same).
    `distance` and `threshold` are the detector's (None: the model has no detector).
    """

    label: str
    score: float
    raw_score: float | None = None
    distance: float | None = None
    threshold: float | None = None

    @property
    def confidence(self) -> float:
        """How sure the network is of `label`, from 0.5 to 1."""
        return max(self.score, 1.0 - self.score)

    @property
    def in_distribution(self) -> bool | None:
        """Whether the image looks like the training images; None without a detector."""
        if self.distance is None or self.threshold is None:
            return None
        return self.distance <= self.threshold


@dataclass(frozen=True)
class FeatureMaps:
    """The outputs of the five convolutions for one image, each (height, width, channels),
    and the verdict of the same forward pass."""

    prediction: Prediction
    layers: tuple[str, ...]
    maps: tuple[np.ndarray, ...]

    @property
    def score(self) -> float:
        return self.prediction.score


Outputs = dict[str, np.ndarray]
"""A backend's per-image outputs, each (n,): `score`, and `logit` and `distance` when the model
has them (a model folder made before calibration and the detector has only `score`); and, from a
model exported since heads existed, the features `embedding` (n, 512) and `stats` (n, 288)."""


class Backend(Protocol):
    name: str

    def classify(self, images: np.ndarray) -> Outputs:
        """The outputs for a (n, 200, 200, 3) uint8 batch."""
        ...

    def features(self, images: np.ndarray) -> tuple[Outputs, list[np.ndarray]]:
        """The outputs and the five feature-map batches for a (n, 200, 200, 3) uint8 batch."""
        ...


class LiteRTBackend:
    """The `classify` and `features` signatures of `model.tflite` on LiteRT."""

    name = "litert"

    def __init__(self, model_content: bytes, num_threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            self._interpreter = Interpreter(
                model_content=model_content, num_threads=num_threads or default_threads()
            )
            self._classify = self._interpreter.get_signature_runner("classify")
            self._features = self._interpreter.get_signature_runner("features")
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"model.tflite is not a jedisith model: {error}") from None

    def classify(self, images: np.ndarray) -> Outputs:
        with without_banner():  # XNNPACK is applied, and announced, at the first run
            return _flat(self._classify(image=images))

    def features(self, images: np.ndarray) -> tuple[Outputs, list[np.ndarray]]:
        with without_banner():
            out = self._features(image=images)
        return _flat(out), [np.array(out[name]) for name in CONV_LAYERS]


HEADS = ("score", "logit", "distance")
FEATURES = ("embedding", "stats")  # per-image vectors a server's head reads (model.head)


def _flat(outputs: dict) -> Outputs:
    """The per-image heads of a signature's outputs, as (n,) arrays, and its feature vectors, as
    (n, d) arrays, all owning their memory."""
    flat = {
        name: np.array(outputs[name], dtype=np.float32).reshape(-1)
        for name in HEADS
        if name in outputs
    }
    for name in FEATURES:
        if name in outputs:
            values = np.array(outputs[name], dtype=np.float32)
            flat[name] = values.reshape(values.shape[0], -1)
    return flat


class TensorFlowBackend:
    """`model.keras` in TensorFlow, traced once per signature with `tf.function`."""

    name = "tensorflow"

    def __init__(self, keras_bytes: bytes, detector: Detector | None = None) -> None:
        tf = import_tensorflow()
        enable_memory_growth()
        import keras

        from model.architecture import build_inference_model

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / KERAS_FILE
            path.write_bytes(keras_bytes)
            try:
                trained = keras.saving.load_model(path, compile=False)
                inference = build_inference_model(trained)
            except (ValueError, OSError, KeyError) as error:
                raise ModelError(f"model.keras cannot be loaded: {error}") from None
        spec = [tf.TensorSpec([None, None, None, 3], tf.uint8)]

        @tf.function(input_signature=spec)
        def run_all(images):
            outputs = inference(tf.cast(images, tf.float32), training=False)
            heads = heads_graph(outputs, detector, images)
            return heads, [outputs[name] for name in CONV_LAYERS]

        @tf.function(input_signature=spec)
        def run_heads(images):
            outputs = inference(tf.cast(images, tf.float32), training=False)
            return heads_graph(outputs, detector, images)

        self._all = run_all
        self._heads = run_heads
        self.device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"

    def classify(self, images: np.ndarray) -> Outputs:
        return _flat({name: value.numpy() for name, value in self._heads(images).items()})

    def features(self, images: np.ndarray) -> tuple[Outputs, list[np.ndarray]]:
        outputs, maps = self._all(images)
        return _flat({name: value.numpy() for name, value in outputs.items()}), [
            m.numpy() for m in maps
        ]


class Classifier:
    """A loaded model: class names, metadata, a backend that runs it, and what makes its
    answers honest (the calibration of its scores and its out-of-distribution detector)."""

    def __init__(
        self,
        backend: Backend,
        info: ModelInfo,
        path: Path | None = None,
        *,
        calibration: Calibration | None = None,
        detector: Detector | None = None,
    ) -> None:
        self.backend = backend
        self.info = info
        self.path = path
        self.calibration = calibration
        self.detector = detector

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        backend: BackendName | str = "auto",
        num_threads: int | None = None,
    ) -> Classifier:
        """Load the model folder at `path` with the named backend (`auto`: GPU -> tensorflow)."""
        folder = Path(path)
        if not folder.is_dir():
            raise ModelError(f"no model folder at {folder}")
        choice = resolve_backend(backend)
        name = TFLITE_FILE if choice == "litert" else KERAS_FILE
        info, files = read_model_files(folder, name, optional=(DETECTOR_FILE,))
        try:
            detector = Detector.from_bytes(files[DETECTOR_FILE]) if DETECTOR_FILE in files else None
        except DetectorError as error:
            raise ModelError(str(error)) from None
        runner: Backend
        if choice == "litert":
            runner = LiteRTBackend(files[name], num_threads=num_threads)
        else:
            runner = TensorFlowBackend(files[name], detector)
        classifier = cls(runner, info, folder, calibration=calibration_of(info), detector=detector)
        classifier.warm_up()
        if detector is None:
            log.warning(
                "%s has no out-of-distribution detector or calibration (made before they "
                "existed): every image gets a verdict, with the network's raw score",
                folder,
            )
        return classifier

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def warm_up(self) -> None:
        """Run one blank image through both signatures so the first user does not wait,
        and check that the graph gives the distance the detector promises."""
        blank = np.zeros((1, *self.info.image_size, 3), dtype=np.uint8)
        outputs = self.backend.classify(blank)
        self.backend.features(blank)
        if self.detector is not None and "distance" not in outputs:
            raise ModelError(f"{DETECTOR_FILE} is present but the model gives no distance")

    def scores(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the second class for a batch of preprocessed images."""
        return np.array([p.score for p in self.predict(images)], dtype=np.float64)

    def predict(self, images: Sequence[np.ndarray] | np.ndarray) -> list[Prediction]:
        """A `Prediction` per preprocessed image, in order."""
        if len(images) == 0:
            return []
        return self.predictions(self.outputs(images))

    def outputs(self, images: Sequence[np.ndarray] | np.ndarray) -> Outputs:
        """The backend's outputs for a batch of preprocessed images (what a head reads)."""
        return self.backend.classify(self._batch(images))

    def predictions(self, outputs: Outputs) -> list[Prediction]:
        """Turn a backend's outputs into verdicts: calibrated score, label, distance."""
        raw = outputs["score"].astype(np.float64)
        calibrated = raw
        if self.calibration is not None and "logit" in outputs:
            calibrated = self.calibration.apply(outputs["logit"])
        distances = outputs.get("distance") if self.detector is not None else None
        threshold = self.detector.threshold if self.detector is not None else None
        negative, positive = self.info.class_names
        return [
            Prediction(
                positive if score >= 0.5 else negative,
                float(score),
                raw_score=float(raw[i]) if self.calibration is not None else None,
                distance=float(distances[i]) if distances is not None else None,
                threshold=threshold,
            )
            for i, score in enumerate(calibrated)
        ]

    def features(self, image: np.ndarray) -> FeatureMaps:
        """The verdict and the five convolutions' feature maps for one preprocessed image."""
        outputs, maps = self.backend.features(self._batch([image]))
        prediction = self.predictions(outputs)[0]
        return FeatureMaps(prediction, CONV_LAYERS, tuple(m[0] for m in maps))

    def _batch(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        batch = images if isinstance(images, np.ndarray) else np.stack(images)
        expected = (*self.info.image_size, 3)
        if batch.ndim != 4 or batch.shape[1:] != expected or batch.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 images of shape {expected}, got {batch.dtype} {batch.shape[1:]}"
            )
        return np.ascontiguousarray(batch)


@dataclass(frozen=True)
class ServerNetwork:
    """A server's own network, served to that server instead of the shared one: its own
    weights, calibration and detector (`figures`: what its server version records)."""

    classifier: Classifier
    figures: dict = field(default_factory=dict)

    def predictions(self, images: np.ndarray) -> list[Prediction]:
        """Verdicts for a (n, 200, 200, 3) uint8 batch, by this network alone."""
        return self.classifier.predict(images)


def calibration_of(info: ModelInfo) -> Calibration | None:
    """The calibration recorded in `model.json`, or None for a folder made before it."""
    recorded = info.raw.get("calibration")
    if not isinstance(recorded, dict) or "temperature" not in recorded:
        return None
    try:
        return Calibration(float(recorded["temperature"]))
    except (TypeError, ValueError) as error:
        raise ModelError(f"model.json has a bad calibration: {error}") from None


def default_threads() -> int:
    """Threads for LiteRT: every core this process may use, at most four."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


TENSORFLOW_EXTRA = "pip install 'jedisith[train]'"
"""What installs TensorFlow (and Keras): training and the tensorflow backend need it, serving on
LiteRT does not."""


def tensorflow_installed() -> bool:
    """Whether TensorFlow is installed (the `train` extra), without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def import_tensorflow():
    """The `tensorflow` module, with Keras importable; else a one-line `ModelError` that says
    how to install them."""
    import importlib

    try:
        tf = importlib.import_module("tensorflow")
        importlib.import_module("keras")  # the backend needs both; TensorFlow installs Keras
    except ImportError as error:
        name = error.name if isinstance(error, ModuleNotFoundError) else None
        if (name or "").partition(".")[0] in ("tensorflow", "keras"):
            raise ModelError(
                f"the tensorflow backend needs TensorFlow, which is not installed: "
                f"{TENSORFLOW_EXTRA} (or use the litert backend)"
            ) from None
        raise ModelError(
            f"the tensorflow backend cannot import TensorFlow ({error}); reinstall it: "
            f"{TENSORFLOW_EXTRA}"
        ) from None
    return tf


def gpu_available() -> bool:
    """Whether TensorFlow can see a GPU. Imports TensorFlow, so only asked when it matters;
    False when TensorFlow is not installed or cannot be imported."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return False
    try:
        tf = import_tensorflow()
    except ModelError as error:
        log.warning("%s; serving on litert", error)
        return False
    return bool(tf.config.list_physical_devices("GPU"))


def resolve_backend(name: str) -> str:
    """Turn `auto` into a concrete backend: tensorflow with a GPU, else litert.

    Without TensorFlow installed, `auto` is litert even with a GPU (saying so once in the log);
    an explicit `tensorflow` stays tensorflow, and loading it says what to install.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    if not _has_gpu_driver():
        return "litert"
    if not tensorflow_installed():
        _say_no_tensorflow_for_gpu()
        return "litert"
    return "tensorflow" if gpu_available() else "litert"


@functools.cache
def _say_no_tensorflow_for_gpu() -> None:
    log.info(
        "a GPU is present but the TensorFlow extra is not installed: serving on litert "
        "(for the GPU: %s)",
        TENSORFLOW_EXTRA,
    )


def _has_gpu_driver() -> bool:
    # Importing TensorFlow costs seconds and a gigabyte; skip it when no NVIDIA driver exists.
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists()


def enable_memory_growth() -> None:
    """Let TensorFlow take GPU memory as it needs it, as the notebook does.

    Raises `ModelError` (naming the extra to install) without TensorFlow."""
    tf = import_tensorflow()
    for device in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(device, True)
        except RuntimeError:  # already initialised: growth must be set before first use
            log.debug("memory growth not changed on %s: GPU already initialised", device.name)
