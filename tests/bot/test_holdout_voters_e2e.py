"""The holdout cannot be stuffed, end to end: the real bot against the look-alike. In server A
(padawan manages it), eve, a member without Manage Messages, teaches the tiny synthetic set with
every label flipped. Her labels alone train a flipped head, but her held-out images do not judge
it, so it is not published; once bob, a second member, gives the held-out images the same labels
they count, and the flipped head (right on them, where the default model is wrong) is published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from botkit import TOKEN, running_bot, text_of
from servers_support import Servers

from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(300, func_only=True),
]

HELD_OUT = 12  # the tiny set's images held out (by the hash of the images the bot keeps)
EVE, BOB = {"username": "eve"}, {"username": "bob"}  # members of A, neither a moderator


@pytest_asyncio.fixture
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(
            server,
            data_dir=tmp_path_factory.mktemp("voters"),
            retrain_min_images=5,
            ood_policy="off",
        ) as bot,
    ):
        yield Servers(bot)


async def test_one_members_flipped_holdout_does_not_publish_a_flipped_model(
    servers: Servers, tiny_dataset: Path
) -> None:
    assert "**on**" in text_of(await servers.type("A", "!dataset collect on"))
    await servers.teach("A", tiny_dataset, swapped=True, author=EVE)

    shown = text_of(await servers.type("A", "!dataset"))
    assert (
        f"{HELD_OUT} held out to judge new models (never trained on): 0 judge now, {HELD_OUT} "
        "wait for a second vote (or a moderator's)"
    ) in shown, shown
    alone = (await servers.type("A", "!retrain"))["content"]
    assert alone.startswith("**Not published**: there are no held-out images to judge it on yet")
    assert "served **the default model**" in (await servers.type("A", "!model"))["content"]
    mistakes = (await servers.type("A", "!mistakes"))["content"]
    assert mistakes.startswith(
        f"{HELD_OUT} held-out images wait for a second vote (or a moderator's) before they judge"
    ), mistakes

    await servers.teach("A", tiny_dataset, swapped=True, author=BOB)
    shown = text_of(await servers.type("A", "!dataset"))
    assert f"{HELD_OUT} held out to judge new models (never trained on)\n" in shown + "\n", shown
    assert "wait for" not in shown
    seconded = text_of(await servers.type("A", "!retrain"))
    assert seconded.startswith("**New model for this server: version 1**"), seconded
    assert f"holdout accuracy 0.0% (the default model) → 100.0% on {HELD_OUT} held-out" in seconded


async def test_a_server_sets_how_many_members_a_held_out_label_needs(
    servers: Servers, tiny_dataset: Path
) -> None:
    shown = text_of(await servers.type("A", "!settings"))
    assert (
        "- `voters`: **2** (the bot's default): a held-out image judges new models once " in shown
    )
    refused = text_of(await servers.type("A", "!settings voters 0"))
    assert refused == "`voters` is a whole number from 1 to 20, not `0`.", refused
    eve = text_of(await servers.type("A", "!settings voters 1", author=EVE))
    assert "Only members with the Manage Server permission" in eve, eve

    changed = text_of(await servers.type("A", "!settings voters 1"))
    assert "- `voters`: **1**: a held-out image judges new models once 1 member" in changed
    waits = text_of(await servers.type("A", "!mistakes"))  # before eve labels anything
    assert waits.startswith("This server has no held-out images yet"), waits
    assert "**on**" in text_of(await servers.type("A", "!dataset collect on"))
    await servers.teach("A", tiny_dataset, swapped=True, author=EVE)
    alone = text_of(await servers.type("A", "!retrain"))  # this server trusts one member
    assert alone.startswith("**New model for this server: version 1**"), alone

    back = text_of(await servers.type("A", "!settings reset voters"))
    assert "- `voters`: **2** (the bot's default)" in back
    again = text_of(await servers.type("A", "!retrain"))
    assert "no held-out images to judge it on yet" in again, again
