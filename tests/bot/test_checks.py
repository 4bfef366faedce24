"""Who may change what: a server's managers their server, the bot's operator the shared model."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest import mock

import aiohttp
import discord
import pytest
from fakes import guild, member, user

from bot.checks import (
    IN_A_SERVER,
    OPERATOR_ONLY,
    is_operator,
    manages,
    require_manager,
    require_operator,
)
from bot.errors import NotAllowed
from bot.settings import Settings

OWNER_ID, LISTED_ID, EVE_ID = 11, 12, 13
MANAGE = discord.Permissions(manage_guild=True)
NOTHING = discord.Permissions.none()
A, B = guild(1, "Jedi Temple"), guild(2, "Eve's server")


def bot(operator_ids: frozenset[int] = frozenset()) -> Any:
    """A bot whose application is owned by OWNER_ID, with OPERATOR_IDS `operator_ids`."""

    async def is_owner(someone: discord.abc.User) -> bool:
        return someone.id == OWNER_ID

    settings = Settings(token="x", operator_ids=operator_ids)
    return SimpleNamespace(is_owner=is_owner, settings=settings)


def test_operator_ids_are_read_as_a_list() -> None:
    settings = Settings.from_env({"DISCORD_TOKEN": "x", "OPERATOR_IDS": "12, 34,"})
    assert settings.operator_ids == frozenset({12, 34})
    assert Settings(token="x").operator_ids == frozenset()


async def test_the_applications_owner_is_an_operator() -> None:
    assert await is_operator(bot(), user(OWNER_ID, "padawan"))
    assert not await is_operator(bot(), user(LISTED_ID, "mace"))


async def test_an_owner_discord_cannot_name_is_no_operator() -> None:
    """Asking Discord who owns the application failed: nobody but OPERATOR_IDS operates."""
    failing = bot(frozenset({LISTED_ID}))
    response = mock.create_autospec(aiohttp.ClientResponse, instance=True, spec_set=True)
    response.status, response.reason = 503, "Service Unavailable"

    async def is_owner(someone: discord.abc.User) -> bool:
        raise discord.HTTPException(response, "unavailable")

    failing.is_owner = is_owner
    assert not await is_operator(failing, user(OWNER_ID, "padawan"))
    assert await is_operator(failing, user(LISTED_ID, "mace"))


async def test_a_user_in_operator_ids_is_an_operator() -> None:
    assert await is_operator(bot(frozenset({LISTED_ID})), user(LISTED_ID, "mace"))


async def test_managing_a_server_does_not_make_an_operator() -> None:
    eve = member(EVE_ID, "eve", B, discord.Permissions.all())  # she owns her server
    assert manages(eve, B)
    assert not await is_operator(bot(), eve)
    with pytest.raises(NotAllowed, match=f"^{OPERATOR_ONLY}$"):
        await require_operator(bot(), eve, B, "retrain me")
    with pytest.raises(NotAllowed, match=f"^{OPERATOR_ONLY}$"):
        await require_operator(bot(), user(EVE_ID, "eve"), None, "retrain me")  # in a DM


async def test_the_operator_may_act_from_any_server_or_a_dm() -> None:
    operator = bot(frozenset({LISTED_ID}))
    await require_operator(operator, member(LISTED_ID, "mace", B, NOTHING), B, "retrain me")
    await require_operator(operator, user(LISTED_ID, "mace"), None, "retrain me")
    await require_operator(operator, member(OWNER_ID, "padawan", A, MANAGE), A, "retrain me")


async def test_a_member_without_manage_server_is_told_so_first() -> None:
    visitor = member(EVE_ID, "ahsoka", A, NOTHING)
    with pytest.raises(NotAllowed, match="Only members with the Manage Server permission can"):
        await require_operator(bot(), visitor, A, "retrain me")


def test_a_manager_is_one_in_the_server_the_command_was_typed_in() -> None:
    eve_in_b = member(EVE_ID, "eve", B, MANAGE)
    require_manager(eve_in_b, B, "turn collection on or off")
    assert not manages(eve_in_b, A)  # her permissions in B count only in B
    with pytest.raises(NotAllowed, match="Only members with the Manage Server permission"):
        require_manager(eve_in_b, A, "turn collection on or off")
    with pytest.raises(NotAllowed, match="Only members with the Manage Server permission"):
        require_manager(member(EVE_ID, "eve", A, NOTHING), A, "turn collection on or off")


def test_a_server_is_changed_only_from_that_server() -> None:
    with pytest.raises(NotAllowed, match=f"^{IN_A_SERVER}$"):
        require_manager(user(EVE_ID, "eve"), None, "turn collection on or off")


async def test_the_owner_of_the_application_is_no_manager_of_other_servers() -> None:
    owner = member(OWNER_ID, "padawan", B, NOTHING)
    assert await is_operator(bot(), owner)
    with pytest.raises(NotAllowed):
        require_manager(owner, B, "turn collection on or off")
