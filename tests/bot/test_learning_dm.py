"""`!dataset` and `!forget` in a DM: only what the person gave, and forgetting everywhere (the
look-alike has no DMs, so the commands are called with a fake context on a real dataset)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
from discord.ext import commands
from fakes import user
from PIL import Image

from bot.confirm import Confirm
from bot.exts.learning import Learning
from bot.learning_words import forget_question
from bot.settings import Settings
from dataset import DatasetStore

HOME, AWAY = 2**60 + 1, 2**60 + 2
confirms: list[Confirm] = []  # the questions the bot asked, latest last
ME, SOMEONE = 2**61 + 1, 2**61 + 2


def _image(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _dm(author_id: int) -> tuple[commands.Context, list[str]]:
    ctx = mock.create_autospec(commands.Context, instance=True, spec_set=True)
    ctx.guild, ctx.author, ctx.clean_prefix = None, user(author_id, "me"), "!"
    said: list[str] = []

    async def reply(content: str, **options: object) -> None:
        said.append(content)
        if isinstance(options.get("view"), Confirm):
            confirms.append(options["view"])  # type: ignore[arg-type]

    ctx.reply.side_effect = reply
    return ctx, said


@pytest.fixture
def store(tmp_path: Path):
    with DatasetStore.open(tmp_path / "data") as opened:
        for seed, guild, user, label in (
            (1, HOME, ME, "jedi"),
            (2, HOME, SOMEONE, "sith"),
            (3, AWAY, ME, "sith"),
            (1, AWAY, SOMEONE, "sith"),
        ):
            opened.add_image_and_vote(
                _image(seed), guild_id=guild, user_id=user, label=label, source="teach"
            )
        yield opened


async def test_dataset_in_a_dm_shows_only_what_the_person_gave(store: DatasetStore) -> None:
    cog = Learning(SimpleNamespace(dataset=store, settings=Settings(token="x")))  # type: ignore[arg-type]
    ctx, said = _dm(ME)
    await Learning.dataset.callback(cog, ctx)
    (text,) = said
    assert text.startswith("**What you gave me**")
    assert f"- In server {HOME}: 1 label, 1 image" in text
    assert f"- In server {AWAY}: 1 label, 1 image" in text
    assert "contributors" not in text and str(SOMEONE) not in text and "Sith" not in text


async def test_forget_in_a_dm_forgets_everywhere(store: DatasetStore) -> None:
    cog = Learning(SimpleNamespace(dataset=store, settings=Settings(token="x")))  # type: ignore[arg-type]
    ctx, said = _dm(ME)
    await Learning.forget.callback(cog, ctx)
    assert said[0] == forget_question(in_server=False)
    assert store.user_summary(ME).total == 2  # nothing deleted before it is confirmed
    done = await confirms[-1].action()  # what pressing Delete runs
    assert done.startswith("Deleted your 2 labels and 1 image nobody else labelled.")
    assert "In every server." in done
    assert store.user_summary(ME).total == 0 and store.summary(HOME).votes == 1
    assert store.summary(AWAY).votes == 1  # the image SOMEONE labelled there stays
    await Learning.dataset.callback(cog, ctx)
    assert said[-1] == "You have given me no labels or images."
