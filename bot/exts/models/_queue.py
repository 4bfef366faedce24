"""The queue side of the `Retrainer`: a training that finds every `MAX_TRAININGS` slot taken
replies with its place, waits for its turn (`Trainings.take_turn` every few seconds), then runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import discord

from bot.errors import scrub_paths
from bot.exts.models._jobs import SHARED_MODEL, Job, Notifier
from bot.exts.models._words import (
    RetrainOptions,
    final_text,
    interrupted_text,
    progress_text,
    queued_text,
)
from bot.settings import Settings
from dataset import DatasetError, DatasetStore, TrainingRecord
from dataset.records import QUEUED, RUNNING
from training.protocol import Status, TrainerResult, WorkFolder

log = logging.getLogger(__name__)

QUEUE_EVERY = 5.0  # seconds between asks for a queued training's turn


class QueuedTrainings:
    """What the `Retrainer` does for a training that waits in the queue; the rest (`_watch`,
    `_export_for`, `_target`, `_edit`) is the `Retrainer`'s own."""

    settings: Settings
    notifier: Notifier
    jobs: dict[int, Job]
    runs: Path
    store: DatasetStore
    _store: DatasetStore | None

    async def _watch(self, job: Job) -> None:
        raise NotImplementedError

    async def _edit(self, job: Job, text: str) -> None:
        raise NotImplementedError

    def _export_for(self, work: WorkFolder, scope: int) -> None:
        raise NotImplementedError

    def _target(self, scope: int, work: WorkFolder) -> Path:
        raise NotImplementedError

    async def _queue(
        self,
        record: TrainingRecord,
        options: RetrainOptions,
        user: discord.abc.User,
        send: Callable[[str], Awaitable[discord.Message]],
        scope: int,
    ) -> None:
        """Reply with `record`'s place in the queue, and wait for its turn in a task."""
        prefix = self.settings.command_prefix
        try:
            place = await asyncio.to_thread(self.store.trainings.place, record.id)
            message = await send(queued_text(place, user.mention, prefix, cancel_word(scope)))
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.trainings.withdraw, record.id, by=None)
            raise
        work = WorkFolder(self.runs / str(record.id))
        job = Job(record, options, work, self.settings.model_path, message, user, scope)
        job.holdout = self.settings.default_holdout_dir if scope == SHARED_MODEL else None
        self.jobs[scope] = job
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                self.store.trainings.heartbeat, record.id, message_id=message.id
            )
        job.task = asyncio.create_task(self._wait_then_watch(job), name=f"training-{record.id}")

    async def _wait_then_watch(self, job: Job) -> None:
        """Wait for the queued `job`'s turn, then export and run it as `start` does."""
        try:
            record = await self._wait_turn(job)
        except asyncio.CancelledError:  # the bot stops: leave the queue (or the slot it got)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._leave, job.record.id)
            self.jobs.pop(job.scope, None)
            network = job.scope != SHARED_MODEL
            prefix = self.settings.command_prefix
            await self._edit(job, interrupted_text("the bot restarted", prefix, network=network))
            raise
        if record.status != RUNNING:  # taken out of the queue, or interrupted
            self.jobs.pop(job.scope, None)
            if record.status == Status.CANCELLED.value:
                by = self.notifier.name_of(record.cancel_requested_by)
                result = ending(Status.CANCELLED, f"removed from the queue by {by}")
            else:
                result = ending(Status.INTERRUPTED, "it left the queue without running")
            await self._edit(job, final_text(result, self.settings.command_prefix))
            return
        job.record, job.started = record, time.monotonic()
        prefix = self.settings.command_prefix
        try:
            job.target = await asyncio.to_thread(self._target, job.scope, job.work)
            await asyncio.to_thread(self._export_for, job.work, job.scope)
        except Exception as error:
            log.exception("training %s could not start", record.id)
            self.jobs.pop(job.scope, None)
            result = ending(Status.FAILED, f"could not start: {error}")
            with contextlib.suppress(Exception):
                await asyncio.to_thread(
                    self.store.trainings.finish,
                    record.id,
                    Status.FAILED.value,
                    result={"reason": result.reason},
                )
            await self._edit(job, final_text(result, prefix))
            return
        await self._edit(job, progress_text([], job.options, job.user.mention, prefix))
        await self._watch(job)

    def _leave(self, training_id: int) -> None:
        """Take a training of this stopping process out of the queue, or free its slot."""
        try:
            self.store.trainings.withdraw(training_id, by=None)
        except DatasetError:  # its turn came meanwhile
            reason = {"reason": "the bot stopped before it ran"}
            self.store.trainings.finish(training_id, Status.INTERRUPTED.value, result=reason)

    async def _wait_turn(self, job: Job) -> TrainingRecord:
        """Ask for `job`'s turn until it runs or leaves the queue, keeping its place shown."""
        shown = None
        while True:
            await asyncio.sleep(QUEUE_EVERY)
            try:
                record = await asyncio.to_thread(
                    self.store.trainings.take_turn,
                    job.record.id,
                    max_running=self.settings.max_trainings,
                )
                if record.status != QUEUED:
                    return record
                place = await asyncio.to_thread(self.store.trainings.place, record.id)
            except DatasetError:
                log.exception("training %s: could not ask for its turn", job.record.id)
                continue
            if shown is not None and place != shown:
                prefix = self.settings.command_prefix
                text = queued_text(place, job.user.mention, prefix, cancel_word(job.scope))
                await self._edit(job, text)
            shown = place

    async def waiting(self, scope: int = SHARED_MODEL) -> tuple[TrainingRecord, int] | None:
        """The training of the model `scope` that waits in the queue, and its place; None if
        none waits (or the database is out of reach)."""
        if self._store is None:
            return None
        trainings = self._store.trainings
        try:
            record = await asyncio.to_thread(trainings.queued, scope)
            place = await asyncio.to_thread(trainings.place, record.id) if record else None
        except Exception:
            log.exception("could not read the queued training")
            return None
        return (record, place) if record is not None and place is not None else None


def cancel_word(scope: int) -> str:
    """The command that stops or unqueues a training of `scope`."""
    return "retrain shared cancel" if scope == SHARED_MODEL else "retrain cancel"


def ending(status: Status, reason: str) -> TrainerResult:
    """A result the bot writes itself, for a run that ended without the trainer's own."""
    return TrainerResult(status=status, reason=scrub_paths(reason))
