"""The training lock across a cluster: two bot processes on one database (here two `Retrainer`s,
each with its own store and engine, as two processes have), one running a trainer (a small
stand-in that stops on SIGTERM as `training.retrain` does), on SQLite and on PostgreSQL.

`!retrain cancel` typed in the process that does not run it still stops it, and `!model` there
shows it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fakes import progress_message, user

from bot.exts.models import Models, _retrainer
from bot.exts.models._retrainer import ClientNotifier, Job, Retrainer
from bot.exts.models._words import RetrainOptions
from dataset import DatasetStore
from training.protocol import WorkFolder

TRAINER = """
import json, pathlib, signal, sys, time
work = pathlib.Path(sys.argv[1])
def stop(*_):
    (work / "result.json").write_text(json.dumps({"status": "cancelled", "reason": "stopped"}))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
(work / "progress.jsonl").write_text(json.dumps({"event": "stage", "stage": "training"}) + "\\n")
time.sleep(60)
"""
OWNER = user(2**60 + 1, "anakin")
MODERATOR = user(2**60 + 2, "mace")
MESSAGE_ID = 1234


class StandInRetrainer(Retrainer):
    def command(self, job: Job) -> list[str]:
        return [sys.executable, "-c", TRAINER, str(job.work.path)]


def make_retrainer(store: DatasetStore, data_dir: Path) -> StandInRetrainer:
    """One process's `Retrainer`, on its own store, as one process of the cluster has it."""
    users = {user.id: user for user in (OWNER, MODERATOR)}
    client = SimpleNamespace(get_user=users.get, get_channel=lambda _: None)
    settings = SimpleNamespace(data_dir=data_dir, command_prefix="!")
    return StandInRetrainer(
        store,
        settings,  # type: ignore[arg-type]
        ("jedi", "sith"),
        lambda _: None,
        ClientNotifier(client),  # type: ignore[arg-type]
    )


def models_cog(retrainer: Retrainer) -> Models:
    """The Models cog of the process that holds `retrainer`, as its `!retrain cancel` runs."""

    async def is_owner(user: Any) -> bool:  # the moderator, an operator, may cancel it
        return user is MODERATOR

    bot = SimpleNamespace(is_owner=is_owner, settings=SimpleNamespace(operator_ids=frozenset()))
    cog = Models(bot)  # type: ignore[arg-type]
    cog.retrainer = retrainer
    return cog


async def _until(done: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        await asyncio.sleep(0.05)


async def test_a_cancel_typed_in_another_process_stops_the_trainer(
    tmp_path: Path, database, monkeypatch
) -> None:
    monkeypatch.setattr(_retrainer, "PROGRESS_EVERY", 0.1)
    url = database.url(tmp_path / "data")
    with (
        DatasetStore.open(tmp_path / "data", url) as here,
        DatasetStore.open(tmp_path / "data", url) as there,
    ):
        runner = make_retrainer(here, tmp_path / "runner")
        other = make_retrainer(there, tmp_path / "other")
        record = here.trainings.start(
            scope=0, guild_id=5, channel_id=6, user_id=OWNER.id, pid=os.getpid(), params={}
        )
        work = WorkFolder(runner.runs / str(record.id))
        work.path.mkdir(parents=True)
        message, edits = progress_message(MESSAGE_ID)
        job = Job(record, RetrainOptions(epochs=3), work, tmp_path / "model", message, OWNER)  # type: ignore[arg-type]
        runner.job = job
        job.task = asyncio.create_task(runner._watch(job))
        await _until(lambda: work.progress.exists())

        # The other process sees the training, knows it is not its own, and shows it.
        seen = await other.running()
        assert seen is not None and seen.id == record.id and not other.is_local(seen)
        assert runner.is_local(seen)
        replies: list[str] = []

        async def reply(text: str) -> None:
            replies.append(text)

        # Its `!retrain cancel` (the cog's, with its permission check) asks through the store.
        await models_cog(other)._cancel(MODERATOR, reply)  # type: ignore[arg-type]
        assert replies == [
            "Stopping the training (another of my processes runs it: it stops within seconds); "
            "its message says when it has stopped."
        ]
        asked = await other.running()
        assert asked is not None and asked.cancel_requested_by == MODERATOR.id
        line = other.running_text(asked)
        assert line.startswith(f"-# A training is running, started by <@{OWNER.id}> <t:")
        assert "in another of my processes" in line and "mace asked it to stop" in line

        # The process that runs it sees the request at its next heartbeat and stops it.
        await asyncio.wait_for(job.task, 20)
        assert edits[-1] == (
            "**Training cancelled**: cancelled by mace. "
            "The current model and the dataset are unchanged."
        )
        assert job.process is not None and job.process.returncode == 0
        assert runner.job is None
        done = there.trainings.latest(1)[0]
        assert (done.id, done.status, done.cancel_requested_by) == (
            record.id,
            "cancelled",
            MODERATOR.id,
        )
        assert await other.running() is None and not await other.cancel(MODERATOR)
        await models_cog(other)._cancel(MODERATOR, reply)  # type: ignore[arg-type]
        assert replies[-1] == "No training is running."


async def test_a_lock_whose_process_died_is_not_shown_as_running(tmp_path: Path, database) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    url = database.url(tmp_path / "data")
    with DatasetStore.open(tmp_path / "data", url) as store:
        store.trainings.start(
            scope=0, guild_id=5, channel_id=6, user_id=OWNER.id, pid=dead.pid, params={}
        )
        retrainer = make_retrainer(store, tmp_path)
        assert await retrainer.running() is None
        assert store.trainings.latest(1)[0].status == "interrupted"
        assert not await retrainer.cancel(MODERATOR)
