"""A small, in-process look-alike of Discord's API v10 for tests and the local playground.

``DiscordServer`` is an aiohttp application that speaks just enough of Discord's REST API and
gateway for the real, unmodified discord.py client to log in, receive messages and
interactions, and answer them. Point discord.py at it with ``bot._endpoints.use_endpoints``
(``server.api_url``, ``server.gateway_url``). One guild ("Jedi Temple") with one text channel
("general"), one bot user (whose id is also the application id) and one human ("padawan").

What it implements
------------------
* Auth: every REST call must carry ``Authorization: Bot <token>`` (401 with Discord's error
  JSON otherwise, which discord.py turns into ``LoginFailure``); ``GET /gateway``, interaction
  callbacks and webhook-token routes need no token, as on Discord.
* Gateway (``/gateway``): HELLO, IDENTIFY (token check: close 4004; privileged intents when
  the server is created with ``privileged_intents=False``: close 4014), READY +
  GUILD_CREATE, HEARTBEAT/ACK, RESUME (missed events replayed, then RESUMED; unknown
  session: INVALID_SESSION), REQUEST_GUILD_MEMBERS (one GUILD_MEMBERS_CHUNK), sequence numbers,
  ``compress=zlib-stream`` (binary zlib frames; otherwise JSON text frames). Events are
  filtered by intents like Discord does (no MESSAGE_CREATE without GUILD_MESSAGES; without
  MESSAGE_CONTENT the content, embeds, attachments and components of other users' messages
  are blanked unless the bot is mentioned). The bot's own messages are dispatched back to it.
* REST: users, application info, gateway, channel + guild reads, members, roles, messages
  (create with JSON or multipart ``payload_json`` + ``files[n]``, replies, embeds with
  ``attachment://`` images, edit, delete, get, history with limit/before/after/around),
  typing, reactions (add/remove own, remove others'), application commands (global and guild;
  bulk overwrite keeps ids of unchanged names), interaction callbacks (with ``with_response``),
  webhook followups and ``@original`` get/edit/delete, upload size limit (413, code 40005).
* CDN: ``GET /attachments/{channel_id}/{attachment_id}/{filename}`` serves uploaded bytes.
* Simulation helpers: ``post_message``, ``edit_message``, ``delete_message``,
  ``simulate_typing``, ``invoke_slash_command``, ``invoke_message_command``,
  ``invoke_user_command``, ``drop_connections``, ``request_reconnect``; recordings
  (``messages``, ``interaction_responses``, ``typing_events``, ``application_commands``);
  waiting (``wait_for_message``, ``wait_for_reply``); an event feed for UIs (``subscribe``).

What it does not implement
--------------------------
DMs, threads, more than one guild or channel, voice, presences, rate limits (no ratelimit
headers are sent), components/modals being *used* (responses are only recorded),
autocomplete, permission checks beyond "only the author may edit", audit logs, webhooks
other than interaction ones, stickers, polls, avatars/icons (CDN only serves attachments),
gateway payload compression (``"compress": true`` in IDENTIFY) and zstd transport
compression (clients asking for it get text frames, which discord.py accepts), and
sharding (``GET /gateway/bot`` says 1 shard). Unknown routes answer 404 with Discord's error
JSON and log a warning, so gaps are visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import itertools
import json
import logging
import mimetypes
import os
import re
import secrets
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import quote

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

API_VERSION = 10
API_PREFIX = f"/api/v{API_VERSION}"
DISCORD_EPOCH_MS = 1_420_070_400_000
HEARTBEAT_INTERVAL_MS = 41_250
BACKLOG_SIZE = 1000  # events kept per session for RESUME

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_GUILD_MESSAGE_TYPING = 1 << 11
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

_EVENT_INTENTS = {
    "MESSAGE_CREATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": INTENT_GUILD_MESSAGES,
    "TYPING_START": INTENT_GUILD_MESSAGE_TYPING,
    "MESSAGE_REACTION_ADD": INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE": INTENT_GUILD_MESSAGE_REACTIONS,
}

# Permission bits.
_P = {
    "create_instant_invite": 0,
    "add_reactions": 6,
    "view_channel": 10,
    "send_messages": 11,
    "manage_messages": 13,
    "embed_links": 14,
    "attach_files": 15,
    "read_message_history": 16,
    "use_external_emojis": 18,
    "change_nickname": 26,
    "use_application_commands": 31,
    "create_public_threads": 35,
    "use_external_stickers": 37,
    "send_messages_in_threads": 38,
}
EVERYONE_PERMISSIONS = sum(1 << bit for name, bit in _P.items() if name != "manage_messages")
BOT_ROLE_PERMISSIONS = EVERYONE_PERMISSIONS | (1 << _P["manage_messages"])

# Message types and flags.
MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
MESSAGE_CHAT_INPUT_COMMAND = 20
MESSAGE_CONTEXT_MENU_COMMAND = 23
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7

# Application command and option types.
COMMAND_CHAT_INPUT, COMMAND_USER, COMMAND_MESSAGE = 1, 2, 3
OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP = 1, 2
OPT_USER, OPT_CHANNEL, OPT_ROLE, OPT_MENTIONABLE, OPT_ATTACHMENT = 6, 7, 8, 9, 11

# Interaction callback types that create or edit the original response message.
CALLBACK_MESSAGE = 4
CALLBACK_DEFERRED_MESSAGE = 5

_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
_MENTION = re.compile(r"<@!?(\d+)>")
_FILE_FIELD = re.compile(r"^files?\[?(\d*)\]?$")
_NO_AUTH = re.compile(rf"^{API_PREFIX}/(gateway/?$|interactions/|webhooks/\d+/[^/]+)")


def _json(data: Any, status: int = 200) -> web.Response:
    """A JSON response with exactly ``Content-Type: application/json``.

    discord.py only parses bodies whose content type is exactly that (aiohttp's
    ``json_response`` appends ``; charset=utf-8``, which makes discord.py see plain text).
    """
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})


class DiscordError(Exception):
    """An error answered the way Discord does: ``{"message": ..., "code": ...}``."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return _json(body, status=self.status)


def _form_error(path: str, code: str, message: str) -> DiscordError:
    """A 400 'Invalid Form Body' error (code 50035) for one field, dotted path allowed."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path.split(".")):
        errors = {key: errors}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


def _unknown(what: str, code: int) -> DiscordError:
    return DiscordError(404, code, f"Unknown {what}")


class _Snowflakes:
    """Time-based, strictly increasing Discord snowflakes."""

    def __init__(self) -> None:
        self._last = 0
        self._increment = itertools.count()

    def next(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        value = (ms << 22) | (1 << 17) | ((os.getpid() & 0x1F) << 12)
        value |= next(self._increment) & 0xFFF
        value = max(value, self._last + 1)
        self._last = value
        return value


_snowflakes = _Snowflakes()


def snowflake() -> int:
    """A new, increasing snowflake id."""
    return _snowflakes.next()


def snowflake_time(value: int) -> datetime:
    """When a snowflake was created."""
    return datetime.fromtimestamp(((value >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of an image, when Pillow can read its header."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a project dependency
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


def _safe_filename(name: str) -> str:
    """Discord-like filename cleanup: keep word characters, dots and dashes."""
    name = os.path.basename(name or "").strip() or "unknown"
    return re.sub(r"[^\w.\-]", "_", name)


@dataclass
class _StoredFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class _Upload:
    index: int
    filename: str
    data: bytes


@dataclass
class _Session:
    """An identified gateway session; survives its connection so it can be resumed."""

    session_id: str
    intents: int
    seq: int = 0
    backlog: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=BACKLOG_SIZE))
    connection: _Connection | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _Connection:
    """One gateway WebSocket, sending JSON text frames or zlib-stream binary frames."""

    def __init__(self, ws: web.WebSocketResponse, compress: bool) -> None:
        self.ws = ws
        self.compressor = zlib.compressobj() if compress else None
        self.session: _Session | None = None
        self.closed_by_server = False
        self._lock = asyncio.Lock()

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

    async def close(self, code: int, message: str = "") -> None:
        self.closed_by_server = True
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message.encode())


@dataclass
class _Interaction:
    payload: dict[str, Any]
    command_type: int
    acknowledged: bool = False
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        return str(self.payload["token"])


@dataclass
class _Waiter:
    predicate: Callable[[dict[str, Any]], bool]
    future: asyncio.Future[dict[str, Any]]


class DiscordServer:
    """A local Discord API v10 + gateway for one bot, one guild and one text channel."""

    def __init__(
        self,
        token: str = "test-token",
        host: str = "127.0.0.1",
        port: int = 0,
        max_upload_bytes: int = 25 * 1024 * 1024,
        privileged_intents: bool = True,
        *,
        bot_name: str = "JediSith",
        guild_name: str = "Jedi Temple",
        channel_name: str = "general",
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.max_upload_bytes = max_upload_bytes
        self.privileged_intents = privileged_intents

        self.application_id = snowflake()  # bots' user id equals their application id
        self.guild_id = snowflake()
        self.channel_id = snowflake()
        self.bot_role_id = snowflake()
        self.created_at = _now_iso()

        self.bot_user: dict[str, Any] = self._make_user(
            self.application_id, bot_name.lower(), bot=True, global_name=None
        )
        self.human: dict[str, Any] = self._make_user(snowflake(), "padawan", global_name="Padawan")
        self.users: dict[int, dict[str, Any]] = {}
        self._members: dict[int, dict[str, Any]] = {}  # member payloads without "user"
        self._add_member(self.bot_user, roles=[str(self.bot_role_id)])
        self._add_member(self.human)

        self.guild_name = guild_name
        self.channel: dict[str, Any] = {
            "id": str(self.channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": channel_name,
            "position": 0,
            "permission_overwrites": [],
            "topic": "Is it a Jedi or a Sith? Post a picture.",
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }
        self.roles: list[dict[str, Any]] = [
            self._make_role(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0),
            self._make_role(self.bot_role_id, bot_name, BOT_ROLE_PERMISSIONS, position=1),
        ]
        self.roles[1]["managed"] = True
        self.roles[1]["tags"] = {"bot_id": str(self.application_id)}

        self.messages: list[dict[str, Any]] = []
        self.interaction_responses: list[dict[str, Any]] = []
        self.typing_events: list[tuple[int, float]] = []
        self.bot_ready = asyncio.Event()
        self.presence: dict[str, Any] | None = None

        self._files: dict[int, _StoredFile] = {}
        self._commands: dict[int, dict[str, Any]] = {}
        self._interactions: dict[str, _Interaction] = {}  # by token
        self._reactions: dict[int, dict[str, list[int]]] = {}  # message id -> emoji -> user ids
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._subscribers: list[asyncio.Queue[dict[str, Any]]] = []
        self._waiters: list[_Waiter] = []
        self._runner: web.AppRunner | None = None
        self._closing = False

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start listening; ``port=0`` picks a free port (see ``base_url``)."""
        app = web.Application(middlewares=[self._middleware], client_max_size=1024**3)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the real port when port=0
        log.info("fake Discord listening on %s", self.base_url)

    async def close(self) -> None:
        """Close every gateway socket (code 1001) and stop the HTTP server."""
        self._closing = True
        await asyncio.gather(*(c.close(1001, "server shutting down") for c in self._connections))
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.cancel()
        self._waiters.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """``http://host:port``; also the CDN base for attachments."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The REST base, e.g. ``http://127.0.0.1:PORT/api/v10`` (``DISCORD_API_URL``)."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """The gateway WebSocket URL, e.g. ``ws://127.0.0.1:PORT/gateway``."""
        return f"ws://{self.host}:{self.port}/gateway"

    @property
    def application_commands(self) -> list[dict[str, Any]]:
        """Registered global and guild commands (guild ones carry ``guild_id``)."""
        return list(self._commands.values())

    @property
    def connected_sessions(self) -> int:
        """How many identified sessions currently have a live socket."""
        return sum(1 for s in self._sessions.values() if s.connection is not None)

    # ----------------------------------------------------------------------------- models

    @staticmethod
    def _make_user(
        user_id: int, username: str, *, bot: bool = False, global_name: str | None = None
    ) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": str(user_id),
            "username": username,
            "discriminator": "0",
            "global_name": global_name,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }
        if bot:
            user.update(bot=True, verified=True, mfa_enabled=False, locale="en-US", email=None)
        return user

    @staticmethod
    def _make_role(role_id: int, name: str, permissions: int, *, position: int) -> dict[str, Any]:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _add_member(self, user: dict[str, Any], roles: list[str] | None = None) -> None:
        user_id = int(user["id"])
        self.users[user_id] = user
        self._members.setdefault(
            user_id,
            {
                "roles": roles or [],
                "nick": None,
                "avatar": None,
                "banner": None,
                "joined_at": _now_iso(),
                "premium_since": None,
                "deaf": False,
                "mute": False,
                "flags": 0,
                "pending": False,
                "communication_disabled_until": None,
            },
        )

    def _member(
        self, user_id: int, *, with_user: bool = True, permissions: bool = False
    ) -> dict[str, Any]:
        member = copy.deepcopy(self._members[user_id])
        if with_user:
            member["user"] = copy.deepcopy(self.users[user_id])
        if permissions:
            member["permissions"] = str(self._permissions(user_id))
        return member

    def _permissions(self, user_id: int) -> int:
        value = EVERYONE_PERMISSIONS
        for role in self.roles:
            if role["id"] in self._members.get(user_id, {}).get("roles", []):
                value |= int(role["permissions"])
        return value

    def _premium_tier(self) -> int:
        """The tier whose upload limit (as discord.py knows it) matches max_upload_bytes."""
        if self.max_upload_bytes >= 100 * 1024 * 1024:
            return 3
        return 2 if self.max_upload_bytes >= 50 * 1024 * 1024 else 0

    def _application(self) -> dict[str, Any]:
        flags = (1 << 12) | (1 << 14) | (1 << 18) if self.privileged_intents else 0
        flags |= 1 << 23  # APPLICATION_COMMAND_BADGE
        return {
            "id": str(self.application_id),
            "name": self.bot_user["username"],
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": flags,
            "owner": copy.deepcopy(self.human),
            "team": None,
            "bot": copy.deepcopy(self.bot_user),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": 1,
            "tags": [],
            "integration_types_config": {"0": {}},
        }

    def _guild_base(self) -> dict[str, Any]:
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "owner_id": self.human["id"],
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": copy.deepcopy(self.roles),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500_000,
            "vanity_url_code": None,
            "description": None,
            "premium_tier": self._premium_tier(),
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "nsfw": False,
            "premium_progress_bar_enabled": False,
        }

    def _guild_create(self, intents: int) -> dict[str, Any]:
        guild = self._guild_base()
        if intents & INTENT_GUILD_MEMBERS:
            member_ids = list(self._members)
        else:  # Discord only sends the bot itself (and voice members) without the intent
            member_ids = [self.application_id]
        guild.update(
            joined_at=self.created_at,
            large=False,
            unavailable=False,
            lazy=True,
            member_count=len(self._members),
            members=[self._member(uid) for uid in member_ids],
            channels=[copy.deepcopy(self.channel)],
            threads=[],
            presences=[],
            voice_states=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
        )
        return guild

    def _cdn_url(self, attachment_id: int, filename: str) -> str:
        return f"{self.base_url}/attachments/{self.channel_id}/{attachment_id}/{quote(filename)}"

    def _store_attachment(
        self,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        filename = _safe_filename(filename)
        attachment_id = snowflake()
        ctype = content_type
        if not ctype or ctype == "application/octet-stream":
            ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self._files[attachment_id] = _StoredFile(filename, ctype, data)
        url = self._cdn_url(attachment_id, filename)
        attachment: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": ctype,
            "flags": 0,
        }
        if description:
            attachment["description"] = description
        if ephemeral:
            attachment["ephemeral"] = True
        if ctype.startswith("image/") and (size := _image_size(data)) is not None:
            attachment["width"], attachment["height"] = size
        return attachment

    def _mentions(self, content: str, reply_to: dict[str, Any] | None, allowed: Any) -> list:
        ids = [int(m) for m in _MENTION.findall(content or "")]
        replied_user = not isinstance(allowed, dict) or allowed.get("replied_user", True)
        if reply_to is not None and replied_user:
            ids.append(int(reply_to["author"]["id"]))
        seen: dict[int, dict[str, Any]] = {}
        for user_id in ids:
            if user_id in self.users and user_id not in seen:
                seen[user_id] = copy.deepcopy(self.users[user_id])
        return list(seen.values())

    def _resolve_embeds(self, embeds: list[Any], attachments: list[dict[str, Any]]) -> list:
        """Give embeds a type and turn ``attachment://name`` images into CDN URLs."""
        by_name = {a["filename"]: a for a in attachments}
        result = []
        for embed in embeds or []:
            embed = copy.deepcopy(embed)
            embed.setdefault("type", "rich")
            for key in ("image", "thumbnail"):
                media = embed.get(key)
                if isinstance(media, dict) and str(media.get("url", "")).startswith(
                    "attachment://"
                ):
                    target = by_name.get(media["url"][len("attachment://") :])
                    if target is not None:
                        media.update(url=target["url"], proxy_url=target["proxy_url"])
                        if "width" in target:
                            media.update(width=target["width"], height=target["height"])
            result.append(embed)
        return result

    def _new_message(
        self,
        author: dict[str, Any],
        *,
        content: str = "",
        attachments: list[dict[str, Any]] | None = None,
        embeds: list[Any] | None = None,
        reply_to: dict[str, Any] | None = None,
        allowed_mentions: Any = None,
        message_type: int | None = None,
        flags: int = 0,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        message_id = snowflake()
        attachments = attachments or []
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(self.channel_id),
            "guild_id": str(self.guild_id),
            "author": copy.deepcopy(author),
            "content": content or "",
            "timestamp": snowflake_time(message_id).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in (content or ""),
            "mentions": self._mentions(content, reply_to, allowed_mentions),
            "mention_roles": [],
            "attachments": attachments,
            "embeds": self._resolve_embeds(embeds or [], attachments),
            "pinned": False,
            "type": MESSAGE_REPLY if reply_to is not None else MESSAGE_DEFAULT,
            "flags": flags,
            "components": [],
        }
        if message_type is not None:
            message["type"] = message_type
        if reply_to is not None:
            message["message_reference"] = {
                "type": 0,
                "message_id": reply_to["id"],
                "channel_id": reply_to["channel_id"],
                "guild_id": str(self.guild_id),
            }
            referenced = copy.deepcopy(reply_to)
            referenced.pop("referenced_message", None)
            message["referenced_message"] = referenced
        if extra:
            message.update(copy.deepcopy(dict(extra)))
        return message

    def _find_message(self, message_id: int) -> dict[str, Any]:
        for message in self.messages:
            if int(message["id"]) == message_id:
                return message
        raise _unknown("Message", 10008)

    def _visible_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if not m["flags"] & FLAG_EPHEMERAL]

    # ----------------------------------------------------------------------------- events

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue receiving every channel event: ``{"type": ..., "data": ...}``.

        Types: ``message_create``/``message_update`` (data: the message),
        ``message_delete`` (``{"id", "channel_id"}``), ``typing_start``
        (``{"user_id", "channel_id", "timestamp", "user"}``).
        """
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop feeding a queue from ``subscribe``."""
        with contextlib.suppress(ValueError):
            self._subscribers.remove(queue)

    def _publish(self, event_type: str, data: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            queue.put_nowait({"type": event_type, "data": copy.deepcopy(data)})

    def _gateway_message(self, message: dict[str, Any]) -> dict[str, Any]:
        data = copy.deepcopy(message)
        author_id = int(message["author"]["id"])
        if "webhook_id" not in message and author_id in self._members:
            data["member"] = self._member(author_id, with_user=False)
        return data

    async def _message_event(self, kind: str, message: dict[str, Any]) -> None:
        """Record a created or updated message everywhere: UI feed, waiters, the bot."""
        self._publish(f"message_{kind}", message)
        self._check_waiters(message)
        if not message["flags"] & FLAG_EPHEMERAL:
            await self._dispatch(f"MESSAGE_{kind.upper()}", self._gateway_message(message))

    async def _add_message(self, message: dict[str, Any]) -> dict[str, Any]:
        self.messages.append(message)
        if not message["flags"] & FLAG_EPHEMERAL:
            self.channel["last_message_id"] = message["id"]
        await self._message_event("create", message)
        return message

    async def _remove_message(self, message: dict[str, Any]) -> None:
        self.messages.remove(message)
        self._reactions.pop(int(message["id"]), None)
        data = {"id": message["id"], "channel_id": message["channel_id"]}
        self._publish("message_delete", data)
        if not message["flags"] & FLAG_EPHEMERAL:
            await self._dispatch("MESSAGE_DELETE", {**data, "guild_id": str(self.guild_id)})

    def _is_bot_message(self, message: dict[str, Any]) -> bool:
        return int(message["author"]["id"]) == self.application_id

    def _check_waiters(self, message: dict[str, Any]) -> None:
        if not self._is_bot_message(message):
            return
        for waiter in list(self._waiters):
            if waiter.future.done():
                self._waiters.remove(waiter)
                continue
            try:
                matched = waiter.predicate(message)
            except Exception as exc:
                waiter.future.set_exception(exc)
                self._waiters.remove(waiter)
                continue
            if matched:
                waiter.future.set_result(message)
                self._waiters.remove(waiter)

    async def wait_for_message(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """The first message by the bot matching ``predicate`` (already there or arriving).

        Messages are checked as they are created and again each time they are edited, so a
        predicate may wait for a particular state. Raises ``asyncio.TimeoutError``.
        """
        check = predicate or (lambda _message: True)
        for message in self.messages:
            if self._is_bot_message(message) and check(message):
                return message
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(check, future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def wait_for_reply(self, message_id: int | str, *, timeout: float = 10.0) -> dict:
        """The bot's answer to a message or an interaction, by that message/interaction id.

        Matches a bot message replying to ``message_id`` (``message_reference``) or
        responding to the interaction ``message_id`` (``interaction_metadata.id``; a deferred
        "thinking" message only counts once it has been filled in).
        """
        wanted = str(message_id)

        def is_reply(message: dict[str, Any]) -> bool:
            if (message.get("message_reference") or {}).get("message_id") == wanted:
                return True
            metadata = message.get("interaction_metadata") or {}
            return metadata.get("id") == wanted and not message["flags"] & FLAG_LOADING

        return await self.wait_for_message(is_reply, timeout=timeout)

    # ----------------------------------------------------------------------------- simulation

    def _author(self, author: dict[str, Any] | None) -> dict[str, Any]:
        """The user for an author dict (default: the human); unknown ones join the guild."""
        if author is None:
            return self.human
        if author.get("id") is None:
            name = str(author.get("username", "visitor"))
            for user in self.users.values():
                if user["username"] == name:
                    return user
        user = self._make_user(
            int(author.get("id") or snowflake()),
            str(author.get("username", "visitor")),
            bot=bool(author.get("bot", False)),
            global_name=author.get("global_name"),
        )
        user.update({k: v for k, v in author.items() if k != "id"})
        user_id = int(user["id"])
        if user_id not in self.users:
            self._add_member(user)
        return self.users[user_id]

    async def post_message(
        self,
        content: str,
        *,
        attachments: Sequence[tuple[str, bytes]] | Sequence[tuple[str, bytes, str]] = (),
        reply_to: int | None = None,
        author: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Post a message as a human (default "padawan") and dispatch MESSAGE_CREATE.

        ``attachments`` are ``(filename, bytes)`` or ``(filename, bytes, content_type)``;
        ``author`` is a user dict (at least ``username``; unknown users join the guild).
        """
        user = self._author(author)
        stored = []
        for item in attachments:
            filename, data = item[0], item[1]
            ctype = item[2] if len(item) > 2 else None  # type: ignore[misc]
            stored.append(self._store_attachment(filename, data, content_type=ctype))
        referenced = self._find_message(int(reply_to)) if reply_to is not None else None
        message = self._new_message(user, content=content, attachments=stored, reply_to=referenced)
        return await self._add_message(message)

    async def edit_message(self, message_id: int, content: str) -> dict[str, Any]:
        """Edit any message's content (as its author) and dispatch MESSAGE_UPDATE."""
        message = self._find_message(int(message_id))
        message["content"] = content
        message["mentions"] = self._mentions(content, None, None)
        message["edited_timestamp"] = _now_iso()
        await self._message_event("update", message)
        return message

    async def delete_message(self, message_id: int) -> None:
        """Delete a message and dispatch MESSAGE_DELETE."""
        await self._remove_message(self._find_message(int(message_id)))

    async def simulate_typing(self, author: dict[str, Any] | None = None) -> None:
        """A human starts typing: TYPING_START to the bot and the UI feed."""
        user = self._author(author)
        data = self._typing(int(user["id"]))
        await self._dispatch("TYPING_START", {**data, "member": self._member(int(user["id"]))})

    def _typing(self, user_id: int) -> dict[str, Any]:
        now = time.time()
        self.typing_events.append((user_id, now))
        data = {
            "user_id": str(user_id),
            "channel_id": str(self.channel_id),
            "guild_id": str(self.guild_id),
            "timestamp": int(now),
        }
        self._publish("typing_start", {**data, "user": copy.deepcopy(self.users.get(user_id))})
        return data

    def _find_command(self, name: str, command_type: int) -> dict[str, Any]:
        for command in self._commands.values():
            if command["name"] == name and command.get("type", 1) == command_type:
                return command
        names = sorted(c["name"] for c in self._commands.values())
        raise LookupError(f"no registered command {name!r} of type {command_type}: {names}")

    def _interaction_payload(
        self, command: dict[str, Any], data: dict[str, Any], user: dict[str, Any]
    ) -> _Interaction:
        data = {"id": command["id"], "name": command["name"], "type": command["type"], **data}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        user_id = int(user["id"])
        payload = {
            "id": str(snowflake()),
            "application_id": str(self.application_id),
            "type": 2,
            "data": data,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(self.channel_id),
            "channel": copy.deepcopy(self.channel),
            "member": self._member(user_id, permissions=True),
            "token": secrets.token_urlsafe(48),
            "version": 1,
            "app_permissions": str(self._permissions(self.application_id)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": self.max_upload_bytes,
        }
        interaction = _Interaction(payload=payload, command_type=command["type"])
        self._interactions[interaction.token] = interaction
        return interaction

    def _option_value(
        self,
        option: dict[str, Any],
        value: Any,
        resolved: dict[str, dict[str, Any]],
        attachments: Sequence[tuple[str, bytes] | tuple[str, bytes, str]],
    ) -> Any:
        kind = option["type"]
        if kind == OPT_ATTACHMENT:
            if isinstance(value, int):
                value = attachments[value]
            filename, data = value[0], value[1]
            ctype = value[2] if len(value) > 2 else None
            stored = self._store_attachment(filename, data, content_type=ctype, ephemeral=True)
            resolved.setdefault("attachments", {})[stored["id"]] = stored
            return stored["id"]
        if kind in (OPT_USER, OPT_MENTIONABLE) and (
            isinstance(value, dict) or int(value) in self.users
        ):
            user = self._author(value) if isinstance(value, dict) else self.users[int(value)]
            user_id = int(user["id"])
            resolved.setdefault("users", {})[user["id"]] = copy.deepcopy(user)
            resolved.setdefault("members", {})[user["id"]] = self._member(
                user_id, with_user=False, permissions=True
            )
            return user["id"]
        if kind == OPT_CHANNEL:
            channel = {**copy.deepcopy(self.channel), "permissions": str(EVERYONE_PERMISSIONS)}
            resolved.setdefault("channels", {})[self.channel["id"]] = channel
            return self.channel["id"]
        if kind in (OPT_ROLE, OPT_MENTIONABLE):
            role = next((r for r in self.roles if r["id"] == str(value)), self.roles[0])
            resolved.setdefault("roles", {})[role["id"]] = copy.deepcopy(role)
            return role["id"]
        return value

    def _build_options(
        self,
        definitions: list[dict[str, Any]],
        values: Mapping[str, Any],
        resolved: dict[str, dict[str, Any]],
        attachments: Sequence[Any],
    ) -> list[dict[str, Any]]:
        by_name = {o["name"]: o for o in definitions}
        unknown = set(values) - set(by_name)
        if unknown:
            raise ValueError(f"unknown options {sorted(unknown)}; known: {sorted(by_name)}")
        free_attachments = list(range(len(attachments)))
        for name, value in values.items():
            if by_name[name]["type"] == OPT_ATTACHMENT and value in free_attachments:
                free_attachments.remove(value)
        options = []
        for definition in definitions:
            name = definition["name"]
            if name in values:
                value = values[name]
            elif definition["type"] == OPT_ATTACHMENT and free_attachments:
                value = free_attachments.pop(0)
            elif definition.get("required"):
                raise ValueError(f"missing required option {name!r}")
            else:
                continue
            resolved_value = self._option_value(definition, value, resolved, attachments)
            options.append({"name": name, "type": definition["type"], "value": resolved_value})
        return options

    async def _invoke(self, interaction: _Interaction) -> dict[str, Any]:
        await self._dispatch("INTERACTION_CREATE", interaction.payload)
        return interaction.payload

    async def invoke_slash_command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        attachments: Sequence[tuple[str, bytes]] | Sequence[tuple[str, bytes, str]] = (),
        *,
        user: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Invoke a registered slash command as the human; returns the interaction payload.

        ``name`` may be ``"command sub"`` or ``"command group sub"`` for subcommands. An
        attachment option's value is ``(filename, bytes[, content_type])`` or an index into
        ``attachments``; attachment options left out take ``attachments`` in order. Users
        are given as ids or user dicts. Wait for the answer with ``wait_for_reply(id)``.
        """
        root, *path = name.split()
        command = self._find_command(root, COMMAND_CHAT_INPUT)
        resolved: dict[str, dict[str, Any]] = {}
        definitions = command.get("options") or []
        chain: list[dict[str, Any]] = []
        for part in path:
            sub = next((o for o in definitions if o["name"] == part), None)
            if sub is None or sub["type"] not in (OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP):
                raise LookupError(f"{root!r} has no subcommand {part!r}")
            chain.append({"name": part, "type": sub["type"], "options": []})
            definitions = sub.get("options") or []
        leaf = self._build_options(definitions, options or {}, resolved, attachments)
        if chain:
            for outer, inner in itertools.pairwise(chain):
                outer["options"] = [inner]
            chain[-1]["options"] = leaf
            leaf = [chain[0]]
        data: dict[str, Any] = {"options": leaf}
        if resolved:
            data["resolved"] = resolved
        interaction = self._interaction_payload(command, data, self._author(user))
        return await self._invoke(interaction)

    async def invoke_message_command(
        self, name: str, target_message_id: int, *, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Invoke a registered message context-menu command on a message."""
        command = self._find_command(name, COMMAND_MESSAGE)
        target = self._find_message(int(target_message_id))
        data = {
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: copy.deepcopy(target)}},
        }
        interaction = self._interaction_payload(command, data, self._author(user))
        return await self._invoke(interaction)

    async def invoke_user_command(
        self, name: str, target_user_id: int, *, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Invoke a registered user context-menu command on a guild member."""
        command = self._find_command(name, COMMAND_USER)
        target_id = int(target_user_id)
        if target_id not in self.users:
            raise LookupError(f"unknown user {target_id}")
        key = str(target_id)
        data = {
            "target_id": key,
            "resolved": {
                "users": {key: copy.deepcopy(self.users[target_id])},
                "members": {key: self._member(target_id, with_user=False, permissions=True)},
            },
        }
        interaction = self._interaction_payload(command, data, self._author(user))
        return await self._invoke(interaction)

    async def drop_connections(self, code: int = 4000) -> int:
        """Close every bot socket from the server side (sessions stay resumable).

        With the default 4000 ("unknown error") discord.py reconnects and RESUMEs. Returns
        how many sockets were closed.
        """
        connections = list(self._connections)
        await asyncio.gather(*(c.close(code, "dropped by test server") for c in connections))
        return len(connections)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every bot, as Discord does before maintenance."""
        for connection in list(self._connections):
            await connection.send({"op": 7, "d": None, "s": None, "t": None})

    # ----------------------------------------------------------------------------- gateway

    def _for_session(self, session: _Session, event: str, data: dict[str, Any]) -> dict | None:
        """The event as this session may see it, or None when its intents filter it out."""
        needed = _EVENT_INTENTS.get(event, 0)
        if needed and not session.intents & needed:
            return None
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and not (
            session.intents & INTENT_MESSAGE_CONTENT
        ):
            mentioned = any(int(u["id"]) == self.application_id for u in data.get("mentions", []))
            if int(data["author"]["id"]) != self.application_id and not mentioned:
                data = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH to every session (buffered for RESUME when disconnected)."""
        for session in list(self._sessions.values()):
            await self._send_event(session, event, data)

    async def _send_event(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        visible = self._for_session(session, event, data)
        if visible is None:
            return
        async with session.lock:
            session.seq += 1
            payload = {"op": 0, "t": event, "s": session.seq, "d": visible}
            session.backlog.append(payload)
            if session.connection is not None:
                await session.connection.send(payload)

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        if self._closing:
            await ws.close(code=1001)
            return ws
        connection = _Connection(ws, request.query.get("compress") == "zlib-stream")
        self._connections.add(connection)
        log.debug("gateway connection from %s (%s)", request.remote, request.query_string)
        try:
            hello = {"heartbeat_interval": HEARTBEAT_INTERVAL_MS, "_trace": ["fake-discord"]}
            await connection.send({"op": 10, "d": hello, "s": None, "t": None})
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
            self._connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
                client_ended = not connection.closed_by_server and not self._closing
                if client_ended and ws.close_code in (1000, 1001):
                    # A client closing with 1000/1001 ends its session (Discord does this).
                    self._sessions.pop(session.session_id, None)
            log.debug("gateway connection closed (%s)", ws.close_code)
        return ws

    async def _handle_op(self, connection: _Connection, op: int, data: Any) -> None:
        if op == 1:  # HEARTBEAT
            await connection.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:  # IDENTIFY
            await self._identify(connection, data or {})
        elif op == 6:  # RESUME
            await self._resume(connection, data or {})
        elif connection.session is None:
            await connection.close(4003, "Not authenticated.")
        elif op == 3:  # PRESENCE_UPDATE
            self.presence = data
        elif op == 8:  # REQUEST_GUILD_MEMBERS
            await self._members_chunk(connection.session, data or {})
        elif op == 4:  # VOICE_STATE_UPDATE
            log.warning("fake Discord has no voice; ignoring op 4")
        else:
            log.warning("fake Discord: unknown gateway op %s", op)
            await connection.close(4001, "Unknown opcode.")

    async def _identify(self, connection: _Connection, data: dict[str, Any]) -> None:
        if connection.session is not None:
            await connection.close(4005, "Already authenticated.")
            return
        if data.get("token") != self.token:
            await connection.close(4004, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await connection.close(4013, "Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS and not self.privileged_intents:
            await connection.close(4014, "Disallowed intent(s).")
            return
        session = _Session(session_id=secrets.token_hex(16), intents=intents)
        session.connection = connection
        connection.session = session
        self._sessions[session.session_id] = session
        ready = {
            "v": API_VERSION,
            "user": copy.deepcopy(self.bot_user),
            "user_settings": {},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "geo_ordered_rtc_regions": [],
            "application": {"id": str(self.application_id), "flags": self._application()["flags"]},
            "_trace": ["fake-discord"],
        }
        if isinstance(data.get("shard"), list):
            ready["shard"] = data["shard"]
        await self._send_event(session, "READY", ready)
        await self._send_event(session, "GUILD_CREATE", self._guild_create(intents))
        log.info("bot identified (session %s, intents %d)", session.session_id, intents)
        self.bot_ready.set()

    async def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await connection.close(4004, "Authentication failed.")
            return
        session = self._sessions.get(str(data.get("session_id")))
        if session is None:
            await connection.send({"op": 9, "d": False, "s": None, "t": None})
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
        await self._send_event(session, "RESUMED", {"_trace": ["fake-discord"]})
        log.info("bot resumed session %s (%d missed events)", session.session_id, len(missed))

    async def _members_chunk(self, session: _Session, data: dict[str, Any]) -> None:
        query = str(data.get("query") or "").lower()
        limit = int(data.get("limit") or 0) or len(self._members)
        wanted = data.get("user_ids")
        if wanted is not None:
            ids = [int(u) for u in (wanted if isinstance(wanted, list) else [wanted])]
            members = [uid for uid in ids if uid in self._members]
            not_found = [str(uid) for uid in ids if uid not in self._members]
        else:
            members = [
                uid
                for uid in self._members
                if str(self.users[uid]["username"]).lower().startswith(query)
            ][:limit]
            not_found = []
        chunk: dict[str, Any] = {
            "guild_id": str(self.guild_id),
            "members": [self._member(uid) for uid in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": not_found,
        }
        if data.get("presences"):
            chunk["presences"] = []
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._send_event(session, "GUILD_MEMBERS_CHUNK", chunk)

    # ----------------------------------------------------------------------------- HTTP plumbing

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            needs_auth = request.path.startswith(API_PREFIX) and not _NO_AUTH.match(request.path)
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise DiscordError(401, 0, "401: Unauthorized")
            return await handler(request)
        except DiscordError as exc:
            if exc.status >= 400 and exc.status != 404:
                log.info("%s %s -> %s", request.method, request.path, exc)
            return exc.response()

    async def _unknown_route(self, request: web.Request) -> web.StreamResponse:
        log.warning("fake Discord has no route for %s %s", request.method, request.path_qs)
        raise DiscordError(404, 0, "404: Not Found")

    def _add_routes(self, app: web.Application) -> None:
        api = API_PREFIX
        msg = f"{api}/channels/{{channel_id:\\d+}}/messages/{{message_id:\\d+}}"
        hook = f"{api}/webhooks/{{app_id:\\d+}}/{{token}}"
        routes = [
            ("GET", "/gateway", self._gateway),
            ("GET", "/attachments/{channel_id:\\d+}/{attachment_id:\\d+}/{filename}", self._cdn),
            ("HEAD", "/attachments/{channel_id:\\d+}/{attachment_id:\\d+}/{filename}", self._cdn),
            ("GET", f"{api}/gateway", self._get_gateway),
            ("GET", f"{api}/gateway/bot", self._get_gateway_bot),
            ("GET", f"{api}/users/@me", self._get_me),
            ("GET", f"{api}/users/@me/guilds", self._get_my_guilds),
            ("GET", f"{api}/users/{{user_id:\\d+}}", self._get_user),
            ("GET", f"{api}/oauth2/applications/@me", self._get_application),
            ("GET", f"{api}/applications/@me", self._get_application),
            ("GET", f"{api}/channels/{{channel_id:\\d+}}", self._get_channel),
            ("GET", f"{api}/channels/{{channel_id:\\d+}}/messages", self._get_messages),
            ("POST", f"{api}/channels/{{channel_id:\\d+}}/messages", self._create_message),
            ("POST", f"{api}/channels/{{channel_id:\\d+}}/typing", self._post_typing),
            ("GET", f"{api}/channels/{{channel_id:\\d+}}/pins", self._get_pins),
            ("GET", msg, self._get_message),
            ("PATCH", msg, self._edit_message),
            ("DELETE", msg, self._delete_message),
            ("PUT", f"{msg}/reactions/{{emoji}}/@me", self._add_reaction),
            ("DELETE", f"{msg}/reactions/{{emoji}}/@me", self._remove_reaction),
            ("DELETE", f"{msg}/reactions/{{emoji}}/{{user_id:\\d+}}", self._remove_reaction),
            ("GET", f"{api}/guilds/{{guild_id:\\d+}}", self._get_guild),
            ("GET", f"{api}/guilds/{{guild_id:\\d+}}/channels", self._get_guild_channels),
            ("GET", f"{api}/guilds/{{guild_id:\\d+}}/roles", self._get_roles),
            ("GET", f"{api}/guilds/{{guild_id:\\d+}}/members", self._get_members),
            ("GET", f"{api}/guilds/{{guild_id:\\d+}}/members/{{user_id:\\d+}}", self._get_member),
            (
                "POST",
                f"{api}/interactions/{{interaction_id:\\d+}}/{{token}}/callback",
                self._callback,
            ),
            ("POST", hook, self._followup),
            ("GET", f"{hook}/messages/{{message_id}}", self._get_webhook_message),
            ("PATCH", f"{hook}/messages/{{message_id}}", self._edit_webhook_message),
            ("DELETE", f"{hook}/messages/{{message_id}}", self._delete_webhook_message),
        ]
        for scope in ("", "/guilds/{guild_id:\\d+}"):
            base = f"{api}/applications/{{app_id:\\d+}}{scope}/commands"
            routes += [
                ("GET", base, self._list_commands),
                ("PUT", base, self._overwrite_commands),
                ("POST", base, self._create_command),
                ("GET", f"{base}/{{command_id:\\d+}}", self._get_command),
                ("PATCH", f"{base}/{{command_id:\\d+}}", self._edit_command),
                ("DELETE", f"{base}/{{command_id:\\d+}}", self._delete_command),
            ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)

    @staticmethod
    def _int(request: web.Request, name: str) -> int:
        return int(request.match_info[name])

    def _check_channel(self, request: web.Request) -> None:
        if self._int(request, "channel_id") != self.channel_id:
            raise _unknown("Channel", 10003)

    def _check_guild(self, request: web.Request) -> None:
        if self._int(request, "guild_id") != self.guild_id:
            raise _unknown("Guild", 10004)

    async def _read_body(self, request: web.Request) -> tuple[dict[str, Any], list[_Upload]]:
        """JSON or multipart (``payload_json`` + ``files[n]``) body; enforces the size limit."""
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
        uploads: list[_Upload] = []
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
                too_large = too_large or total > self.max_upload_bytes
                if not too_large:
                    data.extend(chunk)
            index = int(match.group(1)) if match.group(1) else len(uploads)
            uploads.append(_Upload(index, str(part.filename), bytes(data)))  # type: ignore[union-attr]
        if too_large:
            raise DiscordError(413, 40005, "Request entity too large")
        return payload, uploads

    def _attachments(
        self,
        payload: Mapping[str, Any],
        uploads: list[_Upload],
        existing: list[dict[str, Any]],
        *,
        ephemeral: bool = False,
    ) -> list[dict[str, Any]]:
        """Attachments after a create/edit: kept ones (by id) plus new uploads (by index)."""
        uploaded = {u.index: u for u in uploads}
        metas = payload.get("attachments")
        if metas is None:
            return list(existing) + [
                self._store_attachment(u.filename, u.data, ephemeral=ephemeral) for u in uploads
            ]
        kept = {a["id"]: a for a in existing}
        result = []
        used: set[int] = set()
        for position, meta in enumerate(metas):
            raw_id = str(meta.get("id", ""))
            if raw_id in kept:
                result.append(kept[raw_id])
            elif raw_id.isdigit() and int(raw_id) in uploaded:
                upload = uploaded[int(raw_id)]
                used.add(upload.index)
                result.append(
                    self._store_attachment(
                        meta.get("filename") or upload.filename,
                        upload.data,
                        description=meta.get("description"),
                        ephemeral=ephemeral,
                    )
                )
            else:
                raise _form_error(
                    f"attachments.{position}.id", "ATTACHMENT_NOT_FOUND", "Unknown attachment"
                )
        for upload in uploads:
            if upload.index not in used:
                result.append(
                    self._store_attachment(upload.filename, upload.data, ephemeral=ephemeral)
                )
        return result

    @staticmethod
    def _validate_message(message: Mapping[str, Any]) -> None:
        if len(message.get("content") or "") > 2000:
            raise _form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        if len(message.get("embeds") or []) > 10:
            raise _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        if len(message.get("attachments") or []) > 10:
            raise _form_error(
                "attachments", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."
            )

    @staticmethod
    def _is_empty(message: Mapping[str, Any]) -> bool:
        keys = ("content", "embeds", "attachments", "components", "sticker_ids", "poll")
        return not any(message.get(k) for k in keys)

    def _apply_edit(
        self, message: dict[str, Any], payload: dict[str, Any], uploads: list[_Upload]
    ) -> None:
        if "content" in payload:
            message["content"] = payload["content"] or ""
            message["mentions"] = self._mentions(message["content"], None, None)
        if "attachments" in payload or uploads:
            message["attachments"] = self._attachments(payload, uploads, message["attachments"])
        if "embeds" in payload:
            message["embeds"] = self._resolve_embeds(
                payload["embeds"] or [], message["attachments"]
            )
        if "components" in payload:
            message["components"] = payload["components"] or []
        if "flags" in payload and payload["flags"] is not None:
            keep = message["flags"] & (FLAG_EPHEMERAL | FLAG_LOADING)
            message["flags"] = keep | int(payload["flags"])
        self._validate_message(message)
        message["edited_timestamp"] = _now_iso()

    # ----------------------------------------------------------------------------- REST: misc

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json(self.bot_user)

    async def _get_my_guilds(self, request: web.Request) -> web.Response:
        guild = {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "banner": None,
            "owner": False,
            "permissions": str(self._permissions(self.application_id)),
            "features": [],
        }
        return _json([guild])

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(self._int(request, "user_id"))
        if user is None:
            raise _unknown("User", 10013)
        return _json(user)

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json(self._application())

    async def _cdn(self, request: web.Request) -> web.Response:
        stored = self._files.get(self._int(request, "attachment_id"))
        if stored is None or self._int(request, "channel_id") != self.channel_id:
            return web.Response(status=404, text="404: Not Found")
        return web.Response(body=stored.data, content_type=stored.content_type)

    # ----------------------------------------------------------------------------- REST: guild

    async def _get_guild(self, request: web.Request) -> web.Response:
        self._check_guild(request)
        guild = self._guild_base()
        if request.query.get("with_counts", "").lower() in ("true", "1"):
            guild["approximate_member_count"] = len(self._members)
            guild["approximate_presence_count"] = 0
        return _json(guild)

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        self._check_guild(request)
        return _json([self.channel])

    async def _get_roles(self, request: web.Request) -> web.Response:
        self._check_guild(request)
        return _json(self.roles)

    async def _get_members(self, request: web.Request) -> web.Response:
        self._check_guild(request)
        after = int(request.query.get("after", 0))
        limit = int(request.query.get("limit", 1))
        ids = sorted(uid for uid in self._members if uid > after)[:limit]
        return _json([self._member(uid) for uid in ids])

    async def _get_member(self, request: web.Request) -> web.Response:
        self._check_guild(request)
        user_id = self._int(request, "user_id")
        if user_id not in self._members:
            raise _unknown("Member", 10007)
        return _json(self._member(user_id))

    # ----------------------------------------------------------------------------- REST: channel

    async def _get_channel(self, request: web.Request) -> web.Response:
        self._check_channel(request)
        return _json(self.channel)

    async def _get_pins(self, request: web.Request) -> web.Response:
        self._check_channel(request)
        return _json([m for m in self._visible_messages() if m["pinned"]])

    async def _get_messages(self, request: web.Request) -> web.Response:
        """Channel history, newest first, with limit (1-100) and before/after/around."""
        self._check_channel(request)
        query = request.query
        limit = max(1, min(100, int(query.get("limit", 50))))
        messages = sorted(self._visible_messages(), key=lambda m: int(m["id"]))
        if "around" in query:
            around = int(query["around"])
            older = [m for m in messages if int(m["id"]) < around][-(limit // 2) :]
            if limit // 2 == 0:
                older = []
            rest = [m for m in messages if int(m["id"]) >= around][: limit - len(older)]
            page = older + rest
        elif "after" in query:
            after = int(query["after"])
            page = [m for m in messages if int(m["id"]) > after][:limit]
        else:
            before = int(query["before"]) if "before" in query else None
            page = [m for m in messages if before is None or int(m["id"]) < before][-limit:]
        return _json(list(reversed(page)))

    async def _get_message(self, request: web.Request) -> web.Response:
        self._check_channel(request)
        message = self._find_message(self._int(request, "message_id"))
        if message["flags"] & FLAG_EPHEMERAL:
            raise _unknown("Message", 10008)
        return _json(message)

    async def _create_message(self, request: web.Request) -> web.Response:
        self._check_channel(request)
        payload, uploads = await self._read_body(request)
        reference = payload.get("message_reference")
        reply_to = None
        if isinstance(reference, dict) and reference.get("message_id") is not None:
            try:
                reply_to = self._find_message(int(reference["message_id"]))
            except DiscordError:
                if reference.get("fail_if_not_exists", True):
                    raise _form_error(
                        "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                    ) from None
        attachments = self._attachments(payload, uploads, [])
        draft = {**payload, "attachments": attachments}
        self._validate_message(draft)
        if self._is_empty(draft):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        message = self._new_message(
            self.bot_user,
            content=payload.get("content") or "",
            attachments=attachments,
            embeds=payload.get("embeds"),
            reply_to=reply_to,
            allowed_mentions=payload.get("allowed_mentions"),
            flags=int(payload.get("flags") or 0) & ~(FLAG_EPHEMERAL | FLAG_LOADING),
            extra={
                k: payload[k] for k in ("components", "tts", "nonce") if payload.get(k) is not None
            },
        )
        await self._add_message(message)
        return _json(message)

    async def _edit_message(self, request: web.Request) -> web.Response:
        self._check_channel(request)
        message = self._find_message(self._int(request, "message_id"))
        payload, uploads = await self._read_body(request)
        if not self._is_bot_message(message):
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._apply_edit(message, payload, uploads)
        await self._message_event("update", message)
        return _json(message)

    async def _delete_message(self, request: web.Request) -> web.Response:
        self._check_channel(request)
        await self._remove_message(self._find_message(self._int(request, "message_id")))
        return web.Response(status=204)

    async def _post_typing(self, request: web.Request) -> web.Response:
        self._check_channel(request)
        self._typing(self.application_id)
        return web.Response(status=204)

    def _update_reactions(self, message: dict[str, Any]) -> None:
        reactions = []
        for emoji, users in self._reactions.get(int(message["id"]), {}).items():
            if users:
                reactions.append(
                    {
                        "emoji": {"id": None, "name": emoji},
                        "count": len(users),
                        "count_details": {"burst": 0, "normal": len(users)},
                        "me": self.application_id in users,
                        "me_burst": False,
                        "burst_colors": [],
                    }
                )
        if reactions:
            message["reactions"] = reactions
        else:
            message.pop("reactions", None)

    async def _reaction_change(self, request: web.Request, add: bool) -> web.Response:
        self._check_channel(request)
        message = self._find_message(self._int(request, "message_id"))
        emoji = request.match_info["emoji"]
        user_id = int(request.match_info.get("user_id", self.application_id))
        users = self._reactions.setdefault(int(message["id"]), {}).setdefault(emoji, [])
        changed = (user_id not in users) if add else (user_id in users)
        if changed:
            (users.append if add else users.remove)(user_id)
            self._update_reactions(message)
            self._publish("message_update", message)
            name, _, emoji_id = emoji.partition(":")
            event = {
                "user_id": str(user_id),
                "channel_id": message["channel_id"],
                "message_id": message["id"],
                "guild_id": str(self.guild_id),
                "emoji": {"id": emoji_id or None, "name": name},
                "burst": False,
                "type": 0,
            }
            if add:
                event["member"] = self._member(user_id)
                event["message_author_id"] = message["author"]["id"]
            kind = "ADD" if add else "REMOVE"
            await self._dispatch(f"MESSAGE_REACTION_{kind}", event)
        return web.Response(status=204)

    async def _add_reaction(self, request: web.Request) -> web.Response:
        return await self._reaction_change(request, add=True)

    async def _remove_reaction(self, request: web.Request) -> web.Response:
        return await self._reaction_change(request, add=False)

    # ----------------------------------------------------------------------------- REST: commands

    def _check_app(self, request: web.Request) -> int | None:
        if self._int(request, "app_id") != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        if "guild_id" in request.match_info:
            self._check_guild(request)
            return self.guild_id
        return None

    def _scoped(self, guild_id: int | None) -> list[dict[str, Any]]:
        wanted = None if guild_id is None else str(guild_id)
        return [c for c in self._commands.values() if c.get("guild_id") == wanted]

    @staticmethod
    def _validate_options(options: list[dict[str, Any]], path: str) -> None:
        for i, option in enumerate(options):
            where = f"{path}.{i}"
            name = str(option.get("name", ""))
            if not _COMMAND_NAME.match(name) or name != name.lower():
                raise _form_error(f"{where}.name", "APPLICATION_COMMAND_INVALID_NAME", name)
            if not 1 <= len(str(option.get("description") or "")) <= 100:
                raise _form_error(
                    f"{where}.description", "BASE_TYPE_BAD_LENGTH", "Must be 1-100 characters"
                )
            DiscordServer._validate_options(option.get("options") or [], f"{where}.options")

    def _normalise_command(
        self, data: dict[str, Any], guild_id: int | None, path: str
    ) -> dict[str, Any]:
        kind = int(data.get("type") or COMMAND_CHAT_INPUT)
        name = str(data.get("name", ""))
        if kind == COMMAND_CHAT_INPUT:
            if not _COMMAND_NAME.match(name) or name != name.lower():
                raise _form_error(f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", name)
            if not 1 <= len(str(data.get("description") or "")) <= 100:
                raise _form_error(
                    f"{path}.description", "BASE_TYPE_BAD_LENGTH", "Must be 1-100 characters"
                )
            self._validate_options(data.get("options") or [], f"{path}.options")
        elif not 1 <= len(name) <= 32:
            raise _form_error(f"{path}.name", "BASE_TYPE_BAD_LENGTH", "Must be 1-32 characters")
        command = {
            "id": None,
            "application_id": str(self.application_id),
            "version": str(snowflake()),
            "type": kind,
            "name": name,
            "name_localizations": data.get("name_localizations"),
            "description": (data.get("description") or "") if kind == COMMAND_CHAT_INPUT else "",
            "description_localizations": data.get("description_localizations"),
            "default_member_permissions": data.get("default_member_permissions"),
            "dm_permission": data.get("dm_permission", True),
            "contexts": data.get("contexts"),
            "integration_types": data.get("integration_types") or [0],
            "nsfw": bool(data.get("nsfw", False)),
        }
        if kind == COMMAND_CHAT_INPUT:
            command["options"] = copy.deepcopy(data.get("options") or [])
        if guild_id is not None:
            command["guild_id"] = str(guild_id)
        return command

    def _save_command(self, command: dict[str, Any], guild_id: int | None) -> dict[str, Any]:
        for old in self._scoped(guild_id):
            if old["name"] == command["name"] and old["type"] == command["type"]:
                command["id"] = old["id"]
                break
        else:
            command["id"] = str(snowflake())
        self._commands[int(command["id"])] = command
        return command

    async def _list_commands(self, request: web.Request) -> web.Response:
        return _json(self._scoped(self._check_app(request)))

    async def _overwrite_commands(self, request: web.Request) -> web.Response:
        guild_id = self._check_app(request)
        body, _ = await self._read_body(request)
        items = body.get("_list", [])
        if not isinstance(items, list):
            raise _form_error("_list", "BASE_TYPE_ARRAY", "Must be an array")
        normalised = [self._normalise_command(c, guild_id, str(i)) for i, c in enumerate(items)]
        keys = [(c["name"], c["type"]) for c in normalised]
        if len(set(keys)) != len(keys):
            raise _form_error("_list", "APPLICATION_COMMANDS_DUPLICATE_NAME", "Duplicate names")
        saved = [self._save_command(c, guild_id) for c in normalised]
        keep = {c["id"] for c in saved}
        for old in self._scoped(guild_id):
            if old["id"] not in keep:
                del self._commands[int(old["id"])]
        log.info("%d application commands registered (guild %s)", len(saved), guild_id)
        return _json(saved)

    async def _create_command(self, request: web.Request) -> web.Response:
        guild_id = self._check_app(request)
        body, _ = await self._read_body(request)
        command = self._save_command(self._normalise_command(body, guild_id, "0"), guild_id)
        return _json(command, status=201)

    def _command(self, request: web.Request) -> dict[str, Any]:
        guild_id = self._check_app(request)
        command = self._commands.get(self._int(request, "command_id"))
        if command is None or command.get("guild_id") != (guild_id and str(guild_id)):
            raise _unknown("application command", 10063)
        return command

    async def _get_command(self, request: web.Request) -> web.Response:
        return _json(self._command(request))

    async def _edit_command(self, request: web.Request) -> web.Response:
        command = self._command(request)
        body, _ = await self._read_body(request)
        guild_id = self._check_app(request)
        updated = self._normalise_command({**command, **body}, guild_id, "0")
        updated["id"] = command["id"]
        self._commands[int(command["id"])] = updated
        return _json(updated)

    async def _delete_command(self, request: web.Request) -> web.Response:
        command = self._command(request)
        del self._commands[int(command["id"])]
        return web.Response(status=204)

    # ------------------------------------------------------------------------ REST: interactions

    def _interaction_by_token(self, token: str) -> _Interaction:
        interaction = self._interactions.get(token)
        if interaction is None:
            raise _unknown("Webhook", 10015)
        return interaction

    def _interaction_message(
        self,
        interaction: _Interaction,
        data: Mapping[str, Any],
        uploads: list[_Upload],
        *,
        flags: int = 0,
        original_id: int | None = None,
    ) -> dict[str, Any]:
        payload = interaction.payload
        ephemeral = bool(flags & FLAG_EPHEMERAL)
        attachments = self._attachments(data, uploads, [], ephemeral=ephemeral)
        user = payload["member"]["user"]
        metadata: dict[str, Any] = {
            "id": payload["id"],
            "type": payload["type"],
            "name": payload["data"]["name"],
            "command_type": interaction.command_type,
            "user": copy.deepcopy(user),
            "authorizing_integration_owners": payload["authorizing_integration_owners"],
        }
        if original_id is not None:
            metadata["original_response_message_id"] = str(original_id)
        if "target_id" in payload["data"]:
            if interaction.command_type == COMMAND_MESSAGE:
                metadata["target_message_id"] = payload["data"]["target_id"]
            else:
                metadata["target_user"] = copy.deepcopy(
                    self.users[int(payload["data"]["target_id"])]
                )
        legacy = {
            "id": payload["id"],
            "type": payload["type"],
            "name": payload["data"]["name"],
            "user": copy.deepcopy(user),
        }
        message_type = (
            MESSAGE_CHAT_INPUT_COMMAND
            if interaction.command_type == COMMAND_CHAT_INPUT
            else MESSAGE_CONTEXT_MENU_COMMAND
        )
        message = self._new_message(
            self.bot_user,
            content=data.get("content") or "",
            attachments=attachments,
            embeds=data.get("embeds"),
            allowed_mentions=data.get("allowed_mentions"),
            message_type=message_type,
            flags=flags,
            extra={
                "webhook_id": str(self.application_id),
                "application_id": str(self.application_id),
                "interaction_metadata": metadata,
                "interaction": legacy,
                "components": data.get("components") or [],
            },
        )
        self._validate_message(message)
        return message

    def _record(self, kind: str, interaction: _Interaction, **fields: Any) -> None:
        entry = {"kind": kind, "interaction_id": interaction.payload["id"], **fields}
        self.interaction_responses.append(copy.deepcopy(entry))

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self._interaction_by_token(request.match_info["token"])
        if self._int(request, "interaction_id") != interaction.id:
            raise _unknown("interaction", 10062)
        body, uploads = await self._read_body(request)
        if interaction.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        callback_type = int(body.get("type", 0))
        data = body.get("data") or {}
        message = None
        if callback_type in (CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE):
            flags = int(data.get("flags") or 0) & FLAG_EPHEMERAL
            if callback_type == CALLBACK_DEFERRED_MESSAGE:
                flags |= FLAG_LOADING
                data = {}
            elif self._is_empty({**data, "attachments": uploads}):
                raise DiscordError(400, 50006, "Cannot send an empty message")
            message = self._interaction_message(interaction, data, uploads, flags=flags)
            interaction.original_id = int(message["id"])
        interaction.acknowledged = True
        if message is not None:
            await self._add_message(message)
        self._record("callback", interaction, type=callback_type, payload=body, message=message)
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        response: dict[str, Any] = {
            "interaction": {
                "id": interaction.payload["id"],
                "type": interaction.payload["type"],
                "response_message_loading": bool(message and message["flags"] & FLAG_LOADING),
                "response_message_ephemeral": bool(message and message["flags"] & FLAG_EPHEMERAL),
            }
        }
        if message is not None:
            response["interaction"]["response_message_id"] = message["id"]
            response["resource"] = {"type": callback_type, "message": message}
        elif callback_type:
            response["resource"] = {"type": callback_type}
        return _json(response)

    def _webhook_interaction(self, request: web.Request) -> _Interaction:
        interaction = self._interaction_by_token(request.match_info["token"])
        if self._int(request, "app_id") != self.application_id:
            raise _unknown("Webhook", 10015)
        return interaction

    def _webhook_target(self, request: web.Request, interaction: _Interaction) -> dict:
        raw = request.match_info["message_id"]
        if raw == "@original":
            if interaction.original_id is None:
                raise _unknown("Message", 10008)
            return self._find_message(interaction.original_id)
        if not raw.isdigit() or int(raw) not in (
            [interaction.original_id, *interaction.followup_ids]
        ):
            raise _unknown("Message", 10008)
        return self._find_message(int(raw))

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        body, uploads = await self._read_body(request)
        if not interaction.acknowledged:
            raise _unknown("Webhook", 10015)
        if self._is_empty({**body, "attachments": uploads}):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        original = (
            self._find_message(interaction.original_id)
            if interaction.original_id is not None
            else None
        )
        if original is not None and original["flags"] & FLAG_LOADING:
            # The first followup after a deferred response fills in the "thinking" message.
            original["flags"] &= ~FLAG_LOADING
            self._apply_edit(original, body, uploads)
            original["edited_timestamp"] = None
            message = original
            await self._message_event("update", message)
        else:
            flags = int(body.get("flags") or 0) & FLAG_EPHEMERAL
            message = self._interaction_message(
                interaction, body, uploads, flags=flags, original_id=interaction.original_id
            )
            interaction.followup_ids.append(int(message["id"]))
            await self._add_message(message)
        self._record("followup", interaction, payload=body, message=message)
        if request.query.get("wait", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        return _json(message)

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        return _json(self._webhook_target(request, interaction))

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = self._webhook_target(request, interaction)
        body, uploads = await self._read_body(request)
        message["flags"] &= ~FLAG_LOADING
        self._apply_edit(message, body, uploads)
        await self._message_event("update", message)
        self._record("edit", interaction, payload=body, message=message)
        return _json(message)

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = self._webhook_target(request, interaction)
        await self._remove_message(message)
        self._record("delete", interaction, payload={}, message=message)
        return web.Response(status=204)
