"""Scores whose percentages mean what they say: temperature scaling, and how to measure it.

A network trained with cross-entropy is often over- or under-confident. Temperature scaling
(Guo et al. 2017) divides the logit by one number T fitted on held-out images (against Platt's
smoothed targets, so that a split with no mistake does not make every answer certain), which
keeps every verdict and changes only how sure it sounds. One parameter is hard to overfit on a
few hundred validation images; Platt scaling's second parameter (a bias) moved the decision
boundary on the shipped model's validation split because of a single mistake, so it is not used.

`expected_calibration_error` uses 15 equal-width confidence bins, as Guo et al. do.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

ECE_BINS = 15
MIN_SHARPEN_IMAGES = 50  # fewer images than this: a fitted temperature is kept at 1 or above


def sigmoid(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -logits))


@dataclass(frozen=True)
class Calibration:
    """`score = sigmoid(logit / temperature)`; temperature 1 leaves scores as they are."""

    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.temperature < np.inf:
            raise ValueError(f"the temperature must be a positive number, not {self.temperature}")

    def apply(self, logits: np.ndarray) -> np.ndarray:
        return sigmoid(np.asarray(logits, dtype=np.float64) / self.temperature)

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray) -> Calibration:
        """The temperature that minimises the negative log-likelihood of `labels`, taken as
        Platt's targets: (n1 + 1) / (n1 + 2) for the second class and 1 / (n0 + 2) for the
        first. With plain 0 and 1, a validation split the network gets all right drives the
        temperature to its floor (every answer "100% sure"); these targets say that n images
        right in a row do not prove the next one is."""
        logits = np.asarray(logits, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.float64)
        if len(logits) == 0 or len(np.unique(labels)) < 2:
            return cls(1.0)
        positives = float(labels.sum())
        negatives = len(labels) - positives
        labels = np.where(labels > 0.5, (positives + 1) / (positives + 2), 1 / (negatives + 2))

        def nll(log_t: float) -> float:
            z = logits / np.exp(log_t)
            # -[y log s(z) + (1-y) log(1 - s(z))], stable for large |z|
            return float(np.mean(np.logaddexp(0.0, z) - labels * z))

        # Golden-section search over log T in [log 0.05, log 20]: NLL is unimodal in T here.
        low, high = np.log(0.05), np.log(20.0)
        ratio = (np.sqrt(5.0) - 1.0) / 2.0
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        fa, fb = nll(a), nll(b)
        for _ in range(80):
            if fa < fb:
                high, b, fb = b, a, fa
                a = high - ratio * (high - low)
                fa = nll(a)
            else:
                low, a, fa = a, b, fb
                b = low + ratio * (high - low)
                fb = nll(b)
        return cls(float(np.exp((low + high) / 2.0)))


def expected_calibration_error(
    scores: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """|accuracy - confidence| averaged over equal-width confidence bins, weighted by count."""
    if len(scores) == 0:
        return float("nan")
    rows = reliability(scores, labels, bins)
    total = sum(row["count"] for row in rows)
    return float(
        sum(row["count"] / total * abs(row["accuracy"] - row["confidence"]) for row in rows)
    )


def brier_score(scores: np.ndarray, labels: np.ndarray) -> float:
    scores = np.asarray(scores, dtype=np.float64)
    return float(np.mean((scores - np.asarray(labels, dtype=np.float64)) ** 2))


def reliability(scores: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per confidence bin: its range, count, mean confidence and accuracy (for the diagram)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    confidence = np.maximum(scores, 1.0 - scores)
    correct = (scores >= 0.5).astype(int) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            rows.append(
                {
                    "low": float(low),
                    "high": float(high),
                    "count": int(inside.sum()),
                    "confidence": float(confidence[inside].mean()),
                    "accuracy": float(correct[inside].mean()),
                }
            )
    return rows
