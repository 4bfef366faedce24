"""`python -m playground` (or `jedisith-playground`): try the bot in a browser, no Discord needed.

Starts the Discord look-alike (`playground.discord`) with the playground's page (`playground.web`)
on the same host and port, then the real bot as a subprocess (`python -m bot`) pointed at it with a
random token, and prints ``Playground ready: open http://127.0.0.1:8080`` once the bot has
connected. The bot's logs are forwarded, prefixed with ``bot |``, without the lines that say
nothing to a person trying the page (Alembic's INFO lines) or do not apply to the look-alike
(the discord.com invite URL). Ctrl-C or SIGTERM stops the
bot (SIGTERM, then waits) and the server, exit 0; if the bot dies, the playground says so and
exits 1. Nothing is stored outside a temporary folder, deleted at exit: the bot serves a copy
of the model made there (`--model`, or the shipped one) and keeps its dataset there, whatever
`.env` or the shell say of MODEL_PATH, DATA_DIR and DATABASE_URL, so nothing a page does
(`!retrain shared`, `!rollback shared`, `!teach`) reaches a developer's own model or data.

With ``--auto`` (what ``make run`` uses): when DISCORD_TOKEN is set, in the environment or the
``--env-file``, this runs the real bot on Discord instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from dotenv import dotenv_values

from model.bundle import DEFAULT_MODEL_DIR
from playground.launch import bot_environment as bot_environment_for
from playground.launch import start_bot
from playground.web import PlaygroundServer

log = logging.getLogger("playground")

EXIT_OK = 0
EXIT_BOT_FAILED = 1
EXIT_LISTEN = 2
READY_TIMEOUT = 300.0  # importing TensorFlow and loading the model can be slow on small machines
LOG_LINE_LIMIT = 1024 * 1024
STOP_GRACE = 15.0  # a clean stop of the bot takes at most bot.client.SHUTDOWN_SECONDS (12 s)
# The bot's log lines the terminal leaves out: Alembic's INFO lines at each start, and the
# invite URL for real Discord, which means nothing for the look-alike's bot.
HIDDEN_BOT_LINES = re.compile(r"^\S+ INFO\s+alembic[.:]|invite me with: https://discord\.com/")


def token_from(env_file: Path) -> str | None:
    """DISCORD_TOKEN from the environment, else from the .env file; None when unset or empty."""
    token = os.environ.get("DISCORD_TOKEN", "").strip()
    if not token and env_file.is_file():
        token = (dotenv_values(env_file).get("DISCORD_TOKEN") or "").strip()
    return token or None


def display_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def shown(bot_line: str) -> bool:
    """Whether the terminal shows this line of the bot's log (see HIDDEN_BOT_LINES)."""
    return HIDDEN_BOT_LINES.search(bot_line) is None


def private_model(model: Path | None, tmp: Path) -> Path:
    """The model folder the playground's bot serves: a copy in `tmp` of `model` (default: the
    shipped model). A `model` that is not a folder is passed on, for the bot to say so."""
    source = Path(model or DEFAULT_MODEL_DIR).expanduser().resolve()
    if not source.is_dir():
        return source
    target = tmp / "model"
    shutil.copytree(source, target)
    return target


def bot_environment(
    server: PlaygroundServer, tmp: Path, model: Path | None, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The bot's environment: the look-alike's URL and token, caches in `tmp`; the developer's
    other settings (from the shell; `.env` is read by the bot) are kept, but never their model,
    data or database: it serves `model` (default: the shipped model, which the bot never
    writes to) and keeps what people teach it in `tmp`, as long as the playground lasts."""
    ours = {
        "SYNC_COMMANDS": "1",
        "DATA_DIR": str(tmp / "data"),
        "DATABASE_URL": "",  # blank: the default, SQLite in DATA_DIR (not .env's value)
    }
    return bot_environment_for(
        server.api_url,
        server.token,
        model=model or DEFAULT_MODEL_DIR,
        settings=ours,
        caches=tmp,
        base=base,
        keep_settings=True,
    )


class Playground:
    """The server, the bot subprocess, and the wiring between them and the terminal."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        env_file: Path = Path(".env"),
        model: Path | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.server = PlaygroundServer(token=secrets.token_urlsafe(32), host=host, port=port)
        self.env_file = env_file
        self.model = model
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.process: asyncio.subprocess.Process | None = None
        self.stop_requested = asyncio.Event()

    def say(self, line: str) -> None:
        print(f"jedisith-playground: {line}", file=self.err, flush=True)

    async def run(self) -> int:
        host, port = self.server.host, self.server.port
        try:
            await self.server.start()
        except OSError as error:
            await self.server.close()
            if error.errno == errno.EADDRINUSE:
                self.say(
                    f"port {port} on {host} is already in use: stop whatever uses it, "
                    "or pick another port with --port"
                )
            else:
                self.say(f"cannot listen on {host}:{port}: {error.strerror or error}")
            return EXIT_LISTEN
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.say(f"listening on {host}: anyone who can reach this machine can use the page")
        self._install_signal_handlers()
        try:
            with tempfile.TemporaryDirectory(prefix="jedisith-playground-") as tmp:
                return await self._supervise(Path(tmp))
        finally:
            await self.server.close()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
                loop.add_signal_handler(sig, self.stop_requested.set)

    async def _supervise(self, tmp: Path) -> int:
        try:
            model = await asyncio.to_thread(private_model, self.model, tmp)
        except OSError as error:
            source = self.model or "the shipped model"
            self.say(f"cannot copy the model from {source}: {error.strerror or error}")
            return EXIT_BOT_FAILED
        env = bot_environment(self.server, tmp, model)
        self.say("starting the bot (loading the model can take a few seconds)")
        self.process = await start_bot(
            env,
            env_file=self.env_file,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            die_with_parent=True,
            limit=LOG_LINE_LIMIT,
        )
        forward = asyncio.create_task(self._forward_logs())
        try:
            return await self._wait(self.process)
        finally:
            await self._stop_bot()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(forward, 5)
            forward.cancel()

    async def _wait(self, process: asyncio.subprocess.Process) -> int:
        exited = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(self.stop_requested.wait())
        ready = asyncio.create_task(self.server.bot_ready.wait())
        try:
            done, _ = await asyncio.wait(
                {exited, stopping, ready}, timeout=READY_TIMEOUT, return_when="FIRST_COMPLETED"
            )
            if not done:
                self.say(f"the bot did not connect within {READY_TIMEOUT:.0f} s; stopping")
                return EXIT_BOT_FAILED
            if ready in done and not stopping.done() and not exited.done():
                url = display_url(self.server.host, self.server.port)
                # The one line a person needs, set apart from the logs around it.
                print(f"\nPlayground ready: open {url}\n", file=self.out, flush=True)
                await asyncio.wait({exited, stopping}, return_when="FIRST_COMPLETED")
            if exited.done() and not stopping.done():
                # Ctrl-C in a terminal reaches the bot too; give our own handler a moment.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stopping), 0.5)
            if stopping.done():
                self.say("stopping")
                return EXIT_OK
            code = process.returncode
            self.say(f"the bot stopped unexpectedly (exit code {code}); see its last lines above")
            return EXIT_BOT_FAILED
        finally:
            for task in (exited, stopping, ready):
                task.cancel()

    async def _forward_logs(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        stream = self.process.stdout
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over the stream's limit: pass it on in pieces
                line = await stream.read(LOG_LINE_LIMIT)
            if not line:
                break
            text = line.decode("utf-8", "replace").rstrip()
            if shown(text):
                print(f"bot | {text}", file=self.err, flush=True)

    async def _stop_bot(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE)
        except TimeoutError:
            self.say(f"the bot did not stop within {STOP_GRACE:.0f} s; killing it")
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jedisith-playground", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--port", type=int, default=8080, help="default: %(default)s (0: any)")
    parser.add_argument(
        "--auto",
        action="store_true",
        help="run the real bot on Discord instead when DISCORD_TOKEN is set",
    )
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="default: .env")
    parser.add_argument(
        "--model", type=Path, help="a model folder, served as a copy (default: the shipped model)"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be from 0 to 65535")

    if args.auto and token_from(args.env_file):
        print(
            "jedisith-playground: DISCORD_TOKEN is set: starting the bot on Discord",
            file=sys.stderr,
            flush=True,
        )
        if args.model is not None:
            os.environ["MODEL_PATH"] = str(args.model)
        from bot.__main__ import main as bot_main

        return bot_main(["--env-file", str(args.env_file)])

    configure_logging()
    playground = Playground(args.host, args.port, env_file=args.env_file, model=args.model)
    try:
        return asyncio.run(playground.run())
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the handlers were installed
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
