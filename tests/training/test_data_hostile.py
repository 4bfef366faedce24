"""The trainer's decode of stored images is the serving one, bounded: a 16-bit or palette image
of many megapixels is decoded small, one over the decoded-bytes bound is skipped with its
reason, and the decodes of the trainer's threads share `DECODE_MEMORY`."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from model.preprocess import DECODE_MEMORY, ImageLimits
from training.data import load_dataset

LIMITS = ImageLimits(max_decoded_bytes=40 * 1024 * 1024)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_large_16_bit_and_palette_images_are_trained_on_and_too_large_ones_skipped(
    tmp_path: Path,
) -> None:
    (tmp_path / "jedi").mkdir()
    (tmp_path / "sith").mkdir()
    grey16 = Image.fromarray(np.full((3000, 4000), 40000, dtype=np.uint16))
    palette = Image.new("P", (4000, 3000), 1)
    palette.putpalette([255, 255, 255, 200, 0, 0] * 128)
    palette.info["transparency"] = 0
    (tmp_path / "jedi" / "deep.png").write_bytes(_png(grey16))
    (tmp_path / "sith" / "palette.png").write_bytes(_png(palette))
    (tmp_path / "sith" / "wide.png").write_bytes(_png(Image.new("RGBA", (4000, 3000))))
    DECODE_MEMORY.peak = 0
    dataset = load_dataset(tmp_path, LIMITS, workers=4)
    assert [path.name for path in dataset.paths] == ["deep.png", "palette.png"]
    assert np.all(dataset.images[0] == 156)  # 40000 / 65535 of white, as before
    assert tuple(dataset.images[1][100, 100]) == (200, 0, 0)
    [skipped] = dataset.skipped
    assert skipped.path.name == "wide.png"
    assert skipped.reason.startswith("The image (4000x3000, RGBA) would take ")
    assert 0 < DECODE_MEMORY.peak <= DECODE_MEMORY.limit
