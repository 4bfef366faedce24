"""When the bot asks for a label: on a verdict a label would teach most, in a server that
collects, at most at the server's rate in each channel (`!settings ask`, `!settings ask_hour`);
and what `!dataset` says would help most.

A label teaches most where the model is unsure: a verdict among the least sure of its server's
recent verdicts (ranked by the head's own margin from the decision, not by a fixed band: on
photographs calibrated scores crowd near 0.5), a distance near the detector's threshold (either
side), or an image whose votes in this server disagree. The recent margins and the rate are kept
in this process's memory, per server and per channel (a server is served by one shard).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import server_settings
from bot.feedback import MAX_ROWS, Judged
from dataset import DatasetError
from dataset.labels import HOLDOUT_PERCENT
from model.runtime import Prediction

if TYPE_CHECKING:
    import discord
    from discord.ext import commands

    from dataset import DatasetStore

log = logging.getLogger(__name__)

RECENT = 50  # verdicts per server whose margins a new verdict is ranked against
SERVERS = 10_000  # servers whose recent margins one process remembers; the least recent go first
NEAR_THRESHOLD = 0.2  # distances within this fraction of the detector's threshold, either side
HOUR = 3600.0
CHANNELS = 10_000  # channels whose rate one process remembers; the least recent go first
UNSURE_SCORED = 100  # `!dataset` scores the server's latest labelled images kept from a message
UNSURE_CHUNK = 10  # read and scored this many at a time (the bytes of one chunk in memory)
UNSURE_SHOWN = 5


def margin(prediction: Prediction) -> float:
    """How far the head's own score is from the decision (0: on it, 0.5: sure); calibration
    keeps the order, so this ranks verdicts as the calibrated score would, without its crowding."""
    score = prediction.score if prediction.raw_score is None else prediction.raw_score
    return abs(score - 0.5)


def near_threshold(prediction: Prediction) -> bool:
    """Whether the detector's distance is within `NEAR_THRESHOLD` of its threshold, either side:
    far beyond it the image is plainly unlike, and a label teaches little about the edge."""
    distance, threshold = prediction.distance, prediction.threshold
    if distance is None or threshold is None or threshold <= 0:
        return False
    return abs(distance - threshold) <= NEAR_THRESHOLD * threshold


class RecentMargins:
    """Per server, the margins of its latest `RECENT` verdicts, to rank a new verdict against."""

    def __init__(self, *, recent: int = RECENT, size: int = SERVERS) -> None:
        self._recent = recent
        self._size = size
        self._servers: OrderedDict[int, deque[float]] = OrderedDict()

    def among_least_sure(self, guild_id: int, prediction: Prediction, every: int) -> bool:
        """Remember the verdict's margin; whether it is among the least sure one in `every` of
        the server's recent verdicts (itself included; the first verdict is). 0: never."""
        window = self._servers.pop(guild_id, None) or deque(maxlen=self._recent)
        value = margin(prediction)
        window.append(value)
        self._servers[guild_id] = window
        while len(self._servers) > self._size:
            self._servers.popitem(last=False)
        if every <= 0:
            return False
        below = sum(1 for other in window if other < value)
        return below < max(1, len(window) // every)


def question(numbers: Sequence[int], many: bool) -> str:
    """The asking line, about the images `numbers` (1-based) of a reply about `many` or one."""
    if not many:
        return "I'm unsure about this one: which is it?"
    if len(numbers) == 1:
        return f"I'm unsure about image {numbers[0]}: which is it?"
    listed = ", ".join(str(n) for n in numbers[:-1]) + f" and {numbers[-1]}"
    return f"I'm unsure about images {listed}: which are they?"


class AskingRate:
    """Per channel, the verdicts since the last ask and the times of the last hour's asks."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, size: int = CHANNELS
    ) -> None:
        self._clock = clock
        self._size = size
        self._channels: OrderedDict[int, tuple[int | None, deque[float]]] = OrderedDict()

    def take(self, channel_id: int, wanted: bool, every: int, per_hour: int) -> bool:
        """Count one verdict in the channel; whether to ask on it: it is `wanted`, no ask came
        in the `every` - 1 verdicts before it, and fewer than `per_hour` in the last hour."""
        now = self._clock()
        since, asks = self._channels.pop(channel_id, (None, deque()))  # None: no ask remembered
        while asks and asks[0] <= now - HOUR:
            asks.popleft()
        allowed = every > 0 and (since is None or since + 1 >= every) and len(asks) < per_hour
        if wanted and allowed:
            asks.append(now)
            since = 0
        elif since is not None:
            since += 1
        self._channels[channel_id] = (since, asks)
        while len(self._channels) > self._size:
            self._channels.popitem(last=False)
        return wanted and allowed


_rates: weakref.WeakKeyDictionary[Any, tuple[AskingRate, RecentMargins]] = (
    weakref.WeakKeyDictionary()
)


def rate_of(bot: commands.Bot) -> tuple[AskingRate, RecentMargins]:
    """The bot's asking rate and its servers' recent margins (made on first use)."""
    found = _rates.get(bot)
    if found is None:
        found = _rates[bot] = (AskingRate(), RecentMargins())
    return found


async def ask_line(
    bot: commands.Bot,
    guild: discord.Guild | None,
    channel_id: int | None,
    judged: Sequence[Judged],
) -> str:
    """The asking line for a verdict reply that carries vote buttons (collection is on), or ""
    when its images are sure or the channel's rate is spent; never in a DM."""
    if guild is None or channel_id is None or not judged:
        return ""
    server = await server_settings.of(bot).get(guild.id)
    shown = list(judged[:MAX_ROWS])  # the images that have buttons
    rate, margins = rate_of(bot)
    wanted = [
        item
        for item in shown
        if margins.among_least_sure(guild.id, item.prediction, server.ask_every)
        or near_threshold(item.prediction)
    ]
    store: DatasetStore | None = bot.dataset  # type: ignore[attr-defined]
    if not wanted and store is not None:
        wanted = await asyncio.to_thread(_disagreeing, store, guild.id, shown)
    if not rate.take(channel_id, bool(wanted), server.ask_every, server.ask_per_hour):
        return ""
    return question([item.index + 1 for item in wanted], len(judged) > 1)


def _disagreeing(store: DatasetStore, guild_id: int, judged: Sequence[Judged]) -> list[Judged]:
    """The images whose votes in this server disagree (only images the dataset already keeps)."""
    found = []
    for item in judged:
        try:
            label = store.label_of(hashlib.sha256(item.data).hexdigest(), guild_id)
        except DatasetError:  # not kept: nobody voted on it
            continue
        except Exception:  # the database is away: this verdict asks for nothing
            log.exception("could not read the votes of an image in server %s", guild_id)
            return []
        if label.conflict or sum(1 for n in label.votes.values() if n) > 1:
            found.append(item)
    return found


# -- what `!dataset` says would help most -------------------------------------------------------


async def least_sure(bot: commands.Bot, guild_id: int) -> list[tuple[float, str]]:
    """The server's labelled images its model is least sure about now, as (score, link to the
    message that carried it), of its `UNSURE_SCORED` latest kept from a message; only its own."""
    store: DatasetStore | None = bot.dataset  # type: ignore[attr-defined]
    if store is None:
        return []
    try:
        links = await asyncio.to_thread(store.message_links, guild_id, UNSURE_SCORED)
        paths = {
            image.sha256: image.path for image in await asyncio.to_thread(store.labelled, guild_id)
        }
        found = [(paths[sha], channel, message) for sha, channel, message in links if sha in paths]
        head = await asyncio.to_thread(bot.heads.get, guild_id)  # type: ignore[attr-defined]
        worker = bot.worker  # type: ignore[attr-defined]
        outcomes: list[Prediction | Exception] = []
        for start in range(0, len(found), UNSURE_CHUNK):
            chunk = [path for path, _, _ in found[start : start + UNSURE_CHUNK]]
            blobs = await asyncio.to_thread(_read_all, chunk)
            outcomes += await worker.classify_bytes(blobs, head=head)
    except Exception:  # `!dataset` answers without this part
        log.exception("could not score the labelled images of server %s", guild_id)
        return []
    scored = [
        (outcome.score, f"https://discord.com/channels/{guild_id}/{channel}/{message}")
        for (_, channel, message), outcome in zip(found, outcomes, strict=True)
        if isinstance(outcome, Prediction)
    ]
    scored.sort(key=lambda item: abs(item[0] - 0.5))
    return scored[:UNSURE_SHOWN]


def describe_needs(
    counts: Mapping[str, Mapping[str, int]],
    class_names: Sequence[str],
    minimum: int,
    unsure: Sequence[tuple[float, str]],
) -> list[str]:
    """`!dataset`'s lines on what would help most: per class, the labels a retrain still needs
    (`minimum` outside the holdout; `counts`: label -> split -> images), and the `unsure` images."""
    lines = ["**What would help most**"]
    for name in class_names:
        train = counts.get(name, {}).get("train", 0)
        short = minimum - train
        if short <= 0:
            lines.append(f"- {name.capitalize()}: enough for a retrain ({train} of {minimum})")
            continue
        labels = math.ceil(short * 100 / (100 - HOLDOUT_PERCENT))
        lines.append(
            f"- {name.capitalize()}: {short} more outside the holdout for a retrain (about "
            f"{labels} new labels, as one image in {100 // HOLDOUT_PERCENT} is held out)"
        )
    if unsure:
        shown = ", ".join(f"[{score:.2f}](<{url}>)" for score, url in unsure)
        lines.append(f"- Least sure here (score: Sith's probability; a second look helps): {shown}")
    return lines


def _read_all(paths: Sequence[Path]) -> list[bytes | Exception]:
    """Each file's bytes, or the error that says why it could not be read."""
    blobs: list[bytes | Exception] = []
    for path in paths:
        try:
            blobs.append(Path(path).read_bytes())
        except OSError as error:
            blobs.append(error)
    return blobs
