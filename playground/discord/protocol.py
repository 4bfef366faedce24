"""Discord's numbers: API version, gateway intents, permission bits, message, command,
component and interaction types, and snowflake ids.

Everything here is taken from Discord's documentation (API v10); nothing here holds state
except the snowflake counter, which only ever increases.
"""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime

API_VERSION = 10
API_PREFIX = f"/api/v{API_VERSION}"
DISCORD_EPOCH_MS = 1_420_070_400_000
HEARTBEAT_INTERVAL_MS = 41_250

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_GUILD_MESSAGE_TYPING = 1 << 11
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

EVENT_INTENTS = {  # the intent a dispatch needs; events not listed need none
    "MESSAGE_CREATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": INTENT_GUILD_MESSAGES,
    "TYPING_START": INTENT_GUILD_MESSAGE_TYPING,
    "MESSAGE_REACTION_ADD": INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE": INTENT_GUILD_MESSAGE_REACTIONS,
}

# Permission bits.
PERMISSION_BITS = {
    "create_instant_invite": 0,
    "manage_guild": 5,
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
MANAGE_GUILD = 1 << PERMISSION_BITS["manage_guild"]
MANAGE_MESSAGES = 1 << PERMISSION_BITS["manage_messages"]
EVERYONE_PERMISSIONS = sum(1 << bit for bit in PERMISSION_BITS.values()) & ~(
    MANAGE_GUILD | MANAGE_MESSAGES
)
BOT_ROLE_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_MESSAGES
MODERATOR_PERMISSIONS = MANAGE_MESSAGES  # the "Moderators" role every guild has
ADMIN_PERMISSIONS = MANAGE_GUILD | MANAGE_MESSAGES  # the "Admins" role
# Every permission Discord defines (what discord.py's Permissions.all() holds): what an
# interaction's member.permissions says for a guild's owner, who has them all.
ALL_PERMISSIONS = 8_866_461_766_385_663
# What an interaction from a user install says the app may do in a DM or group DM: answer with
# messages, links, files and emojis (through the interaction; it is no member there).
PRIVATE_APP_PERMISSIONS = sum(
    1 << PERMISSION_BITS[name]
    for name in (
        "view_channel",
        "send_messages",
        "embed_links",
        "attach_files",
        "read_message_history",
        "use_external_emojis",
        "use_application_commands",
    )
)

# Application flags: the three privileged intents granted, and the command badge.
APPLICATION_PRIVILEGED_FLAGS = (1 << 12) | (1 << 14) | (1 << 18)
APPLICATION_COMMAND_BADGE = 1 << 23

# Message types and flags.
MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
MESSAGE_CHAT_INPUT_COMMAND = 20
MESSAGE_CONTEXT_MENU_COMMAND = 23
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15  # IS_COMPONENTS_V2: a layout message (playground.discord.layouts)
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_ATTACHMENTS = 10

# Application command and option types.
COMMAND_CHAT_INPUT, COMMAND_USER, COMMAND_MESSAGE = 1, 2, 3
OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP = 1, 2
OPT_ATTACHMENT = 11

# Message components (https://discord.com/developers/docs/components/reference).
COMPONENT_ACTION_ROW = 1
COMPONENT_BUTTON = 2
COMPONENT_SELECTS = frozenset({3, 5, 6, 7, 8})  # string, user, role, mentionable, channel
BUTTON_STYLES = range(1, 6)  # primary, secondary, success, danger, link
BUTTON_LINK = 5
MAX_ACTION_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_BUTTON_LABEL = 80
MAX_CUSTOM_ID = 100
MAX_BUTTON_URL = 512
# Layout ("V2") components, in a message flagged IS_COMPONENTS_V2.
COMPONENT_SECTION = 9
COMPONENT_TEXT_DISPLAY = 10
COMPONENT_THUMBNAIL = 11
COMPONENT_MEDIA_GALLERY = 12
COMPONENT_FILE = 13
COMPONENT_SEPARATOR = 14
COMPONENT_CONTAINER = 17
MAX_LAYOUT_COMPONENTS = 40  # in all, however deep
MAX_LAYOUT_TEXT = 4000  # characters of every text display together

# Interaction types, and the callback types.
INTERACTION_APPLICATION_COMMAND = 2
INTERACTION_MESSAGE_COMPONENT = 3
CALLBACK_MESSAGE = 4  # CHANNEL_MESSAGE_WITH_SOURCE
CALLBACK_DEFERRED_MESSAGE = 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE ("thinking")
CALLBACK_DEFERRED_UPDATE = 6  # DEFERRED_UPDATE_MESSAGE: components only, an ack
CALLBACK_UPDATE_MESSAGE = 7  # UPDATE_MESSAGE: components only, edits the clicked message


class _Snowflakes:
    """Time-based, strictly increasing Discord snowflakes."""

    def __init__(self) -> None:
        self._last = 0
        self._increment = itertools.count()

    def next(self, at_ms: int | None = None) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS if at_ms is None else at_ms
        value = (ms << 22) | (1 << 17) | ((os.getpid() & 0x1F) << 12)
        value |= next(self._increment) & 0xFFF
        value = max(value, self._last + 1)
        self._last = value
        return value

    def in_a_row(self, count: int) -> list[int]:
        now = int(time.time() * 1000) - DISCORD_EPOCH_MS
        first = max(now, (self._last >> 22) + 1)
        return [self.next(first + n) for n in range(count)]


_snowflakes = _Snowflakes()


def snowflake() -> int:
    """A new, increasing snowflake id."""
    return _snowflakes.next()


def snowflakes_in_a_row(count: int) -> list[int]:
    """``count`` new, increasing ids whose timestamps (``id >> 22``) are consecutive
    milliseconds, from now or just past the last id's: guilds with these ids fall on
    consecutive shards (``(id >> 22) % shard_count``) whatever the count, evenly."""
    return _snowflakes.in_a_row(count)


def snowflake_time(value: int) -> datetime:
    """When a snowflake was created."""
    return datetime.fromtimestamp(((value >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
