"""What the bot says, end to end against the look-alike: its own `!help` as an embed (the
operator's commands to the operator only); a "did you mean" for a typo of a command and
nothing for other words; `!jedisith` / `!features` with no image take the latest image, not a
broken file posted after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from botkit import (
    TOKEN,
    Running,
    buttons_of,
    replies_to,
    running_bot,
    sample,
    text_of,
    verdict_lines,
)

from bot.help import TOPICS
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(300, func_only=True),
]

MEMBER = {"username": "kylo"}
MODERATOR = {"username": "mace", "roles": ["Moderators"]}
BROKEN = ("notes.png", b"these are my notes, not a picture")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, data_dir=tmp_path_factory.mktemp("words")) as bot,
    ):
        yield bot


def embed_of(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["content"] == "" and len(reply["embeds"]) == 1, reply
    return reply["embeds"][0]


async def test_help_lists_every_command_in_one_understandable_line(running: Running) -> None:
    embed = embed_of(await running.command(content="!help", author=MEMBER))
    about, listing = embed["description"].split("\n\n")
    assert about.startswith("I tell Jedi from Sith.")
    lines = listing.splitlines()
    assert lines[0].startswith("`!jedisith` Say whether an image shows a Jedi or a Sith")
    listed = {line.split("`")[1].removeprefix("!") for line in lines}
    visible = {c.name for c in running.bot.commands if not c.hidden} - {"default"}
    assert listed == visible, listed ^ visible
    assert "```" not in embed["description"] and "No description given" not in str(embed)
    for line in lines:  # a whole sentence, never cut off
        assert line.endswith("."), line
    assert "!help COMMAND" in embed["footer"]["text"]
    assert set(TOPICS) >= visible  # every command's help is written, in bot/help.py


async def test_help_for_a_command_describes_each_argument_with_examples(
    running: Running,
) -> None:
    embed = embed_of(await running.command(content="!help teach", author=MEMBER))
    assert embed["title"] == "!teach"
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert "`label`: jedi, sith, or neither" in fields["Arguments"]
    assert "`image`:" in fields["Arguments"]
    assert "`!teach jedi`:" in fields["Examples"]

    embed = embed_of(await running.command(content="!help js", author=MEMBER))
    assert embed["title"] == "!jedisith (also !js)"

    embed = embed_of(await running.command(content="!help retrain", author=MEMBER))
    assert "Manage Server" in embed["description"]
    assert "shared" not in str(embed)  # the operator's examples are the operator's


async def test_the_operators_commands_are_shown_to_the_operator_only(running: Running) -> None:
    reply = await running.command(content="!help default", author=MEMBER)
    assert reply["content"] == "I have no command `default`; `!help` lists them."
    embed = embed_of(await running.command(content="!help"))  # padawan owns the application
    assert "`!default`" in embed["description"]
    embed = embed_of(await running.command(content="!help retrain"))
    assert "`!retrain shared`:" in str(embed)


async def test_a_typo_gets_did_you_mean_and_other_words_get_nothing(running: Running) -> None:
    reply = await running.command(content="!jedisiht", author=MEMBER)
    assert reply["content"] == (
        "I have no `!jedisiht`: did you mean `!jedisith`? `!help` lists my commands."
    )
    quiet = await running.post("!hello there", author=MEMBER)
    await running.settle()  # the sentinel is answered after it, and nothing answered it
    assert replies_to(running.server, quiet) == []


async def test_no_image_means_the_latest_image_not_a_broken_file_after_it(
    running: Running,
) -> None:
    name, data = sample("sith-1")
    await running.post("look", [(name, data)], author=MEMBER)
    await running.post("and my notes", [BROKEN], author=MEMBER)
    reply = await running.command(content="!jedisith", author=MEMBER)
    lines = verdict_lines(text_of(reply))
    assert len(lines) == 1 and lines[0].startswith("**Sith**"), text_of(reply)
    assert "notes.png" not in text_of(reply)

    reply = await running.command(BROKEN, (name, data), content="!features 2", author=MEMBER)
    assert [a["filename"] for a in reply["attachments"]] == ["conv2.png"], text_of(reply)
    assert name in text_of(reply) and "notes.png" not in text_of(reply)


async def test_teach_answers_in_one_line_with_what_a_retrain_needs(running: Running) -> None:
    await running.command(content="!dataset collect on")
    files = [sample(name) for name in ("jedi-1", "jedi-2")] + [BROKEN]
    reply = await running.command(*files, content="!teach jedi", author=MEMBER)
    first, needs = text_of(reply).splitlines()
    assert first.startswith("Taught 2 new images as **Jedi**; refused 1, `notes.png`: "), first
    minimum = running.settings.retrain_min_images
    assert needs.startswith(f"-# Before `!retrain`: {minimum - 2} more Jedi"), needs
    assert f"{minimum} more Sith" in needs or f"{minimum - 1} more Sith" in needs, needs


async def test_a_vote_a_moderator_outweighs_says_so(running: Running) -> None:
    image = sample("sith-3")
    await running.command(image, content="!teach sith", author=MODERATOR)
    verdict = await running.command(image, content="!jedisith", author=MEMBER)
    jedi = next(button for button in buttons_of(verdict) if button.get("label") == "It's a Jedi")
    click = await running.server.click_button(verdict["id"], jedi["custom_id"], user=MEMBER)
    answer = await running.server.wait_for_reply(click["id"], timeout=20.0)
    assert text_of(answer).startswith(
        "Thanks! Kept with your label, **Jedi**. Its label stays Sith: a moderator's vote "
        "decided (1 Jedi, 1 Sith)."
    ), text_of(answer)
