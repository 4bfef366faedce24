"""`bot.converters`: the words every cog accepts for a switch."""

from __future__ import annotations

import pytest
from discord.ext import commands

from bot.converters import on_or_off


@pytest.mark.parametrize("word", ["on", "ON", " yes", "true", "1"])
def test_on(word: str) -> None:
    assert on_or_off(word) is True


@pytest.mark.parametrize("word", ["off", "No", "false", "0 "])
def test_off(word: str) -> None:
    assert on_or_off(word) is False


def test_anything_else_is_one_clear_line() -> None:
    with pytest.raises(commands.BadArgument, match=r"^Say `on` or `off`\.$"):
        on_or_off("maybe")
