"""Who may run a command, and where: the checks every feature shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import discord
from discord.ext import commands

from bot.errors import NotAllowed
from bot.settings import Settings

T = TypeVar("T")


def allowed_in(settings: Settings, channel_id: int | None) -> bool:
    """Whether commands are answered in this channel (ALLOWED_CHANNEL_IDS; empty: all)."""
    allowed = settings.allowed_channel_ids
    return not allowed or channel_id in allowed


def is_moderator(user: discord.abc.User) -> bool:
    """Members with Manage Messages outvote others."""
    return isinstance(user, discord.Member) and user.guild_permissions.manage_messages


async def require_manager(bot: commands.Bot, user: discord.abc.User, what: str) -> None:
    """Manage Server in this server, or the bot's owner; else `NotAllowed`, saying `what` the
    user may not do."""
    if isinstance(user, discord.Member) and user.guild_permissions.manage_guild:
        return
    if await bot.is_owner(user):  # type: ignore[arg-type]
        return
    raise NotAllowed(f"Only members with the Manage Server permission can {what}.")


def manager_only(what: str) -> Callable[[T], T]:
    """A command only members with Manage Server (or the bot's owner) may run: the others are
    told, in one line, that they may not `what`."""

    async def predicate(ctx: commands.Context) -> bool:
        await require_manager(ctx.bot, ctx.author, what)
        return True

    return commands.check(predicate)
