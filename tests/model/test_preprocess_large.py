"""`model.preprocess` on large images: reduced on the way in, and nothing else changes.

What this does to the network's input, against the whole-image decode, is measured in
test_preprocess_parity.py; here: that it happens, and that nothing else changes.
"""

from __future__ import annotations

import numpy as np
import pytest
from imagekit import (
    BLUE,
    RED,
    WHITE,
    assert_close,
    encode,
    halves,
    noise,
    raises,
)
from PIL import Image, ImageFile

from model import preprocess
from model.preprocess import (
    BACKGROUND,
    CorruptImageError,
    ImageLimits,
    ImageTooLargeError,
    load_image,
    open_image,
    prepare,
)


def spy_on_reduce(monkeypatch) -> list[tuple[str, tuple[int, int]]]:
    """The mode and size of every image `load_image` hands to its reduction step (decoded)."""
    seen: list[tuple[str, tuple[int, int]]] = []
    real = preprocess._reduce

    def spy(image, box):
        seen.append((image.mode, image.size))
        return real(image, box)

    monkeypatch.setattr(preprocess, "_reduce", spy)
    return seen


@pytest.mark.parametrize(
    ("size", "decoded"),
    [
        ((4032, 3024), (504, 378)),  # 12 MP, 4:3: 1/8
        ((3024, 4032), (378, 504)),
        ((4032, 2268), (1008, 567)),  # 12 MP, 16:9: 2268 / 8 would be under 300 rows, so 1/4
        ((2016, 1512), (504, 378)),  # 3 MP: 1/4
        ((1200, 900), (600, 450)),  # 1/2
        ((1199, 599), (1199, 599)),  # too small for any scale
        ((4033, 3025), (505, 379)),  # not a multiple of 8: rounded up, the extent kept apart
    ],
)
def test_a_large_jpeg_is_decoded_at_a_smaller_scale(monkeypatch, size, decoded) -> None:
    data = encode(halves(size, RED, BLUE), "JPEG", quality=90)
    whole = prepare(open_image(data))  # every pixel decoded, then resized: as it was
    seen = spy_on_reduce(monkeypatch)
    array = load_image(data)
    assert seen == [("RGB", decoded)]
    assert_close(array[100, 20], RED, 12)
    assert_close(array[100, 180], BLUE, 12)
    for column in (98, 99, 100, 101):  # the edge stays where it was, as sharp
        assert_close(array[100, column], tuple(whole[100, column]), 8)


def test_the_scale_keeps_the_jpegs_mode(monkeypatch) -> None:
    seen = spy_on_reduce(monkeypatch)
    grey = load_image(encode(Image.new("L", (2400, 2400), 100), "JPEG"))
    cmyk = load_image(encode(Image.new("CMYK", (2400, 2400), (0, 255, 255, 0)), "JPEG"))
    assert seen == [("L", (300, 300)), ("CMYK", (300, 300))]
    assert_close(grey[100, 100], (100, 100, 100), 2)
    assert_close(cmyk[100, 100], RED, 12)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_large_jpeg_is_turned_upright_like_a_small_one(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    picture = halves((400, 200), RED, BLUE)
    picture.paste(Image.new("RGB", (200, 50), WHITE), (0, 0))  # a white corner: top left
    small = encode(picture, "JPEG", quality=95, exif=exif.tobytes())
    large = encode(picture.resize((4000, 2000)), "JPEG", quality=95, exif=exif.tobytes())
    difference = np.abs(load_image(large).astype(int) - load_image(small).astype(int))
    assert difference.mean() < 2 and np.percentile(difference, 95) <= 12


@pytest.mark.parametrize("orientation", range(2, 9))
def test_the_extent_of_a_reduced_image_turns_with_it(orientation: int) -> None:
    # A reduced image whose last column and row are only partly the picture (box): turning
    # the image and its box, then resizing, is resizing then turning, to rounding.
    image = noise((40, 30), seed=10)
    box = (0, 0, 39.5, 29.25)
    method = preprocess._TRANSPOSE[orientation]
    expected = image.resize((20, 20), preprocess.RESAMPLE, box=box).transpose(method)
    turned, turned_box = preprocess._transpose(image, box, orientation)
    got = turned.resize((20, 20), preprocess.RESAMPLE, box=turned_box)
    assert np.abs(np.asarray(got, int) - np.asarray(expected, int)).max() <= 1


def transparent_right_half(size: tuple[int, int], mode: str) -> Image.Image:
    colour = {"RGBA": (*RED, 255), "LA": (50, 255)}[mode]
    return halves(size, colour, (0,) * len(mode), mode=mode)


@pytest.mark.parametrize(
    ("make", "left"),
    [
        (lambda: encode(transparent_right_half((2600, 1300), "RGBA"), "PNG"), RED),
        (lambda: encode(transparent_right_half((2600, 1300), "LA"), "PNG"), (50, 50, 50)),
        (
            lambda: encode(transparent_right_half((2600, 1300), "RGBA"), "WEBP", lossless=True),
            RED,
        ),
        (lambda: encode(palette_with_transparent_right((2600, 1300)), "PNG", transparency=1), RED),
        (lambda: encode(palette_with_transparent_right((2600, 1300)), "GIF", transparency=1), RED),
    ],
    ids=["rgba-png", "la-png", "rgba-webp", "palette-png", "palette-gif"],
)
def test_a_large_transparent_image_is_composited_on_the_background(make, left) -> None:
    array = load_image(make())
    assert_close(array[100, 20], left, 1)
    assert_close(array[100, 180], BACKGROUND, 1)


def palette_with_transparent_right(size: tuple[int, int]) -> Image.Image:
    image = Image.new("P", size, 0)
    image.putpalette([*RED, 0, 255, 0] + [0] * (256 * 3 - 6))
    image.paste(1, (size[0] // 2, 0, *size))
    return image


def test_an_opaque_rgba_screenshot_is_not_composited(monkeypatch) -> None:
    composited = []
    real = Image.alpha_composite
    monkeypatch.setattr(Image, "alpha_composite", lambda *a: composited.append(1) or real(*a))
    image = halves((2560, 1440), (*RED, 255), (*BLUE, 255), mode="RGBA")
    array = load_image(encode(image, "PNG"))
    assert not composited
    assert (array[:, :95] == RED).all() and (array[:, 105:] == BLUE).all()


def test_a_large_16_bit_png_is_scaled_not_clipped() -> None:
    values = np.full((100, 2600), 32768, dtype="<u2")
    values[:, 1300:] = 65535
    array = load_image(encode(Image.frombytes("I;16", (2600, 100), values.tobytes()), "PNG"))
    assert (array[:, :90] == 128).all() and (array[:, 110:] == 255).all()


@pytest.mark.parametrize(
    ("fmt", "options"), [("GIF", {}), ("WEBP", {"lossless": True})], ids=["gif", "webp"]
)
def test_a_large_animation_uses_its_first_frame(fmt: str, options: dict) -> None:
    first, second = Image.new("RGB", (1300, 700), RED), Image.new("RGB", (1300, 700), BLUE)
    data = encode(first, fmt, save_all=True, append_images=[second], duration=100, **options)
    assert (load_image(data) == RED).all()


def test_open_image_still_decodes_every_pixel() -> None:
    # dataset.files.inspect reads the upright size from it.
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.new("RGB", (4032, 3024), RED), "JPEG", exif=exif.tobytes())
    assert open_image(data).size == (3024, 4032)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_large_image_gives_the_same_array_every_time(fmt: str) -> None:
    data = encode(noise((2000, 1300), seed=11), fmt)
    first, second = load_image(data), load_image(data)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_a_large_jpeg_cut_short_is_still_refused(progressive: bool) -> None:
    data = encode(noise((2400, 1800), seed=12), "JPEG", quality=60, progressive=progressive)
    error = raises(data[: len(data) // 2], CorruptImageError)
    assert "incomplete" in str(error)


def test_a_large_jpeg_over_the_pixel_limit_is_refused_without_decoding(monkeypatch) -> None:
    data = encode(Image.new("RGB", (4032, 3024)), "JPEG")

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    error = raises(data, ImageTooLargeError, ImageLimits(max_pixels=12_000_000))
    assert "4032x3024" in str(error)
