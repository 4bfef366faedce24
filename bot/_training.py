"""`!retrain`: one training at a time, in its own process, shown by editing one message.

TensorFlow takes gigabytes, so the network is never trained in the bot's process: the bot exports
the dataset (hard links, no copies) into a folder of its own, joins `BASE_DATA_DIR`, and runs
`python -m training.retrain` beside it, at a lower priority. The trainer writes its progress as
JSON lines and its outcome as `result.json` (see `training.retrain`); the bot reads them every
few seconds, edits its progress message, and when the trainer ends says what happened.

The lock is a row in the database (`DatasetStore.trainings.start`), so it outlives a crash: a bot
that died while training left a `running` row behind, which the next start marks `interrupted`
(and says so in the progress message); a trainer whose bot died stops by itself
(`die_with_parent`).
It is also shared by every bot process on the database (a cluster of shards): one training runs
across all of them, `!model` in any of them shows it, and `!retrain cancel` typed in one that
does not run the trainer is recorded on the row (`Trainings.request_cancel`); the process
that runs it reads the request from its next heartbeat, every `PROGRESS_EVERY` seconds, and
stops its trainer as if the command had been typed there.
Nothing a moderator types loses data: the trainer publishes a new numbered version only when it
is not worse on the holdout, and a failed, refused or cancelled run changes neither the model nor
the dataset.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord

from bot._images import UserFacingError
from bot._models import loader_for, prepare_retrained_folder
from bot.processes import die_with_parent
from dataset import DatasetError, DatasetStore, TrainingBusy, TrainingRecord
from model.preprocess import IMAGE_TYPES

if TYPE_CHECKING:
    from bot.client import JediSithBot

log = logging.getLogger(__name__)

DEFAULT_EPOCHS = 29  # the notebook's
PROGRESS_EVERY = 3.0  # seconds between looks at the trainer's progress
STOP_GRACE = 5.0  # seconds a trainer gets to stop cleanly before it is killed
KEEP_RUNS = 5  # trainings' work folders kept (logs, plots, result.json)
STAGES = {
    "loading": "loading the images",
    "training": "training",
    "fitting": "fitting the detector and the calibration",
    "exporting": "exporting the model",
    "evaluating": "comparing it with the current model on the holdout",
    "publishing": "publishing it",
}
UNCHANGED = "The current model and the dataset are unchanged."


@dataclass(frozen=True)
class RetrainOptions:
    epochs: int = DEFAULT_EPOCHS
    force: bool = False


def parse_options(words: list[str], max_epochs: int) -> RetrainOptions:
    """`force` and `epochs=N`, in any order; anything else is a clear error."""
    epochs, force = DEFAULT_EPOCHS, False
    for word in words:
        key, _, value = word.lower().partition("=")
        if key == "force" and not value:
            force = True
        elif key == "epochs" and value.isdigit() and 1 <= int(value) <= max_epochs:
            epochs = int(value)
        elif key == "epochs":
            raise UserFacingError(f"`epochs=` takes a whole number from 1 to {max_epochs}.")
        else:
            raise UserFacingError(
                f"I don't know `{word[:40]}`. Try `retrain`, `retrain epochs=10`, "
                "`retrain force` or `retrain cancel`."
            )
    return RetrainOptions(epochs, force)


def count_images(folder: Path | None, class_names: tuple[str, ...]) -> dict[str, int]:
    """Image files per class folder of `folder` (the base set), by extension."""
    counts = dict.fromkeys(class_names, 0)
    if folder is None:
        return counts
    for name in class_names:
        path = Path(folder) / name
        if path.is_dir():
            counts[name] = sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_TYPES)
    return counts


@dataclass
class Job:
    record: TrainingRecord
    options: RetrainOptions
    work: Path
    target: Path  # the model folder the candidate is published into
    message: discord.Message
    user: discord.abc.User
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    cancelled_by: str | None = None  # who asked it to stop, as shown in the final message
    started: float = field(default_factory=time.monotonic)


class Retrainer:
    """Starts, watches, cancels and reports the bot's one training."""

    def __init__(self, bot: JediSithBot) -> None:
        self.bot = bot
        self.job: Job | None = None

    @property
    def store(self) -> DatasetStore:
        if self.bot.dataset is None:
            raise UserFacingError("Learning is not set up on this bot (it has no dataset).")
        return self.bot.dataset

    @property
    def runs(self) -> Path:
        return self.bot.settings.data_dir / "trainings"

    # -- starting -----------------------------------------------------------------------------

    async def check_counts(self) -> dict[str, int]:
        """Images per class a retrain would learn from; `UserFacingError` if too few."""
        settings = self.bot.settings
        names = tuple(self.bot.worker.classifier.info.class_names)
        summary = await asyncio.to_thread(self.store.summary)
        base = await asyncio.to_thread(count_images, settings.base_data_dir, names)
        counts = {n: summary.counts.get(n, {}).get("train", 0) + base[n] for n in names}
        short = {n: settings.retrain_min_images - c for n, c in counts.items()}
        missing = {n: k for n, k in short.items() if k > 0}
        if missing:
            have = " and ".join(f"{counts[n]} {n.capitalize()}" for n in names)
            need = " and ".join(f"{k} more {n.capitalize()}" for n, k in missing.items())
            raise UserFacingError(
                f"I need at least {settings.retrain_min_images} labelled images of each class "
                f"to train, not counting the holdout; I have {have}: {need} needed. Label them "
                f"with the buttons under my verdicts or `{settings.command_prefix}teach`."
            )
        return counts

    async def start(
        self,
        options: RetrainOptions,
        user: discord.abc.User,
        channel: discord.abc.Messageable,
        guild: discord.Guild | None,
        send: Any,
    ) -> None:
        """Take the lock, export, start the trainer and its watcher; `send(text)` posts the
        progress message. Raises `UserFacingError` for anything the moderator can fix."""
        if self.job is not None:
            raise UserFacingError(self.busy_text(self.job.record))
        counts = await self.check_counts()
        settings = self.bot.settings
        params = {"epochs": options.epochs, "force": options.force, "counts": counts}
        try:
            record = await asyncio.to_thread(
                self.store.trainings.start,
                guild_id=guild.id if guild else None,
                channel_id=getattr(channel, "id", None),
                user_id=user.id,
                pid=os.getpid(),
                params=params,
            )
        except TrainingBusy as busy:
            raise UserFacingError(self.busy_text(busy.training)) from None
        try:
            work = self.runs / str(record.id)
            target = await asyncio.to_thread(
                prepare_retrained_folder, settings.model_path, settings.data_dir
            )
            await asyncio.to_thread(self._export, work)
            message = await send(self.progress_text([], options, user))
        except BaseException as error:
            reason = (
                str(error) if isinstance(error, UserFacingError) else f"could not start: {error}"
            )
            await asyncio.to_thread(
                self.store.trainings.finish, record.id, "failed", result={"reason": reason}
            )
            raise
        job = Job(record, options, work, target, message, user)
        self.job = job
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                self.store.trainings.heartbeat, record.id, message_id=message.id
            )
        job.task = asyncio.create_task(self._watch(job), name=f"training-{record.id}")

    def _export(self, work: Path) -> None:
        """The dataset's training share, joined with BASE_DATA_DIR, and the holdout, in `work`."""
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        self.store.export(work / "data", holdout=False)
        self.store.export(work / "holdout", holdout=True)
        base = self.bot.settings.base_data_dir
        if base is None:
            return
        for name in self.bot.worker.classifier.info.class_names:
            folder = Path(base) / name
            if not folder.is_dir():
                continue
            (work / "data" / name).mkdir(parents=True, exist_ok=True)
            for index, path in enumerate(sorted(folder.iterdir())):
                if path.suffix.lower() in IMAGE_TYPES:
                    link = work / "data" / name / f"base-{index:06d}{path.suffix.lower()}"
                    link.symlink_to(path.resolve())

    def command(self, job: Job) -> list[str]:
        """The trainer's command line (BASE_DATA_DIR is already joined into the export)."""
        return [
            sys.executable,
            "-m",
            "training.retrain",
            "--data",
            str(job.work / "data"),
            "--holdout",
            str(job.work / "holdout"),
            "--model",
            str(job.target),
            "--work",
            str(job.work),
            "--epochs",
            str(job.options.epochs),
            "--min-images",
            str(self.bot.settings.retrain_min_images),
            "--notes",
            f"retrained from Discord by {job.user} (training {job.record.id})",
            *(["--force"] if job.options.force else []),
        ]

    # -- watching -----------------------------------------------------------------------------

    async def _watch(self, job: Job) -> None:
        status, result = "failed", {"reason": "the trainer did not start"}
        try:
            with open(job.work / "trainer.out", "wb") as output:
                job.process = await asyncio.create_subprocess_exec(
                    *self.command(job),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                    preexec_fn=die_with_parent(),
                )
            shown = ""
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(job.process.wait(), timeout=PROGRESS_EVERY)
                if job.process.returncode is not None:
                    break
                text = self.progress_text(read_progress(job.work), job.options, job.user, job)
                if text != shown:
                    shown = text
                    with contextlib.suppress(discord.HTTPException):
                        await job.message.edit(content=text)
                beat = None
                with contextlib.suppress(Exception):
                    beat = await asyncio.to_thread(self.store.trainings.heartbeat, job.record.id)
                if beat is not None and beat.cancel_requested and job.cancelled_by is None:
                    # `!retrain cancel` in another process: stop it as if typed here.
                    job.cancelled_by = self._name_of(beat.cancel_requested_by)
                    log.info("training %s: cancelled from another process", job.record.id)
                    with contextlib.suppress(ProcessLookupError):
                        job.process.send_signal(signal.SIGTERM)
            result = read_result(job.work) or {
                "status": "failed",
                "reason": f"the trainer stopped without a result (exit code "
                f"{job.process.returncode}); its log is in {job.work}",
            }
            status = str(result.get("status", "failed"))
            if job.cancelled_by is not None and status == "cancelled":
                result["reason"] = f"cancelled by {job.cancelled_by}"
        except asyncio.CancelledError:
            await self._stop_process(job)
            status, result = "interrupted", {"reason": "the bot restarted during the training"}
            await self._finish(job, status, result)
            raise
        except Exception as error:
            log.exception("training %s failed in the bot", job.record.id)
            await self._stop_process(job)
            status, result = "failed", {"reason": f"the bot could not run the trainer: {error}"}
        await self._finish(job, status, result)

    async def _finish(self, job: Job, status: str, result: dict[str, Any]) -> None:
        version = result.get("version") if status == "published" else None
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                self.store.trainings.finish, job.record.id, status, result=result, version=version
            )
        if status == "published":
            self._serve(job.target)
        self.job = None
        text = final_text(status, result, job, self.bot.settings.command_prefix)
        files = [
            discord.File(path, filename=path.name)
            for path in (Path(p) for p in (result.get("plots") or {}).values() if p)
            if path.is_file()
        ]
        with contextlib.suppress(discord.HTTPException):
            await job.message.edit(content=text)
        if files:
            with contextlib.suppress(discord.HTTPException):
                await job.message.reply(files=files, mention_author=False)
        await asyncio.to_thread(self._tidy, job.work)

    def _serve(self, folder: Path) -> None:
        """After a publish into `folder`: make sure the worker serves from it."""
        worker = self.bot.worker
        if worker.folder is not None and Path(worker.folder).resolve() == folder.resolve():
            return  # its hot reload picks the new version up
        worker.follow(folder, loader_for(folder, self.bot.settings.model_backend))

    def _tidy(self, work: Path) -> None:
        """Drop the exported images (links) of a finished run, and runs beyond the last few."""
        for name in ("data", "holdout"):
            shutil.rmtree(work / name, ignore_errors=True)
        runs = sorted(
            (p for p in self.runs.iterdir() if p.is_dir() and p.name.isdigit()),
            key=lambda p: int(p.name),
        )
        for old in runs[:-KEEP_RUNS]:
            shutil.rmtree(old, ignore_errors=True)

    # -- stopping -----------------------------------------------------------------------------

    async def running(self) -> TrainingRecord | None:
        """The training that runs, in this process or in another one on the same database; a
        lock whose process is gone (no heartbeat, or its process ended) is freed first, and
        its progress message says so."""
        job = self.job
        if self.bot.dataset is None:
            return job.record if job is not None else None
        store = self.bot.dataset

        def look() -> tuple[list[TrainingRecord], TrainingRecord | None]:
            return store.trainings.recover_interrupted(), store.trainings.running()

        try:
            stale, record = await asyncio.to_thread(look)
        except Exception:  # the database is out of reach: say what this process knows
            log.exception("could not read the running training")
            return job.record if job is not None else None
        await self._say_interrupted(stale, "its bot process stopped answering")
        return record

    def is_local(self, record: TrainingRecord) -> bool:
        """Whether this process runs `record`'s trainer."""
        return self.job is not None and self.job.record.id == record.id

    async def cancel(self, user: discord.abc.User) -> bool:
        """Stop the running training, wherever it runs; False when none runs. This process's
        trainer gets SIGTERM at once; another process's is asked through the database, and
        that process stops it at its next heartbeat."""
        job = self.job
        if job is not None and job.process is not None and job.process.returncode is None:
            job.cancelled_by = user.display_name
            with contextlib.suppress(ProcessLookupError):
                job.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(Exception):  # recorded too, for the others' `!model`
                await asyncio.to_thread(
                    self.store.trainings.request_cancel, job.record.id, by=user.id
                )
            return True
        record = job.record if job is not None else await self.running()
        if record is None:
            return False
        try:
            await asyncio.to_thread(self.store.trainings.request_cancel, record.id, by=user.id)
        except DatasetError:  # it ended meanwhile
            return False
        return True

    def _name_of(self, user_id: int | None) -> str:
        user = self.bot.get_user(user_id) if user_id is not None else None
        if user is not None:
            return user.display_name
        return f"<@{user_id}>" if user_id is not None else "someone"

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
        """The bot is stopping: stop the trainer, record the training as interrupted."""
        job = self.job
        if job is None or job.task is None:
            return
        job.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await job.task

    async def recover(self) -> None:
        """At start-up: trainings a dead bot left running are interrupted; say so where they
        were shown."""
        try:
            stale = await asyncio.to_thread(self.store.trainings.recover_interrupted)
        except UserFacingError:
            return
        for record in stale:
            log.warning("training %s was interrupted by a restart of the bot", record.id)
        await self._say_interrupted(stale, "the bot restarted during it")

    async def _say_interrupted(self, records: list[TrainingRecord], why: str) -> None:
        """Edit the progress messages of trainings found interrupted (those this process can
        see: another shard's channel is not in its cache)."""
        for record in records:
            if record.channel_id is None or record.message_id is None:
                continue
            channel = self.bot.get_channel(record.channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                continue
            text = (
                f"**Training interrupted**: {why}. "
                f"{UNCHANGED} `{self.bot.settings.command_prefix}retrain` starts again."
            )
            with contextlib.suppress(discord.HTTPException):
                await channel.get_partial_message(record.message_id).edit(content=text)  # type: ignore[attr-defined]

    # -- words --------------------------------------------------------------------------------

    def running_text(self, record: TrainingRecord) -> str:
        """`!model`'s line about the training that runs (here or in another process)."""
        started = int(record.started_at.timestamp())
        text = f"-# A training is running, started by <@{record.user_id}> <t:{started}:R>"
        if not self.is_local(record):
            text += f", in another of my processes ({record.host}, pid {record.pid})"
        if record.cancel_requested:
            text += f"; {self._name_of(record.cancel_requested_by)} asked it to stop"
        return text + "."

    def busy_text(self, record: TrainingRecord) -> str:
        started = int(record.started_at.timestamp())
        return (
            f"A training is already running (started by <@{record.user_id}> <t:{started}:R>); "
            f"`{self.bot.settings.command_prefix}retrain cancel` stops it."
        )

    def progress_text(
        self,
        progress: list[dict[str, Any]],
        options: RetrainOptions | None,
        user: discord.abc.User,
        job: Job | None = None,
    ) -> str:
        p = self.bot.settings.command_prefix
        head = f"**Training** a new model for {user.mention}"
        if options is not None and options.force:
            head += " (force: published even if worse)"
        state = "starting the trainer"
        epochs = [e for e in progress if e.get("event") == "epoch"]
        stages = [e for e in progress if e.get("event") == "stage"]
        if stages:
            state = STAGES.get(str(stages[-1].get("stage")), str(stages[-1].get("stage")))
        if epochs and (not stages or stages[-1].get("stage") == "training"):
            last = epochs[-1]
            state = f"epoch {last.get('epoch')}/{last.get('epochs')}"
            if last.get("val_accuracy") is not None:
                state += f" · validation accuracy {float(last['val_accuracy']):.1%}"
            if last.get("eta_s") is not None:
                state += f" · about {_duration(float(last['eta_s']))} left"
        return (
            f"{head}: {state}.\n-# The current model keeps serving meanwhile; "
            f"`{p}retrain cancel` stops the training."
        )


def read_progress(work: Path) -> list[dict[str, Any]]:
    """The trainer's progress lines so far (a half-written last line is skipped)."""
    try:
        text = (work / "progress.jsonl").read_text(encoding="utf-8")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict):
                events.append(item)
    return events


def read_result(work: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((work / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def final_text(status: str, result: dict[str, Any], job: Job, prefix: str) -> str:
    reason = str(result.get("reason") or "").rstrip(".")
    before, after = result.get("before") or {}, result.get("after") or {}
    comparison = ""
    if before.get("accuracy") is not None and after.get("accuracy") is not None:
        comparison = (
            f"Holdout accuracy {float(before['accuracy']):.1%} → {float(after['accuracy']):.1%} "
            f"({after.get('images', '?')} images never trained on)."
        )
    if status == "published":
        lines = [f"**New model published: version {result.get('version')}.** {comparison}"]
        calibration = result.get("calibration") or {}
        if calibration.get("ece_after") is not None:
            lines.append(
                f"Calibration error {float(calibration.get('ece_before', 0)):.1%} → "
                f"{float(calibration['ece_after']):.1%}"
                + (
                    f" (temperature {float(calibration['temperature']):.2f})."
                    if calibration.get("temperature") is not None
                    else "."
                )
            )
        ood = result.get("ood") or {}
        if ood.get("threshold") is not None:
            refused = ood.get("validation_refused")
            lines.append(
                f"Unlike-image threshold {float(ood['threshold']):.2f}"
                + (
                    f"; {float(refused):.1%} of validation images refused."
                    if refused is not None
                    else "."
                )
            )
        if reason:
            lines.append(f"-# {reason}.")
        lines.append(f"-# `{prefix}rollback` brings back the previous version.")
        return "\n".join(lines)
    if status == "refused":
        return (
            f"**Not published**: {reason or 'the new model is worse on the holdout'}. {comparison} "
            f"{UNCHANGED} `{prefix}retrain force` publishes it anyway."
        ).replace("  ", " ")
    if status == "cancelled":
        return f"**Training cancelled**: {reason or 'stopped'}. {UNCHANGED}"
    if status == "interrupted":
        return f"**Training interrupted**: {reason}. {UNCHANGED} `{prefix}retrain` starts again."
    return f"**Training failed**: {reason or 'the trainer failed'}. {UNCHANGED}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min"
