"""`DiscordServer`: the look-alike's facade. It builds the guilds, owns the state, the
gateway (sharded as `Sharding` says), the event fan-out and the CDN, serves the REST routes,
and is the test driver."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Self

from aiohttp import web

from playground.discord import payloads
from playground.discord.cdn import Cdn
from playground.discord.channels import ChannelRoutes
from playground.discord.commands import CommandRoutes
from playground.discord.driver import Driver
from playground.discord.events import Events
from playground.discord.faults import Faults
from playground.discord.gateway import Gateway
from playground.discord.guilds import GuildRoutes
from playground.discord.interactions import InteractionRoutes
from playground.discord.people import ADMINS, seed_roles
from playground.discord.protocol import (
    API_PREFIX,
    BOT_ROLE_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    now_iso,
    snowflake,
    snowflakes_in_a_row,
)
from playground.discord.rest import middleware, unknown_route
from playground.discord.shards import Sharding, shard_of
from playground.discord.state import Channel, Guild, Limits, State

log = logging.getLogger(__name__)

GuildSpec = tuple[str, Sequence[str]]  # a guild's name and its text channels' names
DEFAULT_GUILDS: tuple[GuildSpec, ...] = (
    ("Jedi Temple", ("general", "archives")),
    ("Sith Academy", ("general", "holocrons")),
    ("Mos Eisley Cantina", ("general",)),
)
TOPIC = "Is it a Jedi or a Sith? Post a picture."


def numbered_guilds(count: int, channels: Sequence[str] = ("general",)) -> list[GuildSpec]:
    """``count`` guilds named "Outpost 1".."Outpost N", each with ``channels``."""
    return [(f"Outpost {n}", tuple(channels)) for n in range(1, count + 1)]


class DiscordServer(Driver):
    """A local Discord API v10 + gateway for one bot in several guilds.

    ``guilds`` are ``(name, channel names)``; the first channel of the first guild is the
    default one (``guild_id``, ``channel_id``, ``channel``, ``messages``). The bot (whose user
    id is also the application id), the human (``human``: "padawan", who owns the guilds)
    and a moderator (``moderator``: "master", with the "Admins" role) are members of every
    guild, whose roles are @everyone, the bot's, "Moderators" and "Admins". ``limits``
    bound what it keeps (`Limits`). ``sharding`` (`Sharding`) says how many guilds a shard
    may hold and how fast sessions may start; guild ids fall on consecutive shards in the
    order given (see `numbered_guilds` for many), so every shard count spreads them evenly.
    """

    def __init__(
        self,
        token: str = "test-token",
        host: str = "127.0.0.1",
        port: int = 0,
        max_upload_bytes: int = 25 * 1024 * 1024,
        privileged_intents: bool = True,
        *,
        bot_name: str = "JediSith",
        guilds: Sequence[GuildSpec] = DEFAULT_GUILDS,
        limits: Limits | None = None,
        sharding: Sharding | None = None,
    ) -> None:
        if not guilds or not all(channels for _, channels in guilds):
            raise ValueError("at least one guild, and at least one channel in each")
        self.token = token
        self.host = host
        self.port = port
        self.max_upload_bytes = max_upload_bytes
        self.privileged_intents = privileged_intents
        self.bot_name = bot_name
        self.sharding = sharding or Sharding()

        self.state = State(limits)
        self.application_id = snowflake()  # bots' user id equals their application id
        bot = payloads.user(self.application_id, bot_name.lower(), bot=True)
        self.bot_user: dict[str, Any] = self.state.add_user(bot)
        human = payloads.user(snowflake(), "padawan", global_name="Padawan")
        self.human: dict[str, Any] = self.state.add_user(human)  # owns them (`give_guild`)
        master = payloads.user(snowflake(), "master", global_name="Master")
        self.moderator: dict[str, Any] = self.state.add_user(master)  # "Admins" everywhere
        # Made first, in a row: consecutive timestamps spread the guilds over the shards.
        guild_ids = snowflakes_in_a_row(len(guilds))
        for guild_id, (name, channel_names) in zip(guild_ids, guilds, strict=True):
            self._add_guild(guild_id, name, channel_names)
        first = next(iter(self.state.guilds.values()))
        self.guild_id = first.id
        self.channel_id = first.channel_ids[0]

        self.interaction_responses: list[dict[str, Any]] = []  # every interaction answer
        self.typing_events: list[tuple[int, float]] = []  # (user id, time), bot's and people's
        self.events = Events(self)
        self.gateway = Gateway(self)
        self.cdn = Cdn(self)
        self.faults = Faults()  # staged failures (`faults.Faults`): none until a test asks
        self._runner: web.AppRunner | None = None

    def _add_guild(self, guild_id: int, name: str, channel_names: Sequence[str]) -> Guild:
        state = self.state
        now = now_iso()
        guild = state.add_guild(Guild(guild_id, name, int(self.human["id"]), joined_at=now))
        bot_role = snowflake()
        guild.roles = [
            payloads.role(guild.id, "@everyone", EVERYONE_PERMISSIONS, position=0),
            payloads.role(bot_role, self.bot_name, BOT_ROLE_PERMISSIONS, position=1),
        ]
        guild.roles[1].update(managed=True, tags={"bot_id": str(self.application_id)})
        seed_roles(guild, position=2)
        state.join(guild, self.application_id, [str(bot_role)], at=now)
        state.join(guild, int(self.human["id"]), at=now)
        state.join(guild, int(self.moderator["id"]), state.role_ids(guild, [ADMINS]), at=now)
        for position, channel_name in enumerate(channel_names):
            topic = TOPIC if position == 0 else None
            channel = payloads.text_channel(
                snowflake(), guild.id, channel_name, position=position, topic=topic
            )
            state.add_channel(guild, Channel(channel))
        return guild

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start listening; ``port=0`` picks a free port (see ``base_url``)."""
        app = web.Application(
            middlewares=[middleware(self.token, self.faults)], client_max_size=1024**3
        )
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the real port when port=0
        log.info("fake Discord listening on %s", self.base_url)

    async def close(self) -> None:
        """End every fault, close every gateway socket (code 1001), stop the HTTP server."""
        self.faults.clear()  # held CDN responses go on, so the server does not wait for them
        await self.gateway.close()
        self.events.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _add_routes(self, app: web.Application) -> None:
        routes = [("GET", "/gateway", self.gateway.handle), *self.cdn.routes()]
        for group in (GuildRoutes, ChannelRoutes, CommandRoutes, InteractionRoutes):
            routes += group(self).routes()
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        app.router.add_route("*", "/{tail:.*}", unknown_route)

    # ----------------------------------------------------------------------------- addresses

    @property
    def base_url(self) -> str:
        """``http://host:port``; also the CDN base for attachments."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The REST base, e.g. ``http://127.0.0.1:PORT/api/v10`` (``DISCORD_API_URL``)."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """The gateway WebSocket URL, e.g. ``ws://127.0.0.1:PORT/gateway``."""
        return f"ws://{self.host}:{self.port}/gateway"

    # ----------------------------------------------------------------------------- what it holds

    @property
    def bot_ready(self) -> asyncio.Event:
        """An ``asyncio.Event`` set once a bot has identified."""
        return self.gateway.ready

    @property
    def guild_name(self) -> str:
        return self.state.guilds[self.guild_id].name

    @property
    def channel(self) -> dict[str, Any]:
        """The default channel's payload."""
        return self.state.channels[self.channel_id].payload

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The default channel's kept messages, oldest first (ephemeral ones included)."""
        return self.messages_in(self.channel_id)

    @property
    def application_commands(self) -> list[dict[str, Any]]:
        """Registered global and guild commands (guild ones carry ``guild_id``)."""
        return list(self.state.commands.values())

    @property
    def connected_sessions(self) -> int:
        """How many identified sessions currently have a live socket."""
        return self.gateway.connected_sessions

    @property
    def guild_ids(self) -> list[int]:
        """Every guild's id, in the order they were given."""
        return list(self.state.guilds)

    def first_channel(self, guild_id: int) -> int:
        """The id of a guild's first text channel ("general" unless named otherwise)."""
        return self.state.guild(int(guild_id)).channel_ids[0]

    def shard_of(self, guild_id: int, shard_count: int) -> int:
        """The shard that holds ``guild_id`` among ``shard_count``: ``(id >> 22) % count``."""
        return shard_of(guild_id, shard_count)

    def guilds_of_shard(self, shard_id: int, shard_count: int) -> list[int]:
        """The ids of the guilds shard ``shard_id`` of ``shard_count`` holds."""
        return [g for g in self.state.guilds if shard_of(g, shard_count) == shard_id]

    @property
    def recommended_shards(self) -> int:
        """The shard count ``GET /gateway/bot`` recommends for the guilds held."""
        return self.sharding.recommended_shards(len(self.state.guilds))
