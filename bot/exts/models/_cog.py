"""The model's versions: `!retrain`, `!model` and `!rollback`.

Every server is served one shared model (scope `SHARED_MODEL`), which only the bot's operator
retrains, rolls back or stops (`bot.checks.require_operator`), from any server or a DM. What a
server sees of it names nobody: who retrained it is "the operator", unless the viewer is one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import answers_in, is_operator, operator_only, require_operator
from bot.errors import UserFacingError
from bot.exts.models._retrainer import SHARED_MODEL, ClientNotifier, Retrainer, parse_options
from bot.exts.models._words import RetrainOptions, public_notes, training_line
from bot.model_versions import history, rollback_target, serve
from model.bundle import ModelError, current_version, set_current

if TYPE_CHECKING:
    from bot.client import JediSithBot

log = logging.getLogger(__name__)

RECOVERY_GRACE = 10.0  # seconds a start-up recovery may take to end when the bot stops
TRAININGS_SHOWN = 5  # an operator's `!model`: the last trainings, with who and where


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
        return await answers_in(self.bot, ctx.guild, ctx.channel.id)

    # -- !retrain -------------------------------------------------------------------------------

    @commands.command(name="retrain")
    async def retrain(self, ctx: commands.Context, *options: str) -> None:
        """Train a new shared model on the labelled images (the bot's operator). It is published
        only if it is not worse than the current one on the held-out images. `!retrain epochs=10`,
        `!retrain force` (publish even if worse), `!retrain cancel`.
        """
        words = [word for word in options if word]
        if words and words[0].lower() == "cancel":
            await self._cancel(ctx.author, ctx.reply, ctx.guild)
            return
        await require_operator(self.bot, ctx.author, ctx.guild, "retrain me")
        settings = self.bot.settings
        choice = parse_options(words, settings.retrain_max_epochs)

        async def send(text: str) -> discord.Message:
            return await ctx.reply(text, mention_author=False)

        await self.trainer.start(choice, ctx.author, ctx.channel, ctx.guild, send, SHARED_MODEL)

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
            await self._cancel(interaction.user, _ephemeral(interaction), interaction.guild)
            return
        await require_operator(self.bot, interaction.user, interaction.guild, "retrain me")
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
            SHARED_MODEL,
        )

    @property
    def trainer(self) -> Retrainer:
        assert self.retrainer is not None, "the cog is not loaded"
        return self.retrainer

    async def _cancel(
        self, user: discord.abc.User, reply, guild: discord.Guild | None = None
    ) -> None:
        """Stop the shared model's training (the operator's), whichever of the bot's processes
        runs it; typed in `guild` (None: a DM)."""
        await require_operator(self.bot, user, guild, "cancel a training")
        retrainer = self.trainer
        record = await retrainer.running(SHARED_MODEL)
        if record is None:
            await reply("No training is running.")
            return
        local = retrainer.is_local(record)
        if not await retrainer.cancel(user, SHARED_MODEL):
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
        operator = await is_operator(self.bot, ctx.author)
        versions = await asyncio.to_thread(history, folder)
        lines = [
            dataclasses.replace(version, notes=public_notes(version.notes)).line()
            for version in versions
        ]
        if len(versions) == 1 and versions[0].number is None:
            lines.append(f"-# No versions yet: `{ctx.clean_prefix}retrain` publishes the first.")
        if operator:
            lines += await self._trainings()
        record = await self.trainer.running(SHARED_MODEL)
        if record is not None:
            lines.append(self.trainer.running_text(record, operator=operator))
        elif operator:
            lines.append(f"-# `{ctx.clean_prefix}rollback [N]` makes an earlier version current.")
        await ctx.reply("\n".join(lines), mention_author=False)

    async def _trainings(self) -> list[str]:
        """For the operator: the last trainings, finished or not, with who ran them and where."""
        store = self.bot.dataset
        if store is None:
            return []
        records = await asyncio.to_thread(store.trainings.latest, TRAININGS_SHOWN)
        lines = []
        for record in records:
            guild = self.bot.get_guild(record.guild_id) if record.guild_id else None
            where = guild.name if guild is not None else f"server {record.guild_id}"
            if record.guild_id is None:
                where = "a DM"
            lines.append(training_line(record, where))
        return lines

    @commands.command(name="rollback")
    @operator_only("roll the model back")
    async def rollback(self, ctx: commands.Context, version: int | None = None) -> None:
        """Make an earlier version of the shared model current again (the bot's operator): the
        one before the current one, or version N. `!model` lists them."""
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
