"""Why? end to end: `!why`, `/why` and the Why? button under a verdict, the real bot against the
local Discord look-alike; each answers with the image's heatmap as a PNG."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from e2e_support import REPLY_TIMEOUT, Running, buttons_of, png_size, replied_to, rows_of, text_of

from bot.feedback import WHY_TEMPLATE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(60, func_only=True),
]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return buttons_of(message)


async def heatmap_of(answer: dict[str, Any]) -> tuple[int, int]:
    """The size of the one PNG an answer carries (fetched from the look-alike's CDN)."""
    [attachment] = answer["attachments"]
    assert attachment["filename"] == "why.png"
    async with aiohttp.ClientSession() as session, session.get(attachment["url"]) as response:
        assert response.status == 200
        return png_size(await response.read())


async def test_why_after_an_image_answers_with_its_heatmap(running: Running) -> None:
    await running.server.post_message("", attachments=[running.images[4]])
    message, reply = await running.command("!why")
    assert replied_to(reply) == message["id"]
    assert re.match(r"Why (Jedi|Sith) \([01]\.\d{3}\)\?", text_of(reply)), text_of(reply)
    width, height = await heatmap_of(reply)
    assert width > 200 and height > 200


async def test_a_second_why_on_the_same_image_is_served_from_memory(running: Running) -> None:
    _, first = await running.command("!why", [running.images[2]])
    judged = running.worker.stats().images
    _, second = await running.command("!why", [running.images[2]])
    assert running.worker.stats().images == judged  # no forward pass the second time
    assert text_of(second) == text_of(first)
    assert await heatmap_of(second) == await heatmap_of(first)


async def test_the_why_button_under_a_verdict_answers_with_a_heatmap(running: Running) -> None:
    server = running.server
    _, reply = await running.command("!jedisith", [running.images[0], running.images[3]])
    why = [b for b in buttons(reply) if b["label"].endswith("Why?")]
    assert [b["label"] for b in why] == ["1. Why?", "2. Why?"]
    assert all(re.fullmatch(WHY_TEMPLATE, b["custom_id"]) for b in why)
    assert why == buttons(reply)  # collection is off here: Why? is the only button
    for row in rows_of(reply):
        assert len(row["components"]) <= 5  # Discord's limit per row
    interaction = await server.click_button(reply["id"], why[1]["custom_id"])
    answer = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    assert answer["flags"] & 64, "answers to clicks are ephemeral"
    assert text_of(answer).startswith("Why ")
    width, _ = await heatmap_of(answer)
    assert width > 200


async def test_the_slash_command(running: Running) -> None:
    server = running.server
    interaction = await server.invoke_slash_command(
        "why", {"image": ("slash-why.png", running.images[5][1])}
    )
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    assert text_of(reply).startswith("Why ")
    width, _ = await heatmap_of(reply)
    assert width > 200


async def test_a_slash_verdicts_why_button_works_without_a_message(running: Running) -> None:
    server = running.server
    interaction = await server.invoke_slash_command(
        "jedisith", {"image": ("slash.png", running.images[1][1])}
    )
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    [why] = [b for b in buttons(reply) if b["label"] == "Why?"]
    assert why["custom_id"].startswith("jedisith:why:0:0:")
    click = await server.click_button(reply["id"], why["custom_id"])
    answer = await server.wait_for_reply(click["id"], timeout=REPLY_TIMEOUT)
    assert text_of(answer).startswith("Why ")
    await heatmap_of(answer)
