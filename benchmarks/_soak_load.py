"""What the soak (`benchmarks.soak`) sends and how it counts the replies: the waves, the
images, the reply log and its tally, and the bot settings it compares."""

from __future__ import annotations

import argparse
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks._common import REPO, sample_pngs
from playground.discord.layouts import message_text

PHOTO_SHARE = 0.08  # attachments that are a large photo-like JPEG (--photo-share)
PHOTO_SIZES = ((1280, 960), (1600, 1200), (3000, 2000))
SAMPLES = REPO / "playground" / "samples"
VERDICT = re.compile(r"\*\*(Jedi|Sith|Can't tell)\*\* - score")
REFUSED = "**Not a Jedi or a Sith?**"
BUSY = "I'm busy"


# -- pure helpers (tested in tests/benchmarks) ------------------------------------------------


def plan_waves(
    total: int,
    low: int,
    high: int,
    marks: Iterable[int],
    rng: np.random.Generator,
    first: int | None = None,
) -> list[int]:
    """Wave sizes from [low, high] that add up to `total`, with a wave ending at every mark (a
    command count, e.g. the warm-up) below `total`; the first wave has `first` commands when
    given (at most up to the first mark). A wave is smaller than `low` only where two marks are
    closer than that."""
    if total < 1 or not 1 <= low <= high:
        raise ValueError("need total >= 1 and 1 <= low <= high")
    stops = sorted({m for m in marks if 0 < m < total} | {total})
    sizes: list[int] = []
    done = 0
    for stop in stops:
        while done < stop:
            left = stop - done
            size = int(rng.integers(low, high + 1)) if first is None or sizes else first
            if size >= left:
                size = left
            elif left - size < low:  # leave at least `low` for the next wave
                size = left - low if left >= 2 * low else left if left <= high else left // 2
            sizes.append(size)
            done += size
    return sizes


@dataclass
class ReplyLog:
    """The bot's messages as the server's feed shows them, counted by the message each one
    replies to (`message_reference.message_id`); `unreferenced` counts the others."""

    bot_id: str
    counts: Counter[str] = field(default_factory=Counter)
    arrived: dict[str, float] = field(default_factory=dict)  # first reply, perf_counter
    contents: dict[str, str] = field(default_factory=dict)  # first reply's text
    unreferenced: int = 0
    waiting: set[str] = field(default_factory=set)

    def feed(self, event: Mapping[str, Any], now: float) -> None:
        if event.get("type") != "message_create":
            return
        message = event["data"]
        if str(message["author"]["id"]) != self.bot_id:
            return
        replied_to = (message.get("message_reference") or {}).get("message_id")
        if replied_to is None:
            self.unreferenced += 1
            return
        replied_to = str(replied_to)
        self.counts[replied_to] += 1
        if replied_to not in self.arrived:
            self.arrived[replied_to] = now
            self.contents[replied_to] = message_text(message)
        self.waiting.discard(replied_to)


@dataclass(frozen=True)
class Tally:
    missing: list[str]
    doubled: dict[str, int]  # command id -> replies, for those with more than one
    stray: int  # bot messages replying to something that is not one of the commands

    @property
    def ok(self) -> bool:
        return not self.missing and not self.doubled and not self.stray


def tally(commands: Iterable[str], log: ReplyLog) -> Tally:
    """Whether each command got exactly one reply, and nothing else was said."""
    ids = [str(c) for c in commands]
    known = set(ids)
    missing = [c for c in ids if log.counts[c] == 0]
    doubled = {c: log.counts[c] for c in ids if log.counts[c] > 1}
    stray = log.unreferenced + sum(n for c, n in log.counts.items() if c not in known)
    return Tally(missing, doubled, stray)


def reply_kind(content: str) -> str:
    """`verdict` (at least one image judged), `refused` (only "Not a Jedi or a Sith?"),
    `busy` (the retry reply), or `other` (an error line)."""
    if BUSY in content:
        return "busy"
    if VERDICT.search(content):
        return "verdict"
    if REFUSED in content:
        return "refused"
    return "other"


def parse_setting(text: str) -> dict[str, str]:
    """`BATCH_SIZE=8,MAX_IMAGES=4` -> {"BATCH_SIZE": "8", "MAX_IMAGES": "4"}."""
    pairs = [part.strip() for part in text.split(",") if part.strip()]
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE[,NAME=VALUE...], got {text!r}")
        env[name.strip()] = value.strip()
    return env


def roomy_limits():
    """The look-alike's bounds with room for a whole wave's files and events: the bot must
    find every attachment it is sent, and the feed must lose no reply."""
    from playground.discord.state import Limits

    return Limits(files=5000, file_bytes=1 << 30, queue=1_000_000)


def mb(kb: float) -> float:
    """kB (as /proc reports them, KiB) -> MB (10^6 bytes)."""
    return kb * 1024 / 1e6


# -- the images -------------------------------------------------------------------------------


def noise_png(megabytes: float, seed: int) -> bytes:
    """A PNG of RGB noise weighing about `megabytes` (noise does not compress)."""
    from PIL import Image

    side = max(16, int((megabytes * 1e6 / 3) ** 0.5))
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG", compress_level=1)
    return out.getvalue()


def photo_jpeg(width: int, height: int, seed: int) -> bytes:
    """A photo-like JPEG: soft light, a few blurred blobs, grain (quality 90)."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    small = rng.normal(128, 60, (height // 32 + 2, width // 32 + 2, 3)).clip(0, 255)
    image = Image.fromarray(small.astype(np.uint8)).resize((width, height), Image.BICUBIC)
    image = image.filter(ImageFilter.GaussianBlur(radius=width / 200))
    pixels = np.asarray(image, dtype=np.float32)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 0.6 + 0.4 * np.cos((x / width - 0.3) * np.pi) * np.cos((y / height - 0.4) * np.pi)
    pixels = pixels * light[..., None] + rng.normal(0, 7, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@dataclass(frozen=True)
class Images:
    small: list[tuple[str, bytes]]  # the drawings: sample JPEGs and synthetic PNGs
    photos: list[tuple[str, bytes]]
    photo_share: float = PHOTO_SHARE

    def pick(self, rng: np.random.Generator) -> tuple[str, bytes]:
        pool = self.photos if rng.random() < self.photo_share else self.small
        return pool[int(rng.integers(len(pool)))]


def soak_images(photo_share: float = PHOTO_SHARE) -> Images:
    small = [(p.name, p.read_bytes()) for p in sorted(SAMPLES.glob("*.jpg"))]
    small += [(f"scene{i:02d}.png", png) for i, png in enumerate(sample_pngs(16))]
    photos = [
        (f"photo{i}-{w}x{h}.jpg", photo_jpeg(w, h, seed=i)) for i, (w, h) in enumerate(PHOTO_SIZES)
    ]
    return Images(small, photos, photo_share)
