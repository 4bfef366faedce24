"""The out-of-distribution development set: every image decodes, the same seed gives the same
bytes, the photo groups hold the allow-listed photographs (or are empty without them).

Fast on purpose: the generated groups are built with a handful of images each (a few seconds),
and the photo groups with a small `count` so that only a few wallpapers are decoded.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import _ood_data as ood_data
from benchmarks._ood_data import GENERATED_GROUPS, GROUPS, REAL_PHOTO_GROUPS, Sample
from model.preprocess import load_image

COUNT = 8  # every noise kind, every blank kind, four texts and four plots, ...
SEED = 3
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif"}


@pytest.fixture(scope="module")
def generated() -> dict[str, list[Sample]]:
    return {group: ood_data.build_group(group, COUNT, SEED) for group in GENERATED_GROUPS}


def _decode(sample: Sample) -> Image.Image:
    """The sample fully decoded by Pillow (`format` kept), checking that its name says it."""
    image = Image.open(io.BytesIO(sample.data))
    image.load()
    assert image.format in EXTENSIONS, (sample.name, image.format)
    assert sample.name.endswith(EXTENSIONS[image.format]), (sample.name, image.format)
    return image


def test_groups_are_named_in_a_fixed_order() -> None:
    assert GROUPS == (
        "noise",
        "blank",
        "text and plots",
        "screenshots",
        "shapes and scenes",
        "matplotlib photos",
        "wallpaper photos",
    )
    assert REAL_PHOTO_GROUPS == ("matplotlib photos", "wallpaper photos")
    assert set(GENERATED_GROUPS) | set(REAL_PHOTO_GROUPS) == set(GROUPS)
    with pytest.raises(ValueError):
        ood_data.build_group("cats")


@pytest.mark.parametrize("group", GENERATED_GROUPS)
def test_generated_groups_have_count_images_that_decode(generated, group: str) -> None:
    samples = generated[group]
    assert len(samples) == COUNT
    assert len({s.name for s in samples}) == COUNT, "names are unique in a group"
    for sample in samples:
        image = _decode(sample)
        limit = 1920 if sample.name.startswith("ui_render_") else ood_data.MAX_SIDE
        assert max(image.size) <= limit, sample.name
        assert min(image.size) >= ood_data.MIN_SIDE, sample.name
        array = load_image(sample.data)  # the project's own decoder, as the bot reads uploads
        assert array.shape == (200, 200, 3) and array.dtype == np.uint8


def test_sizes_and_formats_vary(generated) -> None:
    samples = [s for group in generated.values() for s in group]
    sizes = {_decode(s).size for s in samples}
    formats = {_decode(s).format for s in samples}
    assert len(sizes) > len(samples) // 2
    assert formats <= set(EXTENSIONS) and len(formats) >= 3
    assert any(max(size) >= 1000 for size in sizes)


def test_screenshots_are_named_by_their_source(generated) -> None:
    names = [s.name for s in generated["screenshots"]]
    assert names[0] == "playground_screenshot_full.png"
    assert generated["screenshots"][0].data == ood_data.PLAYGROUND_SCREENSHOT.read_bytes()
    assert all(n.startswith(("playground_screenshot_", "ui_render_")) for n in names)
    assert sum(n.startswith("ui_render_") for n in names) == COUNT // 2
    for sample in generated["screenshots"]:
        if sample.name.startswith("ui_render_"):
            w, h = _decode(sample).size
            assert 1280 <= w <= 1920 and 720 <= h <= 1080


@pytest.mark.parametrize("group", GENERATED_GROUPS)
def test_the_same_seed_gives_the_same_bytes(generated, group: str) -> None:
    again = ood_data.build_group(group, 3, SEED)
    assert again == generated[group][:3]  # also: a smaller count is a prefix of a larger one
    other = ood_data.build_group(group, 3, SEED + 1)
    same = [a.data == b.data for a, b in zip(again, other, strict=True)]
    # Only the unmodified playground screenshot is the same whatever the seed.
    assert sum(same) <= (1 if group == "screenshots" else 0)


@pytest.mark.parametrize(("group", "count"), [("noise", COUNT), ("blank", 40)])
def test_no_noise_or_blank_image_is_another_one(generated, group: str, count: int) -> None:
    samples = generated[group] if count == COUNT else ood_data.build_group(group, count, SEED)
    assert len({s.data for s in samples}) == len(samples)
    pixels = {hashlib.sha256(load_image(s.data).tobytes()).hexdigest() for s in samples}
    assert len(pixels) == len(samples), "two images look the same to the network"


def test_matplotlib_photos_are_grace_hopper_and_crops_of_her() -> None:
    paths = ood_data._matplotlib_photo_paths()
    assert [p.name for p in paths] == ["grace_hopper.jpg"]
    samples = ood_data.build_group("matplotlib photos", 5, SEED)
    assert [s.name for s in samples] == ["grace_hopper.jpg"] + [
        f"grace_hopper_crop{k:03d}.jpg" for k in range(4)
    ]
    assert samples[0].data == paths[0].read_bytes()  # the photo exactly as it is
    width, height = _decode(samples[0]).size
    for crop in samples[1:]:
        w, h = _decode(crop).size
        assert 0.4 * width - 1 <= w < width and 0.4 * height - 1 <= h < height
        assert load_image(crop.data).shape == (200, 200, 3)
    assert len({s.data for s in samples}) == len(samples)
    assert ood_data.build_group("matplotlib photos", 5, SEED) == samples
    assert ood_data.build_group("matplotlib photos", 5, SEED + 1)[1:] != samples[1:]


def _installed_files(package: str) -> set[str] | None:
    """The files dpkg lists for `package`, or None if it is not installed."""
    listing = Path("/var/lib/dpkg/info") / f"{package}.list"
    if not listing.is_file():
        return None
    return set(listing.read_text().split())


@pytest.mark.skipif(
    not ood_data.WALLPAPER_ROOT.is_dir(),
    reason=f"{ood_data.WALLPAPER_ROOT} is missing: no wallpaper packages installed "
    f"(apt-get install {' '.join(ood_data.WALLPAPER_PACKAGES)})",
)
def test_wallpaper_photos_are_the_allow_listed_photographs() -> None:
    checked = 0
    for package, files in ood_data.WALLPAPER_PHOTOS.items():
        installed = _installed_files(package)
        if installed is None:
            continue
        for rel in files:  # every allow-listed file belongs to its package
            assert str(ood_data.WALLPAPER_ROOT / rel) in installed, (package, rel)
            checked += 1
    if not checked:
        pytest.skip(f"none of {', '.join(ood_data.WALLPAPER_PACKAGES)} is installed")
    paths = ood_data.wallpaper_paths()
    assert len(paths) >= checked
    # count=2: at most 2 * count images, all of them whole photos (no room left for crops).
    samples = ood_data.build_group("wallpaper photos", 2, SEED)
    assert [s.name for s in samples] == [p.stem + ".jpg" for p in paths[:4]]
    for sample in samples:
        image = _decode(sample)
        assert image.format == "JPEG" and max(image.size) <= ood_data.MAX_SIDE
        assert min(image.size) >= 600, "a photograph, not a thumbnail"
        assert load_image(sample.data).shape == (200, 200, 3)


def test_photo_groups_are_empty_when_their_sources_are_missing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ood_data, "WALLPAPER_ROOT", tmp_path)
    monkeypatch.setattr(ood_data, "MATPLOTLIB_SAMPLE_DATA", tmp_path)
    assert ood_data.wallpaper_paths() == []
    for group in REAL_PHOTO_GROUPS:
        assert ood_data.build_group(group, 10, SEED) == []


@pytest.mark.parametrize("module", ["_ood_data", "_ood_drawn", "_ood_screens"])
def test_the_module_neither_uses_scikit_image_nor_downloads(module: str) -> None:
    source = (Path(ood_data.__file__).parent / f"{module}.py").read_text()
    assert "import skimage" not in source and "from skimage" not in source
    for word in ("urllib", "requests", "http://", "https://", "aiohttp"):
        assert word not in source
