"""A training job of the `Retrainer`, what it tells Discord, and `!retrain`'s options."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import discord

from bot.errors import UserFacingError
from bot.exts.models._words import RetrainOptions
from dataset import TrainingRecord
from model.preprocess import IMAGE_TYPES
from training.protocol import DEFAULT_EPOCHS, WorkFolder

SHARED_MODEL = 0  # the scope of the shared model (a server's own model: the server's id)


class Notifier(Protocol):
    """What a training tells Discord: who a user is, and a progress message's new text."""

    def name_of(self, user_id: int | None) -> str: ...

    async def edit(self, channel_id: int, message_id: int, text: str) -> None: ...


class ClientNotifier:
    """A `Notifier` on the channels and users a `discord.Client` holds in its cache (another
    shard's channel is not there: its message is left as it is)."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    def name_of(self, user_id: int | None) -> str:
        user = self.client.get_user(user_id) if user_id is not None else None
        if user is not None:
            return user.display_name
        return f"<@{user_id}>" if user_id is not None else "someone"

    async def edit(self, channel_id: int, message_id: int, text: str) -> None:
        channel = self.client.get_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            return
        with contextlib.suppress(discord.HTTPException):
            await channel.get_partial_message(message_id).edit(content=text)  # type: ignore[attr-defined]


def parse_options(words: list[str], max_epochs: int) -> RetrainOptions:
    """`force` and `epochs=N`, in any order; anything else is a clear error."""
    epochs, force = DEFAULT_EPOCHS, False
    for word in words:
        key, _, value = word.lower().partition("=")
        if key == "force" and not value:
            force = True
        elif key == "epochs" and value.isdigit() and 1 <= int(value) <= max_epochs:
            epochs = int(value)
        elif key == "epochs":
            raise UserFacingError(f"`epochs=` takes a whole number from 1 to {max_epochs}.")
        else:
            raise UserFacingError(
                f"I don't know `{word[:40]}`. Try `retrain`, `retrain epochs=10`, "
                "`retrain force` or `retrain cancel`."
            )
    return RetrainOptions(epochs, force)


def count_images(folder: Path | None, class_names: Sequence[str]) -> dict[str, int]:
    """Image files per class folder of `folder` (the base set), by extension."""
    counts = dict.fromkeys(class_names, 0)
    if folder is None:
        return counts
    for name in class_names:
        path = Path(folder) / name
        if path.is_dir():
            counts[name] = sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_TYPES)
    return counts


@dataclass
class Job:
    record: TrainingRecord
    options: RetrainOptions
    work: WorkFolder
    target: Path  # the model folder the candidate is published into
    message: discord.Message
    user: discord.abc.User
    scope: int = SHARED_MODEL
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    cancelled_by: str | None = None  # who asked it to stop, as shown in the final message
    holdout: Path | None = None  # the operator's DEFAULT_HOLDOUT_DIR; None: the exported one
    started: float = field(default_factory=time.monotonic)
