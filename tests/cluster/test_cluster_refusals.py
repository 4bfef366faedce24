"""`python -m bot` refused by a gateway that requires sharding (close code 4011) stops with one
line saying what to set: unsharded, or with too few shards."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from botkit import TOKEN

from playground.discord import DiscordServer, Sharding, numbered_guilds
from playground.launch import bot_environment, start_logged_bot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


async def refused(server: DiscordServer, folder: Path, settings: dict[str, str]) -> str:
    env = bot_environment(
        server.api_url,
        TOKEN,
        caches=folder,
        settings={"MODEL_BACKEND": "litert", "DATA_DIR": str(folder / "data"), **settings},
    )
    process = await start_logged_bot(env, folder)
    assert await process.wait(60) == 1
    lines = process.output()[1].strip().splitlines()
    assert not any("Traceback" in line for line in lines), lines
    return lines[-1]


async def test_a_gateway_requiring_more_shards_is_one_line(tmp_path: Path) -> None:
    sharding = Sharding(guilds_per_shard=2, max_guilds_per_shard=2, max_concurrency=2)
    async with DiscordServer(token=TOKEN, guilds=numbered_guilds(8), sharding=sharding) as server:
        unsharded, too_few = await asyncio.gather(
            refused(server, tmp_path / "unsharded", {}),
            refused(server, tmp_path / "too-few", {"SHARD_COUNT": "2"}),
        )
    assert unsharded == (
        "jedisith-bot: Discord requires sharding for this many servers: set SHARD_COUNT=auto "
        '(or a number of shards), see docs/running.md, "Running a cluster"'
    )
    assert too_few.startswith("jedisith-bot: Discord refused shard ")
    assert "of SHARD_COUNT=2: it would hold too many servers (4011" in too_few
