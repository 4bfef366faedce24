"""The bot's own behaviour around Discord: a refused command sync, commands during shutdown."""

from __future__ import annotations

import logging
from unittest import mock

import aiohttp
import discord
import pytest

from bot.client import JediSithBot
from bot.replies import RESTARTING
from bot.settings import Settings
from model.worker import ModelWorker


def response(status: int) -> aiohttp.ClientResponse:
    fake = mock.create_autospec(aiohttp.ClientResponse, instance=True, spec_set=True)
    fake.status, fake.reason = status, "Bad Request" if status == 400 else "Too Many Requests"
    return fake


@pytest.fixture
def bot() -> JediSithBot:
    worker = mock.create_autospec(ModelWorker, instance=True, spec_set=True)
    session = mock.create_autospec(aiohttp.ClientSession, instance=True, spec_set=True)
    return JediSithBot(Settings(token="x", sync_commands=True), worker, session)


async def test_a_refused_sync_is_one_line_naming_the_command_and_field(
    bot: JediSithBot, caplog: pytest.LogCaptureFixture
) -> None:
    body = {
        "code": 50035,
        "message": "Invalid Form Body",
        "errors": {"0": {"name": {"_errors": [{"code": "X", "message": "Invalid name"}]}}},
    }
    refused = discord.HTTPException(response(400), body)
    failure = discord.app_commands.CommandSyncFailure(refused, list(bot.tree.get_commands()))
    with (
        mock.patch.object(bot.tree, "sync", side_effect=failure),
        caplog.at_level(logging.ERROR, logger="bot.client"),
    ):
        assert await bot.sync_commands() is False
    (record,) = caplog.records
    text = record.getMessage()
    assert "\n" not in text and record.exc_info is None  # one line, no traceback
    assert "Invalid name" in text and "name" in text and "! commands work" in text


async def test_a_rate_limited_sync_is_one_line_too(
    bot: JediSithBot, caplog: pytest.LogCaptureFixture
) -> None:
    limited = discord.HTTPException(response(429), "You are being rate limited.")
    with (
        mock.patch.object(bot.tree, "sync", side_effect=limited),
        caplog.at_level(logging.ERROR, logger="bot.client"),
    ):
        assert await bot.sync_commands() is False
    (record,) = caplog.records
    assert "HTTP 429" in record.getMessage() and record.exc_info is None


async def test_a_good_sync_reports_the_count(bot: JediSithBot, caplog) -> None:
    with (
        mock.patch.object(bot.tree, "sync", return_value=[object(), object()]),
        caplog.at_level(logging.INFO, logger="bot.client"),
    ):
        assert await bot.sync_commands() is True
    assert "synced 2 application commands" in caplog.text


async def test_a_command_during_shutdown_is_told_to_retry(bot: JediSithBot) -> None:
    bot.accepting = False
    message = mock.create_autospec(discord.Message, instance=True, spec_set=True)
    author = mock.create_autospec(discord.Member, instance=True, spec_set=True)
    author.bot = False
    message.author = author
    context = mock.create_autospec(discord.ext.commands.Context, instance=True, spec_set=True)
    context.valid = True
    with mock.patch.object(bot, "get_context", return_value=context) as get_context:
        await bot.on_message(message)
    get_context.assert_awaited_once_with(message)
    message.reply.assert_awaited_once_with(RESTARTING, mention_author=False)

    context.valid = False  # ordinary chat: no reply
    message.reply.reset_mock()
    with mock.patch.object(bot, "get_context", return_value=context):
        await bot.on_message(message)
    message.reply.assert_not_awaited()


def test_the_grace_periods_add_up() -> None:
    """Whoever stops the bot waits longer than a clean stop can take."""
    from bot.client import COMMAND_GRACE, REPLY_GRACE, SHUTDOWN_SECONDS, WORKER_GRACE
    from playground.__main__ import STOP_GRACE

    assert SHUTDOWN_SECONDS == COMMAND_GRACE + REPLY_GRACE + WORKER_GRACE
    assert STOP_GRACE >= SHUTDOWN_SECONDS + 3  # the close itself, and a loaded machine
