"""Where the application commands may be used: /jedisith, /features and the "Jedi or Sith?"
menu anywhere (installed to a server or to an account; servers, DMs, group DMs), the others
only in servers that installed the bot; and the Message Content intent as MESSAGE_CONTENT says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from unittest import mock

import aiohttp
import pytest

from bot.client import EXTENSIONS, JediSithBot
from bot.settings import Settings
from model.worker import ModelWorker

ANYWHERE = {"jedisith", "features", "why", "Jedi or Sith?"}
GUILD_INSTALL, USER_INSTALL = 0, 1
GUILD, BOT_DM, PRIVATE_CHANNEL = 0, 1, 2


def make_bot(**settings: object) -> JediSithBot:
    worker = mock.create_autospec(ModelWorker, instance=True, spec_set=True)
    session = mock.create_autospec(aiohttp.ClientSession, instance=True, spec_set=True)
    return JediSithBot(Settings(token="x", **settings), worker, session)  # type: ignore[arg-type]


@pytest.fixture
async def payloads() -> AsyncIterator[dict[str, dict]]:
    """What the bot registers with Discord, by command name."""
    bot = make_bot()
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    try:
        yield {command.name: command.to_dict(bot.tree) for command in bot.tree.get_commands()}
    finally:
        await bot.close()


async def test_the_verdict_commands_and_the_menu_work_anywhere(
    payloads: dict[str, dict],
) -> None:
    assert set(payloads) >= ANYWHERE
    for name in ANYWHERE:
        assert payloads[name]["integration_types"] == [GUILD_INSTALL, USER_INSTALL], name
        assert payloads[name]["contexts"] == [GUILD, BOT_DM, PRIVATE_CHANNEL], name


async def test_the_learning_loop_stays_in_servers_that_installed_the_bot(
    payloads: dict[str, dict],
) -> None:
    others = set(payloads) - ANYWHERE
    assert {"teach", "retrain", "settings"} <= others, sorted(payloads)
    for name in others:
        assert payloads[name]["integration_types"] == [GUILD_INSTALL], name
        assert payloads[name]["contexts"] == [GUILD], name


def test_the_message_content_intent_follows_the_setting() -> None:
    assert make_bot().intents.message_content is True
    assert make_bot(message_content=False).intents.message_content is False
