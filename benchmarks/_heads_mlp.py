"""A small MLP head for `benchmarks.heads` to compare against the linear ones (NumPy only):
standardised features, one hidden layer of 64 ReLU units, L2 on the weights, full-batch Adam."""

from __future__ import annotations

import numpy as np

from model.calibration import sigmoid
from model.head import standardisation


class MLP:
    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        hidden: int = 64,
        l2: float = 1e-2,
        steps: int = 300,
        rate: float = 1e-2,
        seed: int = 0,
    ) -> None:
        self.center, self.scale = standardisation(x)
        x = (x - self.center) / self.scale
        rng = np.random.default_rng(seed)
        params = [
            rng.normal(0, np.sqrt(2.0 / x.shape[1]), (x.shape[1], hidden)),
            np.zeros(hidden),
            rng.normal(0, np.sqrt(1.0 / hidden), hidden),
            np.zeros(1),
        ]
        moments = [np.zeros_like(p) for p in params]
        squares = [np.zeros_like(p) for p in params]
        n = len(y)
        for step in range(1, steps + 1):
            w1, b1, w2, b2 = params
            h = np.maximum(x @ w1 + b1, 0.0)
            error = (sigmoid(h @ w2 + b2) - y) / n
            back = np.outer(error, w2) * (h > 0)
            grads = [
                x.T @ back + l2 * w1,
                back.sum(0),
                h.T @ error + l2 * w2,
                error.sum(keepdims=True),
            ]
            for i, g in enumerate(grads):
                moments[i] = 0.9 * moments[i] + 0.1 * g
                squares[i] = 0.999 * squares[i] + 0.001 * g * g
                correction = np.sqrt(1 - 0.999**step) / (1 - 0.9**step)
                params[i] = params[i] - rate * correction * moments[i] / (
                    np.sqrt(squares[i]) + 1e-8
                )
        self.params = params

    def logits(self, x: np.ndarray) -> np.ndarray:
        w1, b1, w2, b2 = self.params
        h = np.maximum((x - self.center) / self.scale @ w1 + b1, 0.0)
        return h @ w2 + b2
