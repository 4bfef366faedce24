"""Sample images for the playground: three Jedi and three Sith drawn by `training.synthetic`,
and one that is neither (a cup of coffee), which the bot should refuse to call a Jedi or a Sith.

The JPEGs next to this file are committed; `python -m playground.samples` draws them again
(byte-identical for the same Pillow and NumPy) from the fixed picks in `PICKS`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent
SEED = 2024
QUALITY = 85
# (file name, class, image index): hand-picked scenes whose blade and robe read clearly, and
# that the shipped model's detector finds typical; "other" is not a figure at all.
PICKS: tuple[tuple[str, str, int], ...] = (
    ("jedi-1.jpg", "jedi", 5),
    ("jedi-2.jpg", "jedi", 4),
    ("jedi-3.jpg", "jedi", 12),
    ("sith-1.jpg", "sith", 2),
    ("sith-2.jpg", "sith", 3),
    ("sith-3.jpg", "sith", 13),
    ("other-1.jpg", "other", 0),
)
KINDS = ("jedi", "sith", "other")
_NAME = re.compile(r"^(jedi|sith|other)-\d+\.jpg$")


def sample_names() -> list[str]:
    """The sample files present, in display order (Jedi, then Sith, then the others)."""
    names = [p.name for p in SAMPLE_DIR.iterdir() if _NAME.match(p.name)]
    return sorted(names, key=lambda name: (KINDS.index(name.split("-")[0]), name))


def sample_path(name: str) -> Path | None:
    """The file of a sample, or None for any name that is not one (no path tricks)."""
    if not _NAME.match(name):
        return None
    path = SAMPLE_DIR / name
    return path if path.is_file() else None


def regenerate(out_dir: Path = SAMPLE_DIR) -> list[Path]:
    """Draw the samples into `out_dir`; returns the files written."""
    import numpy as np

    from training.synthetic import LABELS, draw_scene

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, label, index in PICKS:
        path = out_dir / name
        if label == "other":
            picture = draw_coffee()
        else:
            picture = draw_scene(label, np.random.default_rng([SEED, LABELS.index(label), index]))
        picture.save(path, "JPEG", quality=QUALITY, optimize=True)
        written.append(path)
    return written


def draw_coffee(size: int = 200):
    """A cup of coffee on a table: the kind of picture people post that is neither class."""
    from PIL import Image, ImageDraw

    scale = size / 200
    image = Image.new("RGB", (size, size), (235, 225, 205))
    draw = ImageDraw.Draw(image)

    def box(*xy: float) -> list[float]:
        return [v * scale for v in xy]

    draw.rectangle(box(0, 150, 200, 200), fill=(150, 105, 70))  # the table
    draw.ellipse(box(35, 160, 165, 185), fill=(205, 195, 178))  # the saucer
    draw.rectangle(box(60, 85, 140, 172), fill=(250, 250, 247))  # the cup
    draw.ellipse(box(130, 105, 170, 150), outline=(250, 250, 247), width=round(9 * scale))
    draw.ellipse(box(60, 76, 140, 96), fill=(110, 70, 40))  # the coffee
    for x in (80, 100, 120):  # steam
        draw.arc(box(x - 8, 40, x + 8, 70), 100, 260, fill=(200, 195, 190), width=round(3 * scale))
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m playground.samples", description="Draw the playground's sample images."
    )
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    for path in regenerate(args.out):
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0
