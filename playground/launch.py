"""Start the real bot (`python -m bot`) against a Discord look-alike: the one launcher.

The playground, the end-to-end tests and the benchmarks all run the bot this way (the browser
tests run the playground, which runs it): the same interpreter and project path, the look-alike's
URL and token, a `.env` that cannot change what is tested, caches in a folder of the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bot import processes

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def bot_setting_keys() -> frozenset[str]:
    """Every environment variable the bot reads as a setting."""
    from bot.settings import Settings

    return frozenset(Settings.env_names().values())


def bot_environment(
    api_url: str,
    token: str,
    *,
    gateway_url: str = "",
    model: Path | None = None,
    settings: Mapping[str, str] | None = None,
    caches: Path | None = None,
    base: Mapping[str, str] | None = None,
    keep_settings: bool = False,
) -> dict[str, str]:
    """The environment for `python -m bot` against the look-alike at `api_url`.

    `base` (default: this process's environment) is passed on without the bot's own settings,
    unless `keep_settings` (the playground keeps a developer's choices); `settings` are then
    laid on top. An empty `gateway_url` makes the bot ask `{api_url}/gateway`, and overrides a
    `.env` value.
    """
    source = dict(os.environ if base is None else base)
    if not keep_settings:
        keys = bot_setting_keys()
        source = {key: value for key, value in source.items() if key not in keys}
    env = {
        **source,
        "DISCORD_TOKEN": token,
        "DISCORD_API_URL": api_url,
        "DISCORD_GATEWAY_URL": gateway_url,
        "ALLOWED_CHANNEL_IDS": "",  # a .env restricted to real channels would silence the bot
        "PYTHONUNBUFFERED": "1",
    }
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    if caches is not None:
        env.update(
            TMPDIR=str(caches),
            MPLCONFIGDIR=str(caches / "matplotlib"),
            XDG_CACHE_HOME=str(caches / "cache"),
        )
    if model is not None:
        env["MODEL_PATH"] = str(Path(model).expanduser().resolve())
    env.update(settings or {})
    return env


async def start_bot(
    env: Mapping[str, str],
    *,
    env_file: Path,
    stdout: IO[Any] | int | None,
    stderr: IO[Any] | int | None,
    module: str = "bot",
    cwd: Path | None = None,
    die_with_parent: bool = False,
    limit: int = 2**16,
) -> asyncio.subprocess.Process:
    """`python -m MODULE` with `env`; `env_file` is passed as `--env-file` to `python -m bot`
    (name one that does not exist to ignore a developer's `.env`)."""
    arguments = ["--env-file", str(env_file)] if module == "bot" else []
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *arguments,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        limit=limit,
        preexec_fn=processes.die_with_parent() if die_with_parent else None,
    )


@dataclass
class LoggedBot:
    """A bot process whose stdout and stderr (its log) go to files."""

    proc: asyncio.subprocess.Process
    stdout: Path
    stderr: Path

    async def wait(self, timeout: float) -> int:
        """Its exit code; killed (and the timeout raised) if it takes longer."""
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.kill()
            await self.proc.wait()
            raise

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    def output(self) -> tuple[str, str]:
        return self.stdout.read_text(errors="replace"), self.stderr.read_text(errors="replace")

    async def wait_connected(self, ready: asyncio.Event, timeout: float = 30) -> None:
        """Until `ready` (the look-alike's "bot identified"); fails early if the bot exits."""
        connected = asyncio.ensure_future(ready.wait())
        exited = asyncio.ensure_future(self.proc.wait())
        done, _ = await asyncio.wait(
            {connected, exited}, timeout=timeout, return_when="FIRST_COMPLETED"
        )
        connected.cancel()
        exited.cancel()
        if connected not in done:
            self.kill()
            await self.proc.wait()
            raise AssertionError(f"the bot never connected: {self.output()}")

    async def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        """Until `text` shows in the bot's stderr (its log); fails if it exits first."""
        deadline = time.monotonic() + timeout
        while text not in self.output()[1]:
            assert self.proc.returncode is None, f"the bot exited: {self.output()}"
            assert time.monotonic() < deadline, f"{text!r} never logged: {self.output()}"
            await asyncio.sleep(0.02)


async def start_logged_bot(env: Mapping[str, str], folder: Path) -> LoggedBot:
    """`python -m bot` with `env`, never reading a developer's `.env` (one that does not exist
    in `folder` is named), its output in `folder`/stdout.log and stderr.log; it ends with this
    process, so none outlives the tests that start them."""
    folder.mkdir(parents=True, exist_ok=True)
    stdout, stderr = folder / "stdout.log", folder / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = await start_bot(
            env,
            env_file=folder / "absent.env",
            stdout=out,
            stderr=err,
            cwd=PROJECT_ROOT,
            die_with_parent=True,
        )
    return LoggedBot(proc, stdout, stderr)
