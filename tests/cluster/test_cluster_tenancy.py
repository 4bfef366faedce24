"""Nothing of one server reaches another, with two `python -m bot` processes (two shards each,
SHARD_COUNT=4) on one database: SQLite in the shared DATA_DIR, and PostgreSQL (a schema of its
own; skipped without a server, as the datastore tests are, and required under .ci/run).

The look-alike holds four servers, one a shard: A (process a) and C (process a) are padawan's,
who is also the bot's operator; B (process b) was created by eve, who is no operator; D
(process b) is padawan's. A and B teach the same images with opposite labels and each is served
its own answer; C and D, without a model of their own, get the default model's, in either
process, and follow the operator's `!rollback shared`; eve's attempts on the default model are
refused and change nothing; `!dataset` in A shows nothing of B.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from botkit import TOKEN, assert_answered_once, start_shard_process, text_of, wait_until_holding
from leftovers import owned_by_module

from bot.checks import OPERATOR_ONLY
from bot.exts.models._retrainer import SHARED_MODEL
from bot.model_versions import prepare_retrained_folder
from bot.server_models import server_folder
from dataset import DatasetStore, is_holdout
from dataset.database import DATABASE_FILE
from model.bundle import (
    DEFAULT_MODEL_DIR,
    METADATA_FILE,
    current_version,
    model_dir,
    publish,
    set_current,
    staging_folder,
    versions,
)
from playground.discord import DiscordServer, Sharding, numbered_guilds
from playground.launch import LoggedBot

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(300, func_only=True),
]

SHARDS = 4
HOLDERS = {"a": (0, 1), "b": (2, 3)}
SHARDING = Sharding(guilds_per_shard=1, max_concurrency=SHARDS)  # four shards, started at once
REPLY = 90.0  # two bot processes and the test on two loaded cores: generous
EVE = {"username": "eve"}
TAUGHT = {"A": 16, "B": 24}  # images of each class taught; B's include all of A's
VERDICT = re.compile(r"\*\*(Jedi|Sith|Can't tell)\*\* - score")
SWAP = {"Jedi": "Sith", "Sith": "Jedi", "Can't tell": "Can't tell"}


def images_of(folder: Path, label: str, count: int) -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in sorted((folder / label).iterdir())[:count]]


def labels(reply: dict[str, Any]) -> list[str]:
    return VERDICT.findall(text_of(reply))


def swapped(answers: list[str]) -> list[str]:
    return [SWAP[answer] for answer in answers]


def shared_state(folder: Path) -> tuple[list[int], int | None]:
    return versions(folder), current_version(folder)


def prepare_shared_model(data_dir: Path) -> Path:
    """The default model's folder in DATA_DIR/models: version 1 the shipped model (current),
    version 2 the shipped model with its class names swapped, so that a change of the default
    model shows in every answer."""
    folder = prepare_retrained_folder(DEFAULT_MODEL_DIR, data_dir)
    with staging_folder(folder / "next") as staging:
        for path in model_dir(DEFAULT_MODEL_DIR).iterdir():
            if path.is_file():
                shutil.copy2(path, staging / path.name)
        meta = json.loads((staging / METADATA_FILE).read_text())
        meta["class_names"] = list(reversed(meta["class_names"]))
        (staging / METADATA_FILE).write_text(json.dumps(meta))
        publish(staging, folder)
    set_current(folder, 1)
    return folder


@dataclass
class Tenancy:
    """The look-alike, the two processes on one DATA_DIR and database, and the four servers."""

    server: DiscordServer
    folder: Path
    database_url: str | None
    guilds: dict[str, int]
    processes: dict[str, LoggedBot] = field(default_factory=dict)
    posted: list[dict[str, Any]] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def holder(self, guild_id: int) -> str:
        shard = self.server.shard_of(guild_id, SHARDS)
        return next(name for name, shards in HOLDERS.items() if shard in shards)

    def user_id(self, username: str) -> str:
        user = self.server.state.user_named(username)
        assert user is not None, username
        return str(user["id"])

    async def type(self, where: str, content: str, *files: Any, author: Any = None) -> dict:
        """Post `content` in server `where`'s first channel; the bot's reply."""
        message = await self.server.post_message(
            content,
            attachments=list(files),
            author=author,
            channel_id=self.server.first_channel(self.guilds[where]),
        )
        self.posted.append(message)
        return await self.server.wait_for_reply(message["id"], timeout=REPLY)

    async def teach(self, where: str, folder: Path, swap: bool, author: Any = None) -> None:
        """Teach `where` the first `TAUGHT[where]` images of each class (`swap`: each with the
        other label); every reply counts this server's vote only."""
        for label in ("jedi", "sith"):
            said = {"jedi": "sith", "sith": "jedi"}[label] if swap else label
            files = images_of(folder, label, TAUGHT[where])
            for start in range(0, len(files), 10):
                chunk = files[start : start + 10]
                reply = await self.type(where, f"!teach {said}", *chunk, author=author)
                text = text_of(reply)
                # every image kept, with this label: none refused, none labelled otherwise
                assert text.startswith("Taught ") and f"**{said.capitalize()}**" in text, text
                assert not any(w in text for w in ("refused", "otherwise", "disagree")), text

    async def verdicts(self, where: str, files: list[Any], author: Any = None) -> list[str]:
        return labels(await self.type(where, "!jedisith", *files, author=author))

    async def verdicts_become(
        self, where: str, files: list[Any], expected: list[str], author: Any = None
    ) -> None:
        """Ask in `where` until the verdicts are `expected` (a model published or rolled back
        is picked up within RELOAD_INTERVAL); fails after REPLY seconds."""
        deadline = time.monotonic() + REPLY
        while (got := await self.verdicts(where, files, author)) != expected:
            assert time.monotonic() < deadline, f"{where}: {got}, not {expected}"
            await asyncio.sleep(0.5)

    async def settle(self) -> None:
        """A last command in every server, refused at once; then every command was answered
        once (a command answered twice, by both processes or twice by one, shows by then)."""
        for where in self.guilds:
            await self.type(where, "!features 9")
        assert_answered_once(self.server, self.posted)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The cluster's database: None, the SQLite file in DATA_DIR; or a PostgreSQL schema of its
    own (`postgres_server`: skipped, saying how to run it, without a server)."""
    if request.param == "sqlite":
        yield None
        return
    postgres = request.getfixturevalue("postgres_server")
    url = postgres.new_schema()
    try:
        yield url
    finally:
        postgres.drop_schema(url)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(database_url: str | None) -> AsyncIterator[Tenancy]:
    folder = Path(tempfile.mkdtemp(prefix="jedisith-tenancy-"))
    prepare_shared_model(folder / "data")
    try:
        async with DiscordServer(
            token=TOKEN, guilds=numbered_guilds(SHARDS), sharding=SHARDING
        ) as server:
            by_holder = {name: [] for name in HOLDERS}
            for guild_id in server.guild_ids:
                shard = server.shard_of(guild_id, SHARDS)
                by_holder[next(n for n, s in HOLDERS.items() if shard in s)].append(guild_id)
            (a, c), (b, d) = by_holder["a"], by_holder["b"]
            server.give_guild("eve", b)  # before the bots connect
            running = Tenancy(server, folder, database_url, {"A": a, "B": b, "C": c, "D": d})
            settings = {
                "DATA_DIR": str(running.data_dir),
                "RETRAIN_MIN_IMAGES": "5",
                "OOD_POLICY": "off",  # the synthetic drawings are unlike the shipped ones
                "RELOAD_INTERVAL": "0.5",
                **({"DATABASE_URL": database_url} if database_url else {}),
            }
            try:
                for name, shards in HOLDERS.items():
                    process = await start_shard_process(
                        server, folder / name, shards, SHARDS, settings
                    )
                    owned_by_module(process.proc.pid)  # stopped below
                    running.processes[name] = process
                await asyncio.gather(
                    *(
                        wait_until_holding(running.processes[name], f"{s[0]}-{s[1]} of {SHARDS}")
                        for name, s in HOLDERS.items()
                    )
                )
                yield running
            finally:
                for process in running.processes.values():
                    with contextlib.suppress(ProcessLookupError):
                        process.proc.terminate()
                for process in running.processes.values():
                    with contextlib.suppress(TimeoutError):
                        await process.wait(20)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def probe(tiny_dataset: Path) -> tuple[list[Any], list[str]]:
    """Two Jedi and two Sith that A and B both taught, and their true labels."""
    files = images_of(tiny_dataset, "jedi", 2) + images_of(tiny_dataset, "sith", 2)
    return files, ["Jedi", "Jedi", "Sith", "Sith"]


async def test_the_servers_live_in_different_processes(cluster: Tenancy) -> None:
    holders = {where: cluster.holder(guild_id) for where, guild_id in cluster.guilds.items()}
    assert holders == {"A": "a", "B": "b", "C": "a", "D": "b"}
    assert cluster.server.state.guild(cluster.guilds["B"]).owner_id == int(cluster.user_id("eve"))
    assert cluster.server.state.guild(cluster.guilds["A"]).owner_id == int(
        cluster.server.human["id"]
    )
    # On PostgreSQL, both processes use it: neither made a SQLite file of its own.
    sqlite_file = (cluster.data_dir / DATABASE_FILE).exists()
    assert sqlite_file == (cluster.database_url is None)


async def test_two_servers_teach_opposite_labels_and_each_gets_its_own_answer(
    cluster: Tenancy, tiny_dataset: Path
) -> None:
    files, truth = probe(tiny_dataset)
    default = await cluster.verdicts("C", files)
    assert len(default) == 4 and await cluster.verdicts("D", files) == default
    assert default != swapped(truth)  # B's answer differs from the default model's
    for where, author in (("A", None), ("B", EVE)):
        reply = await cluster.type(where, "!dataset collect on", author=author)
        assert "**on**" in text_of(reply), text_of(reply)
    await cluster.teach("A", tiny_dataset, swap=False)
    await cluster.teach("B", tiny_dataset, swap=True, author=EVE)  # the same images, swapped

    # A's labels are the default model's answers: its head is no surer, so `force` publishes it
    for where, command, author in (("A", "!retrain force", None), ("B", "!retrain", EVE)):
        reply = await cluster.type(where, command, author=author)
        text = text_of(reply)
        assert text.startswith("**New model for this server: version 1**, a head on"), text
    for where in ("A", "B"):
        assert versions(server_folder(cluster.data_dir, cluster.guilds[where])) == [1]
    for where in ("C", "D"):
        assert not server_folder(cluster.data_dir, cluster.guilds[where]).exists()

    assert await cluster.verdicts("A", files) == truth
    assert await cluster.verdicts("B", files, EVE) == swapped(truth)
    assert await cluster.verdicts("C", files) == default
    assert await cluster.verdicts("D", files) == default

    # B goes back to the default model and forward again: its process reloads B's head each
    # time; A, in the other process, is not touched.
    back = await cluster.type("B", "!rollback default", author=EVE)
    assert text_of(back).startswith("This server is served the default model again")
    assert await cluster.verdicts("B", files, EVE) == default
    assert await cluster.verdicts("A", files) == truth
    again = await cluster.type("B", "!rollback 1", author=EVE)
    assert text_of(again).startswith("Version 1 of this server's model is current again")
    assert await cluster.verdicts("B", files, EVE) == swapped(truth)
    assert await cluster.verdicts("A", files) == truth
    await cluster.settle()


async def test_only_the_operator_changes_what_servers_without_a_model_get(
    cluster: Tenancy, tiny_dataset: Path
) -> None:
    files, truth = probe(tiny_dataset)
    folder = cluster.data_dir / "models"
    assert shared_state(folder) == ([1, 2], 1)
    default = await cluster.verdicts("C", files)

    # The operator, in A (process a), makes version 2 (class names swapped) the default: both
    # processes serve it to C and D; A and B keep their own models.
    moved = await cluster.type("A", "!rollback shared 2")
    assert text_of(moved).startswith("Version 2 is current again (it was version 1)")
    for where in ("C", "D"):
        await cluster.verdicts_become(where, files, swapped(default))
    assert await cluster.verdicts("A", files) == truth
    assert await cluster.verdicts("B", files, EVE) == swapped(truth)

    # A training of the default model runs (recorded as another process records its own).
    with DatasetStore.open(cluster.data_dir, cluster.database_url) as store:
        record = await asyncio.to_thread(
            store.trainings.start,
            scope=SHARED_MODEL,
            guild_id=cluster.guilds["A"],
            channel_id=None,
            user_id=int(cluster.server.human["id"]),
            pid=os.getpid(),
            params={"epochs": 1},
        )
    try:
        for command in ("!rollback shared 1", "!retrain shared", "!retrain shared cancel"):
            reply = await cluster.type("B", command, author=EVE)
            assert text_of(reply) == OPERATOR_ONLY, (command, text_of(reply))
        assert shared_state(folder) == ([1, 2], 2)
        with DatasetStore.open(cluster.data_dir, cluster.database_url) as store:
            latest = await asyncio.to_thread(store.trainings.latest, 5, SHARED_MODEL)
        assert [(r.id, r.status, r.cancel_requested) for r in latest] == [
            (record.id, "running", False)
        ]
        for where in ("C", "D"):
            assert await cluster.verdicts(where, files) == swapped(default)

        # The operator stops it from process a, which does not run it.
        stopped = await cluster.type("A", "!retrain shared cancel")
        assert text_of(stopped).startswith("Stopping the training (another of my processes")
        with DatasetStore.open(cluster.data_dir, cluster.database_url) as store:
            asked = await asyncio.to_thread(store.trainings.running, SHARED_MODEL)
        assert asked is not None and asked.cancel_requested
    finally:
        with DatasetStore.open(cluster.data_dir, cluster.database_url) as store:
            await asyncio.to_thread(store.trainings.finish, record.id, "cancelled")

    back = await cluster.type("A", "!rollback shared 1")
    assert text_of(back).startswith("Version 1 is current again (it was version 2)")
    for where in ("C", "D"):
        await cluster.verdicts_become(where, files, default)
    assert shared_state(folder) == ([1, 2], 1)
    await cluster.settle()


def expected_counts(tiny_dataset: Path, count: int) -> list[str]:
    """`!dataset`'s line for each class of a server that taught `count` images of each."""
    lines = []
    for label in ("jedi", "sith"):
        files = images_of(tiny_dataset, label, count)
        held = sum(is_holdout(hashlib.sha256(data).hexdigest()) for _, data in files)
        lines.append(f"- {label.capitalize()}: {count} ({count - held} to train, {held} held out)")
    return lines


async def test_dataset_in_a_shows_nothing_of_b(cluster: Tenancy, tiny_dataset: Path) -> None:
    padawan, eve = str(cluster.server.human["id"]), cluster.user_id("eve")
    shown = {
        "A": text_of(await cluster.type("A", "!dataset")),
        "B": text_of(await cluster.type("B", "!dataset", author=EVE)),
    }
    for where, person in (("A", padawan), ("B", eve)):
        text = shown[where]
        for line in expected_counts(tiny_dataset, TAUGHT[where]):
            assert line in text, text
        assert set(re.findall(r"<@!?(\d+)>", text)) == {person}, text
        assert "disagreeing" not in text, text  # the other server's opposite votes
    assert eve not in shown["A"]
    await cluster.settle()


async def test_neither_process_logged_a_traceback(cluster: Tenancy) -> None:
    for name, process in cluster.processes.items():
        log = process.output()[1]
        assert "Traceback" not in log, f"{name}: {log}"
