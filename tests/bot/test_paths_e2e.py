"""Against the look-alike: a failure whose exception names a host path is told to the user
without it (bot.errors.scrub_paths)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from botkit import TOKEN, Running, running_bot, text_of

from model.bundle import CURRENT_FILE, DEFAULT_MODEL_DIR, publish, staging_folder
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(60, func_only=True),
]


def versioned_copy(folder: Path) -> Path:
    """The shipped model published twice into `folder`/model (versions 1 and 2)."""
    model = folder / "model"
    for _ in range(2):
        with staging_folder(model) as staging:
            for path in DEFAULT_MODEL_DIR.iterdir():
                if path.is_file():
                    shutil.copy2(path, staging / path.name)
            publish(staging, model)
    return model


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    model = versioned_copy(tmp_path_factory.mktemp("served"))
    async with DiscordServer(token=TOKEN) as server, running_bot(server, model_path=model) as bot:
        yield bot


async def test_a_failure_naming_a_host_path_is_told_without_it(running: Running) -> None:
    """`!rollback shared 1` while the model folder's CURRENT cannot be read (a folder): the
    error names CURRENT's absolute path; the reply names only CURRENT."""
    model = running.settings.model_path
    current = model / CURRENT_FILE
    named = current.read_text()
    current.unlink()
    current.mkdir()  # reading it: IsADirectoryError, with the full path in its message
    try:
        reply = text_of(await running.command(content="!rollback shared 1"))
    finally:
        current.rmdir()
        current.write_text(named)
    assert reply.startswith("I can't roll back: cannot read CURRENT: [Errno 21]"), reply
    assert str(model.parent) not in reply and "/tmp" not in reply
    await running.assert_still_serves()
