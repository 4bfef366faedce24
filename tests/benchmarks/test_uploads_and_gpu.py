"""The uploads and gpu benchmarks: their pieces (fast: small images, no TensorFlow), the gpu
benchmark's exit without a GPU, and the uploads benchmark's quick mode end to end (slow: it
decodes 12 MP photos and starts two bots)."""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image, ImageOps

from benchmarks import _common, _uploads_burst, _uploads_data, _uploads_today, gpu, uploads

ROOT = _common.REPO


def _jpeg(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("module", ["benchmarks._uploads_data", "benchmarks._uploads_today"])
def test_helpers_import_without_heavy_dependencies(module: str) -> None:
    importlib.import_module(module)


# -- the generated uploads --------------------------------------------------------------------


def test_scenes_and_screenshots_have_their_size_and_are_not_flat() -> None:
    image = _uploads_data.scene(np.random.default_rng(0), 160, 120)
    assert image.size == (160, 120) and image.mode == "RGB"
    pixels = np.asarray(image, dtype=np.float64)
    assert pixels.std() > 10  # sky, ground, shapes: not one colour
    shot = _uploads_data.screenshot(np.random.default_rng(1), 640, 360)
    assert shot.size == (640, 360)
    colours = len(np.unique(np.asarray(shot).reshape(-1, 3), axis=0))
    assert colours > 50  # anti-aliased text, avatars


def test_phone_photos_are_4_2_0_jpegs_with_camera_exif() -> None:
    rng = np.random.default_rng(2)
    data = _uploads_data._jpeg(_uploads_data.scene(rng, 96, 64), 90, _uploads_data._exif(rng, 1))
    upload = _uploads_data._upload("12 MP JPEG", "x.jpg", data)
    info = _uploads_data.describe(upload)
    assert info["format"] == "JPEG" and info["subsampling"] == "4:2:0"
    assert info["orientation"] == 1 and upload.orientation == 1
    with Image.open(io.BytesIO(data)) as image:
        assert image.getexif()[0x010F] in {make for make, _ in _uploads_data._CAMERAS}


@pytest.mark.parametrize("orientation", [6, 8])
def test_rotated_photos_decode_upright_only_through_exif(orientation: int) -> None:
    make = _uploads_data._rotated(orientation, size=(96, 64))
    data = make(np.random.default_rng(3))
    upright = np.asarray(_uploads_data.scene(np.random.default_rng(3), 64, 96), dtype=np.float64)
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (96, 64)  # stored landscape, as the sensor saw it
        assert image.getexif()[_uploads_data.EXIF_ORIENTATION] == orientation
        shown = np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.float64)
    assert shown.shape == upright.shape  # 64 wide, 96 tall
    assert np.abs(shown - upright).mean() < 8  # the same picture, JPEG aside


def test_generated_files_are_cached_and_repeatable(tmp_path, monkeypatch) -> None:
    calls = []

    def tiny(rng: np.random.Generator) -> bytes:
        calls.append(1)
        return _uploads_data._jpeg(_uploads_data.scene(rng, 48, 32), 90)

    monkeypatch.setitem(_uploads_data._MAKERS, "12 MP JPEG", tiny)
    first = _uploads_data.generated(tmp_path, 2, seed=5, kinds=("12 MP JPEG",))
    assert [u.kind for u in first] == ["12 MP JPEG"] * 2 and len(calls) == 2
    assert first[0].data != first[1].data and first[0].format == "JPEG"
    again = _uploads_data.generated(tmp_path, 2, seed=5, kinds=("12 MP JPEG",))
    assert [u.data for u in again] == [u.data for u in first] and len(calls) == 2  # cached
    other = _uploads_data.generated(tmp_path / "b", 1, seed=5, kinds=("12 MP JPEG",))
    assert other[0].data == first[0].data  # same seed, same bytes


def test_gif_and_meme_makers_give_their_formats(monkeypatch) -> None:
    monkeypatch.setattr(
        _uploads_data, "scene", lambda rng, w, h, grain=2.5: Image.new("RGB", (w, h), "grey")
    )
    rng = np.random.default_rng(0)
    gif = _uploads_data._upload("animated GIF", "a.gif", _uploads_data._gif(rng))
    assert gif.format == "GIF" and gif.frames == 24 and (gif.width, gif.height) == (498, 280)
    meme = _uploads_data._upload("WebP meme", "m.webp", _uploads_data._meme(rng))
    assert meme.format == "WEBP" and (meme.width, meme.height) == (1080, 1080)


# -- today's path, frozen ---------------------------------------------------------------------


def _old_preprocess(monkeypatch) -> types.ModuleType:
    """`model/preprocess.py` as it was at a619972, imported from git."""
    if shutil.which("git") is None:
        pytest.skip("no git")
    done = subprocess.run(
        ["git", "show", f"{_uploads_today.FROZEN_AT}:model/preprocess.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"commit {_uploads_today.FROZEN_AT} not in this checkout")
    module = types.ModuleType("old_preprocess_a619972")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look it up
    exec(compile(done.stdout, "old_preprocess.py", "exec"), module.__dict__)
    return module


def _variety() -> list[bytes]:
    rng = np.random.default_rng(4)
    photo = _uploads_data.scene(rng, 330, 250)
    rotated = _uploads_data._rotated(6, size=(330, 250))(rng)
    rgba = Image.new("RGBA", (260, 210), (0, 0, 0, 0))
    rgba.paste(photo.crop((0, 0, 130, 210)), (0, 0))
    palette = photo.quantize(64)
    palette.info["transparency"] = 3
    grey16 = Image.fromarray((np.arange(300 * 220).reshape(220, 300) % 65536).astype(np.uint16))
    out = [_jpeg(photo, quality=90), rotated]
    for image, fmt in ((rgba, "PNG"), (palette, "GIF"), (grey16, "PNG"), (photo, "WEBP")):
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        out.append(buffer.getvalue())
    return out


def test_the_frozen_copy_gives_what_a619972_gave(monkeypatch) -> None:
    old = _old_preprocess(monkeypatch)
    for data in _variety():
        np.testing.assert_array_equal(_uploads_today.load_image(data), old.load_image(data))
    from model.preprocess import ImageError

    with pytest.raises(ImageError):
        _uploads_today.load_image(b"not an image")


def test_install_replaces_load_image_wherever_it_was_imported() -> None:
    import model.preprocess
    import model.worker

    real = model.preprocess.load_image
    holders = [m for m in list(sys.modules.values()) if getattr(m, "load_image", None) is real]
    try:
        replaced = _uploads_today.install()
        assert {"model.preprocess", "model.worker"} <= set(replaced)
        assert model.worker.load_image is _uploads_today.load_image
    finally:
        for module in holders:
            module.load_image = real


# -- the uploads benchmark's pieces -----------------------------------------------------------


def test_floor_decodes_at_one_eighth() -> None:
    data = _jpeg(Image.new("RGB", (803, 600), "teal"), quality=90)
    image = uploads.floor_decode(data)
    assert image.size == (101, 75)
    report = _common.Report("uploads", "test", info={})
    upload = _uploads_data._upload("12 MP JPEG", "x.jpg", data)
    uploads.check_floor(report, [upload])
    assert report.checks[-1]["ok"]


def test_fidelity_measures_arrays_and_scores(monkeypatch) -> None:
    class Mean:
        def scores(self, batch):
            return batch.astype(np.float64).mean(axis=(1, 2, 3)) / 255

    monkeypatch.setattr(uploads, "today_load", lambda data: np.full((200, 200, 3), 10, np.uint8))
    monkeypatch.setattr(uploads, "new_load", lambda data: np.full((200, 200, 3), 12, np.uint8))
    files = [types.SimpleNamespace(data=b"a"), types.SimpleNamespace(data=b"b")]
    result = uploads.fidelity(Mean(), files)
    assert result["pixel"] == [2.0, 2.0] and result["identical"] == 0 and result["shape_ok"]
    assert result["score"] == pytest.approx([2 / 255, 2 / 255])


def test_time_kind_floor_is_the_draft_for_jpegs_and_the_decode_for_others(monkeypatch) -> None:
    class Zero:
        def scores(self, batch):
            return np.zeros(len(batch))

    data = _jpeg(Image.new("RGB", (64, 48), "red"), quality=90)
    jpeg = _uploads_data._upload("3 MP JPEG", "a.jpg", data)
    used = []
    monkeypatch.setattr(uploads, "floor_decode", lambda data: used.append("draft"))
    monkeypatch.setattr(uploads, "full_decode", lambda data: used.append("full"))
    seconds = uploads.time_kind(Zero(), [jpeg], rounds=2)
    assert set(seconds) == {"today", "new", "floor"} and all(len(v) == 2 for v in seconds.values())
    assert set(used) == {"draft"}
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(buffer, "PNG")
    png = _uploads_data._upload("1080p PNG screenshot", "a.png", buffer.getvalue())
    used.clear()
    assert set(uploads.time_kind(Zero(), [png], rounds=1)) == {"today", "new", "floor"}
    assert set(used) == {"full"}
    monkeypatch.undo()
    assert uploads.full_decode(buffer.getvalue()).size == (64, 48)


def test_cpu_seconds_and_the_new_path_state() -> None:
    assert _uploads_burst.cpu_seconds(os.getpid()) > 0
    assert "model/preprocess.py" in uploads.new_path_state()


# -- gpu: no GPU, no measurement --------------------------------------------------------------


def test_gpu_without_a_driver_says_so_and_exits_0(tmp_path, monkeypatch, capsys) -> None:
    import model.runtime

    monkeypatch.setattr(model.runtime, "_has_gpu_driver", lambda: False)
    out = tmp_path / "gpu.json"
    assert gpu.main(["--json", str(out)]) == 0
    assert "no GPU here" in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["outcomes"] == [] and "no GPU" in saved["notes"][0]


def test_gpu_with_a_driver_tensorflow_does_not_see(monkeypatch) -> None:
    import model.runtime

    monkeypatch.setattr(model.runtime, "_has_gpu_driver", lambda: True)
    monkeypatch.setattr(model.runtime, "tensorflow_installed", lambda: True)
    monkeypatch.setattr(model.runtime, "gpu_available", lambda: False)
    assert "TensorFlow sees no GPU" in gpu.no_gpu_reason()
    assert gpu.main(["--quick"]) == 0


def test_gpu_is_left_out_of_make_bench() -> None:
    from benchmarks import __main__ as runner

    assert "gpu" in runner.BENCHMARKS and "gpu" in runner.ONLY_WHEN_NAMED
    assert "uploads" in runner.BENCHMARKS and "uploads" not in runner.ONLY_WHEN_NAMED


# -- the quick mode, end to end ---------------------------------------------------------------


@pytest.mark.slow
def test_uploads_quick_measures_every_kind_and_the_burst(tmp_path, capsys) -> None:
    out = tmp_path / "uploads.json"
    assert uploads.main(["--quick", "--no-real", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert all(check["ok"] for check in saved["checks"])
    names = [o["name"] for o in saved["outcomes"]]
    assert any("today / new" in n and "burst" in n for n in names)
    assert any("new / (floor + 4 ms)" in n for n in names)
    for kind in _uploads_data.KINDS:
        assert f"{kind} | new_ms" in saved["figures"]
    bursts = saved["figures"]["bursts"]["value"]["admit all"]
    assert bursts["today"][0]["patched"] and not bursts["new"][0]["patched"]
    assert "| kind |" in capsys.readouterr().out
