"""Fakes of discord.py objects for the bot's unit tests, built with `spec_set` so they cannot
drift from the library."""

from __future__ import annotations

from unittest import mock

import discord


def user(user_id: int, name: str) -> discord.User:
    """A user as commands see one: id, display name, mention."""
    fake = mock.create_autospec(discord.User, instance=True, spec_set=True)
    fake.id, fake.display_name, fake.mention = user_id, name, f"<@{user_id}>"
    return fake


def progress_message(message_id: int) -> tuple[discord.Message, list[str]]:
    """A message the bot edits, and the list of what it was edited to."""
    fake = mock.create_autospec(discord.Message, instance=True, spec_set=True)
    fake.id = message_id
    edits: list[str] = []

    async def edit(*, content: str) -> None:
        edits.append(content)

    fake.edit.side_effect = edit
    return fake, edits


def guild(guild_id: int, name: str = "a server") -> discord.Guild:
    """A server, by its id."""
    fake = mock.create_autospec(discord.Guild, instance=True, spec_set=True)
    fake.id, fake.name = guild_id, name
    return fake


def member(
    user_id: int, name: str, of: discord.Guild, permissions: discord.Permissions
) -> discord.Member:
    """A member of the server `of`, with `permissions` there."""
    fake = mock.create_autospec(discord.Member, instance=True, spec_set=True)
    fake.id, fake.display_name, fake.mention = user_id, name, f"<@{user_id}>"
    fake.guild, fake.guild_permissions = of, permissions
    return fake
