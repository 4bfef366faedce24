"""The gateway: WebSocket connections, identified sessions, dispatch filtered by intents and
shards, and RESUME with the events a session missed.

HELLO, IDENTIFY (token check: close 4004; privileged intents the server does not grant: close
4014; the shard checked as `shards` says: 4010, 4011, INVALID_SESSION past max_concurrency),
READY + one GUILD_CREATE per guild of the session's shard, HEARTBEAT/ACK, RESUME (missed events
replayed, then RESUMED; unknown session: INVALID_SESSION), REQUEST_GUILD_MEMBERS (one
GUILD_MEMBERS_CHUNK per guild of the shard), sequence numbers, and ``compress=zlib-stream``
(binary zlib frames; otherwise JSON text frames). A guild's events go to the sessions of its
shard only (unsharded sessions get them all; events of no guild go to shard 0). Without
MESSAGE_CONTENT the content, embeds, attachments and components of other users' messages are
blanked unless the bot is mentioned, as on Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from playground.discord import payloads
from playground.discord.guilds import guild_create
from playground.discord.protocol import (
    EVENT_INTENTS,
    HEARTBEAT_INTERVAL_MS,
    INTENT_MESSAGE_CONTENT,
    PRIVILEGED_INTENTS,
)
from playground.discord.shards import SessionStarts, Shard, holds

if TYPE_CHECKING:
    from playground.discord.server import DiscordServer

log = logging.getLogger(__name__)

BACKLOG_SIZE = 1000  # events kept per session for RESUME
# discord.py's keep-alive thread notes when it sent a HEARTBEAT only after the event loop has
# sent it and the thread has woken; an ACK answered at once over loopback is often read first,
# so discord.py measures from the heartbeat before (41 s "behind"). Discord's ACK comes after a
# network round trip: the look-alike answers after one too.
HEARTBEAT_ACK_DELAY = 0.25
_HELLO_TRACE = ["fake-discord"]
_RECORDED = ("MESSAGE_CREATE", "INTERACTION_CREATE")  # whose deliveries are kept, by id


@dataclass
class Session:
    """An identified gateway session; survives its connection so it can be resumed."""

    session_id: str
    intents: int
    shard: Shard | None = None  # (id, count); None: identified without sharding, every guild
    seq: int = 0
    backlog: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=BACKLOG_SIZE))
    connection: Connection | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Connection:
    """One gateway WebSocket, sending JSON text frames or zlib-stream binary frames."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        compress: bool,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.compressor = zlib.compressobj() if compress else None
        self.session: Session | None = None
        self.closed_by_server = False
        self._lock = asyncio.Lock()
        self._acks: set[asyncio.Task[None]] = set()

    async def send(self, payload: dict[str, Any]) -> bool:
        """Send one gateway payload; False when the socket is already gone."""
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self.ws.closed:
                return False
            try:
                if self.compressor is not None:
                    data = self.compressor.compress(text.encode())
                    data += self.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                log.debug("gateway send failed: %s", exc)
                return False
        return True

    def ack_later(self, delay: float) -> None:
        """Send a HEARTBEAT_ACK after `delay` seconds (a network round trip)."""
        task = asyncio.create_task(self._ack(delay))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _ack(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.send(_op(11))

    def cancel_acks(self) -> None:
        for task in self._acks:
            task.cancel()

    async def close(self, code: int, message: str = "") -> None:
        self.closed_by_server = True
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message.encode())

    def abort(self) -> None:
        """Cut the TCP connection without a close frame, as a network failure does."""
        self.closed_by_server = True
        if self.transport is not None:
            self.transport.abort()


def _op(op: int, data: Any = None) -> dict[str, Any]:
    return {"op": op, "d": data, "s": None, "t": None}


class Gateway:
    """Every session and connection of the server's one bot (one per shard, across
    processes)."""

    def __init__(self, server: DiscordServer) -> None:
        self.server = server
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self.heartbeat_interval_ms = HEARTBEAT_INTERVAL_MS  # announced in HELLO
        self.heartbeat_ack_delay = HEARTBEAT_ACK_DELAY
        self.ready = asyncio.Event()  # set once a bot has identified
        self.closing = False
        self.starts = SessionStarts(server.sharding)
        # MESSAGE_CREATE / INTERACTION_CREATE id -> the sessions it was sent to (the newest)
        self.deliveries: OrderedDict[str, list[tuple[str, Shard | None]]] = OrderedDict()

    @property
    def connected_sessions(self) -> int:
        return sum(1 for s in self.sessions.values() if s.connection is not None)

    def shard_sessions(self) -> dict[int, Session]:
        """The connected sharded sessions, by shard id (the newest when there are several)."""
        found: dict[int, Session] = {}
        for session in self.sessions.values():
            if session.shard is not None and session.connection is not None:
                found[session.shard[0]] = session
        return found

    # ----------------------------------------------------------------------------- dispatch

    def _visible(self, session: Session, event: str, data: dict[str, Any]) -> dict | None:
        """The event as this session may see it, or None when its intents filter it out."""
        needed = EVENT_INTENTS.get(event, 0)
        if needed and not session.intents & needed:
            return None
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and not (
            session.intents & INTENT_MESSAGE_CONTENT
        ):
            bot_id = self.server.application_id
            mentioned = any(int(u["id"]) == bot_id for u in data.get("mentions", []))
            if int(data["author"]["id"]) != bot_id and not mentioned:
                data = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH to every session holding its guild (buffered for RESUME when
        disconnected): all of them unsharded, else the guild's shard (no guild: shard 0)."""
        guild_id = data.get("guild_id")
        targets = [s for s in list(self.sessions.values()) if holds(s.shard, guild_id)]
        if event in _RECORDED and "id" in data:
            self._record(str(data["id"]), targets)
        for session in targets:
            await self._send_event(session, event, data)

    def _record(self, event_id: str, sessions: list[Session]) -> None:
        self.deliveries[event_id] = [(s.session_id, s.shard) for s in sessions]
        while len(self.deliveries) > self.server.state.limits.records:
            self.deliveries.popitem(last=False)

    async def _send_event(self, session: Session, event: str, data: dict[str, Any]) -> None:
        visible = self._visible(session, event, data)
        if visible is None:
            return
        async with session.lock:
            session.seq += 1
            payload = {"op": 0, "t": event, "s": session.seq, "d": visible}
            session.backlog.append(payload)
            if session.connection is not None:
                await session.connection.send(payload)

    async def drop_connections(self, code: int = 4000, *, abrupt: bool = False) -> int:
        connections = list(self.connections)
        if abrupt:
            for connection in connections:
                connection.abort()
        else:
            await asyncio.gather(*(c.close(code, "dropped by test server") for c in connections))
        return len(connections)

    async def drop_shard(self, shard_id: int, code: int = 4000, *, abrupt: bool = False) -> int:
        """Drop the connection of shard ``shard_id``'s session (it stays resumable)."""
        session = self.shard_sessions().get(shard_id)
        if session is None or session.connection is None:
            return 0
        if abrupt:
            session.connection.abort()
        else:
            await session.connection.close(code, "dropped by test server")
        return 1

    async def close(self) -> None:
        self.closing = True
        await asyncio.gather(*(c.close(1001, "server shutting down") for c in self.connections))

    # ----------------------------------------------------------------------------- sockets

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /gateway``: one bot connection, from HELLO to close."""
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        if self.closing:
            await ws.close(code=1001)
            return ws
        compress = request.query.get("compress") == "zlib-stream"
        connection = Connection(ws, compress, request.transport)
        self.connections.add(connection)
        log.debug("gateway connection from %s (%s)", request.remote, request.query_string)
        try:
            hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": _HELLO_TRACE}
            await connection.send(_op(10, hello))
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    text = msg.data
                elif msg.type is WSMsgType.BINARY:
                    text = msg.data.decode("utf-8", "replace")
                else:
                    break
                try:
                    payload = json.loads(text)
                    op = payload["op"]
                except (ValueError, KeyError, TypeError):
                    await connection.close(4002, "Error while decoding payload.")
                    break
                await self._handle_op(connection, op, payload.get("d"))
        finally:
            connection.cancel_acks()
            self.connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
                client_ended = not connection.closed_by_server and not self.closing
                if client_ended and ws.close_code in (1000, 1001):
                    # A client closing with 1000/1001 ends its session (Discord does this).
                    self.sessions.pop(session.session_id, None)
            log.debug("gateway connection closed (%s)", ws.close_code)
        return ws

    async def _handle_op(self, connection: Connection, op: int, data: Any) -> None:
        if op == 1:  # HEARTBEAT
            connection.ack_later(self.heartbeat_ack_delay)
        elif op == 2:  # IDENTIFY
            await self._identify(connection, data or {})
        elif op == 6:  # RESUME
            await self._resume(connection, data or {})
        elif connection.session is None:
            await connection.close(4003, "Not authenticated.")
        elif op == 3:  # PRESENCE_UPDATE: accepted, nothing shows presences
            pass
        elif op == 8:  # REQUEST_GUILD_MEMBERS
            await self._members_chunks(connection.session, data or {})
        elif op == 4:  # VOICE_STATE_UPDATE
            log.warning("fake Discord has no voice; ignoring op 4")
        else:
            log.warning("fake Discord: unknown gateway op %s", op)
            await connection.close(4001, "Unknown opcode.")

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> None:
        server = self.server
        if connection.session is not None:
            await connection.close(4005, "Already authenticated.")
            return
        if data.get("token") != server.token:
            await connection.close(4004, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await connection.close(4013, "Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS and not server.privileged_intents:
            await connection.close(4014, "Disallowed intent(s).")
            return
        shard, code, reason = self.starts.check(data.get("shard"), server.state.guilds)
        if code:
            self.starts.refuse(shard, str(code))
            log.info("bot IDENTIFY refused: %s (shard %s)", reason, data.get("shard"))
            await connection.close(code, reason)
            return
        if not self.starts.admit(shard):
            log.info("bot IDENTIFY of shard %s refused: over max_concurrency", shard)
            await connection.send(_op(9, False))
            return
        if shard is not None:  # a new session of a shard replaces its disconnected ones
            for old in [s for s in self.sessions.values() if s.shard == shard]:
                if old.connection is None:
                    self.sessions.pop(old.session_id, None)
        session = Session(session_id=secrets.token_hex(16), intents=intents, shard=shard)
        session.connection = connection
        connection.session = session
        self.sessions[session.session_id] = session
        guilds = [g for g in server.state.guilds.values() if holds(shard, g.id)]
        ready = payloads.ready(
            server.bot_user,
            [g.id for g in guilds],
            session_id=session.session_id,
            resume_url=server.gateway_url,
            application_flags=payloads.application_flags(server.privileged_intents),
            shard=list(shard) if shard is not None else None,
        )
        await self._send_event(session, "READY", ready)
        for guild in guilds:
            await self._send_event(session, "GUILD_CREATE", guild_create(server, guild, intents))
        log.info(
            "bot identified (session %s, intents %d%s)",
            session.session_id,
            intents,
            f", shard {shard[0]} of {shard[1]}: {len(guilds)} guilds" if shard else "",
        )
        self.ready.set()

    async def _resume(self, connection: Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.server.token:
            await connection.close(4004, "Authentication failed.")
            return
        session = self.sessions.get(str(data.get("session_id")))
        if session is None:
            await connection.send(_op(9, False))
            return
        async with session.lock:
            old = session.connection
            session.connection = connection
            connection.session = session
            seq = data.get("seq") or 0
            missed = [p for p in session.backlog if p["s"] > seq]
            for payload in missed:
                await connection.send(payload)
        if old is not None and old is not connection:
            await old.close(4000, "Session resumed elsewhere.")
        await self._send_event(session, "RESUMED", {"_trace": _HELLO_TRACE})
        log.info("bot resumed session %s (%d missed events)", session.session_id, len(missed))

    async def _members_chunks(self, session: Session, data: dict[str, Any]) -> None:
        state = self.server.state
        raw = data.get("guild_id")
        guild_ids = raw if isinstance(raw, list) else [raw]
        for raw_id in guild_ids:
            guild = state.guilds.get(int(raw_id or 0))
            if guild is None or not holds(session.shard, guild.id):
                continue
            query = str(data.get("query") or "").lower()
            limit = int(data.get("limit") or 0) or len(guild.members)
            wanted = data.get("user_ids")
            if wanted is not None:
                ids = [int(u) for u in (wanted if isinstance(wanted, list) else [wanted])]
                found = [uid for uid in ids if uid in guild.members]
                not_found = [str(uid) for uid in ids if uid not in guild.members]
            else:
                found = [
                    uid
                    for uid in guild.members
                    if str(state.users[uid]["username"]).lower().startswith(query)
                ][:limit]
                not_found = []
            chunk: dict[str, Any] = {
                "guild_id": str(guild.id),
                "members": [state.member(guild, uid) for uid in found],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": not_found,
            }
            if data.get("presences"):
                chunk["presences"] = []
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            await self._send_event(session, "GUILD_MEMBERS_CHUNK", chunk)
