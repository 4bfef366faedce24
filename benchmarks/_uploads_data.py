"""What people post on Discord, generated: phone photos, screenshots, a GIF, a WebP meme.

Every kind (`KINDS`, in this order) is a list of encoded files as a user would upload them:

* ``12 MP JPEG``: 4032x3024 "phone photos" at quality 88-92 with 4:2:0 chroma subsampling and
  camera EXIF (Make, Model, DateTime; orientation 1), 2-5 MB each.
* ``12 MP JPEG, EXIF 6`` and ``12 MP JPEG, EXIF 8``: portrait scenes stored landscape, as
  phones store them, with orientation 6 (display rotated 90 degrees clockwise) or 8
  (counter-clockwise); they decode upright only through the EXIF transpose.
* ``3 MP JPEG``: 2016x1512 at quality 85, 4:2:0 (a phone's reduced size, or a resized photo).
* ``1080p PNG screenshot`` and ``1440p PNG screenshot``: 1920x1080 and 2560x1440 chat-app
  windows (flat panels, anti-aliased text, avatars, buttons, now and then a photo in a
  message), Pillow's default PNG compression.
* ``animated GIF``: 498x280 (a common GIF size), 24 frames of a moving scene with a caption,
  an adaptive palette.
* ``WebP meme``: 1080x1080 lossy WebP (quality 80), a photo-like scene with top and bottom
  captions in white with a black outline.

The photo-like content is drawn with NumPy and Pillow: a sky gradient with soft clouds, ground
with texture that grows towards the bottom, buildings with rows of windows, round things,
cables, a light falloff, a vignette and sensor grain. Uniform noise would make unrealistically
large JPEGs; this lands in the 2-5 MB of real 12 MP phone photos.

Image ``i`` of a kind is drawn from a generator seeded with ``(seed, kind, i)``, so the same
seed gives the same files; they are cached under ``benchmarks/out/uploads/`` (keyed by
`VERSION`, the seed and the count) because a 12 MP photo takes seconds to draw.

`real_photos()` adds the real photographs on this machine as their own kinds: Debian's
wallpaper photographs (`benchmarks._ood_data.WALLPAPER_PHOTOS`, at their own sizes, not
resized) split at 10 MP, and matplotlib's ``grace_hopper.jpg``.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

VERSION = 1  # bump when a generator changes: the cache is keyed by it
KINDS: tuple[str, ...] = (
    "12 MP JPEG",
    "12 MP JPEG, EXIF 6",
    "12 MP JPEG, EXIF 8",
    "3 MP JPEG",
    "1080p PNG screenshot",
    "1440p PNG screenshot",
    "animated GIF",
    "WebP meme",
)
PHONE_PHOTO_KINDS: tuple[str, ...] = KINDS[:3]
"""The 12 MP phone photos (the burst's attachments and the issue's main target)."""

REAL_KINDS: tuple[str, ...] = (
    "real: wallpapers >= 10 MP",
    "real: wallpapers < 10 MP",
    "real: grace_hopper.jpg",
)
PHOTOGRAPH_KINDS: tuple[str, ...] = (*KINDS[:4], "WebP meme", *REAL_KINDS)
"""The kinds that are photographs (generated or real), for the fidelity target."""

PHONE = (4032, 3024)
THREE_MP = (2016, 1512)
EXIF_ORIENTATION = 0x0112
_CAMERAS = (("Apple", "iPhone 13"), ("samsung", "SM-S911B"), ("Google", "Pixel 7"))


@dataclass(frozen=True)
class Upload:
    """One file as uploaded: its kind, a name, the bytes, and what it is."""

    kind: str
    name: str
    data: bytes
    format: str  # Pillow's name: JPEG, PNG, GIF, WEBP
    width: int  # as stored (before any EXIF rotation)
    height: int
    orientation: int = 1
    frames: int = 1

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def describe(upload: Upload) -> dict[str, object]:
    """What Pillow says about the file (format, size, mode, subsampling, quality guess...)."""
    with Image.open(io.BytesIO(upload.data)) as image:
        info: dict[str, object] = {
            "format": image.format,
            "size": image.size,
            "mode": image.mode,
            "frames": getattr(image, "n_frames", 1),
            "orientation": image.getexif().get(EXIF_ORIENTATION, 1),
        }
        if image.format == "JPEG":
            from PIL import JpegImagePlugin

            info["subsampling"] = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(
                JpegImagePlugin.get_sampling(image), "other"
            )
            info["progressive"] = bool(image.info.get("progressive"))
    return info


# -- the cache --------------------------------------------------------------------------------


def generated(out: Path, count: int, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> list[Upload]:
    """`count` files of each kind in `kinds` (drawn once, then read from `out`)."""
    uploads = []
    for kind in kinds:
        folder = out / f"v{VERSION}-seed{seed}" / _slug(kind)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            extension = _EXTENSIONS[kind]
            path = folder / f"{i:02d}.{extension}"
            if not path.is_file():
                data = _MAKERS[kind](np.random.default_rng((seed, KINDS.index(kind), i)))
                tmp = path.with_suffix(".part")
                tmp.write_bytes(data)
                tmp.replace(path)
            uploads.append(_upload(kind, f"{_slug(kind)}-{i:02d}.{extension}", path.read_bytes()))
    return uploads


def real_photos(limit: int | None = None) -> list[Upload]:
    """The real photographs installed here (wallpapers split at 10 MP, then Grace Hopper);
    `limit`: at most that many of each kind."""
    from benchmarks._ood_data import _matplotlib_photo_paths, wallpaper_paths

    big, small = [], []
    for path in wallpaper_paths():
        upload = _upload("", path.name, path.read_bytes())
        (big if upload.megapixels >= 10 else small).append(upload)
    found = {
        REAL_KINDS[0]: big,
        REAL_KINDS[1]: small,
        REAL_KINDS[2]: [_upload("", p.name, p.read_bytes()) for p in _matplotlib_photo_paths()],
    }
    return [
        dataclasses.replace(upload, kind=kind)
        for kind, items in found.items()
        for upload in items[:limit]
    ]


def _upload(kind: str, name: str, data: bytes) -> Upload:
    with Image.open(io.BytesIO(data)) as image:
        return Upload(
            kind,
            name,
            data,
            str(image.format),
            image.width,
            image.height,
            int(image.getexif().get(EXIF_ORIENTATION, 1) or 1),
            int(getattr(image, "n_frames", 1)),
        )


def _slug(kind: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in kind.lower()).strip("-").replace("--", "-")


# -- photo-like scenes ------------------------------------------------------------------------


def _field(rng: np.random.Generator, width: int, height: int, cell: int) -> np.ndarray:
    """Smooth noise with features about `cell` pixels wide (unit variance, float32)."""
    small = rng.normal(0, 1, (max(2, height // cell + 2), max(2, width // cell + 2)))
    image = Image.fromarray(small.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BICUBIC))


def _rgb(rng: np.random.Generator, low, high) -> np.ndarray:
    return rng.uniform(low, high).astype(np.float32)


def scene(rng: np.random.Generator, width: int, height: int, grain: float = 2.5) -> Image.Image:
    """A photo-like RGB scene: sky, clouds, textured ground, buildings, round things, cables,
    light falloff, vignette, sensor grain."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    horizon = rng.uniform(0.4, 0.65)
    sky_top, sky_low = _rgb(rng, [20, 60, 120], [90, 140, 220]), _rgb(rng, [150, 170, 190], [235])
    far, near = _rgb(rng, [70, 90, 50], [170, 160, 130]), _rgb(rng, [30, 40, 10], [120, 110, 70])
    s = np.clip(y / horizon, 0, 1)[..., None]
    g = np.clip((y - horizon) / (1 - horizon), 0, 1)
    below = ((y - horizon - rng.uniform(-0.05, 0.05) * x) > 0).astype(np.float32)
    image = (sky_top * (1 - s) + sky_low * s) * (1 - below[..., None])
    image += (far * (1 - g[..., None]) + near * g[..., None]) * below[..., None]
    clouds = _field(rng, width, height, max(8, width // 10)) * 0.8
    clouds += _field(rng, width, height, max(4, width // 45)) * 0.3
    clouds = np.clip(clouds - 0.2, 0, 1) * (1 - below)
    image += (255 - image) * (clouds[..., None] * 0.6)
    scale = width / PHONE[0]  # texture at the same size on the scene, whatever the resolution
    texture = _field(rng, width, height, max(2, round(40 * scale))) * 12
    texture += _field(rng, width, height, max(2, round(8 * scale))) * 10
    texture += _field(rng, width, height, 2) * 9
    texture += _field(rng, width, height, max(2, round(120 * scale))) * 5 * (1 - below)
    image += (texture * (below * (0.3 + g) + 0.25 * (1 - below)))[..., None]

    layer = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    del image, texture, clouds
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(4, 9))):
        x0, w = rng.uniform(-0.1, 0.9) * width, rng.uniform(0.05, 0.3) * width
        base, h = (horizon + rng.uniform(0, 0.3)) * height, rng.uniform(0.1, 0.5) * height
        colour = rng.integers(30, 230, 3)
        fill = tuple(int(c) for c in colour)
        if rng.random() < 0.5:  # a building with rows of windows
            draw.rectangle((x0, base - h, x0 + w, base), fill=fill)
            step = rng.uniform(0.02, 0.05) * width
            pane = tuple(int(c) for c in np.clip(colour * rng.uniform(0.3, 1.6), 0, 255))
            for wx in np.arange(x0 + step / 2, x0 + w - step / 2, step):
                for wy in np.arange(base - h + step / 2, base - step / 2, step * 1.3):
                    draw.rectangle((wx, wy, wx + step * 0.5, wy + step * 0.6), fill=pane)
        else:  # a tree, a ball, a face
            draw.ellipse((x0, base - h, x0 + w, base), fill=fill)
    for _ in range(int(rng.integers(2, 6))):  # cables and branches
        points = [(rng.uniform(0, width), rng.uniform(0, 0.7 * height)) for _ in range(3)]
        dark = tuple(int(c) for c in rng.integers(0, 80, 3))
        draw.line(points, fill=dark, width=max(1, int(rng.integers(3, 10) * scale)))
    layer = layer.filter(ImageFilter.GaussianBlur(max(0.5, 1.0 * scale)))  # the lens

    image = np.asarray(layer, dtype=np.float32)
    surface = _field(rng, width, height, max(2, round(10 * scale))) * 4  # objects are not flat
    surface += _field(rng, width, height, 2) * 3
    image += surface[..., None]
    del surface
    light = 0.85 + 0.09 * _field(rng, width, height, max(8, width // 3))
    vignette = 1 - 0.175 * ((2 * x) ** 2 + (2 * y - 1) ** 2)
    image = image * (light * vignette)[..., None]
    image += rng.normal(0, grain, (height, width, 1)).astype(np.float32)  # luminance grain
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def _exif(rng: np.random.Generator, orientation: int) -> bytes:
    exif = Image.Exif()
    make, model = _CAMERAS[int(rng.integers(len(_CAMERAS)))]
    exif[0x010F], exif[0x0110] = make, model
    exif[0x0132] = f"2026:11:{int(rng.integers(1, 29)):02d} {int(rng.integers(8, 20)):02d}:14:07"
    exif[0x0131] = "17.1"
    exif[EXIF_ORIENTATION] = orientation
    return exif.tobytes()


def _jpeg(image: Image.Image, quality: int, exif: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, subsampling="4:2:0", exif=exif)
    return buffer.getvalue()


def _phone(rng: np.random.Generator) -> bytes:
    return _jpeg(scene(rng, *PHONE), int(rng.integers(88, 93)), _exif(rng, 1))


def _rotated(
    orientation: int, size: tuple[int, int] = PHONE
) -> Callable[[np.random.Generator], bytes]:
    def make(rng: np.random.Generator) -> bytes:
        upright = scene(rng, size[1], size[0])  # portrait, as the person saw it
        # Stored as the sensor saw it; exif_transpose undoes it (6: ROTATE_270, 8: ROTATE_90).
        stored = upright.transpose(
            Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270
        )
        return _jpeg(stored, int(rng.integers(88, 93)), _exif(rng, orientation))

    return make


def _three_mp(rng: np.random.Generator) -> bytes:
    return _jpeg(scene(rng, *THREE_MP), 85, _exif(rng, 1))


# -- screenshots, GIFs, memes -----------------------------------------------------------------


def screenshot(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A chat application's window: server and channel lists, messages with avatars and
    anti-aliased text, now and then a photo in a message, an input box."""
    from benchmarks._ood_drawn import _color, _font, _shade, _words

    dark = rng.random() < 0.7
    base = (49, 51, 56) if dark else (255, 255, 255)
    step = -7 if dark else -10
    ink = (219, 222, 225) if dark else (49, 51, 56)
    muted = (148, 155, 164) if dark else (92, 94, 102)
    accent = (88, 101, 242)
    zoom = height / 1080
    font = _font("DejaVuSans.ttf", round(16 * zoom))
    bold = _font("DejaVuSans-Bold.ttf", round(16 * zoom))
    small = _font("DejaVuSans.ttf", round(12 * zoom))
    image = Image.new("RGB", (width, height), base)
    draw = ImageDraw.Draw(image)

    rail, channels = round(72 * zoom), round(240 * zoom)
    draw.rectangle((0, 0, rail, height), fill=_shade(base, 3 * step))
    for k in range(int(rng.integers(6, 12))):  # servers
        cy = round((40 + 60 * k) * zoom)
        draw.ellipse((12 * zoom, cy - 24 * zoom, 60 * zoom, cy + 24 * zoom), fill=_color(rng))
    draw.rectangle((rail, 0, rail + channels, height), fill=_shade(base, step))
    y = round(60 * zoom)
    for k in range(int(rng.integers(10, 22))):
        label = "# " + _words(rng, int(rng.integers(1, 3))).rstrip(".").lower().replace(" ", "-")
        if k == 3:
            draw.rounded_rectangle(
                (rail + 8, y - 4, rail + channels - 8, y + font.size + 6),
                4,
                fill=_shade(base, -2 * step),
            )
        draw.text((rail + 16 * zoom, y), label, ink if k == 3 else muted, font)
        y += round(34 * zoom)

    left = rail + channels
    draw.line((left, round(48 * zoom), width, round(48 * zoom)), fill=_shade(base, 2 * step))
    draw.text((left + 16 * zoom, 14 * zoom), "# general", ink, bold)
    members = round(240 * zoom) if width >= 1900 * zoom else 0
    if members:
        draw.rectangle((width - members, round(48 * zoom), width, height), fill=_shade(base, step))
        for k in range(int(rng.integers(8, 20))):
            my = round((70 + 44 * k) * zoom)
            draw.ellipse(
                (width - members + 16 * zoom, my, width - members + 48 * zoom, my + 32 * zoom),
                fill=_color(rng),
            )
            name = _words(rng, 1).rstrip(".").lower()
            draw.text((width - members + 58 * zoom, my + 6 * zoom), name, muted, font)

    right = width - members - round(24 * zoom)
    y = round(70 * zoom)
    bottom = height - round(90 * zoom)
    text_left = left + round(72 * zoom)
    while y < bottom:
        draw.ellipse(
            (left + 16 * zoom, y, left + 56 * zoom, y + 40 * zoom), fill=_color(rng, 60, 230)
        )
        author = _words(rng, 1).rstrip(".")
        draw.text((text_left, y), author, _color(rng, 120, 256), bold)
        draw.text(
            (text_left + draw.textlength(author, font=bold) + 10 * zoom, y + 3 * zoom),
            f"Today at {int(rng.integers(1, 13))}:{int(rng.integers(0, 60)):02d} PM",
            muted,
            small,
        )
        y += round(24 * zoom)
        for _ in range(int(rng.integers(1, 4))):
            line = _words(rng, int(rng.integers(4, 30)))
            while line and draw.textlength(line, font=font) > right - text_left:
                line = line.rsplit(" ", 1)[0]
            draw.text((text_left, y), line, ink, font)
            y += round(22 * zoom)
        if rng.random() < 0.15 and y + 300 * zoom < bottom:  # someone posted a photo
            w, h = round(400 * zoom), round(300 * zoom)
            image.paste(scene(rng, w, h, grain=1.5), (text_left, y + round(6 * zoom)))
            y += h + round(12 * zoom)
        elif rng.random() < 0.2:  # a bot's buttons
            for b in range(int(rng.integers(1, 4))):
                bx = text_left + b * round(110 * zoom)
                draw.rounded_rectangle(
                    (bx, y + 6 * zoom, bx + 100 * zoom, y + 38 * zoom),
                    4,
                    fill=accent if b == 0 else _shade(base, -3 * step),
                )
                label = ("Jedi", "Sith", "Neither")[b]
                draw.text((bx + 14 * zoom, y + 12 * zoom), label, ink, font)
            y += round(44 * zoom)
        y += round(18 * zoom)
    draw.rectangle((left, bottom, right + round(24 * zoom), height), fill=base)
    draw.rounded_rectangle(
        (left + 16 * zoom, bottom + 20 * zoom, right, bottom + 68 * zoom),
        8,
        fill=_shade(base, -2 * step),
    )
    draw.text((left + 60 * zoom, bottom + 34 * zoom), "Message #general", muted, font)
    return image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _screenshot(width: int, height: int) -> Callable[[np.random.Generator], bytes]:
    return lambda rng: _png(screenshot(rng, width, height))


def _caption(draw: ImageDraw.ImageDraw, text: str, y: float, width: int, size: int) -> None:
    from benchmarks._ood_drawn import _font

    font = _font("DejaVuSans-Bold.ttf", size)
    while size > 12 and draw.textlength(text, font=font) > 0.94 * width:
        size -= 4
        font = _font("DejaVuSans-Bold.ttf", size)
    x = (width - draw.textlength(text, font=font)) / 2
    draw.text((x, y), text, (255, 255, 255), font, stroke_width=max(2, size // 12), stroke_fill=0)


def _gif(rng: np.random.Generator) -> bytes:
    """24 frames of a scene panning, with a caption; an adaptive palette per frame."""
    from benchmarks._ood_drawn import _words

    width, height, frames = 498, 280, 24
    wide = scene(rng, width + 4 * frames, height, grain=1.0)
    caption = _words(rng, int(rng.integers(2, 5))).rstrip(".").upper()
    images = []
    for k in range(frames):
        frame = wide.crop((4 * k, 0, 4 * k + width, height))
        draw = ImageDraw.Draw(frame)
        cx = width * (0.2 + 0.6 * k / frames)
        draw.ellipse((cx - 30, 120, cx + 30, 180), fill=(200, 40, 40))
        _caption(draw, caption, height - 48, width, 30)
        images.append(frame.quantize(256, method=Image.Quantize.MEDIANCUT))
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=60, loop=0)
    return buffer.getvalue()


def _meme(rng: np.random.Generator) -> bytes:
    from benchmarks._ood_drawn import _words

    side = 1080
    image = scene(rng, side, side, grain=1.5)
    draw = ImageDraw.Draw(image)
    _caption(draw, _words(rng, 3).rstrip(".").upper(), 30, side, 80)
    _caption(draw, _words(rng, 4).rstrip(".").upper(), side - 130, side, 80)
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=80)
    return buffer.getvalue()


_MAKERS: dict[str, Callable[[np.random.Generator], bytes]] = {
    "12 MP JPEG": _phone,
    "12 MP JPEG, EXIF 6": _rotated(6),
    "12 MP JPEG, EXIF 8": _rotated(8),
    "3 MP JPEG": _three_mp,
    "1080p PNG screenshot": _screenshot(1920, 1080),
    "1440p PNG screenshot": _screenshot(2560, 1440),
    "animated GIF": _gif,
    "WebP meme": _meme,
}
_EXTENSIONS = {
    kind: {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WebP": "webp"}[
        next(f for f in ("JPEG", "PNG", "GIF", "WebP") if f in kind)
    ]
    for kind in KINDS
}


def megabytes(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.0f} KB"
