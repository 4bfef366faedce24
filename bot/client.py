"""The bot: a `commands.Bot` that owns the model worker and an HTTP session for downloads, or,
when SHARD_COUNT asks for shards, the same bot as discord.py's `commands.AutoShardedBot`
(`make_bot` picks)."""

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

from bot.errors import ReplyContext
from bot.feedback import FeedbackCollector
from bot.help import JediSithHelp
from bot.images import ByteBudget
from bot.limits import LimitedTree, install
from bot.model_versions import serve, serving_folder
from bot.replies import RESTARTING
from bot.server_models import MB, HeadCache, NetworkCache, served_backbone
from bot.settings import Settings
from bot.shards import AUTO, IdentifyPacer, describe_latencies, shard_ranges
from dataset import DatasetStore
from model.worker import ModelWorker

log = logging.getLogger(__name__)

Reply = Callable[[str], Awaitable[Any]]  # sends one line to the user of a command


def reply_to(ctx: commands.Context) -> Reply:
    """The `Reply` of a command: a reply to its message that pings nobody, or, invoked as a
    slash command, its answer."""

    async def reply(text: str) -> None:
        await ctx.reply(text, mention_author=False)

    return reply


EXTENSIONS = (
    "bot.exts.error_handler",
    "bot.exts.jedisith",
    "bot.exts.learning",
    "bot.exts.models",
    "bot.exts.settings",
    "bot.exts.why",
)
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
LATENCY_LOG_SECONDS = 600.0  # how often a sharded bot logs its shards' latency
IDENTIFY_FOLDER = "gateway"  # in DATA_DIR: the IDENTIFY lock files a cluster's processes share
DESCRIPTION = (
    "I tell Jedi from Sith. Post an image and type {p}jedisith, or reply to an image with it; "
    "{p}features shows what my network sees."
)


def invite_url(application_id: int) -> str:
    """The OAuth2 URL that adds the bot with exactly the permissions it needs."""
    return discord.utils.oauth_url(
        application_id, permissions=PERMISSIONS, scopes=("bot", "applications.commands")
    )


class BotCore:
    """Everything the bot does, on one gateway connection or on shards: mixed into
    `commands.Bot` (`JediSithBot`) and `commands.AutoShardedBot` (`ShardedJediSithBot`)."""

    def __init__(
        self,
        settings: Settings,
        worker: ModelWorker,
        http_session: aiohttp.ClientSession,
        dataset: DatasetStore | None = None,
        **options: Any,
    ) -> None:
        intents = discord.Intents.default()
        # Privileged: the prefix commands need to read messages. Without it, slash commands, the
        # menu, mentions of the bot and DMs still work (docs/anywhere.md).
        intents.message_content = settings.message_content
        super().__init__(  # type: ignore[call-arg]
            command_prefix=commands.when_mentioned_or(settings.command_prefix),
            description=DESCRIPTION.format(p=settings.command_prefix),
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=JediSithHelp(),
            tree_cls=LimitedTree,  # every application command is rate-limited (bot.limits)
            # Application commands are for servers that installed the bot, unless they say
            # otherwise (/jedisith, /features and the menu: anywhere, docs/anywhere.md).
            allowed_contexts=discord.app_commands.AppCommandContext(guild=True),
            allowed_installs=discord.app_commands.AppInstallationType(guild=True),
            **options,
        )
        self.settings = settings
        self.limits = install(self, settings)  # and every prefix command
        self.worker = worker
        self.http_session = http_session
        self.dataset = dataset  # None: no learning (`!teach` and the buttons say so)
        self.feedback: FeedbackCollector | None = None  # set by the feature that learns
        # Each server's own model (a head on the shared network), loaded when first asked for.
        self.heads = HeadCache(
            settings.data_dir,
            settings.head_cache_mb * MB,
            lambda: served_backbone(self.worker),
            NetworkCache(settings.server_networks_cached),
        )
        # What a feature must stop beside the commands' grace when the bot stops (a training).
        self.stopping: list[Callable[[], Awaitable[None]]] = []
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

    async def get_context(self, origin: Any, /, *, cls: Any = None) -> Any:
        """Commands run with `ReplyContext`, whose replies never show a host path."""
        return await super().get_context(origin, cls=cls or ReplyContext)  # type: ignore[misc]

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
        stopping = asyncio.gather(*(stop() for stop in self.stopping), return_exceptions=True)
        deadline = time.monotonic() + grace
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.in_flight:
            log.warning(
                "closing with %d commands unfinished: telling them to retry", self.in_flight
            )
            await self._stop_unfinished()
        await stopping
        await self.close()

    async def close(self) -> None:
        # However the bot ends (a stop, a cancelled run, Discord closing it), the command
        # sync it started ends with it.
        if self._sync_task is not None and not self._sync_task.done():
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sync_task
        await super().close()  # type: ignore[misc]


class JediSithBot(BotCore, commands.Bot):
    """The bot on one gateway connection (no SHARD_COUNT): every guild on one session."""


def make_bot(
    settings: Settings,
    worker: ModelWorker,
    http_session: aiohttp.ClientSession,
    dataset: DatasetStore | None = None,
) -> JediSithBot:
    """The bot `settings` ask for: sharded (`AutoShardedBot`) when SHARD_COUNT is set, else the
    plain one; the same cogs and behaviour either way."""
    if settings.sharded:
        return ShardedJediSithBot(settings, worker, http_session, dataset)  # type: ignore[return-value]
    return JediSithBot(settings, worker, http_session, dataset)


class ShardedJediSithBot(BotCore, commands.AutoShardedBot):
    """The bot on shards: discord.py's `AutoShardedBot` runs SHARD_IDS (default: all) of
    SHARD_COUNT (``auto``: as many as Discord recommends) in this process.

    IDENTIFY is paced by the ``max_concurrency`` Discord announces (`IdentifyPacer`), together
    with the other processes sharing DATA_DIR; the log says which shards this process holds,
    when each is ready or resumed, and every `latency_log_seconds` their latency. Serving the
    shipped model, it also starts serving `DATA_DIR/models` once another process's first
    `!retrain` publishes there (the process that trained switches at once).
    """

    latency_log_seconds = LATENCY_LOG_SECONDS

    def __init__(
        self,
        settings: Settings,
        worker: ModelWorker,
        http_session: aiohttp.ClientSession,
        dataset: DatasetStore | None = None,
    ) -> None:
        count = None if settings.shard_count == AUTO else settings.shard_count
        ids = list(settings.shard_ids) if settings.shard_ids is not None else None
        super().__init__(settings, worker, http_session, dataset, shard_count=count, shard_ids=ids)
        self.pacer = IdentifyPacer(1, settings.data_dir / IDENTIFY_FOLDER)
        self._latency_task: asyncio.Task[None] | None = None
        self._follow_task: asyncio.Task[None] | None = None
        self._launching: set[int | None] = set()  # shards whose IDENTIFY turn is held

    @property
    def held_shards(self) -> str:
        """``0-1 of 4``: the shards this process runs, of the bot's."""
        if self.shard_count is None:
            return "not yet counted"
        ids = self.shard_ids if self.shard_ids is not None else range(self.shard_count)
        return f"{shard_ranges(ids)} of {self.shard_count}"

    def shard_guilds(self, shard_id: int) -> int:
        """How many of the bot's guilds shard ``shard_id`` holds."""
        return sum(1 for guild in self.guilds if guild.shard_id == shard_id)

    async def launch_shards(self) -> None:
        """Ask ``GET /gateway/bot`` once, for the count (``auto``) and the session start limit,
        then let discord.py launch the shards."""
        if self.is_closed():
            return
        try:
            recommended, _url, limits = await self.http.get_bot_gateway()
        except discord.GatewayNotFound:
            if self.shard_count is None:
                raise
            log.warning("Discord did not give its session start limit: one IDENTIFY per 5 s")
            recommended, limits = None, None
        if limits is not None:
            self.pacer = IdentifyPacer(limits["max_concurrency"], self.pacer.folder)
        if self.shard_count is None:
            self.shard_count = recommended
        held = len(self.shard_ids) if self.shard_ids is not None else self.shard_count
        log.info(
            "shards %s in this process (Discord recommends %s); IDENTIFY: %d per 5 s%s",
            self.held_shards,
            recommended if recommended is not None else "?",
            self.pacer.max_concurrency,
            f", {limits['remaining']} of {limits['total']} session starts left" if limits else "",
        )
        if recommended is not None and self.shard_count < recommended:
            log.warning(
                "Discord recommends %d shards and SHARD_COUNT is %d: it may refuse shards "
                "that hold too many servers (set SHARD_COUNT=auto or more)",
                recommended,
                self.shard_count,
            )
        if limits is not None and limits["remaining"] < (held or 0):
            log.warning(
                "only %d session starts left for %d shards until Discord resets the count in "
                "%.0f min",
                limits["remaining"],
                held,
                limits["reset_after"] / 60_000,
            )
        await super().launch_shards()

    async def launch_shard(self, gateway: Any, shard_id: int, *, initial: bool = False) -> None:
        """discord.py's, holding the shard's IDENTIFY turn first: the socket opens once the
        turn has come, so its first heartbeat is not left unread while it waits."""
        if shard_id in self._launching:  # discord.py's own retry, inside our turn
            await super().launch_shard(gateway, shard_id, initial=initial)
            return
        async with self.pacer.turn(shard_id):
            self._launching.add(shard_id)
            try:
                await super().launch_shard(gateway, shard_id, initial=initial)
            finally:
                self._launching.discard(shard_id)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Replaces discord.py's 5 s sleep before every IDENTIFY but the process's first: wait
        for the shard's bucket instead, in this process and the others (`IdentifyPacer`).
        A shard being launched already holds its turn."""
        if shard_id not in self._launching:
            await self.pacer.wait(shard_id)

    async def on_ready(self) -> None:
        await super().on_ready()
        log.info(
            "holding shards %s: %d servers; latency %s",
            self.held_shards,
            len(self.guilds),
            describe_latencies(self.latencies),
        )
        if self._latency_task is None:
            self._latency_task = asyncio.create_task(self._report_latency(), name="latency")
            self._follow_task = asyncio.create_task(self._follow_retrained(), name="follow")

    async def on_shard_ready(self, shard_id: int) -> None:
        log.info(
            "shard %d of %s ready: %d servers",
            shard_id,
            self.shard_count,
            self.shard_guilds(shard_id),
        )

    async def on_shard_resumed(self, shard_id: int) -> None:
        log.info("shard %d of %s resumed its session", shard_id, self.shard_count)

    async def _report_latency(self) -> None:
        while not self.is_closed():
            await asyncio.sleep(self.latency_log_seconds)
            log.info(
                "shards %s: %d servers; latency %s",
                self.held_shards,
                len(self.guilds),
                describe_latencies(self.latencies),
            )

    async def _follow_retrained(self) -> None:
        settings = self.settings
        while not self.is_closed():
            await asyncio.sleep(settings.reload_interval)
            folder = await asyncio.to_thread(serving_folder, settings.model_path, settings.data_dir)
            watched = self.worker.folder is not None
            if watched and serve(self.worker, folder, settings.model_backend):
                log.info("a retrained model was published in %s: serving it", folder)

    async def close(self) -> None:
        for task in (self._latency_task, self._follow_task):
            if task is not None:
                task.cancel()
        await super().close()
