"""Why?: `!why`, `/why` and the Why? button under each verdict draw the image with a heatmap of
what decided its verdict (`model.explain`'s occlusion on the served network).

The image is found as `!jedisith` finds it, judged by the model its server is served, and drawn
in the render thread like `!features`. Heatmaps are kept per image (the SHA-256 of its bytes)
and model in a small in-memory memory, so a second click costs nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies, server_settings
from bot.checks import answers_in, answers_interaction
from bot.client import reply_to
from bot.errors import NoImageFound, UserFacingError, user_message
from bot.feedback import (
    Judged,
    RecentImages,
    WhyButton,
    add_why_buttons,
    fetch_clicked,
    why_button,
)
from bot.images import command_images, declared_bytes, download, looks_like_image
from model.bundle import TFLITE_FILE
from model.explain import Recent, from_scores, occluded_batch
from model.render import render_why

if TYPE_CHECKING:
    from bot.client import JediSithBot

log = logging.getLogger(__name__)

CACHE_SIZE = 32  # heatmaps kept (a PNG of about 100 KB each)
FILENAME = "why.png"


@dataclass(frozen=True)
class Drawn:
    """One explained image: its PNG and the line that goes with it."""

    png: bytes
    caption: str
    model: Any  # the head it was judged by, kept so its id is not reused while cached


class Why(commands.Cog, name="Why"):
    """Show what decided a verdict."""

    def __init__(self, bot: JediSithBot) -> None:
        self.bot = bot
        self.recent = RecentImages(bot.settings.recent_image_bytes)
        self.cache: Recent[tuple[str, str, int], Drawn] = Recent(CACHE_SIZE)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(WhyButton)
        self.bot.why = self  # type: ignore[attr-defined]

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(WhyButton)
        if getattr(self.bot, "why", None) is self:
            self.bot.why = None  # type: ignore[attr-defined]

    async def cog_check(self, ctx: commands.Context) -> bool:  # type: ignore[override]
        return await answers_in(self.bot, ctx.guild, ctx.channel.id)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        return await answers_interaction(self.bot, interaction)

    @commands.hybrid_command(name="why", description="Why that verdict? What decided it, drawn.")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(image="The image to explain")
    async def why(self, ctx: commands.Context, image: discord.Attachment | None = None) -> None:
        """Why that verdict? Draws the image (found as for !jedisith) with a heatmap of the
        regions that decided it: the hotter, the more hiding it changes the verdict."""
        with self.bot.working(reply_to(ctx)):
            async with ctx.typing():
                settings = self.bot.settings
                attachments, _ = await command_images(ctx, image, settings.history_limit, 1)
                attachment = _image_of(attachments)
                with self.bot.downloads.reserve(
                    declared_bytes([attachment], settings.max_image_bytes)
                ):
                    data = await download(
                        self.bot.http_session,
                        attachment,
                        settings.max_image_bytes,
                        settings.download_timeout,
                    )
                served = _served_guild(ctx.interaction, ctx.guild)
                drawn = await self.explain(data, served, ctx.guild)
            file = discord.File(io.BytesIO(drawn.png), filename=FILENAME)
            await ctx.reply(drawn.caption, file=file, mention_author=False)

    # -- the button ----------------------------------------------------------------------------

    def verdict_view(
        self, judged: Sequence[Judged], message_id: int, view: discord.ui.View | None
    ) -> discord.ui.View | None:
        """The verdict's buttons with a Why? button per image; remembers the images' bytes."""
        for item in judged:
            self.recent.add(item.data)
        return add_why_buttons(view, judged, message_id)

    def card_button(self, judged: Judged, message_id: int, numbered: bool = False) -> WhyButton:
        """The Why? button of one image's verdict card (`bot.cards`); remembers its bytes."""
        self.recent.add(judged.data)
        return why_button(judged, message_id, numbered)

    async def explain_click(
        self, interaction: discord.Interaction, message_id: int, index: int, digest: str
    ) -> None:
        """A click on Why?: the heatmap of the image it is under, to the clicker alone (as every
        click's answer)."""
        if not await self.interaction_check(interaction):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            data = await self._clicked_image(interaction, message_id, index, digest)
            served = _served_guild(interaction, interaction.guild)
            drawn = await self.explain(data, served, interaction.guild)
        except Exception as error:
            message = user_message(error)
            if message is None:
                log.exception("Why? failed")
                message = "Something went wrong drawing that; try `/why` on the image."
            await interaction.followup.send(message, ephemeral=True)
            return
        file = discord.File(io.BytesIO(drawn.png), filename=FILENAME)
        await interaction.followup.send(drawn.caption, file=file, ephemeral=True)

    async def _clicked_image(
        self, interaction: discord.Interaction, message_id: int, index: int, digest: str
    ) -> bytes:
        """The bytes of the image under the button: remembered, else the message's attachment
        (checked against the button's hash)."""
        data = self.recent.get(digest)
        if data is not None:
            return data
        gone = UserFacingError("I no longer have that image. Use `/why` on it.")
        data, _ = await fetch_clicked(
            self.bot, interaction.channel, message_id, index, digest, gone
        )
        self.recent.add(data)
        return data

    # -- the work ------------------------------------------------------------------------------

    async def explain(self, data: bytes, served: int | None, guild: discord.Guild | None) -> Drawn:
        """The heatmap of `data`'s verdict by the model the server `served` is served: the
        occluded copies in one batch on the worker, drawn in its render thread; cached."""
        worker = self.bot.worker
        head = await asyncio.to_thread(self.bot.heads.get, served)
        network = worker.classifier.info.files.get(TFLITE_FILE, "")
        key = (hashlib.sha256(data).hexdigest(), network, id(head))
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        image = await worker.decode(data)
        predictions = await worker.classify(occluded_batch(image), head=head)
        explanation = from_scores([p.score for p in predictions])
        verdict = predictions[0]
        policy = (await server_settings.of(self.bot).get(guild.id if guild else None)).ood_policy
        title = replies.features_title(verdict, policy)
        png = await worker.draw(render_why, image, explanation.heatmap(image.shape[:2]), title)
        caption = (
            f"Why {verdict.label.capitalize()} ({verdict.score:.3f})? The hotter a region, the "
            "more hiding it moves the verdict."
        )
        drawn = Drawn(png, caption, head)
        self.cache.put(key, drawn)
        return drawn


def _image_of(attachments: Sequence[discord.Attachment]) -> discord.Attachment:
    """The first attachment that looks like an image, else the first (its decode says why)."""
    for attachment in attachments:
        if looks_like_image(attachment):
            return attachment
    if attachments:
        return attachments[0]
    raise NoImageFound("I found no image to explain.")


def _served_guild(
    interaction: discord.Interaction | None, guild: discord.Guild | None
) -> int | None:
    """The server whose model judges (as for `!jedisith`): None in a DM or a user install."""
    if interaction is not None:
        return interaction.guild_id if interaction.is_guild_integration() else None
    return guild.id if guild is not None else None


async def setup(bot: JediSithBot) -> None:
    await bot.add_cog(Why(bot))
