"""A question that nobody answers times out harmlessly: nothing runs, its buttons go."""

from __future__ import annotations

from unittest import mock

import discord

from bot.confirm import TIMED_OUT, Confirm


async def test_a_question_left_unanswered_runs_nothing_and_loses_its_buttons() -> None:
    ran: list[bool] = []

    async def action() -> str:
        ran.append(True)
        return "done"

    view = Confirm(1, action, label="Delete")
    assert [item.label for item in view.children] == ["Delete", "Cancel"]  # type: ignore[attr-defined]
    message = mock.create_autospec(discord.Message, instance=True, spec_set=True)
    view.message = message
    await view.on_timeout()  # what discord.py calls once TIMEOUT has passed unanswered
    message.edit.assert_awaited_once_with(content=TIMED_OUT, view=None)
    assert not ran


async def test_a_question_whose_message_is_gone_times_out_quietly() -> None:
    async def action() -> str:
        raise AssertionError("never runs")

    view = Confirm(1, action)
    message = mock.create_autospec(discord.Message, instance=True, spec_set=True)
    message.edit.side_effect = discord.NotFound(mock.Mock(status=404, reason="gone"), "gone")
    view.message = message
    await view.on_timeout()  # no error: only a line in the log
