"""The combined out-of-distribution score: three cheap, independent signals in one number.

1. the k-NN distance of the feature-map statistics (`model.detector`): how unlike the training
   images the image looks *to the network*;
2. the network's own confidence, `|logit|`: after Outlier Exposure (`training.outliers`) the
   network learned to answer near 0.5 on images that are neither class;
3. statistics of the input the drawings never show (`INPUT_STATISTICS`): saturation,
   colourfulness, luminance spread, edge strength, fine texture and how concentrated the edges
   are, on the image reduced to 50 x 50 (`REDUCTION`), which keeps them cheap. Drawings are
   flat colours with sharp outlines; photographs, noise and screenshots are not.

The features (`OOD_FEATURES`, logs of the positive ones) are standardised and combined by
logistic regression (`fit_combination`): in-distribution images (the validation split, never
trained on) against outliers, each outlier group weighted equally. The served `distance` is
`exp(w . z + b)`, positive and growing with "unlike" as the k-NN distance did, so a threshold
is chosen on it exactly as before (`Detector.with_threshold`).

`input_statistics` is the NumPy reference; `input_statistics_graph` the same in TensorFlow ops,
built into the LiteRT graph so the combined distance comes out of the served forward pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

INPUT_STATISTICS: tuple[str, ...] = (
    "saturation mean",
    "saturation spread",
    "colourfulness",
    "luminance spread",
    "edge strength",
    "fine texture",
    "edge concentration",
)
OOD_FEATURES: tuple[str, ...] = ("log k-NN distance", "confidence |logit|", *INPUT_STATISTICS)
EPSILON = 1e-3  # added before each log: a blank image's zero statistics stay finite
PENALTY = 1.0  # L2 penalty of the logistic regression, on standardised features
MAX_EXPONENT = 30.0  # the distance is exp of at most this (float32 stays finite)
REDUCTION = 4  # the input statistics read the image averaged over 4 x 4 squares (50 x 50):
# at full size their ~60 elementwise passes cost 4 ms per image on LiteRT, twice the network


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def input_statistics(images: np.ndarray) -> np.ndarray:
    """`INPUT_STATISTICS` of (n, h, w, 3) uint8 images, averaged over `REDUCTION`-pixel
    squares first: (n, 7), all logs, float64."""
    n, h, w, _ = np.shape(images)
    side = REDUCTION
    blocks = np.asarray(images, dtype=np.float32)[:, : h // side * side, : w // side * side]
    blocks = blocks.reshape(n, h // side, side, w // side, side, 3)
    rgb = blocks.mean(axis=(2, 4), dtype=np.float32) / np.float32(255.0)
    top, bottom = rgb.max(axis=-1), rgb.min(axis=-1)
    saturation = (top - bottom) / (top + np.float32(EPSILON))
    rg = rgb[..., 0] - rgb[..., 1]
    yb = (rgb[..., 0] + rgb[..., 1]) * np.float32(0.5) - rgb[..., 2]
    axes = (1, 2)
    colourful = np.sqrt(rg.var(axis=axes) + yb.var(axis=axes)) + 0.3 * np.sqrt(
        rg.mean(axis=axes) ** 2 + yb.mean(axis=axes) ** 2
    )
    lum = _luminance(rgb)
    dx = np.abs(lum[:, :, 1:] - lum[:, :, :-1])
    dy = np.abs(lum[:, 1:, :] - lum[:, :-1, :])
    edge = dx.mean(axis=axes) + dy.mean(axis=axes)
    square = (dx * dx).mean(axis=axes) + (dy * dy).mean(axis=axes)
    blurred = sum(
        lum[:, i : lum.shape[1] - 2 + i, j : lum.shape[2] - 2 + j]
        for i in range(3)
        for j in range(3)
    ) / np.float32(9.0)
    fine = np.abs(lum[:, 1:-1, 1:-1] - blurred).mean(axis=axes)
    values = np.stack(
        [
            saturation.mean(axis=axes),
            saturation.std(axis=axes),
            colourful,
            lum.std(axis=axes),
            edge,
            fine,
            square / (edge * edge + EPSILON),
        ],
        axis=1,
    ).astype(np.float64)
    return np.log(values + EPSILON)


def input_statistics_graph(images):
    """`input_statistics` in TensorFlow ops, from (n, h, w, 3) uint8 or float images."""
    import tensorflow as tf

    small = tf.nn.avg_pool2d(tf.cast(images, tf.float32), REDUCTION, REDUCTION, "VALID")
    rgb = small / 255.0
    top, bottom = tf.reduce_max(rgb, axis=-1), tf.reduce_min(rgb, axis=-1)
    saturation = (top - bottom) / (top + EPSILON)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = (rgb[..., 0] + rgb[..., 1]) * 0.5 - rgb[..., 2]
    axes = [1, 2]

    def mean(x):
        return tf.reduce_mean(x, axis=axes)

    def variance(x):  # two passes, as NumPy's: a blank image's spread is exactly 0
        centred = x - mean(x)[:, None, None]
        return mean(centred * centred)

    colourful = tf.sqrt(variance(rg) + variance(yb)) + 0.3 * tf.sqrt(mean(rg) ** 2 + mean(yb) ** 2)
    lum = _luminance(rgb)
    dx = tf.abs(lum[:, :, 1:] - lum[:, :, :-1])
    dy = tf.abs(lum[:, 1:, :] - lum[:, :-1, :])
    edge = mean(dx) + mean(dy)
    square = mean(dx * dx) + mean(dy * dy)
    blurred = tf.nn.avg_pool2d(lum[..., None], 3, 1, "VALID")[..., 0]
    fine = mean(tf.abs(lum[:, 1:-1, 1:-1] - blurred))
    values = tf.stack(
        [
            mean(saturation),
            tf.sqrt(variance(saturation)),
            colourful,
            tf.sqrt(variance(lum)),
            edge,
            fine,
            square / (edge * edge + EPSILON),
        ],
        axis=1,
    )
    return tf.math.log(values + EPSILON)


def ood_features(knn: np.ndarray, logits: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """The (n, 9) `OOD_FEATURES` from k-NN distances, logits and `input_statistics`."""
    knn = np.log(np.asarray(knn, dtype=np.float64) + EPSILON)[:, None]
    confidence = np.abs(np.asarray(logits, dtype=np.float64)).reshape(-1, 1)
    return np.concatenate([knn, confidence, np.asarray(inputs, dtype=np.float64)], axis=1)


def ood_features_graph(knn, logits, inputs):
    """`ood_features` in TensorFlow ops."""
    import tensorflow as tf

    knn = tf.math.log(tf.cast(knn, tf.float32) + EPSILON)[:, None]
    confidence = tf.reshape(tf.abs(tf.cast(logits, tf.float32)), [-1, 1])
    return tf.concat([knn, confidence, tf.cast(inputs, tf.float32)], axis=1)


@dataclass(frozen=True)
class Combination:
    """`exp(weights . (features - center) / scale + bias)`, capped at `exp(MAX_EXPONENT)`."""

    center: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    weights: np.ndarray  # (1, d): one row, kept two-dimensional for later rules
    bias: np.ndarray  # (1,)
    used: tuple[str, ...] = OOD_FEATURES  # the features with a weight that is not zero

    def apply(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, dtype=np.float64) - self.center) / self.scale
        score = (z @ self.weights.T.astype(np.float64) + self.bias).max(axis=1)
        return np.exp(np.minimum(score, MAX_EXPONENT))

    def graph(self, features):
        import tensorflow as tf

        z = (features - tf.constant(self.center, tf.float32)) / tf.constant(self.scale, tf.float32)
        score = tf.matmul(z, tf.constant(self.weights, tf.float32), transpose_b=True)
        score = tf.reduce_max(score + tf.constant(self.bias, tf.float32), axis=1)
        return tf.exp(tf.minimum(score, MAX_EXPONENT))

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays `detector.npz` stores (with the k-NN detector's)."""
        return {
            "feature_center": self.center.astype(np.float32),
            "feature_scale": self.scale.astype(np.float32),
            "weights": self.weights.astype(np.float32),
            "bias": self.bias.astype(np.float32),
        }

    @classmethod
    def from_arrays(cls, npz: Mapping[str, np.ndarray]) -> Combination:
        weights = np.asarray(npz["weights"], dtype=np.float32)
        return cls(
            np.asarray(npz["feature_center"], dtype=np.float32),
            np.asarray(npz["feature_scale"], dtype=np.float32),
            weights.reshape(-1, weights.shape[-1]),
            np.asarray(npz["bias"], dtype=np.float32).reshape(-1),
        )

    def describe(self) -> dict[str, object]:
        """What `model.json` records: each feature's weight on its standardised value."""
        return {
            "rule": "logistic regression on standardised features; distance exp(w.z + b)",
            "weights": {
                name: round(float(w), 4)
                for name, w in zip(OOD_FEATURES, self.weights[0], strict=True)
            },
            "bias": round(float(self.bias[0]), 4),
        }


def fit_combination(
    inside: np.ndarray,
    groups: Sequence[np.ndarray],
    features: Sequence[int] | None = None,
    penalty: float = PENALTY,
) -> Combination:
    """Logistic regression of "outlier" on `OOD_FEATURES` rows: `inside` (in-distribution) against
    the rows of each outlier group, the groups weighted equally and together as much as
    `inside`. `features` limits it to those columns (the others get weight 0)."""
    inside = np.asarray(inside, dtype=np.float64)
    groups = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if len(inside) < 2 or not groups:
        raise ValueError("a combination needs in-distribution images and at least one outlier")
    columns = list(range(inside.shape[1])) if features is None else list(features)
    center = inside.mean(axis=0)
    scale = np.maximum(inside.std(axis=0), 1e-3)
    x = np.concatenate([inside, *groups])
    y = np.concatenate([np.zeros(len(inside)), np.ones(sum(len(g) for g in groups))])
    weight = np.concatenate(
        [np.full(len(inside), 1.0 / len(inside))]
        + [np.full(len(g), 1.0 / (len(groups) * len(g))) for g in groups]
    )
    z = ((x - center) / scale)[:, columns]
    w, b = _logistic(z, y, weight / weight.sum(), penalty / len(inside))
    weights = np.zeros(inside.shape[1])
    weights[columns] = w
    used = tuple(OOD_FEATURES[i] for i in columns)
    return Combination(center, scale, weights[None, :], np.array([b]), used)


def _logistic(
    z: np.ndarray, y: np.ndarray, weight: np.ndarray, penalty: float
) -> tuple[np.ndarray, float]:
    """Weighted L2-penalised logistic regression by Newton's method (the bias unpenalised)."""
    x = np.concatenate([z, np.ones((len(z), 1))], axis=1)
    beta = np.zeros(x.shape[1])
    ridge = np.full(x.shape[1], penalty)
    ridge[-1] = 0.0
    for _ in range(50):
        p = np.exp(-np.logaddexp(0.0, -(x @ beta)))
        gradient = x.T @ (weight * (p - y)) + ridge * beta
        hessian = (x * (weight * p * (1 - p))[:, None]).T @ x + np.diag(ridge + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta[:-1], float(beta[-1])
