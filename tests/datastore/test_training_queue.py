"""The full trainings' queue: at most `max_running` run across the cluster, the others wait in
order, one per scope; two processes (two stores, each with its own engine) racing for one slot
get it once. On SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text, update
from sqlalchemy.exc import IntegrityError

from dataset import DatasetError, DatasetStore, TrainingBusy, TrainingRecord
from dataset.database import alembic_config, current_revision, make_engine
from dataset.schema import Base, Training

INSERT_TRAINING = text(
    "INSERT INTO trainings (status, host, params, result, started_at, heartbeat_at) "
    "VALUES (:status, 'h', '{}', '{}', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
)


def _enqueue(store: DatasetStore, scope: int, max_running: int = 1, pid: int | None = None):
    return store.trainings.enqueue(
        scope=scope,
        guild_id=5,
        channel_id=6,
        user_id=7,
        pid=os.getpid() if pid is None else pid,
        params={"scope": scope},
        max_running=max_running,
    )


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_queue_runs_max_running_and_the_others_wait_in_order(store: DatasetStore) -> None:
    trainings = store.trainings
    first, second, third = (_enqueue(store, scope) for scope in (0, 11, 12))
    assert (first.status, first.slot) == ("running", 0)
    assert [second.status, third.status] == ["queued", "queued"]
    assert [trainings.place(t.id) for t in (first, second, third)] == [None, 1, 2]
    assert trainings.queued(11) == second and trainings.running(0) == first

    # One waiting training per scope, and none for a scope that runs one.
    for scope in (0, 11):
        with pytest.raises(TrainingBusy) as busy:
            _enqueue(store, scope)
        assert busy.value.training.id == (first.id if scope == 0 else second.id)
    assert "already queued" in str(busy.value)

    # Waiting changes nothing while the slot is taken; the slot goes to the oldest.
    assert trainings.take_turn(third.id, max_running=1).status == "queued"
    trainings.finish(first.id, "published", version=2)
    assert trainings.take_turn(third.id, max_running=1).status == "queued"  # the second's turn
    assert trainings.place(third.id) == 1
    moved = trainings.take_turn(second.id, max_running=1)
    assert (moved.status, moved.slot) == ("running", 0) and trainings.running(11) == moved

    # Out of the queue: cancelled, and its process sees it at its next turn.
    out = trainings.withdraw(third.id, by=99)
    assert (out.status, out.cancel_requested_by) == ("cancelled", 99)
    assert trainings.take_turn(third.id, max_running=1).status == "cancelled"
    assert trainings.queued(12) is None
    with pytest.raises(DatasetError, match="not queued"):
        trainings.withdraw(third.id, by=99)


def test_two_slots_run_two_trainings(store: DatasetStore) -> None:
    records = [_enqueue(store, scope, max_running=2) for scope in (0, 11, 12)]
    assert [(r.status, r.slot) for r in records] == [
        ("running", 0),
        ("running", 1),
        ("queued", None),
    ]
    store.trainings.finish(records[1].id, "failed")
    moved = store.trainings.take_turn(records[2].id, max_running=2)
    assert (moved.status, moved.slot) == ("running", 1)


def test_a_queued_training_whose_process_is_gone_leaves_nothing_stuck(
    store: DatasetStore,
) -> None:
    running = _enqueue(store, 0)
    gone = _enqueue(store, 11)
    waiting = _enqueue(store, 12)
    assert gone.status == "queued" and store.trainings.place(waiting.id) == 2
    with store.engine.begin() as connection:  # its process ends while it waits
        connection.execute(update(Training).where(Training.id == gone.id).values(pid=_dead_pid()))
    stale = store.trainings.recover_interrupted()
    assert [r.id for r in stale] == [gone.id] and stale[0].status == "interrupted"
    assert "has ended" in stale[0].result["interrupted"]
    assert store.trainings.place(waiting.id) == 1 and store.trainings.queued(11) is None
    store.trainings.finish(running.id, "cancelled")
    assert store.trainings.take_turn(waiting.id, max_running=1).status == "running"


def test_two_processes_racing_for_one_slot_get_it_once(
    tmp_path: Path, database, store: DatasetStore
) -> None:
    """Two stores (two engines, as two processes have) queue and take turns at once, many
    times over: never more than one running, and each scope's training runs in its order."""
    url = database.url(tmp_path / "data")
    blocker = _enqueue(store, 0)  # holds the slot while both queue
    with (
        DatasetStore.open(tmp_path / "data", url) as one,
        DatasetStore.open(tmp_path / "data", url) as two,
    ):
        assert one.engine is not two.engine
        queued = {
            scope: _enqueue(side, scope)
            for scope, side in ((21, one), (22, two), (23, one), (24, two))
        }
        assert all(record.status == "queued" for record in queued.values())
        order = sorted(queued.values(), key=lambda record: record.id)
        store.trainings.finish(blocker.id, "published")
        seen: list[TrainingRecord] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def wait(side: DatasetStore, mine: list[TrainingRecord]) -> None:
            try:
                for record in mine:
                    while True:
                        barrier.wait(timeout=60)
                        turn = side.trainings.take_turn(record.id, max_running=1)
                        if turn.status == "running":
                            running = [side.trainings.running(s) for s in queued]
                            seen.append(turn)
                            assert sum(r is not None for r in running) == 1
                            side.trainings.finish(turn.id, "published")
                            break
                barrier.wait(timeout=60)  # keep the other side's rounds company
                while True:
                    barrier.wait(timeout=60)
            except threading.BrokenBarrierError:
                return
            except BaseException as error:  # reported below
                errors.append(error)
                barrier.abort()

        threads = [
            threading.Thread(target=wait, args=(one, [queued[21], queued[23]])),
            threading.Thread(target=wait, args=(two, [queued[22], queued[24]])),
        ]
        for thread in threads:
            thread.start()
        deadline = 60
        while len(seen) < 4 and not errors and deadline > 0:
            threading.Event().wait(0.1)
            deadline -= 0.1
        barrier.abort()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert [record.id for record in seen] == [record.id for record in order]
        assert all(record.slot == 0 for record in seen)


def test_0004_adds_the_queue_and_goes_back(data_dir: Path, database_url: str) -> None:
    """0003 -> 0004 keeps the trainings and admits one queued per scope; back to 0003, the
    queued trainings are cancelled and the slots are gone; and up again."""
    DatasetStore.open(data_dir, database_url).close()
    _migrate(database_url, "0003", down=True)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(INSERT_TRAINING, {"status": "published"})
        with pytest.raises(IntegrityError), connection.begin_nested():
            connection.execute(INSERT_TRAINING, {"status": "queued"})  # 0003 does not know it
    engine.dispose()

    with DatasetStore.open(data_dir, database_url) as store:  # 0003 -> 0006_asking
        with store.engine.connect() as connection:
            assert current_revision(connection) == "0006_asking"
        assert _diffs(store) == []
        running, queued = _enqueue(store, 0), _enqueue(store, 11)
        assert (running.status, running.slot, queued.status) == ("running", 0, "queued")
        with pytest.raises(IntegrityError), store.engine.begin() as connection:
            connection.execute(  # a second queued training of scope 11
                text(
                    INSERT_TRAINING.text.replace("(status,", "(scope, status,").replace(
                        "VALUES (", "VALUES (11, "
                    )
                ),
                {"status": "queued"},
            )

    _migrate(database_url, "0003", down=True)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        rows = connection.execute(text("SELECT status FROM trainings ORDER BY id")).all()
        columns = {c["name"] for c in inspect(connection).get_columns("trainings")}
    engine.dispose()
    assert [status for (status,) in rows] == ["published", "running", "cancelled"]
    assert "slot" not in columns
    with DatasetStore.open(data_dir, database_url) as store:  # and up again
        assert _diffs(store) == []
        assert store.trainings.running(0) is not None and store.trainings.queued(11) is None


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            (command.downgrade if down else command.upgrade)(alembic_config(connection), revision)
    finally:
        engine.dispose()


def _diffs(store: DatasetStore) -> list:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)
