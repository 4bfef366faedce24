"""The screenshot and scene groups of the out-of-distribution set (`_ood_data`)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from benchmarks._ood_drawn import (
    MAX_SIDE,
    MIN_SIDE,
    Sample,
    _choose,
    _color,
    _font,
    _sample,
    _shade,
    _size,
    _words,
)
from training.synthetic_backgrounds import (
    _bg_gradient,
    _bg_noise,
    _bg_room,
    _bg_shapes,
    _bg_starfield,
    _scenery_color,
)

REPO = Path(__file__).resolve().parent.parent
PLAYGROUND_SCREENSHOT = REPO / "docs" / "playground.png"
"""A real screenshot of the playground page (the one in the README)."""

# --------------------------------------------------------------------------- screenshots

_SCREEN_SIZES = ((1280, 720), (1366, 768), (1440, 900), (1536, 864), (1600, 900), (1920, 1080))


def _screenshot(rng: np.random.Generator, i: int) -> Sample:
    if i % 2 == 0 and PLAYGROUND_SCREENSHOT.is_file():
        return _playground_crop(rng, i)
    return _ui_render(rng, i)


@functools.cache
def _playground_image() -> Image.Image:
    with Image.open(PLAYGROUND_SCREENSHOT) as opened:
        return opened.convert("RGB")


def _playground_crop(rng: np.random.Generator, i: int) -> Sample:
    """A crop of the real screenshot of the playground, rescaled; the first one is the file."""
    if i == 0:
        return Sample("playground_screenshot_full.png", PLAYGROUND_SCREENSHOT.read_bytes())
    shot = _playground_image()
    sw, sh = shot.size
    cw, ch = (int(s * rng.uniform(0.4, 1.0)) for s in (sw, sh))
    x, y = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
    crop = shot.crop((x, y, x + cw, y + ch))
    scale = rng.uniform(0.5, 1.5)
    scale = min(scale, MAX_SIDE / max(cw, ch))
    scale = max(scale, MIN_SIDE / min(cw, ch))
    size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
    crop = crop.resize(size, Image.Resampling.LANCZOS)
    fmt = _choose(rng, ("PNG", "PNG", "PNG", "JPEG", "WEBP"))
    return _sample("playground_screenshot_crop", i, crop, fmt, rng)


def _ui_render(rng: np.random.Generator, i: int) -> Sample:
    """A made-up application window: title bar, sidebar, header, chat bubbles, buttons, text."""
    w, h = _SCREEN_SIZES[int(rng.integers(len(_SCREEN_SIZES)))]
    dark = rng.random() < 0.5
    base = _color(rng, 28, 60) if dark else _color(rng, 232, 256)
    step = 12 if dark else -12
    ink = (225, 225, 230) if dark else (30, 30, 35)
    muted = (150, 150, 160) if dark else (110, 110, 120)
    accent = _color(rng)
    image = Image.new("RGB", (w, h), base)
    draw = ImageDraw.Draw(image)
    font = _font("DejaVuSans.ttf", int(rng.integers(14, 20)))
    bold = _font("DejaVuSans-Bold.ttf", font.size + 2)

    # Title bar with window buttons.
    bar = int(rng.integers(28, 44))
    draw.rectangle((0, 0, w, bar), fill=_shade(base, 2 * step))
    for k, colour in enumerate(((255, 95, 86), (255, 189, 46), (39, 201, 63))):
        cx = 18 + 22 * k
        draw.ellipse((cx - 6, bar // 2 - 6, cx + 6, bar // 2 + 6), fill=colour)
    title = _words(rng, 3).rstrip(".")
    draw.text((w // 2 - int(draw.textlength(title, font=font)) // 2, bar // 4), title, ink, font)

    # Sidebar with a list of items, one selected.
    side = int(w * rng.uniform(0.15, 0.25))
    draw.rectangle((0, bar, side, h), fill=_shade(base, step))
    y = bar + 20
    selected = int(rng.integers(0, 8))
    for k in range(int(rng.integers(5, 14))):
        if k == selected:
            draw.rounded_rectangle((8, y - 6, side - 8, y + font.size + 8), 6, fill=accent)
        label = _words(rng, int(rng.integers(1, 3))).rstrip(".").lower()
        draw.text((20, y), label, ink, font)
        y += font.size + 20

    # Header and a search box.
    head = bar + int(rng.integers(44, 64))
    draw.line((side, head, w, head), fill=_shade(base, 3 * step), width=1)
    draw.text((side + 20, bar + 14), _words(rng, 2).rstrip("."), ink, bold)
    draw.rounded_rectangle((w - 300, bar + 10, w - 20, head - 10), 8, fill=_shade(base, 2 * step))
    draw.text((w - 288, bar + 16), "Search", muted, font)

    # Chat bubbles or text rows, with avatars.
    y = head + 20
    bottom = h - 90
    while y < bottom - 60:
        mine = rng.random() < 0.4
        lines = [_words(rng, int(rng.integers(3, 12))) for _ in range(int(rng.integers(1, 4)))]
        widest = max(int(draw.textlength(line, font=font)) for line in lines)
        bh = len(lines) * (font.size + 6) + 20
        if y + bh > bottom:
            break
        if mine:
            x1 = w - 30
            x0 = max(side + 80, x1 - widest - 30)
            draw.rounded_rectangle((x0, y, x1, y + bh), 14, fill=accent)
        else:
            draw.ellipse((side + 20, y, side + 60, y + 40), fill=_color(rng))
            x0 = side + 76
            x1 = min(w - 80, x0 + widest + 30)
            draw.rounded_rectangle((x0, y, x1, y + bh), 14, fill=_shade(base, 2 * step))
        text_colour = (255, 255, 255) if mine and sum(accent) < 400 else ink
        if mine and sum(accent) >= 400:
            text_colour = (20, 20, 20)
        for k, line in enumerate(lines):
            draw.text((x0 + 15, y + 10 + k * (font.size + 6)), line, text_colour, font)
        y += bh + int(rng.integers(12, 30))

    # Input box and buttons.
    draw.rounded_rectangle((side + 20, h - 70, w - 160, h - 20), 10, fill=_shade(base, 2 * step))
    draw.text((side + 36, h - 56), "Type a message", muted, font)
    draw.rounded_rectangle((w - 145, h - 70, w - 20, h - 20), 10, fill=accent)
    label_colour = (255, 255, 255) if sum(accent) < 400 else (20, 20, 20)
    draw.text((w - 120, h - 56), _choose(rng, ("Send", "OK", "Submit", "Post")), label_colour, bold)
    fmt = _choose(rng, ("PNG", "PNG", "PNG", "JPEG", "WEBP"))
    return _sample("ui_render", i, image, fmt, rng)


# --------------------------------------------------------------------------- shapes and scenes

_BACKGROUNDS = (_bg_gradient, _bg_starfield, _bg_room, _bg_noise, _bg_shapes)


def _shapes_scene(rng: np.random.Generator, i: int) -> Sample:
    """A training background (no figure), enlarged, with random Pillow shapes over it."""
    make = _BACKGROUNDS[i % len(_BACKGROUNDS)]
    background = make(rng)
    w, h = _size(rng, hi=1400)
    image = background.resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    unit = max(w, h) / 400
    for _ in range(int(rng.integers(0, 16))):
        color = _scenery_color(rng) if rng.random() < 0.7 else _color(rng)
        x, y = rng.uniform(-0.1, 1.0) * w, rng.uniform(-0.1, 1.0) * h
        sw, sh = rng.uniform(10, 140, 2) * unit
        kind = int(rng.integers(6))
        outline = _color(rng) if rng.random() < 0.3 else None
        width = max(1, round(rng.uniform(1, 4) * unit))
        if kind == 0:
            draw.rectangle((x, y, x + sw, y + sh), fill=color, outline=outline, width=width)
        elif kind == 1:
            draw.ellipse((x, y, x + sw, y + sh), fill=color, outline=outline, width=width)
        elif kind == 2:
            pts = [(x + rng.uniform(0, sw), y + rng.uniform(0, sh)) for _ in range(3)]
            draw.polygon(pts, fill=color, outline=outline)
        elif kind == 3:
            draw.rounded_rectangle(
                (x, y, x + sw, y + sh), radius=min(sw, sh) / 4, fill=color, outline=outline
            )
        elif kind == 4:
            sides = int(rng.integers(5, 9))
            draw.regular_polygon(
                (x, y, min(sw, sh) / 2), sides, rotation=rng.uniform(0, 360), fill=color
            )
        else:
            draw.arc(
                (x, y, x + sw, y + sh), rng.uniform(0, 180), rng.uniform(180, 360), color, width
            )
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0) * unit))
    name = f"scene_{make.__name__.removeprefix('_bg_')}"
    return _sample(name, i, image, _choose(rng, ("PNG", "JPEG", "JPEG", "WEBP")), rng)
