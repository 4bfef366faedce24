"""Is this image like the ones the network learned from? The out-of-distribution detector.

The network only ever says "Jedi" or "Sith"; shown a coffee cup it still answers, often with a
saturated score. The detector describes what the training images look like *to the network*:

1. For every image, the per-channel mean, standard deviation and maximum of the max-pooled maps
   of the second and third convolutions (`STAT_LAYERS`: `pool2`, 48 x 48 x 32, and `pool3`,
   23 x 23 x 64; 3 x (32 + 64) = 288 numbers), through `log1p`. Those layers respond to texture
   and parts, which is where a photograph, a chart or noise differs from the training images;
   the last layers and the dense features are tuned to the two classes and map many unlike
   images close to the class centres (on the shipped model, a Mahalanobis distance on the
   dense features ranked photographs as *more* typical than held-out drawings). Among the layer
   sets tried on the development images (`benchmarks/ood.py`), `pool2` + `pool3` separated
   photographs best for the fewest activations (108 k per image), which keeps the cost small.
2. Those statistics are standardised with the training images' mean and spread, and the training
   images' standardised statistics are kept as a reference bank (at most `MAX_BANK` of them).
3. The `distance` of an image is the Euclidean distance to its `k`-th nearest neighbour in the
   bank (Sun et al. 2022, "Out-of-distribution detection with deep nearest neighbors", here on
   feature-map statistics rather than penultimate features). Higher means less like the
   training data.
4. The threshold is chosen on the validation split (images the network was not trained on) so
   that new images like the training ones are kept at a rate of at least `keep` (95%) with
   `confidence` (90%): the k-th smallest validation distance covers a Beta(k, n + 1 - k) share
   of such images, so k is the smallest order statistic whose coverage is at least `keep` with
   that probability. Taking plainly the 95th percentile of a few hundred validation images
   refuses more than 5% of new ones about half the time; this bound keeps 96-97% of the
   validation images instead. With too few validation images to reach the confidence, the
   largest validation distance is the threshold.

Everything the detector needs is saved as `detector.npz` in the model folder (hashed in
`model.json`) and also built into the LiteRT graph, so the distance comes out of the same
forward pass as the score. `distances()` is the NumPy reference; `distance_graph()` is the same
computation in TensorFlow, for the export and the TensorFlow backend.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from model.bundle import DETECTOR_FILE
from model.combination import (
    OOD_FEATURES,
    Combination,
    input_statistics,
    input_statistics_graph,
    ood_features,
    ood_features_graph,
)

STAT_LAYERS: tuple[str, ...] = ("pool2", "pool3")
STATISTICS: tuple[str, ...] = ("mean", "std", "max")
DEFAULT_K = 5
DEFAULT_KEEP = 0.95
DEFAULT_CONFIDENCE = 0.9
MAX_BANK = 4096


class DetectorError(ValueError):
    """A `detector.npz` that cannot be used; the message says why."""


def channel_statistics(maps: Mapping[str, np.ndarray], layers: Sequence[str]) -> np.ndarray:
    """`log1p` of the per-channel mean, std and max of each layer's (n, h, w, c) maps: (n, d)."""
    parts = []
    for name in layers:
        values = np.asarray(maps[name], dtype=np.float64)
        flat = values.reshape(values.shape[0], -1, values.shape[-1])
        mean = flat.mean(axis=1)
        std = np.sqrt(np.maximum((flat * flat).mean(axis=1) - mean * mean, 0.0))
        parts += [mean, std, flat.max(axis=1)]
    return np.log1p(np.maximum(np.concatenate(parts, axis=1), 0.0))


@dataclass(frozen=True)
class Detector:
    """k-nearest-neighbour distance in the space of standardised feature-map statistics."""

    layers: tuple[str, ...]
    k: int
    center: np.ndarray  # (d,) mean of the training statistics
    scale: np.ndarray  # (d,) their spread (floored, so a silent channel does not divide by 0)
    bank: np.ndarray  # (m, d) standardised statistics of training images, float32
    threshold: float  # distances above it are "not like the training data"
    keep: float  # the share of new in-distribution images the threshold keeps (at least)
    combination: Combination | None = None  # None: the distance is the k-NN distance alone

    @classmethod
    def fit(
        cls,
        statistics: np.ndarray,
        *,
        layers: Sequence[str] = STAT_LAYERS,
        k: int = DEFAULT_K,
        max_bank: int = MAX_BANK,
        seed: int = 0,
    ) -> Detector:
        """Fit on the training images' `channel_statistics`; the threshold is set later."""
        statistics = np.asarray(statistics, dtype=np.float64)
        if statistics.ndim != 2 or len(statistics) < 2:
            raise DetectorError("the detector needs the statistics of at least two images")
        center = statistics.mean(axis=0)
        spread = statistics.std(axis=0)
        scale = np.maximum(spread, 0.1 * float(np.median(spread)) + 1e-6)
        if len(statistics) > max_bank:
            keep = np.random.default_rng(seed).choice(len(statistics), max_bank, replace=False)
            statistics = statistics[np.sort(keep)]
        bank = ((statistics - center) / scale).astype(np.float32)
        return cls(
            layers=tuple(layers),
            k=max(1, min(k, len(bank))),
            center=center.astype(np.float32),
            scale=scale.astype(np.float32),
            bank=bank,
            threshold=float("inf"),
            keep=1.0,
        )

    def with_threshold(
        self,
        validation_distances: np.ndarray,
        keep: float = DEFAULT_KEEP,
        confidence: float = DEFAULT_CONFIDENCE,
    ) -> Detector:
        """The same detector with the threshold that keeps at least `keep` of new images like
        the validation ones, with probability `confidence` (see the module's docstring)."""
        if not 0.0 < keep <= 1.0:
            raise DetectorError(f"keep must be in (0, 1], not {keep}")
        if not 0.0 < confidence < 1.0:
            raise DetectorError(f"confidence must be in (0, 1), not {confidence}")
        distances = np.sort(np.asarray(validation_distances, dtype=np.float64))
        if len(distances) == 0:
            raise DetectorError("no validation distances to choose a threshold from")
        rank = covering_rank(len(distances), keep, confidence)
        return Detector(
            self.layers,
            self.k,
            self.center,
            self.scale,
            self.bank,
            float(distances[rank - 1]),
            float(keep),
            self.combination,
        )

    def with_combination(self, combination: Combination | None) -> Detector:
        """The same detector whose distance is `combination`'s (threshold to be set again)."""
        return replace(self, combination=combination, threshold=float("inf"), keep=1.0)

    @property
    def dimensions(self) -> int:
        return int(self.center.shape[0])

    def distances(self, statistics: np.ndarray) -> np.ndarray:
        """Distance of each image (rows of `channel_statistics`) to its k-th nearest neighbour."""
        query = (np.asarray(statistics, dtype=np.float64) - self.center) / self.scale
        bank = self.bank.astype(np.float64)
        squared = (
            (query * query).sum(axis=1)[:, None]
            - 2.0 * query @ bank.T
            + (bank * bank).sum(axis=1)[None, :]
        )
        kth = np.partition(squared, self.k - 1, axis=1)[:, self.k - 1]
        return np.sqrt(np.maximum(kth, 0.0))

    def distances_of_maps(self, maps: Mapping[str, np.ndarray]) -> np.ndarray:
        """The k-NN distance of each image from its layers' (n, h, w, c) maps."""
        return self.distances(channel_statistics(maps, self.layers))

    def combined(
        self, statistics: np.ndarray, logits: np.ndarray, images: np.ndarray
    ) -> np.ndarray:
        """What the served graph calls `distance`: the combination's when there is one, else
        the k-NN distance (NumPy reference of `distance_graph`)."""
        knn = self.distances(statistics)
        if self.combination is None:
            return knn
        return self.combination.apply(ood_features(knn, logits, input_statistics(images)))

    # -- storage ----------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The contents of `detector.npz`."""
        out = io.BytesIO()
        np.savez(
            out,
            layers=np.array(self.layers),
            k=np.array(self.k),
            center=self.center,
            scale=self.scale,
            bank=self.bank,
            threshold=np.array(self.threshold),
            keep=np.array(self.keep),
            **(self.combination.arrays() if self.combination is not None else {}),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Detector:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                detector = cls(
                    layers=tuple(str(name) for name in npz["layers"]),
                    k=int(npz["k"]),
                    center=npz["center"].astype(np.float32),
                    scale=npz["scale"].astype(np.float32),
                    bank=npz["bank"].astype(np.float32),
                    threshold=float(npz["threshold"]),
                    keep=float(npz["keep"]),
                    combination=Combination.from_arrays(npz) if "weights" in npz else None,
                )
        except (OSError, KeyError, ValueError, TypeError) as error:
            raise DetectorError(f"{DETECTOR_FILE} is not a detector: {error}") from None
        d = detector.dimensions
        if detector.scale.shape != (d,) or detector.bank.ndim != 2 or detector.bank.shape[1] != d:
            raise DetectorError(f"{DETECTOR_FILE} has arrays of mismatched shapes")
        if not 1 <= detector.k <= len(detector.bank):
            raise DetectorError(f"{DETECTOR_FILE} asks for k={detector.k} of {len(detector.bank)}")
        combination = detector.combination
        if combination is not None and combination.weights.shape[1] != len(OOD_FEATURES):
            raise DetectorError(f"{DETECTOR_FILE} combines features this version does not know")
        return detector

    def describe(self) -> dict[str, object]:
        """What `model.json` records about the detector."""
        combined = {} if self.combination is None else {"combination": self.combination.describe()}
        return {
            "method": "k-nearest-neighbour distance of feature-map statistics"
            + ("" if self.combination is None else ", combined (`combination`)"),
            **combined,
            "layers": list(self.layers),
            "statistics": list(STATISTICS),
            "dimensions": self.dimensions,
            "k": self.k,
            "bank": len(self.bank),
            "threshold": self.threshold,
            "keep": self.keep,
        }


def covering_rank(n: int, keep: float, confidence: float) -> int:
    """The smallest k (1-based) such that the k-th smallest of n scores is above a `keep`
    share of the population with probability `confidence`; n when no k reaches it.

    The share below the k-th order statistic is Beta(k, n + 1 - k), and
    P(Beta(k, n + 1 - k) >= keep) = P(Binomial(n, keep) <= k - 1).
    """
    if keep >= 1.0:
        return n
    log_keep, log_rest = math.log(keep), math.log1p(-keep)
    cumulative = 0.0
    for below in range(n):  # P(Binomial(n, keep) == below), summed
        cumulative += math.exp(
            math.lgamma(n + 1)
            - math.lgamma(below + 1)
            - math.lgamma(n - below + 1)
            + below * log_keep
            + (n - below) * log_rest
        )
        if cumulative >= confidence:
            return below + 1
    return n


def statistics_graph(maps: Mapping[str, object], layers: Sequence[str] = STAT_LAYERS):
    """`channel_statistics` in TensorFlow ops: (n, 3 x channels) from the layers' maps."""
    import tensorflow as tf

    parts = []
    for name in layers:
        values = tf.convert_to_tensor(maps[name], tf.float32)
        mean = tf.reduce_mean(values, axis=[1, 2])
        mean_square = tf.reduce_mean(values * values, axis=[1, 2])
        std = tf.sqrt(tf.maximum(mean_square - mean * mean, 0.0))
        parts += [mean, std, tf.reduce_max(values, axis=[1, 2])]
    return tf.math.log(1.0 + tf.maximum(tf.concat(parts, axis=1), 0.0))


def distance_graph(
    detector: Detector, maps: Mapping[str, object], statistics=None, logits=None, images=None
):
    """The detector in TensorFlow ops, from the layers' (n, h, w, c) maps (or their
    `statistics_graph`, when already computed) and, for a combined detector, the logits (n,)
    and the input images (n, 200, 200, 3): distances (n,).

    It converts to LiteRT (reductions, a matmul and top-k) and matches `Detector.combined`.
    """
    import tensorflow as tf

    knn = _knn_graph(detector, maps, statistics)
    if detector.combination is None:
        return knn
    if logits is None or images is None:
        raise DetectorError("a combined detector needs the logits and the images")
    features = ood_features_graph(knn, logits, input_statistics_graph(images))
    return detector.combination.graph(tf.cast(features, tf.float32))


def _knn_graph(detector: Detector, maps: Mapping[str, object], statistics=None):
    import tensorflow as tf

    if statistics is None:
        statistics = statistics_graph(maps, detector.layers)
    query = (statistics - tf.constant(detector.center)) / tf.constant(detector.scale)
    bank = tf.constant(detector.bank)
    squared = (
        tf.reduce_sum(query * query, axis=1, keepdims=True)
        - 2.0 * tf.matmul(query, bank, transpose_b=True)
        + tf.constant((detector.bank.astype(np.float64) ** 2).sum(axis=1)[None, :], tf.float32)
    )
    nearest = -tf.math.top_k(-squared, k=detector.k).values
    return tf.sqrt(tf.maximum(nearest[:, detector.k - 1], 0.0))


def heads_graph(
    outputs: Mapping[str, object], detector: Detector | None, images=None
) -> dict[str, object]:
    """The per-image outputs of the served graph, from the inference network's: `score`,
    `logit`, `embedding` (the `dense` layer's 512 features), `stats` (the 288
    `channel_statistics` of `STAT_LAYERS`) and, with a detector, its `distance` (what LiteRT's
    signatures and the TensorFlow backend both give; a combined detector also reads `images`,
    the network's input). A server's head reads `embedding` and `stats`."""
    statistics = statistics_graph(outputs, STAT_LAYERS)
    heads = {
        "score": outputs["score"],
        "logit": outputs["logit"],
        "embedding": outputs["embedding"],
        "stats": statistics,
    }
    if detector is not None:
        same = tuple(detector.layers) == STAT_LAYERS
        heads["distance"] = distance_graph(
            detector, outputs, statistics if same else None, outputs["logit"], images
        )
    return heads
