"""Attachment files: their names (one cleaning rule for every upload), content types, CDN
URLs, and ``GET /attachments/{channel_id}/{attachment_id}/{filename}``, which serves them.
"""

from __future__ import annotations

import io
import mimetypes
import re
import unicodedata
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
    """Width and height of an image, when Pillow can read its header."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


class Cdn:
    """Stores uploaded files (in the server's state) and serves them back."""

    def __init__(self, server: DiscordServer) -> None:
        self.server = server

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
        changed = await self.server.faults.serve_file(request, stored)  # a staged CDN fault
        if changed is not None:
            return changed
        return web.Response(body=stored.data, content_type=stored.content_type)

    def routes(self) -> list[Route]:
        path = "/attachments/{channel_id:\\d+}/{attachment_id:\\d+}/{filename}"
        return [("GET", path, self.serve), ("HEAD", path, self.serve)]
