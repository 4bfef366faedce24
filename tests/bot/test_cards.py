"""bot.cards: the accent of a verdict, and cards packed into messages within Discord's limits
(40 components, 4,000 characters), saying so in a line when buttons no longer fit."""

from __future__ import annotations

import discord

from bot import cards
from model.runtime import Prediction


def test_the_accent_is_the_class_colour_and_grey_without_a_verdict() -> None:
    assert cards.colour(Prediction("jedi", 0.02), 0.1, "refuse") == cards.JEDI_COLOUR
    assert cards.colour(Prediction("sith", 0.97), 0.1, "refuse") == cards.SITH_COLOUR
    assert cards.colour(Prediction("sith", 0.55), 0.1, "refuse") == cards.GREY  # can't tell
    unlike = Prediction("sith", 0.97, raw_score=0.97, distance=9.5, threshold=6.0)
    assert cards.colour(unlike, 0.1, "refuse") == cards.GREY  # not a Jedi or a Sith
    assert cards.colour(unlike, 0.1, "warn") == cards.SITH_COLOUR
    assert cards.colour(None, 0.1, "refuse") == cards.GREY  # could not be judged


def card(number: int, buttons: int = 5) -> cards.Card:
    items: list[discord.ui.Item] = [
        discord.ui.Button(label=f"{number}.{b}", custom_id=f"c{number}.{b}") for b in range(buttons)
    ]
    line = f"{number}. `pic-{number}.png`: **Sith** - score 0.973 (very sure, 97%)"
    return cards.Card(line, cards.SITH_COLOUR, f"https://cdn.example/{number}.png", items)


def check(views: list[discord.ui.LayoutView]) -> None:
    for view in views:
        assert view.total_children_count <= cards.MAX_COMPONENTS
        assert view.content_length() <= cards.MAX_TEXT


def test_four_cards_of_five_buttons_share_a_message_and_the_notes_go_last() -> None:
    views = cards.layouts([card(n) for n in range(1, 11)], "-# notes")
    check(views)
    assert [len(v.children) for v in views] == [4, 4, 3]  # 2 cards and the notes
    last = views[-1].children[-1]
    assert isinstance(last, discord.ui.TextDisplay) and last.content == "-# notes"


def test_notes_that_would_pass_40_components_end_the_last_card_text() -> None:
    four = [card(n) for n in range(1, 5)]  # 40 components: no room for a 41st
    [view] = cards.layouts(four, "-# notes")
    check([view])
    assert len(view.children) == 4 and four[-1].line.endswith("\n-# notes")
    last = view.children[-1]
    assert isinstance(last, discord.ui.Container)
    texts = [c.content for c in last.walk_children() if isinstance(c, discord.ui.TextDisplay)]
    assert texts == [four[-1].line]


def test_past_five_messages_the_last_cards_lose_their_buttons_as_a_line_says() -> None:
    many = [card(n) for n in range(1, 26)]
    views = cards.layouts(many, "")
    check(views)
    assert len(views) <= cards.MAX_MESSAGES
    assert [bool(c.buttons) for c in many] == [True] * 16 + [False] * 9
    notes = views[-1].children[-1]
    assert isinstance(notes, discord.ui.TextDisplay)
    assert (
        notes.content
        == "-# Images 17-25 have no buttons here: one reply holds buttons for 16 images at most."
    )


def test_a_card_without_an_image_has_no_thumbnail() -> None:
    bare = cards.Card("`x.png`: not an image", cards.GREY)
    [view] = cards.layouts([bare])
    [container] = view.children
    assert isinstance(container, discord.ui.Container)
    assert [type(c) for c in container.children] == [discord.ui.TextDisplay]
