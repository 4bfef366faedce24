"""REST plumbing shared by the routes: JSON responses, the auth and error middleware, request
bodies (JSON, or multipart ``payload_json`` + ``files[n]`` within the upload limit), path ids.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from playground.discord.errors import DiscordError
from playground.discord.protocol import API_PREFIX

if TYPE_CHECKING:
    from playground.discord.faults import Faults

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]

_FILE_FIELD = re.compile(r"^files?\[?(\d*)\]?$")
_NO_AUTH = re.compile(rf"^{API_PREFIX}/(gateway/?$|interactions/|webhooks/\d+/[^/]+)")


@dataclass
class Upload:
    """One file part of a multipart body; ``index`` is n in ``files[n]``."""

    index: int
    filename: str
    data: bytes


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response with exactly ``Content-Type: application/json``.

    discord.py only parses bodies whose content type is exactly that (aiohttp's
    ``json_response`` appends ``; charset=utf-8``, which makes discord.py see plain text).
    """
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})


def no_content() -> web.Response:
    return web.Response(status=204)


def path_id(request: web.Request, name: str) -> int:
    return int(request.match_info[name])


def wants(request: web.Request, flag: str) -> bool:
    """Whether a boolean query parameter (``?wait=true``, ``?with_response=1``) is on."""
    return request.query.get(flag, "").lower() in ("1", "true")


def middleware(token: str, faults: Faults | None = None) -> Any:
    """Check ``Authorization: Bot <token>`` on REST calls that need it (401 otherwise, which
    discord.py turns into ``LoginFailure``), let staged ``faults`` answer the calls they match,
    and answer `DiscordError` as Discord does."""

    @web.middleware
    async def discord_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            needs_auth = request.path.startswith(API_PREFIX) and not _NO_AUTH.match(request.path)
            if needs_auth and request.headers.get("Authorization") != f"Bot {token}":
                raise DiscordError(401, 0, "401: Unauthorized")
            if faults is not None:
                return await faults.handle(request, handler)
            return await handler(request)
        except DiscordError as exc:
            if exc.status >= 400 and exc.status != 404:
                log.info("%s %s -> %s", request.method, request.path, exc)
            return json_response(exc.body(), status=exc.status)

    return discord_errors


async def unknown_route(request: web.Request) -> web.StreamResponse:
    log.warning("fake Discord has no route for %s %s", request.method, request.path_qs)
    raise DiscordError(404, 0, "404: Not Found")


async def read_body(request: web.Request, max_bytes: int) -> tuple[dict[str, Any], list[Upload]]:
    """JSON or multipart (``payload_json`` + ``files[n]``) body; over ``max_bytes`` of files:
    413, code 40005. A JSON list comes back as ``{"_list": [...]}``."""
    if not request.content_type.startswith("multipart/"):
        if not request.can_read_body:
            return {}, []
        raw = await request.read()
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            raise DiscordError(400, 50109, "The request body contains invalid JSON.") from exc
        return (body if isinstance(body, dict) else {"_list": body}), []

    payload: dict[str, Any] = {}
    uploads: list[Upload] = []
    total = 0
    too_large = False
    reader = await request.multipart()
    async for part in reader:
        name = getattr(part, "name", None) or ""
        if name == "payload_json":
            payload.update(json.loads(await part.text()))  # type: ignore[union-attr]
            continue
        match = _FILE_FIELD.match(name)
        if match is None or not getattr(part, "filename", None):
            payload[name] = await part.text()  # type: ignore[union-attr]
            continue
        data = bytearray()
        while chunk := await part.read_chunk(65536):  # type: ignore[union-attr]
            total += len(chunk)
            too_large = too_large or total > max_bytes
            if not too_large:
                data.extend(chunk)
        index = int(match.group(1)) if match.group(1) else len(uploads)
        uploads.append(Upload(index, str(part.filename), bytes(data)))  # type: ignore[union-attr]
    if too_large:
        raise DiscordError(413, 40005, "Request entity too large")
    return payload, uploads
