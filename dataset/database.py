"""The engine and the migrations: one Engine per store, its schema brought to head on open.

The same models, migrations and queries run on SQLite (the default, `DATA_DIR/dataset.sqlite3`)
and on PostgreSQL (`postgresql+psycopg://user:password@host/db`, with the `postgres` extra; a
bare `postgresql://` or `postgres://` means the same driver). What differs is set up here:

- SQLite is set up on every new connection by a `connect` event: WAL journal mode (readers never
  wait for the writer, the writer never waits for readers), a busy timeout (a second writer
  waits its turn instead of failing at once), foreign keys on, and `synchronous = NORMAL`,
  SQLite's advice for WAL: a commit survives the process crashing; a power cut may lose the
  last commits but never corrupts the file. Python's sqlite3 module is put in autocommit mode
  and the `begin` event issues the BEGIN itself, as SQLAlchemy's documentation recommends, so a
  transaction really spans all its statements. The writer's engine (`writer()`) begins with
  BEGIN IMMEDIATE, taking SQLite's write lock up front: two writers queue on the busy timeout
  instead of one failing half-way with "database is locked".
- PostgreSQL keeps its own defaults (READ COMMITTED): writers from several processes run side
  by side, and where two of them meet on a unique key (the same image, the same person's vote,
  a second running training) the loser gets an IntegrityError and the store tries again or
  reports the winner (`dataset.store`). Connections are checked before use (a restarted
  server costs no failed command) and a connection attempt gives up after
  `CONNECT_TIMEOUT` seconds unless the URL says otherwise.

The schema is Alembic's: `migrations/` ships inside the package and `upgrade` runs it
programmatically on the store's own connection, so a fresh database is created and an old one
brought up to date the moment a store opens it, by one process at a time (SQLite's write lock;
a transaction-scoped advisory lock on PostgreSQL, whose DDL is transactional too). A new
revision is written with the command in `migrations/alembic.ini`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from dataset.records import DatasetError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DATABASE_FILE = "dataset.sqlite3"
BUSY_TIMEOUT_MS = 15_000
VERSION_TABLE = "alembic_version"
# The newest revision in migrations/versions (a test checks it is Alembic's head): a database
# already there opens without importing Alembic, which costs a fifth of a second.
HEAD_REVISION = "0008_holdout_voters"
_BEGIN = "sqlite_begin"  # execution option: how an SQLite transaction begins
CONNECT_TIMEOUT = 10  # seconds; PostgreSQL, unless the URL sets connect_timeout
# pg_advisory_xact_lock's key for "migrating": any constant that nothing else uses.
MIGRATION_LOCK = int.from_bytes(b"jedisith", "big") >> 1


def sqlite_url(data_dir: Path) -> str:
    """The default database: a SQLite file in `data_dir`."""
    return f"sqlite:///{Path(data_dir) / DATABASE_FILE}"


def display_url(url: str) -> str:
    """`url` fit to print: any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparsable: only its scheme, since where a password ends is unknown
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***" if rest else "***"


def hide_password(text: str, url: str | None) -> str:
    """`text` (an error's message) with the password of `url` replaced by ***, wherever it is."""
    if not url:
        return text
    secrets = {url}
    try:
        password = make_url(url).password
    except Exception:
        password = None
    if password:
        secrets.add(str(password))
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def make_engine(url: str) -> Engine:
    """An Engine for `url`; SQLite connections are configured as described above."""
    try:
        parsed = make_url(url)
    except Exception:
        raise DatasetError(f"not a database URL: {display_url(url)}") from None
    if parsed.drivername in ("postgresql", "postgres"):  # the driver the extra installs
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "postgresql":
        timeout = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT}
        return _create(parsed, pool_pre_ping=True, connect_args=timeout)
    if parsed.get_backend_name() != "sqlite":
        return _create(parsed, pool_pre_ping=True)
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if parsed.database in (None, "", ":memory:"):  # one shared connection, or each is empty
        options["poolclass"] = StaticPool
    engine = _create(parsed, **options)
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def _create(url: URL, **options: Any) -> Engine:
    try:
        return create_engine(url, **options)
    except ImportError as error:  # the URL's driver, e.g. psycopg for postgresql://
        raise DatasetError(
            f"cannot use {display_url(str(url))}: its driver is not installed ({error})"
        ) from None
    except (SQLAlchemyError, ValueError) as error:  # an unknown dialect, a bad option
        raise DatasetError(f"cannot use {display_url(str(url))}: {error}") from None


def writer(engine: Engine) -> Engine:
    """The same engine (and pool) whose transactions take the write lock when they begin."""
    return engine.execution_options(**{_BEGIN: "IMMEDIATE"})


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (`_begin_sqlite`)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _wal(cursor)
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _wal(cursor: Any) -> None:
    """Switch to WAL (a no-op once the file is WAL). On a new file, while another process
    switches it, SQLite answers "database is locked" at once, without its busy handler: two
    processes opening a new dataset together would see one fail, so the switch is retried
    until the busy timeout instead."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _begin_sqlite(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the shipped migrations, bound to `connection` if given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision, in one write transaction.

    A database already at the newest revision is left alone without starting Alembic (which
    would log a few lines on every start)."""
    with writer(engine).begin() as connection:
        current = current_revision(connection)
        if current == HEAD_REVISION:
            return
        if connection.dialect.name == "postgresql":  # one migrating process at a time
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            current = current_revision(connection)  # as the process we waited for left it
            if current == HEAD_REVISION:
                return
        from alembic import command
        from alembic.util import CommandError

        log.info("dataset schema: %s -> %s", current or "empty", HEAD_REVISION)
        try:
            command.upgrade(alembic_config(connection), "head")
        except CommandError as error:
            if "Can't locate revision" in str(error):
                raise DatasetError(
                    "the dataset was written by a newer version of jedisith; upgrade jedisith "
                    f"to use it ({error})"
                ) from None
            raise


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None for an empty one."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def head_revision() -> str:
    """The newest revision the shipped migrations define, as Alembic reads them."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())
