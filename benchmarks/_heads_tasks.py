"""The tasks of `benchmarks.heads`: binary labels on images, split by source photograph.

Each task has three parts that never share a source photograph (crops of one photo sit on one
side only): `pool` (what may be labelled; each run draws its n per class from it),
`validation` (where the head's variant is chosen, on the tasks used for choosing) and
`holdout` (a fixed set, only ever reported). The real tasks are random crops of photographs that
Debian packages install (`benchmarks._ood_data.WALLPAPER_PHOTOS` and `EXTRA_PHOTOS` below, checked
by eye; `ensure_photos` installs them): 11-16 source photos per class, a few large crops of
each; the labels are ours, by source photo. The synthetic task draws each part with its own
seed (`training.synthetic`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks._ood_data import WALLPAPER_ROOT, ensure_wallpapers

PLASMA = "/usr/share/wallpapers/{}/contents/images/1920x1080.jpg"  # plasma-workspace-wallpapers
PALAPELI = "/usr/share/palapeli/collection/{}.jpg"  # palapeli-data
EXTRA_PHOTOS: dict[str, tuple[str, ...]] = {  # checked by eye; the other images are renders
    "plasma-workspace-wallpapers": tuple(
        PLASMA.format(name)
        for name in (
            "BytheWater",  # planks of a pier, a lake
            "ColdRipple",  # a pier in the fog
            "DarkestHour",  # a lake at dusk
            "EveningGlow",  # rowing boats at sunset
            "FallenLeaf",  # a maple leaf
            "Grey",  # a building's curved facade
            "Kite",  # a kite in the sky
            "OneStandsOut",  # moss
            "Path",  # a forest path
            "summer_1am",  # a lake at night
        )
    ),
    "palapeli-data": tuple(
        PALAPELI.format(name)
        for name in (
            "castle-maintenon",
            "cincinnati-bridge",
            "citrus-fruits",  # slices
            "european-honey-bee",
            "panther-chameleon-female",
        )
    ),
}
"""Debian package -> more photographs (absolute paths), beyond `WALLPAPER_PHOTOS`."""

NATURE = (  # plants and animals
    "mate/nature/LadyBird.jpg",
    "Dragonfly_by_Bolly.jpg",
    PALAPELI.format("european-honey-bee"),
    "mate/nature/FreshFlower.jpg",
    PLASMA.format("FallenLeaf"),
    "Kleiber_by_Lukas_Baubkus.jpg",
    "mate/nature/YellowFlower.jpg",
    PALAPELI.format("panther-chameleon-female"),
    "mate/nature/Garden.jpg",
    "seeding_by_Clements_Engelhardt.jpg",
    PLASMA.format("OneStandsOut"),
    "mate/nature/RainDrops.jpg",
    "friends_by_Aitzol_Berasategi.jpg",  # dogs
    "mate/nature/Blinds.jpg",  # a leaf
    PLASMA.format("Path"),  # a forest
    "mate/nature/TwoWings.jpg",  # seeds
)
MAN_MADE = (  # objects, rooms and structures
    "Bridge_by_Sander_Klootwijk.jpg",
    "Picture_1A_by_freespace.jpg",
    PALAPELI.format("castle-maintenon"),
    "greentock_by_Peter_Nerlich.jpg",
    PLASMA.format("Grey"),
    "Wine_by_Jakkub_Mede.jpg",
    "mate/nature/Wood.jpg",
    PALAPELI.format("cincinnati-bridge"),
    "free_by_Peter_Nerlich.jpg",
    PLASMA.format("BytheWater"),
    "Picture_0B_by_freespace.jpg",
    PLASMA.format("EveningGlow"),  # boats
    PLASMA.format("ColdRipple"),  # a pier
)
LANDSCAPE = (  # wide views: mountains, sky, water, fields, forest
    "aitzgorri_by_Aitzol_Berasategi.jpg",
    "picosdeeuropa_by_Aitzol_Berasategi.jpg",
    PLASMA.format("DarkestHour"),
    "sunset_by_Aitzol_Berasategi.jpg",
    PLASMA.format("summer_1am"),
    "life_by_Aitzol_Berasategi.jpg",
    PLASMA.format("EveningGlow"),
    "mate/nature/Storm.jpg",
    PLASMA.format("Kite"),
    PLASMA.format("Path"),
    PLASMA.format("ColdRipple"),
)  # not Dune and GreenMeadow: grass close up, as much close-ups as landscapes
CLOSE_UP = (  # macro photographs of small things
    "mate/nature/Aqua.jpg",
    "mate/nature/Blinds.jpg",
    PALAPELI.format("european-honey-bee"),
    "mate/nature/TwoWings.jpg",
    "mate/nature/LadyBird.jpg",
    PLASMA.format("FallenLeaf"),
    "mate/nature/FreshFlower.jpg",
    PALAPELI.format("citrus-fruits"),
    "Dragonfly_by_Bolly.jpg",
    "mate/nature/RainDrops.jpg",
    PLASMA.format("OneStandsOut"),
    "mate/nature/YellowFlower.jpg",
    PALAPELI.format("panther-chameleon-female"),
    "mate/nature/Garden.jpg",
    "greentock_by_Peter_Nerlich.jpg",
    "Picture_0B_by_freespace.jpg",
)

REAL_TASKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "nature-vs-man-made": (NATURE, MAN_MADE),
    "landscape-vs-close-up": (LANDSCAPE, CLOSE_UP),
}
CHOOSE_ON = ("synthetic", "nature-vs-man-made")  # the variant is chosen on these
REPORT_ON = ("landscape-vs-close-up",)  # and only reported on this one


@dataclass(frozen=True)
class Part:
    images: np.ndarray  # (n, 200, 200, 3) uint8
    labels: np.ndarray  # (n,) 0/1
    sources: np.ndarray  # (n,) the source photo's index (or -1 for synthetic)


@dataclass(frozen=True)
class Task:
    name: str
    class_names: tuple[str, str]
    pool: Part
    validation: Part
    holdout: Part


def available() -> bool:
    """Whether every photograph of the real tasks is installed."""
    return all(
        (WALLPAPER_ROOT / name).is_file()
        for pair in REAL_TASKS.values()
        for name in pair[0] + pair[1]
    )


def ensure_photos() -> str | None:
    """The benchmark's set-up: install the wallpaper packages (`ensure_wallpapers`) and those of
    `EXTRA_PHOTOS` with apt-get where photos are missing. None when every photo is there, else
    one line saying why not. Needs root and apt-get; never called by the tests."""
    why = ensure_wallpapers()
    missing = [
        package
        for package, files in EXTRA_PHOTOS.items()
        if not all(Path(f).is_file() for f in files)
    ]
    if why is None and missing:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            return f"the photos of {' '.join(missing)} are missing: apt-get install them as root"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
        try:
            subprocess.run(command, env=env, capture_output=True, timeout=900, check=True)
        except (OSError, subprocess.SubprocessError) as error:
            return f"{' '.join(command)} failed: {error}"
    if why is None and not available():
        return "some photographs of the real tasks are not installed"
    return why


def crops(path: Path, count: int, seed: int) -> np.ndarray:
    """`count` random square crops of the photo at `path` (each side 50-95% of its short
    side), each through the serving decode (`model.preprocess.load_image`)."""
    import io

    from PIL import Image

    from model.preprocess import load_image

    with Image.open(path) as opened:
        opened.draft("RGB", (1200, 1200))  # a JPEG decodes at a reduced scale: much faster
        photo = opened.convert("RGB")
        photo.thumbnail((1200, 1200))
    rng = np.random.default_rng(seed)
    short = min(photo.size)
    out = []
    for _ in range(count):
        side = int(short * rng.uniform(0.5, 0.95))
        left = int(rng.integers(0, photo.size[0] - side + 1))
        top = int(rng.integers(0, photo.size[1] - side + 1))
        crop = photo.crop((left, top, left + side, top + side))
        buffer = io.BytesIO()
        crop.save(buffer, "PNG")
        out.append(load_image(buffer.getvalue()))
    return np.stack(out)


def real_task(name: str, per_photo: int, seed: int = 0, split: int = 0) -> Task:
    """A real task: photos of each class dealt in turn to pool, holdout, validation, pool, ...
    starting `3 * split` photos into each class's list (another split of the same photos)."""
    first, second = REAL_TASKS[name]
    parts: dict[str, list] = {"pool": [], "validation": [], "holdout": []}
    order = ("pool", "holdout", "validation", "pool", "holdout", "pool", "validation", "pool")
    source = 0
    for label, photos in enumerate((first, second)):
        shift = 3 * split % len(photos)
        for i, photo in enumerate(photos[shift:] + photos[:shift]):
            images = crops(WALLPAPER_ROOT / photo, per_photo, seed + source)
            parts[order[i % len(order)]].append((images, label, source))
            source += 1
    built = {
        key: Part(
            np.concatenate([images for images, _, _ in items]),
            np.concatenate([np.full(len(images), label) for images, label, _ in items]),
            np.concatenate([np.full(len(images), src) for images, _, src in items]),
        )
        for key, items in parts.items()
    }
    a, b = name.split("-vs-")
    return Task(name, (a, b), built["pool"], built["validation"], built["holdout"])


def synthetic_task(pool: int, validation: int, holdout: int) -> Task:
    """Synthetic Jedi and Sith drawings, each part drawn with its own seed."""
    from training.synthetic import draw_scene

    def part(per_class: int, seed: int) -> Part:
        rng = np.random.default_rng(seed)
        labels = np.repeat([0, 1], per_class)
        images = np.stack(
            [np.asarray(draw_scene(("jedi", "sith")[y], rng).convert("RGB")) for y in labels]
        )
        return Part(images.astype(np.uint8), labels, np.full(len(labels), -1))

    return Task(
        "synthetic", ("jedi", "sith"), part(pool, 11), part(validation, 12), part(holdout, 13)
    )
