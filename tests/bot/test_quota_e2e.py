"""A server's image quota, end to end: the real bot against the look-alike with
SERVER_IMAGE_QUOTA=2. Past it, `!teach` and the buttons say so in one line and keep nothing;
votes on the images the server keeps still count; `!dataset` shows the use against the quota."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botkit import TOKEN, Running, buttons_of, running_bot, text_of
from sqlalchemy import select

from dataset.files import IMAGES_FOLDER
from dataset.schema import ImageRef
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(300, func_only=True),
]

REPLY = 20.0
VISITOR = {"username": "ahsoka"}
FULL = "This server keeps at most 2 images and 200 MB of them; it holds 2 ("


def images_of(folder: Path, label: str, count: int) -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in sorted((folder / label).iterdir())[:count]]


async def click(running: Running, message: dict[str, Any], label: str) -> str:
    """Click `label` under `message` as a visitor; the bot's (ephemeral) answer."""
    buttons = buttons_of(message)
    button = next(b for b in buttons if b["label"] == label)
    interaction = await running.server.click_button(
        message["id"], button["custom_id"], user=VISITOR
    )
    answer = await running.server.wait_for_reply(interaction["id"], timeout=REPLY)
    assert answer["flags"] & 64, "answers to clicks are ephemeral"
    return text_of(answer)


async def test_past_the_quota_nothing_is_kept_and_the_reply_says_so(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    jedi, sith = images_of(tiny_dataset, "jedi", 2), images_of(tiny_dataset, "sith", 3)
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, data_dir=tmp_path / "data", server_image_quota=2) as running,
    ):
        store = running.bot.dataset
        assert store is not None
        guild = server.guild_id
        reply = await running.command(content="!dataset collect on")
        assert "Collection is **on**" in text_of(reply)
        reply = await running.command(*jedi, content="!teach jedi")
        assert text_of(reply).startswith("Taught 2 new images as **Jedi**."), text_of(reply)

        reply = await running.command(sith[0], content="!teach sith")
        assert FULL in text_of(reply) and "no room for this one" in text_of(reply)
        assert "`!forget` deletes what you gave in this server" in text_of(reply)
        assert store.usage(guild).images == 2 and store.summary(guild).images == 2

        verdict = await running.command(sith[2])  # judged, with buttons: a click is refused
        answer = await click(running, verdict, "It's a Sith")
        assert answer.startswith(FULL) and "`!forget` deletes" in answer
        assert store.usage(guild).images == 2 and store.summary(guild).votes == 2

        # A vote on an image the server keeps always counts.
        reply = await running.command(jedi[0], content="!teach sith", author=VISITOR)
        assert "Taught **Sith** on 1 image I already knew." in text_of(reply), text_of(reply)
        assert store.summary(guild).votes == 3

        reply = await running.command(content="!dataset")
        assert "Kept for this server: 2 of at most 2 images" in text_of(reply)
        kept = {path.stem for path in (store.data_dir / IMAGES_FOLDER).rglob("*") if path.is_file()}
        with store.engine.connect() as connection:
            held = connection.execute(
                select(ImageRef.image_sha256).where(ImageRef.guild_id == guild)
            ).scalars()
            assert kept == set(held) and len(kept) == 2  # no file of a refused image
