"""What a training's message says when a restart of the bot interrupted it: the command that
starts that training again (`!retrain network` for a server's network, `!retrain` otherwise)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.exts.models._retrainer import Retrainer
from bot.settings import Settings
from dataset import DatasetStore

pytestmark = pytest.mark.asyncio(loop_scope="function")

GUILD, CHANNEL, MESSAGE = 5, 6, 700


class RecordedEdits:
    """A `Notifier` that keeps the progress messages' new texts by message id."""

    def __init__(self) -> None:
        self.texts: dict[int, str] = {}

    def name_of(self, user_id: int | None) -> str:
        return f"<@{user_id}>"

    async def edit(self, channel_id: int, message_id: int, text: str) -> None:
        self.texts[message_id] = text


def _ended_pid() -> int:
    """The id of a process that has ended, as a training's bot that crashed leaves behind."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


WHY = "**Training interrupted**: the bot restarted during it."
SHARED = f"{WHY} The current model and the dataset are unchanged. `!retrain` starts again."
NETWORK = (
    f"{WHY} This server's model and its images are unchanged. `!retrain network` starts again."
)


@pytest.mark.parametrize(("scope", "said"), [(0, SHARED), (GUILD, NETWORK)])
async def test_a_restart_during_a_training_names_the_command_that_starts_it_again(
    tmp_path: Path, scope: int, said: str
) -> None:
    settings = Settings(token="x", data_dir=tmp_path / "data")
    with DatasetStore.open(tmp_path / "data") as store:
        record = store.trainings.start(
            scope=scope, guild_id=GUILD, channel_id=CHANNEL, user_id=9, pid=_ended_pid(), params={}
        )
        store.trainings.heartbeat(record.id, message_id=MESSAGE)
        edits = RecordedEdits()
        retrainer = Retrainer(store, settings, ("jedi", "sith"), lambda _: None, edits)
        await retrainer.recover()
    assert edits.texts == {MESSAGE: said}
