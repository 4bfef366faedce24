"""Shard arithmetic (which shard holds a guild, contiguous ranges, SHARD_IDS text), the
look-alike's guild ids spreading over every shard count, and IDENTIFY pacing by bucket, in one
process and across two sharing a folder."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from pathlib import Path

import pytest

from bot.shards import (
    IdentifyPacer,
    describe_latencies,
    parse_shard_ids,
    shard_of,
    shard_ranges,
    split_shards,
)
from playground.discord import DiscordServer, numbered_guilds
from playground.discord.shards import holds
from playground.discord.shards import shard_of as lookalike_shard_of


def test_a_guilds_shard_is_its_timestamp_modulo_the_count() -> None:
    guild_id = 175928847299117063  # Discord's documentation's example snowflake
    assert guild_id >> 22 == 41944705796
    assert [shard_of(guild_id, n) for n in (1, 2, 3, 4)] == [0, 0, 2, 0]
    assert shard_of(guild_id, 5) == 41944705796 % 5
    assert all(lookalike_shard_of(guild_id, n) == shard_of(guild_id, n) for n in range(1, 20))


@pytest.mark.parametrize(
    ("count", "processes", "expected"),
    [
        (4, 2, ["0-1", "2-3"]),
        (10, 3, ["0-3", "4-6", "7-9"]),
        (5, 5, ["0", "1", "2", "3", "4"]),
        (7, 1, ["0-6"]),
    ],
)
def test_shards_split_into_contiguous_ranges(count: int, processes: int, expected: list) -> None:
    ranges = split_shards(count, processes)
    assert [shard_ranges(r) for r in ranges] == expected
    assert [s for r in ranges for s in r] == list(range(count))  # each shard once, in order


@pytest.mark.parametrize(("count", "processes"), [(2, 3), (4, 0)])
def test_a_split_that_leaves_a_process_without_a_shard_is_refused(
    count: int, processes: int
) -> None:
    with pytest.raises(ValueError, match="cannot split"):
        split_shards(count, processes)


def test_shard_ranges_are_written_as_shard_ids_reads_them() -> None:
    for ids in [(0,), (0, 1, 2, 3), (0, 1, 5, 7, 8, 9), (3, 10)]:
        assert parse_shard_ids(shard_ranges(ids)) == ids
    assert shard_ranges([9, 0, 1, 2, 7]) == "0-2,7,9"


@pytest.mark.parametrize("guild_count", [3, 8, 13])
def test_the_lookalikes_guilds_spread_over_every_shard_count(guild_count: int) -> None:
    """Guild ids get consecutive timestamps (``id >> 22``): n shards share them round-robin."""
    server = DiscordServer(guilds=numbered_guilds(guild_count))
    timestamps = [g >> 22 for g in server.guild_ids]
    assert timestamps == list(range(timestamps[0], timestamps[0] + guild_count))
    for shards in range(1, 9):
        sizes = Counter(server.shard_of(g, shards) for g in server.guild_ids)
        assert len(sizes) == min(shards, guild_count)  # as many shards used as can be
        assert max(sizes.values()) - min(sizes.values()) <= 1, (shards, sizes)
        held = [server.guilds_of_shard(s, shards) for s in range(shards)]
        assert sorted(g for ids in held for g in ids) == sorted(server.guild_ids)


def test_events_of_no_guild_go_to_shard_zero() -> None:
    assert holds(None, None) and holds(None, 123 << 22)  # unsharded: everything
    assert holds((0, 4), None) and not holds((1, 4), None)
    assert holds((3, 4), 7 << 22) and not holds((2, 4), 7 << 22)


def test_latencies_read_in_milliseconds() -> None:
    text = describe_latencies([(1, 0.0384), (0, 0.041), (2, float("inf"))])
    assert text == "shard 0 41 ms, shard 1 38 ms, shard 2 no heartbeat yet"
    assert describe_latencies([]) == "no shard connected"


INTERVAL = 0.4  # the tests' IDENTIFY interval (Discord's is 5 s)


async def identify_times(pacer: IdentifyPacer, shard_ids: list[int]) -> dict[int, float]:
    start = time.monotonic()
    times: dict[int, float] = {}

    async def one(shard: int) -> None:
        await pacer.wait(shard)
        times[shard] = time.monotonic() - start

    await asyncio.gather(*(one(s) for s in shard_ids))
    return times


async def test_shards_of_one_bucket_identify_an_interval_apart() -> None:
    pacer = IdentifyPacer(max_concurrency=1, interval=INTERVAL)
    times = sorted((await identify_times(pacer, [0, 1, 2])).values())
    assert times[0] < 0.1  # the first goes at once, as discord.py's initial IDENTIFY does
    assert all(b - a >= INTERVAL - 0.01 for a, b in itertools.pairwise(times))


async def test_shards_of_other_buckets_identify_together() -> None:
    """max_concurrency 2: shards 0 and 1 go at once (discord.py alone would wait 5 s between
    them), 2 waits for 0 and 3 for 1."""
    pacer = IdentifyPacer(max_concurrency=2, interval=INTERVAL)
    times = await identify_times(pacer, [0, 1, 2, 3])
    assert times[0] < 0.1 and times[1] < 0.1
    assert INTERVAL - 0.01 <= times[2] < INTERVAL + 0.2
    assert INTERVAL - 0.01 <= times[3] < INTERVAL + 0.2


async def test_processes_sharing_a_folder_share_the_buckets(tmp_path: Path) -> None:
    """Two pacers (two processes) on one folder: the second's first IDENTIFY of bucket 0
    waits for the first's, where discord.py would send both at once."""
    first = IdentifyPacer(max_concurrency=2, folder=tmp_path, interval=INTERVAL)
    second = IdentifyPacer(max_concurrency=2, folder=tmp_path, interval=INTERVAL)
    start = time.monotonic()
    await first.wait(0)
    await second.wait(2)  # bucket 0 too
    assert time.monotonic() - start >= INTERVAL - 0.01
    before = time.monotonic()
    await second.wait(1)  # bucket 1: nobody used it
    assert time.monotonic() - before < 0.1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["identify-2-0.time", "identify-2-1.time"]


async def test_a_turn_is_held_until_the_identify_is_sent(tmp_path: Path) -> None:
    """`turn` holds the bucket while the shard connects: the next one counts from its end."""
    pacer = IdentifyPacer(max_concurrency=1, folder=tmp_path, interval=INTERVAL)
    other = IdentifyPacer(max_concurrency=1, folder=tmp_path, interval=INTERVAL)
    async with pacer.turn(0):
        await asyncio.sleep(0.2)  # connecting: the HELLO, then the IDENTIFY
        ended = time.monotonic()
    await other.wait(1)
    assert time.monotonic() - ended >= INTERVAL - 0.01


async def test_an_unusable_folder_paces_this_process_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    pacer = IdentifyPacer(max_concurrency=1, folder=blocked / "gateway", interval=INTERVAL)
    with caplog.at_level(logging.WARNING, logger="bot.shards"):
        times = sorted((await identify_times(pacer, [0, 1])).values())
    assert times[1] - times[0] >= INTERVAL - 0.01
    assert pacer.folder is None
    assert "pacing this process only" in caplog.text
