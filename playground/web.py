"""The playground's web page and its JSON API, served next to the Discord look-alike.

`PlaygroundServer` is a `DiscordServer` whose aiohttp app also serves the page, so the bot's
API, its gateway, the attachment CDN and the page share one host and port (and the page can
show attachments by their CDN paths). The page is the look-alike's default channel ("general"
in "Jedi Temple"); the other guilds and channels are there for the bot, not shown.
Its routes and what they answer are listed in docs/playground.md.

The page's API and WebSocket answer only the page: a request from another site (by `Origin`,
`null` included: a sandboxed frame or a `data:` page sends it) is refused, and each one must
carry this run's random token, which only the page itself is given (in its HTML, which another
site cannot read): the `X-Playground-Token` header, or `?token=` for the WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from playground.actions import MAX_CONTENT, PageActions, people_view, seed_people
from playground.discord import DiscordServer, Subscription
from playground.forms import MAX_FILES, MAX_UPLOAD_BYTES, ApiError
from playground.samples import sample_names, sample_path
from playground.views import IMAGE_MIME_TYPES, command_view, event_view, message_view, user_view

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
STATUS_INTERVAL = 1.0
TOKEN_HEADER = "X-Playground-Token"
TOKEN_PLACEHOLDER = "PLAYGROUND-PAGE-TOKEN"  # in index.html, where the page reads its token
WS_PATH = "/playground/ws"

_STATIC = {
    "app.js": "text/javascript",
    "markdown.js": "text/javascript",
    "layout.js": "text/javascript",
    "style.css": "text/css",
}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_ATTACHMENT_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _hostname(host: str | None) -> str:
    """``127.0.0.1:8080`` -> ``127.0.0.1``, ``[::1]:80`` -> ``[::1]``."""
    host = host or ""
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0]


class PlaygroundWeb:
    """The page's routes for one `DiscordServer`, showing its default channel."""

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
        self.page_token = secrets.token_urlsafe(32)  # this run's; only the page is given it
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.actions = PageActions(server, max_upload_bytes=max_upload_bytes, bot_name=bot_name)
        seed_people(server)

    # --------------------------------------------------------------------------------- wiring

    def add_routes(self, app: web.Application) -> None:
        """Register the page's routes (before the Discord look-alike's catch-all route)."""
        routes = [  # method, path, handler, whether it needs the page's token
            ("GET", "/", self._index, False),
            ("GET", "/playground/web/{name}", self._static, False),
            ("GET", "/playground/api/state", self._state, True),
            ("POST", "/playground/api/messages", self.actions.post_message, True),
            ("POST", "/playground/api/interactions", self.actions.post_interaction, True),
            ("POST", "/playground/api/click", self.actions.click, True),
            ("GET", WS_PATH, self._ws, True),
            ("GET", "/playground/samples/{name}", self._sample, False),
        ]
        for method, path, handler, token in routes:
            app.router.add_route(method, path, self._guarded(handler, token))
        app.on_response_prepare.append(self._headers)
        app.on_shutdown.append(self._close_sockets)

    def _guarded(self, handler: Any, token: bool) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                self._check_origin(request)
                if token:
                    self._check_token(request)
                return await handler(request)
            except ApiError as error:
                return web.json_response({"error": error.message}, status=error.status)

        return guarded

    def _check_origin(self, request: web.Request) -> None:
        """Refuse other sites (by Origin; `null` is one) and, on loopback, other host names
        (DNS rebinding)."""
        if self.server.host in _LOOPBACK_NAMES and _hostname(request.host) not in _LOOPBACK_NAMES:
            raise ApiError(403, "Open the playground at http://127.0.0.1 or http://localhost.")
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise ApiError(403, "Requests from other sites are refused.")

    def _check_token(self, request: web.Request) -> None:
        """Refuse a request without this run's page token (a page that is not ours)."""
        if request.path == WS_PATH:  # a browser cannot set a WebSocket's headers
            given = request.query.get("token", "")
        else:
            given = request.headers.get(TOKEN_HEADER, "")
        if not secrets.compare_digest(given.encode(errors="replace"), self.page_token.encode()):
            raise ApiError(403, "This page is not the playground's: reload the playground.")

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.path.startswith("/attachments/"):
            response.headers["Content-Security-Policy"] = _ATTACHMENT_CSP
            response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
            ctype = response.content_type
            if ctype not in IMAGE_MIME_TYPES and ctype != "text/plain":
                response.headers["Content-Disposition"] = "attachment"
        elif request.path == "/" or request.path.startswith("/playground/"):
            response.headers.setdefault("Content-Security-Policy", _CSP)
            # Not no-referrer: with it, browsers send the page's own POSTs as `Origin: null`.
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("Cache-Control", "no-cache")

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"playground shutting down")

    # --------------------------------------------------------------------------------- files

    async def _index(self, request: web.Request) -> web.StreamResponse:
        page = (WEB_DIR / "index.html").read_text(encoding="utf-8")
        page = page.replace(TOKEN_PLACEHOLDER, self.page_token)
        return web.Response(text=page, content_type="text/html")

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

    def bot_online(self) -> bool:
        return self.server.connected_sessions > 0

    def commands(self) -> list[dict[str, Any]]:
        return [command_view(c) for c in self.server.application_commands]

    def state(self) -> dict[str, Any]:
        server = self.server
        bot = user_view(server.bot_user, self.bot_name) or {}
        return {
            "guild": {"name": server.guild_name},
            "channel": {
                "id": server.channel["id"],
                "name": server.channel["name"],
                "topic": server.channel.get("topic") or "",
            },
            "me": user_view(server.human),
            "people": people_view(server),
            "bot": {**bot, "online": self.bot_online()},
            "messages": [message_view(m, self.bot_name) for m in server.messages],
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

    # --------------------------------------------------------------------------------- events

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=25, max_msg_size=64 * 1024)
        await ws.prepare(request)
        self._sockets.add(ws)
        queue = self.server.subscribe(self.server.channel_id)
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

    async def _send_events(self, ws: web.WebSocketResponse, queue: Subscription) -> None:
        getter: asyncio.Future[dict[str, Any]] | None = None
        try:
            await ws.send_json({"type": "hello", "data": self.state()})
            dropped = queue.dropped
            status = (self.bot_online(), len(self.server.application_commands))
            while not ws.closed:
                # One pending get() at a time (no wait_for around it: no event can be lost).
                getter = getter or asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter}, timeout=STATUS_INTERVAL)
                if done:
                    event, getter = getter.result(), None
                    if queue.dropped != dropped:  # fell behind: start again from the state
                        dropped = queue.dropped
                        while not queue.empty():
                            queue.get_nowait()
                        await ws.send_json({"type": "hello", "data": self.state()})
                    elif (view := event_view(event, self.bot_name)) is not None:
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


__all__ = ["TOKEN_HEADER", "PlaygroundServer", "PlaygroundWeb"]
