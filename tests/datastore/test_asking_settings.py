"""A server's rate of asking for labels (`ask_every`, `ask_per_hour`): kept, checked, and
migration 0007_asking, which adds them and goes back to 0006_limits keeping the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from dataset import DatasetError, DatasetStore
from dataset.database import alembic_config, current_revision, make_engine

A, B = 2**60 + 1, 2**60 + 2
MANAGER = 7


def test_a_servers_asking_rate_is_kept_and_checked(store: DatasetStore) -> None:
    assert store.guild_settings(A).ask_every is None  # the environment's
    changed = store.update_guild_settings(A, by=MANAGER, ask_every=2, ask_per_hour=0)
    assert (changed.ask_every, changed.ask_per_hour) == (2, 0)
    assert store.guild_settings(A).ask_every == 2 and store.guild_settings(A).ask_per_hour == 0
    assert store.guild_settings(B).ask_every is None  # another server's stay unset
    for bad in (-1, 1001, 2.5, True, "3"):
        with pytest.raises(DatasetError, match="ask_every is a whole number from 0 to 1000"):
            store.update_guild_settings(A, by=MANAGER, ask_every=bad)
    assert store.update_guild_settings(A, by=MANAGER, ask_every=None).ask_every is None


def test_0007_goes_back_to_0006_and_up_again_keeping_the_settings(
    data_dir: Path, database_url: str
) -> None:
    with DatasetStore.open(data_dir, database_url) as store:
        store.update_guild_settings(A, by=MANAGER, collecting=True, ask_every=3)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0006_limits")
        with engine.connect() as connection:
            assert current_revision(connection) == "0006_limits"
            columns = {c["name"] for c in inspect(connection).get_columns("guild_settings")}
            assert "ask_every" not in columns and "ask_per_hour" not in columns
    finally:
        engine.dispose()
    with DatasetStore.open(data_dir, database_url) as store:  # 0006_limits -> 0007_asking
        kept = store.guild_settings(A)
        assert kept.collecting and kept.ask_every is None and kept.ask_per_hour is None
