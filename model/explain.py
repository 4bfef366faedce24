"""Why?: a heatmap of the regions of an image that decided its verdict.

Occlusion, gradient-free, so it runs on the served LiteRT network: the image is copied once per
cell of a `grid` x `grid` grid, each copy with that cell painted grey, and the copies are scored
in one batch with the original. A cell's heat is how much hiding it moves the score away from
the verdict (towards the other class); cells that only strengthen the verdict when hidden are 0.
benchmarks/why.py compares it with Grad-CAM on the synthetic drawings' saber and robe regions.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

GRID = 7  # cells per side: 49 occluded copies and the original in one batch of 50
GREY = 128  # the patch colour: the middle of the uint8 range, what the network sees as neutral


@dataclass(frozen=True)
class Explanation:
    """The heat of each grid cell (`cells`, grid x grid, >= 0) and the original image's score."""

    cells: np.ndarray
    score: float
    scores: np.ndarray  # the score with each cell hidden, grid x grid

    def heatmap(self, size: tuple[int, int]) -> np.ndarray:
        """The cells' heat spread over an image of `size` (height, width), scaled to 0..1."""
        return upsample(self.cells, size)


def cell_bounds(length: int, grid: int = GRID) -> list[tuple[int, int]]:
    """The [start, stop) pixel ranges of `grid` cells covering `length` pixels."""
    edges = np.linspace(0, length, grid + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(grid)]


def occluded_batch(image: np.ndarray, grid: int = GRID, grey: int = GREY) -> np.ndarray:
    """The image, then one copy per cell (row by row) with that cell painted `grey`:
    (1 + grid * grid, h, w, 3) uint8."""
    height, width = image.shape[:2]
    batch = np.repeat(image[None], 1 + grid * grid, axis=0)
    index = 1
    for top, bottom in cell_bounds(height, grid):
        for left, right in cell_bounds(width, grid):
            batch[index, top:bottom, left:right] = grey
            index += 1
    return batch


def occlusion(
    image: np.ndarray, score: Callable[[np.ndarray], np.ndarray], grid: int = GRID
) -> Explanation:
    """Occlusion heat of a (h, w, 3) uint8 image; `score` gives the probability of the second
    class for a (n, h, w, 3) batch (one call)."""
    return from_scores(score(occluded_batch(image, grid)), grid)


def from_scores(scores: np.ndarray, grid: int = GRID) -> Explanation:
    """The occlusion heat from the scores of `occluded_batch`'s images, in its order."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    original, hidden = float(scores[0]), scores[1:].reshape(grid, grid)
    towards_other = original - hidden if original >= 0.5 else hidden - original
    return Explanation(np.clip(towards_other, 0, None), original, hidden)


def upsample(cells: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A small non-negative map resized smoothly (bilinear) to `size`, scaled to 0..1."""
    from PIL import Image

    cells = np.asarray(cells, dtype=np.float32)
    peak = float(cells.max()) if cells.size else 0.0
    if peak <= 0:
        return np.zeros(size, dtype=np.float32)
    picture = Image.fromarray(cells / peak, mode="F")
    resized = picture.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 1)


def mass_inside(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """The share of the heatmap's total inside `mask` (0 for an empty heatmap)."""
    total = float(heatmap.sum())
    return float(heatmap[mask].sum()) / total if total > 0 else 0.0


def points_inside(heatmap: np.ndarray, mask: np.ndarray) -> bool:
    """The pointing game: whether the heatmap's hottest pixel lies inside `mask`."""
    row, column = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return bool(mask[row, column])


Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class Recent(Generic[Key, Value]):
    """A small least-recently-used memory: at most `size` entries, the oldest go first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Key, Value] = OrderedDict()

    def get(self, key: Key) -> Value | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Key, value: Value) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
