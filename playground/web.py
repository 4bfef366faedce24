"""The playground's web page and its JSON API, served next to the Discord look-alike.

`PlaygroundServer` is a `DiscordServer` whose aiohttp app also serves the page, so the bot's
API, its gateway, the attachment CDN and the page share one host and port (and the page can
show attachments by their CDN paths).

Routes (all under the server's base URL):

* ``GET /``: the page; ``GET /playground/web/{app.js,style.css}``: its script and style.
* ``GET /playground/api/state``: the channel, the two users, every message so far (as
  "views", below), the sample images, the bot's registered commands and the upload limits.
* ``POST /playground/api/messages``: post as the human; multipart with ``content``,
  optional ``reply_to`` (a message id) and any number of file parts (at most 10); 201
  ``{"message": view}``.
* ``POST /playground/api/interactions``: use an application command; multipart or JSON with
  ``kind`` (``slash`` or ``message``), ``name``, for ``slash`` ``options`` (a JSON object of
  the non-attachment options) and file parts for the attachment options, for ``message``
  ``target_id``; 202 ``{"interaction_id": ...}``.
* ``GET /playground/ws``: a WebSocket sending ``{"type": "hello", "data": state}`` first,
  then ``message_create``/``message_update`` (data: a view), ``message_delete``
  (``{"id"}``), ``typing_start`` (``{"user_id", "name", "bot"}``) and ``status``
  (``{"online", "commands"}``, whenever the bot connects or disconnects).
* ``GET /playground/samples/{name}``: a sample image.

Errors are ``{"error": "..."}`` with a 4xx status; 413 when a request's body is over
``max_upload_bytes`` (10 MB by default). File names are cleaned, content types are decided
here (never taken from the browser), attachments are served with a sandboxing CSP, and
requests to the page's routes from other sites (``Origin``) or other host names (DNS
rebinding, when bound to loopback) are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import unicodedata
import weakref
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aiohttp import BodyPartReader, WSMsgType, web

from playground.discord_server import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    OPT_ATTACHMENT,
    DiscordError,
    DiscordServer,
)
from playground.samples import sample_names, sample_path

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_FILES = 10
MAX_CONTENT = 2000
MAX_FIELD = 16 * 1024
STATUS_INTERVAL = 1.0

_STATIC = {
    "app.js": "text/javascript",
    "style.css": "text/css",
}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_ATTACHMENT_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}
_ID = re.compile(r"^\d{1,20}$")


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def clean_filename(name: str) -> str:
    """A safe attachment name: the last path part, ASCII word characters, dots and dashes."""
    name = unicodedata.normalize("NFKC", str(name or "")).replace("\\", "/").split("/")[-1]
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("._-") or "file"
    if len(name) > 100:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot else ""
        name = (stem if dot else name)[: 99 - len(ext)] + (f".{ext}" if ext else "")
    return name


def sniff_content_type(filename: str, data: bytes) -> str | None:
    """The type of an upload, from its first bytes, else its name; None: unknown.

    The browser's claim is never used. Unknown types are left to the look-alike (which
    guesses from the name, as Discord does); the CDN then serves anything that is not an
    image or plain text as a download, in a sandbox.
    """
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"BM"):
        return "image/bmp"
    suffix = PurePosixPath(filename.lower()).suffix
    if suffix in _IMAGE_TYPES:  # says image but isn't one: let the bot explain
        return _IMAGE_TYPES[suffix]
    if suffix in (".txt", ".md", ".csv", ".log"):
        return "text/plain"
    return None


def _hostname(host: str | None) -> str:
    """``127.0.0.1:8080`` -> ``127.0.0.1``, ``[::1]:80`` -> ``[::1]``."""
    host = host or ""
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0]


def _relative(url: str) -> str:
    """A CDN URL as a path, so the page loads it from its own origin."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def user_view(user: dict[str, Any] | None, bot_name: str | None = None) -> dict[str, Any] | None:
    """A user as the page shows it; bots (no global name) go by `bot_name` when given."""
    if not user:
        return None
    bot = bool(user.get("bot", False))
    name = user.get("global_name") or (bot and bot_name) or user.get("username") or "unknown"
    return {
        "id": str(user["id"]),
        "username": str(user.get("username") or ""),
        "name": str(name),
        "bot": bot,
    }


def attachment_view(attachment: dict[str, Any]) -> dict[str, Any]:
    ctype = str(attachment.get("content_type") or "application/octet-stream")
    return {
        "id": str(attachment["id"]),
        "filename": str(attachment.get("filename") or "file"),
        "url": _relative(str(attachment.get("url") or "")),
        "content_type": ctype,
        "size": int(attachment.get("size") or 0),
        "width": attachment.get("width"),
        "height": attachment.get("height"),
        "image": ctype in _IMAGE_TYPES.values(),
    }


def message_view(message: dict[str, Any], bot_name: str | None = None) -> dict[str, Any]:
    """What the page needs of a Discord message payload; text stays text (never HTML)."""
    flags = int(message.get("flags") or 0)
    view: dict[str, Any] = {
        "id": str(message["id"]),
        "type": int(message.get("type") or 0),
        "content": str(message.get("content") or ""),
        "timestamp": message.get("timestamp"),
        "edited": bool(message.get("edited_timestamp")),
        "flags": flags,
        "ephemeral": bool(flags & FLAG_EPHEMERAL),
        "loading": bool(flags & FLAG_LOADING),
        "author": user_view(message.get("author"), bot_name),
        "attachments": [attachment_view(a) for a in message.get("attachments") or []],
        "reply_to": None,
        "interaction": None,
    }
    reference = message.get("message_reference") or {}
    if reference.get("message_id"):
        referenced = message.get("referenced_message") or {}
        view["reply_to"] = {
            "id": str(reference["message_id"]),
            "author": user_view(referenced.get("author"), bot_name),
            "content": str(referenced.get("content") or "")[:200],
            "attachments": len(referenced.get("attachments") or []),
        }
    metadata = message.get("interaction_metadata")
    if metadata:
        view["interaction"] = {
            "id": str(metadata.get("id")),
            "name": str(metadata.get("name") or ""),
            "command_type": int(metadata.get("command_type") or 1),
            "user": user_view(metadata.get("user"), bot_name),
            "target_message_id": metadata.get("target_message_id"),
        }
    return view


def command_view(command: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": command["name"],
        "type": int(command.get("type") or 1),
        "description": command.get("description") or "",
        "options": [
            {
                key: option.get(key)
                for key in ("name", "type", "description", "required", "min_value", "max_value")
            }
            for option in command.get("options") or []
        ],
    }


class PlaygroundWeb:
    """The page's routes for one `DiscordServer`."""

    def __init__(
        self,
        server: DiscordServer,
        *,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        bot_name: str = "JediSith",
    ) -> None:
        self.server = server
        self.max_upload_bytes = max_upload_bytes
        self.bot_name = bot_name
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    # --------------------------------------------------------------------------------- wiring

    def add_routes(self, app: web.Application) -> None:
        """Register the page's routes (before the Discord look-alike's catch-all route)."""
        routes = [
            ("GET", "/", self._index),
            ("GET", "/playground/web/{name}", self._static),
            ("GET", "/playground/api/state", self._state),
            ("POST", "/playground/api/messages", self._post_message),
            ("POST", "/playground/api/interactions", self._post_interaction),
            ("GET", "/playground/ws", self._ws),
            ("GET", "/playground/samples/{name}", self._sample),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, self._guarded(handler))
        app.on_response_prepare.append(self._headers)
        app.on_shutdown.append(self._close_sockets)

    def _guarded(self, handler: Any) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                self._check_origin(request)
                return await handler(request)
            except ApiError as error:
                return web.json_response({"error": error.message}, status=error.status)

        return guarded

    def _check_origin(self, request: web.Request) -> None:
        """Refuse other sites (by Origin) and, on loopback, other host names (DNS rebinding)."""
        if self.server.host in _LOOPBACK_NAMES and _hostname(request.host) not in _LOOPBACK_NAMES:
            raise ApiError(403, "Open the playground at http://127.0.0.1 or http://localhost.")
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            raise ApiError(403, "Requests from other sites are refused.")

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.path.startswith("/attachments/"):
            response.headers["Content-Security-Policy"] = _ATTACHMENT_CSP
            response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
            ctype = response.content_type
            if ctype not in _IMAGE_TYPES.values() and ctype != "text/plain":
                response.headers["Content-Disposition"] = "attachment"
        elif request.path == "/" or request.path.startswith("/playground/"):
            response.headers.setdefault("Content-Security-Policy", _CSP)
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            response.headers.setdefault("Cache-Control", "no-cache")

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"playground shutting down")

    # --------------------------------------------------------------------------------- files

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB_DIR / "index.html", headers={"Content-Type": "text/html"})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise ApiError(404, "No such file.")
        return web.FileResponse(WEB_DIR / name, headers={"Content-Type": _STATIC[name]})

    async def _sample(self, request: web.Request) -> web.StreamResponse:
        path = sample_path(request.match_info["name"])
        if path is None:
            raise ApiError(404, "No such sample.")
        return web.FileResponse(path, headers={"Content-Type": "image/jpeg"})

    # --------------------------------------------------------------------------------- state

    def _user(self, user: dict[str, Any] | None) -> dict[str, Any] | None:
        return user_view(user, self.bot_name)

    def _message(self, message: dict[str, Any]) -> dict[str, Any]:
        return message_view(message, self.bot_name)

    def bot_online(self) -> bool:
        return self.server.connected_sessions > 0

    def commands(self) -> list[dict[str, Any]]:
        return [command_view(c) for c in self.server.application_commands]

    def state(self) -> dict[str, Any]:
        server = self.server
        return {
            "guild": {"name": server.guild_name},
            "channel": {
                "id": server.channel["id"],
                "name": server.channel["name"],
                "topic": server.channel.get("topic") or "",
            },
            "me": user_view(server.human),
            "bot": {**(self._user(server.bot_user) or {}), "online": self.bot_online()},
            "messages": [self._message(m) for m in server.messages],
            "samples": [
                {"name": name, "url": f"/playground/samples/{name}", "label": name.split("-")[0]}
                for name in sample_names()
            ],
            "commands": self.commands(),
            "limits": {
                "max_upload_bytes": self.max_upload_bytes,
                "max_files": MAX_FILES,
                "max_content": MAX_CONTENT,
            },
        }

    async def _state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state())

    # --------------------------------------------------------------------------------- uploads

    async def _read_form(
        self, request: web.Request
    ) -> tuple[dict[str, str], list[tuple[str, bytes] | tuple[str, bytes, str]]]:
        """Text fields and files of a multipart (or JSON) body, within the upload limit."""
        too_large = ApiError(
            413, f"Too large: at most {self.max_upload_bytes // (1024 * 1024)} MB per message."
        )
        if request.content_length is not None and request.content_length > self.max_upload_bytes:
            raise too_large
        if request.content_type == "application/x-www-form-urlencoded":
            raw = await self._read_limited(request)
            pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
            return {key: value for key, value in pairs}, []
        if not request.content_type.startswith("multipart/"):
            raw = await self._read_limited(request)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                raise ApiError(400, "The body is neither multipart nor JSON.") from None
            if not isinstance(body, dict):
                raise ApiError(400, "The body must be a JSON object.")
            fields = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
            return fields, []
        fields: dict[str, str] = {}
        files: list[tuple[str, bytes] | tuple[str, bytes, str]] = []
        total = 0
        try:
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    raise ApiError(400, "Nested multipart bodies are not supported.")
                filename = getattr(part, "filename", None)
                data = bytearray()
                while chunk := await part.read_chunk(65536):  # type: ignore[union-attr]
                    total += len(chunk)
                    if total > self.max_upload_bytes:
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

    async def _read_limited(self, request: web.Request) -> bytes:
        data = bytearray()
        while chunk := await request.content.read(65536):
            data.extend(chunk)
            if len(data) > self.max_upload_bytes:
                raise ApiError(413, "Too large.")
        return bytes(data)

    def _message_id(self, raw: str | None, what: str) -> str | None:
        raw = (raw or "").strip()
        if not raw:
            return None
        if not _ID.match(raw) or not any(m["id"] == raw for m in self.server.messages):
            raise ApiError(404, f"The {what} message does not exist (any more).")
        return raw

    async def _post_message(self, request: web.Request) -> web.StreamResponse:
        fields, files = await self._read_form(request)
        content = fields.get("content", "")
        if len(content) > MAX_CONTENT:
            raise ApiError(400, f"Messages are at most {MAX_CONTENT} characters.")
        if not content.strip() and not files:
            raise ApiError(400, "Type something or attach a file.")
        reply_to = self._message_id(fields.get("reply_to"), "replied-to")
        message = await self.server.post_message(
            content, attachments=files, reply_to=int(reply_to) if reply_to else None
        )
        return web.json_response({"message": self._message(message)}, status=201)

    # --------------------------------------------------------------------------- interactions

    def _command(self, name: str, command_type: int) -> dict[str, Any]:
        for command in self.server.application_commands:
            if command["name"] == name and int(command.get("type") or 1) == command_type:
                return command
        kind = "/" if command_type == 1 else "the app command "
        raise ApiError(409, f"The bot has not registered {kind}{name} (yet). Is it running?")

    @staticmethod
    def _slash_options(command: dict[str, Any], raw: str | None) -> dict[str, Any]:
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

    async def _post_interaction(self, request: web.Request) -> web.StreamResponse:
        fields, files = await self._read_form(request)
        kind = fields.get("kind", "slash")
        name = fields.get("name", "").strip().lstrip("/")
        try:
            if kind == "slash":
                command = self._command(name, 1)
                options = self._slash_options(command, fields.get("options"))
                wanted = [o for o in command.get("options") or [] if o["type"] == OPT_ATTACHMENT]
                required = [o for o in wanted if o.get("required")]
                if len(files) < len(required):
                    noun = required[0]["name"]
                    raise ApiError(400, f"/{name} needs an attachment for {noun!r}.")
                if len(files) > len(wanted):
                    raise ApiError(400, f"/{name} takes at most {len(wanted)} attachments.")
                payload = await self.server.invoke_slash_command(name, options, files)
            elif kind == "message":
                self._command(name, 3)
                target = self._message_id(fields.get("target_id"), "target")
                if target is None:
                    raise ApiError(400, "target_id is required.")
                payload = await self.server.invoke_message_command(name, int(target))
            else:
                raise ApiError(400, "kind must be 'slash' or 'message'.")
        except (LookupError, ValueError) as error:
            raise ApiError(400, str(error)) from None
        except DiscordError as error:
            raise ApiError(error.status, error.message) from None
        return web.json_response({"interaction_id": payload["id"]}, status=202)

    # --------------------------------------------------------------------------------- events

    def _event_view(self, event: dict[str, Any]) -> dict[str, Any] | None:
        kind, data = event["type"], event["data"]
        if kind in ("message_create", "message_update"):
            return {"type": kind, "data": self._message(data)}
        if kind == "message_delete":
            return {"type": kind, "data": {"id": str(data["id"])}}
        if kind == "typing_start":
            user = self._user(data.get("user")) or {"name": "Someone", "bot": False}
            return {
                "type": kind,
                "data": {"user_id": str(data["user_id"]), "name": user["name"], "bot": user["bot"]},
            }
        return None

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=25, max_msg_size=64 * 1024)
        await ws.prepare(request)
        self._sockets.add(ws)
        queue = self.server.subscribe()
        sender = asyncio.create_task(self._send_events(ws, queue))
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break  # the page only listens; whatever it sends is ignored
        finally:
            sender.cancel()
            self.server.unsubscribe(queue)
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    async def _send_events(
        self, ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any]]
    ) -> None:
        getter: asyncio.Future[dict[str, Any]] | None = None
        try:
            await ws.send_json({"type": "hello", "data": self.state()})
            status = (self.bot_online(), len(self.server.application_commands))
            while not ws.closed:
                # One pending get() at a time (no wait_for around it: no event can be lost).
                getter = getter or asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter}, timeout=STATUS_INTERVAL)
                if done:
                    event, getter = getter.result(), None
                    if (view := self._event_view(event)) is not None:
                        await ws.send_json(view)
                now = (self.bot_online(), len(self.server.application_commands))
                if now != status:
                    status = now
                    data = {"online": now[0], "commands": self.commands()}
                    await ws.send_json({"type": "status", "data": data})
        except (ConnectionError, RuntimeError) as error:
            log.debug("page socket closed: %s", error)
        finally:
            if getter is not None:
                getter.cancel()


class PlaygroundServer(DiscordServer):
    """The Discord look-alike with the playground's page on the same host and port."""

    def __init__(
        self,
        token: str = "test-token",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_page_upload_bytes: int = MAX_UPLOAD_BYTES,
        bot_name: str = "JediSith",
        **kwargs: Any,
    ) -> None:
        super().__init__(token, host, port, bot_name=bot_name, **kwargs)
        self.web = PlaygroundWeb(self, max_upload_bytes=max_page_upload_bytes, bot_name=bot_name)

    def _add_routes(self, app: web.Application) -> None:
        self.web.add_routes(app)  # first: the look-alike ends with a catch-all route
        super()._add_routes(app)


__all__ = [
    "MAX_UPLOAD_BYTES",
    "PlaygroundServer",
    "PlaygroundWeb",
    "clean_filename",
    "message_view",
    "sniff_content_type",
]
