"""The schema: created by the shipped Alembic migrations, equal to the models, SQLite set up."""

from __future__ import annotations

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
    sqlite_url,
)
from dataset.schema import Base

TABLES = {"images", "votes", "guild_settings", "trainings"}


def _diffs(store: DatasetStore, metadata: MetaData) -> list:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def test_a_fresh_folder_gets_the_whole_schema(data_dir: Path) -> None:
    assert not data_dir.exists()
    with DatasetStore.open(data_dir) as store:
        assert (data_dir / DATABASE_FILE).is_file() and (data_dir / "images").is_dir()
        names = set(inspect(store.engine).get_table_names())
        assert names == TABLES | {"alembic_version"}
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision() == HEAD_REVISION == "0001"


def test_the_migrated_schema_equals_the_models(store: DatasetStore) -> None:
    assert _diffs(store, Base.metadata) == []
    # The comparison does see a difference when there is one.
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["images"].append_column(Column("extra", Integer))
    assert [diff[0] for diff in _diffs(store, changed)] == ["add_column"]


def test_at_most_one_running_training_is_enforced_by_the_index(store: DatasetStore) -> None:
    with store.engine.connect() as connection:
        sql = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'uq_trainings_one_running'")
        ).scalar()
    assert "UNIQUE" in sql and "WHERE status = 'running'" in sql
    insert = text(
        "INSERT INTO trainings (status, host, params, result, started_at, heartbeat_at) "
        "VALUES (:status, 'h', '{}', '{}', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
    )
    with store.engine.begin() as connection:
        for status in ("failed", "failed", "published", "running"):
            connection.execute(insert, {"status": status})
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(insert, {"status": "running"})
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(insert, {"status": "paused"})  # not a status


def test_every_connection_is_wal_with_a_busy_timeout_and_foreign_keys(store: DatasetStore) -> None:
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


def test_reopening_keeps_the_data_and_an_emptied_database_is_rebuilt(
    data_dir: Path, make_image
) -> None:
    with DatasetStore.open(data_dir) as store:
        sha256 = store.add_image(make_image(1)).sha256
    with DatasetStore.open(data_dir) as store:
        assert store.summary().images == 1
        assert store.label_of(sha256).label is None
    # Downgrading to nothing, then opening again, runs the upgrade again on an old database.
    engine = make_engine(sqlite_url(data_dir))
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
        assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    engine.dispose()
    with DatasetStore.open(data_dir) as store:
        assert set(inspect(store.engine).get_table_names()) >= TABLES
        assert store.summary().images == 0


def test_a_database_from_a_newer_version_is_refused(data_dir: Path) -> None:
    DatasetStore.open(data_dir).close()
    engine = make_engine(sqlite_url(data_dir))
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(DatasetError, match="newer version of jedisith"):
        DatasetStore.open(data_dir)


def test_a_bad_location_or_url_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DatasetError, match="cannot create"):
        DatasetStore.open(blocker / "data")
    with pytest.raises(DatasetError, match="driver is not installed") as error:
        DatasetStore.open(tmp_path / "data", "postgresql://bot:secret@localhost/jedisith")
    assert "secret" not in str(error.value)
    with pytest.raises(DatasetError, match="two different class names"):
        DatasetStore.open(tmp_path / "data", class_names=("jedi", "jedi"))
