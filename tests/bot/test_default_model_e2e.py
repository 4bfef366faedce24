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
from botkit import TOKEN, running_bot, text_of
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
        assert "**on**" in text_of(await servers.type(where, "!dataset collect on", author=author))
        await servers.teach(where, tiny_dataset, swapped=swapped, author=author)
        # B's labels are the network's answers: its head is no surer, so `force` publishes it
        command = "!retrain" if swapped else "!retrain force"
        reply = await servers.type(where, command, author=author)
        assert text_of(reply).startswith("**New model for this server: version 1**")
    assert labels(await servers.type("A", "!jedisith", *jedi)) == ["Sith"] * 3
    own = labels(await servers.type("B", "!jedisith", *jedi, author=EVE))
    assert own != ["Sith"] * 3

    refused = await servers.type("C", f"!default from {a_id}")  # A has not consented
    assert f"Server {a_id} does not share" in text_of(refused)
    assert "`!dataset share on`" in text_of(refused)
    assert "**on**" in text_of(await servers.type("A", "!dataset share on"))
    eve = await servers.type("B", f"!default from {a_id}", author=EVE)  # B's owner, no operator
    assert text_of(eve) == OPERATOR_ONLY
    assert labels(await servers.type("C", "!jedisith", *jedi)) == network

    made = await servers.type("C", f"!default from {a_id}")
    assert text_of(made).startswith("**Default head version 1**: "), text_of(made)
    assert "model, version 1 (a head on the shared network)" in text_of(made)
    assert labels(await servers.type("C", "!jedisith", *jedi)) == ["Sith"] * 3  # as A answers
    assert labels(await servers.type("B", "!jedisith", *jedi, author=EVE)) == own  # its own
    assert labels(await servers.type("A", "!jedisith", *jedi)) == ["Sith"] * 3

    shown = text_of(await servers.type("C", "!model shared"))
    assert "Served by default: **default head version 1**" in shown
    assert f"from server {a_id}'s version 1" in shown
    assert shown.count("-# training ") == 2 and "'s model, a head)" in shown
    seen = text_of(await servers.type("B", "!model shared", author=EVE))
    assert "**default head version 1**" in seen
    assert str(a_id) not in seen and "-# training " not in seen

    eve = await servers.type("B", "!rollback shared network", author=EVE)
    assert text_of(eve) == OPERATOR_ONLY
    back = await servers.type("C", "!rollback shared network")
    assert text_of(back).startswith("The network's own verdict is served by default again")
    assert "(it was default head version 1)" in text_of(back)
    assert labels(await servers.type("C", "!jedisith", *jedi)) == network
    assert labels(await servers.type("B", "!jedisith", *jedi, author=EVE)) == own
    again = await servers.type("C", "!rollback shared head 1")
    assert text_of(again).startswith("Default head version 1 is served by default again")
    assert labels(await servers.type("C", "!jedisith", *jedi)) == ["Sith"] * 3
