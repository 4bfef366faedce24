"""Attachment files: their names (one cleaning rule for every upload), content types, CDN
URLs, and ``GET /attachments/{channel_id}/{attachment_id}/{filename}``, which serves them,
resized as Discord's media proxy does when asked (``?width=&height=&format=webp``).
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import re
import unicodedata
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from playground.discord import payloads
from playground.discord.protocol import snowflake
from playground.discord.rest import Route, path_id
from playground.discord.state import StoredFile

if TYPE_CHECKING:
    from playground.discord.server import DiscordServer

MAX_FILENAME = 100
MAX_SIDE = 4096  # the largest width or height the resizing serves
FETCHES_KEPT = 1000
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Fetch:
    """One attachment download the CDN answered: which file, and the query it was asked with."""

    attachment_id: int
    filename: str
    query: dict[str, str]

    @property
    def resized(self) -> bool:
        return resize_asked(self.query)


def clean_filename(name: str) -> str:
    """A safe attachment name: the last path part, ASCII word characters, dots and dashes.

    Used for every file the look-alike stores, whether it came through the REST API, the
    test driver or the playground's page.
    """
    name = unicodedata.normalize("NFKC", str(name or "")).replace("\\", "/").split("/")[-1]
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("._-") or "file"
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot else ""
        name = (stem if dot else name)[: MAX_FILENAME - 1 - len(ext)] + (f".{ext}" if ext else "")
    return name


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of an image as shown (turned by its EXIF orientation, as Discord
    reports them), when Pillow can read its header."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            turned = image.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
            return image.size[::-1] if turned else image.size
    except Exception:
        return None


def resize_asked(query: Any) -> bool:
    """Whether a download's query asks for the image resized or converted."""
    return any(key in query for key in ("width", "height", "format"))


def resized(data: bytes, query: Any) -> tuple[bytes, str] | None:
    """The image fitted within ``width`` x ``height`` (never enlarged, aspect ratio kept), in
    ``format`` (``webp``, ``png``, ``jpeg``; else its own): the bytes and their content type.
    None when the query is not one the media proxy takes or the data is no image."""
    from PIL import Image, ImageOps

    try:
        width, height = (int(query[k]) if k in query else None for k in ("width", "height"))
    except ValueError:
        return None
    if any(side is not None and not 0 < side <= MAX_SIDE for side in (width, height)):
        return None
    wanted = str(query.get("format", "")).lower()
    if wanted not in ("", "webp", "png", "jpeg", "jpg"):
        return None
    try:
        with Image.open(io.BytesIO(data)) as opened:
            fmt = {"jpg": "JPEG", "": opened.format or "PNG"}.get(wanted, wanted.upper())
            if width and height:  # a JPEG decoded reduced, still larger than asked either way
                opened.draft("RGB", (max(width, height), max(width, height)))
            image = ImageOps.exif_transpose(opened)  # a copy: the first frame, turned upright
    except Exception:
        return None
    box = (width or image.width, height or image.height)
    if image.width > box[0] or image.height > box[1]:
        image = ImageOps.contain(image, box, Image.Resampling.LANCZOS)
    if fmt == "JPEG" or image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB" if fmt == "JPEG" or "A" not in image.getbands() else "RGBA")
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 85} if fmt in ("JPEG", "WEBP") else {}))
    return out.getvalue(), Image.MIME.get(fmt, "application/octet-stream")


class Cdn:
    """Stores uploaded files (in the server's state) and serves them back; `fetches` records the
    downloads answered (the latest `FETCHES_KEPT`)."""

    def __init__(self, server: DiscordServer) -> None:
        self.server = server
        self.fetches: deque[Fetch] = deque(maxlen=FETCHES_KEPT)

    def url(self, channel_id: int, attachment_id: int, filename: str) -> str:
        base = self.server.base_url
        return f"{base}/attachments/{channel_id}/{attachment_id}/{quote(filename)}"

    def store(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        """Keep a file posted in a channel; returns its attachment payload.

        The content type is the one given, else guessed from the (cleaned) name.
        """
        filename = clean_filename(filename)
        attachment_id = snowflake()
        ctype = content_type
        if not ctype or ctype == "application/octet-stream":
            ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self.server.state.add_file(attachment_id, StoredFile(channel_id, filename, ctype, data))
        return payloads.attachment(
            attachment_id,
            filename,
            size=len(data),
            url=self.url(channel_id, attachment_id, filename),
            content_type=ctype,
            image_size=image_size(data) if ctype.startswith("image/") else None,
            description=description,
            ephemeral=ephemeral,
        )

    async def serve(self, request: web.Request) -> web.StreamResponse:
        stored = self.server.state.files.get(path_id(request, "attachment_id"))
        if stored is None or path_id(request, "channel_id") != stored.channel_id:
            return web.Response(status=404, text="404: Not Found")
        attachment_id = path_id(request, "attachment_id")
        self.fetches.append(Fetch(attachment_id, stored.filename, dict(request.query)))
        changed = await self.server.faults.serve_file(request, stored)  # a staged CDN fault
        if changed is not None:
            return changed
        if resize_asked(request.query) and stored.content_type.startswith("image/"):
            answer = await asyncio.to_thread(resized, stored.data, dict(request.query))
            if answer is None:
                return web.Response(status=400, text="400: Bad Request")
            return web.Response(body=answer[0], content_type=answer[1])
        return web.Response(body=stored.data, content_type=stored.content_type)

    def routes(self) -> list[Route]:
        path = "/attachments/{channel_id:\\d+}/{attachment_id:\\d+}/{filename}"
        return [("GET", path, self.serve), ("HEAD", path, self.serve)]
