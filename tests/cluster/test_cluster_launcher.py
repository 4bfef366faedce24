"""`python -m bot.cluster`: the plan (SHARD_COUNT or auto split into ranges), the children's
settings, restarts with backoff, a refused setting stopping everything, SIGTERM passed on; and
the real launcher with two bots against the look-alike."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from botkit import TOKEN, answers, assert_answered_once, sample

from bot import cluster as launcher
from bot.cluster import Child, Cluster, ClusterError, child_environments, plan
from bot.settings import Settings
from playground.discord import DiscordServer, Sharding, numbered_guilds
from playground.launch import PROJECT_ROOT, bot_environment


def settings(**values: str) -> Settings:
    return Settings.from_env({"DISCORD_TOKEN": TOKEN, **values})


async def test_a_shard_count_is_split_into_contiguous_ranges() -> None:
    count, ranges = await plan(settings(SHARD_COUNT="10"), 3)
    assert count == 10 and ranges == [range(0, 4), range(4, 7), range(7, 10)]


async def test_auto_asks_discord_once_and_gives_every_process_a_shard() -> None:
    sharding = Sharding(guilds_per_shard=3)
    async with DiscordServer(token=TOKEN, guilds=numbered_guilds(8), sharding=sharding) as server:
        asked = settings(SHARD_COUNT="auto", DISCORD_API_URL=server.api_url)
        assert await plan(asked, 2) == (3, [range(0, 2), range(2, 3)])  # ceil(8 / 3)
        assert (await plan(asked, 5))[0] == 5  # more processes than Discord's count
        unset = settings(DISCORD_API_URL=server.api_url)  # no SHARD_COUNT: auto as well
        assert (await plan(unset, 1))[0] == 3


@pytest.mark.parametrize(
    ("values", "processes", "words"),
    [
        ({"SHARD_COUNT": "2"}, 3, "--processes 3 is more than SHARD_COUNT=2"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "0-1"}, 2, "SHARD_IDS is set"),
        ({"SHARD_COUNT": "4"}, 0, "--processes must be at least 1"),
    ],
)
async def test_a_plan_that_cannot_work_is_refused(
    values: dict[str, str], processes: int, words: str
) -> None:
    with pytest.raises(ClusterError, match=re.escape(words)) as caught:
        await plan(settings(**values), processes)
    assert caught.value.code == launcher.EXIT_CONFIG


async def test_a_refused_token_is_one_line() -> None:
    async with DiscordServer(token="another") as server:
        with pytest.raises(ClusterError, match="Discord refused the token"):
            await plan(settings(DISCORD_API_URL=server.api_url), 2)


def test_each_child_gets_its_shards_and_only_the_first_syncs() -> None:
    envs = child_environments({"KEEP": "1"}, 4, [range(0, 2), range(2, 4)], sync=True)
    assert [(e["SHARD_COUNT"], e["SHARD_IDS"], e["SYNC_COMMANDS"]) for e in envs] == [
        ("4", "0-1", "true"),
        ("4", "2-3", "false"),
    ]
    assert all(e["KEEP"] == "1" for e in envs)
    assert child_environments({}, 2, [range(0, 2)], sync=False)[0]["SYNC_COMMANDS"] == "false"


# -- supervising, with stand-in children (`python -c`) -----------------------------------------


def stand_in(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def children(count: int = 1) -> list[Child]:
    return [Child(range(n, n + 1), dict(os.environ)) for n in range(count)]


async def test_a_child_that_dies_is_started_again_with_a_growing_backoff(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(launcher, "FIRST_BACKOFF", 0.05)
    marks = tmp_path / "starts"
    code = f"open({str(marks)!r}, 'a').write('x'); raise SystemExit(1)"
    kids = [Child(range(0, 1), dict(os.environ), backoff=0.05)]
    cluster = Cluster(kids, tmp_path / "absent.env", stand_in(code))
    running = asyncio.create_task(cluster.run())
    deadline = time.monotonic() + 10
    while not marks.exists() or len(marks.read_text()) < 3:
        assert time.monotonic() < deadline and not running.done()
        await asyncio.sleep(0.02)
    assert kids[0].backoff >= 0.2  # 0.05, 0.1, 0.2...
    cluster._received(signal.SIGTERM)
    assert await asyncio.wait_for(running, 10) == 0


async def test_a_child_refusing_its_settings_stops_the_cluster(tmp_path: Path) -> None:
    code = "import os, time\nif os.environ['ROLE'] == 'refuse': raise SystemExit(2)\ntime.sleep(30)"
    kids = children(2)
    kids[0].env["ROLE"], kids[1].env["ROLE"] = "refuse", "sleep"
    cluster = Cluster(kids, tmp_path / "absent.env", stand_in(code))
    started = time.monotonic()
    assert await asyncio.wait_for(cluster.run(), 15) == launcher.EXIT_CONFIG
    assert time.monotonic() - started < 10  # the sleeper was stopped, not waited for
    assert [c.starts for c in kids] == [1, 1]  # neither started again
    assert all(c.proc is not None and c.proc.returncode is not None for c in kids)


async def test_sigterm_is_passed_on_and_a_child_that_ignores_it_is_killed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(launcher, "STOP_GRACE", 1.0)
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(30)"
    cluster = Cluster(children(1), tmp_path / "absent.env", stand_in(stubborn))
    running = asyncio.create_task(cluster.run())
    while cluster.children[0].proc is None:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # let it install its handler
    cluster._received(signal.SIGTERM)
    assert await asyncio.wait_for(running, 10) == 0
    assert cluster.children[0].proc.returncode == -signal.SIGKILL
    assert cluster.children[0].starts == 1  # stopping: not started again


# -- the real launcher -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_the_launcher_runs_restarts_and_stops_two_bots(tmp_path: Path) -> None:
    sharding = Sharding(guilds_per_shard=2, max_guilds_per_shard=2, max_concurrency=2)
    async with DiscordServer(token=TOKEN, guilds=numbered_guilds(8), sharding=sharding) as server:
        env = bot_environment(
            server.api_url,
            TOKEN,
            caches=tmp_path,
            settings={
                "SHARD_COUNT": "auto",
                "MODEL_BACKEND": "litert",
                "COOLDOWN_RATE": "0",
                "RATE_LIMIT_MEMBER": "0",
                "RATE_LIMIT_SERVER": "0",
                "DATA_DIR": str(tmp_path / "data"),
            },
        )
        log = tmp_path / "cluster.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cluster",
                "--processes",
                "2",
                "--env-file",
                str(tmp_path / "absent.env"),
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=out,
            )
        try:
            text = await logged(log, proc, "[shards 2-3] ", "holding shards 2-3 of 4")
            await logged(log, proc, "[shards 0-1] ", "holding shards 0-1 of 4")
            assert "Discord recommends 4 shards: running 4" in text
            assert sorted(server.shard_sessions()) == [0, 1, 2, 3]
            await answered_in(server, server.guild_ids)

            pid = int(re.findall(r"started shards 0-1 \(pid (\d+)\)", log.read_text())[-1])
            os.kill(pid, signal.SIGKILL)
            await logged(log, proc, "", "shards 0-1 was killed by SIGKILL")
            await logged(log, proc, "", "started shards 0-1 (pid", count=2)
            await logged(log, proc, "[shards 0-1] ", "holding shards 0-1 of 4", count=2)
            await answered_in(server, server.guild_ids)

            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 40) == 0, log.read_text()
            text = log.read_text()
            assert "shards 0-1 stopped (exited with 0)" in text
            assert "shards 2-3 stopped (exited with 0)" in text
            assert server.connected_sessions == 0
            assert "Traceback" not in text, text
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def logged(
    log: Path, proc: asyncio.subprocess.Process, prefix: str, text: str, count: int = 1
) -> str:
    """Until the launcher's log holds ``count`` lines with ``prefix`` and ``text``."""
    deadline = time.monotonic() + 60
    while True:
        content = log.read_text(errors="replace")
        lines = [line for line in content.splitlines() if line.startswith(prefix) or not prefix]
        if sum(text in line for line in lines) >= count:
            return content
        assert proc.returncode is None, content
        assert time.monotonic() < deadline, f"{text!r} never logged: {content}"
        await asyncio.sleep(0.05)


async def answered_in(server: DiscordServer, guild_ids: list[int]) -> None:
    commands = [
        await server.post_message(
            "!jedisith", attachments=[sample("sith-1")], channel_id=server.first_channel(g)
        )
        for g in guild_ids
    ]
    await answers(server, commands)
    sentinels = [
        await server.post_message("!features 9", channel_id=server.first_channel(g))
        for g in guild_ids
    ]
    await answers(server, sentinels)
    assert_answered_once(server, commands)
