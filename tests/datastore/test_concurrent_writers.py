"""Several processes writing one dataset at once, as the bot's shards do: real processes (spawned,
each with its own engine and pool), released together by a barrier, many times over, on SQLite
and on PostgreSQL.

Each round of the vote race, both processes add the same new image, vote on it as themselves,
and vote on it as one shared member (the same person's click reaching two processes), all at the
same moment. Each round of the training race, both try to take the lock; every other round the
winner's training is left behind with an old heartbeat, so the next round's racers both find a
stale lock to recover first.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import queue
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import pytest
from sqlalchemy import func, select, update

from dataset import DatasetStore, TrainingBusy
from dataset.database import HEAD_REVISION
from dataset.labels import tally
from dataset.schema import Image, Training, Vote

PROCESSES = 2
VOTE_ROUNDS = 120
TRAINING_ROUNDS = 60
OPENERS, OPEN_ROUNDS = 3, 15
SHARED_USER = 999  # votes in both processes at once
GUILD = 2**60 + 1  # the one server both processes vote in
BARRIER_TIMEOUT = 60.0


def _image(seed: int) -> bytes:
    """A small noise image, a different one for every seed."""
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _label(worker: int, round_: int) -> str:
    return ("jedi", "sith")[(worker + round_ * 7 + round_ // 3) % 2]


def _shared_label(worker: int, round_: int) -> str:
    return ("jedi", "sith")[(worker + round_) % 2]  # the two processes disagree every round


# -- what each process runs (top level: spawned processes import this module) -----------------


def _voter(worker: int, data_dir: str, url: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(BARRIER_TIMEOUT)  # both open (and migrate) an empty database at once
        with DatasetStore.open(Path(data_dir), url) as store:
            out = []
            images = [_image(seed) for seed in range(VOTE_ROUNDS)]
            for round_, data in enumerate(images):
                barrier.wait(BARRIER_TIMEOUT)
                record = store.add_image(data, guild_id=GUILD)
                own = store.vote(
                    record.sha256,
                    user_id=2**61 + worker,
                    guild_id=GUILD,
                    label=_label(worker, round_),
                    source="button",
                )
                shared = store.vote(
                    record.sha256,
                    user_id=SHARED_USER,
                    guild_id=GUILD,
                    label=_shared_label(worker, round_),
                    source="button",
                )
                out.append((record.sha256, record.new, own.previous, shared.previous))
        results.put((worker, out))
    except BaseException:
        results.put((worker, traceback.format_exc()))
        barrier.abort()


def _starter(worker: int, data_dir: str, url: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(BARRIER_TIMEOUT)
        with DatasetStore.open(Path(data_dir), url) as store:
            out = []
            for round_ in range(TRAINING_ROUNDS):
                barrier.wait(BARRIER_TIMEOUT)
                try:
                    won = store.trainings.start(
                        scope=0,
                        guild_id=1,
                        channel_id=2,
                        user_id=worker,
                        pid=os.getpid(),
                        params={},
                    )
                    out.append(("won", won.id))
                except TrainingBusy as busy:
                    out.append(("busy", busy.training.id))
                barrier.wait(BARRIER_TIMEOUT)  # both have tried
                if out[-1][0] == "won":
                    if round_ % 2:
                        old = datetime.now(UTC) - timedelta(seconds=600)  # a lock left behind
                        with store.engine.begin() as connection:
                            connection.execute(
                                update(Training)
                                .where(Training.id == won.id)
                                .values(heartbeat_at=old)
                            )
                    else:
                        store.trainings.finish(won.id, "published")
        results.put((worker, out))
    except BaseException:
        results.put((worker, traceback.format_exc()))
        barrier.abort()


def _opener(worker: int, folders: list[str], urls: list[str], barrier: Any, results: Any) -> None:
    try:
        out = []
        for folder, url in zip(folders, urls, strict=True):
            barrier.wait(BARRIER_TIMEOUT)  # all open the same new dataset at once
            with DatasetStore.open(Path(folder), url) as store:
                out.append(store.summary(None).images)
        results.put((worker, out))
    except BaseException:
        results.put((worker, traceback.format_exc()))
        barrier.abort()


def _race(
    target: Callable[..., None], data_dir: Any, url: Any, processes: int = PROCESSES
) -> dict[int, list]:
    """Run `target` in `processes` spawned processes at once; what each returned, by worker."""
    context = multiprocessing.get_context("spawn")  # nothing of this process's engines shared
    barrier, results = context.Barrier(processes), context.Queue()
    processes = [
        context.Process(target=target, args=(worker, data_dir, url, barrier, results))
        for worker in range(processes)
    ]
    for process in processes:
        process.start()
    outcomes: dict[int, Any] = {}
    try:
        for _ in processes:
            worker, outcome = results.get(timeout=240)
            outcomes[worker] = outcome
    except queue.Empty:  # pragma: no cover - reported below
        pass
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():  # pragma: no cover
                process.kill()
    failures = [o for o in outcomes.values() if isinstance(o, str)]
    assert not failures, "\n".join(failures)
    assert sorted(outcomes) == list(range(len(processes))), "a process gave no answer"
    return outcomes


# -- the tests ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_voting_on_the_same_images_lose_nothing(
    data_dir: Path, database_url: str
) -> None:
    outcomes = _race(_voter, str(data_dir), database_url)

    with DatasetStore.open(data_dir, database_url) as store, store.engine.connect() as db:
        images = db.scalar(select(func.count()).select_from(Image))
        rows = db.execute(select(Vote.image_sha256, Vote.user_id, Vote.label)).all()
        for round_ in range(VOTE_ROUNDS):
            sha256 = outcomes[0][round_][0]
            assert outcomes[1][round_][0] == sha256
            # The image is stored once: exactly one process added it.
            assert sorted(outcomes[w][round_][1] for w in range(PROCESSES)) == [False, True]
            votes = {user: label for sha, user, label in rows if sha == sha256}
            # No lost vote, no second row for the member who voted in both processes at once.
            assert sum(1 for sha, _, _ in rows if sha == sha256) == PROCESSES + 1
            for worker in range(PROCESSES):
                assert votes[2**61 + worker] == _label(worker, round_)
                assert outcomes[worker][round_][2] is None  # their own first vote
            # The shared member's two votes came one after the other: one saw none before it,
            # the other saw the first one's label, and the last one's label is what is kept.
            previous = [outcomes[w][round_][3] for w in range(PROCESSES)]
            first = previous.index(None)
            second = 1 - first
            assert previous[second] == _shared_label(first, round_)
            assert votes[SHARED_USER] == _shared_label(second, round_)
            # And the label is the one the rule gives those votes.
            expected = tally([(label, False) for label in votes.values()]).label
            assert store.label_of(sha256, GUILD).label == expected
    assert images == VOTE_ROUNDS and len(rows) == VOTE_ROUNDS * (PROCESSES + 1)
    assert len({(sha, user) for sha, user, _ in rows}) == len(rows)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_racing_for_the_training_lock_one_wins(
    data_dir: Path, database_url: str
) -> None:
    outcomes = _race(_starter, str(data_dir), database_url)

    winners = []
    for round_ in range(TRAINING_ROUNDS):
        tries = [outcomes[w][round_] for w in range(PROCESSES)]
        assert Counter(kind for kind, _ in tries) == {"won": 1, "busy": 1}, (round_, tries)
        assert tries[0][1] == tries[1][1]  # the loser was told who won
        winners.append(tries[0][1])
    with DatasetStore.open(data_dir, database_url) as store:
        trainings = {t.id: t for t in store.trainings.latest(limit=TRAINING_ROUNDS + 10)}
        assert sorted(trainings) == sorted(winners)  # no training but the winners'
        for round_, training_id in enumerate(winners):
            training = trainings[training_id]
            if round_ % 2 == 0:
                assert training.status == "published"
            elif round_ < TRAINING_ROUNDS - 1:  # recovered by the next round's racers
                assert training.status == "interrupted"
                assert training.result["interrupted"].startswith("no heartbeat for 6")
        assert store.trainings.running(0) == trainings[winners[-1]]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_processes_opening_a_new_dataset_together_migrate_it_once(tmp_path: Path, database) -> None:
    """Shards starting at once on an empty database: one migrates, the others wait for it (on
    SQLite the switch to WAL, too, is waited for)."""
    folders = [tmp_path / f"data-{n}" for n in range(OPEN_ROUNDS)]
    urls = [database.url(folder) for folder in folders]
    outcomes = _race(_opener, [str(f) for f in folders], urls, processes=OPENERS)
    assert outcomes == {worker: [0] * OPEN_ROUNDS for worker in range(OPENERS)}
    with DatasetStore.open(folders[-1], urls[-1]) as store, store.engine.connect() as db:
        assert db.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all() == [
            HEAD_REVISION
        ]
