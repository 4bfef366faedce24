"""The decoded-bytes bound of `model.preprocess`: what a decode counts, the strips that keep
palette and 16-bit images small, and the memory the decodes of a process share."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from imagekit import assert_readable, encode
from PIL import Image

from model import preprocess
from model.preprocess import (
    DecodeMemory,
    ImageLimits,
    ImageTooLargeError,
    decode,
    decode_cost,
    load_image,
)


def _palette(size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 16, (size[1], size[0]), dtype=np.uint8), "P")
    image.putpalette(rng.integers(0, 256, 48, dtype=np.uint8).tobytes())
    image.info["transparency"] = bytes(range(0, 256, 16))
    return image


def _grey16(size: tuple[int, int], top: int = 65536) -> Image.Image:
    rng = np.random.default_rng(2)
    return Image.fromarray(rng.integers(0, top, (size[1], size[0]), dtype=np.uint16))


def _keyed(size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 2, (size[1], size[0], 3), dtype=np.uint8) * 255)
    image.info["transparency"] = (255, 255, 255)
    return image


STRIPPED = {
    "P with transparency": _palette,
    "I;16": _grey16,
    "I, 8-bit values": lambda size: _grey16(size, 256).convert("I"),
    "I, 16-bit values": lambda size: _grey16(size).convert("I"),
    "F": lambda size: _grey16(size, 300).convert("F"),
    "1": lambda size: _grey16(size, 2).convert("L").point(lambda v: 255 * v).convert("1"),
    "RGB with a colour key": _keyed,
}


@pytest.mark.parametrize("kind", STRIPPED)
@pytest.mark.parametrize("size", [(1900, 1300), (1237, 4001), (700, 1805)])
def test_a_strip_at_a_time_gives_what_the_whole_image_gave(kind: str, size) -> None:
    """Converting a strip at a time, then averaging, is converting the whole image first."""
    image = STRIPPED[kind](size)
    factor = preprocess._factor(image.size)
    assert factor != (1, 1)
    whole = preprocess._to_rgb(image).reduce(factor)
    strips, _ = preprocess._reduce_in_strips(image, factor)
    assert strips.mode == "RGB" and strips.size == whole.size
    assert np.array_equal(np.asarray(strips), np.asarray(whole))


@pytest.mark.parametrize("kind", ["P with transparency", "I;16"])
def test_a_large_palette_or_16_bit_png_is_reduced_a_strip_at_a_time(monkeypatch, kind) -> None:
    """No conversion of the whole image: every one `load_image` makes is a strip or smaller."""
    image = STRIPPED[kind]((2500, 1900))
    data = encode(image, "PNG")
    converted: list[tuple[int, int]] = []
    real = preprocess._to_rgb

    def spy(image, top=None):
        converted.append(image.size)
        return real(image, top)

    monkeypatch.setattr(preprocess, "_to_rgb", spy)
    array = load_image(data)
    assert array.shape == (200, 200, 3)
    strip = (2500, preprocess._strip_rows(preprocess._factor((2500, 1900))[1]))
    assert converted and max(converted) <= strip


def test_the_cost_counts_pillows_layout_the_strips_and_the_reduced_image() -> None:
    data = encode(_grey16((3000, 2000)), "PNG")
    with Image.open(io.BytesIO(data)) as image:
        cost = decode_cost(image, image.size)
    decoded = 3000 * 2000 * 2  # I;16: two bytes a pixel
    strips = 3000 * preprocess._strip_rows(3) * (4 * 4 + 16)
    reduced = 600 * 667 * 4 * 4  # blocks of 5x3
    assert cost == decoded + strips + reduced


def test_an_image_over_the_decoded_bytes_limit_is_refused_with_a_readable_message() -> None:
    data = encode(Image.new("RGBA", (3000, 3000), (1, 2, 3, 4)), "PNG")
    limits = ImageLimits(max_decoded_bytes=32 * 1024 * 1024)
    with pytest.raises(ImageTooLargeError) as info:
        load_image(data, limits)
    assert_readable(info.value)
    # 3000x3000 in four bytes a pixel, strips of 30 rows, the 600x600 it is reduced to converted
    assert str(info.value) == (
        "The image (3000x3000, RGBA) would take 43 MB of memory to decode; the limit is 32 MB."
    )
    assert load_image(encode(Image.new("P", (3000, 3000)), "PNG"), limits).shape == (200, 200, 3)


def test_decode_gives_the_format_and_the_upright_size() -> None:
    image = Image.new("RGB", (300, 120), (10, 20, 30))
    exif = image.getexif()
    exif[0x0112] = 6  # a quarter turn
    decoded = decode(encode(image, "JPEG", exif=exif))
    assert (decoded.format, decoded.width, decoded.height) == ("JPEG", 120, 300)
    assert decoded.array.shape == (200, 200, 3) and decoded.cost > 0


def test_one_decode_alone_always_goes_whatever_it_costs() -> None:
    memory = DecodeMemory(limit=100)
    with memory.reserve(1000):
        assert memory.held == 1000
    assert memory.held == 0 and memory.peak == 1000


def test_decodes_together_never_hold_more_than_the_limit() -> None:
    """Eight threads of 60 under a limit of 100: one at a time holds, whatever the order."""
    memory = DecodeMemory(limit=100)
    inside, most = [0], [0]
    lock = threading.Lock()
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(20):
            with memory.reserve(60):
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1 and memory.peak == 60 and memory.held == 0


def test_small_decodes_share_the_memory() -> None:
    memory = DecodeMemory(limit=100)
    with memory.reserve(30), memory.reserve(30), memory.reserve(40):
        assert memory.held == 100
    assert memory.held == 0


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
@pytest.mark.parametrize("opaque", [False, True])
def test_alpha_images_are_averaged_premultiplied_a_strip_at_a_time(mode: str, opaque) -> None:
    """What Pillow's own `reduce` gives (premultiplied, through a whole copy), and whether every
    pixel is opaque, read a strip at a time."""
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (1300, 1900, 4), dtype=np.uint8)
    if opaque:
        pixels[..., 3] = 255
    image = Image.fromarray(pixels, "RGBA").convert(mode)
    factor = preprocess._factor(image.size)
    strips, found_opaque = preprocess._reduce_in_strips(image, factor)
    assert np.array_equal(np.asarray(strips), np.asarray(image.reduce(factor)))
    assert found_opaque is opaque
