"""Words in commands turned into values, one way for every cog."""

from __future__ import annotations

from discord.ext import commands

ON = ("on", "yes", "true", "1")
OFF = ("off", "no", "false", "0")


def on_or_off(value: str) -> bool:
    """`on` or `off` (or yes/no, true/false, 1/0); anything else is a clear `BadArgument`."""
    word = value.strip().lower()
    if word in ON:
        return True
    if word in OFF:
        return False
    raise commands.BadArgument("Say `on` or `off`.")
