"""A server's own network, end to end: the real bot and its real trainer against the look-alike
holding three servers. A belongs to "padawan", B to eve, C has no model of its own.

A's manager learns a head, then `!retrain network force epochs=1`: a whole network is trained
from the shared one's weights on A's images alone (one epoch on 48 tiny images), published as
A's version 2 of kind network and served to A only; B's network training waits in the queue
behind it (`MAX_TRAININGS=1`) and eve's `!retrain cancel` in B takes out B's alone; `!rollback 1`
brings A's head back. The final message's pictures come in a reply to it. In B, eve's
`/retrain network:True` does the same from the slash side.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from botkit import TOKEN, running_bot, text_of
from servers_support import EVE, Servers, images_of, labels

from bot.server_models import current_kind, server_folder
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(600, func_only=True),
]

TRAINING = 300.0  # a one-epoch training on 48 images, export and checks, on 2 loaded cores


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
        data_dir=tmp_path_factory.mktemp("server-networks"),
        retrain_min_images=5,
        server_network_min_images=10,
        max_trainings=1,
        ood_policy="off",
    ) as bot:
        yield Servers(bot)


async def _ended(servers: Servers, message: dict) -> str:
    """The text of a training's message once it no longer says it trains or waits."""
    deadline = time.monotonic() + TRAINING
    while True:
        content = text_of(servers.running.server.get_message(message["id"]))
        if not content.startswith(("**Training**", "**Queued**")):
            return content
        assert time.monotonic() < deadline, f"the training did not end: {content!r}"
        await asyncio.sleep(0.2)


async def _pictures(servers: Servers, message: dict) -> list[str]:
    """The names of the pictures the bot attaches in its reply to a training's message."""

    def pictures(reply: dict) -> bool:
        replied = (reply.get("message_reference") or {}).get("message_id") == message["id"]
        return replied and bool(reply["attachments"])

    reply = await servers.running.server.wait_for_message(pictures, timeout=60)
    return sorted(attachment["filename"] for attachment in reply["attachments"])


async def test_a_servers_network_serves_that_server_only_and_waits_its_turn(
    servers: Servers, tiny_dataset: Path
) -> None:
    running = servers.running
    guild_a, guild_b = running.server.guild_ids[0], running.server.guild_ids[1]
    jedi = images_of(tiny_dataset, "jedi", 3)
    default = labels(await servers.type("C", "!jedisith", *jedi))
    assert len(default) == 3
    refused = await servers.type("A", "!retrain network")
    assert "A network of this server's own needs at least 10 labelled images" in text_of(refused)

    assert "**on**" in text_of(await servers.type("A", "!dataset collect on"))
    assert "**on**" in text_of(await servers.type("B", "!dataset collect on", author=EVE))
    await servers.teach("A", tiny_dataset, swapped=True)  # A calls Jedi "Sith", and back
    await servers.teach("B", tiny_dataset, swapped=False, author=EVE)
    head = await servers.type("A", "!retrain")
    assert text_of(head).startswith("**New model for this server: version 1**, a head")
    assert "`!retrain network` may do better" in text_of(head)  # 10 images or more
    assert labels(await servers.type("A", "!jedisith", *jedi)) == ["Sith"] * 3

    eve = await servers.type("A", "!retrain network", author=EVE)  # no manager of A
    assert "Only members with the Manage Server permission" in text_of(eve)
    progress = await servers.type("A", "!retrain network force epochs=1")
    assert text_of(progress).startswith("**Training** a new model"), text_of(progress)
    busy = await servers.type("A", "!retrain")  # no head fit beside it
    assert text_of(busy).startswith("A network is being trained on this server's images")
    queued = await servers.type("B", "!retrain network epochs=1", author=EVE)
    assert text_of(queued).startswith("**Queued**") and "place 1" in text_of(queued)
    assert "`!retrain cancel` takes it out" in text_of(queued)
    shown = text_of(await servers.type("B", "!model", author=EVE))
    assert "A network training for this server waits in the queue: place 1" in shown
    assert "being trained" not in shown  # A's training is A's business
    cancel = await servers.type("B", "!retrain cancel", author=EVE)
    assert text_of(cancel).startswith("Stopping this server's network training")
    assert (await _ended(servers, queued)).startswith("**Training cancelled**: removed from")

    text = await _ended(servers, progress)
    assert text.startswith("**New model for this server: version 2**, a network trained on your")
    assert re.search(r"trained on your \d+ images \(\d+ Jedi \+ \d+ Sith\)", text), text
    assert re.search(r"holdout accuracy \d+\.\d% \(version 1 \(a head\)\) → \d+\.\d% on", text)
    drawn = await _pictures(servers, progress)  # the edited message's pictures, in a reply
    assert drawn == ["confusion.png", "curve.png", "mistakes.png"]
    folder = server_folder(running.settings.data_dir, guild_a)
    assert current_kind(folder) == "network"
    assert current_kind(server_folder(running.settings.data_dir, guild_b)) is None

    assert len(labels(await servers.type("A", "!jedisith", *jedi))) == 3
    assert running.bot.heads.networks.held() == [guild_a]  # A is served its own network
    assert labels(await servers.type("C", "!jedisith", *jedi)) == default
    assert labels(await servers.type("B", "!jedisith", *jedi, author=EVE)) == default
    assert running.bot.heads.networks.held() == [guild_a]
    shown = text_of(await servers.type("A", "!model"))
    assert "served **its own model**: a network trained on its images" in shown
    assert "**version 2** (current) - a network" in shown
    assert "**version 1** - a head" in shown

    back = await servers.type("A", "!rollback 1")
    assert text_of(back).startswith("Version 1 of this server's model is current again")
    assert labels(await servers.type("A", "!jedisith", *jedi)) == ["Sith"] * 3
    again = await servers.type("A", "!rollback 2")
    assert text_of(again).startswith("Version 2 of this server's model is current again")
    assert current_kind(folder) == "network"
    assert text_of(await servers.type("A", "!rollback default")).startswith(
        "This server is served the default model again"
    )
    assert labels(await servers.type("A", "!jedisith", *jedi)) == default


async def test_the_slash_retrain_network_trains_the_servers_network(
    servers: Servers, tiny_dataset: Path
) -> None:
    server = servers.running.server
    channel = servers.channels["B"]
    assert await servers.running.bot.sync_commands()  # the look-alike learns `/retrain`
    options = {"network": True, "force": True, "epochs": 1}
    early = await server.invoke_slash_command("retrain", options, user=EVE, channel_id=channel)
    refused = await server.wait_for_reply(early["id"], timeout=60)
    assert "A network of this server's own needs at least 10" in text_of(refused), refused

    assert "**on**" in text_of(await servers.type("B", "!dataset collect on", author=EVE))
    await servers.teach("B", tiny_dataset, swapped=False, author=EVE)
    interaction = await server.invoke_slash_command(
        "retrain", options, user=EVE, channel_id=channel
    )
    progress = await server.wait_for_reply(interaction["id"], timeout=60)
    assert text_of(progress).startswith("**Training** a new model"), text_of(progress)
    text = await _ended(servers, progress)
    assert text.startswith("**New model for this server: version 1**, a network trained on your")
    assert "holdout accuracy" in text and "(the default model) →" in text, text
    assert await _pictures(servers, progress) == ["confusion.png", "curve.png", "mistakes.png"]
    guild_b = server.guild_ids[1]
    assert current_kind(server_folder(servers.running.settings.data_dir, guild_b)) == "network"
