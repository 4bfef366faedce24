"""Sample images for the playground: three Jedi and three Sith drawn by `training.synthetic`.

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
# (file name, class, image index): hand-picked scenes whose blade and robe read clearly.
PICKS: tuple[tuple[str, str, int], ...] = (
    ("jedi-1.jpg", "jedi", 5),
    ("jedi-2.jpg", "jedi", 3),
    ("jedi-3.jpg", "jedi", 12),
    ("sith-1.jpg", "sith", 2),
    ("sith-2.jpg", "sith", 3),
    ("sith-3.jpg", "sith", 13),
)
_NAME = re.compile(r"^(jedi|sith)-\d+\.jpg$")


def sample_names() -> list[str]:
    """The sample files present, in display order (Jedi first)."""
    return sorted(p.name for p in SAMPLE_DIR.iterdir() if _NAME.match(p.name))


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
        rng = np.random.default_rng([SEED, LABELS.index(label), index])
        path = out_dir / name
        draw_scene(label, rng).save(path, "JPEG", quality=QUALITY, optimize=True)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m playground.samples", description="Draw the playground's sample images."
    )
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    for path in regenerate(args.out):
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0
