"""Find the image a user means, and download it safely.

The order is the one users expect: the command's own attachments; the message the command replies
to; else the most recent message with an image in the channel's recent history (people post the
picture first, then type the command). Only attachments Discord delivered with a message are
fetched, never links typed in message text, and the size is checked before and while downloading.
Verdicts ask Discord's media proxy for large images at the size the network needs
(`resized_request`, docs/images.md), and download the original if that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import discord
from discord.ext import commands
from PIL import Image

from bot.errors import DownloadFailed, NoImageFound, UserFacingError
from model.architecture import IMAGE_SIZE
from model.preprocess import IMAGE_TYPES, ImageError, ImageTooLargeError
from model.worker import WorkerBusy

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
# The shorter side asked of Discord's media proxy: twice the network's, so the crop and the
# resize to the network's input still have detail to work with.
RESIZED_SIDE = 2 * min(IMAGE_SIZE)
_resized_failures = 0  # resized fetches that fell back to the original (logged once)


def looks_like_image(attachment: discord.Attachment) -> bool:
    """Whether Discord's content type or the file name says this attachment is an image."""
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    if content_type.startswith("image/"):
        return True
    return PurePosixPath(attachment.filename.lower()).suffix in IMAGE_TYPES


def seems_readable(attachment: discord.Attachment) -> bool:
    """An image by its type or name that Discord could also measure: Discord gives the width
    and height of every image it can read, so an image type without them is a broken file."""
    if not looks_like_image(attachment):
        return False
    content_type = (attachment.content_type or "").lower()
    return not content_type.startswith("image/") or bool(attachment.width and attachment.height)


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
        broken = None  # the latest with only files named as images Discord could not read
        try:
            async for earlier in message.channel.history(limit=history_limit, before=message):
                if me is not None and earlier.author.id == me.id:
                    continue  # never our own feature maps
                if any(seems_readable(attachment) for attachment in earlier.attachments):
                    return earlier
                if broken is None and any(map(looks_like_image, earlier.attachments)):
                    broken = earlier
        except discord.Forbidden:
            raise _no_history(message) from None
        if broken is not None:
            return broken  # decoding it tells the user what is wrong with it
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


def resized_size(width: int, height: int, side: int = RESIZED_SIDE) -> tuple[int, int] | None:
    """The size with the same aspect ratio whose shorter side is `side`; None when the image is
    not larger than that (it is downloaded as it is)."""
    short = min(width, height)
    if short <= side:
        return None
    return max(1, round(width * side / short)), max(1, round(height * side / short))


def resized_request(attachment: discord.Attachment) -> tuple[str, tuple[int, int]] | None:
    """The media proxy URL of `attachment` at the size the network needs, in WebP, and that size;
    None unless Discord says it is an image larger than that, with its width and height."""
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    if not content_type.startswith("image/") or not attachment.width or not attachment.height:
        return None
    size = resized_size(attachment.width, attachment.height)
    if size is None or not attachment.proxy_url:
        return None
    parts = urlsplit(attachment.proxy_url)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in ("width", "height", "format")
    ]  # the signature parameters (ex, is, hm) stay
    query += [("format", "webp"), ("width", str(size[0])), ("height", str(size[1]))]
    return urlunsplit(parts._replace(query=urlencode(query))), size


async def download(
    session: aiohttp.ClientSession,
    attachment: discord.Attachment,
    max_bytes: int,
    timeout: float,
    *,
    resized: bool = False,
) -> bytes:
    """The attachment's bytes, refusing files over `max_bytes` before and while reading.

    With `resized`, a large image is asked of Discord's media proxy at the size the network
    needs (`resized_request`), and the original is downloaded if that fails in any way.
    """
    if attachment.size > max_bytes:
        raise ImageTooLargeError(_too_large(attachment.size, max_bytes))
    request = resized_request(attachment) if resized else None
    if request is not None:
        data = await _fetch_resized(session, attachment, *request, max_bytes, timeout)
        if data is not None:
            return data
    return await _fetch_original(session, attachment, max_bytes, timeout)


async def _fetch_resized(
    session: aiohttp.ClientSession,
    attachment: discord.Attachment,
    url: str,
    size: tuple[int, int],
    max_bytes: int,
    timeout: float,
) -> bytes | None:
    """The resized image's bytes if the proxy answered an image of about `size`; else None."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 200:
                return _fall_back(attachment, f"HTTP {response.status}")
            if not response.content_type.startswith("image/"):
                return _fall_back(attachment, f"content type {response.content_type!r}")
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                return _fall_back(attachment, f"{declared} bytes")
            data = bytearray()
            async for chunk in response.content.iter_chunked(CHUNK):
                data += chunk
                if len(data) > max_bytes:
                    return _fall_back(attachment, f"more than {max_bytes} bytes")
    except TimeoutError:
        return _fall_back(attachment, "timed out")
    except aiohttp.ClientError as error:
        return _fall_back(attachment, _short(repr(error)))
    got = _image_size(bytes(data))
    if got is None:
        return _fall_back(attachment, "not an image Pillow reads")
    if not (_about(got, size) or _about(got, size[::-1])):  # turned by its EXIF orientation
        return _fall_back(attachment, f"{got[0]}x{got[1]}, not {size[0]}x{size[1]}")
    return bytes(data)


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


def _about(got: tuple[int, int], wanted: tuple[int, int]) -> bool:
    """Whether `got` is `wanted` give or take 2% (a proxy rounds its own way)."""
    return all(abs(g - w) <= max(2, w // 50) for g, w in zip(got, wanted, strict=True))


def _fall_back(attachment: discord.Attachment, reason: str) -> None:
    """Log why a resized fetch was not used (a warning the first time, then at debug level)."""
    global _resized_failures
    _resized_failures += 1
    level = logging.WARNING if _resized_failures == 1 else logging.DEBUG
    log.log(
        level,
        "attachment %s: the resized download failed (%s); downloading the original "
        "(%d such fallbacks; later ones are logged at debug level)",
        attachment.id,
        reason,
        _resized_failures,
    )
    return None


async def _fetch_original(
    session: aiohttp.ClientSession, attachment: discord.Attachment, max_bytes: int, timeout: float
) -> bytes:
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
    *,
    resized: bool = False,
) -> list[bytes | Exception]:
    """Download every attachment concurrently (`resized`: as `download` says); a failure the user
    can fix takes the place of its bytes, anything else (a bug) is raised."""
    results = await asyncio.gather(
        *(download(session, a, max_bytes, timeout, resized=resized) for a in attachments),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(
            result, UserFacingError | ImageError
        ):
            raise result
    return list(results)  # type: ignore[arg-type]
