"""Two `python -m bot` processes, two shards each (SHARD_COUNT=4, SHARD_IDS=0,1 and 2,3), against
the look-alike with eight guilds that need four shards: every command in every guild is answered
once, by the process holding its shard; a dropped shard resumes; a process killed and started
again gets its shards back while the other keeps answering. IDENTIFY is paced across both
processes: the look-alike refuses any IDENTIFY past max_concurrency, and refuses none here."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from botkit import (
    TOKEN,
    answers,
    assert_answered_once,
    replies_to,
    sample,
    start_shard_process,
    text_of,
    verdict_lines,
    wait_until_holding,
)
from leftovers import owned_by_module

from bot.model_versions import prepare_retrained_folder
from model.bundle import DEFAULT_MODEL_DIR
from playground.discord import DiscordServer, Sharding, numbered_guilds
from playground.launch import LoggedBot

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(90, func_only=True),
]

SHARDS = 4
HOLDERS = {"a": (0, 1), "b": (2, 3)}
IMAGES = ("jedi-1", "sith-2")
# Eight guilds at two a shard: four shards, and an unsharded bot would be refused (4011).
SHARDING = Sharding(
    guilds_per_shard=2, max_guilds_per_shard=2, max_concurrency=2, pace_identify=True
)


@dataclass
class Cluster:
    server: DiscordServer
    folder: Path
    processes: dict[str, LoggedBot]
    starts: dict[str, int]

    async def start(self, name: str) -> LoggedBot:
        """Start (or start again) process ``name``, sharing DATA_DIR with the other; its log in
        a folder of its own per start."""
        self.starts[name] = self.starts.get(name, 0) + 1
        folder = self.folder / f"{name}-{self.starts[name]}"
        shared = {"DATA_DIR": str(self.folder / "data")}  # the IDENTIFY locks, the dataset
        process = await start_shard_process(self.server, folder, HOLDERS[name], SHARDS, shared)
        owned_by_module(process.proc.pid)  # the `cluster` fixture stops it
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return self.processes[name].output()[1]

    def holder(self, guild_id: int) -> str:
        shard = self.server.shard_of(guild_id, SHARDS)
        return next(name for name, shards in HOLDERS.items() if shard in shards)

    def guilds_of(self, name: str) -> list[int]:
        return [g for g in self.server.guild_ids if self.holder(g) == name]

    async def command(self, guild_id: int, image: str = "jedi-1") -> dict[str, Any]:
        return await self.server.post_message(
            "!jedisith", attachments=[sample(image)], channel_id=self.server.first_channel(guild_id)
        )

    async def settle(self, guild_ids: list[int]) -> None:
        """A last command in each guild, refused at once: answered, so is what came before."""
        sentinels = [
            await self.server.post_message("!features 9", channel_id=self.server.first_channel(g))
            for g in guild_ids
        ]
        await answers(self.server, sentinels)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster() -> AsyncIterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="jedisith-cluster-"))
    guilds = numbered_guilds(8)
    try:
        async with DiscordServer(token=TOKEN, guilds=guilds, sharding=SHARDING) as server:
            running = Cluster(server, folder, {}, {})
            try:
                await asyncio.gather(running.start("a"), running.start("b"))
                await asyncio.gather(
                    wait_until_holding(running.processes["a"], "0-1 of 4"),
                    wait_until_holding(running.processes["b"], "2-3 of 4"),
                )
                yield running
            finally:
                for process in running.processes.values():
                    with contextlib.suppress(ProcessLookupError):
                        process.proc.terminate()
                for process in running.processes.values():
                    with contextlib.suppress(TimeoutError):
                        await process.wait(20)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def test_the_guilds_need_four_shards_spread_over_both_processes(cluster: Cluster) -> None:
    server = cluster.server
    assert server.recommended_shards == SHARDS
    assert {name: len(cluster.guilds_of(name)) for name in HOLDERS} == {"a": 4, "b": 4}
    assert sorted(server.shard_sessions()) == [0, 1, 2, 3]
    assert "shards 0-1 of 4 in this process" in cluster.log("a")
    assert "shards 2-3 of 4 in this process" in cluster.log("b")
    assert "latency shard 0 " in cluster.log("a") and "latency shard 2 " in cluster.log("b")


async def test_every_guild_is_answered_once_by_the_process_holding_its_shard(
    cluster: Cluster,
) -> None:
    server = cluster.server
    commands = [await cluster.command(g, image) for g in server.guild_ids for image in IMAGES]
    replies = await answers(server, commands)
    await cluster.settle(server.guild_ids)
    assert_answered_once(server, commands)
    for command, reply in zip(commands, replies, strict=True):
        label = "Jedi" if command["attachments"][0]["filename"].startswith("jedi") else "Sith"
        assert verdict_lines(text_of(reply))[0].startswith(f"**{label}**"), text_of(reply)
        guild_id = int(command["guild_id"])
        delivered = server.delivered_to(command["id"])
        # The command reached one session only: its guild's shard, held by its process, whose
        # log names that session (discord.py logs each shard's session id as it connects).
        assert [shard for _, shard in delivered] == [(server.shard_of(guild_id, SHARDS), SHARDS)]
        session_id = delivered[0][0]
        holder = cluster.holder(guild_id)
        other = next(name for name in HOLDERS if name != holder)
        assert session_id in cluster.log(holder) and session_id not in cluster.log(other)


async def test_a_dropped_shard_resumes_and_loses_nothing(cluster: Cluster) -> None:
    server = cluster.server
    before = server.shard_sessions()
    identifies = len(server.gateway.starts.identifies)
    guilds = server.guilds_of_shard(2, SHARDS)
    assert await server.drop_shard(2) == 1
    during = [await cluster.command(g, "sith-1") for g in guilds]
    await cluster.processes["b"].wait_for_log("shard 2 of 4 resumed its session")
    assert await server.drop_shard(2, abrupt=True) == 1  # no close frame: a network failure
    after = [await cluster.command(g, "jedi-2") for g in guilds]
    await answers(server, during + after)
    await cluster.settle(guilds)
    assert_answered_once(server, during + after)
    assert server.shard_sessions() == before  # resumed: the same sessions, no new IDENTIFY
    assert len(server.gateway.starts.identifies) == identifies


async def test_a_model_published_by_one_reaches_both(cluster: Cluster) -> None:
    """The first retrain of a cluster serving the shipped model publishes in the shared
    DATA_DIR/models: every process starts serving it, not only the one that trained."""
    folder = await asyncio.to_thread(
        prepare_retrained_folder, DEFAULT_MODEL_DIR, cluster.folder / "data"
    )
    for process in cluster.processes.values():
        await process.wait_for_log(f"a retrained model was published in {folder}: serving it")
        await process.wait_for_log(f"reloaded the model from {folder}")
    commands = [await cluster.command(g) for g in cluster.server.guild_ids]
    await answers(cluster.server, commands)


async def test_a_killed_process_comes_back_while_the_other_keeps_answering(
    cluster: Cluster,
) -> None:
    server = cluster.server
    old_sessions = server.shard_sessions()
    cluster.processes["a"].proc.kill()  # SIGKILL: no goodbye to the gateway
    assert await cluster.processes["a"].proc.wait() == -9
    ours, theirs = cluster.guilds_of("b"), cluster.guilds_of("a")

    meanwhile = [await cluster.command(g) for g in ours]
    await answers(server, meanwhile)
    lost = await cluster.command(theirs[0])  # nobody holds its shard now

    restarted = await cluster.start("a")
    await wait_until_holding(restarted, "0-1 of 4")
    sessions = server.shard_sessions()
    assert sessions[0] != old_sessions[0] and sessions[1] != old_sessions[1]  # new sessions
    assert sessions[2] == old_sessions[2] and sessions[3] == old_sessions[3]  # b never left
    back = [await cluster.command(g) for g in theirs]
    await answers(server, back)
    await cluster.settle(server.guild_ids)
    assert_answered_once(server, meanwhile + back)
    # As on Discord, a new session does not get what its shard was sent while nobody held it.
    lost_shard = server.shard_of(theirs[0], SHARDS)
    assert [session for session, _ in server.delivered_to(lost["id"])] == [old_sessions[lost_shard]]
    assert replies_to(server, lost) == []


async def test_identify_was_paced_across_both_processes(cluster: Cluster) -> None:
    starts = cluster.server.gateway.starts
    assert starts.refused == []  # none past max_concurrency, nor a wrong shard
    buckets = SHARDING.max_concurrency
    for bucket in range(buckets):
        times = [i.at for i in starts.identifies if i.shard and i.shard[0] % buckets == bucket]
        assert all(b - a >= 5.0 for a, b in itertools.pairwise(times)), times
    for name in HOLDERS:
        assert "Traceback" not in cluster.log(name), cluster.log(name)


async def test_sigterm_stops_both_processes_cleanly(cluster: Cluster) -> None:
    for process in cluster.processes.values():
        process.proc.terminate()
    codes = {name: await process.wait(20) for name, process in cluster.processes.items()}
    assert codes == {"a": 0, "b": 0}, {name: cluster.log(name) for name in codes}
    assert cluster.server.connected_sessions == 0
