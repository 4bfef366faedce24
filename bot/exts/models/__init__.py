"""The model's versions, for moderators: `!retrain`, `!model`, `!rollback` and `!mistakes`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.exts.models._cog import Models
from bot.exts.models._mistakes import Mistakes

if TYPE_CHECKING:
    from bot.client import JediSithBot

__all__ = ["Mistakes", "Models", "setup"]


async def setup(bot: JediSithBot) -> None:
    await bot.add_cog(Models(bot))
    await bot.add_cog(Mistakes(bot))
