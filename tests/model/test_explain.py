"""Why?'s occlusion heatmap, its drawing, and the memory that keeps heatmaps per image."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from model.explain import (
    GREY,
    GRID,
    Recent,
    cell_bounds,
    from_scores,
    mass_inside,
    occluded_batch,
    occlusion,
    points_inside,
)
from model.render import render_why


def red_share_scorer(top: int, left: int, size: int):
    """A stand-in network whose 'sith' score is how red one square of the image is."""

    def score(batch: np.ndarray) -> np.ndarray:
        square = batch[:, top : top + size, left : left + size].astype(np.float64)
        return square[..., 0].mean(axis=(1, 2)) / 255

    return score


def test_the_batch_is_the_image_then_one_grey_cell_per_copy() -> None:
    image = np.full((200, 200, 3), 7, dtype=np.uint8)
    batch = occluded_batch(image)
    assert batch.shape == (1 + GRID * GRID, 200, 200, 3)
    assert (batch[0] == 7).all()
    bounds = cell_bounds(200)
    assert bounds[0][0] == 0 and bounds[-1][1] == 200
    for number in (1, 25, 49):
        row, column = divmod(number - 1, GRID)
        (top, bottom), (left, right) = bounds[row], bounds[column]
        copy = batch[number]
        assert (copy[top:bottom, left:right] == GREY).all()
        assert (copy == GREY).sum() == (bottom - top) * (right - left) * 3


def test_the_region_that_decides_is_the_hot_one() -> None:
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    image[120:150, 30:60, 0] = 255  # a red square: the stand-in network says "sith"
    explanation = occlusion(image, red_share_scorer(120, 30, 30))
    assert explanation.score > 0.5
    assert explanation.cells.shape == (GRID, GRID)
    assert (explanation.cells >= 0).all()
    heat = explanation.heatmap((200, 200))
    assert heat.shape == (200, 200) and 0.9 < heat.max() <= 1
    mask = np.zeros((200, 200), dtype=bool)
    mask[110:160, 20:70] = True
    assert points_inside(heat, mask)
    assert mass_inside(heat, mask) > 0.5
    hottest = np.unravel_index(np.argmax(explanation.cells), explanation.cells.shape)
    assert explanation.scores[hottest] < explanation.score  # hiding it moves the score


def test_a_jedi_verdict_is_explained_by_what_raises_the_score_when_hidden() -> None:
    scores = np.full(1 + GRID * GRID, 0.2)
    scores[1 + 10] = 0.7  # hiding cell 10 turns the verdict
    scores[1 + 20] = 0.1  # hiding cell 20 only makes it surer: no heat
    cells = from_scores(scores).cells
    assert cells.reshape(-1)[10] == pytest.approx(0.5)
    assert cells.reshape(-1)[20] == 0 and cells.sum() == pytest.approx(0.5)


def test_nothing_decided_gives_a_cold_map() -> None:
    explanation = from_scores(np.full(1 + GRID * GRID, 0.8))
    assert (explanation.heatmap((50, 40)) == 0).all()
    assert mass_inside(explanation.heatmap((50, 40)), np.ones((50, 40), bool)) == 0


@pytest.mark.slow
def test_on_the_shipped_network_hiding_the_hottest_cell_moves_the_score() -> None:
    from model.bundle import DEFAULT_MODEL_DIR
    from model.runtime import Classifier
    from training.synthetic import draw_scene

    classifier = Classifier.load(DEFAULT_MODEL_DIR, "litert")
    image = np.asarray(draw_scene("sith", np.random.default_rng([11, 1, 0])))
    explanation = occlusion(image, classifier.scores)
    hottest = np.unravel_index(np.argmax(explanation.cells), explanation.cells.shape)
    assert explanation.cells.max() > 0
    assert explanation.scores[hottest] < explanation.score - 0.01
    assert explanation.score == pytest.approx(float(classifier.scores([image])[0]), abs=1e-6)


def test_the_drawing_is_a_png_larger_than_the_image() -> None:
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    heat = np.linspace(0, 1, 200 * 200, dtype=np.float32).reshape(200, 200)
    png = render_why(image, heat, "Sith 0.912")
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG"
    assert picture.width > 200 and picture.height > 200


def test_the_memory_keeps_the_most_recently_used() -> None:
    memory: Recent[str, int] = Recent(2)
    memory.put("a", 1)
    memory.put("b", 2)
    assert memory.get("a") == 1  # "a" is now the most recent
    memory.put("c", 3)
    assert memory.get("b") is None and memory.get("a") == 1 and memory.get("c") == 3
    assert len(memory) == 2
