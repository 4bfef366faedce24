"""What the end-to-end tests of the bot share: its images, the words of its replies, and
`Running`, the in-process bot (the fixtures that start it are in conftest.py)."""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from botkit import buttons_of, is_layout, rows_of, text_of  # noqa: F401 (the e2e tests' helpers)
from PIL import Image

from model.worker import ModelWorker
from playground.discord import DiscordServer
from playground.launch import bot_setting_keys

TOKEN = "MTk4NjIy.jedisith-e2e.Gx7Qp-secret-token"
VERDICT = re.compile(r"\*\*(Jedi|Sith|Can't tell)\*\* - score [01]\.\d{3} \(")
REPLY_TIMEOUT = 20.0
LITERT_BANNER = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


# -- helpers -----------------------------------------------------------------------------------


def load_images(folder: Path, model: Path | None = None) -> list[tuple[str, bytes]]:
    """Three Jedi and three Sith images; with `model`, ones its detector finds typical (by
    design it finds 5% of such images unlike its training set, and refuses to judge them)."""
    from model.preprocess import load_image
    from model.runtime import Classifier

    classifier = Classifier.load(model, "litert") if model is not None else None
    chosen = []
    for label in ("jedi", "sith"):
        files = sorted((folder / label).iterdir())
        if classifier is not None:
            predictions = classifier.predict([load_image(path.read_bytes()) for path in files])
            files = [f for f, p in zip(files, predictions, strict=True) if p.in_distribution]
        chosen += files[:3]
    return [(path.name, path.read_bytes()) for path in chosen]


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def noise_png(seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (180, 240, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def verdict_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if VERDICT.search(line)]


def replied_to(reply: dict[str, Any]) -> str | None:
    return (reply.get("message_reference") or {}).get("message_id")


def bot_env(**values: str) -> dict[str, str]:
    """The environment for `python -m bot`: this one without any bot setting, plus `values`."""
    env = {k: v for k, v in os.environ.items() if k not in bot_setting_keys()}
    env["DATA_DIR"] = tempfile.mkdtemp(prefix="jedisith-e2e-data-")  # never the project's
    env.update(values)
    return env


# -- the in-process bot ------------------------------------------------------------------------


@dataclass
class Running:
    server: DiscordServer
    worker: ModelWorker
    model_path: Path
    images: list[tuple[str, bytes]]

    async def command(
        self,
        content: str,
        attachments: list[tuple[str, bytes]] | list[tuple[str, bytes, str]] = (),  # type: ignore[assignment]
        *,
        reply_to: int | str | None = None,
        author: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Post a message as a human; return it and the bot's reply to it."""
        message = await self.server.post_message(
            content,
            attachments=attachments,
            reply_to=int(reply_to) if reply_to is not None else None,
            author=author,
        )
        reply = await self.server.wait_for_reply(message["id"], timeout=REPLY_TIMEOUT)
        return message, reply

    async def assert_still_answers(self) -> None:
        message, reply = await self.command("!jedisith", [self.images[0]])
        assert replied_to(reply) == message["id"]
        assert len(verdict_lines(text_of(reply))) == 1
