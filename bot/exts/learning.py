"""Learning from the server: the feedback buttons, `!teach`, `!dataset` and `!forget`.

Nothing is kept in a server until someone with Manage Server types `!dataset collect on` there;
until then no buttons are shown and `!teach` says how to turn collection on. What is kept: the
image (once, by its SHA-256, under DATA_DIR), who posted it, and per vote who gave which label,
where and when. `!forget` deletes a person's votes and the images they posted, whoever labelled
them; deleting the message that carried an image takes it out of the server unless a moderator
labelled it (docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot import asking, server_settings
from bot.checks import answers_in, is_moderator, manager_only
from bot.client import reply_to
from bot.confirm import Confirm
from bot.converters import on_or_off
from bot.errors import NoImageFound, UserFacingError, scrub_paths
from bot.feedback import (
    Judged,
    RecentImages,
    Vote,
    VoteButton,
    feedback_view,
    fetch_clicked,
)
from bot.images import (
    command_images,
    declared_bytes,
    gather_bytes,
)
from bot.learning_words import (
    Taught,
    describe_given,
    describe_neither,
    describe_summary,
    describe_usage,
    forget_question,
    forgotten_text,
    retrain_needs,
    teach_summary,
    thanks,
    user_line,
)
from bot.replies import RESTARTING
from dataset import (
    DailyQuota,
    DatasetError,
    DatasetStore,
    Quota,
    QuotaReached,
)
from dataset.labels import NEITHER
from dataset.records import MB
from model.worker import WorkerBusy

if TYPE_CHECKING:
    from bot.client import JediSithBot

log = logging.getLogger(__name__)
T = TypeVar("T")

COLLECTING_NOTE = (
    "-# Am I right? Your answer and the image are kept to train me "
    "(`{p}dataset` says what is kept; `{p}forget` deletes what you gave)."
)
NOT_COLLECTING = (
    "Collection is off in this server, so I keep no images or labels here. Someone with the "
    "Manage Server permission can turn it on with `{p}dataset collect on`."
)
NO_DM = "I learn only from servers, where a moderator can turn collection on."
ROOM = (
    "`{p}forget` deletes what you gave in this server, and with it the images nobody else here "
    "labelled; the bot's operator sets the quota."
)
SHARING_ON = (
    "Sharing is **on**: this server's labels may also train the operator's default model, the "
    "one served to every server without a model of its own. Its images and votes stay this "
    "server's; no other server sees them."
)
SHARING_OFF = (
    "Sharing is **off**: this server's labels train only this server's models; the default "
    "model's next training leaves them out."
)


class Learning(commands.Cog, name="Learning"):
    """Teach me: label images, see what I have learned from, and take your part back."""

    def __init__(self, bot: JediSithBot) -> None:
        self.bot = bot
        self.recent = RecentImages(bot.settings.recent_image_bytes)
        # The store's work (the image check, a bounded decode, and the writes): STORE_THREADS
        # at a time, however many commands and clicks come at once.
        self.store_pool = ThreadPoolExecutor(bot.settings.store_threads, thread_name_prefix="store")

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(VoteButton)
        self.bot.feedback = self

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(VoteButton)
        if self.bot.feedback is self:
            self.bot.feedback = None
        self.store_pool.shutdown(wait=False, cancel_futures=True)

    async def in_store(self, work: Callable[..., T], /, *args, **kwargs) -> T:
        """`work(*args, **kwargs)` in the store's bounded pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.store_pool, partial(work, *args, **kwargs))

    async def cog_check(self, ctx: commands.Context) -> bool:  # type: ignore[override]
        return await answers_in(self.bot, ctx.guild, ctx.channel.id)

    @property
    def store(self) -> DatasetStore:
        store = self.bot.dataset
        if store is None:
            raise UserFacingError("Learning is not set up on this bot (it has no dataset).")
        return store

    @property
    def quota(self) -> Quota:
        """What one server may keep (SERVER_IMAGE_QUOTA, SERVER_IMAGE_QUOTA_MB), and what a
        member and a server may add in a day (MEMBER_IMAGES_PER_DAY ... SERVER_MB_PER_DAY)."""
        s = self.bot.settings
        daily = DailyQuota(
            s.member_images_per_day,
            round(s.member_mb_per_day * MB),
            s.server_images_per_day,
            round(s.server_mb_per_day * MB),
        )
        return Quota(s.server_image_quota, round(s.server_image_quota_mb * MB), daily)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The labels people can give, in one order everywhere (the model's may differ)."""
        return tuple(sorted(self.bot.worker.classifier.info.class_names))

    async def collecting(self, guild: discord.Guild | None) -> bool:
        if guild is None or self.bot.dataset is None:
            return False
        return await asyncio.to_thread(self.bot.dataset.collecting, guild.id)

    # -- the buttons under a verdict -----------------------------------------------------------

    async def verdict_extras(
        self, guild: discord.Guild | None, judged: Sequence[Judged], message_id: int
    ) -> tuple[str, discord.ui.View | None]:
        """The note and the buttons a verdict reply gets: none where collection is off."""
        if not judged or not await self.collecting(guild):
            return "", None
        for item in judged:
            self.recent.add(item.data)
        server = await server_settings.of(self.bot).get(guild.id if guild else None)
        view = feedback_view(
            judged, message_id, self.class_names, server.uncertain_band, server.ood_policy
        )
        return COLLECTING_NOTE.format(p=self.bot.settings.command_prefix), view

    async def record_click(self, interaction: discord.Interaction, vote: Vote) -> None:
        prefix = self.bot.settings.command_prefix
        if not self.bot.accepting:
            await interaction.response.send_message(RESTARTING, ephemeral=True)
            return
        if interaction.guild is None or not await self.collecting(interaction.guild):
            await interaction.response.send_message(NOT_COLLECTING.format(p=prefix), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            data, poster = await self._clicked_image(interaction, vote)
            _, outcome = await self.in_store(
                self.store.add_image_and_vote,
                data,
                guild_id=interaction.guild.id,
                user_id=interaction.user.id,
                label=vote.label,
                source="button",
                moderator=is_moderator(interaction.user),
                channel_id=interaction.channel_id,
                message_id=vote.message_id or None,
                quota=self.quota,
                poster_id=poster,
            )
        except QuotaReached as error:
            await interaction.followup.send(f"{error} {ROOM.format(p=prefix)}", ephemeral=True)
            return
        except (UserFacingError, DatasetError, WorkerBusy) as error:
            await interaction.followup.send(scrub_paths(str(error)), ephemeral=True)
            return
        await interaction.followup.send(thanks(outcome, vote.label, prefix), ephemeral=True)

    async def _clicked_image(
        self, interaction: discord.Interaction, vote: Vote
    ) -> tuple[bytes, int | None]:
        """The bytes of the image a button is about, checked against its hash, and who posted
        it (None when the message that carried it is gone)."""
        data = self.recent.get(vote.sha16)
        if data is not None:
            return data, await self._poster(interaction, vote)
        gone = UserFacingError(
            "I no longer have that image. Post it again and use `"
            f"{self.bot.settings.command_prefix}teach`."
        )
        data, message = await fetch_clicked(
            self.bot, interaction.channel, vote.message_id, vote.index, vote.sha16, gone
        )
        self.recent.add(data)
        return data, message.author.id

    async def _poster(self, interaction: discord.Interaction, vote: Vote) -> int | None:
        """The author of the message that carried the clicked image: for a slash command's image
        (in no message), who ran the command; else the message's author, from the cache or
        fetched."""
        if not vote.message_id:
            metadata = interaction.message.interaction_metadata if interaction.message else None
            return metadata.user.id if metadata is not None else None
        cached = discord.utils.get(self.bot.cached_messages, id=vote.message_id)
        if cached is not None:
            return cached.author.id
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            return None
        try:
            return (await channel.fetch_message(vote.message_id)).author.id
        except (discord.NotFound, discord.Forbidden):
            return None

    # -- !teach -----------------------------------------------------------------------------------

    @commands.hybrid_command(name="teach", description="Teach me what an image shows.")
    @app_commands.describe(label="What the image shows", image="The image")
    @app_commands.choices(
        label=[
            app_commands.Choice(name="Jedi", value="jedi"),
            app_commands.Choice(name="Sith", value="sith"),
            app_commands.Choice(name="Neither", value=NEITHER),
        ]
    )
    async def teach(
        self, ctx: commands.Context, label: str, image: discord.Attachment | None = None
    ) -> None:
        """Teach me what an image shows: `!teach jedi`, `!teach sith` or `!teach neither` (an
        image I should refuse) on your attachments, on the message you reply to, or on the last
        image posted. Every image of that message gets your label. Collection must be on in the
        server (`!dataset collect on`).
        """
        label = self._label(label)
        settings = self.bot.settings
        with self.bot.working(reply_to(ctx)):
            if not await self._may_collect(ctx.guild):
                text = self._not_collecting(ctx.guild)
                await ctx.reply(text, mention_author=False, ephemeral=True)
                return
            async with ctx.typing():
                attachments, target = await command_images(
                    ctx, image, settings.history_limit, settings.max_images
                )
                text = await self.teach_attachments(
                    attachments, target, label, ctx.author, ctx.guild
                )
            await ctx.reply(text, mention_author=False)

    async def teach_attachments(
        self,
        attachments: Sequence[discord.Attachment],
        message: discord.Message | None,
        label: str,
        user: discord.abc.User,
        guild: discord.Guild | None,
    ) -> str:
        """Download, check and keep every attachment (of `message`, None for a slash command's)
        with `label`, within the download budget as a verdict is: one summary line, and what
        each class still needs before a retrain."""
        if not attachments:
            raise NoImageFound("I found no image to learn from.")
        weight = declared_bytes(attachments, self.bot.settings.max_image_bytes)
        with self.bot.downloads.reserve(weight):  # the busy reply at once, past the budget
            taught, full = await self._teach_each(attachments, message, label, user, guild)
        prefix = self.bot.settings.command_prefix
        lines = [teach_summary(taught, label)]
        if full:
            lines.append("-# " + ROOM.format(p=prefix))
        if guild is not None and any(t.outcome for t in taught):
            summary = await self.in_store(self.store.summary, guild.id)
            minimum = self.bot.settings.retrain_min_images
            lines.append(retrain_needs(summary.counts, self.class_names, minimum, prefix))
        return "\n".join(lines)

    async def _teach_each(
        self,
        attachments: Sequence[discord.Attachment],
        message: discord.Message | None,
        label: str,
        user: discord.abc.User,
        guild: discord.Guild | None,
    ) -> tuple[list[Taught], bool]:
        """Each attachment kept or refused, and whether the server's quota refused one."""
        settings = self.bot.settings
        downloads = await gather_bytes(
            self.bot.http_session,
            list(attachments),
            settings.max_image_bytes,
            settings.download_timeout,
        )
        taught, full = [], False
        for attachment, data in zip(attachments, downloads, strict=True):
            name = f"`{attachment.filename.replace('`', chr(39))[:80]}`"
            if isinstance(data, Exception):
                taught.append(Taught(name, refused=str(data)))
                continue
            try:
                await self.bot.worker.decode(data)  # only what the bot could judge is kept
                record, outcome = await self.in_store(
                    self.store.add_image_and_vote,
                    data,
                    guild_id=guild.id if guild else None,
                    user_id=user.id,
                    label=label,
                    source="teach",
                    moderator=is_moderator(user),
                    channel_id=message.channel.id if message else None,
                    message_id=message.id if message else None,
                    filename=attachment.filename,
                    quota=self.quota,
                    poster_id=message.author.id if message else user.id,
                )
            except Exception as error:
                said = user_line(error)  # not `message`: the next file still needs it
                if said is None:
                    raise
                full = full or isinstance(error, QuotaReached)
                taught.append(Taught(name, refused=said))
                continue
            self.recent.add(data)
            taught.append(Taught(name, outcome, record.new))
        return taught, full

    # -- !dataset, !forget ----------------------------------------------------------------------

    @commands.group(name="dataset", invoke_without_command=True)
    async def dataset(self, ctx: commands.Context) -> None:
        """What I have learned from in this server: images per class, the holdout, conflicts,
        contributors; in a DM, what you gave. `!dataset collect on|off` (Manage Server) turns
        collection on or off in this server; `!dataset share on|off` lends its labels to the
        default model.
        """
        if ctx.guild is None:
            given = await self.in_store(self.store.user_summary, ctx.author.id)
            await ctx.reply(describe_given(given, ctx.clean_prefix), mention_author=False)
            return
        summary = await self.in_store(self.store.summary, ctx.guild.id)
        usage = await self.in_store(self.store.usage, ctx.guild.id)
        collecting = await self.collecting(ctx.guild)
        async with ctx.typing():
            unsure = await asking.least_sure(self.bot, ctx.guild.id)
        text = describe_summary(
            summary,
            collecting,
            self.class_names,
            ctx.clean_prefix,
            minimum=self.bot.settings.retrain_min_images,
            unsure=unsure,
            min_voters=(await server_settings.of(self.bot).get(ctx.guild.id)).holdout_min_voters,
        )
        text = describe_neither(summary, text)
        await ctx.reply(f"{text}\n{describe_usage(usage, self.quota)}", mention_author=False)

    @dataset.command(name="collect")
    @manager_only("turn collection on or off")
    async def collect(self, ctx: commands.Context, switch: str) -> None:
        """Turn collection on or off in this server (Manage Server): `!dataset collect on`."""
        if ctx.guild is None:
            raise UserFacingError(NO_DM)
        on = on_or_off(switch)
        self.store  # noqa: B018 - raises the clear error when there is no dataset
        await server_settings.of(self.bot).update(ctx.guild.id, by=ctx.author.id, collecting=on)
        p = ctx.clean_prefix
        text = (
            "Collection is **on** in this server: verdicts get feedback buttons, and the images "
            f"people label (buttons or `{p}teach`) are kept with their labels to train me. "
            f"`{p}forget` deletes what a person gave; `{p}dataset collect off` stops collecting."
            if on
            else "Collection is **off** in this server: I keep no new images or labels here. "
            f"What was given stays until its givers use `{p}forget`."
        )
        await ctx.reply(text, mention_author=False)

    @dataset.command(name="share")
    @manager_only("turn sharing on or off")
    async def share(self, ctx: commands.Context, switch: str) -> None:
        """Lend this server's labels to the operator's default model, or stop (Manage
        Server): `!dataset share on`."""
        if ctx.guild is None:
            raise UserFacingError(NO_DM)
        on = on_or_off(switch)
        self.store  # noqa: B018 - raises the clear error when there is no dataset
        await server_settings.of(self.bot).update(ctx.guild.id, by=ctx.author.id, sharing=on)
        await ctx.reply(SHARING_ON if on else SHARING_OFF, mention_author=False)

    @commands.command(name="forget")
    async def forget(self, ctx: commands.Context) -> None:
        """Delete what you gave me in this server (in a DM: in every server): your labels, the
        images you posted (whoever labelled them), and the images nobody else holds. Asks you
        to confirm first."""
        guild_id = ctx.guild.id if ctx.guild else None
        self.store  # noqa: B018 - raises the clear error when there is no dataset
        where = "in this server" if ctx.guild else "in every server"
        prefix, author = ctx.clean_prefix, ctx.author.id

        async def forget_now() -> str:
            forgotten = await self.in_store(self.store.forget_user, author, guild_id)
            return forgotten_text(forgotten, where, prefix, in_server=guild_id is not None)

        view = Confirm(author, forget_now, label="Delete")
        question = forget_question(guild_id is not None)
        view.message = await ctx.reply(question, view=view, mention_author=False)

    # -- deleted messages -------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        """A deleted message takes the images it carried out of its server (docs/privacy.md)."""
        await self._forget_messages(payload.guild_id, [payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        await self._forget_messages(payload.guild_id, sorted(payload.message_ids))

    async def _forget_messages(self, guild_id: int | None, message_ids: list[int]) -> None:
        if guild_id is None or self.bot.dataset is None:
            return
        await self.in_store(self.bot.dataset.forget_messages, guild_id, message_ids)

    # -- helpers ----------------------------------------------------------------------------------

    def _label(self, label: str) -> str:
        value = label.strip().lower()
        if value not in (*self.class_names, NEITHER):
            names = ", ".join(f"`{name}`" for name in self.class_names) + f" or `{NEITHER}`"
            raise commands.BadArgument(f"The label must be {names}.")
        return value

    async def _may_collect(self, guild: discord.Guild | None) -> bool:
        self.store  # noqa: B018 - raises the clear error when there is no dataset
        return await self.collecting(guild)

    def _not_collecting(self, guild: discord.Guild | None) -> str:
        if guild is None:
            return NO_DM
        return NOT_COLLECTING.format(p=self.bot.settings.command_prefix)


async def setup(bot: JediSithBot) -> None:
    await bot.add_cog(Learning(bot))
