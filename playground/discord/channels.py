"""REST routes of channels: the channel, its history and pins, messages (create with JSON or
multipart uploads, replies, embeds with ``attachment://`` images, components (checked by
`components.normalise`; layout messages by `layouts.normalise`), edit, delete, get), typing,
and reactions; plus how a request body becomes a message's attachments and edits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from playground.discord import layouts, payloads
from playground.discord.errors import DiscordError, empty_message, form_error, unknown
from playground.discord.protocol import (
    API_PREFIX,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    now_iso,
    snowflake,
    snowflake_time,
)
from playground.discord.rest import (
    Route,
    Upload,
    json_response,
    no_content,
    path_id,
    read_body,
)
from playground.discord.state import Channel

if TYPE_CHECKING:
    from playground.discord.server import DiscordServer


def mentions(
    server: DiscordServer,
    content: str,
    reply_to: Mapping[str, Any] | None = None,
    allowed_mentions: Any = None,
) -> list[dict[str, Any]]:
    return server.state.users_for(payloads.mentioned_ids(content, reply_to, allowed_mentions))


def attachments_for(
    server: DiscordServer,
    channel_id: int,
    payload: Mapping[str, Any],
    uploads: list[Upload],
    existing: list[dict[str, Any]],
    *,
    ephemeral: bool = False,
) -> list[dict[str, Any]]:
    """Attachments after a create/edit: kept ones (by id) plus new uploads (by index)."""

    def store(upload: Upload, filename: str | None = None, description: str | None = None):
        return server.cdn.store(
            channel_id,
            filename or upload.filename,
            upload.data,
            description=description,
            ephemeral=ephemeral,
        )

    metas = payload.get("attachments")
    if metas is None:
        return list(existing) + [store(u) for u in uploads]
    uploaded = {u.index: u for u in uploads}
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
            result.append(store(upload, meta.get("filename"), meta.get("description")))
        else:
            raise form_error(
                f"attachments.{position}.id", "ATTACHMENT_NOT_FOUND", "Unknown attachment"
            )
    result += [store(u) for u in uploads if u.index not in used]
    return result


def apply_edit(
    server: DiscordServer,
    message: dict[str, Any],
    payload: dict[str, Any],
    uploads: list[Upload],
    *,
    path: str = "",
) -> None:
    """Change a message as a PATCH (or a deferred response's first followup, or an
    UPDATE_MESSAGE callback, whose fields are under ``path`` "data.") asks. Fields left out
    are kept; ``components: []`` (or null) removes the components."""
    layouts.check_kept(message["flags"], payload.get("flags"), path)  # checked before changes
    flags = payload.get("flags") if payload.get("flags") is not None else message["flags"]
    if layouts.is_layout(flags):
        legacy = {key: message.get(key) for key in layouts.LEGACY_FIELDS}
        layouts.check_fields({**legacy, **payload}, path)
    if "components" in payload:
        new_components = layouts.message_components(
            payload["components"], flags, f"{path}components"
        )
    if "content" in payload:
        message["content"] = payload["content"] or ""
        message["mentions"] = mentions(server, message["content"])
    if "attachments" in payload or uploads:
        channel_id = int(message["channel_id"])
        message["attachments"] = attachments_for(
            server, channel_id, payload, uploads, message["attachments"]
        )
    if "embeds" in payload:
        message["embeds"] = payloads.resolve_embeds(payload["embeds"] or [], message["attachments"])
    if "components" in payload:
        message["components"] = new_components
    layouts.resolve_media(message["components"], message["attachments"])
    if "flags" in payload and payload["flags"] is not None:
        keep = message["flags"] & (FLAG_EPHEMERAL | FLAG_LOADING)
        message["flags"] = keep | int(payload["flags"])
    payloads.validate_message(message)
    message["edited_timestamp"] = now_iso()


NONCE_WINDOW = timedelta(minutes=5)  # how long ``enforce_nonce`` remembers a nonce


def same_nonce(channel: Channel, author_id: int, nonce: Any) -> dict[str, Any] | None:
    """The author's message in ``channel`` created with ``nonce`` in the last few minutes."""
    since = datetime.now(UTC) - NONCE_WINDOW
    for message in reversed(channel.messages.values()):
        if snowflake_time(int(message["id"])) < since:
            break
        if str(message.get("nonce")) == str(nonce) and int(message["author"]["id"]) == author_id:
            return message
    return None


def history(messages: list[dict[str, Any]], query: Mapping[str, str]) -> list[dict[str, Any]]:
    """A page of history, newest first: ``limit`` (1-100) and ``before``/``after``/``around``."""
    limit = max(1, min(100, int(query.get("limit", 50))))
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
    return list(reversed(page))


class ChannelRoutes:
    def __init__(self, server: DiscordServer) -> None:
        self.server = server

    def routes(self) -> list[Route]:
        channel = f"{API_PREFIX}/channels/{{channel_id:\\d+}}"
        message = f"{channel}/messages/{{message_id:\\d+}}"
        return [
            ("GET", channel, self.get_channel),
            ("GET", f"{channel}/messages", self.get_messages),
            ("POST", f"{channel}/messages", self.create_message),
            ("POST", f"{channel}/typing", self.post_typing),
            ("GET", f"{channel}/pins", self.get_pins),
            ("GET", message, self.get_message),
            ("PATCH", message, self.edit_message),
            ("DELETE", message, self.delete_message),
            ("PUT", f"{message}/reactions/{{emoji}}/@me", self.add_reaction),
            ("DELETE", f"{message}/reactions/{{emoji}}/@me", self.remove_reaction),
            ("DELETE", f"{message}/reactions/{{emoji}}/{{user_id:\\d+}}", self.remove_reaction),
        ]

    def _channel(self, request: web.Request) -> Channel:
        return self.server.state.channel(path_id(request, "channel_id"))

    def _message(self, request: web.Request) -> dict[str, Any]:
        channel = self._channel(request)
        return self.server.state.message(path_id(request, "message_id"), channel)

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self._channel(request).payload)

    async def get_pins(self, request: web.Request) -> web.Response:
        visible = self.server.state.visible_messages(self._channel(request))
        return json_response([m for m in visible if m["pinned"]])

    async def get_messages(self, request: web.Request) -> web.Response:
        visible = self.server.state.visible_messages(self._channel(request))
        return json_response(history(visible, request.query))

    async def get_message(self, request: web.Request) -> web.Response:
        message = self._message(request)
        if message["flags"] & FLAG_EPHEMERAL:
            raise unknown("Message", 10008)
        return json_response(message)

    async def create_message(self, request: web.Request) -> web.Response:
        server = self.server
        channel = self._channel(request)
        payload, uploads = await read_body(request, server.max_upload_bytes)
        if payload.get("enforce_nonce") and payload.get("nonce") is not None:
            # Discord answers a repeated nonce with the message it already made (a retry).
            earlier = same_nonce(channel, server.application_id, payload["nonce"])
            if earlier is not None:
                return json_response(earlier)
        reference = payload.get("message_reference")
        reply_to = None
        if isinstance(reference, dict) and reference.get("message_id") is not None:
            try:
                reply_to = server.state.message(int(reference["message_id"]))
            except DiscordError:
                if reference.get("fail_if_not_exists", True):
                    raise form_error(
                        "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                    ) from None
        flags = int(payload.get("flags") or 0)
        if layouts.is_layout(flags):
            layouts.check_fields(payload)
        rows = layouts.message_components(payload.get("components"), flags)
        attachments = attachments_for(server, channel.id, payload, uploads, [])
        layouts.resolve_media(rows, attachments)
        draft = {**payload, "attachments": attachments}
        payloads.validate_message(draft)
        if payloads.is_empty(draft):
            raise empty_message()
        content = payload.get("content") or ""
        allowed = payload.get("allowed_mentions")
        extra = {k: payload[k] for k in ("tts", "nonce") if payload.get(k) is not None}
        extra["components"] = rows
        message = payloads.message(
            snowflake(),
            channel.payload,
            server.bot_user,
            content=content,
            mentions=mentions(server, content, reply_to, allowed),
            attachments=attachments,
            embeds=payload.get("embeds"),
            reply_to=reply_to,
            flags=flags & ~(FLAG_EPHEMERAL | FLAG_LOADING),
            extra=extra,
        )
        await server.events.message_created(message)
        return json_response(message)

    async def edit_message(self, request: web.Request) -> web.Response:
        server = self.server
        message = self._message(request)
        payload, uploads = await read_body(request, server.max_upload_bytes)
        if int(message["author"]["id"]) != server.application_id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        apply_edit(server, message, payload, uploads)
        await server.events.message_updated(message)
        return json_response(message)

    async def delete_message(self, request: web.Request) -> web.Response:
        await self.server.events.message_deleted(self._message(request))
        return no_content()

    async def post_typing(self, request: web.Request) -> web.Response:
        self.server.events.typing(self.server.application_id, self._channel(request))
        return no_content()

    async def add_reaction(self, request: web.Request) -> web.Response:
        return await self._reaction_change(request, add=True)

    async def remove_reaction(self, request: web.Request) -> web.Response:
        return await self._reaction_change(request, add=False)

    async def _reaction_change(self, request: web.Request, add: bool) -> web.Response:
        server = self.server
        state = server.state
        message = self._message(request)
        emoji = request.match_info["emoji"]
        user_id = int(request.match_info.get("user_id", server.application_id))
        users = state.reactions.setdefault(int(message["id"]), {}).setdefault(emoji, [])
        if (user_id not in users) if add else (user_id in users):
            (users.append if add else users.remove)(user_id)
            summary = payloads.reactions(state.reactions[int(message["id"])], server.application_id)
            if summary:
                message["reactions"] = summary
            else:
                message.pop("reactions", None)
            server.events.reactions_changed(message)
            name, _, emoji_id = emoji.partition(":")
            event = {
                "user_id": str(user_id),
                "channel_id": message["channel_id"],
                "message_id": message["id"],
                "guild_id": message["guild_id"],
                "emoji": {"id": emoji_id or None, "name": name},
                "burst": False,
                "type": 0,
            }
            if add:
                guild = state.guild(int(message["guild_id"]))
                if user_id in guild.members:
                    event["member"] = state.member(guild, user_id)
                event["message_author_id"] = message["author"]["id"]
            kind = "ADD" if add else "REMOVE"
            await server.gateway.dispatch(f"MESSAGE_REACTION_{kind}", event)
        return no_content()
