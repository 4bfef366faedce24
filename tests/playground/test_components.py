"""Message components through discord.py: views sent and parsed, and clicks
(MESSAGE_COMPONENT interactions) answered with each callback type, on fresh messages, on
messages from before a restart (persistent views, dynamic items) and on ephemeral ones. The
rules themselves: test_component_rules.py."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from discordkit import Runner, button, eventually, first, new_bot, rest, row

from playground.discord import DiscordError, DiscordServer

pytestmark = pytest.mark.timeout(20)


class Verdict(discord.ui.View):
    """The buttons under a verdict, each answering a click with another callback type."""

    def __init__(self, calls: list[tuple[Any, ...]], *, disabled: bool = False) -> None:
        super().__init__(timeout=None)
        self.calls = calls
        for child in self.children:
            if isinstance(child, discord.ui.Button) and child.custom_id != "retract":
                child.disabled = disabled
        self.add_item(discord.ui.Button(label="How it works", url="https://example.com/how"))

    @discord.ui.button(label="Right", custom_id="vote:right", style=discord.ButtonStyle.success)
    async def right(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        self.calls.append(("right", interaction.user.name, interaction.message.id))
        await interaction.response.send_message(f"Thanks, {interaction.user.name}", ephemeral=True)

    @discord.ui.button(
        label="It's a Jedi", custom_id="vote:jedi", style=discord.ButtonStyle.primary
    )
    async def jedi(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        self.calls.append(("jedi", interaction.user.name))
        await interaction.response.defer()  # type 6: nothing to show

    @discord.ui.button(label="It's a Sith", custom_id="vote:sith", style=discord.ButtonStyle.danger)
    async def sith(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        answer = await interaction.response.edit_message(
            content="Sith it is", view=Verdict(self.calls, disabled=True)
        )
        self.calls.append(("sith", answer.message_id if answer else None))

    @discord.ui.button(label="Explain", custom_id="explain")
    async def explain(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)  # type 5
        await interaction.followup.send("Because of the red blade")
        self.calls.append(("explain",))

    @discord.ui.button(label="Take it back", custom_id="retract", row=1)
    async def retract(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        await interaction.response.defer()  # type 6, then @original is the clicked message
        await interaction.edit_original_response(content="Taken back", view=None)


async def verdict_bot(
    server: DiscordServer, run_client: Runner
) -> tuple[list[tuple[Any, ...]], asyncio.Queue[discord.Message], dict[str, Any]]:
    """A bot answering "!verdict" with a `Verdict`; returns its calls, the messages it saw
    edited, and the verdict message as the look-alike keeps it."""
    calls: list[tuple[Any, ...]] = []
    seen: asyncio.Queue[discord.Message] = asyncio.Queue()
    edits: asyncio.Queue[discord.Message] = asyncio.Queue()
    bot = new_bot()

    @bot.command()
    async def verdict(ctx: Any) -> None:
        await ctx.reply("A Jedi, I think", view=Verdict(calls))

    @bot.listen()
    async def on_message(message: discord.Message) -> None:
        if bot.user is not None and message.author.id == bot.user.id:
            await seen.put(message)

    @bot.listen()
    async def on_message_edit(_before: Any, after: discord.Message) -> None:
        await edits.put(after)

    await run_client(bot)
    posted = await server.post_message("!verdict")
    stored = await server.wait_for_reply(posted["id"], timeout=5)
    received = await first(seen)  # the bot's own MESSAGE_CREATE, parsed by discord.py
    action_row, second_row = received.components
    assert [b.label for b in second_row.children] == ["Take it back"]  # type: ignore[union-attr]
    assert isinstance(action_row, discord.ActionRow)
    buttons = action_row.children
    assert [(b.label, b.style, b.custom_id) for b in buttons] == [  # type: ignore[union-attr]
        ("Right", discord.ButtonStyle.success, "vote:right"),
        ("It's a Jedi", discord.ButtonStyle.primary, "vote:jedi"),
        ("It's a Sith", discord.ButtonStyle.danger, "vote:sith"),
        ("Explain", discord.ButtonStyle.secondary, "explain"),
        ("How it works", discord.ButtonStyle.link, None),
    ]
    assert buttons[4].url == "https://example.com/how"  # type: ignore[union-attr]
    return calls, edits, stored


async def test_a_click_answered_ephemerally_and_after_thinking(
    server: DiscordServer, run_client: Runner
) -> None:
    calls, _, verdict = await verdict_bot(server, run_client)
    assert [b["id"] for b in verdict["components"][0]["components"]] == [2, 3, 4, 5, 6]

    click = await server.click_button(verdict["id"], "vote:right")
    assert (click["type"], click["data"]["custom_id"], click["data"]["component_type"]) == (
        3,
        "vote:right",
        2,
    )
    assert click["message"]["id"] == verdict["id"]
    assert click["message"]["components"] == verdict["components"]
    answer = await server.wait_for_interaction_response(click["id"], timeout=5)
    assert answer["content"] == "Thanks, padawan" and answer["flags"] & 64  # ephemeral
    assert calls == [("right", "padawan", int(verdict["id"]))]
    assert answer["type"] == 19 and answer["message_reference"]["message_id"] == verdict["id"]
    metadata = answer["interaction_metadata"]
    assert (metadata["id"], metadata["type"]) == (click["id"], 3)
    assert metadata["interacted_message_id"] == verdict["id"]
    assert "name" not in metadata and "interaction" not in answer  # no command behind it
    assert await server.wait_for_reply(click["id"], timeout=1) == answer
    assert await server.wait_for_ack(click["id"]) == 4

    click = await server.click_button(verdict["id"], "explain", user={"username": "visitor"})
    answer = await server.wait_for_interaction_response(click["id"], timeout=5)
    assert answer["content"] == "Because of the red blade" and answer["flags"] == 64
    kinds = [(r["kind"], r.get("type")) for r in server.interaction_responses[1:]]
    assert kinds == [("callback", 5), ("followup", None)]

    with pytest.raises(LookupError, match="no button 'vote:maybe'"):
        await server.click_button(verdict["id"], "vote:maybe")
    with pytest.raises(LookupError):  # a link has no custom_id to click
        await server.click_button(verdict["id"], "https://example.com/how")


async def test_a_click_acknowledged_then_one_that_updates_the_message(
    server: DiscordServer, run_client: Runner
) -> None:
    calls, edits, verdict = await verdict_bot(server, run_client)

    click = await server.click_button(verdict["id"], "vote:jedi", user={"username": "visitor"})
    answer = await server.wait_for_interaction_response(click["id"], timeout=5)
    assert answer["id"] == verdict["id"] and answer["content"] == "A Jedi, I think"  # as it was
    assert server.interaction_responses[-1]["type"] == 6 and calls == [("jedi", "visitor")]
    with pytest.raises(asyncio.TimeoutError):  # a type 6 makes no message to wait for
        await server.wait_for_reply(click["id"], timeout=0.2)

    click = await server.click_button(verdict["id"], "vote:sith")
    answer = await server.wait_for_interaction_response(click["id"], timeout=5)
    assert answer["id"] == verdict["id"] and answer["content"] == "Sith it is"
    buttons = answer["components"][0]["components"]
    assert [b.get("disabled") for b in buttons] == [True, True, True, True, False]
    await eventually(lambda: len(calls) == 2)  # the bot records once its call returned
    assert calls[-1] == ("sith", int(verdict["id"]))  # with_response names the clicked message
    edited = await first(edits)  # MESSAGE_UPDATE reached discord.py
    assert edited.content == "Sith it is"
    assert edited.components[0].children[0].disabled  # type: ignore[union-attr]
    with pytest.raises(LookupError, match="disabled"):
        await server.click_button(verdict["id"], "vote:right")

    click = await server.click_button(verdict["id"], "retract")  # still enabled: row 2

    def taken_back(message: dict[str, Any]) -> bool:
        return message["id"] == verdict["id"] and message["content"] == "Taken back"

    answer = await server.wait_for_message(taken_back, timeout=5)
    assert answer["components"] == []  # view=None
    assert [r["kind"] for r in server.interaction_responses[-2:]] == ["callback", "edit"]

    with pytest.raises(LookupError):
        await server.click_button(verdict["id"], "vote:sith")
    with pytest.raises(DiscordError):  # an unknown message: 404, as for every other lookup
        await server.click_button(1, "vote:sith")


VOTE = r"vote:(?P<image>\d+):(?P<label>jedi|sith)"


class Vote(discord.ui.DynamicItem[discord.ui.Button], template=VOTE):
    """A button that needs no view in memory: what it is about is in its custom_id."""

    def __init__(self, image: int, label: str) -> None:
        super().__init__(discord.ui.Button(label=label, custom_id=f"vote:{image}:{label}"))
        self.image, self.label = image, label

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: Any
    ) -> Vote:
        return cls(int(match["image"]), match["label"])

    async def callback(self, interaction: discord.Interaction) -> None:
        text = f"{interaction.user.name} says image {self.image} is {self.label}"
        await interaction.response.send_message(text, ephemeral=True)


class Feedback(discord.ui.View):
    """A persistent view: no timeout, every custom_id fixed."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Wrong", custom_id="feedback:wrong")
    async def wrong(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        await interaction.response.send_message("Noted", ephemeral=True)


async def test_buttons_on_a_message_from_before_a_restart(
    server: DiscordServer, run_client: Runner
) -> None:
    rows = [row(button("vote:7:jedi"), button("vote:7:sith"), button("feedback:wrong"))]
    channel = f"/channels/{server.channel_id}/messages"
    status, old = await rest(server, "POST", channel, {"content": "Sith", "components": rows})
    assert status == 200
    bot = new_bot()

    async def setup_hook() -> None:
        bot.add_dynamic_items(Vote)
        bot.add_view(Feedback())

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    await run_client(bot)

    click = await server.click_button(old["id"], "vote:7:sith", user=server.moderator)
    answer = await server.wait_for_interaction_response(click["id"], timeout=5)
    assert answer["content"] == "master says image 7 is sith"
    click = await server.click_button(old["id"], "feedback:wrong")
    answer = await server.wait_for_interaction_response(click["id"], timeout=5)
    assert answer["content"] == "Noted"


async def test_an_ephemeral_message_can_only_be_clicked_by_its_reader(
    server: DiscordServer, run_client: Runner
) -> None:
    bot = new_bot()

    @bot.tree.command(name="teach", description="Teach the bot")
    async def teach(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Sure?", view=Feedback(), ephemeral=True)

    await run_client(bot)
    await bot.tree.sync()
    invoked = await server.invoke_slash_command("teach", user={"username": "visitor"})
    secret = await server.wait_for_interaction_response(invoked["id"], timeout=5)
    assert secret["flags"] & 64 and secret["components"]
    with pytest.raises(LookupError, match="only visitor"):
        await server.click_button(secret["id"], "feedback:wrong")  # padawan never saw it
    click = await server.click_button(secret["id"], "feedback:wrong", user={"username": "visitor"})
    answer = await server.wait_for_interaction_response(click["id"], timeout=5)
    assert answer["content"] == "Noted"
    assert answer["message_reference"]["message_id"] == secret["id"]
