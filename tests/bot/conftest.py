"""The in-process bot against the local Discord look-alike: one per test module that asks for
`running` (started by `bot.__main__.run`, as `python -m bot` does)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from e2e_support import TOKEN, Running, load_images

import bot.__main__ as bot_main
from bot.endpoints import use_endpoints
from bot.settings import Settings
from model.worker import ModelWorker
from playground.discord import DiscordServer


@pytest.fixture(scope="module")
def images(tiny_dataset: Path, trained_model: Path) -> list[tuple[str, bytes]]:
    return load_images(tiny_dataset, trained_model)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[DiscordServer]:
    async with DiscordServer(token=TOKEN) as srv:
        yield srv


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    server: DiscordServer,
    trained_model: Path,
    images: list[tuple[str, bytes]],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Running]:
    """The bot, started as `python -m bot` starts it, with its worker captured for checks."""
    model_path = tmp_path_factory.mktemp("served") / "model"
    shutil.copytree(trained_model, model_path)
    settings = Settings(
        token=TOKEN,
        api_url=server.api_url,
        model_path=model_path,
        model_backend="litert",
        cooldown_rate=0,
        rate_limit_member=0,
        rate_limit_server=0,
        sync_commands=True,
        history_limit=5,
        reload_interval=0.2,
        data_dir=tmp_path_factory.mktemp("data"),
    )
    workers: list[ModelWorker] = []
    make_worker = bot_main.make_worker

    def recording_make_worker(settings: Settings) -> ModelWorker:
        worker = make_worker(settings)
        workers.append(worker)
        return worker

    bot_main.make_worker = recording_make_worker  # type: ignore[assignment]
    gc.unfreeze()  # whatever pytest froze: after start-up, only what the bot froze counts
    loop = asyncio.get_running_loop()
    task = loop.create_task(bot_main.run(settings))
    try:
        ready = asyncio.ensure_future(server.bot_ready.wait())
        done, _ = await asyncio.wait({task, ready}, timeout=30, return_when="FIRST_COMPLETED")
        if ready not in done:
            ready.cancel()
            if task.done():
                task.result()
            raise AssertionError("the bot never connected")
        yield Running(server, workers[0], model_path, images)
    finally:
        bot_main.make_worker = make_worker  # type: ignore[assignment]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        for sig in (signal.SIGINT, signal.SIGTERM):  # run() handled them on this loop
            loop.remove_signal_handler(sig)
        use_endpoints(None, None)
