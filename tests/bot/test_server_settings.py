"""A server's settings as the bot applies them: the stored values over the environment's, read
through a cache per process that forgets a server's row when this process changes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from bot.exts.settings import describe
from bot.server_settings import ServerSettingsCache, environment, resolve
from bot.settings import Settings
from dataset import DatasetStore, GuildSettings

HOME, AWAY, MANAGER = 2**60 + 1, 2**60 + 2, 2**61 + 1
ENV = Settings(token="x", ood_policy="refuse", uncertain_band=0.1, allowed_channel_ids={7, 8})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DatasetStore]:
    with DatasetStore.open(tmp_path / "data") as opened:
        yield opened


def test_a_server_without_a_row_gets_the_environments_values() -> None:
    resolved = resolve(ENV, GuildSettings(guild_id=HOME))
    assert resolved == environment(ENV)
    assert (resolved.ood_policy, resolved.uncertain_band) == ("refuse", 0.1)
    assert resolved.channels == {7, 8} and resolved.allows(7) and not resolved.allows(9)
    assert resolved.from_environment == {
        "ood_policy",
        "uncertain_band",
        "channels",
        "ask_every",
        "ask_per_hour",
        "holdout_min_voters",
    }
    assert not resolved.collecting and not resolved.sharing
    assert (resolved.ask_every, resolved.ask_per_hour, resolved.holdout_min_voters) == (5, 3, 2)


def test_stored_values_override_the_environment() -> None:
    stored = GuildSettings(
        HOME, True, True, "warn", 0.3, (5,), ask_every=2, ask_per_hour=0, holdout_min_voters=3
    )
    resolved = resolve(ENV, stored)
    assert (resolved.ood_policy, resolved.uncertain_band, resolved.channels) == ("warn", 0.3, {5})
    assert (resolved.ask_every, resolved.ask_per_hour, resolved.holdout_min_voters) == (2, 0, 3)
    assert resolved.collecting and resolved.sharing and not resolved.from_environment
    assert resolved.allows(5) and not resolved.allows(7)
    every = resolve(ENV, GuildSettings(HOME, channels=()))  # `!settings channels all`
    assert every.allows(9)
    assert every.from_environment == {
        "ood_policy",
        "uncertain_band",
        "ask_every",
        "ask_per_hour",
        "holdout_min_voters",
    }


async def test_a_dm_and_a_bot_without_a_dataset_get_the_environment(store: DatasetStore) -> None:
    assert await ServerSettingsCache(ENV, store).get(None) == environment(ENV)
    assert await ServerSettingsCache(ENV, None).get(HOME) == environment(ENV)


async def test_the_store_is_read_once_per_server_until_the_time_is_up(
    store: DatasetStore,
) -> None:
    clock = Clock()
    cache = ServerSettingsCache(ENV, store, ttl=30, clock=clock)
    with mock.patch.object(store, "guild_settings", wraps=store.guild_settings) as reads:
        assert (await cache.get(HOME)).ood_policy == "refuse"
        await cache.get(HOME)
        clock.now += 29
        await cache.get(HOME)
        assert reads.call_count == 1
        await cache.get(AWAY)
        assert reads.call_count == 2  # each server its own entry
        clock.now += 2
        await cache.get(HOME)
        assert reads.call_count == 3


async def test_a_change_applies_here_at_once_and_in_another_process_within_the_ttl(
    store: DatasetStore,
) -> None:
    clock = Clock()
    here = ServerSettingsCache(ENV, store, ttl=30, clock=clock)
    there = ServerSettingsCache(ENV, store, ttl=30, clock=clock)  # another shard process
    assert (await here.get(HOME)).ood_policy == (await there.get(HOME)).ood_policy == "refuse"

    changed = await here.update(HOME, by=MANAGER, ood_policy="warn", uncertain_band=0.3)
    assert (changed.ood_policy, changed.uncertain_band) == ("warn", 0.3)
    assert (await here.get(HOME)).ood_policy == "warn"
    assert (await there.get(HOME)).ood_policy == "refuse"  # its cached row, for now
    clock.now += 31
    assert (await there.get(HOME)).uncertain_band == 0.3
    assert (await here.get(AWAY)).ood_policy == "refuse"  # the other server is untouched

    await here.update(HOME, by=MANAGER, ood_policy=None)  # `!settings reset policy`
    resolved = await here.get(HOME)
    assert resolved.ood_policy == "refuse" and "ood_policy" in resolved.from_environment
    assert store.guild_settings(HOME).changed_by == MANAGER


async def test_a_read_begun_before_a_change_is_not_kept(store: DatasetStore) -> None:
    cache = ServerSettingsCache(ENV, store)
    old = store.guild_settings(HOME)

    def read_then_change(guild_id: int) -> GuildSettings:
        store.update_guild_settings(guild_id, by=MANAGER, ood_policy="off")
        cache.forget(guild_id)  # as `update` does, while this read was under way
        return old

    with mock.patch.object(store, "guild_settings", side_effect=read_then_change):
        assert (await cache.get(HOME)).ood_policy == "refuse"  # what that read saw
    assert (await cache.get(HOME)).ood_policy == "off"  # not kept: read again


async def test_a_bad_value_is_the_stores_error_and_changes_nothing(store: DatasetStore) -> None:
    cache = ServerSettingsCache(ENV, store)
    with pytest.raises(ValueError, match=r"uncertain_band is a number from 0 to 0\.5"):
        await cache.update(HOME, by=MANAGER, uncertain_band=0.7)
    assert (await cache.get(HOME)).uncertain_band == 0.1


async def test_an_unreadable_database_gives_the_environments_values(store: DatasetStore) -> None:
    cache = ServerSettingsCache(ENV, store)
    with mock.patch.object(store, "guild_settings", side_effect=OSError("database is away")):
        assert await cache.get(HOME) == environment(ENV)
    await cache.update(HOME, by=MANAGER, ood_policy="warn")
    assert (await cache.get(HOME)).ood_policy == "warn"  # the failure was not cached


def test_settings_says_which_values_come_from_the_environment() -> None:
    text = describe(resolve(ENV, GuildSettings(HOME, uncertain_band=0.3)), "!")
    lines = text.splitlines()
    assert "`policy`: **refuse** (the bot's default)" in lines[1]
    assert "`band`: **0.3**:" in lines[2] and "default" not in lines[2]
    assert "<#7>, <#8> (the bot's default)" in lines[3]
    assert "`collect`: **off**" in lines[4] and "`share`: **off**" in lines[5]


def test_settings_shows_the_asking_rate_and_its_origin() -> None:
    lines = describe(resolve(ENV, GuildSettings(HOME, ask_every=1)), "!").splitlines()
    assert (
        lines[6]
        == "- `ask`: **1**: where collection is on, I ask for a label when unsure, on any verdict"
    )
    assert lines[7].startswith("- `ask_hour`: **3** (the bot's default):")
    assert "at most 3 asks an hour in each channel" in lines[7]
    never = describe(resolve(ENV, GuildSettings(HOME, ask_every=0, ask_per_hour=1)), "!")
    assert "- `ask`: **0**: I never ask for a label\n" in never
    assert "at most 1 ask an hour" in never
