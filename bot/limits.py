"""The rate limit on every command and click: RATE_LIMIT_MEMBER per member and RATE_LIMIT_SERVER
per server in each RATE_LIMIT_SECONDS (discord.py's cooldown buckets; 0: no such limit).

It is registered once, on the bot, so no command or button can leave it out: prefix commands
pass `command_check` (a bot-wide `check_once`, so `!help` listing the commands counts nothing),
application commands (slash, hybrid, the message menu) `LimitedTree.interaction_check`, and
buttons and selects `Limited.interaction_check` (every component class of the bot derives from
`Limited`; a test checks). A refused click is never downloaded or decoded.

A member is a user, wherever they type: their bucket is the same in every server and in DMs.
The first refusal of a window gets one line; later ones in that window are silent (a prefix
command gets no reply, a click a bare acknowledgement), except a slash command's, which
Discord requires to be answered. The buckets live in each bot process.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import answers_in
from bot.errors import NotAllowed
from bot.settings import Settings

log = logging.getLogger(__name__)

MEMBER = "member"
SERVER = "server"
_TOLD_KEPT = 4096  # who was told to slow down, kept until their windows end (then pruned)


class SlowDown(NotAllowed):
    """A prefix command over a rate limit; `handled` when its member was already told."""

    def __init__(self, message: str, *, tell: bool) -> None:
        super().__init__(message)
        self.handled = not tell  # the error handler stays quiet about a handled error


@dataclass(frozen=True)
class Refusal:
    """An action over a limit: which (`MEMBER` or `SERVER`), for how long, and whether this is
    the first refusal of its window (the one to answer)."""

    scope: str
    retry_after: float
    tell: bool

    @property
    def line(self) -> str:
        seconds = max(1, math.ceil(self.retry_after))
        if self.scope == SERVER:
            return f"Slow down! This server sent me too many commands: try again in {seconds} s."
        return f"Slow down! Try again in {seconds} s."


def _same(key: Any) -> Any:
    return key


def _buckets(rate: int, seconds: float) -> commands.CooldownMapping[Any] | None:
    if rate <= 0:
        return None
    return commands.CooldownMapping.from_cooldown(rate, seconds, _same)


class RateLimits:
    """The members' and the servers' buckets, and who was told to slow down until when."""

    def __init__(self, member_rate: int, server_rate: int, seconds: float) -> None:
        self.member_rate, self.server_rate, self.seconds = member_rate, server_rate, seconds
        self._members = _buckets(member_rate, seconds)
        self._servers = _buckets(server_rate, seconds)
        self._told: dict[tuple[str, int], float] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            settings.rate_limit_member, settings.rate_limit_server, settings.rate_limit_seconds
        )

    def hit(self, user_id: int, guild_id: int | None, now: float | None = None) -> Refusal | None:
        """Count one action of `user_id` in `guild_id` (None: a DM); None if it may go on."""
        now = time.time() if now is None else now
        for scope, buckets, key in (
            (MEMBER, self._members, user_id),
            (SERVER, self._servers, guild_id),
        ):
            if buckets is None or key is None:
                continue
            bucket = buckets.get_bucket(key, now)
            retry = bucket.update_rate_limit(now) if bucket is not None else None
            if retry:
                return Refusal(scope, retry, self._first_refusal((scope, key), now + retry, now))
        return None

    def _first_refusal(self, who: tuple[str, int], until: float, now: float) -> bool:
        """Whether `who` (a member or a server) is refused for the first time this window."""
        if self._told.get(who, 0.0) > now:
            return False
        if len(self._told) >= _TOLD_KEPT:
            self._told = {key: end for key, end in self._told.items() if end > now}
        self._told[who] = until
        return True


class VerdictCooldown:
    """COOLDOWN_RATE verdicts per COOLDOWN_SECONDS per person (`!jedisith`, `!features`, their
    slash twins and the menu), on top of the rate limit: the model's work is the costly part."""

    def __init__(self, settings: Settings) -> None:
        self.rate, self.seconds = settings.cooldown_rate, settings.cooldown_seconds
        self._buckets = _buckets(self.rate, self.seconds) if settings.cooldown_enabled else None

    def retry_after(self, user_id: int) -> float:
        """Seconds until `user_id` may have another verdict (0: now); counts this attempt."""
        if self._buckets is None:
            return 0.0
        bucket = self._buckets.get_bucket(user_id)
        return (bucket.update_rate_limit() or 0.0) if bucket is not None else 0.0


def limits_of(client: discord.Client) -> RateLimits | None:
    """The bot's limits (None: a client without them, as in some tests)."""
    return getattr(client, "limits", None)


async def command_check(ctx: commands.Context) -> bool:
    """The bot-wide check of every prefix command: `SlowDown` past a limit."""
    limits = limits_of(ctx.bot)
    if limits is None:
        return True
    refusal = limits.hit(ctx.author.id, ctx.guild.id if ctx.guild else None)
    if refusal is None:
        return True
    tell = refusal.tell and await answers_in(ctx.bot, ctx.guild, ctx.channel.id)
    raise SlowDown(refusal.line, tell=tell)


async def allow(interaction: discord.Interaction) -> bool:
    """Count an interaction (a slash command, a menu, a click) against the limits; past one,
    answer it as the module says and return False."""
    limits = limits_of(interaction.client)
    if limits is None or interaction.type is discord.InteractionType.autocomplete:
        return True
    refusal = limits.hit(interaction.user.id, interaction.guild_id)
    if refusal is None:
        return True
    try:
        if refusal.tell or interaction.type is not discord.InteractionType.component:
            await interaction.response.send_message(refusal.line, ephemeral=True)
        else:
            await interaction.response.defer()  # acknowledged, with no message
    except discord.HTTPException:
        log.warning("could not answer an interaction over the rate limit", exc_info=True)
    return False


class LimitedTree(app_commands.CommandTree):
    """The bot's command tree: every application command passes `allow` first."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return await allow(interaction)


class Limited:
    """Put first among the bases of every button, select or view of the bot: a click passes
    `allow` before its callback runs."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return await allow(interaction)


def install(bot: commands.Bot, settings: Settings) -> RateLimits:
    """Give `bot` its limits and the check of its prefix commands (its tree is `LimitedTree`)."""
    limits = RateLimits.from_settings(settings)
    bot.add_check(command_check, call_once=True)
    return limits
