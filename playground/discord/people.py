"""The guilds' people, as the test driver sees them: who an author dict means, which guild a
channel is in, and members' roles (by name). The first part of `Driver`.

An author (or ``user``) dict names a person by ``username`` (or ``id``); one not seen before
is created (the other keys become its user fields) and joins the channel's guild. A
``"roles"`` key (role names, e.g. ``["Moderators"]``) sets that member's roles in that guild;
without it, the roles stay as they are. ``None`` means the human, "padawan".

Every guild has the roles "Moderators" (Manage Messages) and "Admins" (Manage Server and
Manage Messages). "padawan" owns the guilds, so Discord (and discord.py) give it every
permission, unless a guild is given to someone else (`give_guild`); "master" has the Admins
role in every guild; anyone else starts with none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from playground.discord import payloads
from playground.discord.protocol import (
    ADMIN_PERMISSIONS,
    MODERATOR_PERMISSIONS,
    now_iso,
    snowflake,
)
from playground.discord.state import Channel, Guild

if TYPE_CHECKING:
    from playground.discord.state import State

MODERATORS = "Moderators"
ADMINS = "Admins"


class People:
    """Acting as someone in a guild: finding or making the user, and their roles."""

    state: State
    channel_id: int
    guild_id: int
    human: dict[str, Any]

    def _channel(self, channel_id: int | None) -> Channel:
        return self.state.channel(self.channel_id if channel_id is None else int(channel_id))

    def _author(self, author: Mapping[str, Any] | None, channel: Channel) -> dict[str, Any]:
        """The user for an author dict (default: the human), a member of the channel's guild
        (with the dict's ``roles`` when it has that key)."""
        if channel.guild_id is None:  # a DM or group DM: no guild to join
            return self._user(author)
        guild = self.state.guild_of(channel)
        roles = None
        if author is not None and "roles" in author:
            roles = self.state.role_ids(guild, _names(author["roles"]))  # before any change
        user = self._user(author)
        self.state.join(guild, int(user["id"]), at=now_iso())
        if roles is not None:
            guild.members[int(user["id"])]["roles"] = roles
        return user

    def _user(self, author: Mapping[str, Any] | None) -> dict[str, Any]:
        state = self.state
        if author is None:
            return self.human
        username = str(author.get("username", "visitor"))
        if author.get("id") is None and (known := state.user_named(username)) is not None:
            return known
        user = payloads.user(
            int(author.get("id") or snowflake()),
            username,
            bot=bool(author.get("bot", False)),
            global_name=author.get("global_name"),
        )
        user.update({k: v for k, v in author.items() if k not in ("id", "roles")})
        return state.add_user(user)

    def add_member(
        self, username: str, *, roles: Iterable[str] = (), guild_id: int | None = None
    ) -> dict[str, Any]:
        """Make ``username`` (a new user unless one has that name) a member of a guild (the
        default one unless ``guild_id``) whose roles are exactly ``roles`` (names, e.g.
        ``["Moderators"]``); returns the user dict, to pass as an author or ``user``.

        Nothing is dispatched (the look-alike sends no member events): the bot learns the
        member, with its roles, from their next message or interaction.
        """
        guild = self.state.guild(self.guild_id if guild_id is None else int(guild_id))
        channel = self.state.channel(guild.channel_ids[0])
        return self._author({"username": username, "roles": list(roles)}, channel)

    def give_guild(self, username: str, guild_id: int) -> dict[str, Any]:
        """Make ``username`` (a new user unless one has that name) a member and the owner of a
        guild, with every permission there, as the person who created that server; the human,
        "padawan", stays a member with only the roles it had. Returns the user dict.

        Give guilds before the bot connects: the look-alike sends no GUILD_UPDATE, so a bot
        already connected would keep the old owner.
        """
        guild = self.state.guild(int(guild_id))
        user = self.add_member(username, guild_id=guild.id)
        guild.owner_id = int(user["id"])
        return user

    def role_names(self, user: Mapping[str, Any], guild_id: int | None = None) -> list[str]:
        """The names of a member's roles in a guild (the default one unless ``guild_id``)."""
        guild = self.state.guild(self.guild_id if guild_id is None else int(guild_id))
        ids = guild.members.get(int(user["id"]), {}).get("roles", [])
        return [role["name"] for role in guild.roles if role["id"] in ids]


def _names(roles: Any) -> list[str]:
    return [roles] if isinstance(roles, str) else [str(name) for name in roles]


def seed_roles(guild: Guild, *, position: int) -> None:
    """Add the "Moderators" and "Admins" roles above ``position`` (in GUILD_CREATE, GET
    roles, and every member's permissions)."""
    moderators = payloads.role(snowflake(), MODERATORS, MODERATOR_PERMISSIONS, position=position)
    admins = payloads.role(snowflake(), ADMINS, ADMIN_PERMISSIONS, position=position + 1)
    moderators.update(color=0x2ECC71, hoist=True)
    admins.update(color=0xE67E22, hoist=True)
    for role in (moderators, admins):
        role["colors"]["primary_color"] = role["color"]
    guild.roles += [moderators, admins]
