"""A server's model is published only when it is surely better on the server's held-out images,
and `!mistakes` shows what a model gets wrong there, end to end: the real bot against the
look-alike holding three servers (A is padawan's, B eve's, C has no labels).

The tiny synthetic set's 12 held-out images are all answered right by the shipped model: A,
taught the right labels, learns a head only as good (refused, with the interval and the images
that would settle it); B, taught the opposite labels, learns one right where the default model
is wrong on every held-out image (published).
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from botkit import TOKEN, running_bot, text_of
from PIL import Image
from servers_support import EVE, Servers

from model.render import tiles_size
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(300, func_only=True),
]

HELD_OUT = 12  # the tiny set's images held out (by the hash of the images the bot keeps)
INTERVAL = re.compile(r"([+-]\d+\.\d) points \(95% interval ([+-]\d+\.\d) to ([+-]\d+\.\d)\)")


@pytest_asyncio.fixture
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    async with DiscordServer(token=TOKEN) as server:
        server.give_guild("eve", server.guild_ids[1])  # before the bot connects
        async with running_bot(
            server,
            data_dir=tmp_path_factory.mktemp("surely"),
            retrain_min_images=5,
            ood_policy="off",
        ) as bot:
            yield Servers(bot)


async def pictures(reply: dict) -> dict[str, Image.Image]:
    """The reply's attached pictures by file name, downloaded and opened."""
    found = {}
    async with aiohttp.ClientSession() as session:
        for attachment in reply["attachments"]:
            async with session.get(attachment["url"]) as response:
                assert response.status == 200
                image = Image.open(io.BytesIO(await response.read()))
                image.load()
                found[attachment["filename"]] = image
    return found


async def test_only_a_surely_better_model_is_published(
    servers: Servers, tiny_dataset: Path
) -> None:
    for where, author in (("A", None), ("B", EVE)):
        reply = await servers.type(where, "!dataset collect on", author=author)
        assert "**on**" in text_of(reply)
    await servers.teach("A", tiny_dataset, swapped=False)
    await servers.teach("B", tiny_dataset, swapped=True, author=EVE)

    equal = (await servers.type("A", "!retrain"))["content"]
    assert equal.startswith(
        "**Not published**: the new model is not surely better than the default model"
    ), equal
    assert f"Holdout accuracy 100.0% (the default model) → 100.0% on {HELD_OUT} held-out" in equal
    difference, low, high = (float(x) for x in INTERVAL.search(equal).groups())  # type: ignore[union-attr]
    assert difference == 0.0 and low < 0 < high
    needed = re.search(r"about (\d+) held-out images \((\d+) more\) would settle it", equal)
    assert needed is not None and int(needed[1]) == HELD_OUT + int(needed[2]) > HELD_OUT
    assert "`!retrain force` publishes it anyway" in equal
    shown = text_of(await servers.type("A", "!model"))
    assert "served **the default model**" in shown

    better = text_of(await servers.type("B", "!retrain", author=EVE))
    assert better.startswith("**New model for this server: version 1**"), better
    assert f"holdout accuracy 0.0% (the default model) → 100.0% on {HELD_OUT} held-out" in better
    difference, low, high = (float(x) for x in INTERVAL.search(better).groups())  # type: ignore[union-attr]
    assert difference == 100.0 and low > 0
    assert "surely better (p = 0.000)" in better

    forced = text_of(await servers.type("A", "!retrain force"))
    assert forced.startswith("**New model for this server: version 1**"), forced


async def test_mistakes_shows_a_servers_held_out_images_as_one_picture(
    servers: Servers, tiny_dataset: Path
) -> None:
    empty = await servers.type("C", "!mistakes")
    assert text_of(empty).startswith("This server has no held-out images yet")
    assert not empty["attachments"]
    eve = await servers.type("A", "!mistakes", author=EVE)  # no manager of A
    assert "Only members with the Manage Server permission" in text_of(eve)

    assert "**on**" in text_of(await servers.type("B", "!dataset collect on", author=EVE))
    await servers.teach("B", tiny_dataset, swapped=True, author=EVE)
    wrong = await servers.type("B", "!mistakes", author=EVE)
    text = text_of(wrong)
    assert text.startswith("**This server's model (the default model)**: 0 of 12 held-out"), text
    assert f"{HELD_OUT} wrong. The picture shows {HELD_OUT}: its mistakes first" in text
    drawn = await pictures(wrong)
    assert sorted(drawn) == ["confusion.png", "mistakes.png"]  # no retrain yet: no curve
    assert drawn["mistakes.png"].size == tiles_size(HELD_OUT)

    retrained = await servers.type("B", "!retrain", author=EVE)
    assert text_of(retrained).startswith("**New model for this server: version 1**")
    drawn = await pictures(retrained)  # the candidate's: no mistakes, the 4 least sure
    assert sorted(drawn) == ["confusion.png", "curve.png", "mistakes.png"]
    assert drawn["mistakes.png"].size == tiles_size(4)

    assert "**on**" in text_of(await servers.type("A", "!dataset collect on"))
    await servers.teach("A", tiny_dataset, swapped=False)
    await servers.type("A", "!retrain")  # refused: a point on A's curve, no version
    right = await servers.type("A", "!mistakes")
    text = text_of(right)
    assert text.startswith("**This server's model (the default model)**: 12 of 12 held-out"), text
    assert "0 wrong. The picture shows 4: no mistakes; the ones it is least sure about." in text
    matrix = re.search(
        r"Jedi: (\d+) called Jedi, 0 called Sith; Sith: 0 called Jedi, (\d+) called", text
    )
    assert matrix is not None and int(matrix[1]) + int(matrix[2]) == HELD_OUT
    drawn = await pictures(right)
    assert sorted(drawn) == ["confusion.png", "curve.png", "mistakes.png"]
    assert drawn["mistakes.png"].size == tiles_size(4)


async def test_the_slash_mistakes_answers_in_the_server_it_is_typed_in(
    servers: Servers, tiny_dataset: Path
) -> None:
    server = servers.running.server
    assert await servers.running.bot.sync_commands()  # the look-alike learns `/mistakes`
    assert "**on**" in text_of(await servers.type("A", "!dataset collect on"))
    await servers.teach("A", tiny_dataset, swapped=True)
    asked = await server.invoke_slash_command("mistakes", {}, channel_id=servers.channels["C"])
    empty = await server.wait_for_reply(asked["id"], timeout=60)
    assert text_of(empty).startswith("This server has no held-out images yet")  # C's: none
    asked = await server.invoke_slash_command("mistakes", {}, channel_id=servers.channels["A"])
    shown = await server.wait_for_reply(asked["id"], timeout=60)
    assert text_of(shown).startswith(
        f"**This server's model (the default model)**: 0 of {HELD_OUT}"
    )
    drawn = await pictures(shown)
    assert drawn["mistakes.png"].size == tiles_size(HELD_OUT)
