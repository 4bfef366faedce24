"""Every server is served its own model, end to end: the real bot against the look-alike holding
three servers. A belongs to "padawan", B to eve, C has no model of its own.

A server's manager teaches and types `!retrain`: a head on the shared network is learned in
seconds and published for that server alone; the same image then gets that server's answer
there, the default model's in C, and `!rollback default` in one server changes only that one.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from botkit import TOKEN, running_bot, text_of
from servers_support import EVE, Servers, images_of, labels

from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(300, func_only=True),
]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[DiscordServer]:
    async with DiscordServer(token=TOKEN) as srv:
        srv.give_guild("eve", srv.guild_ids[1])  # before the bot connects
        yield srv


@pytest_asyncio.fixture
async def servers(
    server: DiscordServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Servers]:
    async with running_bot(
        server,
        data_dir=tmp_path_factory.mktemp("server-models"),
        retrain_min_images=5,
        ood_policy="off",
    ) as bot:
        yield Servers(bot)


async def test_a_servers_retrain_changes_only_that_server(
    servers: Servers, tiny_dataset: Path
) -> None:
    jedi = images_of(tiny_dataset, "jedi", 3)
    default = labels(await servers.type("C", "!jedisith", *jedi))
    assert len(default) == 3
    refused = await servers.type("A", "!retrain")
    assert "I need at least 5 labelled images of each class" in text_of(refused)

    assert "**on**" in text_of(await servers.type("A", "!dataset collect on"))
    await servers.teach("A", tiny_dataset, swapped=True)  # A calls Jedi "Sith", and back
    eve = await servers.type("A", "!retrain", author=EVE)  # no manager of A
    assert "Only members with the Manage Server permission" in text_of(eve)
    reply = await servers.type("A", "!retrain")
    text = text_of(reply)
    assert text.startswith("**New model for this server: version 1**, a head on the shared"), text
    assert re.search(r"learned from \d+ labelled images \(\d+ Jedi \+ \d+ Sith\) in", text)
    assert re.search(r"holdout accuracy \d+\.\d% \(the default model\) → \d+\.\d% on \d+", text)

    assert labels(await servers.type("A", "!jedisith", *jedi)) == ["Sith"] * 3
    assert labels(await servers.type("C", "!jedisith", *jedi)) == default
    assert labels(await servers.type("B", "!jedisith", *jedi, author=EVE)) == default
    shown = text_of(await servers.type("A", "!model"))
    assert "served **its own model**: a head on the shared network" in shown
    assert "**version 1** (current)" in shown and "holdout accuracy" in shown
    assert "**the default model**" in text_of(await servers.type("B", "!model", author=EVE))

    eve = await servers.type("A", "!rollback default", author=EVE)
    assert "Only members with the Manage Server permission" in text_of(eve)
    mine = await servers.type("B", "!rollback default", author=EVE)  # B has nothing to undo
    assert "served the default model already" in text_of(mine)
    back = await servers.type("A", "!rollback default")
    assert text_of(back).startswith("This server is served the default model again")
    assert labels(await servers.type("A", "!jedisith", *jedi)) == default
    again = await servers.type("A", "!rollback 1")
    assert text_of(again).startswith("Version 1 of this server's model is current again")
    assert labels(await servers.type("A", "!jedisith", *jedi)) == ["Sith"] * 3


async def test_two_servers_teach_opposite_labels_and_each_gets_its_own_answer(
    servers: Servers, tiny_dataset: Path
) -> None:
    jedi = images_of(tiny_dataset, "jedi", 3)
    default = labels(await servers.type("C", "!jedisith", *jedi))
    assert "**on**" in text_of(await servers.type("A", "!dataset collect on"))
    assert "**on**" in text_of(await servers.type("B", "!dataset collect on", author=EVE))
    await servers.teach("A", tiny_dataset, swapped=False)
    await servers.teach("B", tiny_dataset, swapped=True, author=EVE)  # the opposite labels
    # A's labels are the default model's answers: its head is no surer, so `force` publishes it
    for where, command, author in (("A", "!retrain force", None), ("B", "!retrain", EVE)):
        reply = await servers.type(where, command, author=author)
        assert text_of(reply).startswith("**New model for this server: version 1**")

    assert labels(await servers.type("A", "!jedisith", *jedi)) == ["Jedi"] * 3
    assert labels(await servers.type("B", "!jedisith", *jedi, author=EVE)) == ["Sith"] * 3
    assert labels(await servers.type("C", "!jedisith", *jedi)) == default
    await servers.type("B", "!rollback default", author=EVE)
    assert labels(await servers.type("B", "!jedisith", *jedi, author=EVE)) == default
    assert labels(await servers.type("A", "!jedisith", *jedi)) == ["Jedi"] * 3
