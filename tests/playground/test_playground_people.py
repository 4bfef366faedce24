"""The playground page's people and buttons: posting as padawan, master or youngling, the
buttons of bot messages in the page's views, and the click route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from playground.discord.state import Interaction
from playground.views import message_view
from playground.web import TOKEN_HEADER, PlaygroundServer

pytestmark = pytest.mark.timeout(30)

ROWS = [
    {
        "type": 1,
        "components": [
            {"type": 2, "style": 3, "label": "Right", "custom_id": "vote:right"},
            {"type": 2, "style": 4, "label": "It's a Sith", "custom_id": "vote:sith"},
            {"type": 2, "style": 2, "label": "Off", "custom_id": "off", "disabled": True},
            {"type": 2, "style": 5, "label": "Docs", "url": "https://example.com/docs"},
        ],
    }
]


@pytest.fixture
async def server() -> AsyncIterator[PlaygroundServer]:
    async with PlaygroundServer(token="page-test-token") as srv:
        yield srv


@pytest.fixture
async def http(server: PlaygroundServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A client of `server`'s page: it sends the token the page is given."""
    async with aiohttp.ClientSession(headers={TOKEN_HEADER: server.web.page_token}) as session:
        yield session


async def post(
    http: aiohttp.ClientSession,
    server: PlaygroundServer,
    path: str,
    person: str | None = None,
    **fields: str,
) -> tuple[int, dict[str, Any]]:
    """POST a form to the page's API, as ``person`` (the ``as`` field) when given."""
    if person is not None:
        fields["as"] = person
    async with http.post(f"{server.base_url}/playground/api/{path}", data=fields) as response:
        return response.status, await response.json()


async def bot_message(http: aiohttp.ClientSession, server: PlaygroundServer) -> dict[str, Any]:
    """A bot message with buttons, made the way the bot makes one (REST, with its token)."""
    url = f"{server.api_url}/channels/{server.channel_id}/messages"
    headers = {"Authorization": f"Bot {server.token}"}
    body = {"content": "A Jedi, I think", "components": ROWS}
    async with http.post(url, json=body, headers=headers) as response:
        assert response.status == 200
        return await response.json()


async def answer(
    http: aiohttp.ClientSession,
    server: PlaygroundServer,
    interaction: Interaction,
    body: dict[str, Any],
) -> None:
    """Answer an interaction as the bot would (a callback needs no token)."""
    path = f"/interactions/{interaction.id}/{interaction.token}/callback"
    async with http.post(f"{server.api_url}{path}", json=body) as response:
        assert response.status == 204


async def next_interaction(server: PlaygroundServer, known: int) -> Interaction:
    """The interaction after the ``known`` first ones, once it is there."""
    async with asyncio.timeout(5):
        while len(server.state.interactions) <= known:
            await asyncio.sleep(0.01)
    return list(server.state.interactions.values())[-1]


async def test_the_page_can_be_three_people(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.base_url}/playground/api/state") as response:
        state = await response.json()
    people = [(p["username"], p["name"], p["title"], p["roles"]) for p in state["people"]]
    assert people == [
        ("padawan", "Padawan", "owner", []),
        ("master", "Master", "moderator", ["Admins"]),
        ("youngling", "Youngling", "member", []),
    ]
    assert state["me"]["username"] == "padawan"

    command = "!dataset collect on"
    status, body = await post(http, server, "messages", "master", content=command)
    assert status == 201 and body["message"]["author"]["username"] == "master"
    stored = server.messages[-1]
    assert stored["author"]["id"] == server.moderator["id"]
    status, body = await post(http, server, "messages", content="hi", person="visitor")
    assert status == 400 and "padawan, master, youngling" in body["error"]
    assert len(server.messages) == 1


async def test_slash_commands_as_someone(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    url = f"{server.api_url}/applications/{server.application_id}/commands"
    headers = {"Authorization": f"Bot {server.token}"}
    commands = [{"name": "retrain", "description": "Train again"}]
    async with http.put(url, json=commands, headers=headers) as response:
        assert response.status == 200
    status, body = await post(
        http, server, "interactions", kind="slash", name="retrain", person="youngling"
    )
    assert status == 202
    interaction = list(server.state.interactions.values())[-1]
    assert interaction.payload["id"] == body["interaction_id"]
    assert interaction.payload["member"]["user"]["username"] == "youngling"
    assert interaction.payload["member"]["roles"] == []


async def test_buttons_in_the_page_and_the_click_route(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    verdict = await bot_message(http, server)
    view = message_view(server.get_message(verdict["id"]))
    assert view["components"] == [
        [
            {"style": "success", "label": "Right", "emoji": "", "custom_id": "vote:right",
             "url": None, "disabled": False},
            {"style": "danger", "label": "It's a Sith", "emoji": "", "custom_id": "vote:sith",
             "url": None, "disabled": False},
            {"style": "secondary", "label": "Off", "emoji": "", "custom_id": "off",
             "url": None, "disabled": True},
            {"style": "link", "label": "Docs", "emoji": "", "custom_id": None,
             "url": "https://example.com/docs", "disabled": False},
        ]
    ]  # fmt: skip

    known = len(server.state.interactions)
    click = asyncio.create_task(
        post(http, server, "click", "master", message_id=verdict["id"], custom_id="vote:right")
    )
    interaction = await next_interaction(server, known)
    assert interaction.payload["member"]["user"]["username"] == "master"
    assert interaction.payload["data"]["custom_id"] == "vote:right"
    body = {"type": 4, "data": {"content": "Thanks, master", "flags": 64}}
    await answer(http, server, interaction, body)
    status, result = await click
    assert status == 200
    assert result == {"interaction_id": interaction.payload["id"], "response_type": 4}
    reply = message_view(server.messages[-1])
    assert reply["ephemeral"] and reply["interaction"]["type"] == 3
    assert reply["interaction"]["user"]["username"] == "master"
    assert reply["reply_to"]["id"] == verdict["id"]  # a click's answer replies to its message

    server.web.actions.ack_timeout = 0.1  # a bot that never answers: Discord's 3 s, shortened
    status, result = await post(
        http, server, "click", message_id=verdict["id"], custom_id="vote:sith"
    )
    assert status == 200 and result["response_type"] is None

    refused = {
        "off": (400, "disabled"),
        "vote:maybe": (400, "no button"),
        "": (400, "custom_id is required"),
    }
    for custom_id, (code, text) in refused.items():
        status, result = await post(
            http, server, "click", message_id=verdict["id"], custom_id=custom_id
        )
        assert status == code and text in result["error"], (custom_id, result)
    status, result = await post(http, server, "click", message_id="123", custom_id="vote:sith")
    assert status == 404
    status, result = await post(
        http, server, "click", message_id=verdict["id"], custom_id="vote:sith", person="vader"
    )
    assert status == 400


def test_only_web_links_become_links() -> None:
    message = {
        "id": "1",
        "flags": 0,
        "components": [
            {
                "type": 1,
                "components": [
                    {"type": 2, "style": 5, "label": "x", "url": "javascript:alert(1)"},
                    {"type": 3, "custom_id": "pick", "options": [], "placeholder": "Pick one"},
                ],
            }
        ],
    }
    (row,) = message_view(message)["components"]
    assert row[0]["url"] is None
    assert row[1]["disabled"] and row[1]["label"] == "Pick one"  # selects are shown, not used
