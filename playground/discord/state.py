"""What the look-alike knows: users, guilds (roles, members, channels), messages, attachment
files, reactions, application commands and interactions, with lookups and bounds.

Messages are kept per channel and indexed by id (lookups are O(1)); past ``Limits.messages``
in a channel the oldest are forgotten, as are the oldest files past ``Limits.files`` or
``Limits.file_bytes`` and the oldest interactions past ``Limits.interactions``. Nothing here
does I/O or sends events: `events.Events` does, after changing the state.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from playground.discord import payloads
from playground.discord.errors import unknown
from playground.discord.protocol import (
    ALL_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    FLAG_EPHEMERAL,
    snowflake,
)


@dataclass(frozen=True)
class Limits:
    """How much the look-alike keeps; the oldest go first."""

    messages: int = 1000  # per channel
    files: int = 1000  # attachment files the CDN serves
    file_bytes: int = 256 * 1024 * 1024  # their total size
    interactions: int = 1000  # interactions that can still be answered
    queue: int = 1000  # events waiting in one subscriber's queue (the oldest are dropped)
    records: int = 1000  # entries in `interaction_responses` and `typing_events`


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    joined_at: str
    roles: list[dict[str, Any]] = field(default_factory=list)
    members: dict[int, dict[str, Any]] = field(default_factory=dict)  # without "user"
    channel_ids: list[int] = field(default_factory=list)


@dataclass
class Channel:
    """A text channel, or a DM or group DM (no guild): its payload and its messages (oldest
    first, by id)."""

    payload: dict[str, Any]
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def guild_id(self) -> int | None:
        guild_id = self.payload.get("guild_id")
        return int(guild_id) if guild_id else None


@dataclass
class StoredFile:
    channel_id: int
    filename: str
    content_type: str
    data: bytes


@dataclass
class Interaction:
    """An interaction and its answers so far. ``command_type`` is the application command's
    type (None for a click); ``message_id`` the clicked message of a component interaction;
    ``response_type`` the callback type once acknowledged; ``original_id`` the message
    ``@original`` names (the response, or the clicked message after a type 6 or 7)."""

    payload: dict[str, Any]
    command_type: int | None = None
    message_id: int | None = None
    response_type: int | None = None
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        return str(self.payload["token"])

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel_id"])


def append_bounded(records: list[Any], entry: Any, limit: int) -> None:
    """Append, then forget the oldest entries past ``limit``."""
    records.append(entry)
    if len(records) > limit:
        del records[: len(records) - limit]


class State:
    """Every guild, channel, user, message, file and command the look-alike holds."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.users: dict[int, dict[str, Any]] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.private_channels: dict[tuple[str, int], int] = {}  # (user id, context) -> channel
        self.commands: dict[int, dict[str, Any]] = {}
        self.interactions: OrderedDict[str, Interaction] = OrderedDict()  # by token
        self.files: OrderedDict[int, StoredFile] = OrderedDict()
        self.file_bytes = 0
        self.reactions: dict[int, dict[str, list[int]]] = {}  # message id -> emoji -> user ids
        self._messages: dict[int, dict[str, Any]] = {}  # every kept message, by id

    # ------------------------------------------------------------------------ users, members

    def add_user(self, user: dict[str, Any]) -> dict[str, Any]:
        """Store a user (the one already stored when its id is known)."""
        return self.users.setdefault(int(user["id"]), user)

    def user_named(self, username: str) -> dict[str, Any] | None:
        return next((u for u in self.users.values() if u["username"] == username), None)

    def users_for(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        """Copies of the known users among ``ids`` (unknown ids are left out)."""
        return [copy.deepcopy(self.users[i]) for i in ids if i in self.users]

    def join(self, guild: Guild, user_id: int, roles: Iterable[str] = (), *, at: str) -> None:
        """Make a stored user a member of ``guild`` (no-op when already one)."""
        guild.members.setdefault(user_id, payloads.member(list(roles), at))

    def role_ids(self, guild: Guild, names: Iterable[str]) -> list[str]:
        """The ids of ``guild``'s roles by name (`LookupError` for a name it has not)."""
        by_name = {role["name"]: role["id"] for role in guild.roles}
        ids = []
        for name in names:
            if name not in by_name or name == "@everyone":
                known = sorted(n for n in by_name if n != "@everyone")
                raise LookupError(f"{guild.name!r} has no role {name!r}; it has {known}")
            ids.append(by_name[name])
        return ids

    def member(
        self, guild: Guild, user_id: int, *, with_user: bool = True, permissions: bool = False
    ) -> dict[str, Any]:
        member = copy.deepcopy(guild.members[user_id])
        if with_user:
            member["user"] = copy.deepcopy(self.users[user_id])
        if permissions:
            member["permissions"] = str(self.permissions(guild, user_id))
        return member

    def permissions(self, guild: Guild, user_id: int) -> int:
        """A member's guild permissions: the owner has them all, others @everyone's and
        their roles'."""
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        value = EVERYONE_PERMISSIONS
        roles = guild.members.get(user_id, {}).get("roles", [])
        for role in guild.roles:
            if role["id"] in roles:
                value |= int(role["permissions"])
        return value

    # ------------------------------------------------------------------------ guilds, channels

    def add_guild(self, guild: Guild) -> Guild:
        self.guilds[guild.id] = guild
        return guild

    def add_channel(self, guild: Guild, channel: Channel) -> Channel:
        guild.channel_ids.append(channel.id)
        self.channels[channel.id] = channel
        return channel

    def private_channel(self, user: dict[str, Any], context: int, bot: dict[str, Any]) -> Channel:
        """``user``'s DM with the bot (``context`` 1), or a group DM of theirs without it (2),
        made on first use."""
        known = self.private_channels.get((str(user["id"]), context))
        if known is not None:
            return self.channels[known]
        channel = Channel(payloads.private_channel(snowflake(), user, bot, context))
        self.channels[channel.id] = channel
        self.private_channels[(str(user["id"]), context)] = channel.id
        return channel

    def guild(self, guild_id: int) -> Guild:
        guild = self.guilds.get(guild_id)
        if guild is None:
            raise unknown("Guild", 10004)
        return guild

    def channel(self, channel_id: int) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise unknown("Channel", 10003)
        return channel

    def guild_of(self, channel: Channel) -> Guild:
        if channel.guild_id is None:
            raise LookupError(f"channel {channel.id} is a DM or group DM: it has no guild")
        return self.guilds[channel.guild_id]

    def guild_channels(self, guild: Guild) -> list[dict[str, Any]]:
        return [self.channels[c].payload for c in guild.channel_ids]

    # ------------------------------------------------------------------------ messages

    def message(self, message_id: int, channel: Channel | None = None) -> dict[str, Any]:
        """A kept message by id (in ``channel`` when given); 404 Unknown Message otherwise."""
        message = self._messages.get(message_id)
        if message is None or (channel is not None and int(message["channel_id"]) != channel.id):
            raise unknown("Message", 10008)
        return message

    def all_messages(self) -> Iterator[dict[str, Any]]:
        """Every kept message, in the order they were created."""
        return iter(list(self._messages.values()))

    def visible_messages(self, channel: Channel) -> list[dict[str, Any]]:
        """The channel's messages everyone can see (not ephemeral), oldest first."""
        return [m for m in channel.messages.values() if not m["flags"] & FLAG_EPHEMERAL]

    def add_message(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Keep a new message; returns the channel's oldest ones forgotten to make room."""
        channel = self.channels[int(message["channel_id"])]
        message_id = int(message["id"])
        channel.messages[message_id] = message
        self._messages[message_id] = message
        if not message["flags"] & FLAG_EPHEMERAL:
            channel.payload["last_message_id"] = message["id"]
        dropped = []
        while len(channel.messages) > self.limits.messages:
            oldest = next(iter(channel.messages.values()))
            self.remove_message(oldest)
            dropped.append(oldest)
        return dropped

    def remove_message(self, message: dict[str, Any]) -> None:
        message_id = int(message["id"])
        self._messages.pop(message_id, None)
        channel = self.channels.get(int(message["channel_id"]))
        if channel is not None:
            channel.messages.pop(message_id, None)
        self.reactions.pop(message_id, None)

    # ------------------------------------------------------------------------ files

    def add_file(self, attachment_id: int, stored: StoredFile) -> None:
        """Keep an attachment's bytes for the CDN, forgetting the oldest past the limits."""
        self.files[attachment_id] = stored
        self.file_bytes += len(stored.data)
        limits = self.limits
        while len(self.files) > 1 and (
            len(self.files) > limits.files or self.file_bytes > limits.file_bytes
        ):
            _, oldest = self.files.popitem(last=False)
            self.file_bytes -= len(oldest.data)

    # ------------------------------------------------------------------------ commands

    def scoped_commands(self, guild_id: int | None) -> list[dict[str, Any]]:
        """Global commands (``None``) or one guild's."""
        wanted = None if guild_id is None else str(guild_id)
        return [c for c in self.commands.values() if c.get("guild_id") == wanted]

    def find_command(self, name: str, command_type: int, guild_id: int | None) -> dict[str, Any]:
        """A global command, or one of ``guild_id``'s, by name and type (LookupError if none)."""
        usable = [c for c in self.commands.values() if c.get("guild_id") in (None, str(guild_id))]
        for command in usable:
            if command["name"] == name and command.get("type", 1) == command_type:
                return command
        names = sorted(c["name"] for c in usable)
        raise LookupError(f"no registered command {name!r} of type {command_type}: {names}")

    # ------------------------------------------------------------------------ interactions

    def add_interaction(self, interaction: Interaction) -> None:
        self.interactions[interaction.token] = interaction
        while len(self.interactions) > self.limits.interactions:
            self.interactions.popitem(last=False)

    def interaction_by_id(self, interaction_id: int) -> Interaction:
        """A kept interaction by id (`LookupError` when unknown or forgotten)."""
        for interaction in reversed(self.interactions.values()):
            if interaction.id == interaction_id:
                return interaction
        raise LookupError(f"no interaction {interaction_id} (unknown, or forgotten)")

    def interaction(self, token: str) -> Interaction:
        interaction = self.interactions.get(token)
        if interaction is None:
            raise unknown("Webhook", 10015)
        return interaction
