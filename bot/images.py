"""Find the image a user means, and download it safely.

The order is the one users expect: the command's own attachments; the message the command replies
to; else the most recent message with an image in the channel's recent history (people post the
picture first, then type the command). Only attachments Discord delivered with a message are
fetched, never links typed in message text, and the size is checked before and while downloading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath

import aiohttp
import discord
from discord.ext import commands

from bot.errors import DownloadFailed, NoImageFound, UserFacingError
from model.preprocess import IMAGE_TYPES, ImageError, ImageTooLargeError
from model.worker import WorkerBusy

log = logging.getLogger(__name__)

CHUNK = 64 * 1024


def looks_like_image(attachment: discord.Attachment) -> bool:
    """Whether Discord's content type or the file name says this attachment is an image."""
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    if content_type.startswith("image/"):
        return True
    return PurePosixPath(attachment.filename.lower()).suffix in IMAGE_TYPES


async def find_target(message: discord.Message, history_limit: int) -> discord.Message:
    """The message whose attachments the command `message` is about."""
    if message.attachments:
        return message
    reference = message.reference
    if reference is not None and reference.message_id is not None:
        target = reference.resolved
        if not isinstance(target, discord.Message):
            try:
                target = await message.channel.fetch_message(reference.message_id)
            except (discord.NotFound, discord.Forbidden):
                raise NoImageFound(
                    "I can't see the message you replied to. Attach the image to your command."
                ) from None
        if not target.attachments:
            raise NoImageFound(
                "The message you replied to has no image. Reply to a message with an image "
                "attached, or attach one to your command."
            )
        return target
    if history_limit > 0:
        me = message.guild.me if message.guild else None
        if me is not None and not message.channel.permissions_for(me).read_message_history:
            # Discord answers an empty history then, not an error: ask, do not guess.
            raise _no_history(message)
        try:
            async for earlier in message.channel.history(limit=history_limit, before=message):
                if me is not None and earlier.author.id == me.id:
                    continue  # never our own feature maps
                if any(looks_like_image(attachment) for attachment in earlier.attachments):
                    return earlier
        except discord.Forbidden:
            raise _no_history(message) from None
    raise NoImageFound(
        "I found no image. Attach one to your command, reply to a message with an image, "
        "or post the image first and then type the command."
    )


def _no_history(message: discord.Message) -> NoImageFound:
    log.warning(
        "no Read Message History permission in channel %s: cannot look for the latest image "
        "(give the bot that permission there)",
        getattr(message.channel, "id", "?"),
    )
    return NoImageFound(
        "I can't read this channel's history (I need the Read Message History permission). "
        "Attach the image to your command, or reply to it."
    )


async def command_images(
    ctx: commands.Context, option: discord.Attachment | None, history_limit: int, limit: int
) -> tuple[list[discord.Attachment], discord.Message | None]:
    """The attachments a command works on, and the message that holds them: a slash command's
    image option (in no message: None), else those `find_target` finds for the command."""
    if ctx.interaction is not None and option is not None:
        return [option], None
    target = await find_target(ctx.message, history_limit)
    return target_attachments(ctx.message, target, limit), target


def target_attachments(
    command: discord.Message, target: discord.Message, limit: int
) -> list[discord.Attachment]:
    """The attachments to judge: all of them if the user pointed at the message, else the images."""
    attachments = list(target.attachments)
    if target.id != command.id and (command.reference is None):
        attachments = [a for a in attachments if looks_like_image(a)]
    return attachments[:limit]


async def download(
    session: aiohttp.ClientSession, attachment: discord.Attachment, max_bytes: int, timeout: float
) -> bytes:
    """The attachment's bytes, refusing files over `max_bytes` before and while reading."""
    if attachment.size > max_bytes:
        raise ImageTooLargeError(_too_large(attachment.size, max_bytes))
    try:
        async with session.get(
            attachment.url, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if response.status != 200:
                log.warning(
                    "attachment %s: the download answered HTTP %s", attachment.id, response.status
                )
                raise DownloadFailed(
                    "I couldn't download that image (Discord answered "
                    f"{response.status}). Try posting it again."
                )
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise ImageTooLargeError(_too_large(declared, max_bytes))
            data = bytearray()
            async for chunk in response.content.iter_chunked(CHUNK):
                data += chunk
                if len(data) > max_bytes:
                    raise ImageTooLargeError(_too_large(len(data), max_bytes, at_least=True))
            return bytes(data)
    except TimeoutError:
        raise DownloadFailed("Downloading that image took too long. Try again.") from None
    except aiohttp.ClientError as error:
        log.warning("attachment %s: the download failed: %s", attachment.id, _short(repr(error)))
        raise DownloadFailed("I couldn't download that image. Try posting it again.") from None


def _short(text: str, limit: int = 200) -> str:
    """At most `limit` characters of `text` for a log line (errors can carry whole bodies)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    prefix = "more than " if at_least else ""
    return (
        f"That file is {prefix}{size / 1048576:.1f} MB; I take images up to "
        f"{limit / 1048576:.1f} MB."
    )


class ByteBudget:
    """The bytes of downloads the whole bot may hold at once (asyncio: one thread, no lock).

    A command reserves what its attachments say they weigh before downloading any; past the
    limit it is refused at once with the "busy" reply, instead of holding 100 MB per command
    in a burst. A command alone may always go, whatever it weighs (within MAX_IMAGE_BYTES
    per file).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    @contextlib.contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        if self.held and self.held + size > self.limit:
            raise WorkerBusy()
        self.held += size
        try:
            yield
        finally:
            self.held -= size


def declared_bytes(attachments: Sequence[discord.Attachment], max_bytes: int) -> int:
    """What downloading `attachments` may hold: their sizes, each at most `max_bytes`."""
    return sum(min(max(attachment.size, 0), max_bytes) for attachment in attachments)


async def gather_bytes(
    session: aiohttp.ClientSession,
    attachments: list[discord.Attachment],
    max_bytes: int,
    timeout: float,
) -> list[bytes | Exception]:
    """Download every attachment concurrently; a failure the user can fix takes the place of its
    bytes, anything else (a bug) is raised."""
    results = await asyncio.gather(
        *(download(session, a, max_bytes, timeout) for a in attachments), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(
            result, UserFacingError | ImageError
        ):
            raise result
    return list(results)  # type: ignore[arg-type]
