"""The bot: a `commands.Bot` that owns the model worker and an HTTP session for downloads."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from bot._images import ByteBudget
from bot._replies import RESTARTING
from bot._training import Retrainer
from bot.settings import Settings
from dataset import DatasetStore
from model.worker import ModelWorker

log = logging.getLogger(__name__)

Reply = Callable[[str], Awaitable[Any]]  # sends one line to the user of a command

EXTENSIONS = ("bot.exts.errors", "bot.exts.jedisith", "bot.exts.learning", "bot.exts.models")
PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)
# How long a clean stop may take: commands in flight get COMMAND_GRACE, those still running are
# told to retry within REPLY_GRACE, then the worker gets WORKER_GRACE to finish what they left
# queued. Whoever stops the bot waits at least their sum.
COMMAND_GRACE = 8.0
REPLY_GRACE = 2.0
WORKER_GRACE = 2.0
SHUTDOWN_SECONDS = COMMAND_GRACE + REPLY_GRACE + WORKER_GRACE
DESCRIPTION = (
    "I tell Jedi from Sith. Post an image and type {p}jedisith, or reply to an image with it; "
    "{p}features shows what my network sees."
)


def invite_url(application_id: int) -> str:
    """The OAuth2 URL that adds the bot with exactly the permissions it needs."""
    return discord.utils.oauth_url(
        application_id, permissions=PERMISSIONS, scopes=("bot", "applications.commands")
    )


class JediSithBot(commands.Bot):
    def __init__(
        self,
        settings: Settings,
        worker: ModelWorker,
        http_session: aiohttp.ClientSession,
        dataset: DatasetStore | None = None,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: the prefix commands need to read messages
        super().__init__(
            command_prefix=commands.when_mentioned_or(settings.command_prefix),
            description=DESCRIPTION.format(p=settings.command_prefix),
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=commands.DefaultHelpCommand(no_category="Other"),
        )
        self.settings = settings
        self.worker = worker
        self.http_session = http_session
        self.dataset = dataset  # None: no learning (`!teach` and the buttons say so)
        self.retrainer = Retrainer(self)
        self._recovered = False
        self.downloads = ByteBudget(settings.max_bytes_in_flight)
        self.accepting = True
        self._sync_task: asyncio.Task[bool] | None = None
        self._working: list[tuple[asyncio.Task[Any] | None, Reply | None]] = []
        self._invite_logged = False

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.settings.sync_commands:
            # In the background: a rate-limited sync (discord.py waits out each 429) must not
            # keep the bot from connecting and answering its ! commands meanwhile.
            self._sync_task = asyncio.create_task(self.sync_commands(), name="sync-commands")
        # Everything made at start-up (modules, the model, discord.py's state) lives as long as
        # the bot: move it out of the collector's sight, so a full collection during a burst
        # does not scan it while the event loop waits (benchmarks/RESULTS.md, event-loop lag).
        gc.collect()
        gc.freeze()

    async def _stop_unfinished(self) -> None:
        unfinished = list(self._working)
        for task, _ in unfinished:
            if task is not None and task is not asyncio.current_task():
                task.cancel()  # it cannot answer twice: only the retry line goes out
        replies = [reply(RESTARTING) for _, reply in unfinished if reply is not None]
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*replies, return_exceptions=True), timeout=REPLY_GRACE
            )
        except TimeoutError:
            log.warning("Discord did not take the retry lines within %.0f s", REPLY_GRACE)
            return
        for result in results:
            if isinstance(result, BaseException):
                log.warning("could not tell an unfinished command to retry: %r", result)

    async def sync_commands(self) -> bool:
        """Register the slash commands and the message menu with Discord.

        A refusal does not stop the bot: it is logged in one line (which command and field
        Discord refused, or its HTTP answer) and the prefix commands keep serving, as do the
        application commands of an earlier sync.
        """
        try:
            synced = await self.tree.sync()
        except discord.app_commands.CommandSyncFailure as error:
            log.error(
                "Discord refused the application commands, so the slash commands and the menu "
                "are not updated (the ! commands work): %s",
                "; ".join(line.strip() for line in str(error).splitlines() if line.strip()),
            )
            return False
        except discord.HTTPException as error:
            log.error(
                "could not register the application commands (HTTP %s: %s); the ! commands "
                "work; set SYNC_COMMANDS=true again at the next start to retry",
                error.status,
                (error.text or "no details")[:300],
            )
            return False
        except discord.RateLimited as error:
            log.error(
                "Discord rate-limits registering the application commands (retry after %.0f s); "
                "the ! commands work; set SYNC_COMMANDS=true again at the next start to retry",
                error.retry_after,
            )
            return False
        log.info("synced %d application commands with Discord", len(synced))
        return True

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("logged in as %s (id %s) in %d servers", self.user, self.user.id, len(self.guilds))
        if not self._invite_logged and self.application_id is not None:
            log.info("invite me with: %s", invite_url(self.application_id))
            self._invite_logged = True
        if not self._recovered and self.dataset is not None:
            self._recovered = True  # once: trainings a previous run left behind
            await self.retrainer.recover()

    async def on_message(self, message: discord.Message) -> None:
        if self.accepting:
            await self.process_commands(message)
            return
        if message.author.bot:
            return
        context = await self.get_context(message)
        if context.valid:  # one of our commands, while we shut down: say so, as slash ones do
            with contextlib.suppress(discord.HTTPException):
                await message.reply(RESTARTING, mention_author=False)

    @contextlib.contextmanager
    def working(self, reply: Reply | None = None) -> Iterator[None]:
        """Count a command as in flight, so shutdown waits for it; `reply` tells its user to
        retry if shutdown cannot wait any longer."""
        entry = (asyncio.current_task(), reply)
        self._working.append(entry)
        try:
            yield
        finally:
            self._working.remove(entry)

    @property
    def in_flight(self) -> int:
        """Commands running now."""
        return len(self._working)

    async def shutdown(self, grace: float = COMMAND_GRACE) -> None:
        """Stop taking commands, let those in flight finish (up to `grace` s), then close.

        A command still running after `grace` is stopped and its user told to retry, so that
        every command gets an answer."""
        if not self.accepting:
            return
        self.accepting = False
        log.info("shutting down: finishing %d commands in flight", self.in_flight)
        # A training stops beside the commands' grace (its trainer gets STOP_GRACE < it).
        training = asyncio.create_task(self.retrainer.shutdown(), name="stop-training")
        deadline = time.monotonic() + grace
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.in_flight:
            log.warning(
                "closing with %d commands unfinished: telling them to retry", self.in_flight
            )
            await self._stop_unfinished()
        await training
        if self._sync_task is not None and not self._sync_task.done():
            self._sync_task.cancel()
        await self.close()
