"""The model's versions, for moderators: `!retrain`, `!model` and `!rollback`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.models._cog import Models

if TYPE_CHECKING:
    from bot.client import JediSithBot

__all__ = ["Models", "setup"]


async def setup(bot: JediSithBot) -> None:
    await bot.add_cog(Models(bot))
