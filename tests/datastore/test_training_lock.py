"""The training lock: one running training, which a crash cannot leave stuck, and which any
process on the database can ask to stop. On SQLite and on PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

import dataset.trainings
from dataset import DatasetError, DatasetStore, TrainingBusy, TrainingRecord
from dataset.schema import Training

START = {"scope": 0, "guild_id": 5, "channel_id": 6, "user_id": 7, "params": {"epochs": 2}}


def _start(store: DatasetStore, pid: int | None = None, **options) -> TrainingRecord:
    return store.trainings.start(pid=os.getpid() if pid is None else pid, **START, **options)


def _age(store: DatasetStore, training_id: int, seconds: float) -> None:
    """Pretend the training's last heartbeat was `seconds` ago."""
    old = datetime.now(UTC) - timedelta(seconds=seconds)
    with store.engine.begin() as connection:
        connection.execute(
            update(Training).where(Training.id == training_id).values(heartbeat_at=old)
        )


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_one_training_at_a_time(store: DatasetStore) -> None:
    first = _start(store)
    assert first.status == "running" and first.params == {"epochs": 2} and first.result == {}
    assert (first.guild_id, first.channel_id, first.user_id, first.pid) == (5, 6, 7, os.getpid())
    assert first.started_at.tzinfo == UTC and first.finished_at is None
    with pytest.raises(TrainingBusy) as busy:
        _start(store)
    assert busy.value.training == first and isinstance(busy.value, DatasetError)
    assert str(busy.value).startswith(f"training {first.id} is already running")
    assert store.trainings.running(0) == first

    done = store.trainings.finish(first.id, "published", result={"accuracy": 0.9}, version=3)
    assert (done.status, done.result, done.version) == ("published", {"accuracy": 0.9}, 3)
    assert done.finished_at is not None and done.finished_at >= done.started_at
    assert store.trainings.running(0) is None
    second = _start(store)
    assert second.id != first.id
    assert [t.id for t in store.trainings.latest()] == [second.id, first.id]
    assert [t.id for t in store.trainings.latest(limit=1)] == [second.id]


def test_finishing_is_checked(store: DatasetStore) -> None:
    training = _start(store)
    with pytest.raises(DatasetError, match="ends as one of"):
        store.trainings.finish(training.id, "running")
    with pytest.raises(DatasetError, match="no training 999"):
        store.trainings.finish(999, "failed")
    store.trainings.finish(training.id, "cancelled")
    with pytest.raises(DatasetError, match="already ended \\(cancelled\\)"):
        store.trainings.finish(training.id, "published")
    with pytest.raises(DatasetError, match="must be JSON"):
        store.trainings.start(
            scope=0, pid=1, guild_id=None, channel_id=None, user_id=None, params={"x": {1}}
        )


def test_a_heartbeat_keeps_it_alive_and_records_progress(store: DatasetStore) -> None:
    training = _start(store)
    _age(store, training.id, 100)
    store.trainings.heartbeat(training.id, pid=os.getpid(), message_id=1234)
    beat = store.trainings.running(0)
    assert beat.message_id == 1234 and beat.heartbeat_at > training.heartbeat_at
    assert store.trainings.recover_interrupted(stale_after=60) == []
    with pytest.raises(TrainingBusy):
        _start(store, stale_after=60)


def test_a_stale_heartbeat_is_recovered(store: DatasetStore) -> None:
    stuck = _start(store)
    _age(store, stuck.id, 600)
    replacement = _start(store)  # stale_after=120: the old one is marked interrupted first
    old = next(t for t in store.trainings.latest() if t.id == stuck.id)
    assert old.status == "interrupted" and old.finished_at is not None
    assert old.result["interrupted"].startswith("no heartbeat for 6")
    assert store.trainings.running(0) == replacement
    with pytest.raises(DatasetError, match="no longer running \\(interrupted\\)"):
        store.trainings.heartbeat(stuck.id)
    # Its process came back after all and knows how it ended: that is recorded.
    assert store.trainings.finish(stuck.id, "failed", result={"error": "x"}).status == "failed"

    _age(store, replacement.id, 600)
    assert store.trainings.recover_interrupted(stale_after=900) == []
    recovered = store.trainings.recover_interrupted()
    assert [t.id for t in recovered] == [replacement.id] and recovered[0].status == "interrupted"
    assert store.trainings.running(0) is None


def test_a_dead_process_on_this_host_is_recovered(store: DatasetStore) -> None:
    dead = _start(store, pid=_dead_pid())
    alive = _start(store)  # fresh heartbeat, but the process is gone
    old = next(t for t in store.trainings.latest() if t.id == dead.id)
    assert old.status == "interrupted" and f"process {dead.pid}" in old.result["interrupted"]
    assert store.trainings.running(0) == alive
    with pytest.raises(TrainingBusy):  # a live process is not
        _start(store)


def test_a_process_on_another_host_is_not_judged_by_its_pid(store: DatasetStore) -> None:
    elsewhere = _start(store, pid=_dead_pid())
    with store.engine.begin() as connection:
        connection.execute(update(Training).values(host="other-machine"))
    with pytest.raises(TrainingBusy) as busy:
        _start(store)
    assert busy.value.training.id == elsewhere.id


def test_recovering_every_running_training_at_start_up(store: DatasetStore) -> None:
    training = _start(store)
    assert store.trainings.recover_interrupted() == []  # fresh and alive
    recovered = store.trainings.recover_interrupted(all_running=True)
    assert [t.id for t in recovered] == [training.id] and recovered[0].status == "interrupted"
    assert store.trainings.recover_interrupted(all_running=True) == []


def test_two_racing_starters_one_wins(data_dir: Path, database_url: str) -> None:
    DatasetStore.open(data_dir, database_url).close()
    stores = [DatasetStore.open(data_dir, database_url) for _ in range(6)]  # six engines
    ready = threading.Barrier(len(stores))
    won, busy, errors = [], [], []

    def race(store: DatasetStore) -> None:
        ready.wait()
        try:
            won.append(_start(store))
        except TrainingBusy as error:
            busy.append(error.training)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=race, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == [] and len(won) == 1 and len(busy) == len(stores) - 1
        assert {training.id for training in busy} == {won[0].id}
        assert len(stores[0].trainings.latest(limit=10)) == 1
    finally:
        for store in stores:
            store.close()


def test_the_index_stops_a_starter_that_missed_the_running_row(store, monkeypatch) -> None:
    """As on PostgreSQL, where two transactions can both see no running row."""
    first = _start(store)
    real = dataset.trainings._running_row
    calls = []

    def blind_once(session, scope):
        calls.append(1)
        return None if len(calls) == 1 else real(session, scope)

    monkeypatch.setattr(dataset.trainings, "_running_row", blind_once)
    with pytest.raises(TrainingBusy) as busy:
        _start(store)
    assert busy.value.training.id == first.id and len(calls) == 2
    assert [t.id for t in store.trainings.latest(limit=10)] == [first.id]


def test_another_process_asks_the_training_to_stop(store: DatasetStore) -> None:
    """`!retrain cancel` in a process that does not run the trainer: the owner's heartbeat
    answers with the request, and the first request is the one kept."""
    training = _start(store)
    assert not store.trainings.heartbeat(training.id).cancel_requested
    with DatasetStore.open(store.data_dir, store.url) as elsewhere:  # another process's store
        asked = elsewhere.trainings.request_cancel(training.id, by=2**60 + 9)
        assert asked.cancel_requested and asked.cancel_requested_by == 2**60 + 9
        assert asked.cancel_requested_at.tzinfo == UTC and asked.status == "running"
        again = elsewhere.trainings.request_cancel(training.id, by=42)
        assert (again.cancel_requested_by, again.cancel_requested_at) == (
            asked.cancel_requested_by,
            asked.cancel_requested_at,
        )
    beat = store.trainings.heartbeat(training.id)  # the owner's next heartbeat sees it
    assert beat.cancel_requested_by == 2**60 + 9 and beat.heartbeat_at > training.heartbeat_at
    assert store.trainings.running(0) == beat
    done = store.trainings.finish(training.id, "cancelled")
    assert done.cancel_requested_by == 2**60 + 9 and store.trainings.latest(1) == [done]
    with pytest.raises(DatasetError, match="not running \\(cancelled\\)"):
        store.trainings.request_cancel(training.id, by=1)
    with pytest.raises(DatasetError, match="no training 999"):
        store.trainings.request_cancel(999, by=1)
