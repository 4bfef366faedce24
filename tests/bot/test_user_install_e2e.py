"""A user install, end to end: the look-alike sends `/jedisith` from a person's DM with the bot
(context 1) or a group DM without it (context 2), with no guild and the person as the owner of
the install; the bot answers with a verdict card (the default model), says in one line that it
learns only in servers, and its Why? button works there. `/teach` is not offered there."""

from __future__ import annotations

import pytest
from botkit import (
    TOKEN,
    buttons_of,
    expected_label,
    is_layout,
    running_bot,
    sample,
    text_of,
    verdict_lines,
    wait_until,
)

from bot.exts.jedisith import NO_LEARNING_HERE
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(180, func_only=True),
]

REPLY = 20.0
REY = {"username": "rey"}


async def test_a_dm_interaction_from_a_user_install_gets_a_verdict() -> None:
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, sync_commands=True) as running,
    ):
        await wait_until(lambda: "jedisith" in {c["name"] for c in server.application_commands})
        for context, name in ((1, "sith-1"), (2, "jedi-2")):
            interaction = await server.invoke_slash_command(
                "jedisith", {"image": sample(name)}, user=REY, context=context
            )
            rey = interaction["user"]
            assert "guild_id" not in interaction and "member" not in interaction
            assert interaction["authorizing_integration_owners"] == {"1": rey["id"]}
            assert interaction["context"] == context
            assert interaction["channel"]["type"] == (1 if context == 1 else 3)

            reply = await server.wait_for_reply(interaction["id"], timeout=REPLY)
            assert reply["channel_id"] == interaction["channel_id"] and "guild_id" not in reply
            assert is_layout(reply)
            [line] = verdict_lines(text_of(reply))
            assert line.startswith(f"**{expected_label(name)}**"), line
            assert text_of(reply).splitlines()[-1] == NO_LEARNING_HERE  # one line
            assert [b["label"] for b in buttons_of(reply)] == ["Why?"]  # no vote buttons

        click = await server.click_button(reply["id"], buttons_of(reply)[0]["custom_id"], user=REY)
        assert "guild_id" not in click and click["context"] == 2
        answer = await server.wait_for_reply(click["id"], timeout=REPLY)
        assert text_of(answer).startswith("Why ") and answer["attachments"]

        with pytest.raises(LookupError, match="not offered to user installs"):
            await server.invoke_slash_command("teach", {"label": "jedi"}, user=REY, context=1)
        assert not running.logs.tracebacks()
