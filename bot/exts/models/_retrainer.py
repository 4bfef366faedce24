"""`!retrain`: one training at a time, in its own process, shown by editing one message.

TensorFlow takes gigabytes, so the network is never trained in the bot's process: the bot exports
the dataset (copies, not links) into a work folder (`training.protocol.WorkFolder`), joins
`BASE_DATA_DIR`, and runs the trainer beside it. The trainer writes its progress and its result
there; the bot reads them every few seconds, edits its progress message, and says how it ended.

The lock is a row in the database (`Trainings.start`), so it outlives a crash and is
shared by every bot process on the database: a bot that died while training left a `running` row
behind, which the next start marks `interrupted`; a trainer whose bot died gets SIGTERM
(`bot.processes.die_with_parent`). `!retrain cancel` typed in a process that does not run the
trainer is recorded on the row (`Trainings.request_cancel`); the process that runs it reads
the request at its next heartbeat and stops its trainer. A failed, refused or cancelled run
changes neither the model nor the dataset.

At most `MAX_TRAININGS` run at once across the cluster: a `!retrain shared` that finds no free
slot replies with its place in the queue, and edits that reply into its progress message in its
turn (`Trainings.enqueue`, `take_turn`).

Each training has a scope, the model it trains: `SHARED_MODEL` (0), the model every server
without one of its own is served and that only the bot's operator retrains, or a server's id
(`!retrain network`): a network trained from the shared one's weights on that server's images
alone, judged on its holdout by `._networks.NetworkJudge` and published into its own versions.
A process runs at most one training per scope (`jobs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import discord

from bot.errors import UserFacingError, scrub_paths
from bot.exts.models._jobs import SHARED_MODEL, Job, Notifier, count_images
from bot.exts.models._networks import NetworkJudge, ending_text, export_server, server_counts
from bot.exts.models._queue import QueuedTrainings, cancel_word, ending
from bot.exts.models._words import (
    RetrainOptions,
    busy_text,
    final_text,
    interrupted_text,
    progress_text,
    running_text,
)
from bot.model_versions import prepare_retrained_folder
from bot.processes import die_with_parent, trainer_environment
from bot.settings import Settings
from dataset import DatasetError, DatasetStore, TrainingBusy, TrainingRecord
from dataset.records import QUEUED
from model.preprocess import IMAGE_TYPES
from training.protocol import (
    TRAINER_MODULE,
    ProtocolError,
    Status,
    TrainerResult,
    WorkFolder,
    finite,
    read_progress,
)

log = logging.getLogger(__name__)

PROGRESS_EVERY = 3.0  # seconds between looks at the trainer's progress
STOP_GRACE = 5.0  # seconds a trainer gets to stop cleanly before it is killed
KEEP_RUNS = 5  # trainings' work folders kept (logs, plots, result.json)
NO_DATASET = "Learning is not set up on this bot (it has no dataset)."
OPERATORS_HOLDOUT = "the operator's holdout (DEFAULT_HOLDOUT_DIR)"
SHARED_HOLDOUT = "the held-out labels of the servers that share them"


class Retrainer(QueuedTrainings):
    """Starts, watches, cancels and reports this process's trainings, one per model."""

    def __init__(
        self,
        store: DatasetStore | None,
        settings: Settings,
        class_names: Sequence[str],
        serve: Callable[[Path], object],
        notifier: Notifier,
        judge: NetworkJudge | None = None,
    ) -> None:
        """`serve(folder)` makes the model worker serve a folder a training published into;
        `judge` scores and publishes a server's network (None: servers train none)."""
        self._store = store
        self.settings = settings
        self.class_names = tuple(class_names)
        self.serve = serve
        self.notifier = notifier
        self.judge = judge
        self.jobs: dict[int, Job] = {}  # scope -> the training this process runs or queues

    @property
    def job(self) -> Job | None:
        """This process's training of the shared model, if it has one."""
        return self.jobs.get(SHARED_MODEL)

    @job.setter
    def job(self, job: Job | None) -> None:
        if job is None:
            self.jobs.pop(SHARED_MODEL, None)
        else:
            self.jobs[job.scope] = job

    @property
    def store(self) -> DatasetStore:
        if self._store is None:
            raise UserFacingError(NO_DATASET)
        return self._store

    @property
    def runs(self) -> Path:
        return self.settings.data_dir / "trainings"

    def check_holdout(self) -> None:
        """DEFAULT_HOLDOUT_DIR, when set, holds a folder per class; else `UserFacingError`."""
        folder = self.settings.default_holdout_dir
        if folder is None:
            return
        missing = [n for n in self.class_names if not (Path(folder) / n).is_dir()]
        if missing:
            raise UserFacingError(
                f"The operator's holdout (DEFAULT_HOLDOUT_DIR) has no {'/, '.join(missing)}/ "
                "folder: I won't train the shared model without the holdout that judges it."
            )

    # -- starting -----------------------------------------------------------------------------

    async def check_counts(self) -> dict[str, int]:
        """Images per class the shared model's retrain would learn from (the labels of the
        servers that share them, and imports); `UserFacingError` if too few."""
        settings, names = self.settings, self.class_names
        shared = await asyncio.to_thread(self.store.labelled_shared, holdout=False)
        base = await asyncio.to_thread(count_images, settings.base_data_dir, names)
        counts = {n: sum(i.label == n for i in shared) + base[n] for n in names}
        short = {n: settings.retrain_min_images - c for n, c in counts.items()}
        missing = {n: k for n, k in short.items() if k > 0}
        if missing:
            have = " and ".join(f"{counts[n]} {n.capitalize()}" for n in names)
            need = " and ".join(f"{k} more {n.capitalize()}" for n, k in missing.items())
            raise UserFacingError(
                f"I need at least {settings.retrain_min_images} labelled images of each class "
                f"to train the shared model, not counting the holdout, from the servers that "
                f"share their labels (`{settings.command_prefix}dataset share on`) and imports; "
                f"I have {have}: {need} needed."
            )
        return counts

    async def start(
        self,
        options: RetrainOptions,
        user: discord.abc.User,
        channel: discord.abc.Messageable,
        guild: discord.Guild | None,
        send: Callable[[str], Awaitable[discord.Message]],
        scope: int = SHARED_MODEL,
    ) -> None:
        """Take the lock, export, start the trainer and its watcher for the model `scope`;
        `send(text)` posts the progress message, where the command was typed. Raises
        `UserFacingError` for anything the user can fix."""
        prefix = self.settings.command_prefix
        if scope in self.jobs:
            raise UserFacingError(await self._busy_text(self.jobs[scope].record))
        if scope == SHARED_MODEL:
            self.check_holdout()
            counts = await self.check_counts()
            holdout = "operator" if self.settings.default_holdout_dir else "shared"
        else:
            if self.judge is None:
                raise UserFacingError(NO_DATASET)
            counts = await asyncio.to_thread(
                server_counts, self.store, self.settings, scope, self.class_names
            )
            holdout = "server"
        params = {
            "epochs": options.epochs,
            "force": options.force,
            "counts": counts,
            "holdout": holdout,
            **({"kind": "network"} if scope != SHARED_MODEL else {}),
        }
        try:
            record = await asyncio.to_thread(
                self.store.trainings.enqueue,
                scope=scope,
                guild_id=guild.id if guild else None,
                channel_id=getattr(channel, "id", None),
                user_id=user.id,
                pid=os.getpid(),
                params=params,
                max_running=self.settings.max_trainings,
            )
        except TrainingBusy as busy:
            raise UserFacingError(await self._busy_text(busy.training)) from None
        if record.status == QUEUED:
            await self._queue(record, options, user, send, scope)
            return
        try:
            work = WorkFolder(self.runs / str(record.id))
            target = await asyncio.to_thread(self._target, scope, work)
            await asyncio.to_thread(self._export_for, work, scope)
            message = await send(progress_text([], options, user.mention, prefix))
        except BaseException as error:
            reason = (
                str(error) if isinstance(error, UserFacingError) else f"could not start: {error}"
            )
            failed = {"reason": scrub_paths(reason)}
            await asyncio.to_thread(
                self.store.trainings.finish, record.id, Status.FAILED.value, result=failed
            )
            raise
        job = Job(record, options, work, target, message, user, scope)
        job.holdout = self.settings.default_holdout_dir if scope == SHARED_MODEL else None
        self.jobs[scope] = job
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                self.store.trainings.heartbeat, record.id, message_id=message.id
            )
        job.task = asyncio.create_task(self._watch(job), name=f"training-{record.id}")

    def _target(self, scope: int, work: WorkFolder) -> Path:
        """Where the trainer publishes: the shared model's folder, or (a server's network) a
        folder of the run's own, from which `NetworkJudge` publishes it if it wins."""
        if scope == SHARED_MODEL:
            return prepare_retrained_folder(self.settings.model_path, self.settings.data_dir)
        return work.path / "candidate"

    async def _busy_text(self, record: TrainingRecord) -> str:
        """The answer to a `!retrain` while `record` runs or waits in the queue."""
        place = None
        if record.status == QUEUED:
            place = await asyncio.to_thread(self.store.trainings.place, record.id)
        return busy_text(record, self.settings.command_prefix, place, cancel_word(record.scope))

    async def _edit(self, job: Job, text: str) -> None:
        with contextlib.suppress(discord.HTTPException):
            await job.message.edit(content=text)

    def _export_for(self, work: WorkFolder, scope: int) -> None:
        """What the training of `scope` learns from, in `work`: a server's own images (its
        holdout apart), or the shared model's (`_export`)."""
        if scope == SHARED_MODEL:
            self._export(work)
            return
        if work.path.exists():
            shutil.rmtree(work.path)
        work.path.mkdir(parents=True)
        export_server(self.store, scope, work)

    def _export(self, work: WorkFolder) -> None:
        """The dataset's training share, joined with BASE_DATA_DIR, and the holdout (unless the
        operator's DEFAULT_HOLDOUT_DIR judges it), in `work`."""
        if work.path.exists():
            shutil.rmtree(work.path)
        work.path.mkdir(parents=True)
        self.store.export_shared(work.data, holdout=False)
        if self.settings.default_holdout_dir is None:
            self.store.export_shared(work.holdout, holdout=True)
        base = self.settings.base_data_dir
        if base is None:
            return
        for name in self.class_names:
            folder = Path(base) / name
            if not folder.is_dir():
                continue
            (work.data / name).mkdir(parents=True, exist_ok=True)
            for index, path in enumerate(sorted(folder.iterdir())):
                if path.suffix.lower() in IMAGE_TYPES:
                    link = work.data / name / f"base-{index:06d}{path.suffix.lower()}"
                    link.symlink_to(path.resolve())

    def command(self, job: Job) -> list[str]:
        """The trainer's command line (BASE_DATA_DIR is already joined into the export). A
        server's network starts from the shared network's weights and is always published into
        its run's own folder (`--force`): `NetworkJudge` decides what the server gets."""
        if job.scope != SHARED_MODEL:
            assert self.judge is not None
            return [
                *self._trainer(job, f"trained for a server (training {job.record.id})"),
                "--force",
                "--init",
                str(self.judge.start_from()),
            ]
        return [
            *self._trainer(job, f"retrained from Discord (training {job.record.id})"),
            *(["--force"] if job.options.force else []),
        ]

    def _trainer(self, job: Job, notes: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            TRAINER_MODULE,
            "--data",
            str(job.work.data),
            "--holdout",
            str(job.holdout or job.work.holdout),
            "--model",
            str(job.target),
            "--work",
            str(job.work.path),
            "--epochs",
            str(job.options.epochs),
            "--min-images",
            str(self.settings.retrain_min_images),
            "--notes",  # no name: `!model` shows the notes to every server
            notes,
        ]

    # -- watching -----------------------------------------------------------------------------

    async def _watch(self, job: Job) -> None:
        result = ending(Status.FAILED, "the trainer did not start")
        try:
            with open(job.work.output, "wb") as output:
                job.process = await asyncio.create_subprocess_exec(
                    *self.command(job),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    env=trainer_environment(),
                    preexec_fn=die_with_parent(),
                )
            await self._follow(job, job.process)
            result = self._read_result(job)
        except asyncio.CancelledError:
            await self._stop_process(job)
            restarted = "the bot restarted during the training"
            await self._finish(job, ending(Status.INTERRUPTED, restarted))
            raise
        except Exception as error:
            log.exception("training %s failed in the bot", job.record.id)
            await self._stop_process(job)
            result = ending(Status.FAILED, f"the bot could not run the trainer: {error}")
        await self._finish(job, result)

    async def _follow(self, job: Job, process: asyncio.subprocess.Process) -> None:
        """Until the trainer ends: show its progress, and stop it when another process asks."""
        shown = ""
        prefix = self.settings.command_prefix
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout=PROGRESS_EVERY)
            if process.returncode is not None:
                return
            events = read_progress(job.work.progress)
            text = progress_text(events, job.options, job.user.mention, prefix)
            if text != shown:
                shown = text
                with contextlib.suppress(discord.HTTPException):
                    await job.message.edit(content=text)
            beat = None
            with contextlib.suppress(Exception):
                beat = await asyncio.to_thread(self.store.trainings.heartbeat, job.record.id)
            if beat is not None and beat.cancel_requested and job.cancelled_by is None:
                # `!retrain cancel` in another process: stop it as if typed here.
                job.cancelled_by = self.notifier.name_of(beat.cancel_requested_by)
                log.info("training %s: cancelled from another process", job.record.id)
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)

    def _read_result(self, job: Job) -> TrainerResult:
        """The trainer's result, or the failure that explains why there is none."""
        try:
            result = TrainerResult.read(job.work.result)
        except ProtocolError as error:
            log.error("training %s: %s", job.record.id, error)
            return ending(Status.FAILED, f"the trainer's result could not be read ({error})")
        if result is None:
            code = job.process.returncode if job.process is not None else None
            return ending(
                Status.FAILED,
                f"the trainer stopped without a result (exit code {code}); "
                f"its log is in the bot's DATA_DIR, trainings/{job.record.id}",
            )
        if job.cancelled_by is not None and result.status == Status.CANCELLED:
            return result.model_copy(update={"reason": f"cancelled by {job.cancelled_by}"})
        return result.model_copy(update={"reason": scrub_paths(result.reason)})  # no host path

    async def _finish(self, job: Job, result: TrainerResult) -> None:
        if job.scope != SHARED_MODEL:
            await self._finish_network(job, result)
            return
        published = result.status == Status.PUBLISHED
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                self.store.trainings.finish,
                job.record.id,
                result.status.value,
                result=finite(result.model_dump(mode="json", exclude_defaults=True)),
                version=result.version if published else None,
            )
        if published:
            self.serve(job.target)
        self.jobs.pop(job.scope, None)
        judged_by = OPERATORS_HOLDOUT if job.holdout is not None else SHARED_HOLDOUT
        text = final_text(result, self.settings.command_prefix, judged_by)
        plots = (Path(p) for p in (result.plots.curves, result.plots.confusion) if p)
        files = [discord.File(path, filename=path.name) for path in plots if path.is_file()]
        await self._edit(job, text)
        await self._attach(job, files)
        await asyncio.to_thread(self._tidy, job.work)

    async def _attach(self, job: Job, files: list[discord.File]) -> None:
        """Post a finished training's pictures as a reply to its message, which was edited."""
        if files:
            with contextlib.suppress(discord.HTTPException):
                await job.message.reply(files=files, mention_author=False)

    async def _finish_network(self, job: Job, result: TrainerResult) -> None:
        """A server's network training ended: if the trainer made a candidate, `NetworkJudge`
        scores it on the server's holdout and publishes it only if it wins; say which."""
        prefix = self.settings.command_prefix
        status, version, text, outcome = result.status, None, "", None
        record = finite(result.model_dump(mode="json", exclude_defaults=True))
        if status == Status.PUBLISHED and self.judge is not None:  # into the run's own folder
            try:
                outcome = await self.judge.judge(
                    job.scope,
                    job.target,
                    job.record.params.get("counts") or {},
                    force=job.options.force,
                    figures={"epochs": job.options.epochs, "training": job.record.id},
                )
            except Exception as error:
                reason = str(error)
                if not isinstance(error, UserFacingError):  # its text may name host paths
                    log.exception("training %s: judging the server's network failed", job.record.id)
                    reason = "the new network could not be scored or published (see the log)."
                status, text = Status.FAILED, f"**Training failed**: {reason}"
                record = {"reason": reason}
            else:
                status, version, text = outcome.status, outcome.published, outcome.text(prefix)
                record = outcome.record()
        else:
            log.info("training %s: %s: %s", job.record.id, result.status, result.reason)
            text = ending_text(result, job.cancelled_by, prefix)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                self.store.trainings.finish,
                job.record.id,
                status.value,
                result=record,
                version=version,
            )
        self.jobs.pop(job.scope, None)
        await self._edit(job, text)
        if outcome is not None and self.judge is not None:
            await self._attach(job, await self.judge.pictures(outcome, job.scope))
        await asyncio.to_thread(self._tidy, job.work)

    def _tidy(self, work: WorkFolder) -> None:
        """Drop the exported images (links) and a server's candidate network of a finished
        run, and runs beyond the last few."""
        for folder in (work.data, work.holdout, work.path / "candidate"):
            shutil.rmtree(folder, ignore_errors=True)
        runs = sorted(
            (p for p in self.runs.iterdir() if p.is_dir() and p.name.isdigit()),
            key=lambda p: int(p.name),
        )
        for old in runs[:-KEEP_RUNS]:
            shutil.rmtree(old, ignore_errors=True)

    # -- stopping -----------------------------------------------------------------------------

    async def running(self, scope: int | None = None) -> TrainingRecord | None:
        """The training that runs (of the model `scope`; None: of any), in this process or in
        another one on the same database; a lock whose process is gone (no heartbeat, or its
        process ended) is freed first, and its progress message says so."""
        return await self._running(SHARED_MODEL if scope is None else scope)

    async def _running(self, scope: int) -> TrainingRecord | None:
        job = self.jobs.get(scope)
        store = self._store
        if store is None:
            return job.record if job is not None else None

        def look() -> tuple[list[TrainingRecord], TrainingRecord | None]:
            return store.trainings.recover_interrupted(), store.trainings.running(scope)

        try:
            stale, record = await asyncio.to_thread(look)
        except Exception:  # the database is out of reach: say what this process knows
            log.exception("could not read the running training")
            return job.record if job is not None else None
        await self._say_interrupted(stale, "its bot process stopped answering")
        return record

    def is_local(self, record: TrainingRecord) -> bool:
        """Whether this process runs `record`'s trainer."""
        return any(job.record.id == record.id for job in self.jobs.values())

    def running_text(self, record: TrainingRecord, *, operator: bool = True) -> str:
        """`!model`'s line about the training that runs (here or in another process); with
        names and hosts only for an `operator`."""
        by = self.notifier.name_of(record.cancel_requested_by) if record.cancel_requested else None
        return running_text(record, self.is_local(record), by, operator=operator)

    async def cancel(self, user: discord.abc.User, scope: int = SHARED_MODEL) -> bool:
        """Stop the running training of the model `scope`, wherever it runs; False when none
        runs. This process's trainer gets SIGTERM at once; another process's is asked through
        the database, and that process stops it at its next heartbeat."""
        job = self.jobs.get(scope)
        waiting = await self.waiting(scope)
        if waiting is not None:
            try:  # its process (this one or another) says so at its next turn
                await asyncio.to_thread(self.store.trainings.withdraw, waiting[0].id, by=user.id)
            except DatasetError:  # it left the queue meanwhile
                return await self.cancel(user, scope)
            return True
        if job is not None and job.process is not None and job.process.returncode is None:
            job.cancelled_by = user.display_name
            with contextlib.suppress(ProcessLookupError):
                job.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(Exception):  # recorded too, for the others' `!model`
                await asyncio.to_thread(
                    self.store.trainings.request_cancel, job.record.id, by=user.id
                )
            return True
        record = job.record if job is not None else await self.running(scope)
        if record is None:
            return False
        try:
            await asyncio.to_thread(self.store.trainings.request_cancel, record.id, by=user.id)
        except DatasetError:  # it ended meanwhile
            return False
        return True

    async def _stop_process(self, job: Job) -> None:
        process = job.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def shutdown(self) -> None:
        """The bot is stopping: stop the trainers, record the trainings as interrupted. Safe to
        call again while or after it runs."""
        tasks = [job.task for job in list(self.jobs.values()) if job.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def recover(self) -> None:
        """At start-up: trainings a dead bot left running are interrupted; say so where they
        were shown. A database out of reach is one line in the log, not an error."""
        if self._store is None:
            return
        try:
            stale = await asyncio.to_thread(self._store.trainings.recover_interrupted)
        except Exception as error:
            log.error(
                "could not look for trainings a previous run left running: %s: %s",
                type(error).__name__,
                str(error).splitlines()[0][:300] if str(error) else "no details",
            )
            return
        for record in stale:
            log.warning("training %s was interrupted by a restart of the bot", record.id)
        await self._say_interrupted(stale, "the bot restarted during it")

    async def _say_interrupted(self, records: list[TrainingRecord], why: str) -> None:
        """Edit the progress messages of trainings found interrupted."""
        prefix = self.settings.command_prefix
        for record in records:
            if record.channel_id is not None and record.message_id is not None:
                network = record.scope != SHARED_MODEL
                text = interrupted_text(why, prefix, network=network)
                await self.notifier.edit(record.channel_id, record.message_id, text)
