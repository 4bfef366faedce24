"""The rate limit on every command and click (`bot.limits`): the buckets, the one reply per
window, and that every command path and component class of the bot goes through it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from unittest import mock

import aiohttp
import discord

import bot
from bot.client import JediSithBot
from bot.limits import (
    MEMBER,
    SERVER,
    Limited,
    LimitedTree,
    RateLimits,
    VerdictCooldown,
    command_check,
)
from bot.settings import Settings
from model.worker import ModelWorker

ALICE, BOB = 11, 12
HOME, AWAY = 100, 200
T0 = 1_000_000.0  # a moment (discord.py's buckets read 0.0 as "now")


def burst(limits: RateLimits, user: int, guild: int | None, count: int, now: float = T0) -> list:
    return [limits.hit(user, guild, now) for _ in range(count)]


def test_a_member_past_the_limit_is_refused_and_told_once_per_window() -> None:
    limits = RateLimits(member_rate=3, server_rate=0, seconds=10)
    results = burst(limits, ALICE, HOME, 46)
    assert results[:3] == [None, None, None]
    refused = results[3:]
    assert all(r is not None and r.scope == MEMBER for r in refused)
    assert [r.tell for r in refused] == [True] + [False] * 42
    assert refused[0].line == "Slow down! Try again in 10 s."
    # Refusals take no turn: once the window has passed, the member is served and told again.
    assert limits.hit(ALICE, HOME, T0 + 10.5) is None
    assert burst(limits, ALICE, HOME, 3, T0 + 10.6)[-1].tell  # type: ignore[union-attr]


def test_another_member_and_another_server_are_not_held_up() -> None:
    limits = RateLimits(member_rate=3, server_rate=5, seconds=10)
    burst(limits, ALICE, HOME, 10)
    assert limits.hit(BOB, HOME, T0) is None  # HOME: Alice's 3 and this one
    assert limits.hit(BOB, AWAY, T0) is None
    assert limits.hit(13, HOME, T0) is None  # the server's fifth
    full = limits.hit(14, HOME, T0)
    assert full is not None and full.scope == SERVER and full.tell
    assert full.line.startswith("Slow down! This server sent me too many commands")
    assert limits.hit(15, HOME, T0) == type(full)(SERVER, full.retry_after, False)
    assert limits.hit(15, AWAY, T0) is None


def test_a_dm_has_only_the_member_limit_and_zero_lifts_a_limit() -> None:
    limits = RateLimits(member_rate=2, server_rate=1, seconds=10)
    assert burst(limits, ALICE, None, 2) == [None, None]
    assert limits.hit(ALICE, None, T0) is not None
    unlimited = RateLimits(member_rate=0, server_rate=0, seconds=10)
    assert burst(unlimited, ALICE, HOME, 100) == [None] * 100


def test_the_limits_come_from_the_settings() -> None:
    settings = Settings.from_env(
        {"DISCORD_TOKEN": "x", "RATE_LIMIT_MEMBER": "4", "RATE_LIMIT_SERVER": "9"}
    )
    limits = RateLimits.from_settings(settings)
    assert (limits.member_rate, limits.server_rate, limits.seconds) == (4, 9, 10.0)
    defaults = Settings(token="x")
    assert (defaults.rate_limit_member, defaults.rate_limit_server) == (5, 60)


def bot_classes() -> list[type]:
    classes = []
    for info in pkgutil.walk_packages(bot.__path__, "bot."):
        if info.name == "bot.__main__":
            continue
        module = importlib.import_module(info.name)
        classes += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__
        ]
    return classes


def test_every_button_select_and_view_of_the_bot_is_limited() -> None:
    components = [
        cls for cls in bot_classes() if issubclass(cls, discord.ui.Item | discord.ui.View)
    ]
    assert components, "the feedback buttons at least"
    for cls in components:
        assert issubclass(cls, Limited), f"{cls.__qualname__} does not derive from Limited"
        assert cls.interaction_check is Limited.interaction_check, cls.__qualname__


def test_every_command_path_of_the_bot_is_limited() -> None:
    """Prefix commands: a bot-wide check run once per command (not when !help lists them);
    application commands (slash, hybrid, the menu): the bot's tree."""
    worker = mock.create_autospec(ModelWorker, instance=True, spec_set=True)
    session = mock.create_autospec(aiohttp.ClientSession, instance=True, spec_set=True)
    client = JediSithBot(Settings(token="x", rate_limit_member=2), worker, session)
    assert isinstance(client.tree, LimitedTree)
    assert client._check_once == [command_check] and command_check not in client._checks
    assert isinstance(client.limits, RateLimits) and client.limits.member_rate == 2


def test_the_verdict_cooldown_is_per_person_and_zero_lifts_it() -> None:
    cooldown = VerdictCooldown(Settings(token="x", cooldown_rate=2, cooldown_seconds=60))
    assert [cooldown.retry_after(ALICE) > 0 for _ in range(3)] == [False, False, True]
    assert 59 < cooldown.retry_after(ALICE) <= 60 and cooldown.retry_after(BOB) == 0
    lifted = VerdictCooldown(Settings(token="x", cooldown_rate=0))
    assert all(lifted.retry_after(ALICE) == 0 for _ in range(10))
