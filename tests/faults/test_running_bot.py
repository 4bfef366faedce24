"""`running_bot` stops all of its bot before the next test: discord.py's on_ready (a task of
its own) ends before the bot's DATA_DIR is removed, and a task left running fails by name."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from botkit import TOKEN, finish_tasks, recording_logs, running_bot

from dataset.trainings import Trainings
from playground.discord import DiscordServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60, func_only=True)]


async def test_on_ready_ends_before_the_data_folder_is_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recovered: list[Path] = []
    recover = Trainings.recover_interrupted

    def late_recover(trainings: Trainings, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)  # its thread gets the CPU late, as on a loaded machine
        stale = recover(trainings, *args, **kwargs)
        recovered.append(True)
        return stale

    monkeypatch.setattr(Trainings, "recover_interrupted", late_recover)
    with recording_logs() as logs:
        async with DiscordServer(token=TOKEN) as server:
            async with running_bot(server) as running:  # left as soon as it connects
                data = Path(running.settings.data_dir)
            assert recovered == [True] and not data.exists()
        await asyncio.sleep(0.5)  # anything the bot left would log by now
    assert logs.tracebacks() == []


async def test_a_task_still_running_is_cancelled_and_named() -> None:
    earlier = asyncio.all_tasks()
    quick = asyncio.create_task(asyncio.sleep(0.1), name="quick")
    stuck = asyncio.create_task(asyncio.sleep(60), name="stuck")
    leftover = await finish_tasks(earlier, timeout=0.5)
    assert quick.done() and not quick.cancelled()
    assert stuck.cancelled()
    assert len(leftover) == 1 and leftover[0].startswith("stuck ("), leftover
