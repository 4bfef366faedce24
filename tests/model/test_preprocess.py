"""`model.preprocess`: every accepted format and mode becomes a (200, 200, 3) uint8 array, and
everything a user can get wrong is refused with a readable `ImageError`.

Every image here is generated in memory with Pillow; no test files are shipped.
"""

from __future__ import annotations

import io
import random
import re
import struct
import time
import warnings
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from model import preprocess
from model.preprocess import (
    BACKGROUND,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageLimits,
    ImageTooLargeError,
    NotAnImageError,
    load_image,
    open_image,
    prepare,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
SHAPE = (200, 200, 3)


# --- helpers ---------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def halves(size: tuple[int, int], left: tuple[int, ...], right: tuple[int, ...], mode="RGB"):
    """An image whose left half is `left` and right half is `right`."""
    width, height = size
    image = Image.new(mode, size, right)
    image.paste(Image.new(mode, (width // 2, height), left), (0, 0))
    return image


def noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def crafted_png(width: int, height: int, idat: bytes | None = None, bit_depth=8, colour=2):
    """A PNG with the given header and IDAT (none at all when `idat` is None)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
    if idat is not None:
        data += png_chunk(b"IDAT", idat)
    return data + png_chunk(b"IEND", b"")


def assert_uint8_image(array: np.ndarray) -> None:
    assert isinstance(array, np.ndarray)
    assert array.shape == SHAPE
    assert array.dtype == np.uint8


def assert_close(pixel: np.ndarray, expected: tuple[int, ...], tolerance: int = 0) -> None:
    difference = np.abs(pixel.astype(int) - np.array(expected)).max()
    assert difference <= tolerance, f"{tuple(pixel)} is not {expected} (±{tolerance})"


# Bits of Python that must never reach a user: reprs of bytes, objects, exceptions, paths.
REPR_NOISE = re.compile(
    r"b'|b\"|\\x|<|>|object at|\b0x[0-9a-f]+\b|Error\b|Exception|Traceback|\bNone\b|\{|\}|__"
)


def assert_readable(error: BaseException) -> None:
    """The message is a sentence a person can read, and the error a `ValueError`."""
    assert isinstance(error, ImageError)
    assert isinstance(error, ValueError)
    message = str(error)
    assert message.strip() == message and message, repr(message)
    assert message[0].isupper(), message
    assert message.endswith("."), message
    assert len(message.split()) >= 3, message
    assert not REPR_NOISE.search(message), message
    assert "  " not in message, message


def raises(data: bytes, expected: type[ImageError], limits: ImageLimits | None = None):
    with pytest.raises(expected) as info:
        load_image(data, limits or ImageLimits())
    assert_readable(info.value)
    return info.value


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


# --- large images: reduced on the way in ----------------------------------------------------
# What this does to the network's input, against the whole-image decode, is measured in
# test_preprocess_parity.py; here: that it happens, and that nothing else changes.


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


# --- bad input -------------------------------------------------------------------------------


def test_every_image_error_is_a_value_error() -> None:
    for kind in (NotAnImageError, CorruptImageError, ImageTooLargeError, EmptyImageError):
        assert issubclass(kind, ImageError)
        assert issubclass(kind, ValueError)


def test_empty_bytes() -> None:
    raises(b"", NotAnImageError)


NOT_IMAGES: dict[str, Callable[[], bytes]] = {
    "random bytes": lambda: random.Random(0).randbytes(4096),
    "a text file": lambda: b"Dear diary,\nToday I met a Sith.\n" * 20,
    "a pdf": lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "a tiff": lambda: encode(Image.new("RGB", (20, 20), RED), "TIFF"),
    "an ico": lambda: encode(Image.new("RGB", (32, 32), RED), "ICO"),
    "a ppm": lambda: encode(Image.new("RGB", (20, 20), RED), "PPM"),
    "a tga": lambda: encode(Image.new("RGB", (20, 20), RED), "TGA"),
    "a pcx": lambda: encode(Image.new("RGB", (20, 20), RED), "PCX"),
    "just a png signature": lambda: b"\x89PNG\r\n\x1a\n",
}


@pytest.mark.parametrize("make", list(NOT_IMAGES.values()), ids=list(NOT_IMAGES))
def test_not_an_image(make: Callable[[], bytes]) -> None:
    raises(make(), NotAnImageError)


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_avif_is_not_accepted() -> None:
    raises(encode(Image.new("RGB", (20, 20), RED), "AVIF"), NotAnImageError)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP"])
def test_a_file_cut_at_half_is_corrupt(fmt: str) -> None:
    data = encode(noise((64, 64), seed=6), fmt)
    raises(data[: len(data) // 2], CorruptImageError)


def test_a_png_with_flipped_idat_bytes_is_corrupt() -> None:
    data = encode(noise((64, 64), seed=7), "PNG")
    start = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[start - 4 : start])
    body = bytearray(data[start + 4 : start + 4 + length])
    for i in range(len(body) // 3, len(body) // 3 + 64):
        body[i] ^= 0xFF
    # A fresh CRC, so that only the compressed pixels are damaged.
    damaged = data[: start - 4] + png_chunk(b"IDAT", bytes(body)) + data[start + 8 + length :]
    assert len(damaged) == len(data)
    raises(damaged, CorruptImageError)


def test_a_damaged_png_chunk_message_has_no_python_reprs() -> None:
    # Pillow's own message for this one is "broken PNG file (chunk b'\x01\x02\x03\x04')".
    rows = b"".join(b"\x00" + bytes(30 * 3) for _ in range(30))
    pixels = zlib.compress(rows)
    header = struct.pack(">IIBBBBB", 30, 30, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels[:10])
        + png_chunk(b"\x01\x02\x03\x04", b"xx")
        + png_chunk(b"IDAT", pixels[10:])
        + png_chunk(b"IEND", b"")
    )
    raises(data, CorruptImageError)


def test_a_png_without_pixel_data_is_corrupt() -> None:
    raises(crafted_png(30, 30), CorruptImageError)


def test_bytes_over_the_byte_limit() -> None:
    data = encode(noise((64, 64), seed=8), "PNG")
    error = raises(data, ImageTooLargeError, ImageLimits(max_bytes=len(data) - 1))
    assert "limit" in str(error)
    assert_uint8_image(load_image(data, ImageLimits(max_bytes=len(data))))  # at the limit: fine


def test_the_byte_limit_is_checked_before_anything_is_parsed() -> None:
    raises(b"not an image at all", ImageTooLargeError, ImageLimits(max_bytes=5))


def test_the_byte_limit_message_states_both_sizes() -> None:
    eleven_mb = b"\x00" * (11 * 1024 * 1024)
    error = raises(eleven_mb, ImageTooLargeError)
    assert str(error) == "The file is 11.0 MB; the limit is 10.0 MB."


def test_small_limits_are_stated_exactly() -> None:
    # Not "The file is 0.0 MB; the limit is 0.0 MB." nor "the limit is 0 megapixels".
    data = encode(noise((64, 64), seed=9), "PNG")
    error = raises(data, ImageTooLargeError, ImageLimits(max_bytes=100))
    assert "100 bytes" in str(error) and "0.0" not in str(error)
    error = raises(data, ImageTooLargeError, ImageLimits(max_bytes=len(data) - 1))
    assert f"{len(data):,} bytes" in str(error) and f"{len(data) - 1:,} bytes" in str(error)
    error = raises(data, ImageTooLargeError, ImageLimits(max_pixels=1000))
    assert "64x64" in str(error) and "1,000 pixels" in str(error)


def test_an_image_over_the_pixel_limit_is_refused_without_decoding(monkeypatch) -> None:
    data = encode(Image.new("RGB", (3000, 3000)), "PNG")

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    error = raises(data, ImageTooLargeError, ImageLimits(max_pixels=1_000_000))
    assert "3000x3000" in str(error)
    assert "1,000,000" in str(error)


def test_an_image_at_the_pixel_limit_is_accepted() -> None:
    data = encode(Image.new("RGB", (1000, 1000), RED), "PNG")
    assert (load_image(data, ImageLimits(max_pixels=1_000_000)) == RED).all()


def test_a_header_claiming_a_huge_size_is_refused_quickly() -> None:
    # 100000x100000 and no pixel data at all: decoding would fail as corrupt, not as too large.
    data = crafted_png(100_000, 100_000)
    start = time.perf_counter()
    raises(data, ImageTooLargeError)
    raises(data, ImageTooLargeError, ImageLimits(max_pixels=10**12))  # Pillow's own guard
    assert time.perf_counter() - start < 1.0


def test_the_pixel_limit_comes_before_decoding() -> None:
    header_only = crafted_png(3000, 3000)
    raises(header_only, ImageTooLargeError, ImageLimits(max_pixels=1_000_000))
    raises(header_only, CorruptImageError, ImageLimits(max_pixels=10_000_000))


def test_a_decompression_bomb_is_refused() -> None:
    # 10000x10000 one-bit black pixels: 100 megapixels in a few kilobytes.
    width = height = 10_000
    rows = (b"\x00" + bytes(width // 8)) * height
    bomb = crafted_png(width, height, zlib.compress(rows, 9), bit_depth=1, colour=0)
    assert len(bomb) < 100_000
    start = time.perf_counter()
    error = raises(bomb, ImageTooLargeError)
    assert time.perf_counter() - start < 1.0
    assert "10000x10000" in str(error)


@pytest.mark.parametrize(("width", "height"), [(0, 0), (0, 10), (10, 0)])
def test_a_zero_size_png_is_refused(width: int, height: int) -> None:
    with pytest.raises((NotAnImageError, EmptyImageError)) as info:
        load_image(crafted_png(width, height, zlib.compress(b"")))
    assert_readable(info.value)


def test_a_zero_size_gif_is_refused() -> None:
    data = bytearray(encode(Image.new("P", (4, 4)), "GIF"))
    data[6:10] = bytes(4)  # logical screen 0x0
    frame = data.index(b",")
    data[frame + 5 : frame + 9] = bytes(4)  # first frame 0x0
    with pytest.raises((NotAnImageError, EmptyImageError)) as info:
        load_image(bytes(data))
    assert_readable(info.value)


def test_an_image_without_pixels_is_an_empty_image_error(monkeypatch) -> None:
    # No accepted format lets Pillow open a 0-pixel image, so stand one in for what it opened.
    monkeypatch.setattr(preprocess.Image, "open", lambda *args, **kwargs: Image.new("RGB", (0, 5)))
    raises(encode(Image.new("RGB", (5, 5)), "PNG"), EmptyImageError)


# --- limits ----------------------------------------------------------------------------------


def test_default_limits() -> None:
    limits = ImageLimits()
    assert limits.max_bytes == DEFAULT_MAX_BYTES == 10 * 1024 * 1024
    assert limits.max_pixels == DEFAULT_MAX_PIXELS


@pytest.mark.parametrize(
    "arguments",
    [
        {"max_bytes": 0},
        {"max_bytes": -1},
        {"max_pixels": 0},
        {"max_pixels": -100},
        {"max_bytes": 0, "max_pixels": 0},
    ],
)
def test_limits_must_be_positive(arguments: dict) -> None:
    with pytest.raises(ValueError, match="positive"):
        ImageLimits(**arguments)


def test_limits_are_frozen() -> None:
    limits = ImageLimits()
    with pytest.raises(AttributeError):
        limits.max_bytes = 1  # type: ignore[misc]


def _corrupt_exif_jpeg() -> bytes:
    """A JPEG whose EXIF block claims a tag 1000 bytes long that is not there."""
    out = io.BytesIO()
    tiff = (
        b"II*\x00\x08\x00\x00\x00"
        + b"\x01\x00"
        + b"\x0e\x01\x02\x00\xe8\x03\x00\x00\x00\x10\x00\x00"
        + b"\x00\x00\x00\x00"
    )
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "JPEG", exif=b"Exif\x00\x00" + tiff)
    return out.getvalue()


def test_pillows_warnings_about_a_file_do_not_reach_stderr() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        array = load_image(_corrupt_exif_jpeg())
    assert array.shape == (200, 200, 3)
    assert [w for w in caught if "PIL" in (w.filename or "")] == []


def test_any_exception_from_a_pillow_plugin_is_that_images_error(monkeypatch) -> None:
    def broken_load(self):
        raise IndexError("a plugin's own bug")

    monkeypatch.setattr(ImageFile.ImageFile, "load", broken_load)
    with pytest.raises(CorruptImageError, match="damaged"):
        load_image(encode(noise((16, 16)), "PNG"))
