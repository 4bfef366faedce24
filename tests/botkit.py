"""The real bot against the Discord look-alike, for the fault tests and the learning tests. (A
module of its own in `tests/`, not conftest.py: test modules import these by name, and pytest
keeps several modules called ``conftest``.)

The fault tests stage a failure with the look-alike's fault hooks (``server.faults``,
``server.drop_gateway``, see ``playground.discord.faults``) and check the targets of the
reliability issue: every command is answered exactly once (counted by the replies'
``message_reference``) or refused with a clear line, no traceback for what users cause, and
no command left hanging.

The bot runs in this process (``bot.__main__.run(settings)``, as ``python -m bot`` runs it)
for most scenarios, and as ``python -m bot`` for SIGTERM and crashes. It serves the shipped
model (``model/default``, LiteRT) unless told otherwise, which judges the playground's sample
drawings and refuses anything unlike them. Its DATA_DIR (the dataset, retrained models) is a
fresh temporary folder unless one is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import re
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

import bot.__main__ as bot_main
from bot.client import JediSithBot
from bot.endpoints import use_endpoints
from bot.settings import Settings
from model.bundle import DEFAULT_MODEL_DIR
from model.worker import ModelWorker
from playground.discord import DiscordServer, layouts
from playground.discord.components import walk
from playground.discord.layouts import message_text
from playground.discord.protocol import (
    COMPONENT_ACTION_ROW,
    COMPONENT_BUTTON,
)
from playground.launch import LoggedBot, bot_environment, start_logged_bot
from playground.samples import SAMPLE_DIR

TOKEN = "MTk4NjIy.jedisith-faults.Qx7Rp-secret-token"
VERDICT = re.compile(r"\*\*(Jedi|Sith|Can't tell)\*\* - score [01]\.\d{3} \(")
REPLY_TIMEOUT = 20.0
SAMPLES = ("jedi-1", "sith-1", "jedi-2", "sith-2", "jedi-3", "sith-3")  # all get a verdict
BUSY = "I'm busy with a lot of images right now. Try again in a few seconds."


# -- images ------------------------------------------------------------------------------------


def sample(name: str) -> tuple[str, bytes]:
    """A playground sample drawing (``"sith-1"``): the shipped model judges every one."""
    return f"{name}.jpg", (SAMPLE_DIR / f"{name}.jpg").read_bytes()


def as_png(name: str) -> bytes:
    with Image.open(SAMPLE_DIR / f"{name}.jpg") as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, "PNG")
        return out.getvalue()


def expected_label(filename: str) -> str:
    return "Jedi" if filename.startswith("jedi") else "Sith"


# -- replies -----------------------------------------------------------------------------------


def verdict_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if VERDICT.search(line)]


def is_layout(message: dict[str, Any]) -> bool:
    """Whether a message is a layout (flag IS_COMPONENTS_V2): the bot's verdict cards."""
    return layouts.is_layout(message.get("flags"))


def text_of(message: dict[str, Any]) -> str:
    """A message's text, plain (its content) or a layout's (its text displays, in order)."""
    return message_text(message)


def rows_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's action rows, in order: its own, or one in each card."""
    return [c for c in walk(message["components"]) if c["type"] == COMPONENT_ACTION_ROW]


def buttons_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every button of a message, in order: in its rows, or in its cards' rows."""
    return [c for c in walk(message["components"]) if c["type"] == COMPONENT_BUTTON]


def replies_to(server: DiscordServer, message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message of the bot replying to ``message`` (by ``message_reference``)."""
    bot_id = str(server.application_id)
    return [
        m
        for m in server.messages_in(int(message["channel_id"]))
        if m["author"]["id"] == bot_id
        and (m.get("message_reference") or {}).get("message_id") == message["id"]
    ]


async def answers(
    server: DiscordServer, messages: Iterable[dict[str, Any]], timeout: float = REPLY_TIMEOUT
) -> list[dict[str, Any]]:
    """The bot's first reply to each message, waiting for all of them."""
    return list(
        await asyncio.gather(*(server.wait_for_reply(m["id"], timeout=timeout) for m in messages))
    )


async def wait_until(done: Callable[[], bool], timeout: float = REPLY_TIMEOUT) -> None:
    """Until ``done()`` is true (a count reached, a state entered); fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not done within {timeout} s"
        await asyncio.sleep(0.01)


def assert_answered_once(server: DiscordServer, messages: Iterable[dict[str, Any]]) -> None:
    counts = {m["id"]: len(replies_to(server, m)) for m in messages}
    wrong = {mid: n for mid, n in counts.items() if n != 1}
    assert not wrong, f"replies per command (expected 1 each): {wrong}"


# -- logs --------------------------------------------------------------------------------------


class LogRecorder(logging.Handler):
    """Every log record of this process from the moment it is installed (INFO and up)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def mark(self) -> int:
        """A position to look from (``since``)."""
        return len(self.records)

    def since(self, mark: int = 0) -> list[logging.LogRecord]:
        return self.records[mark:]

    def tracebacks(self, mark: int = 0) -> list[str]:
        """Records since ``mark`` that carry a traceback, as text (with the traceback)."""
        formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
        return [formatter.format(r) for r in self.since(mark) if r.exc_info or r.exc_text]

    def lines(self, mark: int = 0, level: int = logging.WARNING, name: str = "") -> list[str]:
        """The messages since ``mark`` at ``level`` or above from loggers under ``name``."""
        return [
            r.getMessage()
            for r in self.since(mark)
            if r.levelno >= level and (r.name == name or r.name.startswith(name + ".") or not name)
        ]

    async def wait_for(
        self, predicate: Callable[[str], bool], mark: int = 0, timeout: float = 10.0
    ) -> str:
        """The first message since ``mark`` matching ``predicate`` (logged from any thread)."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.since(mark):
                if predicate(record.getMessage()):
                    return record.getMessage()
            assert time.monotonic() < deadline, f"no such log line within {timeout} s"
            await asyncio.sleep(0.02)


@contextlib.contextmanager
def recording_logs() -> Iterator[LogRecorder]:
    root = logging.getLogger()
    recorder = LogRecorder()
    level = root.level
    root.addHandler(recorder)
    root.setLevel(min(level or logging.INFO, logging.INFO))
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)
        root.setLevel(level)


# -- the bot in this process -------------------------------------------------------------------


@dataclass
class Running:
    """The bot serving ``server``, with its worker, its client and the log of the process."""

    server: DiscordServer
    bot: JediSithBot
    worker: ModelWorker
    logs: LogRecorder
    settings: Settings
    posted: list[dict[str, Any]] = field(default_factory=list)

    async def post(
        self,
        content: str = "!jedisith",
        attachments: list[Any] | tuple[Any, ...] = (),
        *,
        author: str | dict[str, Any] = "padawan",
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """Post as ``author``: a username, or a user dict (``{"username": .., "roles": [..]}``)."""
        if isinstance(author, str):
            author = {"username": author}
        message = await self.server.post_message(
            content,
            attachments=list(attachments),
            author=None if author.get("username") == "padawan" else author,
            channel_id=channel_id,
        )
        self.posted.append(message)
        return message

    async def command(self, *attachments: Any, content: str = "!jedisith", **kwargs: Any) -> dict:
        """Post a command and return the bot's reply to it (checked to be the only one)."""
        message = await self.post(content, attachments, **kwargs)
        reply = await self.server.wait_for_reply(message["id"], timeout=REPLY_TIMEOUT)
        await self.settle()
        assert_answered_once(self.server, [message])
        return reply

    async def settle(self, timeout: float = REPLY_TIMEOUT) -> None:
        """Until every command the bot took has been answered: a last command (one the bot
        refuses at once) is answered and nothing is in flight, in the bot or in its worker.
        A command dispatched twice (or an answer sent twice) shows up by then, since the
        gateway delivers in order."""
        sentinel = await self.server.post_message("!features 9", author={"username": "sentinel"})
        await self.server.wait_for_reply(sentinel["id"], timeout=timeout)
        deadline = time.monotonic() + timeout
        while self.bot.in_flight or self.worker.pending:
            assert time.monotonic() < deadline, "the bot never became idle"
            await asyncio.sleep(0.01)

    async def assert_still_serves(self) -> None:
        name = SAMPLES[len(self.posted) % len(SAMPLES)]
        reply = await self.command(sample(name))
        lines = verdict_lines(text_of(reply))
        assert len(lines) == 1 and lines[0].startswith(f"**{expected_label(name)}**"), lines


async def forget(running: Running, author: dict[str, Any], **where: Any) -> str:
    """`!forget` as `author`, confirmed with its Delete button: the line its question becomes."""
    from bot.confirm import WORKING
    from bot.learning_words import forget_question

    reply = await running.command(content="!forget", author=author, **where)
    question = forget_question(in_server=True)
    assert reply["content"] == question, reply["content"]
    delete, cancel = reply["components"][0]["components"]
    assert (delete["label"], cancel["label"]) == ("Delete", "Cancel")
    server = running.server
    click = await server.click_button(reply["id"], delete["custom_id"], user=author)
    await server.wait_for_interaction_response(click["id"], timeout=REPLY_TIMEOUT)

    def done() -> bool:
        return server.state.message(int(reply["id"]))["content"] not in (question, WORKING)

    await wait_until(done)
    message = server.state.message(int(reply["id"]))
    assert not message.get("components"), message  # answered: no buttons left
    return message["content"]


def copy_shipped_model(folder: Path) -> Path:
    target = folder / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, target)
    return target


@contextlib.asynccontextmanager
async def running_bot(
    server: DiscordServer,
    model_path: Path = DEFAULT_MODEL_DIR,
    *,
    ready_timeout: float = 30.0,
    **settings: Any,
) -> AsyncIterator[Running]:
    """The bot, started as `python -m bot` starts it, once it has connected to ``server``
    (within ``ready_timeout`` seconds); ``settings`` are `Settings` fields."""
    scratch = None
    if "data_dir" not in settings:
        scratch = Path(tempfile.mkdtemp(prefix="jedisith-data-"))
        settings["data_dir"] = scratch
    values: dict[str, Any] = {
        "token": TOKEN,
        "api_url": server.api_url,
        "model_path": model_path,
        "model_backend": "litert",
        "cooldown_rate": 0,
        "rate_limit_member": 0,  # tests stage bursts; tests/bot/test_limits_e2e.py sets it
        "rate_limit_server": 0,
        "sync_commands": False,
        "history_limit": 5,
        **settings,
    }
    config = Settings(**values)
    workers: list[ModelWorker] = []
    bots: list[JediSithBot] = []
    make_worker, make_bot = bot_main.make_worker, bot_main.make_bot

    def recording_make_worker(settings: Settings) -> ModelWorker:
        workers.append(make_worker(settings))
        return workers[-1]

    def recording_bot(*args: Any, **kwargs: Any) -> JediSithBot:
        bots.append(make_bot(*args, **kwargs))
        return bots[-1]

    bot_main.make_worker = recording_make_worker  # type: ignore[assignment]
    bot_main.make_bot = recording_bot  # type: ignore[assignment]
    gc.unfreeze()  # the bot freezes what it made at start-up; earlier freezes are not ours
    loop = asyncio.get_running_loop()
    earlier = asyncio.all_tasks()
    with recording_logs() as logs:
        task = loop.create_task(bot_main.run(config))
        leftover: list[str] = []
        try:
            ready = asyncio.ensure_future(server.bot_ready.wait())
            done, _ = await asyncio.wait(
                {task, ready}, timeout=ready_timeout, return_when="FIRST_COMPLETED"
            )
            if ready not in done:
                ready.cancel()
                if task.done():
                    task.result()
                raise AssertionError(f"the bot did not connect within {ready_timeout} s")
            yield Running(server, bots[0], workers[0], logs, config)
        finally:
            bot_main.make_worker, bot_main.make_bot = make_worker, make_bot  # type: ignore[assignment]
            await _stop(bots[0] if bots else None, task, server)
            # What the bot started on this loop (discord.py's on_ready, the command sync) ends
            # before its DATA_DIR goes, or it would run in the next test on this loop.
            leftover = await finish_tasks(earlier)
            for sig in (signal.SIGINT, signal.SIGTERM):  # run() handled them on this loop
                loop.remove_signal_handler(sig)
            use_endpoints(None, None)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        assert not leftover, f"the bot left tasks running after it stopped: {leftover}"


async def _stop(bot: JediSithBot | None, task: asyncio.Task[None], server: DiscordServer) -> None:
    """Stop the bot as SIGTERM does (`shutdown`: its command sync and training too), once
    it has dispatched on_ready; cancelled if it is still starting or does not stop in time."""
    if bot is not None and server.bot_ready.is_set() and not task.done():
        # discord.py dispatches on_ready some 2 s after connecting; closed before that,
        # its on_ready coroutine is never awaited (a RuntimeWarning in a later test).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bot.wait_until_ready(), 5)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(bot.shutdown()), 20)
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, 15)


async def finish_tasks(earlier: set[asyncio.Task[Any]], timeout: float = 10.0) -> list[str]:
    """Wait for the tasks started since ``earlier`` (and those they start) to end; those
    still running after ``timeout`` are cancelled and named."""
    deadline = time.monotonic() + timeout
    current = asyncio.current_task()
    while True:
        running = {t for t in asyncio.all_tasks() - earlier if t is not current and not t.done()}
        if not running or time.monotonic() >= deadline:
            break
        await asyncio.wait(running, timeout=deadline - time.monotonic())
    for straggler in running:
        straggler.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    return sorted(f"{t.get_name()} ({t.get_coro()!r})" for t in running)


# -- the bot as `python -m bot` ------------------------------------------------------------------


def bot_process_environment(
    server: DiscordServer, folder: Path, settings: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of `python -m bot` against ``server``, never reading a developer's
    `.env`: the shipped model on LiteRT, no cooldown, DATA_DIR and caches in ``folder``."""
    return bot_environment(
        server.api_url,
        TOKEN,
        caches=folder,
        settings={
            "MODEL_BACKEND": "litert",
            "COOLDOWN_RATE": "0",
            "RATE_LIMIT_MEMBER": "0",
            "RATE_LIMIT_SERVER": "0",
            "DATA_DIR": str(folder / "data"),
            **(settings or {}),
        },
    )


async def start_bot_process(
    server: DiscordServer, folder: Path, settings: dict[str, str] | None = None
) -> LoggedBot:
    """`python -m bot` against ``server`` (`bot_process_environment`); its output goes to files
    in ``folder``. Returns once it is connected."""
    process = await start_logged_bot(bot_process_environment(server, folder, settings), folder)
    await process.wait_connected(server.bot_ready)
    return process


async def start_shard_process(
    server: DiscordServer,
    folder: Path,
    shard_ids: Iterable[int],
    shard_count: int,
    settings: dict[str, str] | None = None,
) -> LoggedBot:
    """`python -m bot` running ``shard_ids`` of ``shard_count`` (SHARD_IDS, SHARD_COUNT) against
    ``server``, as `start_bot_process` starts it; returns at once (see `wait_until_holding`)."""
    shards = {"SHARD_COUNT": str(shard_count), "SHARD_IDS": ",".join(str(i) for i in shard_ids)}
    env = bot_process_environment(server, folder, {**shards, **(settings or {})})
    return await start_logged_bot(env, folder)


async def wait_until_holding(process: LoggedBot, held: str, timeout: float = 60.0) -> None:
    """Until ``process`` logs that it holds its shards (``held``: ``"0-1 of 4"``), which it
    does once every one of them is connected and has its guilds."""
    await process.wait_for_log(f"holding shards {held}:", timeout=timeout)
