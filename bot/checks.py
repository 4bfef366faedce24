"""Who may run a command, and where: the checks every feature shares.

Two kinds of power, never mixed: a server's managers (Manage Server in that server, read from
the member's permissions there) change that server's settings and data; the bot's operator
(the application's owner or team, or a user in OPERATOR_IDS) governs the shared model that
every server is served. Owning another server gives no power here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import discord
from discord.ext import commands

from bot import replies, server_settings
from bot.errors import NotAllowed
from bot.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

IN_A_SERVER = "That changes a server's settings: type it in that server."
OPERATOR_ONLY = (
    "Only the bot's operator can change the default model that servers without a model of "
    "their own are served: retrain, roll back, stop or replace it."
)


async def answers_in(
    bot: commands.Bot, guild: discord.abc.Snowflake | None, channel_id: int | None
) -> bool:
    """Whether commands are answered in this channel: the server's `!settings channels` when
    it chose some, else ALLOWED_CHANNEL_IDS (empty: every channel)."""
    resolved = await server_settings.of(bot).get(guild.id if guild is not None else None)
    return resolved.allows(channel_id)


async def answers_interaction(bot: commands.Bot, interaction: discord.Interaction) -> bool:
    """Whether a click or an application command is answered here (the bot is not restarting,
    and `answers_in` the channel); else the person is told why, privately."""
    if not bot.accepting:  # type: ignore[attr-defined]
        await interaction.response.send_message(replies.RESTARTING, ephemeral=True)
        return False
    if not await answers_in(bot, interaction.guild, interaction.channel_id):
        await interaction.response.send_message(replies.NOT_ENABLED, ephemeral=True)
        return False
    return True


def is_moderator(user: discord.abc.User) -> bool:
    """Members with Manage Messages outvote others."""
    return isinstance(user, discord.Member) and user.guild_permissions.manage_messages


def manages(user: discord.abc.User, guild: discord.Guild | None) -> bool:
    """Whether `user` has Manage Server in `guild` itself: their permissions as a member of
    that server (its owner has them all), never those they hold in another one."""
    return (
        guild is not None
        and isinstance(user, discord.Member)
        and user.guild.id == guild.id
        and user.guild_permissions.manage_guild
    )


async def is_operator(bot: commands.Bot, user: discord.abc.User) -> bool:
    """The bot's operator: a user in OPERATOR_IDS, or the application's owner (or a member of
    its team, as `bot.is_owner` knows them)."""
    settings: Settings = bot.settings  # type: ignore[attr-defined]
    if user.id in settings.operator_ids:
        return True
    try:  # the first call asks Discord who owns the application, then it is remembered
        return await bot.is_owner(user)  # type: ignore[arg-type]
    except discord.HTTPException as error:
        log.warning("could not ask Discord who owns the application: %s", error)
        return False


def require_manager(user: discord.abc.User, guild: discord.Guild | None, what: str) -> None:
    """Manage Server in `guild`, the server the command was typed in; else `NotAllowed`,
    saying `what` the user may not do (in a DM: that it is typed in a server)."""
    if guild is None:
        raise NotAllowed(IN_A_SERVER)
    if not manages(user, guild):
        raise NotAllowed(f"Only members with the Manage Server permission can {what}.")


async def require_operator(
    bot: commands.Bot, user: discord.abc.User, guild: discord.Guild | None, what: str
) -> None:
    """The bot's operator, from any server or a DM; else `NotAllowed`: a member without
    Manage Server is told that first (`what` they may not do), a manager `OPERATOR_ONLY`."""
    if await is_operator(bot, user):
        return
    if guild is not None and not manages(user, guild):
        raise NotAllowed(f"Only members with the Manage Server permission can {what}.")
    raise NotAllowed(OPERATOR_ONLY)


def manager_only(what: str) -> Callable[[T], T]:
    """A command that changes this server: only members with Manage Server here may run it, and
    not in a DM; the others are told, in one line, that they may not `what`."""

    async def predicate(ctx: commands.Context) -> bool:
        require_manager(ctx.author, ctx.guild, what)
        return True

    return commands.check(predicate)


def operator_only(what: str) -> Callable[[T], T]:
    """A command that changes the shared model: only the bot's operator may run it, from any
    server or a DM; the others are told, in one line, that they may not."""

    async def predicate(ctx: commands.Context) -> bool:
        await require_operator(ctx.bot, ctx.author, ctx.guild, what)
        return True

    return commands.check(predicate)
