"""The verdict card: a verdict as a Components V2 layout (`discord.ui.LayoutView`).

One `Container` per image, its accent in the class's colour (blue for Jedi, red for Sith, grey
for "not a Jedi or a Sith", "can't tell" and images that could not be judged), the image's
thumbnail beside the verdict line of `bot.replies` (the score and how sure), and the image's
vote and Why? buttons in an action row inside it. Discord allows 40 components and 4,000
characters of text in one message, so the cards are packed into as few messages as hold them
(four cards with five buttons each); the notes under the verdicts go last, in the last card's
text when a component of their own would not fit.

`VERDICT_CARDS=false` keeps the plain text of `bot.replies`, which is also each card's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import discord

from bot import replies
from model.runtime import Prediction

JEDI_COLOUR = 0x3B82F6
SITH_COLOUR = 0xDC2626
GREY = 0x9CA3AF
COLOURS = {"jedi": JEDI_COLOUR, "sith": SITH_COLOUR}
MAX_COMPONENTS = 40  # in one message, however deep
MAX_TEXT = 4000  # characters of all its text displays
NOTES_ROOM = 600  # characters kept in each message for the notes under the cards
MAX_MESSAGES = 5  # a user install's reply: the response and followups, within Discord's five
NO_ROOM = (
    "-# Images {first}-{last} have no buttons here: "
    "one reply holds buttons for {cards} images at most."
)


@dataclass
class Card:
    """One image's card: its verdict line, accent colour, thumbnail URL and buttons."""

    line: str
    colour: int
    thumbnail: str | None = None
    buttons: list[discord.ui.Item] = field(default_factory=list)

    def size(self) -> int:
        """Its components: container, section (text, thumbnail) or text, row and buttons."""
        count = 1 + (3 if self.thumbnail else 1)
        return count + (1 + len(self.buttons) if self.buttons else 0)

    def container(self) -> discord.ui.Container:
        text = discord.ui.TextDisplay(self.line)
        head: discord.ui.Item = text
        if self.thumbnail:
            head = discord.ui.Section(text, accessory=discord.ui.Thumbnail(self.thumbnail))
        parts: list[discord.ui.Item] = [head]
        if self.buttons:
            parts.append(discord.ui.ActionRow(*self.buttons))
        return discord.ui.Container(*parts, accent_colour=self.colour)


def colour(prediction: Prediction | None, band: float, policy: str) -> int:
    """The accent of a verdict: its class's colour, grey when there is no verdict to colour."""
    if prediction is None or replies.is_uncertain(prediction, band):
        return GREY
    if replies.is_unlike(prediction, policy) and policy == "refuse":
        return GREY
    return COLOURS.get(prediction.label, GREY)


def layouts(cards: Sequence[Card], notes: str = "") -> list[discord.ui.LayoutView]:
    """The messages that hold `cards` (one container each) and then `notes`, each within
    Discord's limits; past `MAX_MESSAGES`, the last cards go without buttons, as a line says."""
    cards = list(cards)
    groups = _pack(cards)
    if len(groups) > MAX_MESSAGES:
        kept = sum(len(group) for group in groups[: MAX_MESSAGES - 1])
        for card in cards[kept:]:
            card.buttons = []
        first, last = kept + 1, len(cards)
        note = NO_ROOM.format(first=first, last=last, cards=kept)
        notes = f"{notes}\n{note}" if notes else note
        groups = _pack(cards)
    views = []
    for number, group in enumerate(groups, start=1):
        view = discord.ui.LayoutView(timeout=None)
        for card in group:
            view.add_item(card.container())
        if notes and number == len(groups):
            _add_notes(view, group, notes)
        views.append(view)
    return views


def _pack(cards: list[Card]) -> list[list[Card]]:
    """Cards in order, as many to a message as its 40 components and 4,000 characters allow
    (with room for the notes' characters)."""
    groups: list[list[Card]] = [[]]
    size = text = 0
    for card in cards:
        if groups[-1] and (
            size + card.size() > MAX_COMPONENTS or text + len(card.line) > MAX_TEXT - NOTES_ROOM
        ):
            groups.append([])
            size = text = 0
        groups[-1].append(card)
        size += card.size()
        text += len(card.line)
    return groups


def _add_notes(view: discord.ui.LayoutView, group: list[Card], notes: str) -> None:
    """The notes under the last card: a text of their own, or, where that would pass 40
    components, at the end of the last card's text (the same words, one component less)."""
    if view.total_children_count < MAX_COMPONENTS or not group:
        view.add_item(discord.ui.TextDisplay(notes))
        return
    view.clear_items()
    group[-1].line = f"{group[-1].line}\n{notes}"
    for card in group:
        view.add_item(card.container())


def gallery(caption: str, filenames: Sequence[str]) -> discord.ui.LayoutView:
    """`!features`: the caption above a media gallery of the uploaded `filenames`."""
    view = discord.ui.LayoutView(timeout=None)
    if caption:
        view.add_item(discord.ui.TextDisplay(caption))
    items = [discord.MediaGalleryItem(f"attachment://{name}") for name in filenames]
    view.add_item(discord.ui.MediaGallery(*items))
    return view
