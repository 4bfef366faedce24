"""Image bytes -> a 200x200x3 uint8 array: the preprocessing shared by training and serving.

Whatever the bot sees went through exactly the same decode, orientation, colour conversion and
resize as the images the network was trained on; a large image (a phone photo, a screenshot) is
made smaller first, in the decoder itself for a JPEG, the same way in both. Everything a user
can get wrong (not an image, a truncated file, a decompression bomb) is refused with an
`ImageError` whose message can be shown to them as it is.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

from model.architecture import IMAGE_SIZE

# The image formats accepted everywhere (the bot, the CLI, training, the playground): Pillow's
# format name -> the MIME type and file extensions that go with it.
IMAGE_FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "JPEG": ("image/jpeg", (".jpg", ".jpeg")),
    "PNG": ("image/png", (".png",)),
    "GIF": ("image/gif", (".gif",)),
    "WEBP": ("image/webp", (".webp",)),
    "BMP": ("image/bmp", (".bmp",)),
}
ACCEPTED_FORMATS = tuple(IMAGE_FORMATS)
IMAGE_TYPES: dict[str, str] = {  # extension -> MIME type
    extension: mime for mime, extensions in IMAGE_FORMATS.values() for extension in extensions
}
DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # the largest image accepted (MAX_IMAGE_BYTES)
DEFAULT_MAX_PIXELS = 40_000_000
# The most one decode may allocate (`decode_cost`), and what all the decodes of a process may
# hold at once (`DECODE_MEMORY`): a 6300x6300 16-bit PNG of 90 KB is 79 MB decoded, not 1 GB.
DEFAULT_MAX_DECODED_BYTES = 128 * 1024 * 1024
DEFAULT_DECODE_MEMORY = 128 * 1024 * 1024
FORMAT_NAMES = "JPEG, PNG, GIF, WebP or BMP"  # for people
# Transparent pixels are composited on this colour, in training as in serving.
BACKGROUND = (255, 255, 255)
RESAMPLE = Image.Resampling.BILINEAR


class ImageError(ValueError):
    """An image that cannot be used; the message is fit to show to the person who sent it."""


class NotAnImageError(ImageError):
    """The bytes are not an image in a format we read."""


class CorruptImageError(ImageError):
    """The file looks like an image but cannot be decoded (truncated or damaged)."""


class ImageTooLargeError(ImageError):
    """The file is over the byte limit, or the image over the pixel or decoded-bytes limit."""


class EmptyImageError(ImageError):
    """The image has no pixels."""


@dataclass(frozen=True)
class ImageLimits:
    """How large an upload may be: in bytes, in pixels (width x height), and in the bytes its
    decode may allocate (`decode_cost`)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0 or self.max_decoded_bytes <= 0:
            raise ValueError("image limits must be positive")


class DecodeMemory:
    """The bytes that the decodes of one process hold at once (`decode_cost` of each, across
    threads): a decode waits until its cost fits beside the others'; one alone always goes.

    `peak` is the most ever held, for tests and benchmarks.
    """

    def __init__(self, limit: int = DEFAULT_DECODE_MEMORY) -> None:
        self.limit = limit
        self.held = 0
        self.peak = 0
        self._room = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        with self._room:
            self._room.wait_for(lambda: self.held == 0 or self.held + size <= self.limit)
            self.held += size
            self.peak = max(self.peak, self.held)
        try:
            yield
        finally:
            with self._room:
                self.held -= size
                self._room.notify_all()


DECODE_MEMORY = DecodeMemory()  # every decode of this process (the bot's threads, the trainer's)


@dataclass(frozen=True)
class Decoded:
    """A decoded upload: the network's input, the file's format and its upright size."""

    array: np.ndarray
    format: str  # Pillow's name (MPO for a phone's multi-picture JPEG)
    width: int
    height: int
    cost: int  # what the decode was allowed to allocate (`decode_cost`)


def _file_sizes(size: int, limit: int) -> tuple[str, str]:
    """`size` and `limit` as readable sizes, exact in bytes when rounding would make them equal."""

    def readable(n: int) -> str:
        if n >= 1024 * 1024:
            return f"{n / (1024 * 1024):.1f} MB"
        if n >= 1024:
            return f"{n / 1024:.1f} KB"
        return f"{n:,} bytes"

    if readable(size) == readable(limit):
        return f"{size:,} bytes", f"{limit:,} bytes"
    return readable(size), readable(limit)


def _damaged(error: BaseException) -> CorruptImageError:
    """A message for an image Pillow could not decode, without Pillow's own (reprs and all)."""
    if "truncated" in str(error).lower():
        return CorruptImageError("The image is incomplete (the file was cut short).")
    return CorruptImageError("The image is damaged and cannot be read.")


def load_image(data: bytes, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Decode `data` and return the network's input: a (200, 200, 3) uint8 RGB array.

    A large image is made smaller before anything else is done to it: a JPEG is decoded at 1/2,
    1/4 or 1/8 scale by libjpeg itself (`DRAFT_MARGIN`), any other format is averaged over
    blocks of pixels (`REDUCE_MARGIN`), a palette, 16-bit or colour-keyed one a strip of rows
    at a time; the orientation and the colour conversion are applied to the small image, and
    the final bilinear resize to what is left. An image that is not reduced (each side under
    1,200 pixels, and a JPEG's shorter side under 600) gives the same array as
    `prepare(open_image(data))`, a 200x200 image its own pixels. What the decode may allocate
    is bounded (`decode_cost`, `limits.max_decoded_bytes`, `DECODE_MEMORY`). Raises an
    `ImageError` subclass for anything that is not a usable image.
    """
    return decode(data, limits).array


def decode(data: bytes, limits: ImageLimits = ImageLimits()) -> Decoded:
    """`load_image` with what the header said: the format and the upright size."""
    image = _open(data, limits)
    with _reading():
        image.seek(0)  # the first frame of an animation
        width, height = image.size
        box = _draft(image)
        cost = _check_cost(image, decode_cost(image, (width, height)), limits, (width, height))
        with DECODE_MEMORY.reserve(cost):
            image.load()
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
            small, box = _reduce(image, box)
            small, box = _transpose(small, box, orientation)
            array = _resize(_to_rgb(small), box)
    if orientation in (5, 6, 7, 8):  # a quarter turn
        width, height = height, width
    return Decoded(array, image.format or "", width, height, cost)


def open_image(data: bytes, limits: ImageLimits = ImageLimits()) -> Image.Image:
    """Decode `data` into an upright RGB Pillow image at its own size (no resize yet): the
    whole file, every pixel (`load_image` decodes a large image smaller)."""
    image = _open(data, limits)
    with _reading():
        image.seek(0)  # the first frame of an animation
        cost = decode_cost(image, image.size)
        if image.mode != "RGB" or "transparency" in image.info:  # converted at full size
            cost += image.size[0] * image.size[1] * (_COPIES * 4 + _FLOAT_BYTES)
        with DECODE_MEMORY.reserve(_check_cost(image, cost, limits)):
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # no copy when already upright
            return _to_rgb(image)


def prepare(image: Image.Image) -> np.ndarray:
    """Resize an RGB image to the network's input size and return it as a uint8 array."""
    if image.mode != "RGB":
        image = _to_rgb(image)
    return _resize(image, None)


def _open(data: bytes, limits: ImageLimits) -> ImageFile.ImageFile:
    """Read the header of `data` (no pixels yet) and check it against `limits`."""
    if len(data) == 0:
        raise NotAnImageError("The file is empty.")
    if len(data) > limits.max_bytes:
        size, limit = _file_sizes(len(data), limits.max_bytes)
        raise ImageTooLargeError(f"The file is {size}; the limit is {limit}.")
    try:
        with _quiet():
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise NotAnImageError(f"That file is not an image I can read ({FORMAT_NAMES}).") from None
    except Image.DecompressionBombError:
        raise ImageTooLargeError("The image has too many pixels.") from None
    except Exception as error:  # OSError, SyntaxError, ValueError, or a plugin's own
        raise _damaged(error) from error

    width, height = image.size
    if width <= 0 or height <= 0:
        raise EmptyImageError("The image has no pixels.")
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"The image is {width}x{height} ({width * height:,} pixels); the limit is "
            f"{limits.max_pixels:,} pixels."
        )
    return image


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Pillow's warnings about a file (decompression bombs, which we check ourselves, and e.g.
    "Corrupt EXIF data") are about that file, not for stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
        yield


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """Decoding an opened image: whatever Pillow raises becomes this image's `ImageError`."""
    try:
        with _quiet():
            yield
    except Image.DecompressionBombError:
        raise ImageTooLargeError("The image has too many pixels.") from None
    except ImageError:
        raise
    except Exception as error:  # EOFError, OSError, ... or whatever a Pillow plugin raises
        raise _damaged(error) from error


# A reduced image keeps at least this many times the network's input in each dimension, so that
# the final bilinear resize still averages a few of its pixels into each of the network's: the
# 200x200 arrays then differ from those of the whole image by a fraction of a grey level on
# photographs (tests/model/test_preprocess_parity.py). A JPEG's margin is the smaller, so that a
# 12-megapixel photo (4032x3024) is decoded at 1/8 scale (504x378), not 1/4; averaging blocks of
# other formats costs little beside their decoding, and keeps more.
DRAFT_MARGIN = 1.5
REDUCE_MARGIN = 3
_DRAFT_KEEP = (round(DRAFT_MARGIN * IMAGE_SIZE[1]), round(DRAFT_MARGIN * IMAGE_SIZE[0]))  # w, h
_REDUCE_KEEP = (round(REDUCE_MARGIN * IMAGE_SIZE[1]), round(REDUCE_MARGIN * IMAGE_SIZE[0]))
# Modes that can be averaged before they are converted to RGB, with the same result: grey
# becomes RGB by copying, alpha is averaged premultiplied (then composited on the background),
# CMYK nearly so. Palettes, colour keys, 1-bit, 16-bit and float images are converted first.
_REDUCIBLE = ("RGB", "L", "RGBA", "LA", "CMYK")

Box = tuple[float, float, float, float]

# What Pillow holds a pixel in: one byte for 1, L and P, two for 16-bit grey, four for every
# other mode (RGB is stored as RGBX, LA as four bytes too).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_COPIES = 4  # converting a block to RGB: the block as RGBA, the background, the composite, RGB
_FLOAT_BYTES = 16  # 16-bit and float grey are scaled in float64: the values and one result
STRIP_ROWS = 32  # rows of a palette, 16-bit or colour-keyed image converted at a time
_WEBP_COPIES = 3  # libwebp decodes into its own canvas, hands a copy over, Pillow copies it in


def decode_cost(image: Image.Image, full_size: tuple[int, int]) -> int:
    """The bytes `load_image` may allocate for an opened (not yet loaded) `image`, after any
    draft (`full_size` is the size before): the decoded pixels in Pillow's own layout, the
    decoder's buffers (libwebp's copies, a progressive JPEG's coefficients at full size), the
    strips converted before reducing, and the reduced image's conversion to RGB."""
    width, height = image.size
    decoded = width * height * _PIXEL_BYTES.get(image.mode, 4)
    if image.format == "WEBP":
        decoded *= _WEBP_COPIES
    if image.format in ("JPEG", "MPO") and image.info.get("progressive"):
        decoded += full_size[0] * full_size[1] * len(image.getbands()) * 2  # 16-bit coefficients
    factor = _factor(image.size)
    strips = 0
    if factor != (1, 1) and _by_strips(image):
        rows = min(height, _strip_rows(factor[1]))
        strips = rows * width * (_COPIES * 4 + _FLOAT_BYTES)
    reduced = -(-width // factor[0]) * -(-height // factor[1])
    return decoded + strips + reduced * _COPIES * 4


def _check_cost(
    image: Image.Image, cost: int, limits: ImageLimits, size: tuple[int, int] | None = None
) -> int:
    """`cost`, or an `ImageTooLargeError` when it is over `limits.max_decoded_bytes`."""
    if cost > limits.max_decoded_bytes:
        width, height = size or image.size
        raise ImageTooLargeError(
            f"The image ({width}x{height}, {image.mode}) would take "
            f"{cost / 1048576:.0f} MB of memory to decode; the limit is "
            f"{limits.max_decoded_bytes / 1048576:.0f} MB."
        )
    return cost


def _draft(image: ImageFile.ImageFile) -> Box | None:
    """For a large JPEG, ask libjpeg to decode at 1/2, 1/4 or 1/8 scale, the smallest that keeps
    `_DRAFT_KEEP` pixels; the whole image's extent in decoded pixels, or None if unchanged."""
    if image.format not in ("JPEG", "MPO"):
        return None
    if image.size[0] < 2 * _DRAFT_KEEP[0] or image.size[1] < 2 * _DRAFT_KEEP[1]:
        return None  # no scale would apply
    drafted = image.draft(None, _DRAFT_KEEP)  # decodes nothing yet; keeps the mode (L, RGB, CMYK)
    return drafted[1] if drafted is not None else None


def _factor(size: tuple[int, int]) -> tuple[int, int]:
    """The blocks `_reduce` averages an image of `size` over, keeping `_REDUCE_KEEP`."""
    return (max(1, size[0] // _REDUCE_KEEP[0]), max(1, size[1] // _REDUCE_KEEP[1]))


def _reducible(image: Image.Image) -> bool:
    """Whether `image` can be averaged as it is (else a strip at a time, converted first)."""
    return image.mode in _REDUCIBLE and "transparency" not in image.info


def _strip_rows(factor: int) -> int:
    """Rows per strip: a whole number of blocks, so strips average as the whole image would."""
    return factor * max(1, STRIP_ROWS // factor)


def _reduce(image: Image.Image, box: Box | None) -> tuple[Image.Image, Box | None]:
    """Average `image` over blocks of pixels, keeping `_REDUCE_KEEP`; `box` follows.

    A palette, a colour key, 1-bit, 16-bit or float image is converted to RGB a strip of rows
    at a time and each strip averaged, which gives what converting the whole image first gave,
    without holding it converted; RGBA and LA are averaged premultiplied a strip at a time too
    (Pillow's `reduce` premultiplies a whole copy)."""
    factor = _factor(image.size)
    if factor == (1, 1):
        return (image if _reducible(image) else _to_rgb(image)), box
    width, height = image.size
    if _by_strips(image):
        reduced, opaque = _reduce_in_strips(image, factor)
    else:
        reduced, opaque = image.reduce(factor), False
    if opaque:
        reduced = reduced.convert(image.mode[:-1])  # opaque (most screenshots): no compositing
    left, top, right, bottom = box or (0, 0, width, height)
    return reduced, (left, top, right / factor[0], bottom / factor[1])


def _by_strips(image: Image.Image) -> bool:
    """Whether `_reduce` averages `image` a strip at a time (else all at once, in place)."""
    return not _reducible(image) or image.mode in ("RGBA", "LA")


def _reduce_in_strips(image: Image.Image, factor: tuple[int, int]) -> tuple[Image.Image, bool]:
    """`image.reduce(factor)` for RGBA and LA, else `_to_rgb(image).reduce(factor)`,
    `_strip_rows` rows at a time; and whether every pixel's alpha is 255 (read per strip:
    `getextrema` copies each band of what it reads)."""
    width, height = image.size
    rows = _strip_rows(factor[1])
    convert = not _reducible(image)
    top = _grey_top(image) if convert else None
    size = (-(-width // factor[0]), -(-height // factor[1]))
    reduced = Image.new("RGB" if convert else image.mode, size)
    opaque = not convert
    for y in range(0, height, rows):
        strip = image.crop((0, y, width, min(height, y + rows)))
        if convert:
            strip = _to_rgb(strip, top)
        elif opaque:
            opaque = strip.getchannel("A").getextrema() == (255, 255)
        reduced.paste(strip.reduce(factor), (0, y // factor[1]))
    return reduced, opaque


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _transpose(
    image: Image.Image, box: Box | None, orientation: int
) -> tuple[Image.Image, Box | None]:
    """Turn `image` upright for its EXIF `orientation` (as `ImageOps.exif_transpose` does), and
    `box` with it."""
    method = _TRANSPOSE.get(orientation)
    if method is None:
        return image, box
    width, height = image.size
    turned = image.transpose(method)
    if box is None:
        return turned, None
    left, top, right, bottom = box
    if method in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.ROTATE_180):
        left, right = width - right, width - left
    if method in (Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180):
        top, bottom = height - bottom, height - top
    if method is Image.Transpose.TRANSPOSE:  # x <-> y
        left, top, right, bottom = top, left, bottom, right
    elif method is Image.Transpose.ROTATE_90:  # anticlockwise: (x, y) -> (y, width - x)
        left, top, right, bottom = top, width - right, bottom, width - left
    elif method is Image.Transpose.ROTATE_270:  # clockwise: (x, y) -> (height - y, x)
        left, top, right, bottom = height - bottom, left, height - top, right
    elif method is Image.Transpose.TRANSVERSE:  # (x, y) -> (height - y, width - x)
        left, top, right, bottom = height - bottom, width - right, height - top, width - left
    return turned, (left, top, right, bottom)


def _resize(image: Image.Image, box: Box | None) -> np.ndarray:
    """The network's input from an RGB image whose extent is `box` (all of it when None)."""
    if box == (0, 0, *image.size):
        box = None
    if image.size != IMAGE_SIZE[::-1] or box is not None:
        image = image.resize(IMAGE_SIZE[::-1], RESAMPLE, box=box)
    array = np.asarray(image, dtype=np.uint8)
    if array.shape != (*IMAGE_SIZE, 3):  # pragma: no cover - Pillow guarantees it
        raise CorruptImageError("The image could not be converted to RGB.")
    return array


_GREY16 = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _grey_top(image: Image.Image) -> float:
    """The value a 16-bit or 32-bit grey `image` scales to 255: 65535, or 255 for an "I" image
    whose values all fit in 8 bits (read from its extrema, no copy)."""
    if image.mode == "I" and image.getextrema()[1] <= 255:
        return 255.0
    return 65535.0


def _to_rgb(image: Image.Image, top: float | None = None) -> Image.Image:
    """Convert any Pillow mode to RGB, compositing transparency on `BACKGROUND`; 16-bit grey
    scaled so that `top` (by default `_grey_top`) is white."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _GREY16:
        # 16-bit (and 32-bit integer) greyscale: scale to 8 bits instead of clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        top = _grey_top(image) if top is None else top
        grey = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float64), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
