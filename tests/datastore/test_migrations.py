"""The schema: created by the shipped Alembic migrations, equal to the models, on SQLite and on
PostgreSQL; SQLite set up; an old database brought up to date with its data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, inspect, text
from sqlalchemy.exc import IntegrityError

from dataset import DatasetError, DatasetStore
from dataset.database import (
    DATABASE_FILE,
    HEAD_REVISION,
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
)
from dataset.schema import Base

TABLES = {"images", "image_refs", "votes", "guild_settings", "trainings", "server_images"}
INSERT_TRAINING = text(
    "INSERT INTO trainings (status, host, params, result, started_at, heartbeat_at) "
    "VALUES (:status, 'h', '{}', '{}', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
)


def _diffs(store: DatasetStore, metadata: MetaData) -> list:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    """Move the database at `url` to `revision` with Alembic's own commands."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            (command.downgrade if down else command.upgrade)(alembic_config(connection), revision)
    finally:
        engine.dispose()


def _one_running_index(store: DatasetStore) -> str:
    """The SQL of the index that admits one running training."""
    name = {"name": "uq_trainings_one_running"}
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE name = :name"
        else:
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        return connection.execute(text(query), name).scalar() or ""


def test_a_fresh_folder_gets_the_whole_schema(data_dir: Path, database, database_url) -> None:
    assert not data_dir.exists()
    with DatasetStore.open(data_dir, database_url) as store:
        assert (data_dir / "images").is_dir()
        assert (data_dir / DATABASE_FILE).is_file() == (database.name == "sqlite")
        assert store.engine.dialect.name == database.name
        names = set(inspect(store.engine).get_table_names())
        assert names == TABLES | {"alembic_version"}
        with store.engine.connect() as connection:
            assert (
                current_revision(connection)
                == head_revision()
                == HEAD_REVISION
                == "0008_holdout_voters"
            )


def test_the_migrated_schema_equals_the_models(store: DatasetStore) -> None:
    assert _diffs(store, Base.metadata) == []
    # The comparison does see a difference when there is one.
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["images"].append_column(Column("extra", Integer))
    assert [diff[0] for diff in _diffs(store, changed)] == ["add_column"]


def test_the_columns_have_the_portable_types(store: DatasetStore) -> None:
    columns = {
        (table, column["name"]): column["type"]
        for table in TABLES
        for column in inspect(store.engine).get_columns(table)
    }
    names = {key: type(kind).__name__.upper() for key, kind in columns.items()}
    snowflakes = [key for key in columns if key[1].endswith(("guild_id", "user_id", "_by"))]
    snowflakes += [("trainings", "scope")]
    snowflakes += [
        (t, c) for t in ("images", "image_refs", "trainings") for c in ("channel_id", "message_id")
    ]
    assert len(snowflakes) == 18 and {names[key] for key in snowflakes} == {"BIGINT"}
    times = [key for key in columns if key[1].endswith(("_at", "first_seen"))]
    assert len(times) == 10
    if store.engine.dialect.name == "postgresql":
        assert all(columns[key].timezone for key in times)  # timestamp with time zone
        assert {names[key] for key in times} == {"TIMESTAMP"}
        assert names["trainings", "params"] == names["trainings", "result"] == "JSON"
        assert names["votes", "moderator"] == names["guild_settings", "collecting"] == "BOOLEAN"


def test_at_most_one_running_training_is_enforced_by_the_index(store: DatasetStore) -> None:
    sql = _one_running_index(store)
    assert "UNIQUE" in sql and "'running'" in sql and "WHERE" in sql, sql
    with store.engine.begin() as connection:
        for status in ("failed", "failed", "published", "running"):
            connection.execute(INSERT_TRAINING, {"status": status})
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(INSERT_TRAINING, {"status": "running"})
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(INSERT_TRAINING, {"status": "paused"})  # not a status


def test_every_sqlite_connection_is_wal_with_a_busy_timeout_and_foreign_keys(
    data_dir: Path,
) -> None:
    with DatasetStore.open(data_dir) as store:
        first, second = store.engine.connect(), store.engine.connect()
        try:
            for connection in (first, second):
                pragma = connection.exec_driver_sql
                assert pragma("PRAGMA journal_mode").scalar() == "wal"
                assert pragma("PRAGMA busy_timeout").scalar() == 15_000
                assert pragma("PRAGMA foreign_keys").scalar() == 1
                assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
        finally:
            first.close()
            second.close()


def test_postgresql_urls_get_the_shipped_driver_and_no_pragmas() -> None:
    for url in ("postgresql://u:p@db/x", "postgres://u:p@db/x", "postgresql+psycopg://u:p@db/x"):
        engine = make_engine(url)  # no connection is made
        try:
            assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
            assert engine.url.drivername == "postgresql+psycopg"
        finally:
            engine.dispose()


def test_reopening_keeps_the_data_and_an_emptied_database_is_rebuilt(
    data_dir: Path, database_url: str, make_image
) -> None:
    with DatasetStore.open(data_dir, database_url) as store:
        sha256 = store.add_image(make_image(1)).sha256
    with DatasetStore.open(data_dir, database_url) as store:
        assert store.summary(None).images == 1
        assert store.label_of(sha256, None).label is None
    # Downgrading to nothing, then opening again, runs the upgrade again on an old database.
    _migrate(database_url, "base", down=True)
    engine = make_engine(database_url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()
    with DatasetStore.open(data_dir, database_url) as store:
        assert set(inspect(store.engine).get_table_names()) >= TABLES
        assert store.summary(None).images == 0


def test_a_0001_database_with_data_is_upgraded_and_keeps_it(
    data_dir: Path, database_url: str, make_image
) -> None:
    """The first released schema, holding images, votes, consent and a running training."""
    data_dir.mkdir()
    _migrate(database_url, "0001")
    data = make_image(1)
    with DatasetStore.open(data_dir, database_url) as store:  # files written as 0001 would
        sha256 = store.add_image(data).sha256
    _migrate(database_url, "0001", down=True)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        assert current_revision(connection) == "0001"
        connection.execute(
            text(
                "INSERT INTO votes (image_sha256, user_id, guild_id, label, source, moderator, "
                "created_at, updated_at) VALUES (:sha, :user, :guild, 'sith', 'button', :mod, "
                ":at, :at)"
            ),
            {
                "sha": sha256,
                "user": 2**62 + 1,  # snowflakes: far past 2^31
                "guild": 2**60 + 3,
                "mod": True,
                "at": datetime(2026, 12, 1, 12, tzinfo=UTC),
            },
        )
        connection.execute(
            text(
                "INSERT INTO guild_settings (guild_id, collecting, changed_by, changed_at) "
                "VALUES (:guild, :on, 7, :at)"
            ),
            {"guild": 2**60 + 3, "on": True, "at": datetime(2026, 12, 1, tzinfo=UTC)},
        )
        for status in ("published", "running"):
            connection.execute(INSERT_TRAINING, {"status": status})
    engine.dispose()

    with DatasetStore.open(data_dir, database_url) as store:  # 0001 -> 0008_holdout_voters
        with store.engine.connect() as connection:
            assert current_revision(connection) == "0008_holdout_voters"
        assert _diffs(store, Base.metadata) == []
        assert store.collecting(2**60 + 3)
        label = store.label_of(sha256, 2**60 + 3)
        assert (label.label, label.moderator_votes["sith"]) == ("sith", 1)
        assert store.summary(2**60 + 3).contributors == [(2**62 + 1, 1)]
        assert store.summary(2**60 + 3).labelled == 1  # server_images filled by 0006
        running = store.trainings.running(0)
        assert running is not None and running.started_at == datetime(2025, 1, 1, tzinfo=UTC)
        assert (running.cancel_requested_by, running.cancel_requested_at) == (None, None)
        asked = store.trainings.request_cancel(running.id, by=2**62 + 1)
        assert asked.cancel_requested_by == 2**62 + 1 and asked.cancel_requested
        assert [t.status for t in store.trainings.latest()] == ["running", "published"]

    # And back: 0002's downgrade keeps the rows and the one-running index.
    _migrate(database_url, "0001", down=True)
    with DatasetStore.open(data_dir, database_url) as store:
        assert store.trainings.running(0) is not None
        assert store.label_of(sha256, 2**60 + 3).label == "sith"
        _migrate(database_url, "0001", down=True)  # reopening upgraded it again
        assert "WHERE" in _one_running_index(store)
        with pytest.raises(IntegrityError), store.engine.begin() as connection:
            connection.execute(INSERT_TRAINING, {"status": "running"})


def test_a_0002_database_becomes_per_server_and_goes_back(
    data_dir: Path, database_url: str, make_image
) -> None:
    """0002 -> 0003 with votes in a server and without one, an image never voted on, consent
    and trainings; then back to 0002, which keeps one vote per (image, person)."""
    guild, other, at = 2**60 + 3, 2**60 + 4, datetime(2026, 12, 1, 12, tzinfo=UTC)
    data_dir.mkdir()
    with DatasetStore.open(data_dir, database_url) as store:  # files written as 0002 would
        voted = store.add_image(make_image(1), guild_id=guild, channel_id=8, message_id=9).sha256
        unvoted = store.add_image(make_image(2), guild_id=other).sha256
    _migrate(database_url, "0002", down=True)
    engine = make_engine(database_url)
    vote = text(
        "INSERT INTO votes (image_sha256, user_id, guild_id, label, source, moderator, "
        "created_at, updated_at) VALUES (:sha, :user, :guild, :label, 'button', :mod, :at, :at)"
    )
    with engine.begin() as connection:
        assert current_revision(connection) == "0002"
        for user, where, label, moderator, minute in (
            (2**62 + 1, guild, "sith", True, 0),  # the first voter in the server: its giver
            (2**62 + 2, guild, "jedi", False, 1),
            (2**62 + 3, None, "jedi", False, 2),  # an import: no server
        ):
            connection.execute(
                vote,
                {
                    "sha": voted,
                    "user": user,
                    "guild": where,
                    "label": label,
                    "mod": moderator,
                    "at": at.replace(minute=minute),
                },
            )
        connection.execute(
            text(
                "INSERT INTO guild_settings (guild_id, collecting, changed_by, changed_at) "
                "VALUES (:guild, :on, 7, :at)"
            ),
            {"guild": guild, "on": True, "at": at},
        )
        for status in ("published", "running"):
            connection.execute(INSERT_TRAINING, {"status": status})
    engine.dispose()

    with DatasetStore.open(data_dir, database_url) as store:  # 0002 -> 0003
        assert _diffs(store, Base.metadata) == []
        in_guild = store.label_of(voted, guild)
        assert (in_guild.label, in_guild.votes) == ("sith", {"jedi": 1, "sith": 1})
        nowhere = store.label_of(voted, None)
        assert (nowhere.label, nowhere.votes) == ("jedi", {"jedi": 1, "sith": 0})
        with store.engine.connect() as connection:
            refs = connection.execute(
                text(
                    "SELECT guild_id, image_sha256, posted_by, channel_id, message_id "
                    "FROM image_refs ORDER BY guild_id"
                )
            ).all()
            nulls = connection.execute(text("SELECT COUNT(*) FROM votes WHERE guild_id IS NULL"))
            assert nulls.scalar() == 0
        assert [tuple(ref) for ref in refs] == [
            (0, voted, 2**62 + 3, None, None),
            (guild, voted, 2**62 + 1, 8, 9),
            (other, unvoted, None, None, None),
        ]
        assert store.summary(other).images == 1 and store.summary(guild).votes == 2
        settings = store.guild_settings(guild)
        assert settings.collecting and not settings.sharing
        assert (settings.ood_policy, settings.uncertain_band, settings.channels) == (None,) * 3
        running = store.trainings.running(0)
        assert running is not None and (running.scope, running.kind) == (0, "full")
        assert [t.scope for t in store.trainings.latest()] == [0, 0]
        # Another scope may train at the same time; its own second training may not.
        mine = store.trainings.start(
            scope=guild,
            guild_id=guild,
            channel_id=1,
            user_id=1,
            pid=1,
            params={},
            stale_after=1e10,  # the 0002 row's heartbeat is old
        )
        assert store.trainings.running(guild) == mine and store.trainings.running(0) == running
        with pytest.raises(IntegrityError), store.engine.begin() as connection:
            connection.execute(INSERT_TRAINING, {"status": "running"})  # scope 0 again
        # The same person now votes in a second server: two votes on one image.
        store.vote(voted, guild_id=other, user_id=2**62 + 2, label="sith", source="button")

    _migrate(database_url, "0002", down=True)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        votes = connection.execute(
            text("SELECT user_id, guild_id, label FROM votes ORDER BY user_id")
        ).all()
        statuses = connection.execute(text("SELECT status FROM trainings ORDER BY id")).all()
    engine.dispose()
    assert [tuple(v) for v in votes] == [
        (2**62 + 1, guild, "sith"),
        (2**62 + 2, other, "sith"),  # the latest of their two
        (2**62 + 3, None, "jedi"),
    ]
    assert [s for (s,) in statuses] == ["published", "running", "interrupted"]
    with DatasetStore.open(data_dir, database_url) as store:  # and up again
        assert _diffs(store, Base.metadata) == []
        assert store.label_of(voted, other).label == "sith"


def test_a_database_from_a_newer_version_is_refused(data_dir: Path, database_url: str) -> None:
    DatasetStore.open(data_dir, database_url).close()
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(DatasetError, match="newer version of jedisith"):
        DatasetStore.open(data_dir, database_url)


def test_a_bad_location_or_url_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DatasetError, match="cannot create"):
        DatasetStore.open(blocker / "data")
    with pytest.raises(DatasetError, match="driver is not installed") as error:
        DatasetStore.open(tmp_path / "data", "postgresql+pg8000://bot:secret@localhost/jedisith")
    assert "secret" not in str(error.value)
    with pytest.raises(DatasetError, match="cannot open the dataset database") as error:
        DatasetStore.open(tmp_path / "data", "postgresql://bot:secret@127.0.0.1:1/jedisith")
    assert "secret" not in str(error.value) and "***" in str(error.value)
    with pytest.raises(DatasetError, match="two different class names"):
        DatasetStore.open(tmp_path / "data", class_names=("jedi", "jedi"))
