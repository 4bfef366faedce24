"""`load_image`'s fast path against the whole-image decode it replaced: what reducing a large
image first (a JPEG decoded at 1/2, 1/4 or 1/8 scale, other formats averaged over blocks) does
to the network's input and to the shipped model's scores.

`reference_load_image` is the algorithm before the fast path, as frozen at a619972 in
`benchmarks/_uploads_today.py` (the copy the uploads benchmark compares against too), not in the
package: every pixel decoded, turned upright, converted to RGB, one bilinear resize to 200x200.
The inputs are generated (photo-like JPEGs at phone sizes, EXIF-rotated copies, PNG screenshots,
GIF, WebP); matplotlib's sample photo and the Debian wallpapers are added where installed.
Run with `-s` to see every figure (mean, percentiles and largest pixel difference).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from benchmarks._uploads_today import load_image as reference_load_image
from model.preprocess import load_image

FAST = Image.Quantize.FASTOCTREE  # for palette images: the default quantizer takes seconds

# At most one grey level (of 255) on average between the old and the new network input, and
# 0.02 between the shipped model's scores.
MAX_MEAN_PIXEL_DIFFERENCE = 1.0
MAX_MEAN_SCORE_DIFFERENCE = 0.02

PHONE = (4032, 3024)  # 12 megapixels, 4:3: the common phone photo
WALLPAPER_FOLDERS = (Path("/usr/share/backgrounds"), Path("/usr/share/wallpapers"))
WALLPAPERS_USED = 10  # of those installed, evenly spread: decoding all of them takes a minute


# --- generated inputs ------------------------------------------------------------------------


@functools.cache
def photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Photo-like: a smooth colour field, discs and boxes with sharp edges, lines, sensor noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(field).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(width // 50, width // 6))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.rectangle((x, y, x + r, y + r // 2), fill=colour)
    for _ in range(60):
        ends = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(2)]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.line(ends, fill=colour, width=int(rng.integers(2, 12)))
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + rng.standard_normal(pixels.shape, dtype=np.float32) * 6
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def screenshot(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A chat app: flat panels, lines of anti-aliased text, avatars, a posted photo."""
    height = size[1]
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, (54, 57, 63))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 72, height), fill=(32, 34, 37))
    draw.rectangle((72, 0, 312, height), fill=(47, 49, 54))
    font = ImageFont.load_default(size=16)
    words = ("jedi", "sith", "lightsaber", "force", "padawan", "master", "the", "quick", "fox")
    for i in range(height // 64):
        colour = tuple(int(c) for c in rng.integers(60, 250, 3))
        draw.ellipse((12, 12 + 64 * i, 60, 60 + 64 * i), fill=colour)
        draw.text((90, 20 + 28 * i), "# " + words[i % len(words)], fill=(142, 146, 151), font=font)
    y, message = 20, 0
    while y < height - 80:
        colour = tuple(int(c) for c in rng.integers(60, 250, 3))
        draw.ellipse((330, y, 370, y + 40), fill=colour)
        draw.text((386, y), f"User{int(rng.integers(1000))}", fill=(255, 255, 255), font=font)
        lines = int(rng.integers(1, 4))
        for line in range(lines):
            text = " ".join(rng.choice(words, int(rng.integers(3, 22))))
            draw.text((386, y + 22 + 22 * line), text, fill=(220, 221, 222), font=font)
        y, message = y + 22 * (lines + 1) + 14, message + 1
        if message == 3 and y < height - 360:  # someone posted a photo
            image.paste(photo((480, 320), seed=seed + 1), (386, y))
            y += 334
    return image


def encode(image: Image.Image, fmt: str, orientation: int = 1, **options: object) -> bytes:
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def with_transparent_corners(image: Image.Image) -> Image.Image:
    """A window capture: rounded corners and a soft shadow, transparent around it."""
    alpha = Image.new("L", image.size, 0)
    inset = min(image.size) // 40
    box = (inset, inset, image.size[0] - inset, image.size[1] - inset)
    ImageDraw.Draw(alpha).rounded_rectangle(box, radius=4 * inset, fill=255)
    rgba = image.convert("RGBA")
    rgba.putalpha(alpha)
    return rgba


def animated(frames: list[Image.Image], fmt: str, **options: object) -> bytes:
    return encode(
        frames[0], fmt, save_all=True, append_images=frames[1:], duration=80, loop=0, **options
    )


def phone_photo(orientation: int = 1) -> bytes:
    return encode(photo(PHONE), "JPEG", orientation, quality=85)


# name -> the file's bytes; every one of them is reduced on the way in.
GENERATED: dict[str, Callable[[], bytes]] = {
    "12 MP JPEG q85": phone_photo,
    "12 MP JPEG q85, EXIF 3 (upside down)": lambda: phone_photo(3),
    "12 MP JPEG q85, EXIF 6 (portrait)": lambda: phone_photo(6),
    "12 MP JPEG q85, EXIF 8 (portrait)": lambda: phone_photo(8),
    "12 MP 16:9 JPEG q85": lambda: encode(photo((4032, 2268), 1), "JPEG", quality=85),
    "3 MP JPEG q85": lambda: encode(photo((2016, 1512), 2), "JPEG", quality=85),
    "3 MP JPEG q85, EXIF 5 (transposed)": lambda: encode(
        photo((2016, 1512), 2), "JPEG", 5, quality=85
    ),
    "6 MP progressive JPEG": lambda: encode(photo((3000, 2000), 3), "JPEG", progressive=True),
    "greyscale JPEG": lambda: encode(photo((2400, 1800), 4).convert("L"), "JPEG", quality=90),
    "CMYK JPEG": lambda: encode(photo((2400, 1800), 5).convert("CMYK"), "JPEG", quality=90),
    "1080p PNG screenshot": lambda: encode(screenshot((1920, 1080), 6), "PNG"),
    "1440p PNG screenshot": lambda: encode(screenshot((2560, 1440), 7), "PNG"),
    "1440p PNG window capture (RGBA)": lambda: encode(
        with_transparent_corners(screenshot((2560, 1440), 8)), "PNG"
    ),
    "1440p PNG, opaque RGBA": lambda: encode(screenshot((2560, 1440), 9).convert("RGBA"), "PNG"),
    "palette PNG with transparency": lambda: encode(
        photo((2400, 1600), 10).quantize(200, FAST), "PNG", transparency=3
    ),
    "16-bit PNG": lambda: encode(
        Image.fromarray(np.asarray(photo((1800, 1400), 11).convert("L"), np.uint16) * 257), "PNG"
    ),
    "animated GIF 1280x720": lambda: animated(
        [photo((1280, 720), 12).quantize(128, FAST), photo((1280, 720), 13).quantize(128, FAST)],
        "GIF",
    ),
    "WebP q80 1600x1200": lambda: encode(photo((1600, 1200), 14), "WEBP", quality=80),
    "WebP with alpha 1600x1200": lambda: encode(
        with_transparent_corners(photo((1600, 1200), 15)), "WEBP", quality=80
    ),
    "animated WebP": lambda: animated(
        [photo((1600, 1200), 16), photo((1600, 1200), 17)], "WEBP", quality=80
    ),
}


@functools.cache
def generated(name: str) -> bytes:
    return GENERATED[name]()


@functools.cache
def arrays(upload: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The network's input from today's path and from the new one, for a generated upload's
    name or a photograph's path."""
    data = upload.read_bytes() if isinstance(upload, Path) else generated(upload)
    return reference_load_image(data), load_image(data)


def installed_photographs() -> list[Path]:
    """matplotlib's sample photo and some of the Debian wallpapers installed here."""
    found = []
    for folder in WALLPAPER_FOLDERS:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                image = path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
                # (the default byte limit)
                if image and path.is_file() and path.stat().st_size <= 10 * 1024 * 1024:
                    found.append(path)
    step = max(1, len(found) // WALLPAPERS_USED)
    chosen = found[::step][:WALLPAPERS_USED]
    try:
        from matplotlib import cbook

        chosen.insert(0, Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    except (ImportError, OSError, ValueError):
        pass
    return chosen


PHOTOGRAPHS = installed_photographs()


# --- figures ---------------------------------------------------------------------------------


def difference(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    return np.abs(old.astype(np.int16) - new.astype(np.int16))


def summary(name: str, diff: np.ndarray) -> str:
    p50, p90, p99 = np.percentile(diff, [50, 90, 99])
    line = (
        f"{name}: mean {diff.mean():.3f}, p50 {p50:.0f}, p90 {p90:.0f}, p99 {p99:.0f}, "
        f"max {diff.max()} (grey levels of 255)"
    )
    print(line)
    return line


def both(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    return reference_load_image(data), load_image(data)


# --- the network's input ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(GENERATED))
def test_the_networks_input_barely_moves_on_generated_uploads(name: str) -> None:
    old, new = arrays(name)
    diff = difference(old, new)
    line = summary(name, diff)
    assert diff.mean() <= MAX_MEAN_PIXEL_DIFFERENCE, line
    assert diff.any(), f"{name} was not reduced: the test would measure nothing"


@pytest.mark.skipif(not PHOTOGRAPHS, reason="no sample photographs installed here")
@pytest.mark.parametrize("path", PHOTOGRAPHS, ids=[path.name for path in PHOTOGRAPHS])
def test_the_networks_input_barely_moves_on_photographs(path: Path) -> None:
    old, new = arrays(path)
    diff = difference(old, new)
    line = summary(path.name, diff)
    assert diff.mean() <= MAX_MEAN_PIXEL_DIFFERENCE, line


def test_over_all_the_uploads_the_mean_is_a_fraction_of_a_grey_level() -> None:
    uploads = [*GENERATED, *PHOTOGRAPHS]
    diff = np.stack([difference(*arrays(upload)) for upload in uploads])
    line = summary(f"all {len(uploads)} uploads", diff)
    assert diff.mean() <= 0.5 * MAX_MEAN_PIXEL_DIFFERENCE, line


# --- what is not reduced is not changed ------------------------------------------------------


NOT_REDUCED: dict[str, Callable[[], bytes]] = {
    "200x200 PNG": lambda: encode(photo((200, 200), 20), "PNG"),
    "200x200 JPEG": lambda: encode(photo((200, 200), 21), "JPEG", quality=85),
    "200x200 JPEG, EXIF 6": lambda: encode(photo((200, 200), 21), "JPEG", 6, quality=85),
    "1199x1199 PNG": lambda: encode(photo((1199, 1199), 22), "PNG"),
    "1100x590 JPEG": lambda: encode(photo((1100, 590), 23), "JPEG", quality=85),
    "599x1199 JPEG": lambda: encode(photo((599, 1199), 24), "JPEG", quality=85),
    "800x600 GIF": lambda: encode(photo((800, 600), 25).quantize(64, FAST), "GIF"),
    "1000x1000 lossless WebP with alpha": lambda: encode(
        with_transparent_corners(photo((1000, 1000), 26)), "WEBP", lossless=True
    ),
    "1024x768 RGBA PNG": lambda: encode(with_transparent_corners(photo((1024, 768), 27)), "PNG"),
}


@pytest.mark.parametrize("name", list(NOT_REDUCED))
def test_an_image_that_is_not_reduced_gives_the_same_bytes(name: str) -> None:
    old, new = both(NOT_REDUCED[name]())
    np.testing.assert_array_equal(new, old)


def test_the_synthetic_set_gives_the_same_bytes(tmp_path: Path) -> None:
    # The shipped model learned from these (200x200 PNG and JPEG): its training is unchanged.
    from training.synthetic import generate_dataset

    generate_dataset(tmp_path, jedi=12, sith=12, seed=7)
    files = sorted(tmp_path.rglob("*.*"))
    assert len(files) == 24 and {f.suffix for f in files} >= {".png", ".jpg"}
    for path in files:
        old, new = both(path.read_bytes())
        np.testing.assert_array_equal(new, old, err_msg=path.name)


# --- the shipped model's scores --------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier():
    from model.bundle import DEFAULT_MODEL_DIR
    from model.runtime import Classifier

    return Classifier.load(DEFAULT_MODEL_DIR, "litert")


def score_differences(
    classifier, uploads: dict[str, tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """The shipped model's scores of each upload's (old, new) arrays."""
    pairs = list(uploads.values())
    old = classifier.scores(np.stack([old for old, _ in pairs]))
    new = classifier.scores(np.stack([new for _, new in pairs]))
    for name, a, b in zip(uploads, old, new, strict=True):
        print(f"{name}: score {a:.4f} -> {b:.4f} ({b - a:+.4f})")
    return old, new


def test_the_shipped_models_scores_barely_move_on_uploads(classifier) -> None:
    uploads = {
        getattr(upload, "name", upload): arrays(upload) for upload in [*GENERATED, *PHOTOGRAPHS]
    }
    old, new = score_differences(classifier, uploads)
    diff = np.abs(new - old)
    line = f"{len(diff)} uploads: mean score difference {diff.mean():.4f}, max {diff.max():.4f}"
    print(line)
    assert diff.mean() <= MAX_MEAN_SCORE_DIFFERENCE, line


def test_the_shipped_model_judges_phone_sized_jedi_and_sith_as_before(
    classifier, tmp_path: Path
) -> None:
    # The synthetic figures blown up to phone photos and screenshots, which are reduced, so that
    # the scores are those of pictures the model knows, and the verdicts can be counted.
    from training.synthetic import generate_dataset

    generate_dataset(tmp_path, jedi=10, sith=10, seed=2027)
    uploads, labels = {}, []
    for i, path in enumerate(sorted(tmp_path.rglob("*.*"))):
        small = Image.open(path).convert("RGB")
        if i % 2:
            big = small.resize((2016, 1512), Image.Resampling.BICUBIC)
            data = encode(big, "JPEG", 6 if i % 4 == 1 else 1, quality=85)
        else:
            big = small.resize((1920, 1080), Image.Resampling.BICUBIC)
            data = encode(big, "PNG", compress_level=1)
        uploads[path.name] = both(data)
        labels.append(path.parent.name == "sith")
    old, new = score_differences(classifier, uploads)
    diff = np.abs(new - old)
    right_before = int(((old > 0.5) == np.array(labels)).sum())
    right_now = int(((new > 0.5) == np.array(labels)).sum())
    line = (
        f"mean score difference {diff.mean():.4f}, max {diff.max():.4f}; "
        f"{right_before} then {right_now} of {len(labels)} right"
    )
    print(line)
    assert diff.mean() <= MAX_MEAN_SCORE_DIFFERENCE, line
    # Within one point: with 20 images, not one verdict may change.
    assert abs(right_now - right_before) <= 0.01 * len(labels), line
