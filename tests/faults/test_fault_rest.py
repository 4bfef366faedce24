"""Discord's REST API misbehaves: 429 storms, 5xx on replies, a refused history, and a refused
command sync at start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from botkit import (
    SAMPLES,
    TOKEN,
    Running,
    answers,
    assert_answered_once,
    expected_label,
    replies_to,
    running_bot,
    sample,
    text_of,
    verdict_lines,
)

from bot.exts.error_handler import APOLOGY
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(60, func_only=True),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running() -> AsyncIterator[Running]:
    async with DiscordServer(token=TOKEN) as server, running_bot(server) as bot:
        yield bot


def assert_verdicts(commands: list[dict], replies: list[dict]) -> None:
    for command, reply in zip(commands, replies, strict=True):
        lines = verdict_lines(text_of(reply))
        label = expected_label(command["attachments"][0]["filename"])
        assert len(lines) == 1 and lines[0].startswith(f"**{label}**"), text_of(reply)


# -- 429 -----------------------------------------------------------------------------------------


async def test_a_429_storm_in_one_channel(running: Running) -> None:
    server, logs = running.server, running.logs
    mark = logs.mark()
    other = list(server.state.guilds.values())[1].channel_ids[0]
    # Discord's bucket for the channel: 3 calls (typing, replies) per 0.4 s, then 429s.
    storm = server.faults.rate_limit(f"POST /channels/{server.channel_id}/**", limit=3, per=0.4)
    here = [
        await running.post(attachments=[sample(SAMPLES[n % 6])], author=f"storm-{n % 4}")
        for n in range(8)
    ]
    there = [
        await running.post(attachments=[sample(SAMPLES[n])], author="elsewhere", channel_id=other)
        for n in range(3)
    ]
    there_replies = await answers(server, there)
    # The other channel was answered while this one still waited out its rate limit.
    assert sum(len(replies_to(server, m)) for m in here) < len(here)
    here_replies = await answers(server, here)
    assert storm.hits >= 3  # the storm happened: discord.py waited out that many 429s
    storm.clear()
    await running.settle()
    assert_answered_once(server, here + there)
    assert_verdicts(here + there, here_replies + there_replies)
    assert logs.tracebacks(mark) == []
    assert logs.lines(mark, logging.ERROR) == []


# -- 5xx -----------------------------------------------------------------------------------------


async def test_a_500_on_a_reply_is_retried_and_answered_once(running: Running) -> None:
    server, logs = running.server, running.logs
    mark = logs.mark()
    failed = server.faults.fail(f"POST /channels/{server.channel_id}/messages", 500)
    reply = await running.command(sample("sith-2"))  # discord.py retries a 500 after 1 s
    assert failed.hits == 1
    assert verdict_lines(text_of(reply))[0].startswith("**Sith**")
    assert logs.tracebacks(mark) == []


async def test_a_503_on_a_reply_gets_the_apology_once(running: Running) -> None:
    # discord.py does not retry a 503: the verdict is lost, and the bot says so in its place.
    server, logs = running.server, running.logs
    mark = logs.mark()
    failed = server.faults.fail(f"POST /channels/{server.channel_id}/messages", 503)
    reply = await running.command(sample("jedi-2"))
    assert failed.hits == 1
    assert text_of(reply) == APOLOGY
    errors = logs.lines(mark, logging.ERROR, "bot")
    assert len(errors) == 1 and "failed" in errors[0], errors  # Discord's fault: logged
    await running.assert_still_serves()


async def test_a_lost_answer_to_a_reply_does_not_double_it(running: Running) -> None:
    # Discord made the reply but its answer was lost (a 500): discord.py retries with the same
    # nonce and enforce_nonce, and gets the message already made instead of a second one.
    server = running.server
    lost = server.faults.fail(f"POST /channels/{server.channel_id}/messages", 500, applied=True)
    reply = await running.command(sample("sith-3"))  # checks it is the only reply
    assert lost.hits == 1
    assert verdict_lines(text_of(reply))[0].startswith("**Sith**")


# -- history -------------------------------------------------------------------------------------


async def test_no_read_message_history_permission(running: Running) -> None:
    server, logs = running.server, running.logs
    for n in range(3):
        await server.post_message(f"chatter {n}")
    mark = logs.mark()
    refused = server.faults.fail(
        f"GET /channels/{server.channel_id}/messages", 403, times=None
    )  # Missing Access (50001), as for a bot without Read Message History
    reply = await running.command()  # no attachment, no reply: the bot looks in the history
    assert refused.hits == 1
    assert "Read Message History" in text_of(reply), text_of(reply)
    warnings = logs.lines(mark, logging.WARNING, "bot")
    assert len(warnings) == 1 and "Read Message History" in warnings[0], warnings
    assert logs.tracebacks(mark) == []
    refused.clear()
    await running.assert_still_serves()


# -- command sync at start-up --------------------------------------------------------------------

INVALID_FORM = {
    "1": {
        "options": {
            "0": {
                "description": {
                    "_errors": [
                        {
                            "code": "BASE_TYPE_BAD_LENGTH",
                            "message": "Must be between 1 and 100 in length.",
                        }
                    ]
                }
            }
        }
    }
}


async def test_a_command_sync_refused_as_invalid_is_one_line() -> None:
    async with DiscordServer(token=TOKEN) as server:
        refused = server.faults.fail(
            "PUT /applications/*/commands", 400, errors=INVALID_FORM, times=None
        )
        async with running_bot(server, sync_commands=True) as running:
            assert refused.hits == 1
            sent = refused.calls[0].json()
            name, option = sent[1]["name"], sent[1]["options"][0]["name"]
            errors = running.logs.lines(level=logging.ERROR)
            assert len(errors) == 1, errors
            line = errors[0]
            assert "\n" not in line and "the ! commands work" in line
            assert f"'{name}'" in line and option in line, line
            assert "Must be between 1 and 100 in length." in line
            assert running.logs.tracebacks() == []
            assert server.application_commands == []
            await running.assert_still_serves()


async def test_a_command_sync_rate_limited_again_and_again_is_one_line() -> None:
    async with DiscordServer(token=TOKEN) as server:
        limited = server.faults.fail(
            "PUT /applications/*/commands", 429, times=None, retry_after=0.05
        )
        async with running_bot(server, sync_commands=True) as running:
            await limited.wait_hits(5, timeout=10)  # discord.py tries five times, then gives up
            for _ in range(200):  # the background sync logs its one line right after the 5th
                if running.logs.lines(level=logging.ERROR):
                    break
                await asyncio.sleep(0.02)
            assert limited.hits == 5
            errors = running.logs.lines(level=logging.ERROR)
            assert len(errors) == 1, errors
            assert "could not register the application commands (HTTP 429" in errors[0]
            assert "the ! commands work" in errors[0]
            assert running.logs.tracebacks() == []
            assert server.application_commands == []
            await running.assert_still_serves()


async def test_a_command_sync_rate_limited_for_long_does_not_keep_the_bot_offline() -> None:
    # The sync runs in the background (discord.py waits out each 429): the bot connects.
    async with DiscordServer(token=TOKEN) as server:
        server.faults.fail("PUT /applications/*/commands", 429, times=None, retry_after=60)
        async with running_bot(server, sync_commands=True, ready_timeout=5) as running:
            await running.assert_still_serves()
