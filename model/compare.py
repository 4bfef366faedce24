"""Is a candidate model surely better than the current one on the same held-out images?

A paired comparison: both models answer every held-out image, and only the images where they
disagree (one right, the other wrong) tell them apart. The decision is the exact one-sided
McNemar test on those images (`ALPHA`); the 95% interval of the accuracy difference is the
Wald interval with half an image added to each cell of the paired table (Agresti and Min, 2005),
which stays honest when the models never disagree. Pure NumPy and the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.05  # one-sided: published when the chance of a gain this large by luck is below it
Z95 = 1.959964  # two-sided 95% interval
Z_ONE_SIDED = 1.644854  # the one-sided test at ALPHA, for the images needed
SMALLEST_GAIN = 0.05  # the gain worth settling when the candidate is not ahead: 5 points


def mcnemar_p(gained: int, lost: int) -> float:
    """The exact one-sided McNemar p-value: the chance of `gained` or more of the
    `gained + lost` disagreements going the candidate's way if both models were as good."""
    if gained < 0 or lost < 0:
        raise ValueError("counts of images cannot be negative")
    total = gained + lost
    if total == 0:
        return 1.0
    tail = sum(math.comb(total, k) for k in range(gained, total + 1))
    return min(1.0, tail / 2**total)


def difference_interval(gained: int, lost: int, images: int) -> tuple[float, float]:
    """The 95% interval of the accuracy difference (candidate minus current), in [-1, 1]."""
    if images <= 0 or gained + lost > images:
        raise ValueError("need at least one image, and no more disagreements than images")
    n = images + 2.0
    b, c = gained + 0.5, lost + 0.5
    difference = (b - c) / n
    spread = Z95 * math.sqrt(max((b + c) / n - difference**2, 0.0) / n)
    return max(-1.0, difference - spread), min(1.0, difference + spread)


@dataclass(frozen=True)
class Comparison:
    """Two models' answers on the same held-out images, and what they settle."""

    images: int
    before: float  # the current model's accuracy
    after: float  # the candidate's
    gained: int  # images the candidate gets right and the current model wrong
    lost: int  # the other way round

    @property
    def difference(self) -> float:
        return self.after - self.before

    @property
    def p_value(self) -> float:
        return mcnemar_p(self.gained, self.lost)

    @property
    def interval(self) -> tuple[float, float]:
        return difference_interval(self.gained, self.lost, self.images)

    @property
    def better(self) -> bool:
        """Surely better: the exact one-sided McNemar test at `ALPHA`."""
        return self.p_value < ALPHA

    @property
    def worse(self) -> bool:
        """Surely worse: the whole 95% interval is below zero."""
        return self.interval[1] < 0

    def images_needed(self) -> int | None:
        """Roughly how many held-out images would settle whether the candidate is better, if
        the models disagree as often as here (the normal sample size of McNemar's test for
        the observed gain, or `SMALLEST_GAIN` when it is not ahead); None when settled."""
        if self.better or self.worse:
            return None
        gain = max(self.difference, SMALLEST_GAIN)
        discordance = (self.gained + self.lost + 1) / (self.images + 2)
        needed = math.ceil(Z_ONE_SIDED**2 * discordance / gain**2)
        return max(needed, self.images + 1)

    def summary(self, current: str = "") -> str:
        """Both accuracies (the current model's named `current`), the difference and its
        interval, on how many images."""
        low, high = self.interval
        name = f" ({current})" if current else ""
        return (
            f"holdout accuracy {self.before:.1%}{name} → {self.after:.1%} on {self.images} "
            f"held-out images: {100 * self.difference:+.1f} points (95% interval "
            f"{100 * low:+.1f} to {100 * high:+.1f})"
        )

    def verdict(self) -> str:
        """Why it is published or not, and how many images would settle it."""
        if self.better:
            return f"surely better (p = {self.p_value:.3f})"
        if self.worse:
            return "worse on this holdout"
        needed = self.images_needed()
        return (
            f"not surely better (p = {self.p_value:.2f}); about {needed} held-out images "
            f"({needed - self.images if needed else 0} more) would settle it, if the models "
            f"disagree as often as here ({self.gained + self.lost} of {self.images})"
        )

    def record(self) -> dict[str, Any]:
        """What a version's figures keep of it."""
        low, high = self.interval
        return {
            "gained": self.gained,
            "lost": self.lost,
            "p": round(self.p_value, 4),
            "interval": [round(low, 4), round(high, 4)],
        }


def compare(truth: Sequence[Any], current: Sequence[Any], candidate: Sequence[Any]) -> Comparison:
    """The paired comparison of two models' answers (`current`, `candidate`) to `truth`."""
    if not len(truth) == len(current) == len(candidate):
        raise ValueError("each held-out image needs one answer of each model")
    if not len(truth):
        raise ValueError("no held-out images to compare on")
    right_before = np.asarray(current, dtype=object) == np.asarray(truth, dtype=object)
    right_after = np.asarray(candidate, dtype=object) == np.asarray(truth, dtype=object)
    return Comparison(
        images=len(truth),
        before=float(right_before.mean()),
        after=float(right_after.mean()),
        gained=int((right_after & ~right_before).sum()),
        lost=int((right_before & ~right_after).sum()),
    )
