"""The models' versions: `!retrain`, `!model` and `!rollback`.

Typed in a server, they act on that server's own model (a head on the shared network,
`bot.server_models`), which the server's managers retrain (in seconds, `._heads`) and roll back;
`!retrain network` trains a whole network on the server's images (a full training in the queue,
`._networks`), which becomes the server's model only if it beats the current one.
With `shared` (`!retrain shared epochs=10`, `!model shared`, `!rollback shared 2`), or in a DM,
they act on the shared model (scope `SHARED_MODEL`), the default every server without a model of
its own is served: only the bot's operator retrains it (a full training in its own process),
rolls it back or stops it (`bot.checks.require_operator`), and makes a consenting server's model
the default head (`!default from`, `._default`). What a server sees of the shared model names
nobody: who retrained it is "the operator", unless the viewer is one.
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

from bot.checks import answers_in, is_operator, manages, require_manager, require_operator
from bot.errors import UserFacingError
from bot.exts.models._default import (
    current_default,
    default_lines,
    make_default,
    parse_from,
    rollback_default,
    was_served,
)
from bot.exts.models._heads import KIND, FitOutcome, HeadTrainer
from bot.exts.models._jobs import ClientNotifier, parse_options
from bot.exts.models._networks import NetworkJudge
from bot.exts.models._pictures import picture_files
from bot.exts.models._retrainer import SHARED_MODEL, Retrainer
from bot.exts.models._words import RetrainOptions, public_notes, queued_line, training_line
from bot.model_versions import history, rollback_target, serve
from bot.server_models import (
    NETWORK,
    current_head_version,
    current_kind,
    head_history,
    serve_default,
    serve_version,
    served_backbone,
    server_folder,
)
from model.bundle import ModelError, current_version, set_current, versions

if TYPE_CHECKING:
    from bot.client import JediSithBot

log = logging.getLogger(__name__)

RECOVERY_GRACE = 10.0  # seconds a start-up recovery may take to end when the bot stops
TRAININGS_SHOWN = 10  # an operator's `!model shared`: every server's last trainings
SHARED_WORDS = ("shared", "default")  # `!retrain shared`: the operator's shared model


class Models(commands.Cog, name="Models"):
    """Retrain me on what the server taught me, and choose which version serves."""

    def __init__(self, bot: JediSithBot) -> None:
        self.bot = bot
        self.retrainer: Retrainer | None = None
        self.heads: HeadTrainer | None = None
        self._recovery: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        bot, settings = self.bot, self.bot.settings
        self.heads = HeadTrainer(
            bot.dataset, settings, bot.worker, bot.heads, bot.worker.classifier.info.class_names
        )
        self.retrainer = Retrainer(
            bot.dataset,
            settings,
            bot.worker.classifier.info.class_names,
            functools.partial(serve, bot.worker, backend=settings.model_backend),
            ClientNotifier(bot),
            NetworkJudge(bot.dataset, settings, bot.worker, bot.heads, self.heads),
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
        """Learn this server's own model from its labelled images, in seconds (Manage Server).
        It is published only if it is surely better than the current one on the held-out images
        (the reply shows its mistakes there). `!retrain force` (publish it anyway), `!retrain
        cancel`; `!retrain network [epochs=N] [force]` trains a whole network on many images
        (minutes). The bot's operator:
        `!retrain shared [epochs=10] [force]` trains the shared model every other server gets.
        """
        words = [word for word in options if word]
        shared = [word for word in words if word.lower() in SHARED_WORDS]
        if ctx.guild is not None and not shared:
            await self._retrain_server(ctx, words)
            return
        words = [word for word in words if word.lower() not in SHARED_WORDS]
        if words and words[0].lower() == "cancel":
            await self._cancel(ctx.author, ctx.reply, ctx.guild)
            return
        await require_operator(self.bot, ctx.author, ctx.guild, "retrain me")
        settings = self.bot.settings
        choice = parse_options(words, settings.retrain_max_epochs)

        async def send(text: str) -> discord.Message:
            return await ctx.reply(text, mention_author=False)

        await self.trainer.start(choice, ctx.author, ctx.channel, ctx.guild, send, SHARED_MODEL)

    async def _retrain_server(self, ctx: commands.Context, words: list[str]) -> None:
        """`!retrain [force]` or `!retrain cancel` in a server: its own model."""
        assert ctx.guild is not None
        prefix = ctx.clean_prefix
        if words and words[0].lower() == "cancel":
            require_manager(ctx.author, ctx.guild, "cancel a training")
            if self.fitter.cancel(ctx.guild.id):
                await ctx.reply("Stopping this server's retrain.", mention_author=False)
            elif await self.trainer.cancel(ctx.author, ctx.guild.id):
                await ctx.reply(
                    "Stopping this server's network training (or taking it out of the queue); "
                    "its message says so within seconds.",
                    mention_author=False,
                )
            else:
                await ctx.reply(
                    f"No retrain of this server's model is running. (`{prefix}retrain shared "
                    "cancel` stops the shared model's training, for the bot's operator.)",
                    mention_author=False,
                )
            return
        require_manager(ctx.author, ctx.guild, "retrain me")
        if words and words[0].lower() == "network":
            choice = parse_options(words[1:], self.bot.settings.retrain_max_epochs)

            async def send(text: str) -> discord.Message:
                return await ctx.reply(text, mention_author=False)

            await self.trainer.start(choice, ctx.author, ctx.channel, ctx.guild, send, ctx.guild.id)
            return
        if await self.trainer.running(ctx.guild.id) is not None:
            raise UserFacingError(
                "A network is being trained on this server's images; its message says when it "
                f"ends, and `{prefix}retrain cancel` stops it."
            )
        force = False
        for word in words:
            if word.lower() != "force":
                raise UserFacingError(
                    f"I don't know `{word[:40]}` here. Try `{prefix}retrain`, `{prefix}retrain "
                    f"force` or `{prefix}retrain cancel` (this server's model); the operator's "
                    f"`{prefix}retrain shared epochs=N` trains the shared model."
                )
            force = True
        async with ctx.typing():
            outcome = await self.fitter.retrain(ctx.guild.id, force, user_id=ctx.author.id)
            files = await self._candidate_files(outcome, ctx.guild.id)
        text = outcome.text(prefix)
        if outcome.images >= self.bot.settings.server_network_min_images:
            text += (
                f"\n-# With {outcome.images} labelled images, `{prefix}retrain network` may do "
                "better: it trains a whole network on them (minutes), published only if it "
                "beats this server's model on its holdout."
            )
        await ctx.reply(text, files=files, mention_author=False)

    async def _candidate_files(self, outcome: FitOutcome, guild_id: int) -> list[discord.File]:
        """The candidate's mistakes, confusion matrix and the server's learning curve."""
        if outcome.answers is None:
            return []
        title = "the new model on this server's held-out images"
        files, _ = await picture_files(self.fitter, outcome.answers, 1, title, guild_id)
        return files

    @app_commands.command(name="retrain", description="Learn this server's model again.")
    @app_commands.describe(
        epochs="The shared model: epochs to train (default: the notebook's 29)",
        force="Publish it even if it is not surely better on the holdout",
        cancel="Stop the training that is running",
        shared="The shared model every other server gets (the bot's operator)",
        network="Train a whole network on this server's images (minutes; many images needed)",
    )
    async def slash_retrain(
        self,
        interaction: discord.Interaction,
        epochs: app_commands.Range[int, 1, 1000] | None = None,
        force: bool = False,
        cancel: bool = False,
        shared: bool = False,
        network: bool = False,
    ) -> None:
        guild = interaction.guild
        if not shared and guild is not None and interaction.is_guild_integration():
            if cancel:
                require_manager(interaction.user, guild, "cancel a training")
                done = self.fitter.cancel(guild.id)
                done = done or await self.trainer.cancel(interaction.user, guild.id)
                text = "Stopping this server's retrain." if done else "No retrain is running."
                await interaction.response.send_message(text, ephemeral=True)
                return
            require_manager(interaction.user, guild, "retrain me")
            await interaction.response.defer(thinking=True)
            if network:
                await self._slash_network(interaction, guild, epochs, force)
                return
            outcome = await self.fitter.retrain(guild.id, force, user_id=interaction.user.id)
            files = await self._candidate_files(outcome, guild.id)
            text = outcome.text(self.bot.settings.command_prefix)
            await interaction.followup.send(text, files=files)
            return
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

    async def _slash_network(
        self,
        interaction: discord.Interaction,
        guild: discord.Guild,
        epochs: int | None,
        force: bool,
    ) -> None:
        """`/retrain network:True` in a server: queue its network training."""
        maximum = self.bot.settings.retrain_max_epochs
        if epochs is not None and epochs > maximum:
            raise UserFacingError(f"`epochs` takes a whole number from 1 to {maximum}.")
        choice = RetrainOptions(epochs or RetrainOptions().epochs, force)

        async def send(text: str) -> discord.Message:
            return await interaction.followup.send(text, wait=True)

        channel = interaction.channel
        await self.trainer.start(choice, interaction.user, channel, guild, send, guild.id)  # type: ignore[arg-type]

    @property
    def trainer(self) -> Retrainer:
        assert self.retrainer is not None, "the cog is not loaded"
        return self.retrainer

    @property
    def fitter(self) -> HeadTrainer:
        assert self.heads is not None, "the cog is not loaded"
        return self.heads

    async def _cancel(
        self, user: discord.abc.User, reply, guild: discord.Guild | None = None
    ) -> None:
        """Stop the shared model's training (the operator's), whichever of the bot's processes
        runs it; typed in `guild` (None: a DM)."""
        await require_operator(self.bot, user, guild, "cancel a training")
        retrainer = self.trainer
        record = await retrainer.running(SHARED_MODEL)
        if record is None:
            waiting = await retrainer.waiting(SHARED_MODEL)
            if waiting is not None and await retrainer.cancel(user, SHARED_MODEL):
                await reply(
                    f"Removed the training from the queue (it was at place {waiting[1]}); "
                    "its message says so within seconds."
                )
                return
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
    async def model(self, ctx: commands.Context, which: str | None = None) -> None:
        """Which model serves this server (its own, or the default model), what it learned from
        and how it did, and its last versions. `!model shared`: the shared model's."""
        if ctx.guild is not None and (which or "").lower() not in SHARED_WORDS:
            await self._server_model(ctx, ctx.guild)
            return
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
        backbone = served_backbone(self.bot.worker)
        default = await asyncio.to_thread(current_default, self.bot.settings.data_dir, backbone)
        number = versions[0].number if versions and versions[0].current else None
        network = "the network" + (f" version {number}" if number is not None else "")
        lines += default_lines(default, network, operator, ctx.clean_prefix)
        if operator:
            lines += await self._trainings()
        record = await self.trainer.running(SHARED_MODEL)
        waiting = await self.trainer.waiting(SHARED_MODEL)
        if record is not None:
            lines.append(self.trainer.running_text(record, operator=operator))
        if waiting is not None:
            lines.append(queued_line(*waiting, operator=operator))
        elif record is None and operator:
            lines.append(f"-# `{ctx.clean_prefix}rollback [N]` makes an earlier version current.")
        await ctx.reply("\n".join(lines), mention_author=False)

    async def _server_model(self, ctx: commands.Context, guild: discord.Guild) -> None:
        """`!model` in a server: its own model and versions, or that it is served the default."""
        prefix = ctx.clean_prefix
        folder = server_folder(self.bot.settings.data_dir, guild.id)
        kind = await asyncio.to_thread(current_kind, folder)
        kept = await asyncio.to_thread(head_history, folder)
        if kind is None:
            lines = [
                f"This server is served **the default model** (`{prefix}model shared` shows it)."
            ]
        elif kind == NETWORK:
            lines = ["This server is served **its own model**: a network trained on its images."]
        else:
            lines = [f"This server is served **its own model**: {KIND}."]
        lines += [version.line() for version in kept]
        if self.fitter.running(guild.id):
            lines.append("-# This server's model is being retrained.")
        if await self.trainer.running(guild.id) is not None:
            lines.append("-# A network is being trained on this server's images.")
        waiting = await self.trainer.waiting(guild.id)
        if waiting is not None:
            lines.append(
                f"-# A network training for this server waits in the queue: place {waiting[1]}."
            )
        if manages(ctx.author, guild):
            lines.append(
                f"-# `{prefix}retrain` learns this server's model from its labelled images; "
                f"`{prefix}rollback [N]` or `{prefix}rollback default` changes the one served."
            )
        await ctx.reply("\n".join(lines), mention_author=False)

    async def _trainings(self) -> list[str]:
        """For the operator: the last trainings, finished or not, with who ran them and where."""
        store = self.bot.dataset
        if store is None:
            return []
        records = await asyncio.to_thread(store.trainings.latest, TRAININGS_SHOWN)
        lines = []
        for record in records:
            where = self._server_name(record.guild_id) if record.guild_id else "a DM"
            whose = "the default model"
            if record.scope:
                whose = f"{self._server_name(record.scope)}'s model"
            lines.append(training_line(record, where, whose))
        return lines

    def _server_name(self, guild_id: int) -> str:
        guild = self.bot.get_guild(guild_id)
        return guild.name if guild is not None else f"server {guild_id}"

    @commands.command(name="rollback")
    async def rollback(self, ctx: commands.Context, *words: str) -> None:
        """Serve this server an earlier version of its model (Manage Server): the one before the
        current one, or version N; `!rollback default`: the default model. `!model` lists them.
        The bot's operator: `!rollback shared [N]` rolls the shared network back, `!rollback
        shared network` serves its own verdict by default, `!rollback shared head N` the default
        head N."""
        prefix = ctx.clean_prefix
        shared = [word for word in words if word.lower() == "shared"]
        rest = [word.lower() for word in words if word.lower() != "shared"]
        if ctx.guild is not None and not shared:
            if len(rest) > 1 or (rest and not rest[0].isdigit() and rest[0] != "default"):
                raise UserFacingError(
                    f"Try `{prefix}rollback`, `{prefix}rollback 2` or `{prefix}rollback default`."
                )
            await self._rollback_server(ctx, ctx.guild, rest[0] if rest else None)
            return
        await require_operator(self.bot, ctx.author, ctx.guild, "roll the model back")
        if rest[:1] in (["network"], ["head"]):
            await self._rollback_default(ctx, rest)
            return
        if len(rest) > 1 or (rest and not rest[0].isdigit()):
            raise UserFacingError(
                f"Try `{prefix}rollback shared [N]` (the network's version N), "
                f"`{prefix}rollback shared network` (no default head) or "
                f"`{prefix}rollback shared head N` (the default head N)."
            )
        version = int(rest[0]) if rest else None
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

    async def _rollback_default(self, ctx: commands.Context, rest: list[str]) -> None:
        """The operator's `!rollback shared network` or `!rollback shared head N`."""
        prefix = ctx.clean_prefix
        if rest != ["network"] and not (len(rest) == 2 and rest[1].isdigit()):
            raise UserFacingError(
                f"Try `{prefix}rollback shared network` or `{prefix}rollback shared head N`."
            )
        data_dir = self.bot.settings.data_dir
        was = await asyncio.to_thread(was_served, data_dir)
        wanted = int(rest[1]) if rest[0] == "head" else None
        now = await asyncio.to_thread(rollback_default, data_dir, wanted)
        await ctx.reply(
            f"{now} to every server without a model of its own (it was {was}).",
            mention_author=False,
        )

    # -- !default -------------------------------------------------------------------------------

    @commands.command(name="default")
    async def default(self, ctx: commands.Context, *words: str) -> None:
        """The bot's operator: `!default from SERVER_ID [VERSION]` serves that server's model (its
        current version, or VERSION) to every server without one of its own, if it consents (its
        managers' `!dataset share on`). `!rollback shared network` undoes it."""
        await require_operator(self.bot, ctx.author, ctx.guild, "choose the default model")
        prefix = ctx.clean_prefix
        guild_id, number = parse_from(list(words), prefix)
        settings = self.bot.settings
        made, number = await asyncio.to_thread(
            make_default,
            self.bot.dataset,
            settings.data_dir,
            guild_id,
            number,
            served_backbone(self.bot.worker),
            prefix,
        )
        log.info("default head version %d: server %s's version %d", made, guild_id, number)
        await ctx.reply(
            f"**Default head version {made}**: {self._server_name(guild_id)}'s model, version "
            f"{number} ({KIND}). Every server without a model of its own is served it from now "
            f"on; `{prefix}rollback shared network` goes back to the network's own verdict.",
            mention_author=False,
        )

    async def _rollback_server(
        self, ctx: commands.Context, guild: discord.Guild, wanted: str | None
    ) -> None:
        require_manager(ctx.author, guild, "roll this server's model back")
        folder = server_folder(self.bot.settings.data_dir, guild.id)
        current = await asyncio.to_thread(current_head_version, folder)
        was = f"version {current}" if current is not None else "the default model"
        try:
            if wanted == "default":
                if current is None:
                    raise ModelError("this server is served the default model already")
                await asyncio.to_thread(serve_default, folder)
                now = "This server is served the default model again"
            else:
                kept = await asyncio.to_thread(versions, folder)
                if wanted is None:
                    earlier = [n for n in kept if current is None or n < current]
                    if not earlier:
                        raise ModelError("there is no earlier version of this server's model")
                    target = earlier[-1]
                else:
                    target = int(wanted)
                if target == current:
                    raise ModelError(f"version {target} is already the current one")
                await asyncio.to_thread(serve_version, folder, target)
                now = f"Version {target} of this server's model is current again"
        except ModelError as error:
            raise UserFacingError(f"I can't roll back: {error}.") from None
        await ctx.reply(f"{now} (it was {was}).", mention_author=False)


def _ephemeral(interaction: discord.Interaction):
    async def reply(text: str) -> None:
        await interaction.response.send_message(text, ephemeral=True)

    return reply
