"""A bot subprocess (`python -m bot`, or the notebook-style bot) wired to a local `DiscordServer`.

Used by the `memory` and `e2e` benchmarks: start the server in this process, the bot in a
child process pointed at it, send commands as the server's human user, read the child's peak
RSS (VmHWM in /proc/PID/status), stop it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import OUT, REPO
from playground.discord.layouts import message_text
from playground.launch import bot_environment, start_bot

READY_TIMEOUT = 180.0
STOP_GRACE = 15.0


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of `pid`, in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


class BotProcess:
    """`python -m MODULE` as a bot for `server`; an async context manager."""

    def __init__(
        self,
        server: Any,
        model_dir: Path,
        *,
        backend: str = "litert",
        module: str = "bot",
        env: dict[str, str] | None = None,
        name: str = "bot",
    ) -> None:
        self.server = server
        self.model_dir = Path(model_dir).resolve()
        self.backend = backend
        self.module = module
        self.extra_env = env or {}
        self.log_path = OUT / "logs" / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.ready_seconds: float | None = None
        self._log = None

    def environment(self) -> dict[str, str]:
        return bot_environment(
            self.server.api_url,
            self.server.token,
            gateway_url=self.server.gateway_url,
            model=self.model_dir,
            settings={
                "MODEL_BACKEND": self.backend,
                "COOLDOWN_RATE": "0",
                "RATE_LIMIT_MEMBER": "0",
                "RATE_LIMIT_SERVER": "0",
                "SYNC_COMMANDS": "0",
                "LOG_LEVEL": "WARNING",
                "MPLCONFIGDIR": str(OUT / "mplconfig"),
                "DATA_DIR": str(OUT / "data" / self.log_path.stem),
                **self.extra_env,
            },
        )

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        started = time.perf_counter()
        self.process = await start_bot(
            self.environment(),
            env_file=OUT / "no-such.env",
            module=self.module,
            cwd=REPO,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            die_with_parent=True,  # none outlives the benchmark (or the smoke test) that ran it
        )
        exited = asyncio.create_task(self.process.wait())
        ready = asyncio.create_task(self.server.bot_ready.wait())
        done, _ = await asyncio.wait(
            {exited, ready}, timeout=READY_TIMEOUT, return_when="FIRST_COMPLETED"
        )
        exited.cancel()
        ready.cancel()
        if ready not in done:
            await self.stop()
            raise RuntimeError(
                f"{self.module} did not connect within {READY_TIMEOUT:.0f} s "
                f"(exit code {self.process.returncode}); its log:\n{self.tail()}"
            )
        self.ready_seconds = time.perf_counter() - started

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def status(self) -> dict[str, int]:
        assert self.process is not None
        return proc_status(self.process.pid)

    async def stop(self) -> int | None:
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return None if process is None else process.returncode

    async def __aenter__(self) -> BotProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def command(
    server: Any, png: bytes, *, name: str = "image.png", text: str = "!jedisith", timeout=60.0
) -> tuple[float, dict[str, Any]]:
    """Post `text` with `png` attached; seconds from posting to the bot's reply, and the reply."""
    start = time.perf_counter()
    message = await server.post_message(text, attachments=[(name, png)])
    reply = await server.wait_for_reply(message["id"], timeout=timeout)
    return time.perf_counter() - start, reply


async def until_answering(server: Any, png: bytes, attempts: int = 30) -> None:
    """Send commands until the bot answers one (it has handled READY and GUILD_CREATE)."""
    for _ in range(attempts):
        with contextlib.suppress(TimeoutError):
            await command(server, png, timeout=5.0)
            return
    raise RuntimeError("the bot never answered")


def is_verdict(reply: dict[str, Any]) -> bool:
    content = message_text(reply)  # a verdict card's text, or a plain reply's
    return any(word in content for word in ("Jedi", "Sith", "Can't tell"))


async def burst(
    server: Any, pngs: Sequence[bytes], *, timeout: float = 300.0
) -> tuple[float, list[float | None], list[dict[str, Any] | None]]:
    """Post every command at once; seconds to the last reply, each latency (None: no reply)."""
    start = time.perf_counter()
    messages = await asyncio.gather(
        *(
            server.post_message("!jedisith", attachments=[(f"burst{i}.png", png)])
            for i, png in enumerate(pngs)
        )
    )

    async def answer(message: dict[str, Any]) -> tuple[float | None, dict[str, Any] | None]:
        try:
            reply = await server.wait_for_reply(message["id"], timeout=timeout)
        except TimeoutError:
            return None, None
        return time.perf_counter() - start, reply

    outcomes = await asyncio.gather(*(answer(m) for m in messages))
    last = time.perf_counter() - start
    return last, [o[0] for o in outcomes], [o[1] for o in outcomes]
