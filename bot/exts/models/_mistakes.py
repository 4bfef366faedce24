"""`!mistakes`: what a server's model gets wrong on the server's held-out images.

The server's held-out images are answered by the model it is served (its own, or the default
model) through the serving path, as the gate judges them (`HeadTrainer.holdout_answers`); the
reply carries `._pictures`' pictures of those answers. Only this server's images are read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from discord.ext import commands

from bot.checks import answers_in, manager_only
from bot.errors import UserFacingError
from bot.exts.models._heads import HeadTrainer
from bot.exts.models._pictures import picture_files, summary
from bot.server_models import current_head_version, server_folder, server_images

if TYPE_CHECKING:
    from bot.client import JediSithBot

log = logging.getLogger(__name__)

NO_HOLDOUT = (
    "This server has no held-out images yet: about one labelled image in five is kept apart to "
    "judge its models. Label more with the buttons under my verdicts or `{prefix}teach`."
)

WAITING = (
    "{waiting} held-out images wait for {more} (or a moderator's) before they judge this "
    "server's models; `{prefix}settings voters` sets how many members a held-out label needs."
)


def waiting_text(store: Any, guild_id: int, min_voters: int, prefix: str) -> str | None:
    """What `!mistakes` says when no held-out image judges yet but some wait for more votes
    (`min_voters`: the environment's, unless the server set its own); None when none wait."""
    own = store.guild_settings(guild_id).holdout_min_voters
    needed = min_voters if own is None else own
    held = store.labelled(guild_id, holdout=True)
    waiting = sum(image.holdout and image.label in store.class_names for image in held)
    if not waiting:
        return None
    more = "a second vote" if needed == 2 else f"votes from {needed} members"
    return WAITING.format(waiting=waiting, more=more, prefix=prefix)


class Mistakes(commands.Cog, name="Mistakes"):
    """What this server's model gets wrong on its held-out images."""

    def __init__(self, bot: JediSithBot) -> None:
        self.bot = bot
        self.fitter: HeadTrainer | None = None

    async def cog_load(self) -> None:
        bot = self.bot
        classes = bot.worker.classifier.info.class_names
        self.fitter = HeadTrainer(bot.dataset, bot.settings, bot.worker, bot.heads, classes)

    async def cog_check(self, ctx: commands.Context) -> bool:  # type: ignore[override]
        return await answers_in(self.bot, ctx.guild, ctx.channel.id)

    @commands.hybrid_command(
        name="mistakes", description="What this server's model gets wrong on its held-out images."
    )
    @manager_only("see this server's held-out images")
    @commands.cooldown(1, 10.0, commands.BucketType.guild)
    async def mistakes(self, ctx: commands.Context) -> None:
        """The held-out images this server's model gets wrong or is least sure about, as one
        picture, with its confusion matrix and learning curve (Manage Server)."""
        assert ctx.guild is not None and self.fitter is not None
        prefix = ctx.clean_prefix
        if self.bot.dataset is None:
            raise UserFacingError("Learning is not set up on this bot (it has no dataset).")
        guild_id = ctx.guild.id
        async with ctx.typing():
            voters = self.bot.settings.holdout_min_voters
            held = await asyncio.to_thread(
                server_images, self.bot.dataset, guild_id, True, min_voters=voters
            )
            if not held:
                store = self.bot.dataset
                text = await asyncio.to_thread(waiting_text, store, guild_id, voters, prefix)
                text = text or NO_HOLDOUT.format(prefix=prefix)
                await ctx.reply(text, mention_author=False)
                return
            heads = self.bot.heads
            own = await asyncio.to_thread(heads.own, guild_id)
            model = own if own is not None else await asyncio.to_thread(heads.default)
            name = "the default model"
            if own is not None:
                folder = server_folder(self.bot.settings.data_dir, guild_id)
                name = f"version {await asyncio.to_thread(current_head_version, folder)}"
            answers = await self.fitter.holdout_answers(held, model)
            if answers is None:
                raise UserFacingError("None of this server's held-out images can be read.")
            files, shown = await picture_files(
                self.fitter, answers, 0, f"{name} on this server's held-out images", guild_id
            )
        text = f"**This server's model ({name})**: " + summary(
            answers, 0, shown, self.fitter.class_names
        )
        await ctx.reply(text, files=files, mention_author=False)
