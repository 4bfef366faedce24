"""Hostile uploads: small files that decode to large images (16-bit, palettes with
transparency, grey with alpha), for `benchmarks.hostile` and its smoke test.

Each is 100 KB to 1 MB on disk and decodes to nearly what one decode may allocate: the 16-bit
grey and palette PNGs at 6,300x6,300 (39.7 megapixels, just under the 40-megapixel limit, the
kind that took the bot to 4 GB in issue 19), the four-byte ones (48-bit RGB, grey with alpha,
RGBA) at 5,000x5,000 (100 MB decoded, under the 128 MiB bound).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np

SIDE = 6300  # 39,690,000 pixels: under DEFAULT_MAX_PIXELS (40,000,000)
WIDE_SIDE = 5000  # four bytes a pixel: 100 MB, under DEFAULT_MAX_DECODED_BYTES


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png(width: int, height: int, bit_depth: int, colour: int, rows, extra: bytes = b"") -> bytes:
    """A PNG from an iterator of raw rows (filter byte included), compressed as it goes, so a
    large image is written without holding its pixels."""
    compressor = zlib.compressobj(9)
    idat = bytearray()
    for row in rows:
        idat += compressor.compress(row)
    idat += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + extra
        + _chunk(b"IDAT", bytes(idat))
        + _chunk(b"IEND", b"")
    )


def _rows(width: int, height: int, bytes_per_pixel: int, seed: int):
    """Rows of a few stripes, so that the file stays small (about 90 KB at 6300x6300) but is
    no single colour (filter 0, four rows repeated)."""
    rng = np.random.default_rng(seed)
    patterns = []
    for _ in range(4):
        stripe = rng.integers(0, 256, 64 * bytes_per_pixel, dtype=np.uint8).tobytes()
        patterns.append(b"\x00" + (stripe * (width // 64 + 1))[: width * bytes_per_pixel])
    for y in range(height):
        yield patterns[(y // 64) % len(patterns)]


def grey16(side: int = SIDE, seed: int = 0) -> bytes:
    """A 16-bit greyscale PNG (Pillow's I;16)."""
    return _png(side, side, 16, 0, _rows(side, side, 2, seed))


def rgb48(side: int = WIDE_SIDE, seed: int = 0) -> bytes:
    """A 48-bit RGB PNG."""
    return _png(side, side, 16, 2, _rows(side, side, 6, seed))


def palette(side: int = SIDE, seed: int = 0) -> bytes:
    """An 8-bit palette PNG whose first entries are transparent (tRNS)."""
    rng = np.random.default_rng(seed)
    plte = _chunk(b"PLTE", rng.integers(0, 256, 256 * 3, dtype=np.uint8).tobytes())
    trns = _chunk(b"tRNS", bytes(range(0, 256, 16)))
    return _png(side, side, 8, 3, _rows(side, side, 1, seed), plte + trns)


def grey_alpha(side: int = WIDE_SIDE, seed: int = 0) -> bytes:
    """An 8-bit grey PNG with alpha (LA)."""
    return _png(side, side, 8, 4, _rows(side, side, 2, seed))


def rgba(side: int = WIDE_SIDE, seed: int = 0) -> bytes:
    """An 8-bit RGBA PNG."""
    return _png(side, side, 8, 6, _rows(side, side, 4, seed))


KINDS = {
    "16-bit grey PNG": grey16,
    "48-bit RGB PNG": rgb48,
    "palette PNG with transparency": palette,
    "grey + alpha PNG": grey_alpha,
    "RGBA PNG": rgba,
}


def hostile_set(count: int, scale: float = 1.0) -> list[tuple[str, bytes]]:
    """`count` hostile files, (file name, bytes), cycling through `KINDS` with new seeds;
    `scale` shrinks their sides (the smoke test's)."""
    makers = list(KINDS.values())
    files = []
    for number in range(count):
        make = makers[number % len(makers)]
        side = make.__defaults__[0]  # type: ignore[index]
        files.append((f"hostile-{number:03}.png", make(round(side * scale), seed=number)))
    return files


def describe(data: bytes) -> str:
    """'6300x6300 I;16, 91.2 KiB' for a file (the header only)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return f"{image.size[0]}x{image.size[1]} {image.mode}, {len(data) / 1024:.1f} KiB"
