"""A server's settings as the bot applies them: its stored values (`!settings`), the
environment's where it has none, read through a small cache per process.

Each process reads a server's row at most once every `CACHE_SECONDS`, and forgets it at once
when it changes it itself; the other shard processes, sharing the database, see a change within
`CACHE_SECONDS`. In a DM, or without a dataset, the environment's values apply.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.settings import Settings
from dataset import DatasetStore, GuildSettings
from dataset.guilds import SETTINGS

if TYPE_CHECKING:
    from discord.ext import commands

log = logging.getLogger(__name__)

CACHE_SECONDS = 30.0  # how stale another process's view of a server's settings may be
CACHE_SERVERS = 10_000  # servers kept per process; the least recently asked go first
# The environment's when not stored: every setting but the two consents.
DEFAULTED = tuple(name for name in SETTINGS if name not in ("collecting", "sharing"))


@dataclass(frozen=True)
class ServerSettings:
    """What applies in a server: its stored values, the environment's where it has none."""

    collecting: bool
    sharing: bool
    ood_policy: str
    uncertain_band: float
    channels: frozenset[int]  # the channels commands are answered in; empty: every one
    ask_every: int = 5  # asks for a label on one verdict in this many at most (0: never)
    ask_per_hour: int = 3  # and this many times an hour per channel at most (0: never)
    holdout_min_voters: int = 2  # members a held-out image's label needs to judge (or a mod)
    from_environment: frozenset[str] = frozenset()  # the names whose value is the environment's

    def allows(self, channel_id: int | None) -> bool:
        """Whether commands are answered in this channel."""
        return not self.channels or channel_id in self.channels


def environment(settings: Settings) -> ServerSettings:
    """The environment's values: a DM's, and a server's that stored none."""
    return ServerSettings(
        collecting=False,
        sharing=False,
        ood_policy=settings.ood_policy,
        uncertain_band=settings.uncertain_band,
        channels=frozenset(settings.allowed_channel_ids),
        ask_every=settings.ask_every,
        ask_per_hour=settings.ask_per_hour,
        holdout_min_voters=settings.holdout_min_voters,
        from_environment=frozenset(DEFAULTED),
    )


def resolve(settings: Settings, stored: GuildSettings) -> ServerSettings:
    """`stored` (None values: unset) over the environment's `settings`."""
    defaults = environment(settings)
    unset = frozenset(name for name in DEFAULTED if getattr(stored, name) is None)
    return ServerSettings(
        collecting=stored.collecting,
        sharing=stored.sharing,
        ood_policy=defaults.ood_policy if stored.ood_policy is None else stored.ood_policy,
        uncertain_band=(
            defaults.uncertain_band if stored.uncertain_band is None else stored.uncertain_band
        ),
        channels=defaults.channels if stored.channels is None else frozenset(stored.channels),
        ask_every=defaults.ask_every if stored.ask_every is None else stored.ask_every,
        ask_per_hour=defaults.ask_per_hour if stored.ask_per_hour is None else stored.ask_per_hour,
        holdout_min_voters=(
            defaults.holdout_min_voters
            if stored.holdout_min_voters is None
            else stored.holdout_min_voters
        ),
        from_environment=unset,
    )


class ServerSettingsCache:
    """Every server's `ServerSettings` in this process, each read from the store at most once
    every `ttl` seconds (and never on the event loop)."""

    def __init__(
        self,
        settings: Settings,
        store: DatasetStore | None,
        *,
        ttl: float = CACHE_SECONDS,
        size: int = CACHE_SERVERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._entries: OrderedDict[int, tuple[float, ServerSettings]] = OrderedDict()
        self._generation: dict[int, int] = {}  # bumped on change: a read begun before is dropped

    async def get(self, guild_id: int | None) -> ServerSettings:
        """The settings that apply in this server (None: a DM, the environment's)."""
        if guild_id is None or self.store is None:
            return environment(self.settings)
        entry = self._entries.get(guild_id)
        if entry is not None and entry[0] > self._clock():
            self._entries.move_to_end(guild_id)
            return entry[1]
        generation = self._generation.get(guild_id, 0)
        try:
            stored = await asyncio.to_thread(self.store.guild_settings, guild_id)
        except Exception:  # the database is away: answer with the environment's, read again
            log.exception("could not read the settings of server %s", guild_id)
            return environment(self.settings)
        resolved = resolve(self.settings, stored)
        if self._generation.get(guild_id, 0) == generation:
            self._remember(guild_id, resolved)
        return resolved

    async def fresh(self, guild_id: int) -> ServerSettings:
        """The settings read from the store now (what `!settings` shows)."""
        self.forget(guild_id)
        return await self.get(guild_id)

    async def update(self, guild_id: int, *, by: int, **changes: Any) -> ServerSettings:
        """Store `changes` (checked by the store: a bad value is its `DatasetError`) and
        apply them in this process at once."""
        if self.store is None:
            raise RuntimeError("no dataset to keep server settings in")
        self.forget(guild_id)
        stored = await asyncio.to_thread(
            self.store.update_guild_settings, guild_id, by=by, **changes
        )
        self.forget(guild_id)
        resolved = resolve(self.settings, stored)
        self._remember(guild_id, resolved)
        return resolved

    def forget(self, guild_id: int) -> None:
        """Read this server's settings from the store next time (they changed here)."""
        self._entries.pop(guild_id, None)
        self._generation[guild_id] = self._generation.get(guild_id, 0) + 1

    def _remember(self, guild_id: int, resolved: ServerSettings) -> None:
        self._entries[guild_id] = (self._clock() + self.ttl, resolved)
        self._entries.move_to_end(guild_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


_caches: weakref.WeakKeyDictionary[Any, ServerSettingsCache] = weakref.WeakKeyDictionary()


def of(bot: commands.Bot) -> ServerSettingsCache:
    """The bot's cache of server settings (made on first use, from its settings and dataset)."""
    cache = _caches.get(bot)
    if cache is None or cache.store is not bot.dataset:  # type: ignore[attr-defined]
        cache = ServerSettingsCache(bot.settings, bot.dataset)  # type: ignore[attr-defined]
        _caches[bot] = cache
    return cache
