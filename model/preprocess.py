"""Image bytes -> a 200x200x3 uint8 array: the preprocessing shared by training and serving.

Whatever the bot sees went through exactly the same decode, orientation, colour conversion and
resize as the images the network was trained on. Everything a user can get wrong (not an image,
a truncated file, a decompression bomb) is refused with an `ImageError` whose message can be
shown to them as it is.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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
    """The file is over the byte limit or the image over the pixel limit."""


class EmptyImageError(ImageError):
    """The image has no pixels."""


@dataclass(frozen=True)
class ImageLimits:
    """How large an upload may be, in bytes and in pixels (width x height)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0:
            raise ValueError("image limits must be positive")


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

    Raises an `ImageError` subclass for anything that is not a usable image.
    """
    image = open_image(data, limits)
    try:
        return prepare(image)
    except ImageError:
        raise
    except Exception as error:  # any plugin's failure is this image's problem, not a crash
        raise _damaged(error) from error


def open_image(data: bytes, limits: ImageLimits = ImageLimits()) -> Image.Image:
    """Decode `data` into an upright RGB Pillow image at its own size (no resize yet)."""
    if len(data) == 0:
        raise NotAnImageError("The file is empty.")
    if len(data) > limits.max_bytes:
        size, limit = _file_sizes(len(data), limits.max_bytes)
        raise ImageTooLargeError(f"The file is {size}; the limit is {limit}.")
    try:
        with warnings.catch_warnings():
            # Pillow warns, then raises, on decompression bombs; we check the size ourselves.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Pillow's own warnings (e.g. "Corrupt EXIF data") are about the file, not for stderr.
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Pillow's own warnings (e.g. "Corrupt EXIF data") are about the file, not for stderr.
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
            image.seek(0)  # the first frame of an animation
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # no copy when already upright
            return _to_rgb(image)
    except Image.DecompressionBombError:
        raise ImageTooLargeError("The image has too many pixels.") from None
    except ImageError:
        raise
    except Exception as error:  # EOFError, OSError, ... or whatever a Pillow plugin raises
        raise _damaged(error) from error


def prepare(image: Image.Image) -> np.ndarray:
    """Resize an RGB image to the network's input size and return it as a uint8 array."""
    if image.mode != "RGB":
        image = _to_rgb(image)
    if image.size != IMAGE_SIZE[::-1]:
        image = image.resize(IMAGE_SIZE[::-1], RESAMPLE)
    array = np.asarray(image, dtype=np.uint8)
    if array.shape != (*IMAGE_SIZE, 3):  # pragma: no cover - Pillow guarantees it
        raise CorruptImageError("The image could not be converted to RGB.")
    return array


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, compositing transparency on `BACKGROUND`."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit (and 32-bit integer) greyscale: scale to 8 bits instead of clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
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
