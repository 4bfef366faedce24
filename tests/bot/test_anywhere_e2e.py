"""The bot without the Message Content intent, end to end against the look-alike (which blanks
the messages that do not mention the bot): it starts, says in its start-up log what is then
unavailable, and answers mentions with an image or in a reply, slash commands and the menu, but
not the ! commands in a server; with the intent, a mention is answered once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from botkit import (
    TOKEN,
    Running,
    expected_label,
    running_bot,
    sample,
    text_of,
    verdict_lines,
    wait_until,
)

from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(180, func_only=True),
]

REPLY = 20.0


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    """The bot with MESSAGE_CONTENT=false, on a look-alike that grants no privileged intent."""
    async with (
        DiscordServer(token=TOKEN, privileged_intents=False) as server,
        running_bot(server, message_content=False, sync_commands=True) as running,
    ):
        await wait_until(
            lambda: (
                {"jedisith", "Jedi or Sith?"} <= {c["name"] for c in server.application_commands}
            )
        )
        yield running


def assert_one_verdict(text: str, name: str) -> None:
    lines = verdict_lines(text)
    assert len(lines) == 1 and lines[0].startswith(f"**{expected_label(name)}**"), text


async def test_without_the_intent_mentions_slash_commands_and_the_menu_answer(
    running: Running,
) -> None:
    server = running.server
    mention = f"<@{server.application_id}>"
    assert any("MESSAGE_CONTENT=false" in line for line in running.logs.lines())

    ignored = await server.post_message("!jedisith", attachments=[sample("sith-1")])

    mentioned = await server.post_message(mention, attachments=[sample("jedi-1")])
    reply = await server.wait_for_reply(mentioned["id"], timeout=REPLY)
    assert_one_verdict(text_of(reply), "jedi-1")

    image = await server.post_message("", attachments=[sample("sith-2")])
    in_reply = await server.post_message(f"{mention} this one?", reply_to=int(image["id"]))
    reply = await server.wait_for_reply(in_reply["id"], timeout=REPLY)
    assert_one_verdict(text_of(reply), "sith-2")

    interaction = await server.invoke_slash_command("jedisith", {"image": sample("jedi-2")})
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY)
    assert_one_verdict(text_of(reply), "jedi-2")

    interaction = await server.invoke_message_command("Jedi or Sith?", int(image["id"]))
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY)
    assert_one_verdict(text_of(reply), "sith-2")

    # The ! command came first: the bot, which never saw its text, answered everything after it.
    answered = {(m.get("message_reference") or {}).get("message_id") for m in server.messages}
    assert ignored["id"] not in answered
    assert not running.logs.tracebacks()


async def test_with_the_intent_a_mention_with_an_image_is_answered_once() -> None:
    """A mention followed by words that name no command is judged once: the prefix commands'
    own handling of it (no such command) stays quiet."""
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server) as running,
    ):
        mention = f"<@{server.application_id}>"
        reply = await running.command(sample("sith-3"), content=f"{mention} who is this?")
        assert_one_verdict(text_of(reply), "sith-3")
        reply = await running.command(sample("jedi-3"), content=f"{mention} jedisith")
        assert_one_verdict(text_of(reply), "jedi-3")
