"""A corrupt model is published while the bot serves a burst: it keeps the model it has."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from botkit import (
    SAMPLES,
    TOKEN,
    Running,
    answers,
    assert_answered_once,
    copy_shipped_model,
    expected_label,
    running_bot,
    sample,
    text_of,
    verdict_lines,
    wait_until,
)

from model.bundle import (
    DEFAULT_MODEL_DIR,
    METADATA_FILE,
    TFLITE_FILE,
    publish,
    sha256,
    staging_folder,
)
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(60, func_only=True),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    model = copy_shipped_model(tmp_path_factory.mktemp("served"))
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, model_path=model, reload_interval=0.2) as bot,
    ):
        yield bot


def publish_copy(model: Path, tflite: bytes | None = None, *, rehash: bool = True) -> None:
    """Publish the shipped model into `model`, with another `model.tflite` if given (its hash
    in `model.json` updated to match, with `rehash`: a consistent folder with a broken graph)."""
    with staging_folder(model) as staging:
        for path in DEFAULT_MODEL_DIR.iterdir():
            if path.is_file():
                shutil.copy2(path, staging / path.name)
        if tflite is not None:
            (staging / TFLITE_FILE).write_bytes(tflite)
            if rehash:
                meta = json.loads((staging / METADATA_FILE).read_text())
                meta["files"][TFLITE_FILE] = sha256(tflite)
                (staging / METADATA_FILE).write_text(json.dumps(meta))
        publish(staging, model)


@pytest.mark.parametrize(
    ("broken", "rehash"),
    [(b"not a flatbuffer " * 64, True), (None, False)],
    ids=["garbage with its hash", "truncated, hash left stale"],
)
async def test_a_corrupt_model_published_mid_burst_is_refused(
    running: Running, broken: bytes | None, rehash: bool
) -> None:
    worker, logs, server = running.worker, running.logs, running.server
    model = running.settings.model_path
    assert model != DEFAULT_MODEL_DIR
    reloads, mark = worker.stats().reloads, logs.mark()
    if broken is None:
        broken = (DEFAULT_MODEL_DIR / TFLITE_FILE).read_bytes()[:100_000]

    commands = [
        await running.post(attachments=[sample(SAMPLES[n % 6])], author=f"reader-{n % 3}")
        for n in range(6)
    ]
    publish_copy(model, broken, rehash=rehash)
    commands += [
        await running.post(attachments=[sample(SAMPLES[n % 6])], author=f"reader-{n % 3}")
        for n in range(6)
    ]
    refusal = await logs.wait_for(lambda m: m.startswith("refused the new model"), mark)
    replies = await answers(server, commands)
    await running.settle()
    assert_answered_once(server, commands)
    for command, reply in zip(commands, replies, strict=True):
        label = expected_label(command["attachments"][0]["filename"])
        assert verdict_lines(text_of(reply))[0].startswith(f"**{label}**"), text_of(reply)
    assert worker.stats().reloads == reloads  # still the old model
    assert "still serving the old one" in refusal and "\n" not in refusal
    assert logs.lines(mark, logging.ERROR) == [refusal]
    assert logs.tracebacks(mark) == []

    # A good model published next is picked up.
    publish_copy(model)
    await running.assert_still_serves()  # a batch also gives the worker a chance to look
    await wait_until(lambda: worker.stats().reloads == reloads + 1)
    await running.assert_still_serves()
