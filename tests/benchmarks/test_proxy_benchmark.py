"""The proxy benchmark's pieces (fast: small images, no TensorFlow): the resized answer of each
upload is the WebP the bot asks for, upright for EXIF-rotated photos; small files stay as they
are."""

from __future__ import annotations

import io

from PIL import Image

from benchmarks import proxy


def jpeg(size: tuple[int, int], orientation: int = 1) -> bytes:
    image = Image.new("RGB", size, (30, 90, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def size_and_format(data: bytes) -> tuple[tuple[int, int], str | None]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size, image.format


def test_a_large_photo_is_paired_with_the_webp_the_bot_asks_for() -> None:
    pair = proxy.pair_of("photo", "a.jpg", jpeg((1200, 900)))
    assert pair.resized_size == (533, 400)
    assert size_and_format(pair.resized) == ((533, 400), "WEBP")
    assert len(pair.resized) < len(pair.original)


def test_an_exif_rotated_photo_is_resized_upright() -> None:
    pair = proxy.pair_of("photo", "r.jpg", jpeg((1200, 900), orientation=6))
    assert pair.resized_size == (400, 533)
    assert size_and_format(pair.resized) == ((400, 533), "WEBP")


def test_a_small_image_is_downloaded_as_it_is() -> None:
    data = jpeg((498, 280))
    pair = proxy.pair_of("gif", "s.jpg", data)
    assert pair.resized_size is None and pair.resized == pair.original == data
