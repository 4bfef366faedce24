"""The trainings table and the training locks it holds, one per scope (a server's model, or 0:
the operator's default model).

A scope's row with status "running" is its lock, shared by every process on the database. It
survives a crash of the bot because it is a row, not a process: a starter first marks running
rows whose heartbeat is stale (or whose process is gone) as interrupted, and a unique partial
index admits at most one running row per scope, so two starters racing cannot both win. A
process that does not run the training can still ask it to stop (`request_cancel`); the one
that runs it reads the request from its heartbeat's answer.

Full trainings are CPU-bound: at most `max_running` run at once across the cluster. `enqueue`
adds a "queued" row (one per scope), and every process that waits calls `take_turn` every few
seconds (its heartbeat while it waits), which promotes the oldest queued rows into the free
slots: first come, first served. A running full training holds a slot (0 to max_running - 1)
that a unique index admits once, so two processes promoting at once cannot overrun the limit
(on PostgreSQL an advisory lock serialises the promotions, which claim the queued rows with
`FOR UPDATE SKIP LOCKED`, passing over one that is being taken out of the queue; on SQLite the
write lock serialises them). A queued row whose process is gone is
marked interrupted like a running one.

Each training's work folder is `DATA_DIR/trainings/<id>/` (`training.protocol.WorkFolder`), with
copies of the images it learns from. A folder no running or queued training uses is stale: at
start-up (`recover_interrupted`) and at every `!forget` (`clean_work_folders`) its images go,
and the whole folder of an interrupted training (or of none) goes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dataset.forgetting import remove_work_folder
from dataset.records import (
    FINAL_STATUSES,
    QUEUED,
    RUNNING,
    TRAINING_KINDS,
    DatasetError,
    TrainingBusy,
    TrainingRecord,
)
from dataset.schema import Training

log = logging.getLogger(__name__)

HOST = socket.gethostname()
INTERRUPTED = "interrupted"
STALE_AFTER = 120.0  # seconds without a heartbeat after which a running training is stale
TRAININGS_FOLDER = "trainings"  # DATA_DIR/trainings/<id>/: each training's work folder
QUEUE_LOCK = 0x6A656469  # the PostgreSQL advisory lock of the queue's promotions ("jedi")
_ATTEMPTS = 3  # a start that lost the race for the lock looks at the winner this often


class Trainings:
    """The trainings of one dataset (`DatasetStore.trainings`): the lock and the history.

    `reading` and `writing` are the store's session factories; a `writing` transaction takes
    SQLite's write lock as it begins. `runs` holds the work folders (None: none to clean)."""

    def __init__(
        self,
        reading: sessionmaker[Session],
        writing: sessionmaker[Session],
        runs: Path | None = None,
    ) -> None:
        self._reading = reading
        self._writing = writing
        self.runs = runs

    def start(
        self,
        *,
        scope: int,
        kind: str = "full",
        guild_id: int | None,
        channel_id: int | None,
        user_id: int | None,
        pid: int,
        params: dict[str, Any],
        stale_after: float = STALE_AFTER,
    ) -> TrainingRecord:
        """Take the lock of `scope` (a server's id, 0: the default model) for a training of
        `kind` ("head" or "full") asked for in `guild_id`: a new running row, or `TrainingBusy`
        naming the one running in that scope.
        Running rows that are stale (no heartbeat for `stale_after` s, or their process gone)
        are marked interrupted first."""
        params = _json_object(params, "training parameters")
        if kind not in TRAINING_KINDS:
            raise DatasetError(f"a training is {' or '.join(TRAINING_KINDS)}, not {kind!r}")
        for _ in range(_ATTEMPTS):
            try:
                with self._writing.begin() as session:
                    _mark_interrupted(session, stale_after=stale_after, all_running=False)
                    running = _running_row(session, scope)
                    if running is not None:
                        raise TrainingBusy(_record(running))
                    row = _new_row(RUNNING, scope, kind, guild_id, channel_id, user_id, pid, params)
                    session.add(row)
                    session.flush()
                    record = _record(row)
                log.info("training %d started (pid %d)", record.id, pid)
                return record
            except IntegrityError:  # another starter inserted its running row first
                with self._reading.begin() as session:
                    running = _running_row(session, scope)
                    if running is not None:
                        raise TrainingBusy(_record(running)) from None
        raise DatasetError("could not start a training: others kept starting at the same time")

    def enqueue(
        self,
        *,
        scope: int,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int | None,
        pid: int,
        params: dict[str, Any],
        max_running: int,
        stale_after: float = STALE_AFTER,
    ) -> TrainingRecord:
        """Queue a full training of `scope`, and give it a slot at once if one is free and
        nobody waits before it: its row, "running" or "queued". `TrainingBusy` names the
        training of `scope` that already runs or waits."""
        params = _json_object(params, "training parameters")
        try:
            with self._writing.begin() as session:
                _mark_interrupted(session, stale_after=stale_after, all_running=False)
                for status in (RUNNING, QUEUED):
                    row = _scope_row(session, scope, status)
                    if row is not None:
                        raise TrainingBusy(_record(row))
                row = _new_row(QUEUED, scope, "full", guild_id, channel_id, user_id, pid, params)
                session.add(row)
                session.flush()
                training_id = row.id
        except IntegrityError:  # another process queued one for `scope` first
            with self._reading.begin() as session:
                for status in (RUNNING, QUEUED):
                    row = _scope_row(session, scope, status)
                    if row is not None:
                        raise TrainingBusy(_record(row)) from None
            raise DatasetError("could not queue the training: try again") from None
        log.info("training %d queued (pid %d)", training_id, pid)
        return self.take_turn(training_id, max_running=max_running, stale_after=stale_after)

    def take_turn(
        self, training_id: int, *, max_running: int, stale_after: float = STALE_AFTER
    ) -> TrainingRecord:
        """Promote the oldest queued trainings into the free slots, say that `training_id`'s
        process still waits (its heartbeat), and return its row: "running" once it has a slot,
        "queued" while it waits, or how it ended (cancelled from the queue, interrupted)."""
        for _ in range(_ATTEMPTS):
            try:
                with self._writing.begin() as session:
                    _lock_queue(session)
                    _mark_interrupted(session, stale_after=stale_after, all_running=False)
                    _promote(session, max_running)
                    row = _row(session, training_id)
                    if row.status == QUEUED:
                        row.heartbeat_at = _now()
                    session.flush()
                    return _record(row)
            except IntegrityError:  # another process took the slot first: look again
                continue
        with self._reading.begin() as session:
            return _record(_row(session, training_id))

    def place(self, training_id: int) -> int | None:
        """A queued training's place in the queue (1: the next to run); None if not queued."""
        with self._reading.begin() as session:
            row = _row(session, training_id)
            if row.status != QUEUED:
                return None
            ahead = session.scalar(
                select(func.count())
                .select_from(Training)
                .where(Training.status == QUEUED, Training.id < row.id)
            )
            return int(ahead or 0) + 1

    def queued(self, scope: int) -> TrainingRecord | None:
        """The training of `scope` that waits in the queue; None if none does."""
        with self._reading.begin() as session:
            row = _scope_row(session, scope, QUEUED)
            return _record(row) if row is not None else None

    def withdraw(self, training_id: int, *, by: int | None) -> TrainingRecord:
        """Take a queued training out of the queue (cancelled, by `by`); its process sees it at
        its next `take_turn`. One that is no longer queued is a `DatasetError`."""
        with self._writing.begin() as session:
            row = _row(session, training_id)
            if row.status != QUEUED:
                raise DatasetError(f"training {training_id} is not queued ({row.status})")
            now = _now()
            row.status, row.finished_at = "cancelled", now
            row.cancel_requested_by, row.cancel_requested_at = by, now
            row.result = {"status": "cancelled", "reason": "removed from the queue"}
            session.flush()
            record = _record(row)
        log.info("training %d: removed from the queue by %s", training_id, by)
        return record

    def heartbeat(
        self, training_id: int, *, pid: int | None = None, message_id: int | None = None
    ) -> TrainingRecord:
        """Say the training is alive, running or queued (and, if given, its process and
        progress message), and return its row: `cancel_requested` says whether someone asked it
        to stop. A training no longer running or queued (marked interrupted meanwhile) is a
        `DatasetError`: the lock was lost."""
        with self._writing.begin() as session:
            row = _row(session, training_id)
            if row.status not in (RUNNING, QUEUED):
                raise DatasetError(f"training {training_id} is no longer running ({row.status})")
            row.heartbeat_at = _now()
            if pid is not None:
                row.pid, row.host = pid, HOST
            if message_id is not None:
                row.message_id = message_id
            session.flush()
            return _record(row)

    def request_cancel(self, training_id: int, *, by: int | None) -> TrainingRecord:
        """Ask a running training to stop, for a process that does not run it: the one that
        does sees the request on its next heartbeat. The first request is kept (asking again
        changes nothing); a training that is not running is a `DatasetError`."""
        with self._writing.begin() as session:
            row = _row(session, training_id)
            if row.status != RUNNING:
                raise DatasetError(f"training {training_id} is not running ({row.status})")
            if row.cancel_requested_at is None:
                row.cancel_requested_by, row.cancel_requested_at = by, _now()
                log.info("training %d: cancellation asked by %s", training_id, by)
            session.flush()
            return _record(row)

    def finish(
        self,
        training_id: int,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> TrainingRecord:
        """End a training with a final status (releasing the lock); `result` replaces the
        recorded one when given. A training marked interrupted can still be finished (its
        process outlived the heartbeat); one that already ended otherwise cannot."""
        if status not in FINAL_STATUSES:
            ends = ", ".join(FINAL_STATUSES)
            raise DatasetError(f"a training ends as one of {ends}, not {status!r}")
        result = _json_object(result, "training result") if result is not None else None
        with self._writing.begin() as session:
            row = _row(session, training_id)
            if row.status not in (RUNNING, INTERRUPTED):
                raise DatasetError(f"training {training_id} has already ended ({row.status})")
            row.status, row.finished_at = status, _now()
            if result is not None:
                row.result = result
            if version is not None:
                row.version = version
            session.flush()
            record = _record(row)
        log.info("training %d ended: %s", training_id, status)
        return record

    def running(self, scope: int) -> TrainingRecord | None:
        """The training that holds the lock of `scope`; None when it is free."""
        with self._reading.begin() as session:
            row = _running_row(session, scope)
            return _record(row) if row is not None else None

    def recover_interrupted(
        self, *, stale_after: float = STALE_AFTER, all_running: bool = False
    ) -> list[TrainingRecord]:
        """Mark running trainings of any scope that are stale (or, with `all_running`, every
        one: the bot calls it so at start-up, when no training of its can still be running) as
        interrupted, and return them."""
        with self._writing.begin() as session:
            rows = _mark_interrupted(session, stale_after=stale_after, all_running=all_running)
            records = [_record(row) for row in rows]
        for record in records:
            log.warning("training %d was interrupted: %s", record.id, record.result[INTERRUPTED])
        self.clean_work_folders()
        return records

    def clean_work_folders(self) -> list[int]:
        """Delete the images of every work folder that no running or queued training uses, and
        the whole folder of an interrupted training or of one without a row; their ids."""
        if self.runs is None or not self.runs.is_dir():
            return []
        found = {int(p.name): p for p in self.runs.iterdir() if p.is_dir() and p.name.isdigit()}
        if not found:
            return []
        with self._reading.begin() as session:  # read after the listing: a new folder is kept
            query = select(Training.id, Training.status).where(Training.id.in_(list(found)))
            statuses = {i: status for i, status in session.execute(query)}
        stale = []
        for training_id, run in sorted(found.items()):
            status = statuses.get(training_id, INTERRUPTED)
            if status not in (RUNNING, QUEUED) and remove_work_folder(
                run, whole=status == INTERRUPTED
            ):
                stale.append(training_id)
        if stale:
            log.info("cleaned the work folders of trainings %s", ", ".join(map(str, stale)))
        return stale

    def latest(self, limit: int = 5, scope: int | None = None) -> list[TrainingRecord]:
        """The last `limit` trainings of `scope` (None: of every scope), newest first."""
        query = select(Training)
        if scope is not None:
            query = query.where(Training.scope == scope)
        with self._reading.begin() as session:
            rows = session.scalars(
                query.order_by(Training.started_at.desc(), Training.id.desc()).limit(limit)
            ).all()
            return [_record(row) for row in rows]


def _now() -> datetime:
    return datetime.now(UTC)


def _json_object(value: dict[str, Any], what: str) -> dict[str, Any]:
    """A JSON round trip of `value`: refuses what the database could not store, keeps no
    reference to the caller's (mutable) dict."""
    if not isinstance(value, dict):
        raise DatasetError(f"the {what} must be a dict, not {type(value).__name__}")
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise DatasetError(f"the {what} must be JSON: {error}") from None


def _running_row(session: Session, scope: int) -> Training | None:
    return _scope_row(session, scope, RUNNING)


def _scope_row(session: Session, scope: int, status: str) -> Training | None:
    """The row of `scope` with `status` "running" or "queued" (the indexes admit one)."""
    return session.scalars(
        select(Training).where(Training.status == status, Training.scope == scope)
    ).one_or_none()


def _lock_queue(session: Session) -> None:
    """On PostgreSQL, one promoter at a time (until the transaction ends), so that the slots go
    in the queue's order; SQLite's write transactions are serialised already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": QUEUE_LOCK})


def _promote(session: Session, max_running: int) -> None:
    """Give the free slots to the oldest queued trainings whose scope runs none. A slot taken
    meanwhile by another process is an `IntegrityError` at the flush (the caller retries)."""
    running = session.scalars(select(Training).where(Training.status == RUNNING)).all()
    taken = {row.slot for row in running if row.slot is not None}
    free = [slot for slot in range(max_running) if slot not in taken]
    if not free:
        return
    busy = {row.scope for row in running}
    waiting = session.scalars(
        select(Training)
        .where(Training.status == QUEUED)
        .order_by(Training.id)
        .limit(len(free) + len(busy))
        .with_for_update(skip_locked=True)
    ).all()
    now = _now()
    for row in waiting:
        if not free:
            break
        if row.scope in busy:  # a head fit of that scope runs: it waits for it
            continue
        row.status, row.slot = RUNNING, free.pop(0)
        row.started_at = row.heartbeat_at = now
        log.info("training %d left the queue for slot %d", row.id, row.slot)
    session.flush()


def _row(session: Session, training_id: int) -> Training:
    row = session.get(Training, training_id)
    if row is None:
        raise DatasetError(f"there is no training {training_id}")
    return row


def _mark_interrupted(session: Session, *, stale_after: float, all_running: bool) -> list[Training]:
    """Mark running and queued rows interrupted when stale, their process gone, or
    (`all_running`) all."""
    now = _now()
    marked = []
    for row in session.scalars(select(Training).where(Training.status.in_((RUNNING, QUEUED)))):
        reason = f"still {row.status} when every running training was recovered"
        if not all_running:
            reason = _why_stale(row, now, stale_after)
        if reason:
            row.status, row.finished_at = INTERRUPTED, now
            row.result = {**(row.result or {}), INTERRUPTED: reason}
            marked.append(row)
    session.flush()
    return marked


def _why_stale(row: Training, now: datetime, stale_after: float) -> str:
    """Why a running row cannot be running any more; "" when it may well be."""
    silent = (now - row.heartbeat_at).total_seconds()
    if silent > stale_after:
        return f"no heartbeat for {silent:.0f} s"
    if row.host == HOST and row.pid is not None and not _alive(row.pid):
        return f"its process {row.pid} on {row.host} has ended"
    return ""


def _alive(pid: int) -> bool:
    if pid <= 0:  # 0 and negatives would signal process groups
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's
        return True
    return True


def _new_row(
    status: str,
    scope: int,
    kind: str,
    guild_id: int | None,
    channel_id: int | None,
    user_id: int | None,
    pid: int,
    params: dict[str, Any],
) -> Training:
    """A new trainings row of this host, started and alive now."""
    now = _now()
    return Training(
        status=status,
        scope=scope,
        kind=kind,
        guild_id=guild_id,
        channel_id=channel_id,
        user_id=user_id,
        pid=pid,
        host=HOST,
        params=params,
        result={},
        started_at=now,
        heartbeat_at=now,
    )


def _record(row: Training) -> TrainingRecord:
    return TrainingRecord(
        id=row.id,
        status=row.status,
        guild_id=row.guild_id,
        channel_id=row.channel_id,
        message_id=row.message_id,
        user_id=row.user_id,
        pid=row.pid,
        host=row.host,
        params=dict(row.params or {}),
        result=dict(row.result or {}),
        version=row.version,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
        cancel_requested_by=row.cancel_requested_by,
        cancel_requested_at=row.cancel_requested_at,
        scope=row.scope,
        kind=row.kind,
        slot=row.slot,
    )
