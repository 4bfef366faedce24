"""`model.preprocess`: everything a user can get wrong is refused with a readable `ImageError`,
within the limits it is given."""

from __future__ import annotations

import io
import random
import struct
import time
import warnings
import zlib
from collections.abc import Callable

import pytest
from imagekit import (
    RED,
    assert_readable,
    assert_uint8_image,
    crafted_png,
    encode,
    noise,
    png_chunk,
    raises,
)
from PIL import Image, ImageFile, features

from model import preprocess
from model.preprocess import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageLimits,
    ImageTooLargeError,
    NotAnImageError,
    load_image,
)

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
