"""The feedback buttons under a verdict: "Right", "It's a Jedi", "It's a Sith", "Neither".

"Neither" (the label `dataset.labels.NEITHER`) comes first under an image the model refused as
unlike its images ("Am I right?" is then most likely answered by it), last under the others.

They are persistent: everything a click needs is in the button's `custom_id`, and the button
class is registered with discord.py at start-up (`add_dynamic_items`), so a button keeps working
after a restart, on a message posted days before. A `custom_id` names the vote, the message
that holds the image and its index among that message's attachments, and the first 16 hex digits
of the image's SHA-256, so a click on an image that was since replaced is refused rather than
labelling another picture:

    jedisith:vote:<label>:<r: "Right", c: a correction>:<message id, 0: none>:<index>:<sha16>

An image judged by a slash command lives in no message (its attachment URL expires), so its
buttons carry message 0 and the click finds the bytes in `RecentImages`, the bot's short memory
of what it judged lately (in memory only, never on disk: nothing is kept without a vote).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import discord

from bot import replies
from bot.images import declared_bytes, download
from bot.limits import Limited
from dataset.labels import NEITHER
from model.runtime import Prediction

PREFIX = "jedisith:vote"
TEMPLATE = (
    rf"{PREFIX}:(?P<label>[a-z0-9_-]{{1,20}}):(?P<kind>[rc]):(?P<message>\d{{1,20}}):"
    r"(?P<index>\d{1,2}):(?P<sha>[0-9a-f]{16})"
)
MAX_ROWS = 5  # Discord allows five rows of buttons: one image per row
RECENT_BYTES = 32 * 1024 * 1024  # as RECENT_IMAGE_BYTES (bot.settings)


@dataclass(frozen=True)
class Vote:
    """What a click says: `label` for the image `sha16` (attachment `index` of `message_id`)."""

    label: str
    right: bool  # the "Right" button: agreeing with the verdict
    message_id: int  # 0: a slash command's image, in no message
    index: int
    sha16: str

    @property
    def custom_id(self) -> str:
        kind = "r" if self.right else "c"
        return f"{PREFIX}:{self.label}:{kind}:{self.message_id}:{self.index}:{self.sha16}"

    @classmethod
    def parse(cls, match: re.Match[str]) -> Vote:
        return cls(
            label=match["label"],
            right=match["kind"] == "r",
            message_id=int(match["message"]),
            index=int(match["index"]),
            sha16=match["sha"],
        )


def sha16(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


async def fetch_clicked(
    bot: Any, channel: Any, message_id: int, index: int, digest: str, gone: Exception
) -> tuple[bytes, discord.Message]:
    """The image a button is about, downloaded again from the message that carried it (within
    the bot's download budget) and checked against the button's `digest`, with that message;
    `gone` is raised when the message, the attachment or those bytes are no longer there."""
    if not message_id or not isinstance(channel, discord.abc.Messageable):
        raise gone
    try:
        message = await channel.fetch_message(message_id)
    except (discord.NotFound, discord.Forbidden):
        raise gone from None
    if index >= len(message.attachments):
        raise gone
    settings = bot.settings
    attachment = message.attachments[index]
    with bot.downloads.reserve(declared_bytes([attachment], settings.max_image_bytes)):
        data = await download(
            bot.http_session, attachment, settings.max_image_bytes, settings.download_timeout
        )
    if sha16(data) != digest:
        raise gone
    return data, message


@dataclass(frozen=True)
class Judged:
    """One image a verdict reply is about, as the buttons need it."""

    index: int  # among the message's attachments
    data: bytes
    prediction: Prediction


def votes_for(
    judged: Judged, message_id: int, class_names: Sequence[str], band: float, policy: str
) -> list[tuple[Vote, str]]:
    """The buttons of one image: (vote, label). "Right" only when there is a verdict to agree
    with: not for "Can't tell", nor for an image the detector refused, whose first button is
    "Neither"."""
    digest = sha16(judged.data)
    prediction = judged.prediction
    buttons: list[tuple[Vote, str]] = []
    refused = replies.is_unlike(prediction, policy) and policy == "refuse"
    if not refused and not replies.is_uncertain(prediction, band):
        buttons.append((Vote(prediction.label, True, message_id, judged.index, digest), "Right"))
    for name in class_names:
        buttons.append(
            (Vote(name, False, message_id, judged.index, digest), f"It's a {name.capitalize()}")
        )
    neither = (Vote(NEITHER, False, message_id, judged.index, digest), "Neither")
    return [neither, *buttons] if refused else [*buttons, neither]


def feedback_view(
    judged: Sequence[Judged],
    message_id: int,
    class_names: Sequence[str],
    band: float,
    policy: str,
) -> discord.ui.View | None:
    """The buttons under a verdict reply: a row per judged image (the first five)."""
    if not judged:
        return None
    view = discord.ui.View(timeout=None)
    many = len(judged) > 1
    for row, item in enumerate(judged[:MAX_ROWS]):
        for button in vote_buttons(item, message_id, class_names, band, policy, many, row):
            view.add_item(button)
    return view


def vote_buttons(
    judged: Judged,
    message_id: int,
    class_names: Sequence[str],
    band: float,
    policy: str,
    numbered: bool = False,
    row: int | None = None,
) -> list[VoteButton]:
    """One image's vote buttons (labels led by its number when `numbered`), on `row` of a
    plain view, or for a card's action row (`bot.cards`); the same custom ids either way."""
    buttons = []
    for vote, label in votes_for(judged, message_id, class_names, band, policy):
        style = discord.ButtonStyle.success if vote.right else discord.ButtonStyle.secondary
        text = f"{judged.index + 1}. {label}" if numbered else label
        button = discord.ui.Button(style=style, label=text, custom_id=vote.custom_id, row=row)
        buttons.append(VoteButton(button))
    return buttons


class VoteButton(Limited, discord.ui.DynamicItem[discord.ui.Button], template=TEMPLATE):
    """A feedback button, rebuilt from its `custom_id` at every click (rate-limited first)."""

    def __init__(self, button: discord.ui.Button) -> None:
        super().__init__(button)

    @property
    def vote(self) -> Vote:
        match = self.template.match(self.custom_id)
        assert match is not None  # DynamicItem checked it
        return Vote.parse(match)

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> VoteButton:
        return cls(item)

    async def callback(self, interaction: discord.Interaction) -> Any:  # type: ignore[override]
        collector: FeedbackCollector | None = getattr(interaction.client, "feedback", None)
        if collector is None:  # pragma: no cover - the button is registered with its collector
            await interaction.response.send_message("Feedback is not enabled.", ephemeral=True)
            return
        await collector.record_click(interaction, self.vote)


class FeedbackCollector(Protocol):
    """The feature that learns from the server, as the others use it (the bot holds it as
    `feedback` while it is loaded): the buttons under a verdict, and what a click records."""

    async def verdict_extras(
        self, guild: discord.Guild | None, judged: Sequence[Judged], message_id: int
    ) -> tuple[str, discord.ui.View | None]: ...

    async def record_click(self, interaction: discord.Interaction, vote: Vote) -> None: ...

    async def collecting(self, guild: discord.Guild | None) -> bool: ...

    @property
    def class_names(self) -> tuple[str, ...]: ...


class RecentImages:
    """The bytes of images judged lately, by `sha16`, at most `limit` bytes (oldest go first).

    A click soon after a verdict needs no second download, and a slash command's image (which no
    message keeps) can be labelled at all. In memory only: a restart forgets it.
    """

    def __init__(self, limit: int = RECENT_BYTES) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def add(self, data: bytes) -> str:
        key = sha16(data)
        if key in self._items:
            self._items.move_to_end(key)
            return key
        if len(data) > self.limit:
            return key
        self._items[key] = data
        self.size += len(data)
        while self.size > self.limit:
            _, old = self._items.popitem(last=False)
            self.size -= len(old)
        return key

    def get(self, key: str) -> bytes | None:
        return self._items.get(key)

    def __len__(self) -> int:
        return len(self._items)


# -- the Why? button under each verdict (bot.exts.why), with collection on or off -------------

WHY_PREFIX = "jedisith:why"
WHY_TEMPLATE = rf"{WHY_PREFIX}:(?P<message>\d{{1,20}}):(?P<index>\d{{1,2}}):(?P<sha>[0-9a-f]{{16}})"


def add_why_buttons(
    view: discord.ui.View | None, judged: Sequence[Judged], message_id: int
) -> discord.ui.View | None:
    """`view` (or a new one) with a Why? button on each judged image's row (the first five)."""
    if not judged:
        return view
    view = view if view is not None else discord.ui.View(timeout=None)
    many = len(judged) > 1
    for row, item in enumerate(judged[:MAX_ROWS]):
        view.add_item(why_button(item, message_id, many, row))
    return view


def why_button(
    judged: Judged, message_id: int, numbered: bool = False, row: int | None = None
) -> WhyButton:
    """The Why? button of one image, for a plain view's `row` or a card's action row."""
    custom_id = f"{WHY_PREFIX}:{message_id}:{judged.index}:{sha16(judged.data)}"
    label = f"{judged.index + 1}. Why?" if numbered else "Why?"
    button = discord.ui.Button(
        style=discord.ButtonStyle.primary, label=label, custom_id=custom_id, row=row
    )
    return WhyButton(button)


class WhyButton(Limited, discord.ui.DynamicItem[discord.ui.Button], template=WHY_TEMPLATE):
    """Why?: the heatmap of the image a verdict is about (rate-limited first, as every click)."""

    def __init__(self, button: discord.ui.Button) -> None:
        super().__init__(button)

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> WhyButton:
        return cls(item)

    async def callback(self, interaction: discord.Interaction) -> Any:  # type: ignore[override]
        match = self.template.match(self.custom_id)
        assert match is not None  # DynamicItem checked it
        explainer = getattr(interaction.client, "why", None)
        if explainer is None:  # pragma: no cover - the button is registered with its cog
            await interaction.response.send_message("Why? is not available.", ephemeral=True)
            return
        await explainer.explain_click(
            interaction, int(match["message"]), int(match["index"]), match["sha"]
        )
