"""`model.render`'s pictures of a server's held-out images: the grid of thumbnails (its size
follows the number of tiles), the confusion matrix with previews, and the learning curve."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from model.render import (
    THUMB,
    TILE_COLUMNS,
    Tile,
    render_confusion,
    render_curve,
    render_tiles,
    tiles_size,
)


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


@pytest.mark.parametrize("count", [1, 3, TILE_COLUMNS, TILE_COLUMNS + 1, 12])
def test_the_grid_has_one_thumbnail_per_tile(count: int) -> None:
    pixels = np.full((200, 200, 3), 90, dtype=np.uint8)
    tiles = [Tile(pixels, "is Jedi", "says Sith, 0.91", wrong=i % 2 == 0) for i in range(count)]
    picture = opened(render_tiles(tiles, "version 1"))
    assert picture.size == tiles_size(count)
    rows = -(-count // TILE_COLUMNS)
    assert tiles_size(count)[0] >= min(count, TILE_COLUMNS) * THUMB
    assert tiles_size(count)[1] >= rows * THUMB
    with pytest.raises(ValueError):
        tiles_size(0)


def test_the_confusion_matrix_shows_a_preview_where_a_cell_has_images() -> None:
    red = np.zeros((200, 200, 3), dtype=np.uint8)
    red[..., 0] = 255
    counts = np.array([[5, 0], [1, 6]])
    picture = opened(render_confusion(["jedi", "sith"], counts, {(0, 0): red})).convert("RGB")
    colours = picture.getcolors(maxcolors=1 << 20)
    assert colours is not None and any(colour == (255, 0, 0) for _, colour in colours)
    with pytest.raises(ValueError):
        render_confusion(["jedi", "sith"], np.zeros((3, 3), dtype=int), {})


def test_the_learning_curve_is_a_small_picture() -> None:
    picture = opened(render_curve([10, 20, 40], [0.7, 0.8, 0.78], [True, True, False]))
    assert picture.size == (500, 300)
