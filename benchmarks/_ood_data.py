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

import io
import math
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from benchmarks._ood_drawn import MAX_SIDE, Sample, _blank, _noise, _text_or_plot
from benchmarks._ood_drawn import MIN_SIDE as MIN_SIDE
from benchmarks._ood_screens import PLAYGROUND_SCREENSHOT as PLAYGROUND_SCREENSHOT
from benchmarks._ood_screens import _screenshot, _shapes_scene

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

_APT_TIMEOUT_S = 900


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


_GENERATORS: dict[str, Callable[[np.random.Generator, int], Sample]] = {
    "noise": _noise,
    "blank": _blank,
    "text and plots": _text_or_plot,
    "screenshots": _screenshot,
    "shapes and scenes": _shapes_scene,
}
"""The drawn groups' makers: image ``i`` of a group from its own generator."""


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
