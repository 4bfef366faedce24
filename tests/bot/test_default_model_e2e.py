"""The operator's default model, end to end: the real bot against the look-alike holding three
servers. "padawan" owns the application (the operator) and servers A and C; eve owns B.

A teaches the opposite labels and retrains its head; B (eve's) teaches the right ones and keeps
its own head; C has none. Only with A's consent (`!dataset share on`) does the operator's
`!default from A` make C answer as A does; eve's is refused; B keeps its own; `!rollback shared
network` gives C the network's own verdict again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from botkit import TOKEN, running_bot
from servers_support import EVE, Servers, images_of, labels

from bot.checks import OPERATOR_ONLY
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(300, func_only=True),
]


@pytest_asyncio.fixture
async def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Servers]:
    async with DiscordServer(token=TOKEN) as server:
        server.give_guild("eve", server.guild_ids[1])  # before the bot connects
        async with running_bot(
            server,
            data_dir=tmp_path_factory.mktemp("default-model"),
            retrain_min_images=5,
            ood_policy="off",
        ) as bot:
            yield Servers(bot)


async def test_the_operators_default_reaches_every_server_without_its_own_model(
    servers: Servers, tiny_dataset: Path
) -> None:
    jedi = images_of(tiny_dataset, "jedi", 3)
    network = labels(await servers.type("C", "!jedisith", *jedi))
    assert len(network) == 3 and network != ["Sith"] * 3
    a_id = servers.running.server.guild_ids[0]

    for where, author, swapped in (("A", None, True), ("B", EVE, False)):
        assert (
            "**on**" in (await servers.type(where, "!dataset collect on", author=author))["content"]
        )
        await servers.teach(where, tiny_dataset, swapped=swapped, author=author)
        # B's labels are the network's answers: its head is no surer, so `force` publishes it
        command = "!retrain" if swapped else "!retrain force"
        reply = await servers.type(where, command, author=author)
        assert reply["content"].startswith("**New model for this server: version 1**")
    assert labels(await servers.type("A", "!jedisith", *jedi)) == ["Sith"] * 3
    own = labels(await servers.type("B", "!jedisith", *jedi, author=EVE))
    assert own != ["Sith"] * 3

    refused = await servers.type("C", f"!default from {a_id}")  # A has not consented
    assert f"Server {a_id} does not share" in refused["content"]
    assert "`!dataset share on`" in refused["content"]
    assert "**on**" in (await servers.type("A", "!dataset share on"))["content"]
    eve = await servers.type("B", f"!default from {a_id}", author=EVE)  # B's owner, no operator
    assert eve["content"] == OPERATOR_ONLY
    assert labels(await servers.type("C", "!jedisith", *jedi)) == network

    made = await servers.type("C", f"!default from {a_id}")
    assert made["content"].startswith("**Default head version 1**: "), made["content"]
    assert "model, version 1 (a head on the shared network)" in made["content"]
    assert labels(await servers.type("C", "!jedisith", *jedi)) == ["Sith"] * 3  # as A answers
    assert labels(await servers.type("B", "!jedisith", *jedi, author=EVE)) == own  # its own
    assert labels(await servers.type("A", "!jedisith", *jedi)) == ["Sith"] * 3

    shown = (await servers.type("C", "!model shared"))["content"]
    assert "Served by default: **default head version 1**" in shown
    assert f"from server {a_id}'s version 1" in shown
    assert shown.count("-# training ") == 2 and "'s model, a head)" in shown
    seen = (await servers.type("B", "!model shared", author=EVE))["content"]
    assert "**default head version 1**" in seen
    assert str(a_id) not in seen and "-# training " not in seen

    eve = await servers.type("B", "!rollback shared network", author=EVE)
    assert eve["content"] == OPERATOR_ONLY
    back = await servers.type("C", "!rollback shared network")
    assert back["content"].startswith("The network's own verdict is served by default again")
    assert "(it was default head version 1)" in back["content"]
    assert labels(await servers.type("C", "!jedisith", *jedi)) == network
    assert labels(await servers.type("B", "!jedisith", *jedi, author=EVE)) == own
    again = await servers.type("C", "!rollback shared head 1")
    assert again["content"].startswith("Default head version 1 is served by default again")
    assert labels(await servers.type("C", "!jedisith", *jedi)) == ["Sith"] * 3
