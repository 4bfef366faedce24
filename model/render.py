"""Draw what the network "sees": the feature maps of a convolution as a titled grid, as PNG bytes.

The notebook drew one matplotlib subplot per map (64 axes for a 64-channel layer), which costs
about a second per layer. Here the grid is tiled in numpy (each map scaled to its own 0..1 range,
coloured with viridis, the notebook's default colormap, 8 maps to a row as in the notebook) and
Pillow adds a title strip and encodes it: the same maps, a fraction of the time. (Drawing the
mosaic through a matplotlib figure gave the same pixels but resampled it as float RGBA first:
three times slower, and about 150 MB more peak memory for conv3's 1122x1122 grid.)

A server's held-out images are drawn here too (`render_tiles`, `render_confusion`,
`render_curve`): thumbnails with their captions, the confusion matrix with an image per cell,
and the learning curve, for `!mistakes` and `!retrain`.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.runtime import FeatureMaps

MAPS_PER_ROW = 8
MIN_TILE = 96  # pixels: small maps (conv5 is 8x8) are enlarged so they can be seen
PADDING = 2
TITLE_PIXELS = 36
TITLE_FONT_PIXELS = 17  # 12 pt at 100 dpi
PAD_COLOUR = (40, 40, 40)


def normalise(maps: np.ndarray) -> np.ndarray:
    """Scale each map (last axis = channel) to 0..1; a constant map becomes 0."""
    maps = np.asarray(maps, dtype=np.float32)
    low = maps.min(axis=(0, 1), keepdims=True)
    span = maps.max(axis=(0, 1), keepdims=True) - low
    return np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)


def tile(maps: np.ndarray, per_row: int = MAPS_PER_ROW) -> np.ndarray:
    """Arrange (h, w, c) maps into an RGB uint8 mosaic, `per_row` maps to a row."""
    from matplotlib import colormaps

    height, width, count = maps.shape
    scale = max(1, -(-MIN_TILE // max(height, width)))  # ceil
    normalised = normalise(maps)
    if scale > 1:
        normalised = normalised.repeat(scale, axis=0).repeat(scale, axis=1)
    tile_h, tile_w = height * scale, width * scale
    rows = -(-count // per_row)
    columns = min(per_row, count)
    lut = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    mosaic = np.empty(
        (rows * (tile_h + PADDING) + PADDING, columns * (tile_w + PADDING) + PADDING, 3),
        dtype=np.uint8,
    )
    mosaic[:] = PAD_COLOUR
    indices = (normalised * 255 + 0.5).astype(np.uint8)
    for channel in range(count):
        row, column = divmod(channel, per_row)
        top = PADDING + row * (tile_h + PADDING)
        left = PADDING + column * (tile_w + PADDING)
        mosaic[top : top + tile_h, left : left + tile_w] = lut[indices[:, :, channel]]
    return mosaic


def render_layer(maps: np.ndarray, title: str) -> bytes:
    """One convolution's maps, (h, w, c), as a titled PNG grid."""
    from PIL import Image, ImageDraw

    mosaic = tile(maps)
    height, width = mosaic.shape[:2]
    image = Image.new("RGB", (width, height + TITLE_PIXELS), "white")
    image.paste(Image.fromarray(mosaic), (0, TITLE_PIXELS))
    ImageDraw.Draw(image).text(
        (width / 2, TITLE_PIXELS / 2), title, fill="black", font=_title_font(), anchor="mm"
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@functools.cache
def _title_font():
    """Matplotlib's own DejaVu Sans (it ships with matplotlib), else Pillow's default font."""
    from matplotlib import font_manager
    from PIL import ImageFont

    try:
        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), TITLE_FONT_PIXELS)
    except OSError:  # pragma: no cover - matplotlib always ships the font
        return ImageFont.load_default(TITLE_FONT_PIXELS)


def layer_title(layer: str, maps: np.ndarray, caption: str = "") -> str:
    height, width, count = maps.shape
    text = f"{layer}: {count} feature maps, {height}x{width}"
    return f"{text} - {caption}" if caption else text


def render_features(
    features: FeatureMaps, layers: Sequence[int] | None = None, caption: str = ""
) -> list[tuple[str, bytes]]:
    """PNG files, `(filename, bytes)`, for the chosen layers (1-based; default all five)."""
    chosen = list(layers) if layers else list(range(1, len(features.layers) + 1))
    for number in chosen:
        if not 1 <= number <= len(features.layers):
            raise ValueError(f"layer must be between 1 and {len(features.layers)}, not {number}")
    files = []
    for number in chosen:
        name, maps = features.layers[number - 1], features.maps[number - 1]
        files.append((f"{name}.png", render_layer(maps, layer_title(name, maps, caption))))
    return files


# -- a server's held-out images: its mistakes, its confusion matrix, its learning curve ----------

THUMB = 128  # pixels: each held-out image's thumbnail
TILE_COLUMNS = 4
CAPTION_PIXELS = 40  # two lines under each thumbnail
CAPTION_FONT_PIXELS = 14
WRONG_COLOUR = (200, 40, 40)
RIGHT_COLOUR = (40, 130, 60)


@dataclass(frozen=True)
class Tile:
    """One held-out image in a picture: its pixels and two lines of caption."""

    image: np.ndarray  # (h, w, 3) uint8, shown at THUMB x THUMB
    first: str
    second: str
    wrong: bool


def tiles_size(count: int, columns: int = TILE_COLUMNS) -> tuple[int, int]:
    """The (width, height) in pixels of `render_tiles`'s picture of `count` tiles."""
    if count < 1:
        raise ValueError("a picture needs at least one tile")
    rows = -(-count // columns)
    width = min(count, columns) * (THUMB + PADDING) + PADDING
    return width, TITLE_PIXELS + rows * (THUMB + CAPTION_PIXELS + PADDING) + PADDING


def render_tiles(tiles: Sequence[Tile], title: str, columns: int = TILE_COLUMNS) -> bytes:
    """Thumbnails in a grid, each with its caption (red: the model is wrong), as PNG bytes."""
    from PIL import Image, ImageDraw

    width, height = tiles_size(len(tiles), columns)
    picture = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)
    draw.text((width / 2, TITLE_PIXELS / 2), title, fill="black", font=_title_font(), anchor="mm")
    font = _caption_font()
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        left = PADDING + column * (THUMB + PADDING)
        top = TITLE_PIXELS + row * (THUMB + CAPTION_PIXELS + PADDING)
        thumb = Image.fromarray(np.asarray(tile.image, dtype=np.uint8)).resize((THUMB, THUMB))
        picture.paste(thumb, (left, top))
        colour = WRONG_COLOUR if tile.wrong else RIGHT_COLOUR
        draw.rectangle((left, top, left + THUMB - 1, top + THUMB - 1), outline=colour, width=3)
        middle = left + THUMB / 2
        draw.text((middle, top + THUMB + 11), tile.first, fill="black", font=font, anchor="mm")
        draw.text((middle, top + THUMB + 29), tile.second, fill=colour, font=font, anchor="mm")
    return _png(picture)


def render_confusion(
    class_names: Sequence[str],
    counts: np.ndarray,
    previews: dict[tuple[int, int], np.ndarray],
) -> bytes:
    """The confusion matrix (rows: the label, columns: the model's answer) with a count and,
    where it has one, an image of each cell, as PNG bytes."""
    from PIL import Image, ImageDraw

    size = len(class_names)
    if counts.shape != (size, size):
        raise ValueError("the counts must be a square matrix, one row per class")
    side = THUMB + CAPTION_PIXELS // 2
    header = 110
    width, height = header + size * (THUMB + PADDING), TITLE_PIXELS + 24 + size * (side + PADDING)
    picture = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)
    font = _caption_font()
    title = "label (rows) against the model's answer (columns)"
    draw.text((width / 2, TITLE_PIXELS / 2), title, fill="black", font=font, anchor="mm")
    for j, name in enumerate(class_names):
        centre = header + j * (THUMB + PADDING) + THUMB / 2
        draw.text(
            (centre, TITLE_PIXELS + 12),
            f"says {name.capitalize()}",
            fill="black",
            font=font,
            anchor="mm",
        )
    for i, name in enumerate(class_names):
        top = TITLE_PIXELS + 24 + i * (side + PADDING)
        draw.text(
            (8, top + THUMB / 2), f"is {name.capitalize()}", fill="black", font=font, anchor="lm"
        )
        for j in range(size):
            left = header + j * (THUMB + PADDING)
            preview = previews.get((i, j))
            if preview is not None:
                thumb = Image.fromarray(np.asarray(preview, dtype=np.uint8))
                picture.paste(thumb.resize((THUMB, THUMB)), (left, top))
            else:
                draw.rectangle((left, top, left + THUMB - 1, top + THUMB - 1), fill=(230, 230, 230))
            colour = RIGHT_COLOUR if i == j else WRONG_COLOUR
            count = f"{int(counts[i, j])} image" + ("" if int(counts[i, j]) == 1 else "s")
            draw.text(
                (left + THUMB / 2, top + THUMB + 10), count, fill=colour, font=font, anchor="mm"
            )
    return _png(picture)


def render_curve(
    labels: Sequence[int], accuracy: Sequence[float], published: Sequence[bool]
) -> bytes:
    """A server's learning curve: holdout accuracy against labelled images, one point per
    retrain (filled: published), as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3), dpi=100)
    axes = figure.add_subplot()
    axes.plot(labels, accuracy, color="grey", linewidth=1, zorder=1)
    for kept in (True, False):
        chosen = [(n, a) for n, a, p in zip(labels, accuracy, published, strict=True) if p == kept]
        if chosen:
            x, y = zip(*chosen, strict=True)
            face = "tab:blue" if kept else "white"
            name = "published" if kept else "not published"
            axes.scatter(x, y, facecolors=face, edgecolors="tab:blue", label=name, zorder=2)
    axes.set_xlabel("labelled images learned from")
    axes.set_ylabel("holdout accuracy")
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def render_why(image: np.ndarray, heatmap: np.ndarray, title: str) -> bytes:
    """Why?: the image with its heatmap (0..1, same size) drawn over it, a colour bar and the
    verdict as title, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.6, 4), dpi=100)
    axes = figure.add_subplot()
    axes.imshow(np.asarray(image, dtype=np.uint8))
    cold = np.ma.masked_less(heatmap, 0.05)  # the image shows as it is where nothing decided
    shown = axes.imshow(cold, cmap="jet", alpha=0.5, vmin=0, vmax=1)
    axes.set_axis_off()
    axes.set_title(title, fontsize=10)
    bar = figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04)
    bar.set_label("how much hiding it changes the verdict", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _png(picture) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@functools.cache
def _caption_font():
    from matplotlib import font_manager
    from PIL import ImageFont

    try:
        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), CAPTION_FONT_PIXELS)
    except OSError:  # pragma: no cover - matplotlib always ships the font
        return ImageFont.load_default(CAPTION_FONT_PIXELS)
