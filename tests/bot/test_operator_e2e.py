"""The shared model is the operator's, end to end: the real bot against the look-alike holding
two servers of different owners. Server A is the operator's ("padawan" owns the application
and A); server B was created by eve, who holds every permission there and is no operator.

Eve's `!retrain shared`, `!retrain shared force`, `!rollback shared` and `!retrain shared cancel`
in B are refused with one line and change nothing (without `shared` they act on B's own model,
tests/bot/test_server_models_e2e.py); the operator's `!retrain shared` in A runs as before, and
B's `!model shared` shows the shared model without naming the operator.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from botkit import TOKEN, Running, running_bot, text_of

from bot.checks import OPERATOR_ONLY
from bot.exts.models._retrainer import SHARED_MODEL
from dataset import DatasetStore
from model.bundle import (
    DEFAULT_MODEL_DIR,
    METADATA_FILE,
    current_version,
    model_dir,
    publish,
    staging_folder,
    versions,
)
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(300, func_only=True),
]

TRAINING = 240.0  # a one-epoch retrain on 48 images, with export and checks, on 2 slow cores
EVE = {"username": "eve"}


def publish_swapped(target: Path) -> None:
    """The shipped model with its class names swapped, as version 1 of `target`: nearly every
    image wrong, so any retrain is better and is published."""
    with staging_folder(target / "next") as staging:
        for path in model_dir(DEFAULT_MODEL_DIR).iterdir():
            if path.is_file():
                shutil.copy2(path, staging / path.name)
        meta = json.loads((staging / METADATA_FILE).read_text())
        meta["class_names"] = list(reversed(meta["class_names"]))
        (staging / METADATA_FILE).write_text(json.dumps(meta))
        publish(staging, target)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[DiscordServer]:
    async with DiscordServer(token=TOKEN) as srv:
        srv.give_guild("eve", srv.guild_ids[1])  # before the bot connects
        yield srv


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    server: DiscordServer, tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path
) -> AsyncIterator[Running]:
    models = tmp_path_factory.mktemp("operator") / "models"
    publish_swapped(models)
    data = tmp_path_factory.mktemp("operator-data")
    with DatasetStore.open(data) as store:
        store.import_folder(tiny_dataset)
    async with running_bot(
        server, models, data_dir=data, retrain_min_images=10, reload_interval=0.2
    ) as bot:
        yield bot


def in_b(running: Running) -> dict[str, int]:
    return {"channel_id": running.server.first_channel(running.server.guild_ids[1])}


def state(folder: Path) -> tuple[list[int], int | None]:
    return versions(folder), current_version(folder)


async def test_a_server_owner_cannot_change_the_shared_model(running: Running) -> None:
    folder = running.worker.folder
    assert folder is not None
    before = state(folder)
    for command in (
        "!retrain shared",
        "!retrain shared force epochs=1",
        "!rollback shared 1",
        "!rollback shared",
    ):
        reply = await running.command(content=command, author=EVE, **in_b(running))
        assert text_of(reply) == OPERATOR_ONLY, command
    assert state(folder) == before
    assert running.bot.dataset is not None
    assert running.bot.dataset.trainings.latest(5) == []  # not even started


async def test_the_operator_retrains_and_a_manager_elsewhere_cannot_stop_it(
    running: Running,
) -> None:
    server, store = running.server, running.bot.dataset
    folder = running.worker.folder
    assert folder is not None and store is not None and state(folder) == ([1], 1)
    progress = await running.command(content="!retrain shared epochs=1")  # padawan, in A
    assert text_of(progress).startswith("**Training** a new model")

    refused = await running.command(content="!retrain shared cancel", author=EVE, **in_b(running))
    assert text_of(refused) == OPERATOR_ONLY
    record = store.trainings.running(SHARED_MODEL)
    assert record is not None and not record.cancel_requested
    shown = await running.command(content="!model shared", author=EVE, **in_b(running))
    assert "-# A training is running, started by the operator <t:" in text_of(shown)
    operator_id = server.human["id"]
    assert operator_id not in text_of(shown) and "adawan" not in text_of(shown)

    deadline = time.monotonic() + TRAINING
    while (content := text_of(server.get_message(progress["id"]))).startswith("**Training**"):
        assert time.monotonic() < deadline, f"the training did not end: {content!r}"
        await asyncio.sleep(0.2)
    assert content.startswith("**New model published: version 2.**"), content
    assert state(folder) == ([1, 2], 2)
    b_messages = server.state.channel(in_b(running)["channel_id"]).messages.values()
    assert not any("New model" in text_of(m) for m in b_messages)  # shown where started

    shown = await running.command(content="!model shared", author=EVE, **in_b(running))
    assert text_of(shown).startswith("**version 2** (current)")
    assert "retrained by the operator (training 1)" in text_of(shown)
    assert operator_id not in text_of(shown) and "adawan" not in text_of(shown)
    assert "rollback" not in text_of(shown)  # not hers to do
    mine = await running.command(content="!model shared")  # the operator sees who and where
    line = f"-# training 1: published version 2, by <@{operator_id}> in Jedi Temple <t:"
    assert line in text_of(mine)
