"""SHARD_COUNT and SHARD_IDS: how they are written, what is refused (in one line), and which bot
they make; the gateway's refusals of a shard as one line."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import aiohttp
import discord
import pytest
from discord.ext import commands

from bot.__main__ import StartupError, _refused_shard
from bot.client import EXTENSIONS, JediSithBot, ShardedJediSithBot, make_bot
from bot.settings import Settings, SettingsError
from model.worker import ModelWorker

TOKEN = "MTIz.cluster-settings.XYZ"


def settings(**values: str) -> Settings:
    return Settings.from_env({"DISCORD_TOKEN": TOKEN, **values})


def test_no_shard_count_means_no_sharding() -> None:
    plain = settings()
    assert plain.shard_count is None and plain.shard_ids is None and not plain.sharded


@pytest.mark.parametrize(
    ("count", "ids", "expected"),
    [
        ("4", "", (4, None)),
        ("auto", "", ("auto", None)),
        (" AUTO ", "", ("auto", None)),
        ("1", "0", (1, (0,))),
        ("4", "0,1", (4, (0, 1))),
        ("4", "2, 3,", (4, (2, 3))),
        ("8", "0-3", (8, (0, 1, 2, 3))),
        ("8", "6,0-1", (8, (0, 1, 6))),
        ("16", "4 - 7", (16, (4, 5, 6, 7))),
    ],
)
def test_shard_words(count: str, ids: str, expected: tuple) -> None:
    parsed = settings(SHARD_COUNT=count, SHARD_IDS=ids)
    assert (parsed.shard_count, parsed.shard_ids) == expected
    assert parsed.sharded


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT='0' is not valid: must be at least 1"),
        (
            {"SHARD_COUNT": "many"},
            "SHARD_COUNT='many' is not valid: expected a number of shards, or auto",
        ),
        (
            {"SHARD_COUNT": "-2"},
            "SHARD_COUNT='-2' is not valid: expected a number of shards, or auto",
        ),
        (
            {"SHARD_IDS": "0,1"},
            "SHARD_IDS=0-1 needs SHARD_COUNT, the number of shards of the whole bot",
        ),
        (
            {"SHARD_COUNT": "auto", "SHARD_IDS": "0"},
            "SHARD_IDS=0 needs a number for SHARD_COUNT, not auto: every process must use the "
            "same count (python -m bot.cluster asks Discord once for all of them)",
        ),
        (
            {"SHARD_COUNT": "4", "SHARD_IDS": "2-4"},
            "SHARD_IDS=2-4 is not valid: shards are numbered 0 to 3 with SHARD_COUNT=4",
        ),
        (
            {"SHARD_COUNT": "4", "SHARD_IDS": "1,1"},
            "SHARD_IDS='1,1' is not valid: shard 1 is listed twice",
        ),
        (
            {"SHARD_COUNT": "4", "SHARD_IDS": "3-1"},
            "SHARD_IDS='3-1' is not valid: '3-1' is not a range: write the smaller shard first",
        ),
        (
            {"SHARD_COUNT": "4", "SHARD_IDS": "first"},
            "SHARD_IDS='first' is not valid: expected shard numbers like 0,1 or 0-3, not 'first'",
        ),
        ({"SHARD_COUNT": "4", "SHARD_IDS": ","}, "SHARD_IDS=',' is not valid: names no shard"),
    ],
)
def test_refused_shard_settings_are_one_line(values: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings(**values)
    assert str(caught.value) == message


def test_python_values_are_checked_like_the_environment() -> None:
    direct = Settings(token=TOKEN, shard_count=4, shard_ids=[3, 1])  # type: ignore[arg-type]
    assert direct.shard_ids == (1, 3)
    assert Settings(token=TOKEN, shard_count="auto").shard_count == "auto"  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="SHARD_COUNT"):
        Settings(token=TOKEN, shard_count=True)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="SHARD_IDS"):
        Settings(token=TOKEN, shard_count=2, shard_ids=[-1])  # type: ignore[arg-type]


def parts() -> tuple[ModelWorker, aiohttp.ClientSession]:
    worker = mock.create_autospec(ModelWorker, instance=True, spec_set=True)
    session = mock.create_autospec(aiohttp.ClientSession, instance=True, spec_set=True)
    return worker, session


def test_make_bot_is_the_plain_bot_without_a_shard_count() -> None:
    bot = make_bot(settings(), *parts())
    assert type(bot) is JediSithBot
    assert not isinstance(bot, commands.AutoShardedBot)
    assert JediSithBot(settings(), *parts()).shard_count is None  # still built as before


def test_make_bot_shards_with_discord_py_when_asked(tmp_path: Path) -> None:
    bot = make_bot(settings(SHARD_COUNT="4", SHARD_IDS="2-3", DATA_DIR=str(tmp_path)), *parts())
    assert isinstance(bot, ShardedJediSithBot) and isinstance(bot, commands.AutoShardedBot)
    assert (bot.shard_count, bot.shard_ids) == (4, [2, 3])
    assert bot.held_shards == "2-3 of 4"
    assert bot.pacer.folder == tmp_path / "gateway"  # shared by the processes of DATA_DIR
    auto = make_bot(settings(SHARD_COUNT="auto"), *parts())
    assert auto.shard_count is None and auto.shard_ids is None  # discord.py asks /gateway/bot


async def test_both_bots_have_the_same_commands(tmp_path: Path) -> None:
    names = []
    for values in ({}, {"SHARD_COUNT": "2", "DATA_DIR": str(tmp_path)}):
        bot = make_bot(settings(**values), *parts())
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        names.append(
            (
                sorted(c.qualified_name for c in bot.walk_commands()),
                sorted(c.name for c in bot.tree.get_commands()),
                sorted(bot.cogs),
            )
        )
    assert names[0] == names[1] and "jedisith" in names[0][0]


def closed(code: int, shard_id: int | None) -> discord.ConnectionClosed:
    socket = mock.Mock(close_code=code)
    return discord.ConnectionClosed(socket, shard_id=shard_id, code=code)


def test_sharding_required_says_to_set_shard_count() -> None:
    line = _refused_shard(closed(4011, None), settings())
    assert isinstance(line, StartupError)
    assert "SHARD_COUNT=auto" in str(line) and "\n" not in str(line)
    sharded = _refused_shard(closed(4011, 1), settings(SHARD_COUNT="2"))
    assert "shard 1 of SHARD_COUNT=2" in str(sharded) and "larger" in str(sharded)


def test_an_invalid_shard_names_it() -> None:
    line = _refused_shard(closed(4010, 4), settings(SHARD_COUNT="4"))
    assert "shard 4 of SHARD_COUNT=4" in str(line) and "4010" in str(line)


def test_other_close_codes_are_not_ours_to_explain() -> None:
    assert _refused_shard(closed(4000, 0), settings(SHARD_COUNT="4")) is None
