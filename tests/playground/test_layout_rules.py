"""Discord's rules for layout ("V2") messages, as the look-alike applies them: flag
IS_COMPONENTS_V2 -> no content or embeds, layout components checked (40 in all, 4,000
characters of text), the flag kept once set; 400 Invalid Form Body otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from discordkit import button, codes_at, rest, row

from playground.discord import DiscordServer

pytestmark = pytest.mark.timeout(20)

V2 = 1 << 15


def text(content: str = "Sith") -> dict[str, Any]:
    return {"type": 10, "content": content}


def card(custom_id: str = "v", url: str = "https://cdn.example/a.png") -> dict[str, Any]:
    """A container: a section (text and thumbnail), a gallery, a separator and a button row."""
    section = {"type": 9, "components": [text()], "accessory": {"type": 11, "media": {"url": url}}}
    gallery = {"type": 12, "items": [{"media": {"url": url}}]}
    parts = [section, gallery, {"type": 14, "divider": True}, row(button(custom_id))]
    return {"type": 17, "accent_color": 0xE74C3C, "components": parts}


REFUSED = {
    "content beside a layout": (
        {"content": "hi", "components": [card()]},
        "content",
        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
    ),
    "embeds beside a layout": (
        {"embeds": [{"title": "x"}], "components": [card()]},
        "embeds",
        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
    ),
    "41 components": (
        {"components": [text(f"{n}") for n in range(41)]},
        "components",
        "MESSAGE_COMPONENTS_TOO_MANY",
    ),
    "4001 characters of text": (
        {"components": [text("x" * 2000), text("y" * 2001)]},
        "components",
        "MESSAGE_COMPONENTS_TEXT_TOO_LONG",
    ),
    "a container in a container": (
        {"components": [{"type": 17, "components": [card()]}]},
        "components.0.components.0.type",
        "UNION_TYPE_CHOICES",
    ),
    "a thumbnail at the top": (
        {"components": [{"type": 11, "media": {"url": "https://cdn.example/a.png"}}]},
        "components.0.type",
        "UNION_TYPE_CHOICES",
    ),
    "a section without accessory": (
        {"components": [{"type": 9, "components": [text()]}]},
        "components.0.accessory",
        "BASE_TYPE_REQUIRED",
    ),
    "a section of four texts": (
        {"components": [{**card()["components"][0], "components": [text()] * 4}]},
        "components.0.components",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "an empty gallery": (
        {"components": [{"type": 12, "items": []}]},
        "components.0.items",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "an accent colour past 0xFFFFFF": (
        {"components": [{**card(), "accent_color": 0x1000000}]},
        "components.0.accent_color",
        "NUMBER_TYPE_MAX",
    ),
    "an empty text": ({"components": [text("")]}, "components.0.content", "BASE_TYPE_REQUIRED"),
    "a button in a row of a container without custom_id": (
        {"components": [card(custom_id="")]},
        "components.0.components.3.components.0.custom_id",
        "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_broken_layouts_are_400_invalid_form_body(server: DiscordServer, case: str) -> None:
    body, path, code = REFUSED[case]
    channel = f"/channels/{server.channel_id}/messages"
    status, answer = await rest(server, "POST", channel, {**body, "flags": V2})
    assert status == 400, answer
    assert (answer["code"], answer["message"]) == (50035, "Invalid Form Body")
    assert codes_at(answer["errors"], path) == [code]
    assert server.messages == []


async def test_layout_components_need_the_flag(server: DiscordServer) -> None:
    channel = f"/channels/{server.channel_id}/messages"
    status, answer = await rest(server, "POST", channel, {"components": [card()]})
    assert status == 400 and codes_at(answer["errors"], "components.0.type") == [
        "UNION_TYPE_CHOICES"
    ]


async def test_a_layout_at_the_limits_is_kept_numbered_clicked_and_keeps_its_flag(
    server: DiscordServer,
) -> None:
    cards = [card(f"v{n}") for n in range(5)]  # 5 x 8 = 40 components
    cards[0]["components"][0]["components"][0]["content"] = "x" * (
        4000 - 4 * 4
    )  # and "Sith" in four more
    channel = f"/channels/{server.channel_id}/messages"
    status, created = await rest(server, "POST", channel, {"flags": V2, "components": cards})
    assert status == 200, created
    assert created["flags"] & V2 and created["content"] == ""
    assert [c["id"] for c in created["components"]] == [1, 9, 17, 25, 33]
    interaction = await server.click_button(created["id"], "v4")
    assert interaction["data"]["custom_id"] == "v4"

    path = f"{channel}/{created['id']}"
    status, answer = await rest(server, "PATCH", path, {"flags": 0, "components": [card()]})
    assert status == 400
    assert codes_at(answer["errors"], "flags") == ["MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG"]
    status, answer = await rest(server, "PATCH", path, {"content": "now text"})
    assert status == 400 and codes_at(answer["errors"], "content") == [
        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2"
    ]
    status, edited = await rest(server, "PATCH", path, {"components": [card("only")]})
    assert status == 200 and edited["flags"] & V2 and len(edited["components"]) == 1
    assert server.get_message(created["id"])["components"] == edited["components"]


async def test_interaction_answers_follow_the_layout_rules(server: DiscordServer) -> None:
    command = {"name": "vote", "description": "Vote"}
    status, _ = await rest(
        server, "PUT", f"/applications/{server.application_id}/commands", [command]
    )
    assert status == 200
    interaction = await server.invoke_slash_command("vote")
    callback = f"/interactions/{interaction['id']}/{interaction['token']}/callback"
    bad = {"type": 4, "data": {"flags": V2, "content": "x", "components": [card()]}}
    status, body = await rest(server, "POST", callback, bad, token=None)
    assert status == 400
    assert codes_at(body["errors"], "data.content") == [
        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2"
    ]
    good = {"type": 4, "data": {"flags": V2, "components": [card()]}}
    assert (await rest(server, "POST", callback, good, token=None))[0] == 204
    answer = await server.wait_for_interaction_response(interaction["id"], timeout=1)
    assert answer["flags"] & V2 and answer["components"][0]["type"] == 17

    hook = f"/webhooks/{server.application_id}/{interaction['token']}"
    too_many = {"flags": V2, "components": [text(f"{n}") for n in range(41)]}
    status, body = await rest(server, "POST", hook, too_many, token=None)
    assert status == 400 and codes_at(body["errors"], "components") == [
        "MESSAGE_COMPONENTS_TOO_MANY"
    ]
