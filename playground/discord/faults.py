"""Faults a test stages on purpose: REST routes that answer an error (for the next N calls, or
like Discord's rate limits do) and CDN responses that are slow, held, cut short or lie about
their length. `DiscordServer.faults` is a `Faults`; dropping the gateway is on the driver
(``drop_gateway``).

A route is ``"METHOD /path"`` relative to the API prefix (``/api/v10``; the full path works
too): ``*`` in the path matches one segment, a trailing ``/**`` everything below, and the
method ``*`` any method, e.g. ``"POST /channels/123/messages"``, ``"* /channels/123/**"``,
``"PUT /applications/*/commands"``. The first staged fault that matches a call and still has
calls to answer answers it; the others wait their turn. Each fault counts what it answered
(``hits``, ``calls``) and can be waited on (``wait_hits``); ``clear`` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aiohttp import web

from playground.discord.protocol import API_PREFIX
from playground.discord.rest import json_response

if TYPE_CHECKING:
    from playground.discord.rest import Handler
    from playground.discord.state import StoredFile

CALLS_KEPT = 100  # calls each fault remembers (``Fault.calls``), the newest
DEFAULT_CODES = {403: 50001, 404: 0, 400: 50035}
DEFAULT_MESSAGES = {
    400: "Invalid Form Body",
    403: "Missing Access",
    429: "You are being rate limited.",
}


@dataclass(frozen=True)
class Call:
    """One call a fault answered: its method, path (below the API prefix for REST) and body
    (read only when the fault answered instead of the route)."""

    method: str
    path: str
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body or b"null")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _route_regex(route: str) -> tuple[str, re.Pattern[str]]:
    method, _, path = route.strip().partition(" ")
    if not path:
        method, path = "*", method
    path = path.strip()
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX) :]
    if not path.startswith("/"):
        raise ValueError(f"a route is 'METHOD /path', not {route!r}")
    tail = path.endswith("/**")
    parts = [
        "[^/]+" if part == "*" else re.escape(part)
        for part in (path[:-3] if tail else path).split("/")
    ]
    pattern = "/".join(parts) + ("(/.*)?" if tail else "")
    return method.upper(), re.compile(f"^{pattern}/?$")


class Fault:
    """A staged fault: answers ``times`` calls (None: every call until cleared)."""

    def __init__(self, faults: Faults, times: int | None) -> None:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for every call")
        self._faults = faults
        self.remaining = times
        self.hits = 0
        self.calls: deque[Call] = deque(maxlen=CALLS_KEPT)
        self._changed = asyncio.Event()

    @property
    def active(self) -> bool:
        return self.remaining is None or self.remaining > 0

    def _take(self) -> None:
        """Count one call answered by this fault."""
        if self.remaining is not None:
            self.remaining -= 1
        self.hits += 1
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"{self!r}: {what} within {timeout} s") from None

    async def wait_hits(self, count: int, *, timeout: float = 10.0) -> None:
        """Until this fault has answered ``count`` calls in all (raises ``TimeoutError``)."""
        await self._wait(lambda: self.hits >= count, timeout, f"not {count} hits")

    def clear(self) -> None:
        """End the fault: later calls are served normally (held CDN responses go on)."""
        self.remaining = 0
        self._faults._remove(self)
        self._notify()


class RestFault(Fault):
    """Answers matching REST calls with ``status`` and a Discord error body, without running
    the route; with ``applied``, the route runs first (the call takes effect) and its answer
    is replaced, as when Discord's answer is lost on the way back."""

    def __init__(
        self,
        faults: Faults,
        route: str,
        status: int,
        *,
        times: int | None,
        body: Any,
        headers: dict[str, str],
        applied: bool,
    ) -> None:
        super().__init__(faults, times)
        self.route = route
        self.method, self._path = _route_regex(route)
        self.status = status
        self.body = body
        self.headers = headers
        self.applied = applied

    def __repr__(self) -> str:
        return f"<RestFault {self.route} -> {self.status}, {self.hits} hits>"

    def matches(self, method: str, path: str) -> bool:
        return self.active and self.method in ("*", method) and bool(self._path.match(path))

    def answer(self) -> web.Response:
        response = json_response(self.body, status=self.status)
        response.headers.update(self.headers)
        return response


class RateLimit(Fault):
    """Discord's rate limit on a route: ``limit`` calls per ``per`` seconds (a window starting
    with its first call); past it, 429 with ``retry_after`` until the window ends."""

    def __init__(
        self, faults: Faults, route: str, limit: int, per: float, *, is_global: bool
    ) -> None:
        if limit < 1 or not per > 0:
            raise ValueError("limit must be at least 1 and per positive")
        super().__init__(faults, None)
        self.route = route
        self.method, self._path = _route_regex(route)
        self.limit = limit
        self.per = per
        self.is_global = is_global
        self.allowed = 0  # calls let through
        self._window_end = 0.0
        self._used = 0
        self.applied = False

    def __repr__(self) -> str:
        return f"<RateLimit {self.route} {self.limit}/{self.per}s, {self.hits} hits>"

    def matches(self, method: str, path: str) -> bool:
        if not (self.active and self.method in ("*", method) and self._path.match(path)):
            return False
        now = time.monotonic()
        if now >= self._window_end:
            self._window_end, self._used = now + self.per, 0
        if self._used < self.limit:
            self._used += 1
            self.allowed += 1
            return False
        return True

    def answer(self) -> web.Response:
        retry_after = max(0.001, self._window_end - time.monotonic())
        return rate_limited(retry_after, is_global=self.is_global)


def rate_limited(retry_after: float, *, is_global: bool = False) -> web.Response:
    """Discord's 429: ``retry_after`` in the body and the headers (discord.py only retries a
    429 that came through Discord's proxies, which add ``Via``)."""
    body = {
        "message": DEFAULT_MESSAGES[429],
        "retry_after": round(retry_after, 3),
        "global": is_global,
        "code": 0,
    }
    response = json_response(body, status=429)
    response.headers.update(
        {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Scope": "global" if is_global else "user",
            "Via": "1.1 google",
        }
    )
    if is_global:
        response.headers["X-RateLimit-Global"] = "true"
    return response


class CdnFault(Fault):
    """Changes how the CDN serves matching attachments (see `Faults.cdn`)."""

    def __init__(
        self,
        faults: Faults,
        *,
        times: int | None,
        filename: str | None,
        delay: float,
        hold: bool,
        status: int | None,
        cut_after: int | None,
        declared_length: int | None,
        resized: bool | None,
        body: bytes | None,
        content_type: str | None,
    ) -> None:
        super().__init__(faults, times)
        self.filename = filename
        self.resized = resized
        self.body = body
        self.content_type = content_type
        self.delay = delay
        self.status = status
        self.cut_after = cut_after
        self.declared_length = declared_length
        self.held = 0  # responses waiting at the gate now
        self._gate = asyncio.Event()
        if not hold:
            self._gate.set()

    def __repr__(self) -> str:
        return f"<CdnFault {self.filename or '*'}, {self.hits} hits, {self.held} held>"

    def matches(self, filename: str, resized: bool) -> bool:
        return (
            self.active
            and (self.filename is None or fnmatch.fnmatch(filename, self.filename))
            and (self.resized is None or self.resized == resized)
        )

    def release(self) -> None:
        """Open the gate: held responses go on (with the rest of this fault), later ones too."""
        self._gate.set()
        self._notify()

    def clear(self) -> None:
        self.release()
        super().clear()

    async def wait_held(self, count: int, *, timeout: float = 10.0) -> None:
        """Until ``count`` responses wait at the gate at once (raises ``TimeoutError``)."""
        await self._wait(lambda: self.held >= count, timeout, f"not {count} held")

    async def respond(self, request: web.Request, stored: StoredFile) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self._gate.is_set():
            self.held += 1
            self._notify()
            try:
                await self._gate.wait()
            finally:
                self.held -= 1
                self._notify()
        if self.status is not None:
            return web.Response(status=self.status, text=f"{self.status}: {_reason(self.status)}")
        content_type = self.content_type or stored.content_type
        if self.body is not None:
            return web.Response(body=self.body, content_type=content_type)
        data = stored.data
        declared = len(data) if self.declared_length is None else self.declared_length
        sent = data[: min(declared, len(data))]
        if self.cut_after is not None:
            sent = sent[: self.cut_after]
        if len(sent) == declared:  # an honest length (perhaps a short one): a plain answer
            return web.Response(body=sent, content_type=content_type)
        # Fewer bytes than the headers promise: send them, then close the connection.
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.content_length = declared
        await response.prepare(request)
        if sent:
            await response.write(sent)
        transport = request.transport
        if transport is not None:
            transport.close()
        return response


class Faults:
    """Every staged fault of one server; empty at start (everything served normally)."""

    def __init__(self) -> None:
        self._rest: list[RestFault | RateLimit] = []
        self._cdn: list[CdnFault] = []

    # ----------------------------------------------------------------------------- staging

    def fail(
        self,
        route: str,
        status: int,
        *,
        times: int | None = 1,
        retry_after: float = 1.0,
        is_global: bool = False,
        code: int | None = None,
        message: str | None = None,
        errors: dict[str, Any] | None = None,
        body: Any = None,
        applied: bool = False,
    ) -> RestFault:
        """Answer the next ``times`` calls of ``route`` (None: all, until cleared) with
        ``status``, without running the route.

        429 gets Discord's rate-limit answer (``retry_after`` seconds, ``is_global``); other
        statuses ``{"message", "code"[, "errors"]}`` (400: Invalid Form Body, 50035; 403:
        Missing Access, 50001; else ``"<status>: <reason>"``, 0), or ``body`` as given.
        ``applied``: the route runs and takes effect, then its answer is replaced (a lost
        answer: a client that retries does it twice).
        """
        headers: dict[str, str] = {}
        if status == 429:
            sample = rate_limited(retry_after, is_global=is_global)
            headers = {k: v for k, v in sample.headers.items() if k != "Content-Type"}
            if body is None:
                body = json.loads(sample.body)  # type: ignore[arg-type]
        elif body is None:
            body = {
                "message": message or DEFAULT_MESSAGES.get(status, f"{status}: {_reason(status)}"),
                "code": DEFAULT_CODES.get(status, 0) if code is None else code,
            }
            if errors:
                body["errors"] = errors
        fault = RestFault(
            self, route, status, times=times, body=body, headers=headers, applied=applied
        )
        self._rest.append(fault)
        return fault

    def rate_limit(
        self, route: str, *, limit: int, per: float, is_global: bool = False
    ) -> RateLimit:
        """Let ``limit`` calls of ``route`` through per ``per`` seconds, and answer the rest
        429 with the seconds left in the window, as Discord's buckets do; until cleared."""
        fault = RateLimit(self, route, limit, per, is_global=is_global)
        self._rest.append(fault)
        return fault

    def cdn(
        self,
        *,
        times: int | None = None,
        filename: str | None = None,
        delay: float = 0.0,
        hold: bool = False,
        status: int | None = None,
        cut_after: int | None = None,
        declared_length: int | None = None,
        resized: bool | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> CdnFault:
        """Change the next ``times`` attachment downloads (None: all, until cleared) whose
        file name matches the glob ``filename`` (None: any), and, with ``resized`` True (or
        False), only those that ask for the image resized (or only the originals).

        In order: wait ``delay`` seconds; with ``hold``, wait until ``release()``; answer
        ``status`` (e.g. 404, 500) instead of the file; say ``Content-Length:
        declared_length`` (fewer: the file is truncated there; more: the connection closes
        after the file); send only ``cut_after`` bytes, then close the connection. ``body``
        is sent instead of the file, and ``content_type`` is said instead of the file's.
        """
        fault = CdnFault(
            self,
            times=times,
            filename=filename,
            delay=delay,
            hold=hold,
            status=status,
            cut_after=cut_after,
            declared_length=declared_length,
            resized=resized,
            body=body,
            content_type=content_type,
        )
        self._cdn.append(fault)
        return fault

    def clear(self) -> None:
        """End every fault and release every held CDN response."""
        for fault in [*self._rest, *self._cdn]:
            fault.clear()

    def _remove(self, fault: Fault) -> None:
        for faults in (self._rest, self._cdn):
            with contextlib.suppress(ValueError):
                faults.remove(fault)  # type: ignore[arg-type]

    # ----------------------------------------------------------------------------- serving

    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A REST call: answered by the first matching fault, else by ``handler``."""
        if not self._rest or not request.path.startswith(API_PREFIX):
            return await handler(request)
        path = request.path[len(API_PREFIX) :]
        fault = next((f for f in list(self._rest) if f.matches(request.method, path)), None)
        if fault is None:
            return await handler(request)
        fault._take()
        if fault.applied:
            await handler(request)
            fault.calls.append(Call(request.method, path))
        else:
            body = await request.read() if request.can_read_body else b""
            fault.calls.append(Call(request.method, path, body))
        if not fault.active and not isinstance(fault, RateLimit):
            self._remove(fault)
        return fault.answer()

    async def serve_file(
        self, request: web.Request, stored: StoredFile
    ) -> web.StreamResponse | None:
        """A CDN download changed by the first matching fault; None: serve it normally."""
        resized = any(key in request.query for key in ("width", "height", "format"))
        fault = next((f for f in list(self._cdn) if f.matches(stored.filename, resized)), None)
        if fault is None:
            return None
        fault._take()
        fault.calls.append(Call(request.method, request.path))
        if not fault.active:
            self._remove(fault)
        return await fault.respond(request, stored)
