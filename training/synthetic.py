"""A synthetic Jedi/Sith dataset, so that anyone can train and test the network with no photos.

Every image is a procedurally drawn 200x200 RGB scene of a robed figure holding a lightsaber:

* Jedi carry blue or green blades (now and then purple or yellow) and mostly wear light robes
  (tan, brown, cream, white), sometimes dark ones.
* Sith carry red blades, sometimes double-bladed, and mostly wear dark robes (black, dark grey,
  dark red), sometimes light ones.

Backgrounds (gradients, starfields, rooms, noise, random shapes: `training.synthetic_backgrounds`),
poses, lighting and colour casts, foreground occluders, sensor noise and JPEG artefacts vary
independently of the class, so neither a single pixel nor the mean colour of an image gives the
answer; the blade (its colour and style) together with the robe does.

Output is deterministic: image ``i`` of a class is drawn from a random generator seeded with
``(seed, class, i)``, so the same seed gives byte-identical files and ``--jedi 10`` writes a
prefix of what ``--jedi 20`` writes::

    python -m training.synthetic data/synthetic --jedi 745 --sith 637 --seed 0

writes ``data/synthetic/jedi/jedi_00000.png``, ``data/synthetic/sith/sith_00000.jpg``, ...
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.arguments import Parser
from training.synthetic_backgrounds import (
    _BACKGROUNDS,
    _CANVAS,
    _SS,
    SIZE,
    Color,
    _hsv,
    _jitter,
    _pick,
    _scenery_color,
)

log = logging.getLogger(__name__)

LABELS = ("jedi", "sith")
"""The class names, which are also the folder names; their order seeds the generators."""

DEFAULT_COUNTS = {"jedi": 745, "sith": 637}

Point = tuple[float, float]

# Robe colours (RGB). The "usual" lists hold the bulk of each class; the "unusual" ones give
# the overlap (dark-robed Jedi, light-robed Sith).
_JEDI_ROBES: tuple[Color, ...] = (
    (196, 164, 120),  # tan
    (176, 140, 96),  # darker tan
    (128, 88, 56),  # brown
    (150, 110, 70),  # light brown
    (232, 222, 196),  # cream
    (238, 236, 228),  # white
    (200, 196, 186),  # light grey
)
_JEDI_UNUSUAL_ROBES: tuple[Color, ...] = ((62, 42, 28), (30, 26, 24), (48, 48, 52))
_SITH_ROBES: tuple[Color, ...] = (
    (18, 18, 20),  # black
    (30, 28, 30),  # near black
    (56, 56, 62),  # dark grey
    (84, 16, 20),  # dark red
    (44, 14, 18),  # very dark red
)
_SITH_UNUSUAL_ROBES: tuple[Color, ...] = ((176, 140, 96), (150, 110, 70), (200, 196, 186))

_SKIN: tuple[Color, ...] = (
    (241, 204, 170),
    (224, 172, 130),
    (198, 140, 100),
    (160, 106, 70),
    (110, 72, 48),
    (80, 52, 36),
)

# Blade hues, in degrees, and the weights with which they are chosen.
_JEDI_BLADES: tuple[tuple[str, float, float], ...] = (
    ("blue", 218.0, 0.44),
    ("green", 122.0, 0.40),
    ("purple", 280.0, 0.08),
    ("yellow", 52.0, 0.08),
)
_SITH_BLADE_HUE = 0.0
_SITH_DOUBLE_BLADE_P = 0.3


# --------------------------------------------------------------------------- figure


def _robe_color(label: str, rng: np.random.Generator) -> Color:
    """The robe colour for a class: usually the class's own kind, sometimes the other's."""
    if label == "jedi":
        options = _JEDI_UNUSUAL_ROBES if rng.random() < 0.15 else _JEDI_ROBES
    else:
        options = _SITH_UNUSUAL_ROBES if rng.random() < 0.15 else _SITH_ROBES
    return _jitter(_pick(rng, options), rng, 12)


def _shade(color: Color, factor: float) -> Color:
    """`color` scaled by `factor` (below 1 darker, above 1 lighter)."""
    r, g, b = (int(min(255, max(0, c * factor))) for c in color)
    return (r, g, b)


def _draw_figure(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, robe: Color, hand: Point, s: float
) -> tuple[float, float]:
    """Draws the robed figure, arms reaching to `hand`; returns the figure's (centre x, top y).

    Coordinates are in canvas pixels; `s` is the figure's scale in canvas pixels per unit.
    """
    cx = hand[0] + rng.uniform(-22, 22) * s
    head_r = 11 * s
    top = hand[1] - rng.uniform(42, 72) * s
    head_y = top + head_r
    shoulder_y = head_y + head_r + 4 * s
    shoulder_w = rng.uniform(19, 25) * s
    hem_y = shoulder_y + rng.uniform(95, 125) * s
    hem_w = rng.uniform(30, 42) * s
    dark = _shade(robe, 0.7)
    skin = _jitter(_pick(rng, _SKIN), rng, 10)

    # Body: a robe widening to the hem, shoulders rounded off.
    draw.polygon(
        [
            (cx - shoulder_w, shoulder_y),
            (cx + shoulder_w, shoulder_y),
            (cx + hem_w, hem_y),
            (cx - hem_w, hem_y),
        ],
        fill=robe,
    )
    draw.ellipse(
        (cx - shoulder_w, shoulder_y - 7 * s, cx + shoulder_w, shoulder_y + 12 * s), fill=robe
    )
    # Folds and a tabard.
    for _ in range(int(rng.integers(2, 5))):
        fx = rng.uniform(-0.8, 0.8)
        draw.line(
            (cx + fx * shoulder_w, shoulder_y + 10 * s, cx + fx * hem_w * 1.1, hem_y),
            fill=dark,
            width=max(1, round(2 * s)),
        )
    if rng.random() < 0.5:
        tabard = _shade(robe, rng.uniform(0.75, 1.25))
        draw.polygon(
            [
                (cx - 6 * s, shoulder_y),
                (cx + 6 * s, shoulder_y),
                (cx + 9 * s, hem_y),
                (cx - 9 * s, hem_y),
            ],
            fill=tabard,
        )
    if rng.random() < 0.65:
        belt_y = shoulder_y + rng.uniform(38, 50) * s
        belt = _jitter(
            _pick(rng, ((70, 45, 25), (40, 30, 25), (110, 80, 50), (20, 20, 20))), rng, 8
        )
        frac = (belt_y - shoulder_y) / (hem_y - shoulder_y)
        bw = shoulder_w + (hem_w - shoulder_w) * frac
        draw.rectangle((cx - bw, belt_y, cx + bw, belt_y + 5 * s), fill=belt)

    # Head, and sometimes a hood over it.
    hooded = rng.random() < 0.4
    if hooded:
        hr = head_r * 1.55
        draw.ellipse((cx - hr, head_y - hr, cx + hr, head_y + hr * 1.1), fill=_shade(robe, 0.85))
        face = _shade(skin, rng.uniform(0.35, 0.7))
        draw.ellipse(
            (cx - head_r * 0.8, head_y - head_r * 0.7, cx + head_r * 0.8, head_y + head_r),
            fill=face,
        )
    else:
        draw.ellipse((cx - head_r, head_y - head_r, cx + head_r, head_y + head_r), fill=skin)
        if rng.random() < 0.7:
            hair = _pick(rng, ((40, 28, 20), (90, 60, 30), (150, 120, 80), (200, 200, 200)))
            draw.chord(
                (cx - head_r, head_y - head_r, cx + head_r, head_y + head_r), 180, 360, fill=hair
            )

    # Arms: both to the hilt, or one to the hilt and the other hanging or reaching out.
    sleeve = _shade(robe, rng.uniform(0.85, 1.1))
    arm_w = max(2, round(8 * s))
    left = (cx - shoulder_w * 0.85, shoulder_y + 4 * s)
    right = (cx + shoulder_w * 0.85, shoulder_y + 4 * s)
    hand_r = 4 * s
    if rng.random() < 0.6:
        ends = [hand, hand]
    else:
        free = (
            cx + rng.choice([-1, 1]) * rng.uniform(25, 45) * s,
            shoulder_y + rng.uniform(5, 60) * s,
        )
        ends = [hand, free] if rng.random() < 0.5 else [free, hand]
    for shoulder, end in zip((left, right), ends, strict=True):
        elbow = (
            (shoulder[0] + end[0]) / 2 + rng.uniform(-8, 8) * s,
            (shoulder[1] + end[1]) / 2 + rng.uniform(0, 10) * s,
        )
        draw.line((shoulder, elbow, end), fill=sleeve, width=arm_w, joint="curve")
        draw.ellipse(
            (end[0] - hand_r, end[1] - hand_r, end[0] + hand_r, end[1] + hand_r), fill=skin
        )
    return cx, top


# --------------------------------------------------------------------------- lightsaber


def _blade_segments(
    label: str, rng: np.random.Generator, hand: Point, s: float
) -> tuple[list[tuple[Point, Point]], tuple[Point, Point]]:
    """Where the blade(s) and the hilt go: ([(start, end), ...], (hilt start, hilt end))."""
    double = label == "sith" and rng.random() < _SITH_DOUBLE_BLADE_P
    best: tuple[list[tuple[Point, Point]], tuple[Point, Point]] | None = None
    best_inside = -1.0
    for _ in range(12):
        # Angle from straight up, clockwise; mostly raised, sometimes lowered or level.
        angle = rng.uniform(-80, 80) if rng.random() < 0.85 else rng.uniform(95, 265)
        rad = math.radians(angle)
        d = (math.sin(rad), -math.cos(rad))
        length = rng.uniform(60, 140) * _SS
        if double:
            half = 11 * s
            h0 = (hand[0] - d[0] * half, hand[1] - d[1] * half)
            h1 = (hand[0] + d[0] * half, hand[1] + d[1] * half)
            blade_len = max(length * 0.7, 55 * _SS)
            segs = [
                (h1, (h1[0] + d[0] * blade_len, h1[1] + d[1] * blade_len)),
                (h0, (h0[0] - d[0] * blade_len, h0[1] - d[1] * blade_len)),
            ]
        else:
            h0 = (hand[0] - d[0] * 7 * s, hand[1] - d[1] * 7 * s)
            h1 = (hand[0] + d[0] * 9 * s, hand[1] + d[1] * 9 * s)
            segs = [(h1, (h1[0] + d[0] * length, h1[1] + d[1] * length))]
        inside = _fraction_inside(segs)
        if inside > best_inside:
            best, best_inside = (segs, (h0, h1)), inside
        if inside >= 0.75:
            break
    assert best is not None
    return best


def _segment_points(segs: Iterable[tuple[Point, Point]], n: int = 24) -> np.ndarray:
    """`n` evenly spaced points along each segment, as an (k, 2) array of (x, y)."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return np.concatenate(
        [np.asarray(a) + (np.asarray(b) - np.asarray(a)) * t for a, b in segs], axis=0
    )


def _fraction_inside(segs: Iterable[tuple[Point, Point]]) -> float:
    """The fraction of the blade that lies on the canvas (with a small margin)."""
    pts = _segment_points(segs)
    margin = 6 * _SS
    ok = (
        (pts[:, 0] >= margin)
        & (pts[:, 0] < _CANVAS - margin)
        & (pts[:, 1] >= margin)
        & (pts[:, 1] < _CANVAS - margin)
    )
    return float(ok.mean())


def _blade_color(label: str, rng: np.random.Generator) -> Color:
    """The saturated colour of the blade's glow."""
    if label == "sith":
        hue = _SITH_BLADE_HUE + rng.uniform(-6, 6)
        return _hsv(hue, rng.uniform(0.85, 1.0), rng.uniform(0.9, 1.0))
    weights = np.asarray([w for _, _, w in _JEDI_BLADES])
    k = int(rng.choice(len(_JEDI_BLADES), p=weights / weights.sum()))
    hue = _JEDI_BLADES[k][1] + rng.uniform(-10, 10)
    return _hsv(hue, rng.uniform(0.8, 1.0), rng.uniform(0.9, 1.0))


def _add_blade(
    arr: np.ndarray,
    segs: Sequence[tuple[Point, Point]],
    color: Color,
    rng: np.random.Generator,
) -> np.ndarray:
    """Adds glowing blades to the float RGB image `arr` (SIZE x SIZE; `segs` in canvas pixels).

    A wide glow that lights up the surroundings, a band of the blade's own colour laid over
    whatever is behind it (so it reads the same on dark and bright backgrounds) and a nearly
    white core. The core is drawn on the supersampled canvas and reduced, so it stays smooth.
    """
    core_w = rng.uniform(2.0, 3.5)
    band_w = core_w + rng.uniform(3.0, 5.0)
    glow_w = band_w + rng.uniform(0.0, 4.0)
    masks = {name: Image.new("L", (SIZE, SIZE), 0) for name in ("glow", "band")}
    core = Image.new("L", (_CANVAS, _CANVAS), 0)
    for a, b in segs:
        a1, b1 = (a[0] / _SS, a[1] / _SS), (b[0] / _SS, b[1] / _SS)
        for name, width in (("glow", glow_w), ("band", band_w)):
            draw = ImageDraw.Draw(masks[name])
            draw.line((a1, b1), fill=255, width=round(width))
            _disc(draw, b1, width / 2)
        draw = ImageDraw.Draw(core)
        draw.line((a, b), fill=255, width=round(core_w * _SS))
        _disc(draw, b, core_w * _SS / 2)
    glow = masks["glow"].filter(ImageFilter.GaussianBlur(rng.uniform(4, 8)))
    band = masks["band"].filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 1.8)))
    inner = core.reduce(_SS).filter(ImageFilter.GaussianBlur(0.5))
    col = np.asarray(color, np.float32)
    glow_a = np.asarray(glow, np.float32) * (rng.uniform(0.5, 0.9) / 255.0)
    band_a = np.minimum(np.asarray(band, np.float32) * (1.3 / 255.0), 1.0)[..., None]
    inner_a = np.asarray(inner, np.float32)[..., None] / 255.0
    out = arr + glow_a[..., None] * col
    out = out * (1.0 - band_a) + col * band_a
    white = 0.8 * 255.0 + 0.2 * col
    return out * (1.0 - inner_a) + white * inner_a


def _disc(draw: ImageDraw.ImageDraw, centre: Point, radius: float) -> None:
    """A filled white disc: the rounded tip of a blade."""
    x, y = centre
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)


def _draw_hilt(img: Image.Image, hilt: tuple[Point, Point], s: float) -> None:
    """Draws the metal hilt between `hilt`'s two ends."""
    draw = ImageDraw.Draw(img)
    draw.line(hilt, fill=(150, 150, 158), width=max(2, round(4.5 * s)))
    draw.line(hilt, fill=(70, 70, 76), width=max(1, round(1.5 * s)))


# --------------------------------------------------------------------------- scene


def _occluders(
    img: Image.Image, rng: np.random.Generator, segs: Sequence[tuple[Point, Point]]
) -> None:
    """Draws up to two foreground boxes on the SIZE x SIZE `img`, each hiding at most a third
    of the blade (`segs`, in canvas pixels)."""
    if rng.random() >= 0.35:
        return
    draw = ImageDraw.Draw(img)
    pts = _segment_points(segs) / _SS
    for _ in range(int(rng.integers(1, 3))):
        for _try in range(6):
            w, h = rng.uniform(20, 70), rng.uniform(20, 70)
            x, y = rng.uniform(-w / 2, SIZE - w / 2), rng.uniform(-h / 2, SIZE - h / 2)
            hidden = (
                (pts[:, 0] >= x) & (pts[:, 0] <= x + w) & (pts[:, 1] >= y) & (pts[:, 1] <= y + h)
            )
            if hidden.mean() <= 0.33:
                draw.rectangle((x, y, x + w, y + h), fill=_scenery_color(rng))
                break


def draw_scene(label: str, rng: np.random.Generator) -> Image.Image:
    """Draws one 200x200 RGB scene of a Jedi or a Sith (`label`) from the generator `rng`."""
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, not {label!r}")
    background = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))]
    img = background(rng)
    draw = ImageDraw.Draw(img)

    s = rng.uniform(0.75, 1.3) * _SS
    hand = (rng.uniform(50, 150) * _SS, rng.uniform(85, 150) * _SS)
    robe = _robe_color(label, rng)
    _draw_figure(draw, rng, robe, hand, s)
    segs, hilt = _blade_segments(label, rng, hand, s)
    _draw_hilt(img, hilt, s)

    img = img.reduce(_SS)

    # Lighting: overall brightness, a colour cast and a directional falloff.
    arr = np.asarray(img, dtype=np.float32)
    brightness = rng.uniform(0.6, 1.15)
    cast = rng.uniform(0.82, 1.18, 3).astype(np.float32)
    direction = rng.uniform(0, 2 * math.pi)
    coords = np.linspace(-1.0, 1.0, SIZE, dtype=np.float32)
    ramp = math.cos(direction) * coords[None, :] + math.sin(direction) * coords[:, None]
    falloff = 1.0 + rng.uniform(0.0, 0.2) * ramp
    arr = arr * (brightness * falloff)[..., None] * cast

    arr = _add_blade(arr, segs, _blade_color(label, rng), rng)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    _occluders(img, rng, segs)

    sigma = rng.uniform(0, 10) if rng.random() < 0.7 else 0.0
    if sigma > 0:
        noisy = np.asarray(img, np.float32) + rng.normal(0, sigma, (SIZE, SIZE, 3))
        img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    return img


# --------------------------------------------------------------------------- dataset


def _write_one(out_dir: Path, label: str, index: int, seed: int) -> Path:
    """Draws image `index` of `label` and writes it as PNG or JPEG (quality 40-95)."""
    rng = np.random.default_rng([seed, LABELS.index(label), index])
    img = draw_scene(label, rng)
    stem = out_dir / label / f"{label}_{index:05d}"
    if rng.random() < 0.5:
        path, other = stem.with_suffix(".jpg"), stem.with_suffix(".png")
        img.save(path, "JPEG", quality=int(rng.integers(40, 96)))
    else:
        path, other = stem.with_suffix(".png"), stem.with_suffix(".jpg")
        img.save(path, "PNG", compress_level=3)
    # A file of the same name in the other format, from an earlier run, would be a duplicate.
    other.unlink(missing_ok=True)
    return path


def _write_star(task: tuple[Path, str, int, int]) -> Path:
    """`_write_one` on a tuple, for process pools."""
    return _write_one(*task)


def generate_dataset(
    out_dir: Path, *, jedi: int = 745, sith: int = 637, seed: int = 0, workers: int = 1
) -> dict[str, int]:
    """Writes `jedi` and `sith` images under ``out_dir/jedi`` and ``out_dir/sith``.

    Files of the same name already there are overwritten. Returns the counts written, by class.
    """
    counts = {"jedi": jedi, "sith": sith}
    for label, n in counts.items():
        if n < 0:
            raise ValueError(f"the number of {label} images must be >= 0, not {n}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    out_dir = Path(out_dir)
    for label in LABELS:
        (out_dir / label).mkdir(parents=True, exist_ok=True)
    tasks = [(out_dir, label, i, seed) for label in LABELS for i in range(counts[label])]
    if workers == 1 or len(tasks) < 2:
        for task in tasks:
            _write_star(task)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(_write_star, tasks, chunksize=16):
                pass
    return counts


def _count(text: str) -> int:
    """An argparse type: a non-negative integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return value


def _positive(text: str) -> int:
    """An argparse type: a positive integer."""
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m training.synthetic OUT_DIR [--jedi N] [--sith N] [--seed S]``."""
    parser = Parser(
        prog="python -m training.synthetic",
        description="Write a synthetic Jedi/Sith image dataset (OUT_DIR/jedi, OUT_DIR/sith).",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write jedi/ and sith/ into")
    parser.add_argument("--jedi", type=_count, default=DEFAULT_COUNTS["jedi"], help="Jedi images")
    parser.add_argument("--sith", type=_count, default=DEFAULT_COUNTS["sith"], help="Sith images")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--workers", type=_positive, default=1, help="processes to draw with (default 1)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    counts = generate_dataset(
        args.out_dir, jedi=args.jedi, sith=args.sith, seed=args.seed, workers=args.workers
    )
    log.info(
        "wrote %d jedi and %d sith images to %s in %.1f s",
        counts["jedi"],
        counts["sith"],
        args.out_dir,
        time.perf_counter() - start,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
