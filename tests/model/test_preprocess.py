"""`model.preprocess`: every accepted format and mode becomes a (200, 200, 3) uint8 array.

Every image here is generated in memory with Pillow (`imagekit`); no test files are shipped.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from imagekit import (
    BLUE,
    RED,
    WHITE,
    assert_close,
    assert_uint8_image,
    encode,
    halves,
    noise,
)
from PIL import Image

from model.preprocess import (
    BACKGROUND,
    load_image,
    open_image,
    prepare,
)

# --- formats ---------------------------------------------------------------------------------

FORMATS = {
    "JPEG": ({"quality": 95}, 12),
    "PNG": ({}, 0),
    "GIF": ({}, 0),
    "WEBP": ({"lossless": True}, 0),
    "BMP": ({}, 0),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_accepted_format_becomes_a_200x200_rgb_array(fmt: str) -> None:
    options, tolerance = FORMATS[fmt]
    data = encode(halves((300, 240), RED, BLUE), fmt, **options)
    assert Image.open(io.BytesIO(data)).format == fmt
    array = load_image(data)
    assert_uint8_image(array)
    assert_close(array[100, 20], RED, tolerance)
    assert_close(array[100, 180], BLUE, tolerance)


def test_lossy_webp_is_accepted() -> None:
    array = load_image(encode(Image.new("RGB", (64, 64), RED), "WEBP", quality=90))
    assert_uint8_image(array)
    assert_close(array[100, 100], RED, 12)


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {})],
    ids=["gif", "webp", "apng"],
)
def test_an_animation_uses_its_first_frame(fmt: str, options: dict) -> None:
    first, second = Image.new("RGB", (40, 40), RED), Image.new("RGB", (40, 40), BLUE)
    data = encode(
        first, fmt, save_all=True, append_images=[second], duration=100, loop=0, **options
    )
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    array = load_image(data)
    assert_uint8_image(array)
    assert (array == RED).all()


# --- modes -----------------------------------------------------------------------------------


def test_greyscale_l() -> None:
    array = load_image(encode(Image.new("L", (50, 50), 100), "PNG"))
    assert_uint8_image(array)
    assert (array == 100).all()


def test_greyscale_with_alpha_la() -> None:
    image = Image.new("LA", (100, 100), (0, 0))  # fully transparent black
    image.paste(Image.new("LA", (50, 100), (50, 255)), (0, 0))  # opaque dark grey on the left
    array = open_image(encode(image, "PNG"))
    assert array.mode == "RGB"
    pixels = np.asarray(array)
    assert_close(pixels[50, 10], (50, 50, 50))
    assert_close(pixels[50, 90], BACKGROUND)


def test_palette_p() -> None:
    image = Image.new("P", (20, 20), 1)
    image.putpalette([0, 0, 0, *RED] + [0] * (256 * 3 - 6))
    data = encode(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "P"
    assert (load_image(data) == RED).all()


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency_becomes_the_background(fmt: str) -> None:
    image = Image.new("P", (100, 100), 0)
    image.putpalette([*RED, 0, 255, 0] + [0] * (256 * 3 - 6))
    image.paste(1, (50, 0, 100, 100))  # right half: index 1, the transparent one
    data = encode(image, fmt, transparency=1)
    opened = Image.open(io.BytesIO(data))
    assert opened.mode == "P" and opened.info.get("transparency") == 1
    pixels = np.asarray(open_image(data))
    assert_close(pixels[50, 10], RED)
    assert_close(pixels[50, 90], BACKGROUND)


@pytest.mark.parametrize(("fmt", "options"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_rgba_transparent_is_white_and_opaque_keeps_its_colour(fmt: str, options: dict) -> None:
    image = halves((100, 100), (*RED, 255), (0, 0, 0, 0), mode="RGBA")
    data = encode(image, fmt, **options)
    assert Image.open(io.BytesIO(data)).mode == "RGBA"
    pixels = np.asarray(open_image(data))
    assert_close(pixels[50, 10], RED)
    assert_close(pixels[50, 90], BACKGROUND)


def test_half_transparent_black_is_composited_to_mid_grey() -> None:
    array = load_image(encode(Image.new("RGBA", (10, 10), (0, 0, 0, 128)), "PNG"))
    assert_close(array[100, 100], (127, 127, 127), 1)


@pytest.mark.parametrize(
    ("mode", "colour"), [("RGB", (1, 2, 3)), ("L", 7)], ids=["rgb-colour-key", "l-colour-key"]
)
def test_a_png_colour_key_is_transparent_too(mode: str, colour) -> None:
    image = Image.new(mode, (20, 20), colour)
    image.paste(Image.new(mode, (10, 20), 200 if mode == "L" else (200, 0, 0)), (0, 0))
    data = encode(image, "PNG", transparency=colour)
    assert "transparency" in Image.open(io.BytesIO(data)).info
    pixels = np.asarray(open_image(data))
    assert_close(pixels[10, 15], BACKGROUND)
    assert_close(pixels[10, 2], (200, 200, 200) if mode == "L" else (200, 0, 0))


def test_cmyk_jpeg() -> None:
    data = encode(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    array = load_image(data)
    assert_uint8_image(array)
    assert_close(array[100, 100], RED, 12)


def test_16_bit_png_is_scaled_not_clipped() -> None:
    values = np.array([[65535, 32768], [0, 1000]], dtype="<u2")
    data = encode(Image.frombytes("I;16", (2, 2), values.tobytes()), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    grey = np.asarray(open_image(data))
    assert (grey == grey[..., :1]).all()  # still grey
    assert grey[..., 0].tolist() == [[255, 128], [0, 4]]


def test_16_bit_png_through_load_image() -> None:
    values = np.full((200, 200), 32768, dtype="<u2")
    array = load_image(encode(Image.frombytes("I;16", (200, 200), values.tobytes()), "PNG"))
    assert_uint8_image(array)
    assert (array == 128).all()


@pytest.mark.parametrize("fmt", ["PNG", "BMP"])
def test_one_bit(fmt: str) -> None:
    image = Image.new("1", (100, 100), 0)
    image.paste(1, (50, 0, 100, 100))
    data = encode(image, fmt)
    assert Image.open(io.BytesIO(data)).mode == "1"
    pixels = np.asarray(open_image(data))
    assert_close(pixels[50, 10], (0, 0, 0))
    assert_close(pixels[50, 90], WHITE)


def test_32_bit_integer_i_mode_through_prepare() -> None:
    # No accepted format stores mode I (Pillow writes it only to TIFF), so `prepare` takes it.
    small = Image.fromarray(np.full((200, 200), 100, dtype=np.int32))
    assert small.mode == "I"
    assert (prepare(small) == 100).all()  # an 8-bit range stays as it is
    wide = np.zeros((200, 200), dtype=np.int32)
    wide[:, 100:] = 65535
    array = prepare(Image.fromarray(wide))
    assert_uint8_image(array)
    assert (array[:, :90] == 0).all() and (array[:, 110:] == 255).all()  # scaled, not clipped


def test_float_f_mode_through_prepare() -> None:
    values = np.full((200, 200), 100.4, dtype=np.float32)
    values[0, 0], values[0, 199] = -5.0, 300.0
    image = Image.fromarray(values)
    assert image.mode == "F"
    array = prepare(image)
    assert_uint8_image(array)
    assert array[100, 100].tolist() == [100, 100, 100]
    assert array[0, 0].tolist() == [0, 0, 0] and array[0, 199].tolist() == [255, 255, 255]


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "1", "CMYK", "I;16"])
def test_prepare_converts_any_mode(mode: str) -> None:
    array = prepare(Image.new(mode, (123, 77)))
    assert_uint8_image(array)


def test_open_image_is_rgb_at_its_own_size() -> None:
    image = open_image(encode(Image.new("RGBA", (123, 45)), "PNG"))
    assert image.mode == "RGB"
    assert image.size == (123, 45)


# --- EXIF orientation ------------------------------------------------------------------------


def jpeg_with_orientation(orientation: int, size=(100, 50)) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(halves(size, RED, BLUE), "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize(
    ("orientation", "red_at", "blue_at"),
    [
        (1, (25, 10), (25, 90)),  # upright already: red on the left
        (3, (25, 90), (25, 10)),  # turned 180°: red on the right
        (6, (10, 25), (90, 25)),  # turned 90° clockwise: the left half comes to the top
        (8, (90, 25), (10, 25)),  # turned 90° anticlockwise: the left half goes to the bottom
    ],
)
def test_exif_orientation_is_applied(orientation: int, red_at, blue_at) -> None:
    image = open_image(jpeg_with_orientation(orientation))
    assert image.size == ((100, 50) if orientation in (1, 3) else (50, 100))
    pixels = np.asarray(image)
    assert_close(pixels[red_at], RED, 12)
    assert_close(pixels[blue_at], BLUE, 12)


def test_orientation_6_is_upright_after_resizing() -> None:
    array = load_image(jpeg_with_orientation(6))
    assert_close(array[40, 100], RED, 12)  # top half
    assert_close(array[160, 100], BLUE, 12)  # bottom half


def test_orientation_in_a_png_is_applied_too() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    image = open_image(encode(halves((100, 50), RED, BLUE), "PNG", exif=exif.tobytes()))
    assert image.size == (50, 100)
    assert_close(np.asarray(image)[10, 25], RED)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize(
    "exif",
    [b"Exif\x00\x00garbage!garbage!", b"Exif\x00\x00MM\x00*\x00\x00\xff\xff"],
    ids=["garbage", "bad-offset"],
)
def test_broken_exif_is_ignored(exif: bytes) -> None:
    data = encode(Image.new("RGB", (20, 10), RED), "JPEG", exif=exif)
    array = load_image(data)
    assert_close(array[100, 100], RED, 12)


# --- resizing and determinism ----------------------------------------------------------------


def test_a_400x300_image_becomes_200x200() -> None:
    array = load_image(encode(halves((400, 300), RED, BLUE), "PNG"))
    assert_uint8_image(array)
    assert (array[:, :95] == RED).all()
    assert (array[:, 105:] == BLUE).all()


@pytest.mark.parametrize("size", [(1, 1), (17, 999), (1000, 3)])
def test_any_aspect_ratio_becomes_200x200(size: tuple[int, int]) -> None:
    assert_uint8_image(load_image(encode(noise(size), "PNG")))


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "WEBP"])
def test_a_200x200_image_passes_through_unchanged(fmt: str) -> None:
    original = noise((200, 200), seed=3)
    options = {"lossless": True, "exact": True} if fmt == "WEBP" else {}
    array = load_image(encode(original, fmt, **options))
    np.testing.assert_array_equal(array, np.asarray(original))


def test_prepare_leaves_a_200x200_rgb_image_unchanged() -> None:
    original = noise((200, 200), seed=4)
    np.testing.assert_array_equal(prepare(original), np.asarray(original))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_the_same_bytes_give_the_same_array(fmt: str) -> None:
    data = encode(noise((321, 123), seed=5), fmt)
    first, second = load_image(data), load_image(data)
    np.testing.assert_array_equal(first, second)
    assert first is not second
