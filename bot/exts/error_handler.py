"""One place that turns errors into replies: friendly for user mistakes, logged for bugs; no
reply shows a host path (`bot.errors.scrub_paths`)."""

from __future__ import annotations

import difflib
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import answers_in
from bot.errors import NotAllowed, scrub_paths, user_message
from bot.replies import NOT_ENABLED

if TYPE_CHECKING:
    from bot.client import JediSithBot

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on my side. It has been logged; please try again."
CLOSE = 0.75  # how alike a typed word and a command's name must be to suggest it (difflib)


class ErrorHandler(commands.Cog):
    """Replies to failed commands."""

    def __init__(self, bot: JediSithBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self._previous_tree_handler = self.bot.tree.on_error
        self.bot.tree.on_error = self.on_app_command_error

    async def cog_unload(self) -> None:
        self.bot.tree.on_error = self._previous_tree_handler

    @commands.Cog.listener()
    async def on_command_error(self, ctx: commands.Context, error: commands.CommandError) -> None:
        if getattr(error, "handled", False):
            return
        if isinstance(error, NotAllowed):
            await _reply(ctx, str(error))
            return
        if isinstance(error, commands.CheckFailure) and ctx.interaction is not None:
            await _reply(ctx, NOT_ENABLED)  # a slash command must be answered
            return
        if isinstance(error, commands.CommandNotFound):
            await self._suggest(ctx)
            return
        if isinstance(error, commands.CheckFailure):
            return  # a channel we are not enabled in: stay quiet
        if isinstance(error, commands.CommandOnCooldown):
            await _reply(ctx, f"Slow down! Try again in {error.retry_after:.0f} s.")
            return
        if isinstance(error, commands.UserInputError):
            usage = f"{ctx.clean_prefix}{ctx.command.qualified_name} {ctx.command.signature}"
            parameter = ctx.current_parameter.name if ctx.current_parameter else "value"
            await _reply(ctx, f"{_input_error(error, parameter)}\nUsage: `{usage.strip()}`")
            return
        original = _unwrap(error)
        message = user_message(original)
        if message is not None:
            await _reply(ctx, message)
            return
        log.error(
            "command %s failed",
            ctx.command,
            exc_info=(type(original), original, original.__traceback__),
        )
        await _reply(ctx, APOLOGY)

    async def _suggest(self, ctx: commands.Context) -> None:
        """A typo of a command (`!jedisiht`) gets one "did you mean" line; a word near no
        command, or a channel the bot does not answer in, gets nothing."""
        typed = (ctx.invoked_with or "").lower()
        if len(typed) < 3 or not await answers_in(self.bot, ctx.guild, ctx.channel.id):
            return
        match = suggestion(typed, self.bot)
        if match is not None:
            p = ctx.clean_prefix
            await _reply(
                ctx,
                f"I have no `{p}{typed}`: did you mean `{p}{match}`? `{p}help` lists my commands.",
            )

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        original = getattr(error, "original", error)
        message = user_message(original)
        if isinstance(error, app_commands.CheckFailure):
            return
        if message is None:
            log.error(
                "app command %s failed",
                interaction.command.name if interaction.command else "?",
                exc_info=(type(original), original, original.__traceback__),
            )
            message = APOLOGY
        message = scrub_paths(message)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(message)
            else:
                await interaction.response.send_message(message, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the user about an error", exc_info=True)


def suggestion(typed: str, bot: commands.Bot) -> str | None:
    """The visible command name or alias closest to `typed`, if it is close enough."""
    names = [name for name, command in bot.all_commands.items() if not command.hidden]
    matches = difflib.get_close_matches(typed, names, n=1, cutoff=CLOSE)
    return matches[0] if matches else None


def _unwrap(error: BaseException) -> BaseException:
    """What a command raised: the error inside discord.py's wrappers (a hybrid command invoked
    as a slash command wraps it twice)."""
    while isinstance(
        error,
        commands.CommandInvokeError | commands.HybridCommandError | app_commands.CommandInvokeError,
    ):
        error = error.original
    return error


def _input_error(error: commands.UserInputError, parameter: str) -> str:
    if isinstance(error, commands.RangeError):
        return f"The {parameter} must be a number from {error.minimum} to {error.maximum}."
    if isinstance(error, commands.BadArgument) and not isinstance(error, commands.BadUnionArgument):
        text = str(error)
        if text.startswith("Converting to"):
            return "That is not a number."
        return text
    return str(error)


async def _reply(ctx: commands.Context, text: str) -> None:
    """One line to the user of a failed command: only they see it when it is a slash command
    not yet answered (a deferred one's answer is the line, as its "thinking" said it would)."""
    interaction = ctx.interaction
    ephemeral = interaction is not None and not interaction.response.is_done()
    try:
        await ctx.reply(scrub_paths(text), mention_author=False, ephemeral=ephemeral)
    except discord.HTTPException:
        log.warning("could not reply to a failed command", exc_info=True)


async def setup(bot: JediSithBot) -> None:
    await bot.add_cog(ErrorHandler(bot))
