"""The drawn groups of the out-of-distribution set: noise, blank, text and plots (`_ood_data`).

Also the pieces every group shares: `Sample`, the size limits, and the encoding into upload files.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MAX_SIDE = 1600
"""The longest side of the images built, in pixels (photos are reduced to it), except the
made-up UI screenshots, which have the sizes of real screens (up to 1920x1080)."""

MIN_SIDE = 256
"""The shortest side of a generated image, in pixels (photo crops may be smaller)."""


@dataclass(frozen=True)
class Sample:
    """One image: a file name (unique in its group) and the file's bytes, as uploaded."""

    name: str
    data: bytes


# --------------------------------------------------------------------------- helpers

Color = tuple[int, int, int]

_ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9, 2.0, 3 / 4, 2 / 3, 9 / 16)


def _size(rng: np.random.Generator, lo: int = MIN_SIDE, hi: int = MAX_SIDE) -> tuple[int, int]:
    """A (width, height) of a common aspect ratio with both sides in lo..hi (log-uniform)."""
    aspect = _ASPECTS[int(rng.integers(len(_ASPECTS)))]
    stretch = max(aspect, 1 / aspect)
    short = round(math.exp(rng.uniform(math.log(lo), math.log(hi / stretch))))
    long = round(short * stretch)
    return (long, short) if aspect >= 1 else (short, long)


def _encode(image: Image.Image, fmt: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """`image` as a file of format `fmt` (PNG, JPEG, WEBP or GIF) and its extension."""
    buf = io.BytesIO()
    if fmt == "PNG":
        image.save(buf, "PNG", compress_level=int(rng.integers(3, 7)))
        ext = "png"
    elif fmt == "JPEG":
        rgb = image.convert("RGB") if image.mode not in ("RGB", "L") else image
        rgb.save(buf, "JPEG", quality=int(rng.integers(75, 96)))
        ext = "jpg"
    elif fmt == "WEBP":
        image.convert("RGB").save(buf, "WEBP", quality=int(rng.integers(70, 91)), method=4)
        ext = "webp"
    elif fmt == "GIF":
        if image.mode == "L":
            paletted = image.convert("P")
        else:
            paletted = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
        paletted.save(buf, "GIF")
        ext = "gif"
    else:  # pragma: no cover - a programming error
        raise ValueError(fmt)
    return buf.getvalue(), ext


def _choose(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    """One of `options`, uniformly."""
    return options[int(rng.integers(len(options)))]


def _sample(prefix: str, i: int, image: Image.Image, fmt: str, rng: np.random.Generator) -> Sample:
    data, ext = _encode(image, fmt, rng)
    w, h = image.size
    return Sample(f"{prefix}_{i:03d}_{w}x{h}.{ext}", data)


# --------------------------------------------------------------------------- noise

_NOISE_KINDS = (
    "uniform_rgb",
    "uniform_grey",
    "gaussian",
    "salt_pepper",
    "blocky",
    "clouds",
    "pink",
    "scanlines",
)


def _noise(rng: np.random.Generator, i: int) -> Sample:
    kind = _NOISE_KINDS[i % len(_NOISE_KINDS)]
    w, h = _size(rng, hi=1024)  # noise does not compress: keep the files and the time small
    if kind == "uniform_rgb":
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    elif kind == "uniform_grey":
        arr = rng.integers(0, 256, (h, w), dtype=np.uint8)
    elif kind == "gaussian":
        mean = rng.uniform(40, 215, 3).astype(np.float32)
        sigma = np.float32(rng.uniform(10, 80))
        arr = mean + sigma * rng.standard_normal((h, w, 3), dtype=np.float32)
    elif kind == "salt_pepper":
        base = np.full((h, w), rng.uniform(30, 225), np.float32)
        u = rng.random((h, w), dtype=np.float32)
        p = np.float32(rng.uniform(0.02, 0.3))
        arr = np.where(u < p / 2, 0.0, np.where(u > 1 - p / 2, 255.0, base))
    elif kind == "blocky":
        cell = int(rng.integers(4, 65))
        small = rng.integers(0, 256, (-(-h // cell), -(-w // cell), 3), dtype=np.uint8)
        img = Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.NEAREST)
        arr = np.asarray(img)
    elif kind == "clouds":
        arr = np.zeros((h, w, 3), np.float32)
        for octave in range(int(rng.integers(3, 6))):
            grid = 3 * 2**octave
            small = rng.normal(0, 1, (grid, grid, 3)).astype(np.float32)
            lo, hi = small.min(), small.max()
            img = Image.fromarray(((small - lo) / (hi - lo + 1e-6) * 255).astype(np.uint8), "RGB")
            layer = np.asarray(img.resize((w, h), Image.Resampling.BICUBIC), np.float32) - 127.5
            arr += layer / 2**octave
        arr = 127.5 + arr * np.float32(rng.uniform(0.6, 1.0))
    elif kind == "pink":
        alpha = rng.uniform(0.8, 2.0)
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        f = np.sqrt(fx * fx + fy * fy)
        f[0, 0] = 1.0
        chans = []
        for _ in range(3 if rng.random() < 0.6 else 1):
            spectrum = rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)
            field = np.fft.irfft2(spectrum / f**alpha, s=(h, w))
            field = (field - field.mean()) / (field.std() + 1e-12)
            chans.append(127.5 + 45 * field)
        arr = np.stack(chans, -1) if len(chans) == 3 else chans[0]
    else:  # scanlines: each row (or column) one random colour, with fine grain
        lines = (h, 1, 3) if rng.random() < 0.5 else (1, w, 3)
        levels = rng.uniform(0, 255, lines).astype(np.float32)
        arr = levels + rng.normal(0, 8, (h, w, 3)).astype(np.float32)
    arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    image = Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB")
    formats = ("PNG", "PNG", "JPEG", "WEBP")
    fmt = "GIF" if image.mode == "L" and rng.random() < 0.5 else _choose(rng, formats)
    return _sample(f"noise_{kind}", i, image, fmt, rng)


# --------------------------------------------------------------------------- blank

_BLANK_KINDS = ("solid", "linear", "radial", "multistop", "four_corner", "solid", "sky")
_PLAIN_COLOURS: tuple[Color, ...] = (
    (0, 0, 0),
    (255, 255, 255),
    (128, 128, 128),
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 0),
    (54, 57, 63),  # a dark-theme grey
)


def _blank(rng: np.random.Generator, i: int) -> Sample:
    kind = _BLANK_KINDS[i % len(_BLANK_KINDS)]
    w, h = _size(rng)
    if kind == "solid":
        # The plain colours first (each once, so no two solids look alike), then random ones.
        solid = 2 * (i // len(_BLANK_KINDS)) + (i % len(_BLANK_KINDS) != 0)
        color = _PLAIN_COLOURS[solid] if solid < len(_PLAIN_COLOURS) else _color(rng)
        image = Image.new("RGB", (w, h), color)
        return _sample("blank_solid", i, image, _choose(rng, ("PNG", "PNG", "JPEG", "GIF")), rng)
    # Gradients are computed at a quarter of the size (they are smooth) and enlarged.
    sw, sh = max(2, w // 4), max(2, h // 4)
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xs, ys = xs / max(sw - 1, 1), ys / max(sh - 1, 1)
    if kind == "linear":
        angle = rng.uniform(0, 2 * math.pi)
        t = math.cos(angle) * xs + math.sin(angle) * ys
    elif kind == "radial":
        cx, cy = rng.uniform(0, 1, 2)
        t = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
    elif kind == "sky":
        t = ys ** rng.uniform(0.5, 2.0)
    else:
        t = xs
    if kind == "four_corner":
        c = [np.asarray(_color(rng), np.float32) for _ in range(4)]
        top = c[0] + (c[1] - c[0]) * xs[..., None]
        bottom = c[2] + (c[3] - c[2]) * xs[..., None]
        arr = top + (bottom - top) * ys[..., None]
    else:
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        stops = 2 if kind != "multistop" else int(rng.integers(3, 6))
        colours = np.asarray([_color(rng) for _ in range(stops)], np.float32)
        positions = np.linspace(0.0, 1.0, stops)
        arr = np.stack([np.interp(t, positions, colours[:, k]) for k in range(3)], -1)
    small = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")
    image = small.resize((w, h), Image.Resampling.BILINEAR)
    return _sample(f"blank_{kind}", i, image, _choose(rng, ("PNG", "PNG", "JPEG", "WEBP")), rng)


# --------------------------------------------------------------------------- text and plots

_FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralItalic.ttf",
)
_PROSE = (
    "the quick brown fox jumps over a lazy dog while seven wizards quietly pack boxes of "
    "liquor for the jovial judge and an old river runs past the market where people sell "
    "bread cheese apples coffee tea books lamps chairs tickets maps stamps and flowers every "
    "morning before noon report meeting agenda minutes budget total invoice order number date "
    "version release notes please reply thank you hello world error warning note figure table "
    "chapter section page summary results method data value price weather forecast sunny rain"
)
_WORDS = tuple(_PROSE.split())


def _font_path(name: str) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


_FONTS: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A bundled matplotlib font, laid out without raqm (the same result everywhere)."""
    key = (name, size)
    if key not in _FONTS:
        _FONTS[key] = ImageFont.truetype(
            str(_font_path(name)), size, layout_engine=ImageFont.Layout.BASIC
        )
    return _FONTS[key]


def _words(rng: np.random.Generator, n: int) -> str:
    picks = rng.integers(len(_WORDS), size=n)
    words = [_WORDS[int(k)] for k in picks]
    if words:
        words[0] = words[0].capitalize()
    for k in range(1, n):
        if rng.random() < 0.08:
            words[k - 1] += "." if rng.random() < 0.7 else ","
            if words[k - 1].endswith("."):
                words[k] = words[k].capitalize()
        elif rng.random() < 0.03:
            words[k] = str(int(rng.integers(0, 2025)))
    return " ".join(words) + "."


def _color(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> Color:
    """An RGB colour with every channel in lo..hi-1."""
    r, g, b = (int(c) for c in rng.integers(lo, hi, 3))
    return (r, g, b)


def _light_dark(rng: np.random.Generator) -> tuple[Color, Color]:
    """A plain background and a text colour that reads on it."""
    if rng.random() < 0.65:
        bg, fg = _color(rng, 225, 256), _color(rng, 0, 70)
    else:
        bg, fg = _color(rng, 0, 50), _color(rng, 190, 256)
    if rng.random() < 0.2:  # a coloured page
        bg = _color(rng)
        fg = (0, 0, 0) if sum(bg) > 380 else (255, 255, 255)
    return bg, fg


def _fitting(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    """The longest run of `text`'s first words that fits in `width` pixels (at least one)."""
    words = text.split()
    line = words[0] if words else ""
    for word in words[1:]:
        candidate = f"{line} {word}"
        if draw.textlength(candidate, font=font) > width:
            break
        line = candidate
    return line


def _text(rng: np.random.Generator, i: int) -> Sample:
    w, h = _size(rng, lo=320)
    bg, fg = _light_dark(rng)
    image = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(image)
    font_name = _FONT_FILES[int(rng.integers(len(_FONT_FILES)))]
    style = _choose(rng, ("paragraphs", "title", "big", "list"))
    margin = int(w * rng.uniform(0.03, 0.1))
    y = int(h * rng.uniform(0.03, 0.1))
    if style == "big":  # one or two words, very large
        text = _words(rng, int(rng.integers(1, 3))).rstrip(".")
        size = max(12, int(min(h * 0.5, w / max(len(text), 1) * 1.6)))
        font = _font(font_name, size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = max(0, (w - (right - left)) // 2)
        draw.text((x, (h - (bottom - top)) // 2 - top), text, font=font, fill=fg)
        return _sample(f"text_{style}", i, image, _choose(rng, ("PNG", "PNG", "JPEG")), rng)
    width = w - 2 * margin
    if style == "title":
        title = _words(rng, int(rng.integers(2, 6))).rstrip(".")
        title_size = max(14, int(h * rng.uniform(0.06, 0.12)))
        while title_size > 14 and draw.textlength(title, font=_font(font_name, title_size)) > width:
            title_size = max(14, int(title_size * 0.9))
        title_font = _font(font_name, title_size)
        draw.text((margin, y), _fitting(draw, title, title_font, width), font=title_font, fill=fg)
        y += int(title_size * 1.6)
    size = int(np.clip(rng.uniform(0.015, 0.06) * h + 8, 9, 72))
    font = _font(font_name, size)
    line_h = int(size * rng.uniform(1.2, 1.6))
    while y + line_h < h - margin:
        if style == "list":
            bullet = "-" if rng.random() < 0.5 else "*"
            line = _fitting(draw, f"{bullet} {_words(rng, int(rng.integers(2, 9)))}", font, width)
            draw.text((margin, y), line, font=font, fill=fg)
            y += line_h
            continue
        draw.text((margin, y), _fitting(draw, _words(rng, 60), font, width), font=font, fill=fg)
        y += line_h
        if rng.random() < 0.12:  # a paragraph break
            y += line_h
    return _sample(f"text_{style}", i, image, _choose(rng, ("PNG", "PNG", "JPEG", "WEBP")), rng)


_PLOT_KINDS = ("line", "bar", "scatter", "pie", "histogram", "heatmap", "area", "box")
_CMAPS = ("viridis", "plasma", "magma", "cividis", "coolwarm", "gray", "terrain", "Blues")


def _plot(rng: np.random.Generator, i: int) -> Sample:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kind = _PLOT_KINDS[(i // 2) % len(_PLOT_KINDS)]
    w, h = _size(rng, lo=320, hi=1400)
    dpi = int(rng.integers(72, 161))
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    dark = rng.random() < 0.2
    face = "#2b2b2b" if dark else "white"
    ink = "#dddddd" if dark else "black"
    fig.set_facecolor(face)
    ax = fig.add_subplot()
    ax.set_facecolor(face)
    n = int(rng.integers(5, 60))
    if kind == "line":
        x = np.arange(n)
        for _ in range(int(rng.integers(1, 5))):
            ax.plot(x, np.cumsum(rng.normal(0, 1, n)), marker="o" if rng.random() < 0.3 else "")
    elif kind == "bar":
        k = int(rng.integers(3, 13))
        labels = [_WORDS[int(j)][:8] for j in rng.integers(len(_WORDS), size=k)]
        values = rng.uniform(1, 100, k)
        if rng.random() < 0.5:
            ax.bar(range(k), values, tick_label=labels)
        else:
            ax.barh(range(k), values, tick_label=labels)
    elif kind == "scatter":
        m = int(rng.integers(20, 400))
        ax.scatter(
            rng.normal(0, 1, m),
            rng.normal(0, 1, m),
            c=rng.random(m),
            s=rng.uniform(5, 80, m),
            cmap=_choose(rng, _CMAPS),
            alpha=0.8,
        )
    elif kind == "pie":
        k = int(rng.integers(2, 8))
        ax.pie(rng.uniform(1, 10, k), labels=[f"part {j + 1}" for j in range(k)], autopct="%1.0f%%")
    elif kind == "histogram":
        ax.hist(rng.normal(0, 1, 2000) * rng.uniform(0.5, 3), bins=int(rng.integers(10, 60)))
    elif kind == "heatmap":
        k = int(rng.integers(5, 40))
        im = ax.imshow(rng.random((k, k)), cmap=_choose(rng, _CMAPS))
        fig.colorbar(im, ax=ax)
    elif kind == "area":
        x = np.arange(n)
        ax.stackplot(x, *np.abs(rng.normal(1, 0.5, (int(rng.integers(2, 5)), n))))
    else:
        ax.boxplot([rng.normal(0, s, 100) for s in rng.uniform(0.5, 2, int(rng.integers(2, 7)))])
    ax.set_title(_words(rng, int(rng.integers(1, 5))).rstrip("."), color=ink)
    if kind != "pie":
        ax.set_xlabel(_WORDS[int(rng.integers(len(_WORDS)))], color=ink)
        ax.set_ylabel(_WORDS[int(rng.integers(len(_WORDS)))], color=ink)
        ax.tick_params(colors=ink)
        if rng.random() < 0.5:
            ax.grid(True, alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=face, metadata={"Software": None})
    data = buf.getvalue()
    width, height = fig.canvas.get_width_height()
    return Sample(f"plot_{kind}_{i:03d}_{width}x{height}.png", data)


def _text_or_plot(rng: np.random.Generator, i: int) -> Sample:
    return _text(rng, i) if i % 2 == 0 else _plot(rng, i)


def _shade(color: Color, amount: int) -> Color:
    r, g, b = (int(np.clip(c + amount, 0, 255)) for c in color)
    return (r, g, b)
