"""Pure builders of Discord payloads: users, roles, members, channels, guilds, the application,
attachments, embeds, messages and reactions; and the rules a message must follow.

Nothing here reads or changes the server's state: every input is an argument, every result a
new dict (copied where it embeds a caller's dict).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from playground.discord.errors import form_error
from playground.discord.protocol import (
    API_VERSION,
    APPLICATION_COMMAND_BADGE,
    APPLICATION_PRIVILEGED_FLAGS,
    MAX_ATTACHMENTS,
    MAX_CONTENT,
    MAX_EMBEDS,
    MESSAGE_DEFAULT,
    MESSAGE_REPLY,
    snowflake_time,
)

MENTION = re.compile(r"<@!?(\d+)>")


def user(
    user_id: int, username: str, *, bot: bool = False, global_name: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
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
        payload.update(bot=True, verified=True, mfa_enabled=False, locale="en-US", email=None)
    return payload


def role(role_id: int, name: str, permissions: int, *, position: int) -> dict[str, Any]:
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


def member(roles: Sequence[str], joined_at: str) -> dict[str, Any]:
    """A guild member without its ``user`` (added where Discord sends it)."""
    return {
        "roles": list(roles),
        "nick": None,
        "avatar": None,
        "banner": None,
        "joined_at": joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }


def text_channel(
    channel_id: int, guild_id: int, name: str, *, position: int, topic: str | None = None
) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "topic": topic,
        "nsfw": False,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
        "flags": 0,
    }


def private_channel(
    channel_id: int, user: Mapping[str, Any], bot: Mapping[str, Any], context: int
) -> dict[str, Any]:
    """``user``'s DM with the bot (interaction context 1), or a group DM of theirs the bot is
    not in (context 2)."""
    payload: dict[str, Any] = {
        "id": str(channel_id),
        "type": 1 if context == 1 else 3,
        "last_message_id": None,
        "flags": 0,
        "recipients": [copy.deepcopy(dict(user if context == 1 else bot))],
    }
    if context != 1:
        payload.update(name=None, icon=None, owner_id=user["id"])
        payload["recipients"] = [copy.deepcopy(dict(user))]
    return payload


def application_flags(privileged_intents: bool) -> int:
    flags = APPLICATION_PRIVILEGED_FLAGS if privileged_intents else 0
    return flags | APPLICATION_COMMAND_BADGE


def application(
    bot_user: Mapping[str, Any],
    owner: Mapping[str, Any],
    *,
    privileged_intents: bool,
    guild_count: int,
) -> dict[str, Any]:
    """The bot's application; its id is the bot user's id, as on Discord."""
    return {
        "id": bot_user["id"],
        "name": bot_user["username"],
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": application_flags(privileged_intents),
        "owner": copy.deepcopy(dict(owner)),
        "team": None,
        "bot": copy.deepcopy(dict(bot_user)),
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "approximate_guild_count": guild_count,
        "tags": [],
        "integration_types_config": {"0": {}},
    }


def premium_tier(max_upload_bytes: int) -> int:
    """The boost tier whose upload limit (as discord.py knows it) matches ``max_upload_bytes``."""
    if max_upload_bytes >= 100 * 1024 * 1024:
        return 3
    return 2 if max_upload_bytes >= 50 * 1024 * 1024 else 0


def guild(
    guild_id: int,
    name: str,
    *,
    owner_id: int,
    roles: Sequence[Mapping[str, Any]],
    system_channel_id: int | None,
    tier: int,
) -> dict[str, Any]:
    """A guild as ``GET /guilds/{id}`` returns it (GUILD_CREATE adds members and channels)."""
    return {
        "id": str(guild_id),
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "owner_id": str(owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "roles": copy.deepcopy([dict(r) for r in roles]),
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None if system_channel_id is None else str(system_channel_id),
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "max_members": 500_000,
        "vanity_url_code": None,
        "description": None,
        "premium_tier": tier,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
        "nsfw": False,
        "premium_progress_bar_enabled": False,
    }


def guild_create(
    base: dict[str, Any],
    *,
    joined_at: str,
    members: list[dict[str, Any]],
    member_count: int,
    channels: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The GUILD_CREATE a bot gets for each of its guilds after READY."""
    return {
        **base,
        "joined_at": joined_at,
        "large": False,
        "unavailable": False,
        "lazy": True,
        "member_count": member_count,
        "members": members,
        "channels": copy.deepcopy([dict(c) for c in channels]),
        "threads": [],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def ready(
    bot_user: Mapping[str, Any],
    guild_ids: Sequence[int],
    *,
    session_id: str,
    resume_url: str,
    application_flags: int,
    shard: list[int] | None,
) -> dict[str, Any]:
    """READY: every guild listed as unavailable, each followed by its GUILD_CREATE."""
    payload: dict[str, Any] = {
        "v": API_VERSION,
        "user": copy.deepcopy(dict(bot_user)),
        "user_settings": {},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "guild_join_requests": [],
        "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": resume_url,
        "geo_ordered_rtc_regions": [],
        "application": {"id": bot_user["id"], "flags": application_flags},
        "_trace": ["fake-discord"],
    }
    if shard is not None:
        payload["shard"] = shard
    return payload


def attachment(
    attachment_id: int,
    filename: str,
    *,
    size: int,
    url: str,
    content_type: str,
    image_size: tuple[int, int] | None = None,
    description: str | None = None,
    ephemeral: bool = False,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(attachment_id),
        "filename": filename,
        "size": size,
        "url": url,
        "proxy_url": url,
        "content_type": content_type,
        "flags": 0,
    }
    if description:
        payload["description"] = description
    if ephemeral:
        payload["ephemeral"] = True
    if image_size is not None:
        payload["width"], payload["height"] = image_size
    return payload


def resolve_embeds(embeds: Sequence[Any], attachments: Sequence[Mapping[str, Any]]) -> list:
    """Give embeds a type and turn ``attachment://name`` images into CDN URLs."""
    by_name = {a["filename"]: a for a in attachments}
    result = []
    for embed in embeds or []:
        embed = copy.deepcopy(embed)
        embed.setdefault("type", "rich")
        for key in ("image", "thumbnail"):
            media = embed.get(key)
            if isinstance(media, dict) and str(media.get("url", "")).startswith("attachment://"):
                target = by_name.get(media["url"][len("attachment://") :])
                if target is not None:
                    media.update(url=target["url"], proxy_url=target["proxy_url"])
                    if "width" in target:
                        media.update(width=target["width"], height=target["height"])
        result.append(embed)
    return result


def mentioned_ids(
    content: str, reply_to: Mapping[str, Any] | None = None, allowed_mentions: Any = None
) -> list[int]:
    """Who a message mentions: ``<@id>`` in its text, and the replied-to author unless
    ``allowed_mentions.replied_user`` is false."""
    ids = [int(m) for m in MENTION.findall(content or "")]
    replied_user = not isinstance(allowed_mentions, dict) or allowed_mentions.get(
        "replied_user", True
    )
    if reply_to is not None and replied_user:
        ids.append(int(reply_to["author"]["id"]))
    return list(dict.fromkeys(ids))


def message(
    message_id: int,
    channel: Mapping[str, Any],
    author: Mapping[str, Any],
    *,
    content: str = "",
    mentions: Sequence[Mapping[str, Any]] = (),
    attachments: list[dict[str, Any]] | None = None,
    embeds: Sequence[Any] | None = None,
    reply_to: Mapping[str, Any] | None = None,
    message_type: int | None = None,
    flags: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A message in ``channel`` (a channel payload), optionally replying to ``reply_to``."""
    attachments = attachments or []
    payload: dict[str, Any] = {
        "id": str(message_id),
        "channel_id": channel["id"],
        "guild_id": channel.get("guild_id"),  # left out below in a DM, as Discord does
        "author": copy.deepcopy(dict(author)),
        "content": content or "",
        "timestamp": snowflake_time(message_id).isoformat(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": "@everyone" in (content or ""),
        "mentions": copy.deepcopy([dict(u) for u in mentions]),
        "mention_roles": [],
        "attachments": attachments,
        "embeds": resolve_embeds(embeds or [], attachments),
        "pinned": False,
        "type": MESSAGE_REPLY if reply_to is not None else MESSAGE_DEFAULT,
        "flags": flags,
        "components": [],
    }
    if payload["guild_id"] is None:
        del payload["guild_id"]
    if message_type is not None:
        payload["type"] = message_type
    if reply_to is not None:
        payload["message_reference"] = {
            "type": 0,
            "message_id": reply_to["id"],
            "channel_id": reply_to["channel_id"],
        }
        if "guild_id" in payload:
            payload["message_reference"]["guild_id"] = payload["guild_id"]
        referenced = copy.deepcopy(dict(reply_to))
        referenced.pop("referenced_message", None)
        payload["referenced_message"] = referenced
    if extra:
        payload.update(copy.deepcopy(dict(extra)))
    return payload


def reactions(by_emoji: Mapping[str, Sequence[int]], me: int) -> list[dict[str, Any]]:
    """A message's ``reactions`` from who reacted with what (``me``: the bot's id)."""
    return [
        {
            "emoji": {"id": None, "name": emoji},
            "count": len(users),
            "count_details": {"burst": 0, "normal": len(users)},
            "me": me in users,
            "me_burst": False,
            "burst_colors": [],
        }
        for emoji, users in by_emoji.items()
        if users
    ]


def validate_message(payload: Mapping[str, Any]) -> None:
    """Discord's length limits on content, embeds and attachments (400, code 50035)."""
    too_long = "BASE_TYPE_MAX_LENGTH"
    if len(payload.get("content") or "") > MAX_CONTENT:
        raise form_error("content", too_long, f"Must be {MAX_CONTENT} or fewer in length.")
    if len(payload.get("embeds") or []) > MAX_EMBEDS:
        raise form_error("embeds", too_long, f"Must be {MAX_EMBEDS} or fewer in length.")
    if len(payload.get("attachments") or []) > MAX_ATTACHMENTS:
        raise form_error("attachments", too_long, f"Must be {MAX_ATTACHMENTS} or fewer in length.")


def is_empty(payload: Mapping[str, Any]) -> bool:
    keys = ("content", "embeds", "attachments", "components", "sticker_ids", "poll")
    return not any(payload.get(k) for k in keys)
