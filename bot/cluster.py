"""`python -m bot.cluster --processes N`: one sharded bot as N `python -m bot` processes.

SHARD_COUNT (a number, or ``auto``, also when unset: asked once from Discord's
``GET /gateway/bot``, and at least N) is split into N contiguous ranges of shards; each child
runs one range (its SHARD_COUNT and SHARD_IDS set) with the same settings otherwise (`.env` and
the environment), so they share DATA_DIR, DATABASE_URL and MODEL_PATH. Only the first child
syncs the slash commands when that is asked for. Every line a child logs is prefixed with its
shards.

A child that exits is started again after a backoff (1 s, doubling up to 60 s; back to 1 s once
a child has run for a minute), except when it refuses its settings (exit 2), which stops the
cluster. SIGTERM or SIGINT is passed on to every child, which finishes the commands in flight
and exits; one still running after `STOP_GRACE` seconds is killed. On Linux a child also gets
SIGTERM if the launcher itself dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bot.processes import die_with_parent
from bot.settings import Settings, SettingsError
from bot.shards import AUTO, shard_ranges, split_shards

log = logging.getLogger("bot.cluster")

EXIT_CONFIG = 2  # as `python -m bot`: a setting is wrong, starting again would not help
EXIT_RUNTIME = 1
STOP_GRACE = 20.0  # a child's clean stop: the bot's SHUTDOWN_SECONDS (12) and a margin
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 60.0
STABLE_SECONDS = 60.0  # a child that ran this long starts again after FIRST_BACKOFF
DISCORD_API = "https://discord.com/api/v10"


class ClusterError(RuntimeError):
    """A failure that one line explains; the launcher exits with `code`."""

    def __init__(self, message: str, code: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.code = code


async def recommended_shards(settings: Settings) -> int:
    """The shard count Discord recommends (``GET /gateway/bot``)."""
    api = (settings.api_url or DISCORD_API).rstrip("/")
    headers = {"Authorization": f"Bot {settings.token.get_secret_value()}"}
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{api}/gateway/bot", headers=headers) as response,
        ):
            if response.status == 401:
                raise ClusterError("Discord refused the token: check DISCORD_TOKEN")
            response.raise_for_status()
            return int((await response.json())["shards"])
    except (aiohttp.ClientError, OSError, KeyError, ValueError) as error:
        raise ClusterError(f"cannot ask {api}/gateway/bot for a shard count: {error}") from None


async def plan(settings: Settings, processes: int) -> tuple[int, list[range]]:
    """The shard count and each process's shards."""
    if processes < 1:
        raise ClusterError("--processes must be at least 1", EXIT_CONFIG)
    if settings.shard_ids is not None:
        raise ClusterError(
            "SHARD_IDS is set: the launcher gives each process its own; unset it", EXIT_CONFIG
        )
    if settings.shard_count in (None, AUTO):
        recommended = await recommended_shards(settings)
        count = max(recommended, processes)
        log.info("Discord recommends %d shards: running %d", recommended, count)
    else:
        count = int(settings.shard_count)  # type: ignore[arg-type]
        if count < processes:
            raise ClusterError(
                f"--processes {processes} is more than SHARD_COUNT={count}: every process needs "
                "a shard",
                EXIT_CONFIG,
            )
    return count, split_shards(count, processes)


@dataclass
class Child:
    """One `python -m bot` of the cluster and how it has been doing."""

    shards: range
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    backoff: float = FIRST_BACKOFF
    output: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"shards {shard_ranges(self.shards)}"


class Cluster:
    """Starts, watches and stops the children."""

    def __init__(
        self,
        children: list[Child],
        env_file: Path,
        command: Sequence[str] = (sys.executable, "-m", "bot"),
    ) -> None:
        self.children = children
        self.env_file = env_file
        self.command = tuple(command)  # a child, before its --env-file
        self.stopping = asyncio.Event()
        self.exit_code = 0

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._received, sig)
        try:
            await asyncio.gather(*(self._supervise(child) for child in self.children))
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return self.exit_code

    def _received(self, sig: signal.Signals) -> None:
        if self.stopping.is_set():  # a second signal: no more waiting
            log.warning("received %s again: killing the bots", sig.name)
            for child in self.children:
                _signal(child, signal.SIGKILL)
            return
        log.info("received %s: stopping %d bots", sig.name, len(self.children))
        self.stopping.set()
        for child in self.children:
            _signal(child, signal.SIGTERM)

    async def _supervise(self, child: Child) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            await self._start(child)
            code = await self._wait(child)
            if self.stopping.is_set():
                break
            ran = time.monotonic() - started
            if code == EXIT_CONFIG:
                log.error("%s refused its settings (exit %d): stopping", child.name, code)
                self.exit_code = EXIT_CONFIG
                self._received(signal.SIGTERM)
                break
            if ran >= STABLE_SECONDS:
                child.backoff = FIRST_BACKOFF
            log.warning(
                "%s %s after %.0f s; starting it again in %.0f s",
                child.name,
                _how_it_ended(code),
                ran,
                child.backoff,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), child.backoff)
            child.backoff = min(child.backoff * 2, MAX_BACKOFF)

    async def _start(self, child: Child) -> None:
        child.proc = await asyncio.create_subprocess_exec(
            *self.command,
            "--env-file",
            str(self.env_file),
            env=child.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=die_with_parent(),
        )
        child.starts += 1
        log.info("started %s (pid %d)", child.name, child.proc.pid)
        child.output = asyncio.create_task(_relay(child.name, child.proc))

    async def _wait(self, child: Child) -> int:
        assert child.proc is not None
        waiting = asyncio.ensure_future(child.proc.wait())
        stopping = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not waiting.done():  # stopping: it was sent SIGTERM; give it its grace
            try:
                await asyncio.wait_for(asyncio.shield(waiting), STOP_GRACE)
            except TimeoutError:
                log.warning("%s did not stop within %.0f s: killing it", child.name, STOP_GRACE)
                _signal(child, signal.SIGKILL)
                await waiting
        if child.output is not None:
            await child.output
        code = waiting.result()
        if self.stopping.is_set():
            log.info("%s stopped (%s)", child.name, _how_it_ended(code))
        return code


async def _relay(name: str, proc: asyncio.subprocess.Process) -> None:
    """Every line the child writes, to our stderr with its shards in front."""
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        sys.stderr.write(f"[{name}] {line.decode(errors='replace').rstrip()}\n")
        sys.stderr.flush()


def _signal(child: Child, sig: signal.Signals) -> None:
    if child.proc is not None and child.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.proc.send_signal(sig)


def _how_it_ended(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with {code}"


def child_environments(
    base: dict[str, str], count: int, ranges: list[range], sync: bool
) -> list[dict[str, str]]:
    """Each child's environment: ``base`` with its SHARD_COUNT and SHARD_IDS; only the first
    syncs the application commands (when ``sync``)."""
    envs = []
    for index, shards in enumerate(ranges):
        env = {**base, "SHARD_COUNT": str(count), "SHARD_IDS": shard_ranges(shards)}
        env["SYNC_COMMANDS"] = "true" if sync and index == 0 else "false"
        env["PYTHONUNBUFFERED"] = "1"
        envs.append(env)
    return envs


async def launch(settings: Settings, processes: int, env_file: Path, sync: bool) -> int:
    count, ranges = await plan(settings, processes)
    envs = child_environments(dict(os.environ), count, ranges, sync or settings.sync_commands)
    children = [Child(shards, env) for shards, env in zip(ranges, envs, strict=True)]
    log.info(
        "%d shards in %d processes: %s",
        count,
        processes,
        "; ".join(shard_ranges(c.shards) for c in children),
    )
    return await Cluster(children, env_file).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.cluster", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--processes", type=int, required=True, help="how many bot processes")
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="default: .env")
    parser.add_argument(
        "--sync", action="store_true", help="register the slash commands (the first process)"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_environment(args.env_file)
    except SettingsError as error:
        print(f"bot.cluster: {error}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        code = asyncio.run(launch(settings, args.processes, args.env_file, args.sync))
    except ClusterError as error:
        print(f"bot.cluster: {error}", file=sys.stderr)
        return error.code
    log.info("stopped")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
