"""Start the real bot (`python -m bot`) against a Discord look-alike: the one launcher.

The playground, the end-to-end tests and the benchmarks all run the bot this way (the browser
tests run the playground, which runs it): the same interpreter and project path, the look-alike's
URL and token, a `.env` that cannot change what is tested, caches in a folder of the caller's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

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
        preexec_fn=_die_with_parent if die_with_parent and _prctl is not None else None,
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the bot gets SIGTERM if its parent dies without cleaning up (e.g. SIGKILL)."""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _load_prctl():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()
