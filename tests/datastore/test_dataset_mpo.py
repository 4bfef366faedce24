"""Phone photos saved as MPO (a JPEG followed by more frames) are kept as the JPEGs they are."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from dataset import DatasetStore
from dataset.files import inspect
from model.preprocess import load_image


def mpo_bytes() -> bytes:
    left = Image.new("RGB", (320, 240), (200, 30, 30))
    right = Image.new("RGB", (320, 240), (30, 30, 200))
    out = io.BytesIO()
    left.save(out, "MPO", save_all=True, append_images=[right])
    return out.getvalue()


def test_an_mpo_photo_is_a_jpeg_to_the_store(tmp_path: Path) -> None:
    data = mpo_bytes()
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.format == "MPO"  # what Pillow calls it
    assert load_image(data).shape == (200, 200, 3)  # the bot judges it
    info = inspect(data)
    assert info.format == "JPEG" and (info.width, info.height) == (320, 240)
    with DatasetStore.open(tmp_path / "data") as store:
        record = store.add_image(data, filename="IMG_0001.JPG")
        assert record.new and record.path.suffix == ".jpg"
        assert record.path.read_bytes() == data
