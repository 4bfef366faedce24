"""The model's versions, for moderators: `!retrain`, `!model` and `!rollback`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import allowed_in, manager_only, require_manager
from bot.errors import UserFacingError
from bot.exts.models._retrainer import ClientNotifier, Retrainer, parse_options
from bot.exts.models._words import RetrainOptions
from bot.model_versions import history, rollback_target, serve
from model.bundle import ModelError, current_version, set_current

if TYPE_CHECKING:
    from bot.client import JediSithBot

log = logging.getLogger(__name__)

RECOVERY_GRACE = 10.0  # seconds a start-up recovery may take to end when the bot stops


class Models(commands.Cog, name="Models"):
    """Retrain me on what the server taught me, and choose which version serves."""

    def __init__(self, bot: JediSithBot) -> None:
        self.bot = bot
        self.retrainer: Retrainer | None = None
        self._recovery: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        bot, settings = self.bot, self.bot.settings
        self.retrainer = Retrainer(
            bot.dataset,
            settings,
            bot.worker.classifier.info.class_names,
            functools.partial(serve, bot.worker, backend=settings.model_backend),
            ClientNotifier(bot),
        )
        # A stop (`bot.shutdown`) stops the trainer beside the commands' grace; `close()`
        # unloads this cog after, and the trainer is then already stopped.
        bot.stopping.append(self.retrainer.shutdown)

    async def cog_unload(self) -> None:
        if self._recovery is not None:
            # The dataset closes after the cogs: the recovery's database work (a thread, which
            # cannot be cancelled) ends first.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._recovery, RECOVERY_GRACE)
        if self.retrainer is not None:
            self.bot.stopping.remove(self.retrainer.shutdown)
            await self.retrainer.shutdown()

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        if self._recovery is None and self.retrainer is not None:
            # Once: trainings a previous run left behind. A task of the cog's own, not only
            # discord.py's event task, so that unloading the cog (at `close()`) ends it.
            self._recovery = asyncio.create_task(self.retrainer.recover(), name="recover-trainings")
            await asyncio.shield(self._recovery)

    async def cog_check(self, ctx: commands.Context) -> bool:  # type: ignore[override]
        return allowed_in(self.bot.settings, ctx.channel.id)

    # -- !retrain -------------------------------------------------------------------------------

    @commands.command(name="retrain")
    async def retrain(self, ctx: commands.Context, *options: str) -> None:
        """Train a new model on the labelled images (Manage Server). It is published only if it
        is not worse than the current one on the held-out images. `!retrain epochs=10`,
        `!retrain force` (publish even if worse), `!retrain cancel`.
        """
        words = [word for word in options if word]
        if words and words[0].lower() == "cancel":
            await self._cancel(ctx.author, ctx.reply)
            return
        await require_manager(self.bot, ctx.author, "retrain me")
        settings = self.bot.settings
        choice = parse_options(words, settings.retrain_max_epochs)

        async def send(text: str) -> discord.Message:
            return await ctx.reply(text, mention_author=False)

        await self.trainer.start(choice, ctx.author, ctx.channel, ctx.guild, send)

    @app_commands.command(name="retrain", description="Train a new model on the labelled images.")
    @app_commands.describe(
        epochs="Epochs to train (default: the notebook's 29)",
        force="Publish it even if it is worse on the holdout",
        cancel="Stop the training that is running",
    )
    async def slash_retrain(
        self,
        interaction: discord.Interaction,
        epochs: app_commands.Range[int, 1, 1000] | None = None,
        force: bool = False,
        cancel: bool = False,
    ) -> None:
        if cancel:
            await self._cancel(interaction.user, _ephemeral(interaction))
            return
        await require_manager(self.bot, interaction.user, "retrain me")
        maximum = self.bot.settings.retrain_max_epochs
        if epochs is not None and epochs > maximum:
            raise UserFacingError(f"`epochs` takes a whole number from 1 to {maximum}.")
        choice = RetrainOptions(epochs or RetrainOptions().epochs, force)
        await interaction.response.defer(thinking=True)

        async def send(text: str) -> discord.Message:
            return await interaction.followup.send(text, wait=True)

        await self.trainer.start(
            choice,
            interaction.user,
            interaction.channel,
            interaction.guild,
            send,  # type: ignore[arg-type]
        )

    @property
    def trainer(self) -> Retrainer:
        assert self.retrainer is not None, "the cog is not loaded"
        return self.retrainer

    async def _cancel(self, user: discord.abc.User, reply) -> None:
        """Stop the training, whichever of the bot's processes runs it."""
        retrainer = self.trainer
        record = await retrainer.running()
        if record is None:
            await reply("No training is running.")
            return
        if record.user_id != user.id:
            await require_manager(self.bot, user, "cancel someone else's training")
        local = retrainer.is_local(record)
        if not await retrainer.cancel(user):
            await reply("No training is running.")
            return
        where = "" if local else " (another of my processes runs it: it stops within seconds)"
        await reply(f"Stopping the training{where}; its message says when it has stopped.")

    # -- !model, !rollback ----------------------------------------------------------------------

    @commands.command(name="model")
    async def model(self, ctx: commands.Context) -> None:
        """Which model version serves, what it learned from and how it did, and the last few."""
        folder = self.bot.worker.folder
        assert folder is not None
        versions = await asyncio.to_thread(history, folder)
        lines = [version.line() for version in versions]
        if len(versions) == 1 and versions[0].number is None:
            lines.append(f"-# No versions yet: `{ctx.clean_prefix}retrain` publishes the first.")
        record = await self.trainer.running()
        if record is not None:
            lines.append(self.trainer.running_text(record))
        else:
            lines.append(f"-# `{ctx.clean_prefix}rollback [N]` makes an earlier version current.")
        await ctx.reply("\n".join(lines), mention_author=False)

    @commands.command(name="rollback")
    @manager_only("roll the model back")
    async def rollback(self, ctx: commands.Context, version: int | None = None) -> None:
        """Make an earlier model version current again (Manage Server): the one before the
        current one, or version N. `!model` lists them."""
        folder = self.bot.worker.folder
        assert folder is not None
        try:
            target = await asyncio.to_thread(rollback_target, folder, version)
            was = await asyncio.to_thread(current_version, folder)
            await asyncio.to_thread(set_current, folder, target)
        except ModelError as error:
            raise UserFacingError(f"I can't roll back: {error}.") from None
        seconds = self.bot.settings.reload_interval
        await ctx.reply(
            f"Version {target} is current again (it was version {was}); it serves within "
            f"{seconds:g} s. `{ctx.clean_prefix}rollback {was}` undoes this.",
            mention_author=False,
        )


def _ephemeral(interaction: discord.Interaction):
    async def reply(text: str) -> None:
        await interaction.response.send_message(text, ephemeral=True)

    return reply
