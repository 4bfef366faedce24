"""Verdict cards end to end, the real bot against the look-alike (which checks Discord's rules
for layout messages): a card per image in the class's colour with its thumbnail, verdict and
buttons; a vote on a card; ten images, ten sets of buttons; `!features` as a gallery; and
VERDICT_CARDS=false, the same text as plain messages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botkit import TOKEN as BOTKIT_TOKEN
from botkit import running_bot, sample
from e2e_support import (
    REPLY_TIMEOUT,
    Running,
    buttons_of,
    is_layout,
    rows_of,
    text_of,
    verdict_lines,
)

from bot import cards
from bot.replies import SCORE_NOTE
from playground.discord import DiscordServer
from playground.discord.components import walk

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120, func_only=True),
]

COLOURS = {"Jedi": cards.JEDI_COLOUR, "Sith": cards.SITH_COLOUR, "Can't tell": cards.GREY}


def containers(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in message["components"] if c["type"] == 17]


def replies_to(running: Running, message: dict[str, Any]) -> list[dict[str, Any]]:
    """The bot's replies to `message`, oldest first."""
    return [
        m
        for m in running.server.messages
        if (m.get("message_reference") or {}).get("message_id") == message["id"]
    ]


async def test_a_verdict_is_a_card_in_its_class_colour(running: Running) -> None:
    for name, data in (running.images[0], running.images[3]):
        message, reply = await running.command("!jedisith", [(name, data)])
        assert is_layout(reply) and reply["content"] == "" and not reply["embeds"]
        [card] = containers(reply)
        [section, row] = card["components"]
        [line] = verdict_lines(section["components"][0]["content"])
        label = re.match(r"\*\*(Jedi|Sith|Can't tell)\*\*", line)
        assert label and card["accent_color"] == COLOURS[label[1]]
        assert section["accessory"]["type"] == 11  # the image's thumbnail
        assert section["accessory"]["media"]["url"] == message["attachments"][0]["url"]
        assert [b["label"] for b in row["components"]] == ["Why?"]  # collection is off
        assert text_of(reply).endswith(SCORE_NOTE)


async def test_vote_buttons_are_inside_each_card_and_a_vote_works(running: Running) -> None:
    _, on = await running.command("!dataset collect on")
    assert "**on**" in text_of(on)
    _, reply = await running.command("!jedisith", [running.images[0], running.images[4]])
    assert len(containers(reply)) == 2 and len(verdict_lines(text_of(reply))) == 2
    for number, card in enumerate(containers(reply), start=1):
        [row] = [c for c in card["components"] if c["type"] == 1]
        labels = [b["label"] for b in row["components"]]
        assert labels[-4:] == [f"{number}. It's a {n}" for n in ("Jedi", "Sith")] + [
            f"{number}. Neither",
            f"{number}. Why?",
        ]
        assert all(f":{number - 1}:" in b["custom_id"] for b in row["components"])
    button = next(b for b in buttons_of(reply) if b["label"] == "2. It's a Sith")
    interaction = await running.server.click_button(
        reply["id"], button["custom_id"], user={"username": "ahsoka"}
    )
    answer = await running.server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    assert text_of(answer).startswith("Thanks! Kept with your label, **Sith**."), text_of(answer)


async def test_ten_images_get_ten_sets_of_buttons(running: Running) -> None:
    """Plain messages hold five rows of buttons; cards spread over replies hold all ten."""
    files = [(f"pic-{n}.png", running.images[n % 6][1]) for n in range(10)]
    message, first = await running.command("!jedisith", files)
    last = await running.server.wait_for_message(
        lambda m: is_layout(m) and "10. `pic-9.png`" in text_of(m), timeout=REPLY_TIMEOUT
    )
    replies = replies_to(running, message)
    assert replies[0]["id"] == first["id"] and replies[-1]["id"] == last["id"]
    assert all(is_layout(m) and len(list(walk(m["components"]))) <= 40 for m in replies)
    assert sum(len(containers(m)) for m in replies) == 10
    text = "\n".join(text_of(m) for m in replies)
    assert len(verdict_lines(text)) == 10 and text.endswith(text_of(last).splitlines()[-1])
    rows = [row for m in replies for row in rows_of(m)]
    assert len(rows) == 10
    for index, row in enumerate(rows):
        ids = [b["custom_id"] for b in row["components"]]
        assert any(i.startswith("jedisith:vote:") for i in ids) and ids[-1].startswith(
            "jedisith:why:"
        )
        assert all(f"{message['id']}:{index}:" in i for i in ids)


async def test_features_are_a_media_gallery(running: Running) -> None:
    _, reply = await running.command("!features", [running.images[1]])
    assert is_layout(reply)
    [caption, gallery] = reply["components"]
    assert caption["type"] == 10 and caption["content"].startswith("What the network sees")
    assert gallery["type"] == 12
    urls = [item["media"]["url"] for item in gallery["items"]]
    assert urls == [a["url"] for a in reply["attachments"]] and len(urls) == 5


async def test_verdict_cards_false_gives_the_same_text_as_a_plain_message() -> None:
    texts = []
    for verdict_cards in (True, False):
        async with (
            DiscordServer(token=BOTKIT_TOKEN) as server,
            running_bot(server, verdict_cards=verdict_cards) as bot,
        ):
            reply = await bot.command(sample("sith-1"), sample("jedi-2"))
            assert is_layout(reply) is verdict_cards
            texts.append(text_of(reply))
            if not verdict_cards:
                assert [c["type"] for c in reply["components"]] == [1, 1]  # Why? rows
    assert texts[0] == texts[1] and len(verdict_lines(texts[1])) == 2
