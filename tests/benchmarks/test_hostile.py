"""The hostile benchmark: its files are what they say (small, large once decoded, every kind),
and its quick mode runs the real bot and the trainer end to end (slow); no figure is asserted
but the checks the benchmark makes itself."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from benchmarks import _hostile_files, hostile
from model.preprocess import ImageLimits, decode


def test_the_hostile_files_are_small_and_large_once_decoded() -> None:
    files = _hostile_files.hostile_set(5, scale=0.25)
    modes = []
    for name, data in files:
        with Image.open(io.BytesIO(data)) as image:
            modes.append(image.mode)
            width, height = image.size
        assert name.endswith(".png") and len(data) < width * height // 20  # compressible
        assert decode(data).array.shape == (200, 200, 3)
    assert modes == ["I;16", "RGB", "P", "LA", "RGBA"]


@pytest.mark.parametrize("kind", list(_hostile_files.KINDS))
def test_at_full_size_each_kind_is_near_the_decode_bound_but_under_it(kind: str) -> None:
    data = _hostile_files.KINDS[kind]()
    assert len(data) < 1_100_000
    cost = decode(data).cost
    assert ImageLimits().max_decoded_bytes // 3 < cost <= ImageLimits().max_decoded_bytes


@pytest.mark.slow
def test_hostile_quick_answers_every_message_and_trains(tmp_path) -> None:
    out = tmp_path / "hostile.json"
    assert hostile.main(["--quick", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert all(check["ok"] for check in saved["checks"])
    bot = saved["figures"]["bot"]["value"]
    assert bot["answered"] == bot["messages"] == 4
    assert bot["peak_mb"] > bot["warm_mb"] > 0
    assert saved["figures"]["trainer"]["value"]["status"] is not None
    assert [o["unit"] for o in saved["outcomes"]] == ["MB", "MB"]
