"""The trainings table and the training locks it holds, one per scope (a server's model, or 0:
the operator's default model).

A scope's row with status "running" is its lock, shared by every process on the database. It
survives a crash of the bot because it is a row, not a process: a starter first marks running
rows whose heartbeat is stale (or whose process is gone) as interrupted, and a unique partial
index admits at most one running row per scope, so two starters racing cannot both win. A
process that does not run the training can still ask it to stop (`request_cancel`); the one
that runs it reads the request from its heartbeat's answer.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dataset.records import (
    FINAL_STATUSES,
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
_ATTEMPTS = 3  # a start that lost the race for the lock looks at the winner this often


class Trainings:
    """The trainings of one dataset (`DatasetStore.trainings`): the lock and the history.

    `reading` and `writing` are the store's session factories; a `writing` transaction takes
    SQLite's write lock as it begins."""

    def __init__(self, reading: sessionmaker[Session], writing: sessionmaker[Session]) -> None:
        self._reading = reading
        self._writing = writing

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
                    now = _now()
                    row = Training(
                        status=RUNNING,
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

    def heartbeat(
        self, training_id: int, *, pid: int | None = None, message_id: int | None = None
    ) -> TrainingRecord:
        """Say the training is alive (and, if given, its process and progress message), and
        return its row: `cancel_requested` says whether someone asked it to stop. A training
        no longer running (marked interrupted meanwhile) is a `DatasetError`: the lock was
        lost."""
        with self._writing.begin() as session:
            row = _row(session, training_id)
            if row.status != RUNNING:
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
        return records

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
    return session.scalars(
        select(Training).where(Training.status == RUNNING, Training.scope == scope)
    ).one_or_none()


def _row(session: Session, training_id: int) -> Training:
    row = session.get(Training, training_id)
    if row is None:
        raise DatasetError(f"there is no training {training_id}")
    return row


def _mark_interrupted(session: Session, *, stale_after: float, all_running: bool) -> list[Training]:
    """Mark running rows interrupted when stale, their process gone, or (`all_running`) all."""
    now = _now()
    marked = []
    for row in session.scalars(select(Training).where(Training.status == RUNNING)):
        reason = "still running when every running training was recovered"
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
    )
