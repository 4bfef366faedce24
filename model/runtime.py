"""Run the network: one `Classifier` interface over two backends.

- `litert`: the exported `model.tflite` on LiteRT's CPU kernels (XNNPACK). The default without a
  GPU: it imports in a fraction of a second and serves in tens of megabytes.
- `tensorflow`: `model.keras` in TensorFlow, compiled with `tf.function`; picked by `auto` when a
  GPU is visible (with memory growth on, as in the notebook).

Both take batches of (200, 200, 3) uint8 arrays from `model.preprocess` and give the same scores
(to about 1e-6). The score is the network's probability of the second class ("sith").
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from model.architecture import CONV_LAYERS
from model.bundle import KERAS_FILE, TFLITE_FILE, ModelError, ModelInfo, read_model_file

log = logging.getLogger(__name__)

BackendName = Literal["auto", "litert", "tensorflow"]
BACKENDS: tuple[str, ...] = ("auto", "litert", "tensorflow")


@dataclass(frozen=True)
class Prediction:
    """The verdict for one image: the winning class and the probability of the second class."""

    label: str
    score: float

    @property
    def confidence(self) -> float:
        """How sure the network is of `label`, from 0.5 to 1."""
        return max(self.score, 1.0 - self.score)


@dataclass(frozen=True)
class FeatureMaps:
    """The outputs of the five convolutions for one image, each (height, width, channels)."""

    score: float
    layers: tuple[str, ...]
    maps: tuple[np.ndarray, ...]


class Backend(Protocol):
    name: str

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Scores, shape (n,), for a (n, 200, 200, 3) uint8 batch."""
        ...

    def features(self, images: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Scores and the five feature-map batches for a (n, 200, 200, 3) uint8 batch."""
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

    def classify(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self._classify(image=images)["score"]).reshape(-1).copy()

    def features(self, images: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        out = self._features(image=images)
        return np.asarray(out["score"]).reshape(-1).copy(), [
            np.array(out[name]) for name in CONV_LAYERS
        ]


class TensorFlowBackend:
    """`model.keras` in TensorFlow, traced once per signature with `tf.function`."""

    name = "tensorflow"

    def __init__(self, keras_bytes: bytes) -> None:
        import tensorflow as tf

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
            return inference(tf.cast(images, tf.float32), training=False)

        @tf.function(input_signature=spec)
        def run_score(images):
            return inference(tf.cast(images, tf.float32), training=False)[0]

        self._all = run_all
        self._score = run_score
        self.device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"

    def classify(self, images: np.ndarray) -> np.ndarray:
        return self._score(images).numpy().reshape(-1)

    def features(self, images: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        score, *maps = self._all(images)
        return score.numpy().reshape(-1), [m.numpy() for m in maps]


class Classifier:
    """A loaded model: class names, metadata and a backend that runs it."""

    def __init__(self, backend: Backend, info: ModelInfo, path: Path | None = None) -> None:
        self.backend = backend
        self.info = info
        self.path = path

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
        if choice == "litert":
            info, data = read_model_file(folder, TFLITE_FILE)
            runner: Backend = LiteRTBackend(data, num_threads=num_threads)
        else:
            info, data = read_model_file(folder, KERAS_FILE)
            runner = TensorFlowBackend(data)
        classifier = cls(runner, info, folder)
        classifier.warm_up()
        return classifier

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def warm_up(self) -> None:
        """Run one blank image through both signatures so the first user does not wait."""
        blank = np.zeros((1, *self.info.image_size, 3), dtype=np.uint8)
        self.backend.classify(blank)
        self.backend.features(blank)

    def scores(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Probabilities of the second class for a batch of preprocessed images."""
        if len(images) == 0:
            return np.zeros((0,), dtype=np.float32)
        return self.backend.classify(self._batch(images))

    def predict(self, images: Sequence[np.ndarray] | np.ndarray) -> list[Prediction]:
        """A `Prediction` per preprocessed image, in order."""
        return [self.prediction(float(s)) for s in self.scores(images)]

    def prediction(self, score: float) -> Prediction:
        negative, positive = self.info.class_names
        return Prediction(positive if score >= 0.5 else negative, score)

    def features(self, image: np.ndarray) -> FeatureMaps:
        """The score and the five convolutions' feature maps for one preprocessed image."""
        scores, maps = self.backend.features(self._batch([image]))
        return FeatureMaps(float(scores[0]), CONV_LAYERS, tuple(m[0] for m in maps))

    def _batch(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        batch = images if isinstance(images, np.ndarray) else np.stack(images)
        expected = (*self.info.image_size, 3)
        if batch.ndim != 4 or batch.shape[1:] != expected or batch.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 images of shape {expected}, got {batch.dtype} {batch.shape[1:]}"
            )
        return np.ascontiguousarray(batch)


def default_threads() -> int:
    """Threads for LiteRT: every core this process may use, at most four."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def gpu_available() -> bool:
    """Whether TensorFlow can see a GPU. Imports TensorFlow, so only asked when it matters."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return False
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - tensorflow is a dependency
        return False
    return bool(tf.config.list_physical_devices("GPU"))


def resolve_backend(name: str) -> str:
    """Turn `auto` into a concrete backend: tensorflow with a GPU, else litert."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    return "tensorflow" if _has_gpu_driver() and gpu_available() else "litert"


def _has_gpu_driver() -> bool:
    # Importing TensorFlow costs seconds and a gigabyte; skip it when no NVIDIA driver exists.
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists()


def enable_memory_growth() -> None:
    """Let TensorFlow take GPU memory as it needs it, as the notebook does."""
    import tensorflow as tf

    for device in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(device, True)
        except RuntimeError:  # already initialised: growth must be set before first use
            log.debug("memory growth not changed on %s: GPU already initialised", device.name)
