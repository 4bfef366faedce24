"""Alembic's environment for the dataset: the store passes its own connection in
`config.attributes["connection"]`; the `alembic` command line passes `-x url=...` instead.

Batch mode is on, so a later migration that alters a table works on SQLite too (it copies the
table, since SQLite's ALTER TABLE cannot change columns or constraints).
"""

from __future__ import annotations

from typing import Any

from alembic import context

from dataset.database import make_engine
from dataset.schema import Base, UTCDateTime

config = context.config


def render_item(kind: str, item: Any, autogen_context: Any) -> str | bool:
    """Autogenerate writes plain SQLAlchemy types, so a revision never imports the models."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def url() -> str:
    given = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not given:
        raise SystemExit(
            "alembic: pass the database with -x url=sqlite:///DATA_DIR/dataset.sqlite3"
        )
    return given


if context.is_offline_mode():
    context.configure(url=url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    run(connection)
else:
    engine = make_engine(url())
    try:
        with engine.begin() as connection:
            run(connection)
    finally:
        engine.dispose()
