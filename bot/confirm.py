"""A yes-or-no question with two buttons, answered only by the person who asked for it: an
action that cannot be undone (`!forget`) runs only once they press Confirm."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from bot.limits import Limited

log = logging.getLogger(__name__)

TIMEOUT = 120.0  # seconds a question waits for its answer
NOT_YOURS = "Only the person who asked can answer this."
CANCELLED = "Cancelled: nothing was deleted."
TIMED_OUT = "No answer within 2 minutes: nothing was deleted."
WORKING = "Deleting..."


class Confirm(Limited, discord.ui.View):
    """Confirm and Cancel under a question: Confirm runs `action` (which returns the line that
    replaces the question); Cancel, or no answer within `timeout`, changes nothing."""

    def __init__(
        self,
        user_id: int,
        action: Callable[[], Awaitable[str]],
        *,
        label: str = "Confirm",
        timeout: float = TIMEOUT,
    ) -> None:
        super().__init__(timeout=timeout)
        self.user_id = user_id
        self.action = action
        self.message: discord.Message | None = None  # the question, once sent
        self.confirm.label = label

    async def _asked_by(self, interaction: discord.Interaction) -> bool:
        """Whether the click is the asker's; anyone else is told so (the rate limits came first:
        `Limited.interaction_check`)."""
        if interaction.user.id == self.user_id:
            return True
        await interaction.response.send_message(NOT_YOURS, ephemeral=True)
        return False

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        if not await self._asked_by(interaction):
            return
        self.stop()
        await interaction.response.edit_message(content=WORKING, view=None)
        try:
            text = await self.action()
        except Exception:
            log.exception("a confirmed action failed")
            text = "Sorry, something went wrong on my side: nothing may have been deleted."
        await interaction.edit_original_response(content=text)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        if not await self._asked_by(interaction):
            return
        self.stop()
        await interaction.response.edit_message(content=CANCELLED, view=None)

    async def on_timeout(self) -> None:
        if self.message is None:
            return
        try:
            await self.message.edit(content=TIMED_OUT, view=None)
        except discord.HTTPException:
            log.info("could not say that a question timed out (its message is gone?)")
