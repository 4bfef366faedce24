"""The scenery of the synthetic Jedi/Sith images (`training.synthetic`): its colours and the
backgrounds the figures stand in front of, drawn independently of the class."""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

SIZE = 200
"""Side of the images written, in pixels."""

_SS = 2  # supersampling factor: scenes are drawn at _SS * SIZE and reduced, for smooth edges
_CANVAS = SIZE * _SS

Color = tuple[int, int, int]


def _hsv(h: float, s: float, v: float) -> Color:
    """An RGB colour from a hue in degrees and saturation and value in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb((h % 360.0) / 360.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (round(r * 255), round(g * 255), round(b * 255))


def _jitter(color: Color, rng: np.random.Generator, amount: float) -> Color:
    """`color` with each channel moved by up to +-`amount`, kept in 0..255."""
    c = np.asarray(color, dtype=np.float64) + rng.uniform(-amount, amount, 3)
    r, g, b = (int(x) for x in np.clip(np.rint(c), 0, 255))
    return (r, g, b)


def _scenery_color(rng: np.random.Generator) -> Color:
    """A colour for backgrounds and props: any hue, never a bright saturated (blade-like) one."""
    h = rng.uniform(0, 360)
    if rng.random() < 0.6:
        s, v = rng.uniform(0.0, 0.35), rng.uniform(0.08, 0.8)
    else:
        s, v = rng.uniform(0.35, 0.85), rng.uniform(0.08, 0.45)
    return _hsv(h, s, v)


def _pick(rng: np.random.Generator, options: Sequence[Color]) -> Color:
    """One of `options`, uniformly."""
    return options[int(rng.integers(len(options)))]


# --------------------------------------------------------------------------- backgrounds


def _bg_gradient(rng: np.random.Generator) -> Image.Image:
    """A linear gradient between two scenery colours in a random direction."""
    a = np.asarray(_scenery_color(rng), dtype=np.float32)
    b = np.asarray(_scenery_color(rng), dtype=np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    n = SIZE // 4  # smooth enough to compute small and enlarge
    coords = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    t = np.cos(angle) * coords[None, :] + np.sin(angle) * coords[:, None]
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    arr = a + (b - a) * t[..., None]
    small = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return small.resize((_CANVAS, _CANVAS), Image.Resampling.BILINEAR)


def _bg_starfield(rng: np.random.Generator) -> Image.Image:
    """A dark sky with stars, and sometimes a planet."""
    base = _hsv(rng.uniform(200, 280), rng.uniform(0.2, 0.7), rng.uniform(0.02, 0.2))
    img = Image.new("RGB", (_CANVAS, _CANVAS), base)
    draw = ImageDraw.Draw(img)
    if rng.random() < 0.4:
        r = rng.uniform(20, 120) * _SS
        x, y = rng.uniform(0, _CANVAS), rng.uniform(0, _CANVAS * 0.6)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=_scenery_color(rng))
    n = int(rng.integers(40, 250))
    xs = rng.uniform(0, _CANVAS, n)
    ys = rng.uniform(0, _CANVAS, n)
    sizes = rng.choice([1, 1, 1, 2, 2, 3], n) * _SS / 2
    levels = rng.integers(120, 256, n)
    for x, y, s, v in zip(xs, ys, sizes, levels, strict=True):
        tint = int(rng.integers(-20, 21))
        draw.ellipse(
            (x - s, y - s, x + s, y + s),
            fill=(int(v), int(np.clip(v - abs(tint) // 2, 0, 255)), int(np.clip(v + tint, 0, 255))),
        )
    return img


def _bg_room(rng: np.random.Generator) -> Image.Image:
    """A wall with panels and a floor, seen in simple perspective."""
    wall = _scenery_color(rng)
    floor = _jitter(_scenery_color(rng), rng, 10)
    img = Image.new("RGB", (_CANVAS, _CANVAS), wall)
    draw = ImageDraw.Draw(img)
    horizon = rng.uniform(0.45, 0.8) * _CANVAS
    draw.rectangle((0, horizon, _CANVAS, _CANVAS), fill=floor)
    # Panels or a door on the wall.
    panel = _jitter(wall, rng, 35)
    for _ in range(int(rng.integers(1, 5))):
        w = rng.uniform(20, 70) * _SS
        h = rng.uniform(30, 100) * _SS
        x = rng.uniform(-w / 2, _CANVAS - w / 2)
        y = horizon - h - rng.uniform(0, 30) * _SS
        draw.rectangle((x, y, x + w, y + h), fill=panel, outline=_jitter(panel, rng, 30), width=2)
    # Floor lines converging to a vanishing point.
    vx = rng.uniform(0.2, 0.8) * _CANVAS
    line = _jitter(floor, rng, 30)
    for k in range(-6, 7):
        draw.line((vx, horizon, vx + k * 50 * _SS, _CANVAS), fill=line, width=_SS)
    draw.line((0, horizon, _CANVAS, horizon), fill=_jitter(wall, rng, 40), width=2 * _SS)
    return img


def _bg_noise(rng: np.random.Generator) -> Image.Image:
    """Smooth coloured noise: a small random grid upscaled, plus fine grain."""
    grid = int(rng.integers(3, 10))
    centre = np.asarray(_scenery_color(rng), dtype=np.float32)
    luma = rng.normal(0, rng.uniform(10, 40), (grid, grid, 1))
    chroma = rng.normal(0, rng.uniform(4, 20), (grid, grid, 3))
    small = centre + (luma + chroma).astype(np.float32)
    small_img = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8), "RGB")
    big = np.asarray(
        small_img.resize((_CANVAS, _CANVAS), Image.Resampling.BICUBIC), dtype=np.float32
    )
    big = big + rng.normal(0, rng.uniform(2, 12), (_CANVAS, _CANVAS, 1)).astype(np.float32)
    return Image.fromarray(np.clip(big, 0, 255).astype(np.uint8), "RGB")


def _bg_shapes(rng: np.random.Generator) -> Image.Image:
    """A plain colour covered with random rectangles, ellipses and polygons."""
    img = Image.new("RGB", (_CANVAS, _CANVAS), _scenery_color(rng))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 14))):
        color = _scenery_color(rng)
        x, y = rng.uniform(-20, _CANVAS), rng.uniform(-20, _CANVAS)
        w, h = rng.uniform(10, 110) * _SS, rng.uniform(10, 110) * _SS
        kind = int(rng.integers(3))
        if kind == 0:
            draw.rectangle((x, y, x + w, y + h), fill=color)
        elif kind == 1:
            draw.ellipse((x, y, x + w, y + h), fill=color)
        else:
            pts = [(x + rng.uniform(0, w), y + rng.uniform(0, h)) for _ in range(3)]
            draw.polygon(pts, fill=color)
    return img


_BACKGROUNDS = (_bg_gradient, _bg_starfield, _bg_room, _bg_noise, _bg_shapes)
