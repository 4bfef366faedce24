"""Forgetting forgets: the images a person posted, a deleted message's images, a failed vote's
image, and every copy in trainings' work folders; on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError

from dataset import DatasetStore, Forgotten
from dataset.database import alembic_config, current_revision, make_engine
from dataset.schema import ImageRef
from dataset.trainings import TRAININGS_FOLDER

A, B = 2**60 + 1, 2**60 + 2  # two servers
POSTER, GIVER, MEMBER, MODERATOR = 11, 12, 13, 14


def _hashes_under(folder: Path) -> set[str]:
    """The SHA-256 of every file under `folder`, at any depth."""
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def _teach(store: DatasetStore, data: bytes, guild: int, user: int, **more):
    record, _ = store.add_image_and_vote(
        data, guild_id=guild, user_id=user, label="jedi", source="teach", **more
    )
    return record


def test_forget_takes_back_the_images_a_person_posted_whoever_labelled_them(
    store: DatasetStore, make_image
) -> None:
    data = make_image(1)
    # GIVER taught POSTER's picture in A, MEMBER voted on it there; in B, MEMBER taught it.
    record = _teach(store, data, A, GIVER, poster_id=POSTER, message_id=100)
    store.vote(record.sha256, guild_id=A, user_id=MEMBER, label="sith", source="button")
    _teach(store, data, B, MEMBER, poster_id=POSTER, message_id=200)
    kept = _teach(store, make_image(2), A, GIVER, poster_id=GIVER)

    assert store.forget_user(POSTER, A) == Forgotten(votes=0, images=0, posts=1, others_votes=2)
    assert store.summary(A).images == 1 and record.path.exists()  # B still holds it
    assert store.forget_user(POSTER) == Forgotten(votes=0, images=1, posts=1, others_votes=1)
    assert not record.path.exists() and store.summary(B).images == 0
    assert data and hashlib.sha256(data).hexdigest() not in _hashes_under(store.data_dir)
    assert kept.path.exists() and store.summary(A).images == 1
    assert store.user_summary(POSTER).images == {} and store.forget_user(POSTER).posts == 0


def test_a_deleted_message_takes_its_images_unless_a_moderator_labelled_them(
    store: DatasetStore, make_image
) -> None:
    plain = _teach(store, make_image(3), A, MEMBER, poster_id=POSTER, message_id=300)
    store.vote(plain.sha256, guild_id=A, user_id=GIVER, label="jedi", source="button")
    ruled = _teach(store, make_image(4), A, MEMBER, poster_id=POSTER, message_id=300)
    store.vote(ruled.sha256, guild_id=A, user_id=MODERATOR, label="jedi", source="button",
               moderator=True)  # fmt: skip
    elsewhere = _teach(store, make_image(5), A, MEMBER, message_id=301)
    _teach(store, make_image(3), B, MEMBER, message_id=300)  # the same id in another server

    assert store.forget_messages(A, [999]) == Forgotten(votes=0, images=0)
    assert store.forget_messages(A, [300, 302]) == Forgotten(0, 0, posts=1, others_votes=2)
    assert store.summary(A).images == 2 and store.label_of(ruled.sha256, A).label == "jedi"
    assert store.summary(B).images == 1 and plain.path.exists()  # B holds it
    assert store.forget_messages(B, [300]) == Forgotten(0, images=1, posts=1, others_votes=1)
    assert not plain.path.exists() and elsewhere.path.exists() and ruled.path.exists()


def test_a_vote_that_fails_in_the_database_leaves_no_image(store: DatasetStore, make_image) -> None:
    """The image and its vote are one transaction: a vote the database refuses (staged with a
    trigger) leaves neither the image's row nor its file."""
    with store.engine.begin() as connection:
        if store.engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER no_votes BEFORE INSERT ON votes "
                    "BEGIN SELECT RAISE(ABORT, 'votes are refused'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_votes() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'votes are refused'; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER no_votes BEFORE INSERT ON votes "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_votes()"
                )
            )
    with pytest.raises(DBAPIError, match="votes are refused"):
        _teach(store, make_image(6), A, MEMBER, poster_id=MEMBER)
    assert store.summary(A).images == 0 and store.usage(A).images == 0
    assert _hashes_under(store.data_dir / "images") == set()
    assert store.user_summary(MEMBER).images == {}


def _training(store: DatasetStore, scope: int) -> int:
    return store.trainings.start(
        scope=scope, guild_id=None, channel_id=None, user_id=None, pid=os.getpid(), params={}
    ).id


def _work_folder(store: DatasetStore, training_id: int) -> Path:
    """A work folder as the retrainer makes it: the exported images, and a log."""
    run = store.data_dir / TRAININGS_FOLDER / str(training_id)
    store.export(run / "data", A, holdout=None)
    (run / "train.log").write_text("log\n")
    return run


def test_stale_work_folders_go_and_the_running_ones_stay(store: DatasetStore, make_image) -> None:
    _teach(store, make_image(7), A, MEMBER)
    killed = _training(store, 1)
    store.trainings.recover_interrupted(all_running=True)  # as after a crash
    ended = _training(store, 2)
    store.trainings.finish(ended, "failed", result={"reason": "stopped"})
    running = _training(store, 3)
    folders = {i: _work_folder(store, i) for i in (killed, ended, running, 999)}

    assert store.trainings.recover_interrupted() == []  # what the bot runs at start-up
    assert not folders[killed].exists() and not folders[999].exists()
    assert sorted(p.name for p in folders[ended].iterdir()) == ["train.log"]
    assert (folders[running] / "data" / "jedi").is_dir()
    assert store.trainings.clean_work_folders() == []


def test_forget_leaves_no_copy_in_any_work_folder(store: DatasetStore, make_image) -> None:
    mine = [make_image(8), make_image(9)]
    for data in mine:
        _teach(store, data, A, POSTER, poster_id=POSTER)
    _teach(store, make_image(10), A, MEMBER)
    killed = _training(store, 1)
    _work_folder(store, killed)
    store.trainings.recover_interrupted(all_running=True)
    running = _training(store, 2)
    run = _work_folder(store, running)
    assert {hashlib.sha256(d).hexdigest() for d in mine} <= _hashes_under(run)

    assert store.forget_user(POSTER) == Forgotten(votes=2, images=2, posts=2, others_votes=0)
    left = _hashes_under(store.data_dir)
    assert not {hashlib.sha256(d).hexdigest() for d in mine} & left
    assert hashlib.sha256(make_image(10)).hexdigest() in _hashes_under(run)
    assert not (store.data_dir / TRAININGS_FOLDER / str(killed)).exists()


def test_0005_adds_the_poster_and_older_images_have_none(
    data_dir: Path, database_url: str, make_image
) -> None:
    """Images kept before 0005 get no poster (it was never recorded): `!forget` reaches them
    through the giver's label as before; back to 0004 the column goes, the rows stay."""
    with DatasetStore.open(data_dir, database_url) as store:
        _teach(store, make_image(11), A, GIVER, poster_id=POSTER, message_id=500)
    _downgrade(database_url, "0004")
    engine = make_engine(database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == "0004"
        assert "poster_id" not in {c["name"] for c in inspect(connection).get_columns("image_refs")}
    engine.dispose()

    with DatasetStore.open(data_dir, database_url) as store:  # 0004 -> the head
        with store.engine.connect() as connection:
            assert list(connection.scalars(select(ImageRef.poster_id))) == [None]
        assert store.forget_user(POSTER) == Forgotten(votes=0, images=0)
        assert store.forget_messages(A, [500]) == Forgotten(0, images=1, posts=1, others_votes=1)


def _downgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()
