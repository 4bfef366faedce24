""" "Neither" is an answer, end to end: the real bot against the look-alike holding three servers
(A belongs to "padawan", B to eve).

A refused image's buttons offer Neither first; a click and `!teach neither` label noise images
neither in A alone; after both servers retrain on the same Jedi and Sith drawings, a new noise
image is refused in A, whose head learned to refuse such images, and answered in B.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from botkit import TOKEN, buttons_of, running_bot, text_of
from PIL import Image
from servers_support import EVE, Servers, labels

from dataset import DatasetStore
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(300, func_only=True),
]

VISITOR = {"username": "ahsoka"}
REFUSED = "**Not a Jedi or a Sith?**"


def noise(seed: int) -> tuple[str, bytes]:
    """A PNG of uniform colour noise, of its own size: neither a Jedi nor a Sith."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (180 + 20 * seed, 240, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return f"noise{seed}.png", out.getvalue()


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The vote buttons under `message` (not its Why? buttons: bot.exts.why)."""
    return [b for b in buttons_of(message) if b["custom_id"].startswith("jedisith:vote:")]


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
        data_dir=tmp_path_factory.mktemp("neither"),
        retrain_min_images=5,
        ood_policy="refuse",
        sync_commands=True,  # for /teach
    ) as bot:
        yield Servers(bot)


async def test_neither_is_learned_in_its_server_alone(servers: Servers, tiny_dataset: Path) -> None:
    a, b = servers.running.server.guild_ids[:2]
    store: DatasetStore = servers.running.bot.dataset
    assert "**on**" in text_of(await servers.type("A", "!dataset collect on"))
    assert "**on**" in text_of(await servers.type("B", "!dataset collect on", author=EVE))

    reply = await servers.type("A", "!jedisith", noise(0))
    assert REFUSED in text_of(reply)
    shown = [b["label"] for b in buttons(reply)]
    assert shown == ["Neither", "It's a Jedi", "It's a Sith"]  # Neither first when refused
    neither = next(b for b in buttons(reply) if b["label"] == "Neither")
    assert ":neither:c:" in neither["custom_id"]
    server = servers.running.server
    interaction = await server.click_button(reply["id"], neither["custom_id"], user=VISITOR)
    answer = await server.wait_for_reply(interaction["id"], timeout=20.0)
    assert text_of(answer).startswith("Thanks! Kept with your label, **Neither**.")
    sha = hashlib.sha256(noise(0)[1]).hexdigest()
    assert store.label_of(sha, a).label == "neither"
    assert store.label_of(sha, b).label is None  # this server's label only

    taught = await servers.type("A", "!teach neither", *(noise(seed) for seed in range(1, 6)))
    first = text_of(taught).splitlines()[0]
    assert first == "Taught 5 new images as **Neither**.", text_of(taught)
    assert "Neither: 6" in (await servers.type("A", "!dataset"))["content"]
    assert "Neither" not in (await servers.type("B", "!dataset", author=EVE))["content"]
    assert store.summary(b).images == 0
    await _until(lambda: "teach" in {c["name"] for c in server.application_commands})
    slash = await server.invoke_slash_command("teach", {"label": "neither", "image": noise(8)})
    answered = await server.wait_for_reply(slash["id"], timeout=20.0)
    assert "Taught 1 new image as **Neither**." in text_of(answered)
    assert store.label_of(hashlib.sha256(noise(8)[1]).hexdigest(), a).label == "neither"

    await servers.teach("A", tiny_dataset, swapped=False)
    await servers.teach("B", tiny_dataset, swapped=False, author=EVE)
    for where, author in (("A", None), ("B", EVE)):  # the default's own answers: force
        reply = await servers.type(where, "!retrain force", author=author)
        assert text_of(reply).startswith("**New model for this server: version 1**")
        assert "Neither" not in text_of(reply)  # never counted as a class

    for seed in (6, 7):
        assert REFUSED in text_of(await servers.type("A", "!jedisith", noise(seed)))
        there = await servers.type("B", "!jedisith", noise(seed), author=EVE)
        assert REFUSED not in text_of(there) and len(labels(there)) == 1
    drawings = sorted((tiny_dataset / "jedi").iterdir())[:3]
    files = [(path.name, path.read_bytes()) for path in drawings]
    assert labels(await servers.type("A", "!jedisith", *files)) == ["Jedi"] * 3


async def _until(done, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        await asyncio.sleep(0.05)
