"""What the end-to-end tests of server models share: three servers of the look-alike (A, B,
C), commands typed in them, and the verdicts read from a reply."""

from __future__ import annotations

import re
from pathlib import Path

from botkit import Running, text_of

EVE = {"username": "eve"}
VERDICT = re.compile(r"\*\*(Jedi|Sith|Can't tell)\*\* - score")


def images_of(folder: Path, label: str, count: int | None = None) -> list[tuple[str, bytes]]:
    files = sorted((folder / label).iterdir())[:count]
    return [(path.name, path.read_bytes()) for path in files]


def labels(reply: dict) -> list[str]:
    return VERDICT.findall(text_of(reply))


class Servers:
    """The three servers' channels, and commands typed in them."""

    def __init__(self, running: Running) -> None:
        self.running = running
        ids = running.server.guild_ids
        self.channels = {name: running.server.first_channel(ids[i]) for i, name in enumerate("ABC")}

    async def type(self, where: str, content: str, *files, author=None) -> dict:
        options = {"author": author} if author is not None else {}
        return await self.running.command(
            *files, content=content, channel_id=self.channels[where], **options
        )

    async def teach(self, where: str, folder: Path, swapped: bool, author=None) -> None:
        for label in ("jedi", "sith"):
            said = {"jedi": "sith", "sith": "jedi"}[label] if swapped else label
            files = images_of(folder, label)
            for start in range(0, len(files), 10):
                await self.type(where, f"!teach {said}", *files[start : start + 10], author=author)
