"""Today's preprocessing, frozen: `load_image` as it was at commit a619972, for the uploads
benchmark to compare with whatever `model.preprocess.load_image` is when it runs.

The algorithm (decode at full size, load, EXIF transpose, any mode to RGB, one bilinear resize
to 200x200) is copied from `git show a619972:model/preprocess.py` with its helpers; only the
error classes and `ImageLimits` come from `model.preprocess`, so that the bot handles this
copy's refusals exactly as it handles the real function's.

Run as a module it is a bot: `python -m benchmarks._uploads_today [bot options]` replaces
`model.preprocess.load_image` (and every module's imported name for it, `model.worker`'s
included) with this copy, then runs `bot.__main__.main()`: the real bot, with today's decoding.
"""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from model.preprocess import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageLimits,
    ImageTooLargeError,
    NotAnImageError,
)

FROZEN_AT = "a619972"
IMAGE_SIZE = (200, 200)  # model.architecture.IMAGE_SIZE at a619972
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
FORMAT_NAMES = "JPEG, PNG, GIF, WebP or BMP"
BACKGROUND = (255, 255, 255)
RESAMPLE = Image.Resampling.BILINEAR
DEFAULT_LIMITS = ImageLimits()
MARK = "benchmarks._uploads_today: serving with today's load_image"  # the bot's log says it


def _file_sizes(size: int, limit: int) -> tuple[str, str]:
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
    if "truncated" in str(error).lower():
        return CorruptImageError("The image is incomplete (the file was cut short).")
    return CorruptImageError("The image is damaged and cannot be read.")


def load_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Today's `model.preprocess.load_image`: a (200, 200, 3) uint8 RGB array."""
    image = open_image(data, limits)
    try:
        return prepare(image)
    except ImageError:
        raise
    except Exception as error:
        raise _damaged(error) from error


def open_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> Image.Image:
    """Decode `data` into an upright RGB Pillow image at its own size (no resize yet)."""
    if len(data) == 0:
        raise NotAnImageError("The file is empty.")
    if len(data) > limits.max_bytes:
        size, limit = _file_sizes(len(data), limits.max_bytes)
        raise ImageTooLargeError(f"The file is {size}; the limit is {limit}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise NotAnImageError(f"That file is not an image I can read ({FORMAT_NAMES}).") from None
    except Image.DecompressionBombError:
        raise ImageTooLargeError("The image has too many pixels.") from None
    except Exception as error:
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
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
            image.seek(0)
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return _to_rgb(image)
    except Image.DecompressionBombError:
        raise ImageTooLargeError("The image has too many pixels.") from None
    except ImageError:
        raise
    except Exception as error:
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


# -- the bot with today's decoding ------------------------------------------------------------


def install() -> list[str]:
    """Replace `model.preprocess.load_image` everywhere it was imported; the modules changed."""
    import model.preprocess

    real = model.preprocess.load_image
    replaced = []
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] not in ("model", "bot", "training", "dataset", "playground"):
            continue
        if getattr(module, "load_image", None) is real:
            module.load_image = load_image  # type: ignore[attr-defined]
            replaced.append(name)
    return sorted(replaced)


def main(argv: list[str] | None = None) -> int:
    import bot.__main__  # imports model.worker (which binds load_image by name) and the rest
    from benchmarks._common import OUT

    replaced = install()
    if "model.preprocess" not in replaced:
        print(f"{MARK}: FAILED, nothing was patched ({replaced})", file=sys.stderr)
        return 2
    print(f"{MARK} (frozen at {FROZEN_AT}), in {', '.join(replaced)}", file=sys.stderr, flush=True)
    args = sys.argv[1:] if argv is None else argv
    if "--env-file" not in args:
        args = ["--env-file", str(OUT / "no-such.env"), *args]
    return bot.__main__.main(args)


if __name__ == "__main__":
    raise SystemExit(main())
