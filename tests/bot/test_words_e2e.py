"""What the bot says, end to end against the look-alike: a "did you mean" for a typo of a
command and nothing for other words; `!jedisith` / `!features` with no image take the latest
image, not a broken file posted after it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from botkit import TOKEN, Running, replies_to, running_bot, sample, verdict_lines

from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(300, func_only=True),
]

MEMBER = {"username": "kylo"}
BROKEN = ("notes.png", b"these are my notes, not a picture")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, data_dir=tmp_path_factory.mktemp("words")) as bot,
    ):
        yield bot


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
    lines = verdict_lines(reply["content"])
    assert len(lines) == 1 and lines[0].startswith("**Sith**"), reply["content"]
    assert "notes.png" not in reply["content"]

    reply = await running.command(BROKEN, (name, data), content="!features 2", author=MEMBER)
    assert [a["filename"] for a in reply["attachments"]] == ["conv2.png"], reply["content"]
    assert name in reply["content"] and "notes.png" not in reply["content"]
