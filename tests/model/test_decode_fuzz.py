"""Hostile files through the serving decode: every one gives the network's input or an
`ImageError`, never another exception, and never more than the decoded-bytes bound.

Generated from one seed (a few hundred cases, a few seconds): PNG, JPEG, GIF, WebP, BMP and
TIFF files in every mode Pillow writes, palettes with transparency, animations of many frames,
headers patched to huge or zero sizes, truncated and flipped bytes.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from imagekit import crafted_png, png_chunk
from PIL import Image

from model import preprocess
from model.preprocess import DECODE_MEMORY, ImageError, ImageLimits, decode

SEED = 19
CASES = 300
# Small enough that a hostile header is refused by the accounting, not decoded for seconds.
LIMITS = ImageLimits(max_decoded_bytes=48 * 1024 * 1024)
ROOT = Path(__file__).resolve().parents[2]

MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I", "F", "CMYK")
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _picture(rng: np.random.Generator, mode: str, size: tuple[int, int]) -> Image.Image:
    """A small image in `mode`, noise over the mode's range, a palette with transparency."""
    width, height = size
    if mode in ("I;16", "I"):
        values = rng.integers(0, 65536, (height, width), dtype=np.uint16)
        return Image.fromarray(values).convert(mode) if mode == "I" else Image.fromarray(values)
    if mode == "F":
        return Image.fromarray(rng.uniform(-50, 400, (height, width)).astype(np.float32))
    rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    image = Image.fromarray(rgba, "RGBA")
    if mode == "P":
        image = image.convert("RGB").quantize(int(rng.integers(2, 257)))
        image.info["transparency"] = int(rng.integers(0, 2))
        return image
    return image.convert(mode)


def _saved(rng: np.random.Generator) -> bytes:
    """A real file: a random mode in a random format (what the format cannot hold, converted)."""
    fmt = str(rng.choice(FORMATS))
    mode = str(rng.choice(MODES))
    image = _picture(rng, mode, (int(rng.integers(1, 90)), int(rng.integers(1, 90))))
    options: dict[str, object] = {}
    if fmt == "JPEG" and mode not in ("L", "RGB", "CMYK"):
        image = image.convert("RGB")
    elif fmt == "JPEG":
        options["progressive"] = bool(rng.integers(0, 2))
    elif fmt == "GIF" and mode not in ("L", "P"):
        image = image.convert("P")
    elif fmt == "WEBP" and mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA")
    elif fmt == "BMP" and mode not in ("1", "L", "P", "RGB", "RGBA"):
        image = image.convert("RGB")
    elif fmt == "PNG" and mode in ("F", "CMYK", "PA"):
        image = image.convert("RGBA")
    try:
        return _encode(image, fmt, **options)
    except (OSError, ValueError):  # a mode this format cannot hold (Pillow's rules vary)
        return _encode(image.convert("RGB"), fmt, **options)


def _animation(rng: np.random.Generator) -> bytes:
    """A GIF or WebP of many frames."""
    frames = [_picture(rng, "RGB", (24, 24)) for _ in range(int(rng.integers(2, 120)))]
    fmt = "GIF" if rng.integers(0, 2) else "WEBP"
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=10)


def _large(rng: np.random.Generator) -> bytes:
    """A large, compressible PNG or GIF in a mode converted a strip at a time (palette, 16-bit,
    1-bit) or averaged as it is (grey with alpha), reduced on the way in."""
    mode = str(rng.choice(["P", "I;16", "1", "LA"]))
    size = (int(rng.integers(1200, 2600)), int(rng.integers(40, 2600)))
    small = _picture(rng, mode, (16, 16))
    image = small.resize(size, Image.Resampling.NEAREST)
    if mode == "P":
        image.info["transparency"] = small.info["transparency"]
    return _encode(image, "GIF" if mode == "P" and rng.integers(0, 2) else "PNG")


def _hostile_png(rng: np.random.Generator) -> bytes:
    """A crafted PNG header: any size up to 2**31 - 1 a side, any depth and colour type (valid
    or not), a palette with transparency, and an IDAT that may be short, long or none."""
    width = int(rng.choice([0, 1, 7, 6300, 40_000, 2**31 - 1, int(rng.integers(1, 70_000))]))
    height = int(rng.choice([0, 1, 9, 6300, 40_000, 2**31 - 1, int(rng.integers(1, 70_000))]))
    colour = int(rng.choice([0, 2, 3, 4, 6, 5]))
    bit_depth = int(rng.choice([1, 2, 4, 8, 16, 3]))
    rows = min(height, 64)
    row_bytes = min(width, 4096) * 8 + 1
    raw = bytes(rng.integers(0, 256, rows * row_bytes // int(rng.integers(1, 8)), dtype=np.uint8))
    data = crafted_png(width, height, zlib.compress(raw), bit_depth=bit_depth, colour=colour)
    if colour == 3:  # the palette (and its transparency) between IHDR and IDAT
        extra = png_chunk(b"PLTE", bytes(rng.integers(0, 256, 48, dtype=np.uint8)))
        extra += png_chunk(b"tRNS", bytes(range(int(rng.integers(1, 17)))))
        data = data[:33] + extra + data[33:]
    return data


def _patched_size(data: bytes, rng: np.random.Generator) -> bytes:
    """`data` with its declared size made huge or zero where the format keeps it in a fixed
    place (PNG's IHDR, GIF's screen and first image, BMP's header, a JPEG's SOF)."""
    side = int(rng.choice([0, 65_535, 20_000, 6_400]))
    blob = bytearray(data)
    if blob.startswith(b"\x89PNG"):
        blob[16:24] = struct.pack(">II", side, side)
    elif blob.startswith(b"GIF"):
        blob[6:10] = struct.pack("<HH", side, side)
    elif blob.startswith(b"BM"):
        blob[18:26] = struct.pack("<ii", side, side)
    elif blob.startswith(b"\xff\xd8"):
        at = blob.find(b"\xff\xc0")
        if at < 0:
            at = blob.find(b"\xff\xc2")
        if at > 0:
            blob[at + 5 : at + 9] = struct.pack(">HH", side & 0xFFFF, side & 0xFFFF)
    return bytes(blob)


def _damaged(data: bytes, rng: np.random.Generator) -> bytes:
    """`data` cut short, or with a few bytes flipped after its signature."""
    if rng.integers(0, 2) or len(data) < 32:
        return data[: int(rng.integers(1, max(2, len(data))))]
    blob = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        blob[int(rng.integers(16, len(blob)))] ^= int(rng.integers(1, 256))
    return bytes(blob)


def cases() -> Iterator[tuple[str, bytes]]:
    rng = np.random.default_rng(SEED)
    makers: list[tuple[str, Callable[[], bytes]]] = [
        ("saved", lambda: _saved(rng)),
        ("animation", lambda: _animation(rng)),
        ("large", lambda: _large(rng)),
        ("hostile PNG header", lambda: _hostile_png(rng)),
        ("huge declared size", lambda: _patched_size(_saved(rng), rng)),
        ("damaged", lambda: _damaged(_saved(rng), rng)),
    ]
    weights = np.array([0.3, 0.05, 0.05, 0.2, 0.2, 0.2])
    for number in range(CASES):
        kind, make = makers[int(rng.choice(len(makers), p=weights))]
        yield f"{number}: {kind}", make()


def test_every_hostile_file_decodes_or_is_refused_within_the_bound() -> None:
    outcomes = {"decoded": 0, "refused": 0}
    large = []
    for name, data in cases():
        try:
            decoded = decode(data, LIMITS)
        except ImageError as error:
            outcomes["refused"] += 1
            message = str(error)
            assert message and "Traceback" not in message and "/" not in message, (name, message)
        except Exception as error:  # the point of the test
            pytest.fail(f"case {name}: {type(error).__name__}: {error}")
        else:
            outcomes["decoded"] += 1
            large += [name] if name.endswith("large") else []
            assert decoded.array.shape == (200, 200, 3), name
            assert decoded.array.dtype == np.uint8, name
            assert 0 < decoded.cost <= LIMITS.max_decoded_bytes, name
        assert DECODE_MEMORY.held == 0, name  # every reservation given back
    # The generator reaches both sides: not everything refused, not everything decoded; the
    # large valid images (reduced a strip at a time) all decode.
    assert outcomes["decoded"] > CASES // 5 and outcomes["refused"] > CASES // 5, outcomes
    assert len(large) == sum(name.endswith("large") for name, _ in cases()) > 5


def test_a_huge_declared_size_is_refused_by_the_bound_before_decoding(monkeypatch) -> None:
    loads = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(self.size))
    data = crafted_png(6000, 6000, zlib.compress(b"\0" * 100), bit_depth=16, colour=6)
    with pytest.raises(preprocess.ImageTooLargeError) as info:
        decode(data, LIMITS)
    assert loads == []
    assert str(info.value).startswith("The image (6000x6000, RGBA) would take ")
    assert str(info.value).endswith("; the limit is 48 MB.")


# A child process decodes one hostile file (6300x6300, about 40 megapixels, a few hundred KB)
# with the default limits and prints its peak RSS growth: ru_maxrss is the process's own.
_CHILD = """
import json, resource, struct, sys, zlib
import numpy as np
from model.preprocess import ImageError, decode
depth, colour, side = int(sys.argv[1]), int(sys.argv[2]), 6300
channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
width = side * channels * depth // 8
row = b"\\0" + (bytes(range(256)) * (width // 256 + 1))[:width]
idat = zlib.compress(row * side, 9)
def chunk(kind, body):
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
header = chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, depth, colour, 0, 0, 0))
extra = b""
if colour == 3:
    extra = chunk(b"PLTE", bytes(range(256)) * 3) + chunk(b"tRNS", bytes(range(0, 256, 16)))
data = b"\\x89PNG\\r\\n\\x1a\\n" + header + extra + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
del idat
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
try:
    cost = decode(data).cost
except ImageError as error:
    cost = str(error)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"cost": cost, "growth": after - before, "size": len(data)}))
"""


@pytest.mark.parametrize(
    ("depth", "colour", "what"),
    [(16, 0, "16-bit grey"), (8, 3, "palette with transparency"), (16, 6, "64-bit RGBA")],
)
def test_a_small_hostile_file_stays_under_the_bound(depth: int, colour: int, what: str) -> None:
    """Before the bound, the 16-bit one took 1 GB and the palette one 645 MB (issue 19)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(depth), str(colour)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["size"] < 2 * 1024 * 1024, result  # a small file
    limit = ImageLimits().max_decoded_bytes
    assert result["growth"] <= limit, (what, result)
    if isinstance(result["cost"], int):  # decoded: what it took is within what it counted
        assert result["growth"] <= result["cost"], (what, result)
    else:  # refused (RGBA at 6300x6300 is 151 MB decoded): before decoding
        assert "would take" in result["cost"], (what, result)
        assert result["growth"] < 16 * 1024 * 1024, (what, result)
