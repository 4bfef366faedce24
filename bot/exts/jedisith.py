"""`!jedisith` and `!features`, their slash-command twins, and the "Jedi or Sith?" message menu.

A verdict is given by the model of the server the command is typed in (its head on the shared
network, `bot.server_models`), or the default model: in a DM, a user install, or a server that has
no model of its own. `!features` draws the shared network's maps, which every model shares.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import DEFAULT_FILE_SIZE_LIMIT_BYTES  # what Discord takes in a DM

from bot import asking, cards, replies, server_settings
from bot.checks import answers_in, answers_interaction
from bot.client import reply_to
from bot.errors import NoImageFound
from bot.feedback import Judged, vote_buttons
from bot.images import (
    command_images,
    declared_bytes,
    download,
    gather_bytes,
    looks_like_image,
    seems_readable,
)
from bot.limits import VerdictCooldown
from model.architecture import CONV_LAYERS
from model.runtime import Prediction

if TYPE_CHECKING:
    from bot.client import JediSithBot

log = logging.getLogger(__name__)

LAYERS = len(CONV_LAYERS)
MAX_FILES_PER_MESSAGE = 10
ALL_LAYERS = commands.parameter(default=None, displayed_default="all five")  # !features' layer
# Where /jedisith, /features and the menu work: installed to a server or to a person's account,
# in servers (the bot a member or not), DMs and group DMs.
ANYWHERE_INSTALLS = app_commands.AppInstallationType(guild=True, user=True)
ANYWHERE_CONTEXTS = app_commands.AppCommandContext(
    guild=True, dm_channel=True, private_channel=True
)
# Under a verdict asked through a user install (a DM, a group DM, a server without the bot).
NO_LEARNING_HERE = (
    "-# No votes here: I learn only in servers that installed me, where a moderator turns "
    "collection on."
)


@dataclass
class Judgement:
    """What `Verdicts.classify_attachments` found: the reply of `bot.replies` (a line per
    image, then its notes), the images that got a verdict, and per image its card's parts."""

    text: str
    judged: list[Judged]
    cards: list[cards.Card]
    judged_at: list[Judged | None]  # per card, the image its buttons are about


@dataclass
class Reply:
    """A verdict reply: the plain text and its buttons, or its cards (`bot.cards`)."""

    text: str
    view: discord.ui.View | None = None
    layouts: list[discord.ui.LayoutView] = field(default_factory=list)

    def messages(self) -> list[dict[str, Any]]:
        """The keyword arguments of each message to send, in order."""
        if self.layouts:
            return [{"view": layout} for layout in self.layouts]
        return [{"content": self.text, **_with(self.view)}]


class Verdicts(commands.Cog, name="Jedi or Sith"):
    """Tell Jedi from Sith, and show what the network sees."""

    def __init__(self, bot: JediSithBot) -> None:
        self.bot = bot
        settings = bot.settings
        self._cooldown = VerdictCooldown(settings)
        self._menu = app_commands.ContextMenu(
            name="Jedi or Sith?",
            callback=self.menu_classify,
            allowed_installs=ANYWHERE_INSTALLS,
            allowed_contexts=ANYWHERE_CONTEXTS,
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self._menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self._menu.name, type=self._menu.type)

    # -- checks shared by every command ------------------------------------------------------

    def _retry_after(self, user: discord.abc.User) -> float:
        """Seconds until `user` may run another command (0: now); counts this attempt."""
        return self._cooldown.retry_after(user.id)

    async def cog_check(self, ctx: commands.Context) -> bool:  # type: ignore[override]
        return await answers_in(self.bot, ctx.guild, ctx.channel.id)

    async def cog_before_invoke(self, ctx: commands.Context) -> None:  # type: ignore[override]
        # Not in cog_check: !help runs the checks to decide what to list.
        if ctx.interaction is not None:
            return  # a slash command's turn was counted in interaction_check
        retry = self._retry_after(ctx.author)
        if retry:
            cooldown = commands.Cooldown(
                self.bot.settings.cooldown_rate, self.bot.settings.cooldown_seconds
            )
            raise commands.CommandOnCooldown(cooldown, retry, commands.BucketType.user)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        if not await answers_interaction(self.bot, interaction):
            return False
        retry = self._retry_after(interaction.user)
        if retry:
            await interaction.response.send_message(
                f"Slow down! Try again in {retry:.0f} s.", ephemeral=True
            )
            return False
        return True

    # -- commands (`!name` and `/name`) ------------------------------------------------------

    @commands.hybrid_command(
        name="jedisith", aliases=["js"], description="Jedi or Sith? Judge an image."
    )
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(image="The image to judge")
    async def jedisith(
        self, ctx: commands.Context, image: discord.Attachment | None = None
    ) -> None:
        """Jedi or Sith? Judges the image on your message, on the message you reply to, or
        the last image posted in the channel. Every image in that message gets a verdict.

        The score is the network's probability of Sith (0 = Jedi, 1 = Sith).
        """
        with self.bot.working(reply_to(ctx)):
            async with ctx.typing():
                settings = self.bot.settings
                attachments, target = await command_images(
                    ctx, image, settings.history_limit, settings.max_images
                )
                served = _served_guild(ctx.interaction, ctx.guild)
                reply = await self.verdict(
                    attachments,
                    target,
                    ctx.guild,
                    served,
                    ctx.channel.id,
                    installed=_installed_here(ctx.interaction),
                )
            for message in reply.messages():  # cards past one message's limits: more replies
                await ctx.reply(mention_author=False, **message)

    @commands.hybrid_command(
        name="features", aliases=["maps"], description="Show what the network sees in an image."
    )
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(image="The image to look at", layer="Only this convolution (1-5)")
    async def features(
        self,
        ctx: commands.Context,
        image: discord.Attachment | None = None,
        layer: commands.Range[int, 1, LAYERS] = ALL_LAYERS,
    ) -> None:
        """Shows what the network sees: the feature maps of its five convolutions for the
        image (found as for !jedisith). Give a layer, 1 to 5, to see only that one.
        """
        layers = [layer] if layer else None
        with self.bot.working(reply_to(ctx)):
            async with ctx.typing():
                attachments, _ = await command_images(
                    ctx, image, self.bot.settings.history_limit, self.bot.settings.max_images
                )
                drawn = _attachment_to_draw(attachments)  # one image of the message
                text, files = await self.feature_files(drawn, layers, ctx.guild)
            for index, group in enumerate(_group_files(files, _upload_limit(ctx))):
                caption = text if index == 0 else ""
                if self.bot.settings.verdict_cards:  # a media gallery of the maps
                    names = [file.filename for file in group]
                    sent: dict[str, Any] = {"view": cards.gallery(caption, names)}
                else:
                    sent = {"content": caption or None}
                if index == 0:
                    await ctx.reply(files=group, mention_author=False, **sent)
                else:
                    await ctx.send(files=group, **sent)

    @commands.Cog.listener("on_message")
    async def judge_mention(self, message: discord.Message) -> None:
        """`@JediSith` first in a message with an image, or in a reply, runs !jedisith: a
        message that mentions the bot keeps its content without the Message Content intent."""
        user = self.bot.user
        if message.author.bot or user is None or not self.bot.accepting:
            return
        if not (message.attachments or message.reference):
            return
        mention = next(
            (m for m in (f"<@{user.id}>", f"<@!{user.id}>") if message.content.startswith(m)),
            None,
        )
        if mention is None:
            return
        ctx = await self.bot.get_context(message)
        if ctx.command is not None:  # `@JediSith features`: the command runs as it is
            return
        ctx.command, ctx.prefix, ctx.invoked_with = self.jedisith, mention, self.jedisith.name
        await self.bot.invoke(ctx)

    async def menu_classify(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        """Judge every image of the message the menu was opened on."""
        if not await self.interaction_check(interaction):
            return
        if not message.attachments:
            await interaction.response.send_message(
                "That message has no image to judge.", ephemeral=True
            )
            return
        with self.bot.working(interaction.followup.send):
            await interaction.response.defer(thinking=True)
            attachments = message.attachments[: self.bot.settings.max_images]
            served = _served_guild(interaction, interaction.guild)
            reply = await self.verdict(
                attachments,
                message,
                interaction.guild,
                served,
                interaction.channel_id,
                installed=_installed_here(interaction),
            )
            for sent in reply.messages():
                await interaction.followup.send(**sent)

    # -- the work ------------------------------------------------------------------------------

    async def verdict(
        self,
        attachments: Sequence[discord.Attachment],
        message: discord.Message | None,
        guild: discord.Guild | None,
        served: int | None = None,
        channel_id: int | None = None,
        *,
        installed: bool = True,
    ) -> Reply:
        """The verdict reply on `attachments` (of `message`; None: a slash command's), by the
        model of the server `served` (None: the default model), and, where the server collects
        feedback, its buttons, asking for a label when unsure (`bot.asking`): as cards with
        VERDICT_CARDS, else as text. Asked through a user install (not `installed`), a line
        says that the learning loop is not available there."""
        total = len(message.attachments) if message is not None else len(attachments)
        judgement = await self.classify_attachments(attachments, total, message, served, guild)
        text, judged = judgement.text, judgement.judged
        feedback, view, notes = self.bot.feedback, None, ""
        message_id = message.id if message is not None else 0
        if feedback is not None:
            notes, view = await feedback.verdict_extras(guild, judged, message_id)
            if view is not None:  # collection is on here
                asked = await asking.ask_line(self.bot, guild, channel_id, judged)
                notes = f"{asked}\n{notes}" if asked else notes
            if not installed:
                notes = NO_LEARNING_HERE
            text = f"{text}\n{notes}" if notes else text
        explainer = getattr(self.bot, "why", None)  # bot.exts.why: a Why? button per image
        if not self.bot.settings.verdict_cards:
            if explainer is not None:
                view = explainer.verdict_view(judged, message_id, view)
            return Reply(text, view)
        server = await server_settings.of(self.bot).get(guild.id if guild else None)
        many = len(judged) > 1  # buttons numbered as the images, as under the plain text
        for card, item in zip(judgement.cards, judgement.judged_at, strict=True):
            if item is None:
                continue
            if view is not None and feedback is not None:
                card.buttons += vote_buttons(
                    item,
                    message_id,
                    feedback.class_names,
                    server.uncertain_band,
                    server.ood_policy,
                    numbered=many,
                )
            if explainer is not None:
                card.buttons.append(explainer.card_button(item, message_id, many))
        lines = text.splitlines()
        notes = "\n".join(lines[len(judgement.cards) :])
        return Reply(text, view, cards.layouts(judgement.cards, notes))

    async def classify_attachments(
        self,
        attachments: Sequence[discord.Attachment],
        total: int,
        message: discord.Message | None = None,
        served: int | None = None,
        guild: discord.Guild | None = None,
    ) -> Judgement:
        """Download, decode and classify every attachment by the model of the server `served`;
        one reply line each, and the images that got a verdict (their index among `message`'s
        attachments)."""
        settings = self.bot.settings
        head = await asyncio.to_thread(self.bot.heads.get, served)
        weight = declared_bytes(attachments, settings.max_image_bytes)
        with self.bot.downloads.reserve(weight):  # the busy reply at once, past the budget
            downloads = await gather_bytes(
                self.bot.http_session,
                list(attachments),
                settings.max_image_bytes,
                settings.download_timeout,
                resized=await self._resized(guild),
            )
            # Same order and length as `downloads`.
            outcomes = await self.bot.worker.classify_bytes(downloads, head=head)
        results = [
            (attachment.filename, outcome)
            for attachment, outcome in zip(attachments, outcomes, strict=True)
        ]
        server = await server_settings.of(self.bot).get(guild.id if guild else None)
        band, policy = server.uncertain_band, server.ood_policy
        text = replies.classify_reply(
            results, band, skipped=total - len(attachments), policy=policy
        )
        positions = {a.id: i for i, a in enumerate(message.attachments)} if message else {}
        judged_at: list[Judged | None] = []
        verdict_cards = []
        for index, (attachment, data, outcome, line) in enumerate(
            zip(attachments, downloads, outcomes, text.splitlines(), strict=False)
        ):
            judged = None
            if isinstance(outcome, Prediction) and isinstance(data, bytes):
                judged = Judged(positions.get(attachment.id, index), data, outcome)
            judged_at.append(judged)
            prediction = outcome if isinstance(outcome, Prediction) else None
            thumbnail = attachment.url if prediction is not None else None
            verdict_cards.append(
                cards.Card(line, cards.colour(prediction, band, policy), thumbnail)
            )
        judged = [item for item in judged_at if item is not None]
        return Judgement(text, judged, verdict_cards, judged_at)

    async def _resized(self, guild: discord.Guild | None) -> bool:
        """Whether a verdict downloads large images resized: not where the server collects
        feedback (its buttons give the dataset the bytes judged, which must be the original)."""
        if not self.bot.settings.resized_downloads:
            return False
        feedback = self.bot.feedback
        return feedback is None or not await feedback.collecting(guild)

    async def feature_files(
        self,
        attachment: discord.Attachment,
        layers: list[int] | None,
        guild: discord.Guild | None = None,
    ) -> tuple[str, list[discord.File]]:
        settings = self.bot.settings
        worker = self.bot.worker
        with self.bot.downloads.reserve(declared_bytes([attachment], settings.max_image_bytes)):
            blob = await download(
                self.bot.http_session,
                attachment,
                settings.max_image_bytes,
                settings.download_timeout,
                resized=settings.resized_downloads,
            )
            image = await worker.decode(blob)
        maps = await worker.features(image)
        policy = (await server_settings.of(self.bot).get(guild.id if guild else None)).ood_policy
        title = replies.features_title(maps.prediction, policy)
        rendered = await worker.render(maps, layers, title)
        files = [discord.File(io.BytesIO(data), filename=name) for name, data in rendered]
        caption = replies.features_caption(attachment.filename, maps.prediction, layers, policy)
        return caption, files


def _with(view: discord.ui.View | None) -> dict[str, discord.ui.View]:
    """`view=` for a send, or nothing: discord.py refuses `view=None` on some sends."""
    return {"view": view} if view is not None else {}


def _served_guild(
    interaction: discord.Interaction | None, guild: discord.Guild | None
) -> int | None:
    """The server whose model judges: where the command was typed, if the bot is installed
    there (an interaction of a user install in a server is served the default model)."""
    if interaction is not None:
        return interaction.guild_id if interaction.is_guild_integration() else None
    return guild.id if guild is not None else None


def _installed_here(interaction: discord.Interaction | None) -> bool:
    """Whether the bot answers as installed where it is asked: a message, or an interaction
    of its install to the server (not to the person's account)."""
    return interaction is None or interaction.is_guild_integration()


def _upload_limit(ctx: commands.Context) -> int:
    """The most bytes one message of the bot may carry where `ctx` was invoked."""
    if ctx.interaction is not None:
        return ctx.interaction.filesize_limit
    return ctx.guild.filesize_limit if ctx.guild else DEFAULT_FILE_SIZE_LIMIT_BYTES


def _attachment_to_draw(attachments: list[discord.Attachment]) -> discord.Attachment:
    """The first attachment that Discord measured as an image, else the first that looks like
    one; else the first attachment, whatever it is, so that decoding it explains to the user
    what is wrong with it."""
    for test in (seems_readable, looks_like_image):
        for attachment in attachments:
            if test(attachment):
                return attachment
    if attachments:
        return attachments[0]
    raise NoImageFound("I found no image to draw.")


def _group_files(files: list[discord.File], limit: int) -> list[list[discord.File]]:
    """Split files into messages of at most 10 files and `limit` bytes each."""
    groups: list[list[discord.File]] = [[]]
    size = 0
    for file in files:
        length = file.fp.getbuffer().nbytes  # type: ignore[attr-defined]
        if groups[-1] and (size + length > limit or len(groups[-1]) >= MAX_FILES_PER_MESSAGE):
            groups.append([])
            size = 0
        groups[-1].append(file)
        size += length
    return [group for group in groups if group]


async def setup(bot: JediSithBot) -> None:
    await bot.add_cog(Verdicts(bot))
