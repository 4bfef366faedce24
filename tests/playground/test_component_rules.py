"""Discord's rules for message components, as the look-alike applies them: what is refused
(400 Invalid Form Body, 50035, naming every broken field), what is kept and how (numbered),
and the same rules on edits, interaction callbacks and followups."""

from __future__ import annotations

import pytest
from discordkit import button, codes_at, link, rest, row

from playground.discord import DiscordError, DiscordServer
from playground.discord.components import normalise

pytestmark = pytest.mark.timeout(20)

MUTUALLY_EXCLUSIVE = "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE"
SELECT = {"type": 3, "custom_id": "pick", "options": [{"label": "Jedi", "value": "jedi"}]}

REFUSED = {
    "six rows": ([row(button(f"b{i}")) for i in range(6)], "components", "BASE_TYPE_MAX_LENGTH"),
    "six buttons in a row": (
        [row(*(button(f"b{i}") for i in range(6)))],
        "components.0.components",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "an empty row": ([row()], "components.0.components", "BASE_TYPE_BAD_LENGTH"),
    "a button outside a row": ([button()], "components.0.type", "UNION_TYPE_CHOICES"),
    "style 6": ([row(button(style=6))], "components.0.components.0.style", "BASE_TYPE_CHOICES"),
    "a label of 81": (
        [row(button(label="x" * 81))],
        "components.0.components.0.label",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "no custom_id": (
        [row({"type": 2, "style": 3, "label": "Right"})],
        "components.0.components.0.custom_id",
        "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED",
    ),
    "a custom_id of 101": (
        [row(button("x" * 101))],
        "components.0.components.0.custom_id",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "a custom_id twice in a message": (
        [row(button("same")), row(button("other"), button("same"))],
        "components.1.components.1.custom_id",
        "COMPONENT_CUSTOM_ID_DUPLICATED",
    ),
    "a link without url": (
        [row(link())],
        "components.0.components.0.url",
        "BUTTON_COMPONENT_URL_REQUIRED",
    ),
    "a link with a custom_id": (
        [row(link(url="https://example.com", custom_id="c"))],
        "components.0.components.0.custom_id",
        MUTUALLY_EXCLUSIVE,
    ),
    "a url on a plain button": (
        [row(button(url="https://example.com"))],
        "components.0.components.0.url",
        MUTUALLY_EXCLUSIVE,
    ),
    "a javascript: link": (
        [row(link(url="javascript:alert(1)"))],
        "components.0.components.0.url",
        "URL_TYPE_INVALID_SCHEME",
    ),
    "a select beside a button": (
        [row(SELECT, button())],
        "components.0.components.1",
        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
    ),
    "disabled as text": (
        [row(button(disabled="yes"))],
        "components.0.components.0.disabled",
        "BASE_TYPE_BOOLEAN",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_broken_components_are_400_invalid_form_body(
    server: DiscordServer, case: str
) -> None:
    components, path, code = REFUSED[case]
    channel = f"/channels/{server.channel_id}/messages"
    status, body = await rest(server, "POST", channel, {"content": "hi", "components": components})
    assert status == 400, body
    assert (body["code"], body["message"]) == (50035, "Invalid Form Body")
    assert codes_at(body["errors"], path) == [code]
    assert server.messages == []  # nothing was posted


def test_every_broken_rule_is_named_in_one_answer() -> None:
    with pytest.raises(DiscordError) as caught:
        normalise([row(button(""), button("ok", label="x" * 81)), row(link())], "data.components")
    errors = caught.value.errors or {}
    assert codes_at(errors, "data.components.0.components.0.custom_id") == [
        "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED"
    ]
    assert codes_at(errors, "data.components.0.components.1.label") == ["BASE_TYPE_MAX_LENGTH"]
    assert codes_at(errors, "data.components.1.components.0.url") == [
        "BUTTON_COMPONENT_URL_REQUIRED"
    ]


async def test_components_at_the_limits_are_kept_numbered_and_edited(
    server: DiscordServer,
) -> None:
    full = [button(f"{r}{b}".ljust(100, "x"), label="y" * 80) for r in range(3) for b in range(5)]
    rows = [row(*full[r * 5 : r * 5 + 5]) for r in range(3)]
    rows.append(row(button("off", disabled=True), link(url="https://example.com/docs")))
    rows.append(row(SELECT))
    channel = f"/channels/{server.channel_id}/messages"
    status, created = await rest(server, "POST", channel, {"components": rows})
    assert status == 200, created  # components alone make a message
    ids = [row_["id"] for row_ in created["components"]]
    assert ids == [1, 7, 13, 19, 22]  # each row, then what it holds, numbered in order
    docs = link(url="https://example.com/docs")
    assert created["components"][3]["components"][1] == {**docs, "id": 21}
    path = f"{channel}/{created['id']}"
    assert (await rest(server, "GET", path))[1]["components"] == created["components"]

    status, edited = await rest(server, "PATCH", path, {"content": "now with text"})
    assert status == 200 and edited["components"] == created["components"]  # left out: kept
    status, body = await rest(
        server, "PATCH", path, {"content": "lost?", "components": [row(button(), button())]}
    )
    assert status == 400 and codes_at(body["errors"], "components.0.components.1.custom_id") == [
        "COMPONENT_CUSTOM_ID_DUPLICATED"
    ]
    kept = server.get_message(created["id"])
    assert kept["content"] == "now with text" and kept["components"] == created["components"]
    status, cleared = await rest(server, "PATCH", path, {"components": []})
    assert status == 200 and cleared["components"] == []


async def test_callbacks_and_followups_check_components(server: DiscordServer) -> None:
    command = {"name": "vote", "description": "Vote"}
    status, _ = await rest(
        server, "PUT", f"/applications/{server.application_id}/commands", [command]
    )
    assert status == 200
    interaction = await server.invoke_slash_command("vote")
    callback = f"/interactions/{interaction['id']}/{interaction['token']}/callback"
    bad = {"type": 4, "data": {"content": "x", "components": [row(button(""))]}}
    status, body = await rest(server, "POST", callback, bad, token=None)
    assert status == 400
    assert codes_at(body["errors"], "data.components.0.components.0.custom_id") == [
        "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED"
    ]
    status, body = await rest(server, "POST", callback, {"type": 7, "data": {}}, token=None)
    assert status == 400 and "type" in body["errors"]  # only a click's answer may update
    good = {"type": 4, "data": {"content": "Vote:", "components": [row(button("v"))]}}
    assert (await rest(server, "POST", callback, good, token=None))[0] == 204
    answer = await server.wait_for_interaction_response(interaction["id"], timeout=1)
    assert answer["components"][0]["components"][0]["custom_id"] == "v"

    hook = f"/webhooks/{server.application_id}/{interaction['token']}"
    followup = {"content": "more", "components": [row(link(url="ftp://example.com"))]}
    status, body = await rest(server, "POST", hook, followup, token=None)
    assert status == 400
    assert codes_at(body["errors"], "components.0.components.0.url") == ["URL_TYPE_INVALID_SCHEME"]
