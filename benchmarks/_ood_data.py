"""The development set of images *unlike the training data*, for the out-of-distribution benchmark.

The shipped network was trained only on procedurally drawn 200x200 scenes of a robed figure with a
lightsaber (`training/synthetic.py`). Users will post anything: noise, blank images, text,
screenshots, charts and, above all, photographs. This module builds such images, grouped by kind,
as the encoded files a user would upload (PNG, JPEG, WebP or GIF, at realistic sizes), so that a
benchmark can measure what the network answers on them and tune a way to say "that is neither".

It is the *development* set: scikit-image's sample images are held back to judge the result and
are deliberately not used here (nor is scikit-image imported).

Groups (`GROUPS`, in this order) and where they come from:

* ``noise``: uniform, grey, Gaussian, salt-and-pepper, blocky, cloud-like, 1/f and scan-line
  noise, generated with NumPy.
* ``blank``: solid colours and smooth gradients (linear, radial, multi-stop, four-corner).
* ``text and plots``: text in matplotlib's bundled fonts (DejaVu, STIX) at many sizes on plain
  backgrounds, drawn with Pillow; matplotlib line, bar, scatter, pie, histogram, heat-map, area
  and box plots, rendered to PNG with the Agg backend.
* ``screenshots``: crops and rescales of ``docs/playground.png`` (a real screenshot of the
  playground page, ``python -m playground``), named ``playground_*``, and window / chat / button
  layouts drawn with Pillow at 1280x720..1920x1080, named ``ui_render_*``.
* ``shapes and scenes``: the synthetic world minus the robed figure: the training set's own
  backgrounds (``training.synthetic_backgrounds._bg_*``: gradients, starfields, rooms, noise,
  shapes),
  enlarged, with random shapes drawn over them.
* ``matplotlib photos``: the photographs in matplotlib's sample data (``grace_hopper.jpg``, the
  only one: the other sample images are a logo, an icon and an MRI scan) and random crops of it.
* ``wallpaper photos``: the photographs among Debian's desktop wallpapers under
  ``/usr/share/backgrounds`` (an explicit allow-list, `WALLPAPER_PHOTOS`) and random crops.

The first five groups are generated: each has exactly ``count`` images, image ``i`` drawn from a
generator seeded with ``(seed, group, i)``, so the same seed gives byte-identical files. The two
photo groups (`REAL_PHOTO_GROUPS`) hold every photograph found (resized so that the longer side
is at most 1600 px) plus deterministic random crops (40-100% of each side) up to ``count``
images, never more than ``2 * count``; a group whose source is not installed is empty. Nothing
is ever downloaded by `build_groups`; `ensure_wallpapers` is the benchmark's set-up step that
installs the wallpaper packages with apt-get.
"""

from __future__ import annotations

import functools
import io
import math
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from training.synthetic_backgrounds import (
    _bg_gradient,
    _bg_noise,
    _bg_room,
    _bg_shapes,
    _bg_starfield,
    _scenery_color,
)

GROUPS: tuple[str, ...] = (
    "noise",
    "blank",
    "text and plots",
    "screenshots",
    "shapes and scenes",
    "matplotlib photos",
    "wallpaper photos",
)
"""The groups `build_groups` returns, in this order."""

REAL_PHOTO_GROUPS: tuple[str, ...] = ("matplotlib photos", "wallpaper photos")
"""The groups of real photographs (the others are generated)."""

GENERATED_GROUPS: tuple[str, ...] = tuple(g for g in GROUPS if g not in REAL_PHOTO_GROUPS)
"""The groups drawn by this module (exactly `count` images each, from the seed)."""

REPO = Path(__file__).resolve().parent.parent
PLAYGROUND_SCREENSHOT = REPO / "docs" / "playground.png"
"""A real screenshot of the playground page (the one in the README)."""

WALLPAPER_ROOT = Path("/usr/share/backgrounds")
"""Where the Debian wallpaper packages put their images."""

# The photographs among the wallpapers of the packages installed when this was written, checked
# by eye. Left out as not photographs: mate's abstract/ (Elephants is a painting; the rest are
# renders) and desktop/ (logos, stripes, blurred aurora renders); lomiri-20.04's Fossa,
# Infinite-Sea (a composited render), Painting-Colors; lomiri-16.04's umang (a render) and
# analogpattern (a colour-washed texture, too doubtful); every ukui-wallpapers image (vector
# illustrations and 3D renders) and every gnome-backgrounds image (abstract webp/svg). None of
# them is added to "shapes and scenes" either: that group stays generated and deterministic.
WALLPAPER_PHOTOS: dict[str, tuple[str, ...]] = {
    "mate-backgrounds": (
        "mate/nature/Aqua.jpg",  # water drop
        "mate/nature/Blinds.jpg",  # leaf
        "mate/nature/Dune.jpg",  # grass by the sea
        "mate/nature/FreshFlower.jpg",  # flower
        "mate/nature/Garden.jpg",  # flower
        "mate/nature/GreenMeadow.jpg",  # grass
        "mate/nature/LadyBird.jpg",  # ladybird
        "mate/nature/RainDrops.jpg",  # leaves
        "mate/nature/Storm.jpg",  # road under clouds
        "mate/nature/TwoWings.jpg",  # seeds
        "mate/nature/Wood.jpg",  # planks
        "mate/nature/YellowFlower.jpg",  # flower
    ),
    "lomiri-wallpapers-16.04": (
        "Bridge_by_Sander_Klootwijk.jpg",  # bridge cables
        "Dragonfly_by_Bolly.jpg",  # dragonfly
        "Picture_0B_by_freespace.jpg",  # fig in a bowl
        "Picture_1A_by_freespace.jpg",  # paintbrushes
        "Wine_by_Jakkub_Mede.jpg",  # room
        "aitzgorri_by_Aitzol_Berasategi.jpg",  # mountain
        "free_by_Peter_Nerlich.jpg",  # bird figurine
        "friends_by_Aitzol_Berasategi.jpg",  # dogs
        "greentock_by_Peter_Nerlich.jpg",  # clock
        "life_by_Aitzol_Berasategi.jpg",  # stream
        "picosdeeuropa_by_Aitzol_Berasategi.jpg",  # mountains
        "seeding_by_Clements_Engelhardt.jpg",  # dandelions
        "sunset_by_Aitzol_Berasategi.jpg",  # sunset
    ),
    "lomiri-wallpapers-20.04": (
        "Kleiber_by_Lukas_Baubkus.jpg",  # nuthatch
    ),
}
"""Debian package -> its photographs, as paths under `WALLPAPER_ROOT`."""

WALLPAPER_PACKAGES: tuple[str, ...] = tuple(WALLPAPER_PHOTOS)
"""The Debian packages that hold the wallpaper photographs."""

MATPLOTLIB_PHOTOS: tuple[str, ...] = ("grace_hopper.jpg",)
"""The photographs in matplotlib's sample data (``mpl-data/sample_data``)."""

MATPLOTLIB_SAMPLE_DATA: Path | None = None
"""Where to look for `MATPLOTLIB_PHOTOS`; None: matplotlib's own sample data."""

MAX_SIDE = 1600
"""The longest side of the images built, in pixels (photos are reduced to it), except the
made-up UI screenshots, which have the sizes of real screens (up to 1920x1080)."""

MIN_SIDE = 256
"""The shortest side of a generated image, in pixels (photo crops may be smaller)."""

_APT_TIMEOUT_S = 900


@dataclass(frozen=True)
class Sample:
    """One image: a file name (unique in its group) and the file's bytes, as uploaded."""

    name: str
    data: bytes


# --------------------------------------------------------------------------- public API


def build_groups(count: int = 40, seed: int = 0) -> dict[str, list[Sample]]:
    """Every group of `GROUPS`, in order: `count` generated images each, the photos as found."""
    return {group: build_group(group, count, seed) for group in GROUPS}


def build_group(group: str, count: int = 40, seed: int = 0) -> list[Sample]:
    """The images of one group (see the module's description)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; the groups are {', '.join(GROUPS)}")
    number = GROUPS.index(group)
    if group == "matplotlib photos":
        return _photo_group(_matplotlib_photo_paths(), count, (seed, number))
    if group == "wallpaper photos":
        return _photo_group(wallpaper_paths(), count, (seed, number))
    make = _GENERATORS[group]
    return [make(np.random.default_rng((seed, number, i)), i) for i in range(count)]


def wallpaper_paths() -> list[Path]:
    """The allow-listed wallpaper photographs that are installed, in allow-list order."""
    paths = [WALLPAPER_ROOT / rel for files in WALLPAPER_PHOTOS.values() for rel in files]
    return [p for p in paths if p.is_file()]


def ensure_wallpapers() -> str | None:
    """Install `WALLPAPER_PACKAGES` with apt-get if none of the photos is there.

    Returns None when the wallpaper photographs are available (already, or after installing),
    else one line saying why they are not. Needs root and apt-get; never called by the tests.
    """
    if wallpaper_paths():
        return None
    packages = " ".join(WALLPAPER_PACKAGES)
    if shutil.which("apt-get") is None:
        return f"no wallpaper photographs in {WALLPAPER_ROOT} and no apt-get to install {packages}"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return (
            f"no wallpaper photographs in {WALLPAPER_ROOT}; install them as root: "
            f"apt-get install {packages}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", *WALLPAPER_PACKAGES],
    ):
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=_APT_TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"{' '.join(command)} failed: {error}"
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            why = lines[-1] if lines else f"exit status {done.returncode}"
            return f"{' '.join(command)} failed: {why}"
    if not wallpaper_paths():
        return f"installed {packages} but found none of the allow-listed photographs"
    return None


# --------------------------------------------------------------------------- helpers

Color = tuple[int, int, int]
_Maker = Callable[[np.random.Generator, int], Sample]

_ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9, 2.0, 3 / 4, 2 / 3, 9 / 16)


def _size(rng: np.random.Generator, lo: int = MIN_SIDE, hi: int = MAX_SIDE) -> tuple[int, int]:
    """A (width, height) of a common aspect ratio with both sides in lo..hi (log-uniform)."""
    aspect = _ASPECTS[int(rng.integers(len(_ASPECTS)))]
    stretch = max(aspect, 1 / aspect)
    short = round(math.exp(rng.uniform(math.log(lo), math.log(hi / stretch))))
    long = round(short * stretch)
    return (long, short) if aspect >= 1 else (short, long)


def _encode(image: Image.Image, fmt: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """`image` as a file of format `fmt` (PNG, JPEG, WEBP or GIF) and its extension."""
    buf = io.BytesIO()
    if fmt == "PNG":
        image.save(buf, "PNG", compress_level=int(rng.integers(3, 7)))
        ext = "png"
    elif fmt == "JPEG":
        rgb = image.convert("RGB") if image.mode not in ("RGB", "L") else image
        rgb.save(buf, "JPEG", quality=int(rng.integers(75, 96)))
        ext = "jpg"
    elif fmt == "WEBP":
        image.convert("RGB").save(buf, "WEBP", quality=int(rng.integers(70, 91)), method=4)
        ext = "webp"
    elif fmt == "GIF":
        if image.mode == "L":
            paletted = image.convert("P")
        else:
            paletted = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
        paletted.save(buf, "GIF")
        ext = "gif"
    else:  # pragma: no cover - a programming error
        raise ValueError(fmt)
    return buf.getvalue(), ext


def _choose(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    """One of `options`, uniformly."""
    return options[int(rng.integers(len(options)))]


def _sample(prefix: str, i: int, image: Image.Image, fmt: str, rng: np.random.Generator) -> Sample:
    data, ext = _encode(image, fmt, rng)
    w, h = image.size
    return Sample(f"{prefix}_{i:03d}_{w}x{h}.{ext}", data)


# --------------------------------------------------------------------------- noise

_NOISE_KINDS = (
    "uniform_rgb",
    "uniform_grey",
    "gaussian",
    "salt_pepper",
    "blocky",
    "clouds",
    "pink",
    "scanlines",
)


def _noise(rng: np.random.Generator, i: int) -> Sample:
    kind = _NOISE_KINDS[i % len(_NOISE_KINDS)]
    w, h = _size(rng, hi=1024)  # noise does not compress: keep the files and the time small
    if kind == "uniform_rgb":
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    elif kind == "uniform_grey":
        arr = rng.integers(0, 256, (h, w), dtype=np.uint8)
    elif kind == "gaussian":
        mean = rng.uniform(40, 215, 3).astype(np.float32)
        sigma = np.float32(rng.uniform(10, 80))
        arr = mean + sigma * rng.standard_normal((h, w, 3), dtype=np.float32)
    elif kind == "salt_pepper":
        base = np.full((h, w), rng.uniform(30, 225), np.float32)
        u = rng.random((h, w), dtype=np.float32)
        p = np.float32(rng.uniform(0.02, 0.3))
        arr = np.where(u < p / 2, 0.0, np.where(u > 1 - p / 2, 255.0, base))
    elif kind == "blocky":
        cell = int(rng.integers(4, 65))
        small = rng.integers(0, 256, (-(-h // cell), -(-w // cell), 3), dtype=np.uint8)
        img = Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.NEAREST)
        arr = np.asarray(img)
    elif kind == "clouds":
        arr = np.zeros((h, w, 3), np.float32)
        for octave in range(int(rng.integers(3, 6))):
            grid = 3 * 2**octave
            small = rng.normal(0, 1, (grid, grid, 3)).astype(np.float32)
            lo, hi = small.min(), small.max()
            img = Image.fromarray(((small - lo) / (hi - lo + 1e-6) * 255).astype(np.uint8), "RGB")
            layer = np.asarray(img.resize((w, h), Image.Resampling.BICUBIC), np.float32) - 127.5
            arr += layer / 2**octave
        arr = 127.5 + arr * np.float32(rng.uniform(0.6, 1.0))
    elif kind == "pink":
        alpha = rng.uniform(0.8, 2.0)
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        f = np.sqrt(fx * fx + fy * fy)
        f[0, 0] = 1.0
        chans = []
        for _ in range(3 if rng.random() < 0.6 else 1):
            spectrum = rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)
            field = np.fft.irfft2(spectrum / f**alpha, s=(h, w))
            field = (field - field.mean()) / (field.std() + 1e-12)
            chans.append(127.5 + 45 * field)
        arr = np.stack(chans, -1) if len(chans) == 3 else chans[0]
    else:  # scanlines: each row (or column) one random colour, with fine grain
        lines = (h, 1, 3) if rng.random() < 0.5 else (1, w, 3)
        levels = rng.uniform(0, 255, lines).astype(np.float32)
        arr = levels + rng.normal(0, 8, (h, w, 3)).astype(np.float32)
    arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    image = Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB")
    formats = ("PNG", "PNG", "JPEG", "WEBP")
    fmt = "GIF" if image.mode == "L" and rng.random() < 0.5 else _choose(rng, formats)
    return _sample(f"noise_{kind}", i, image, fmt, rng)


# --------------------------------------------------------------------------- blank

_BLANK_KINDS = ("solid", "linear", "radial", "multistop", "four_corner", "solid", "sky")
_PLAIN_COLOURS: tuple[Color, ...] = (
    (0, 0, 0),
    (255, 255, 255),
    (128, 128, 128),
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 0),
    (54, 57, 63),  # a dark-theme grey
)


def _blank(rng: np.random.Generator, i: int) -> Sample:
    kind = _BLANK_KINDS[i % len(_BLANK_KINDS)]
    w, h = _size(rng)
    if kind == "solid":
        # The plain colours first (each once, so no two solids look alike), then random ones.
        solid = 2 * (i // len(_BLANK_KINDS)) + (i % len(_BLANK_KINDS) != 0)
        color = _PLAIN_COLOURS[solid] if solid < len(_PLAIN_COLOURS) else _color(rng)
        image = Image.new("RGB", (w, h), color)
        return _sample("blank_solid", i, image, _choose(rng, ("PNG", "PNG", "JPEG", "GIF")), rng)
    # Gradients are computed at a quarter of the size (they are smooth) and enlarged.
    sw, sh = max(2, w // 4), max(2, h // 4)
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xs, ys = xs / max(sw - 1, 1), ys / max(sh - 1, 1)
    if kind == "linear":
        angle = rng.uniform(0, 2 * math.pi)
        t = math.cos(angle) * xs + math.sin(angle) * ys
    elif kind == "radial":
        cx, cy = rng.uniform(0, 1, 2)
        t = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
    elif kind == "sky":
        t = ys ** rng.uniform(0.5, 2.0)
    else:
        t = xs
    if kind == "four_corner":
        c = [np.asarray(_color(rng), np.float32) for _ in range(4)]
        top = c[0] + (c[1] - c[0]) * xs[..., None]
        bottom = c[2] + (c[3] - c[2]) * xs[..., None]
        arr = top + (bottom - top) * ys[..., None]
    else:
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        stops = 2 if kind != "multistop" else int(rng.integers(3, 6))
        colours = np.asarray([_color(rng) for _ in range(stops)], np.float32)
        positions = np.linspace(0.0, 1.0, stops)
        arr = np.stack([np.interp(t, positions, colours[:, k]) for k in range(3)], -1)
    small = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")
    image = small.resize((w, h), Image.Resampling.BILINEAR)
    return _sample(f"blank_{kind}", i, image, _choose(rng, ("PNG", "PNG", "JPEG", "WEBP")), rng)


# --------------------------------------------------------------------------- text and plots

_FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralItalic.ttf",
)
_PROSE = (
    "the quick brown fox jumps over a lazy dog while seven wizards quietly pack boxes of "
    "liquor for the jovial judge and an old river runs past the market where people sell "
    "bread cheese apples coffee tea books lamps chairs tickets maps stamps and flowers every "
    "morning before noon report meeting agenda minutes budget total invoice order number date "
    "version release notes please reply thank you hello world error warning note figure table "
    "chapter section page summary results method data value price weather forecast sunny rain"
)
_WORDS = tuple(_PROSE.split())


def _font_path(name: str) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


_FONTS: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A bundled matplotlib font, laid out without raqm (the same result everywhere)."""
    key = (name, size)
    if key not in _FONTS:
        _FONTS[key] = ImageFont.truetype(
            str(_font_path(name)), size, layout_engine=ImageFont.Layout.BASIC
        )
    return _FONTS[key]


def _words(rng: np.random.Generator, n: int) -> str:
    picks = rng.integers(len(_WORDS), size=n)
    words = [_WORDS[int(k)] for k in picks]
    if words:
        words[0] = words[0].capitalize()
    for k in range(1, n):
        if rng.random() < 0.08:
            words[k - 1] += "." if rng.random() < 0.7 else ","
            if words[k - 1].endswith("."):
                words[k] = words[k].capitalize()
        elif rng.random() < 0.03:
            words[k] = str(int(rng.integers(0, 2025)))
    return " ".join(words) + "."


def _color(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> Color:
    """An RGB colour with every channel in lo..hi-1."""
    r, g, b = (int(c) for c in rng.integers(lo, hi, 3))
    return (r, g, b)


def _light_dark(rng: np.random.Generator) -> tuple[Color, Color]:
    """A plain background and a text colour that reads on it."""
    if rng.random() < 0.65:
        bg, fg = _color(rng, 225, 256), _color(rng, 0, 70)
    else:
        bg, fg = _color(rng, 0, 50), _color(rng, 190, 256)
    if rng.random() < 0.2:  # a coloured page
        bg = _color(rng)
        fg = (0, 0, 0) if sum(bg) > 380 else (255, 255, 255)
    return bg, fg


def _fitting(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    """The longest run of `text`'s first words that fits in `width` pixels (at least one)."""
    words = text.split()
    line = words[0] if words else ""
    for word in words[1:]:
        candidate = f"{line} {word}"
        if draw.textlength(candidate, font=font) > width:
            break
        line = candidate
    return line


def _text(rng: np.random.Generator, i: int) -> Sample:
    w, h = _size(rng, lo=320)
    bg, fg = _light_dark(rng)
    image = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(image)
    font_name = _FONT_FILES[int(rng.integers(len(_FONT_FILES)))]
    style = _choose(rng, ("paragraphs", "title", "big", "list"))
    margin = int(w * rng.uniform(0.03, 0.1))
    y = int(h * rng.uniform(0.03, 0.1))
    if style == "big":  # one or two words, very large
        text = _words(rng, int(rng.integers(1, 3))).rstrip(".")
        size = max(12, int(min(h * 0.5, w / max(len(text), 1) * 1.6)))
        font = _font(font_name, size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = max(0, (w - (right - left)) // 2)
        draw.text((x, (h - (bottom - top)) // 2 - top), text, font=font, fill=fg)
        return _sample(f"text_{style}", i, image, _choose(rng, ("PNG", "PNG", "JPEG")), rng)
    width = w - 2 * margin
    if style == "title":
        title = _words(rng, int(rng.integers(2, 6))).rstrip(".")
        title_size = max(14, int(h * rng.uniform(0.06, 0.12)))
        while title_size > 14 and draw.textlength(title, font=_font(font_name, title_size)) > width:
            title_size = max(14, int(title_size * 0.9))
        title_font = _font(font_name, title_size)
        draw.text((margin, y), _fitting(draw, title, title_font, width), font=title_font, fill=fg)
        y += int(title_size * 1.6)
    size = int(np.clip(rng.uniform(0.015, 0.06) * h + 8, 9, 72))
    font = _font(font_name, size)
    line_h = int(size * rng.uniform(1.2, 1.6))
    while y + line_h < h - margin:
        if style == "list":
            bullet = "-" if rng.random() < 0.5 else "*"
            line = _fitting(draw, f"{bullet} {_words(rng, int(rng.integers(2, 9)))}", font, width)
            draw.text((margin, y), line, font=font, fill=fg)
            y += line_h
            continue
        draw.text((margin, y), _fitting(draw, _words(rng, 60), font, width), font=font, fill=fg)
        y += line_h
        if rng.random() < 0.12:  # a paragraph break
            y += line_h
    return _sample(f"text_{style}", i, image, _choose(rng, ("PNG", "PNG", "JPEG", "WEBP")), rng)


_PLOT_KINDS = ("line", "bar", "scatter", "pie", "histogram", "heatmap", "area", "box")
_CMAPS = ("viridis", "plasma", "magma", "cividis", "coolwarm", "gray", "terrain", "Blues")


def _plot(rng: np.random.Generator, i: int) -> Sample:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kind = _PLOT_KINDS[(i // 2) % len(_PLOT_KINDS)]
    w, h = _size(rng, lo=320, hi=1400)
    dpi = int(rng.integers(72, 161))
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    dark = rng.random() < 0.2
    face = "#2b2b2b" if dark else "white"
    ink = "#dddddd" if dark else "black"
    fig.set_facecolor(face)
    ax = fig.add_subplot()
    ax.set_facecolor(face)
    n = int(rng.integers(5, 60))
    if kind == "line":
        x = np.arange(n)
        for _ in range(int(rng.integers(1, 5))):
            ax.plot(x, np.cumsum(rng.normal(0, 1, n)), marker="o" if rng.random() < 0.3 else "")
    elif kind == "bar":
        k = int(rng.integers(3, 13))
        labels = [_WORDS[int(j)][:8] for j in rng.integers(len(_WORDS), size=k)]
        values = rng.uniform(1, 100, k)
        if rng.random() < 0.5:
            ax.bar(range(k), values, tick_label=labels)
        else:
            ax.barh(range(k), values, tick_label=labels)
    elif kind == "scatter":
        m = int(rng.integers(20, 400))
        ax.scatter(
            rng.normal(0, 1, m),
            rng.normal(0, 1, m),
            c=rng.random(m),
            s=rng.uniform(5, 80, m),
            cmap=_choose(rng, _CMAPS),
            alpha=0.8,
        )
    elif kind == "pie":
        k = int(rng.integers(2, 8))
        ax.pie(rng.uniform(1, 10, k), labels=[f"part {j + 1}" for j in range(k)], autopct="%1.0f%%")
    elif kind == "histogram":
        ax.hist(rng.normal(0, 1, 2000) * rng.uniform(0.5, 3), bins=int(rng.integers(10, 60)))
    elif kind == "heatmap":
        k = int(rng.integers(5, 40))
        im = ax.imshow(rng.random((k, k)), cmap=_choose(rng, _CMAPS))
        fig.colorbar(im, ax=ax)
    elif kind == "area":
        x = np.arange(n)
        ax.stackplot(x, *np.abs(rng.normal(1, 0.5, (int(rng.integers(2, 5)), n))))
    else:
        ax.boxplot([rng.normal(0, s, 100) for s in rng.uniform(0.5, 2, int(rng.integers(2, 7)))])
    ax.set_title(_words(rng, int(rng.integers(1, 5))).rstrip("."), color=ink)
    if kind != "pie":
        ax.set_xlabel(_WORDS[int(rng.integers(len(_WORDS)))], color=ink)
        ax.set_ylabel(_WORDS[int(rng.integers(len(_WORDS)))], color=ink)
        ax.tick_params(colors=ink)
        if rng.random() < 0.5:
            ax.grid(True, alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=face, metadata={"Software": None})
    data = buf.getvalue()
    width, height = fig.canvas.get_width_height()
    return Sample(f"plot_{kind}_{i:03d}_{width}x{height}.png", data)


def _text_or_plot(rng: np.random.Generator, i: int) -> Sample:
    return _text(rng, i) if i % 2 == 0 else _plot(rng, i)


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


def _shade(color: Color, amount: int) -> Color:
    r, g, b = (int(np.clip(c + amount, 0, 255)) for c in color)
    return (r, g, b)


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


_GENERATORS: dict[str, _Maker] = {
    "noise": _noise,
    "blank": _blank,
    "text and plots": _text_or_plot,
    "screenshots": _screenshot,
    "shapes and scenes": _shapes_scene,
}


# --------------------------------------------------------------------------- photos


def _matplotlib_photo_paths() -> list[Path]:
    """The `MATPLOTLIB_PHOTOS` that exist, in matplotlib's sample data or in the override."""
    paths: list[Path] = []
    for name in MATPLOTLIB_PHOTOS:
        if MATPLOTLIB_SAMPLE_DATA is not None:
            path = MATPLOTLIB_SAMPLE_DATA / name
        else:
            try:
                from matplotlib import cbook

                path = Path(cbook.get_sample_data(name, asfileobj=False))
            except (ImportError, OSError, ValueError):
                continue
        if path.is_file():
            paths.append(path)
    return paths


def _open_photo(path: Path) -> tuple[Image.Image, tuple[int, int], str | None]:
    """(the photo upright and RGB, the file's own size, its format).

    Large JPEGs are decoded in draft mode, at 1/2, 1/4 or 1/8 of their size where that still
    leaves the longer side at `MAX_SIDE` or more, which makes large wallpapers fast to read.
    """
    with Image.open(path) as opened:
        size, fmt = opened.size, opened.format
        w, h = size
        if max(w, h) > MAX_SIDE and fmt == "JPEG":
            ratio = MAX_SIDE / max(w, h)
            opened.draft("RGB", (math.ceil(w * ratio), math.ceil(h * ratio)))
        opened.load()
        image = ImageOps.exif_transpose(opened) or opened
        return image.convert("RGB"), size, fmt


def _fit(image: Image.Image) -> Image.Image:
    """`image` reduced so that its longer side is at most `MAX_SIDE`."""
    w, h = image.size
    if max(w, h) <= MAX_SIDE:
        return image
    ratio = MAX_SIDE / max(w, h)
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _photo_group(paths: list[Path], count: int, key: tuple[int, int]) -> list[Sample]:
    """Every photo (as its own file when small enough, else reduced), then crops up to `count`.

    Crop ``k`` goes to photo ``k % len(paths)``, so every photo gets about as many crops; the
    group never holds more than ``2 * count`` images.
    """
    paths = paths[: 2 * count]
    if not paths:
        return []
    crops = max(0, count - len(paths))
    samples: list[Sample] = []
    for p, path in enumerate(paths):
        image, original_size, original_format = _open_photo(path)
        stem = path.stem
        if max(original_size) <= MAX_SIDE and original_format in ("JPEG", "PNG", "WEBP"):
            samples.append(Sample(path.name, path.read_bytes()))
        else:
            samples.append(Sample(f"{stem}.jpg", _jpeg(_fit(image), 90)))
        for k in range(p, crops, len(paths)):
            rng = np.random.default_rng((*key, p, k))
            w, h = image.size
            cw = min(w - 1, max(1, int(w * rng.uniform(0.4, 1.0))))
            ch = min(h - 1, max(1, int(h * rng.uniform(0.4, 1.0))))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = _fit(image.crop((x, y, x + cw, y + ch)))
            quality = int(rng.integers(80, 96))
            samples.append(Sample(f"{stem}_crop{k:03d}.jpg", _jpeg(crop, quality)))
    return samples
