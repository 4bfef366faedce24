"""What the playground's page sends: multipart, JSON or urlencoded bodies read within the
upload limit, the files' names and content types (decided here, never taken from the
browser), and slash command options; refusals are `ApiError` (``{"error": ...}``)."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import BodyPartReader, web

from model.preprocess import DEFAULT_MAX_BYTES, IMAGE_FORMATS, IMAGE_TYPES
from playground.discord import OPT_ATTACHMENT
from playground.discord.cdn import clean_filename

MAX_UPLOAD_BYTES = DEFAULT_MAX_BYTES  # per request: the bot's own limit on one image
MAX_FILES = 10
MAX_FIELD = 16 * 1024
_TEXT_SUFFIXES = (".txt", ".md", ".csv", ".log")

File = tuple[str, bytes] | tuple[str, bytes, str]


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _image_format(head: bytes) -> str | None:
    """The Pillow format name of an image, from its first bytes."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"BM"):
        return "BMP"
    return None


def sniff_content_type(filename: str, data: bytes) -> str | None:
    """The type of an upload, from its first bytes, else its name; None: unknown.

    The browser's claim is never used. Unknown types are left to the look-alike (which
    guesses from the name, as Discord does); the CDN then serves anything that is not an
    image or plain text as a download, in a sandbox.
    """
    if (kind := _image_format(data[:16])) is not None:
        return IMAGE_FORMATS[kind][0]
    suffix = PurePosixPath(filename.lower()).suffix
    if suffix in IMAGE_TYPES:  # says image but isn't one: let the bot explain
        return IMAGE_TYPES[suffix]
    if suffix in _TEXT_SUFFIXES:
        return "text/plain"
    return None


async def _read_limited(request: web.Request, max_bytes: int) -> bytes:
    data = bytearray()
    while chunk := await request.content.read(65536):
        data.extend(chunk)
        if len(data) > max_bytes:
            raise ApiError(413, "Too large.")
    return bytes(data)


async def read_form(request: web.Request, max_bytes: int) -> tuple[dict[str, str], list[File]]:
    """Text fields and files of a multipart (or JSON, or urlencoded) body, within the limit."""
    too_large = ApiError(413, f"Too large: at most {max_bytes // (1024 * 1024)} MB per message.")
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large
    if request.content_type == "application/x-www-form-urlencoded":
        raw = await _read_limited(request, max_bytes)
        pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return dict(pairs), []
    if not request.content_type.startswith("multipart/"):
        raw = await _read_limited(request, max_bytes)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise ApiError(400, "The body is neither multipart nor JSON.") from None
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be a JSON object.")
        fields = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        return fields, []
    fields: dict[str, str] = {}
    files: list[File] = []
    total = 0
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "Nested multipart bodies are not supported.")
            filename = getattr(part, "filename", None)
            data = bytearray()
            while chunk := await part.read_chunk(65536):
                total += len(chunk)
                if total > max_bytes:
                    raise too_large
                data.extend(chunk)
            if filename is not None:
                if len(files) >= MAX_FILES:
                    raise ApiError(400, f"At most {MAX_FILES} files per message.")
                name = clean_filename(unquote(filename))
                blob = bytes(data)
                ctype = sniff_content_type(name, blob)
                files.append((name, blob, ctype) if ctype else (name, blob))
            else:
                if len(data) > MAX_FIELD:
                    raise ApiError(400, f"The field {part.name!r} is too long.")
                fields[str(part.name or "")] = data.decode("utf-8", "replace")
    except (ValueError, AssertionError) as error:  # malformed multipart
        raise ApiError(400, f"Malformed upload: {error}") from None
    return fields, files


def slash_options(command: dict[str, Any], raw: str | None) -> dict[str, Any]:
    """The non-attachment options the page gives for a slash command, checked and typed."""
    try:
        given = json.loads(raw or "{}")
    except ValueError:
        raise ApiError(400, "options must be a JSON object.") from None
    if not isinstance(given, dict):
        raise ApiError(400, "options must be a JSON object.")
    definitions = {o["name"]: o for o in command.get("options") or []}
    options: dict[str, Any] = {}
    for name, value in given.items():
        definition = definitions.get(name)
        if definition is None:
            raise ApiError(400, f"/{command['name']} has no option {name!r}.")
        kind = definition["type"]
        if kind == OPT_ATTACHMENT:
            raise ApiError(400, f"Attach a file for {name!r} instead.")
        if value is None:
            continue
        if kind == 4:  # integer
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ApiError(400, f"{name} must be a whole number.")
            try:
                value = int(value)
            except ValueError:
                raise ApiError(400, f"{name} must be a whole number.") from None
            low, high = definition.get("min_value"), definition.get("max_value")
            if (low is not None and value < low) or (high is not None and value > high):
                raise ApiError(400, f"{name} must be from {low} to {high}.")
        elif kind == 3:  # string
            value = str(value)
        options[name] = value
    return options
