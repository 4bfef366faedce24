"""The rate limit on every command and click, end to end: the real bot against the look-alike,
as a hostile member tried it (46 `!teach` in a burst, 30 clicks of one vote button). Windows of
600 s, so nothing here depends on how fast the machine is."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from botkit import TOKEN, Running, buttons_of, running_bot, sample, text_of

from dataset import quotas
from dataset.quotas import until_midnight
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(300, func_only=True),
]

REPLY = 20.0
WINDOW = 600.0
SLOW = "Slow down! Try again in "
SERVER_SLOW = "Slow down! This server sent me too many commands: try again in "
GUILDS = [("Alpha", ("general",)), ("Beta", ("general",))]
TEACH = "!teach jedi"


async def said(running: Running, content: str, author: str, **kwargs: Any) -> str:
    """Post as `author` and return the bot's reply (not through `Running.command`, whose
    settling command would count against the server's limit)."""
    message = await running.post(content, kwargs.pop("attachments", ()), author=author, **kwargs)
    reply = await running.server.wait_for_reply(message["id"], timeout=REPLY)
    return text_of(reply)


def replies_to_any(running: Running, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = {m["id"] for m in messages}
    bot_id = str(running.server.application_id)
    return [
        m
        for m in running.server.messages_in(running.server.channel_id)
        if m["author"]["id"] == bot_id
        and (m.get("message_reference") or {}).get("message_id") in ids
    ]


async def test_a_burst_of_teach_is_refused_past_the_limit_told_once_others_unaffected() -> None:
    async with (
        DiscordServer(token=TOKEN, guilds=GUILDS) as server,
        running_bot(
            server,
            sync_commands=True,
            rate_limit_member=3,
            rate_limit_server=9,
            rate_limit_seconds=WINDOW,
        ) as running,
    ):
        store = running.bot.dataset
        assert store is not None
        alpha, beta = server.guild_ids
        beta_channel = server.first_channel(beta)
        for channel in (None, beta_channel):  # master: 2 of 3; each server: 1
            text = await said(running, "!dataset collect on", "master", channel_id=channel)
            assert "Collection is **on**" in text

        image = sample("jedi-1")
        burst = [await running.post(TEACH, [image], author="padawan") for _ in range(46)]
        await running.server.events.wait_until(
            lambda: len(replies_to_any(running, burst)) >= 4 or None, REPLY
        )
        # Another member is served meanwhile (Alpha: master 1, padawan 3, ahsoka 1).
        assert "Taught 1 new image as **Sith**" in await said(
            running, "!teach sith", "ahsoka", attachments=[sample("sith-1")]
        )
        replies = [text_of(m) for m in replies_to_any(running, burst)]
        taught = [text for text in replies if text.startswith("Taught ") and "**Jedi**" in text]
        slow = [text for text in replies if text.startswith(SLOW)]
        assert len(taught) == 3 and len(slow) == 1 and len(replies) == 4, replies
        assert slow[0].endswith(" s.") and "Traceback" not in slow[0]
        assert store.summary(alpha).votes == 2  # padawan's one vote (three times) and ahsoka's

        # A slash command past the limit is answered too, to its member only.
        interaction = await server.invoke_slash_command(
            "jedisith", {"image": image}, user={"username": "padawan"}
        )
        answer = await server.wait_for_reply(interaction["id"], timeout=REPLY)
        assert text_of(answer).startswith(SLOW) and answer["flags"] & 64

        # Alpha's limit: four more members (its 6th to 9th), then the server is told to wait
        # once; Beta is not held up by it.
        for name in ("rey", "finn", "poe", "rose"):
            assert "What I learn from" in await said(running, "!dataset", name)
        text = await said(running, "!dataset", "kylo")
        assert text.startswith(SERVER_SLOW) and text.endswith(" s."), text
        assert "What I learn from" in await said(
            running, "!dataset", "luke", channel_id=beta_channel
        )
        assert store.summary(beta).votes == 0


async def test_clicks_past_the_limit_are_refused_before_any_download() -> None:
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(
            server, rate_limit_member=3, rate_limit_server=50, rate_limit_seconds=WINDOW
        ) as running,
    ):
        store = running.bot.dataset
        assert store is not None and running.bot.feedback is not None
        assert "Collection is **on**" in await said(running, "!dataset collect on", "padawan")
        # As after a restart: the bot remembers no image, so each click it takes downloads one.
        running.bot.feedback.recent.limit = 0  # type: ignore[attr-defined]
        downloads = server.faults.cdn(filename="sith-2.jpg")  # serves as usual; counts
        verdict = await running.post("!jedisith", [sample("sith-2")], author="padawan")
        reply = await server.wait_for_reply(verdict["id"], timeout=REPLY)
        assert downloads.hits == 1
        buttons = buttons_of(reply)
        button = next(b for b in buttons if b["label"] == "It's a Sith")

        clicks = [
            await server.click_button(reply["id"], button["custom_id"], user={"username": "eve"})
            for _ in range(30)
        ]
        acks = await asyncio.gather(
            *(server.wait_for_ack(click["id"], timeout=REPLY) for click in clicks)
        )
        # 3 taken (a "thinking" answer, then the vote), 1 told to slow down, 26 acknowledged.
        assert Counter(acks) == {5: 3, 4: 1, 6: 26}, Counter(acks)
        answers = [
            text_of(await server.wait_for_interaction_response(click["id"], timeout=REPLY))
            for click, ack in zip(clicks, acks, strict=True)
            if ack in (4, 5)
        ]
        assert sum(text.startswith(SLOW) for text in answers) == 1, answers
        assert sum("**Sith**" in text for text in answers) == 3, answers
        assert downloads.hits == 1 + 3  # the refused 27 were never downloaded

        other = await server.click_button(
            reply["id"], button["custom_id"], user={"username": "mace"}
        )
        answer = await server.wait_for_reply(other["id"], timeout=REPLY)
        assert "Thanks! Kept with your label, **Sith**." in text_of(answer)
        assert downloads.hits == 5 and store.summary(server.guild_id).votes == 2


async def test_the_daily_quotas_say_which_was_reached_and_when_it_resets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime.now(UTC)
    monkeypatch.setattr(quotas, "utc_now", lambda: now)  # the test may run over midnight
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, member_images_per_day=2, server_images_per_day=3) as running,
    ):
        store = running.bot.dataset
        assert store is not None
        assert "Collection is **on**" in await said(running, "!dataset collect on", "padawan")
        three = [sample(name) for name in ("jedi-1", "jedi-2", "jedi-3")]
        first = (await said(running, TEACH, "padawan", attachments=three)).splitlines()[0]
        assert first.startswith("Taught 2 new images as **Jedi**; refused 1, `jedi-3.jpg`: "), first
        assert "`jedi-3.jpg`: Your daily quota is reached: you added 2 " in first
        assert f"It resets at 00:00 UTC ({until_midnight(now)})" in first

        assert "Taught 1 new image" in await said(
            running, "!teach sith", "ahsoka", attachments=[sample("sith-1")]
        )
        verdict = await running.post("!jedisith", [sample("sith-2")], author="ahsoka")
        reply = await server.wait_for_reply(verdict["id"], timeout=REPLY)
        buttons = buttons_of(reply)
        button = next(b for b in buttons if b["label"] == "It's a Sith")
        click = await server.click_button(
            reply["id"], button["custom_id"], user={"username": "eve"}
        )
        answer = text_of(await server.wait_for_reply(click["id"], timeout=REPLY))
        assert answer.startswith("This server's daily quota is reached: it added 3 images ")
        assert "It resets at 00:00 UTC (in " in answer and "Traceback" not in answer
        assert store.usage(server.guild_id).images == 3
