"""Feature-map grids: right layout, right colours, valid PNGs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from model.render import (
    MAPS_PER_ROW,
    MIN_TILE,
    PADDING,
    TITLE_PIXELS,
    normalise,
    render_features,
    render_layer,
    tile,
)
from model.runtime import FeatureMaps, Prediction

SHAPES = [(198, 198, 16), (97, 97, 32), (46, 46, 64), (21, 21, 64), (8, 8, 64)]


def fake_features(seed: int = 0) -> FeatureMaps:
    rng = np.random.default_rng(seed)
    maps = tuple(rng.random(shape, dtype=np.float32) * 5 for shape in SHAPES)
    return FeatureMaps(Prediction("sith", 0.8), ("conv1", "conv2", "conv3", "conv4", "conv5"), maps)


def test_normalise_scales_each_map_alone() -> None:
    maps = np.stack([np.full((4, 4), 7.0), np.arange(16.0).reshape(4, 4)], axis=-1)
    out = normalise(maps)
    assert np.all(out[..., 0] == 0)  # constant map
    assert out[..., 1].min() == 0 and out[..., 1].max() == 1


def test_tile_lays_out_eight_maps_per_row() -> None:
    maps = np.zeros((10, 10, 16), np.float32)
    maps[0, 0, 9] = 1.0  # map 9: second row, second column
    mosaic = tile(maps)
    scale = -(-MIN_TILE // 10)
    size = 10 * scale
    assert mosaic.shape == (2 * (size + PADDING) + PADDING, 8 * (size + PADDING) + PADDING, 3)
    top, left = PADDING + (size + PADDING), PADDING + (size + PADDING)
    bright, dark = mosaic[top, left], mosaic[top, left + size - 1]
    assert int(bright.sum()) > int(dark.sum())  # viridis: 1 is yellow, 0 is dark purple


def test_render_layer_is_a_titled_png() -> None:
    maps = fake_features().maps[1]
    png = render_layer(maps, "conv2")
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        mosaic = tile(maps)
        assert image.width == mosaic.shape[1]
        assert image.height == mosaic.shape[0] + TITLE_PIXELS


def test_render_features_all_or_one_layer() -> None:
    features = fake_features()
    files = render_features(features, caption="Sith 0.800")
    assert [name for name, _ in files] == [f"conv{n}.png" for n in range(1, 6)]
    for (_, data), (_, _, count) in zip(files, SHAPES, strict=True):
        with Image.open(io.BytesIO(data)) as image:
            rows = -(-count // MAPS_PER_ROW)
            assert image.height > rows * 8
    only = render_features(features, [3])
    assert [name for name, _ in only] == ["conv3.png"]
    with pytest.raises(ValueError, match="between 1 and 5"):
        render_features(features, [6])


def test_the_grid_shows_the_maps_it_was_given() -> None:
    features = fake_features(1)
    a = tile(features.maps[4])
    b = tile(fake_features(2).maps[4])
    assert not np.array_equal(a, b)
    assert np.array_equal(a, tile(features.maps[4]))
