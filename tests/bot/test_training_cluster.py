"""The training lock across a cluster: two bot processes on one database (here two `Retrainer`s,
each with its own store and engine, as two processes have), one running a trainer (a small
stand-in that stops on SIGTERM as `training.retrain` does), on SQLite and on PostgreSQL.

`!retrain cancel` typed in the process that does not run it still stops it, and `!model` there
shows it. A `!retrain shared` that finds the cluster's only slot taken says its place in the
queue, and starts in its turn; `!retrain shared cancel` in another process takes it out.
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

import pytest
from fakes import progress_message, user

from bot.errors import UserFacingError
from bot.exts.models import Models, _queue, _retrainer
from bot.exts.models._jobs import ClientNotifier, Job
from bot.exts.models._retrainer import Retrainer
from bot.exts.models._words import RetrainOptions, queued_line
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


def make_retrainer(
    store: DatasetStore, data_dir: Path, kind: type[StandInRetrainer] = StandInRetrainer
) -> Any:
    """One process's `Retrainer`, on its own store, as one process of the cluster has it."""
    users = {user.id: user for user in (OWNER, MODERATOR)}
    client = SimpleNamespace(get_user=users.get, get_channel=lambda _: None)
    settings = SimpleNamespace(
        data_dir=data_dir,
        command_prefix="!",
        max_trainings=1,
        default_holdout_dir=None,
        model_path=data_dir / "model",
        retrain_min_images=20,
    )
    return kind(
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


class QueuedRetrainer(StandInRetrainer):
    """A `StandInRetrainer` whose `start` needs no labelled images: the queue is under test."""

    async def check_counts(self) -> dict[str, int]:
        return {"jedi": 20, "sith": 20}

    def _export(self, work: WorkFolder) -> None:
        work.path.mkdir(parents=True, exist_ok=True)


def queued_retrainer(store: DatasetStore, data_dir: Path) -> QueuedRetrainer:
    return make_retrainer(store, data_dir, QueuedRetrainer)


async def _queue_behind_a_server_training(tmp_path: Path, here: DatasetStore, monkeypatch):
    """`!retrain shared` in `here`'s process while another process's full training (a
    server's) holds the only slot: its reply, its progress message's edits, its retrainer."""
    monkeypatch.setattr(_queue, "QUEUE_EVERY", 0.05)
    monkeypatch.setattr(_retrainer, "PROGRESS_EVERY", 0.1)
    monkeypatch.setattr(_retrainer, "prepare_retrained_folder", lambda *_: tmp_path / "model")
    runner = queued_retrainer(here, tmp_path / "runner")
    message, edits = progress_message(MESSAGE_ID)
    sent: list[str] = []

    async def send(text: str) -> Any:
        sent.append(text)
        return message

    channel = SimpleNamespace(id=6)
    await runner.start(RetrainOptions(epochs=3), OWNER, channel, None, send, 0)  # type: ignore[arg-type]
    return runner, sent, edits


async def test_a_retrain_behind_a_full_slot_says_its_place_and_starts_in_its_turn(
    tmp_path: Path, database, monkeypatch
) -> None:
    url = database.url(tmp_path / "data")
    with (
        DatasetStore.open(tmp_path / "data", url) as here,
        DatasetStore.open(tmp_path / "data", url) as there,
    ):
        server = there.trainings.enqueue(
            scope=5, guild_id=5, channel_id=7, user_id=9, pid=os.getpid(), params={}, max_running=1
        )
        assert server.status == "running"
        runner, sent, edits = await _queue_behind_a_server_training(tmp_path, here, monkeypatch)
        assert sent == [
            f"**Queued**: a new model for <@{OWNER.id}> trains when a slot is free (place 1 in "
            "the queue; other trainings use every slot). This message shows it when it starts.\n"
            "-# `!retrain shared cancel` takes it out of the queue."
        ]
        other = queued_retrainer(there, tmp_path / "other")
        waiting = await other.waiting(0)
        assert waiting is not None and waiting[1] == 1 and waiting[0].user_id == OWNER.id
        assert queued_line(*waiting).startswith(
            f"-# A training waits in the queue: place 1, asked by <@{OWNER.id}> <t:"
        )
        assert "the operator" in queued_line(*waiting, operator=False)
        with pytest.raises(UserFacingError, match=r"already waits in the queue \(place 1,"):
            await other.start(RetrainOptions(), MODERATOR, SimpleNamespace(id=6), None, None, 0)  # type: ignore[arg-type]

        # The server's training ends: the queued one takes the slot and its message shows it.
        await asyncio.sleep(0.2)
        assert edits == [] and runner.job is not None and runner.job.process is None
        there.trainings.finish(server.id, "published")
        await _until(lambda: runner.job is not None and runner.job.process is not None)
        assert edits[0].startswith(f"**Training** a new model for <@{OWNER.id}>: ")
        running = here.trainings.running(0)
        assert running is not None and (running.slot, running.id) == (0, runner.job.record.id)
        await _until(lambda: runner.job.work.progress.exists())  # its SIGTERM handler is set
        job = runner.job  # held: the runner lets go of a job as soon as it has ended
        assert job is not None and job.task is not None
        assert await runner.cancel(OWNER)
        await asyncio.wait_for(job.task, 20)
        assert edits[-1].startswith("**Training cancelled**")


async def test_a_queued_retrain_cancelled_from_another_process_leaves_the_queue(
    tmp_path: Path, database, monkeypatch
) -> None:
    url = database.url(tmp_path / "data")
    with (
        DatasetStore.open(tmp_path / "data", url) as here,
        DatasetStore.open(tmp_path / "data", url) as there,
    ):
        there.trainings.enqueue(
            scope=5, guild_id=5, channel_id=7, user_id=9, pid=os.getpid(), params={}, max_running=1
        )
        runner, _, edits = await _queue_behind_a_server_training(tmp_path, here, monkeypatch)
        job = runner.job
        assert job is not None and job.task is not None
        replies: list[str] = []

        async def reply(text: str) -> None:
            replies.append(text)

        other = queued_retrainer(there, tmp_path / "other")
        await models_cog(other)._cancel(MODERATOR, reply)  # type: ignore[arg-type]
        assert replies == [
            "Removed the training from the queue (it was at place 1); its message says so "
            "within seconds."
        ]
        await asyncio.wait_for(job.task, 20)
        assert edits == [
            "**Training cancelled**: removed from the queue by mace. "
            "The current model and the dataset are unchanged."
        ]
        assert runner.job is None and job.process is None
        done = here.trainings.latest(1)[0]
        assert (done.status, done.cancel_requested_by) == ("cancelled", MODERATOR.id)
        assert await other.waiting(0) is None
        await models_cog(other)._cancel(MODERATOR, reply)  # type: ignore[arg-type]
        assert replies[-1] == "No training is running."


async def test_a_bot_that_stops_while_its_training_waits_leaves_the_queue(
    tmp_path: Path, database, monkeypatch
) -> None:
    url = database.url(tmp_path / "data")
    with DatasetStore.open(tmp_path / "data", url) as store:
        store.trainings.enqueue(
            scope=5, guild_id=5, channel_id=7, user_id=9, pid=os.getpid(), params={}, max_running=1
        )
        runner, _, edits = await _queue_behind_a_server_training(tmp_path, store, monkeypatch)
        await asyncio.sleep(0.01)  # its task waits for its turn
        await runner.shutdown()
        assert runner.job is None and store.trainings.queued(0) is None
        assert store.trainings.latest(1)[0].status == "cancelled"
        assert edits == [
            "**Training interrupted**: the bot restarted. The current model and the dataset are "
            "unchanged. `!retrain` starts again."
        ]
