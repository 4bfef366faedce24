"""Fixtures shared by the whole suite: a tiny generated dataset and a model trained on it once;
the dataset's database, on SQLite and on PostgreSQL; and the check that no test leaves a
process or thread running."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from leftovers import MODULE_OWNED, Snapshot

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 synthetic Jedi and 24 Sith images, generated for this run."""
    from training.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("tiny-dataset")
    generate_dataset(root, jedi=24, sith=24, seed=11)
    return root


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> Path:
    """A model folder trained for two epochs on `tiny_dataset` by the project's own pipeline."""
    from training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("trained") / "model"
    train(TrainConfig(data_dir=tiny_dataset, out=out, epochs=2, batch_size=16, verbose=0))
    return out


@pytest.fixture(scope="session")
def old_model(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> Path:
    """`trained_model` as a flat folder made before versions, the detector and calibration."""
    import json
    import shutil

    import keras

    from model.bundle import model_dir
    from training.export import export_tflite

    old = tmp_path_factory.mktemp("old") / "model"
    shutil.copytree(model_dir(trained_model), old)  # flat: the files right in the folder
    network = keras.saving.load_model(old / "model.keras", compile=False)
    (old / "model.tflite").write_bytes(export_tflite(network))  # no detector in the graph
    (old / "detector.npz").unlink()
    (old / "calibration.png").unlink()
    metadata = json.loads((old / "model.json").read_text())
    for key in ("calibration", "detector"):
        metadata.pop(key)
    metadata["files"].pop("detector.npz")
    metadata["files"]["model.tflite"] = _sha256(old / "model.tflite")
    (old / "model.json").write_text(json.dumps(metadata))
    return old


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the dataset's database: SQLite always, PostgreSQL when a server is given -------------------

POSTGRES_URL_ENV = "JEDISITH_TEST_DATABASE_URL"
REQUIRE_POSTGRES_ENV = "JEDISITH_REQUIRE_POSTGRES"
ENABLE_POSTGRES = (
    f"set {POSTGRES_URL_ENV}=postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB (a database USER "
    "may create schemas in) to run them (.ci/run starts a throwaway server for them)"
)


class Databases:
    """Where a test's dataset lives: `url(folder)` is the database of the dataset in `folder`,
    the same URL for the same folder, as `DatasetStore.open(folder)` would find it again.

    SQLite: the file in the folder. PostgreSQL: a schema of its own (`search_path` in the
    URL), created on first use and dropped with everything in it after the test."""

    def __init__(self, name: str, server: Any = None) -> None:
        self.name = name
        self._server = server
        self._urls: dict[Path, str] = {}

    def url(self, folder: Path) -> str:
        folder = Path(folder).absolute()
        if folder not in self._urls:
            if self._server is None:
                from dataset.database import sqlite_url

                self._urls[folder] = sqlite_url(folder)
            else:
                self._urls[folder] = self._server.new_schema()
        return self._urls[folder]

    def drop(self) -> None:
        if self._server is not None:
            for url in self._urls.values():
                self._server.drop_schema(url)
        self._urls.clear()


class PostgresServer:
    """The server `JEDISITH_TEST_DATABASE_URL` names, handing out throwaway schemas."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine, make_url

        self.url = make_url(url)
        if self.url.drivername in ("postgresql", "postgres"):
            self.url = self.url.set(drivername="postgresql+psycopg")
        self.engine = create_engine(
            self.url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )

    def check(self) -> None:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def new_schema(self) -> str:
        import uuid

        from sqlalchemy import text

        schema = f"test_{uuid.uuid4().hex[:16]}"
        with self.engine.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        options = " ".join(filter(None, [self.url.query.get("options"), f"-csearch_path={schema}"]))
        return self.url.update_query_dict({"options": options}).render_as_string(
            hide_password=False
        )

    def drop_schema(self, url: str) -> None:
        from sqlalchemy import make_url, text

        schema = str(make_url(url).query["options"]).rpartition("search_path=")[2]
        with self.engine.connect() as connection:
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The test PostgreSQL server; its tests are skipped, saying how to run them, when there is
    none (or fail, under JEDISITH_REQUIRE_POSTGRES=1, as in CI)."""
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    server, problem = None, ""
    if not url:
        problem = f"no PostgreSQL server for the tests: {ENABLE_POSTGRES}"
    else:
        try:
            server = PostgresServer(url)
            server.check()
        except Exception as error:  # the driver missing, a bad URL, no server there
            from dataset.database import display_url

            reason = str(getattr(error, "orig", None) or error).strip().splitlines()
            problem = (
                f"PostgreSQL at {display_url(url)} is out of reach "
                f"({reason[0] if reason else type(error).__name__}); {ENABLE_POSTGRES}"
            )
    if problem:
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{REQUIRE_POSTGRES_ENV}=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    assert server is not None
    yield server
    server.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[Databases]:
    """Each test that takes this runs twice: on SQLite, and on PostgreSQL (see
    `postgres_server`), each time on an empty database of its own."""
    server = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    databases = Databases(request.param, server)
    try:
        yield databases
    finally:
        databases.drop()


# -- nothing a test starts outlives it ----------------------------------------------------------
# After each test, and after the last test of a module (its module-scoped fixtures then ended):
# no child process of pytest still runs and no thread is left working, beyond those there
# before (`leftovers.Snapshot`); a leftover is killed and fails the test that left it, by name.
# Hooks rather than an autouse fixture: the snapshot is taken once the test's fixtures are set
# up, so a process that a module-scoped fixture starts lazily is not taken for a leak (nor one a
# test starts for such a fixture: `leftovers.owned_by_module`).

_test_start: dict[str, Snapshot] = {}
_module_start: dict[Any, Snapshot] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    module = item.getparent(pytest.Module)
    if module not in _module_start:  # before the module's fixtures start
        _module_start.clear()
        _module_start[module] = Snapshot.take()
    try:
        return (yield)
    finally:
        _test_start[item.nodeid] = Snapshot.take()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    try:
        return (yield)
    finally:
        start = _test_start.pop(item.nodeid, None)
        found = start.leftovers(owned=MODULE_OWNED) if start is not None else []
        module = item.getparent(pytest.Module)
        if nextitem is None or nextitem.getparent(pytest.Module) is not module:
            module_start = _module_start.pop(module, None)  # its fixtures have ended
            if module_start is not None:
                found += module_start.leftovers()
            MODULE_OWNED.clear()
        if found:
            leftover = "; ".join(dict.fromkeys(found))
            pytest.fail(
                f"left running after this test or its module's fixtures: {leftover} "
                "(its processes are killed)",
                pytrace=False,
            )
