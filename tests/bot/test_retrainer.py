"""The bot's side of a training, on its own: a trainer's result it cannot read, and a database
out of reach at start-up."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

from fakes import progress_message, user

from bot.exts.models import Models, _retrainer
from bot.exts.models._jobs import ClientNotifier, Job
from bot.exts.models._retrainer import SHARED_MODEL, Retrainer
from bot.exts.models._words import RetrainOptions
from dataset import DatasetStore, Trainings
from training.protocol import PROTOCOL, WorkFolder

USER = user(7, "anakin")
MESSAGE_ID = 99
NEWER = (
    "import json, pathlib, sys\n"
    f"result = {{'protocol': {PROTOCOL + 1}, 'status': 'published', 'reason': '', 'version': 3}}\n"
    "(pathlib.Path(sys.argv[1]) / 'result.json').write_text(json.dumps(result))\n"
)


class NewerTrainer(Retrainer):
    def command(self, job: Job) -> list[str]:
        return [sys.executable, "-c", NEWER, str(job.work.path)]


def settings(data_dir: Path) -> Any:
    return SimpleNamespace(data_dir=data_dir, command_prefix="!")


def notifier() -> ClientNotifier:
    client = SimpleNamespace(get_user=lambda _: None, get_channel=lambda _: None)
    return ClientNotifier(client)  # type: ignore[arg-type]


async def test_a_result_from_a_newer_trainer_is_a_failure_that_says_so(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(_retrainer, "PROGRESS_EVERY", 0.1)
    served: list[Path] = []
    with DatasetStore.open(tmp_path / "data") as store:
        names = ("jedi", "sith")
        trainer = NewerTrainer(store, settings(tmp_path), names, served.append, notifier())
        record = store.trainings.start(
            scope=0, guild_id=1, channel_id=2, user_id=USER.id, pid=os.getpid(), params={}
        )
        work = WorkFolder(trainer.runs / str(record.id))
        work.path.mkdir(parents=True)
        message, edits = progress_message(MESSAGE_ID)
        job = Job(record, RetrainOptions(1), work, tmp_path / "model", message, USER)  # type: ignore[arg-type]
        trainer.job = job
        await trainer._watch(job)
        assert edits[-1].startswith(
            "**Training failed**: the trainer's result could not be read (the trainer wrote "
            f"protocol {PROTOCOL + 1}, newer than this bot's {PROTOCOL}"
        ), edits[-1]
        assert edits[-1].endswith("The current model and the dataset are unchanged.")
        assert store.trainings.latest(1)[0].status == "failed"
        assert served == [] and trainer.job is None


def test_the_trainer_is_started_without_a_parent_pid(tmp_path: Path) -> None:
    trainer = Retrainer(None, settings(tmp_path), ("jedi",), print, notifier())
    trainer.settings.retrain_min_images = 20
    record = SimpleNamespace(id=4)
    job = Job(record, RetrainOptions(3), WorkFolder(tmp_path), tmp_path, None, USER)  # type: ignore[arg-type]
    command = trainer.command(job)
    assert command[1:3] == ["-m", "training.retrain"]
    assert "--parent-pid" not in command
    assert command[command.index("--work") + 1] == str(tmp_path)
    assert command[command.index("--data") + 1] == str(tmp_path / "data")


async def test_a_database_out_of_reach_at_start_up_is_one_line(tmp_path: Path, caplog) -> None:
    store = mock.create_autospec(DatasetStore, instance=True)  # `trainings` is set in __init__
    store.trainings = mock.create_autospec(Trainings, instance=True, spec_set=True)
    store.trainings.recover_interrupted.side_effect = sqlite3.OperationalError(
        "unable to open database file"
    )
    cog = Models(SimpleNamespace())  # type: ignore[arg-type]
    cog.retrainer = Retrainer(store, settings(tmp_path), ("jedi",), print, notifier())
    with caplog.at_level(logging.DEBUG):
        await cog.on_ready()  # the listener discord.py calls: it must not raise
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in errors] == [
        "could not look for trainings a previous run left running: "
        "OperationalError: unable to open database file"
    ]
    assert errors[0].exc_info is None
    store.trainings.recover_interrupted.assert_called_once()


async def test_a_cancel_stops_only_the_training_of_its_own_scope(tmp_path: Path) -> None:
    """A server's `!retrain cancel` (its scope, the server's id) never stops the shared
    model's training, in this process or another."""
    with DatasetStore.open(tmp_path / "data") as store:
        trainer = Retrainer(store, settings(tmp_path), ("jedi", "sith"), print, notifier())
        record = store.trainings.start(
            scope=SHARED_MODEL,
            guild_id=1,
            channel_id=2,
            user_id=USER.id,
            pid=os.getpid(),
            params={},
        )
        assert await trainer.running(SHARED_MODEL) == await trainer.running()
        assert await trainer.running(1234) is None
        assert not await trainer.cancel(user(8, "eve"), 1234)  # only asked through the store
        assert not store.trainings.running(SHARED_MODEL).cancel_requested
        message, _ = progress_message(MESSAGE_ID)
        work = WorkFolder(trainer.runs / str(record.id))
        trainer.job = Job(record, RetrainOptions(1), work, tmp_path / "model", message, USER)  # type: ignore[arg-type]
        assert not await trainer.cancel(user(8, "eve"), 1234)  # this process's own
        assert not store.trainings.running(SHARED_MODEL).cancel_requested
        assert await trainer.cancel(USER, SHARED_MODEL)
        assert store.trainings.running(SHARED_MODEL).cancel_requested


SECRETS = {
    "DISCORD_TOKEN": "MTk4.trainer-must-not-see-this",
    "DATABASE_URL": "postgresql+psycopg://jedisith:db-password-for-no-trainer@db/jedisith",
    "PGPASSWORD": "db-password-for-no-trainer",
}
ENVIRONMENT_DUMP = (
    "import json, os, pathlib, sys\n"
    "(pathlib.Path(sys.argv[1]) / 'env.json').write_text(json.dumps(dict(os.environ)))\n"
)
FAILS_WITH_PATHS = (
    "import json, pathlib, sys\n"
    "work = pathlib.Path(sys.argv[1]).resolve()\n"
    "reason = (f'failed while training: [Errno 2] No such file: {work}/data/jedi/a.png; nothing '\n"
    "          f'was published, {work.parent}/model is unchanged (details in {work}/train.log)')\n"
    f"result = {{'protocol': {PROTOCOL}, 'status': 'failed', 'reason': reason}}\n"
    "(work / 'result.json').write_text(json.dumps(result))\n"
)


class ScriptTrainer(Retrainer):
    """The real `_watch` running a small script instead of `training.retrain`."""

    script = ""

    def command(self, job: Job) -> list[str]:
        return [sys.executable, "-c", self.script, str(job.work.path)]


async def _run_script(tmp_path: Path, script: str) -> tuple[Path, list[str], Any]:
    """Run `script` as the trainer of one training; its work folder, the progress message's
    edits and the training's row."""
    ScriptTrainer.script = script
    with DatasetStore.open(tmp_path / "data") as store:
        trainer = ScriptTrainer(store, settings(tmp_path), ("jedi", "sith"), print, notifier())
        record = store.trainings.start(
            scope=0, guild_id=1, channel_id=2, user_id=USER.id, pid=os.getpid(), params={}
        )
        work = WorkFolder(trainer.runs / str(record.id))
        work.path.mkdir(parents=True)
        message, edits = progress_message(MESSAGE_ID)
        job = Job(record, RetrainOptions(1), work, tmp_path / "model", message, USER)  # type: ignore[arg-type]
        trainer.job = job
        await trainer._watch(job)
        return work.path, edits, store.trainings.latest(1)[0]


async def test_the_trainer_gets_no_token_and_no_database_password(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(_retrainer, "PROGRESS_EVERY", 0.1)
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    work, edits, _ = await _run_script(tmp_path, ENVIRONMENT_DUMP)
    env = json.loads((work / "env.json").read_text())
    assert not set(SECRETS) & set(env), sorted(env)
    assert not any(secret in value for secret in SECRETS.values() for value in env.values())
    assert env["PATH"] == os.environ["PATH"] and env["TF_CPP_MIN_LOG_LEVEL"] == "2"
    # It ended without a result: the message says where its log is, without the host's path.
    assert "stopped without a result (exit code 0)" in edits[-1], edits[-1]
    assert str(tmp_path) not in edits[-1] and "trainings/1" in edits[-1]


async def test_a_trainer_reason_naming_folders_is_shown_without_them(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(_retrainer, "PROGRESS_EVERY", 0.1)
    _, edits, row = await _run_script(tmp_path, FAILS_WITH_PATHS)
    assert edits[-1].startswith(
        "**Training failed**: failed while training: [Errno 2] No such file: a.png; nothing was "
        "published, model is unchanged (details in train.log)."
    ), edits[-1]
    assert str(tmp_path.resolve()) not in str(row.result)  # nor in the row `!model` shows
