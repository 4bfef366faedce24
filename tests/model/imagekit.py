"""Images made in memory for the tests of `model.preprocess`, and checks of what it gives back."""

from __future__ import annotations

import io
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from model.preprocess import (
    ImageError,
    ImageLimits,
    load_image,
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
