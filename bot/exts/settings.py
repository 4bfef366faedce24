"""`!settings`: a server's own settings, shown to anyone and changed by its managers.

What a server has not set comes from the environment (the bot's `.env`): the unlike-image
policy, the "can't tell" band, the channels the bot answers in and how often it asks for a label
(`bot.asking`). Collection and sharing are off until a manager turns them on.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import server_settings
from bot.checks import IN_A_SERVER, manager_only, manages
from bot.converters import on_or_off
from bot.errors import UserFacingError
from bot.replies import OOD_POLICIES
from bot.server_settings import ServerSettings

if TYPE_CHECKING:
    from bot.client import JediSithBot

CHANGE = "change this server's settings"
MAX_BAND = 0.5
MAX_ASK = 1000
# `!settings reset NAME`: the name people type, the setting in the store.
RESET = {
    "policy": "ood_policy",
    "band": "uncertain_band",
    "channels": "channels",
    "collect": "collecting",
    "share": "sharing",
    "ask": "ask_every",
    "ask_hour": "ask_per_hour",
    "voters": "holdout_min_voters",
}
MAX_VOTERS = 20
_CHANNEL = re.compile(r"<#(\d+)>|(\d{15,20})")


class ServerSettingsCog(commands.Cog, name="Settings"):
    """This server's settings: the unlike-image policy, the "can't tell" band, the channels I
    answer in, collection and sharing, and how often I ask for labels."""

    def __init__(self, bot: JediSithBot) -> None:
        self.bot = bot

    async def cog_check(self, ctx: commands.Context) -> bool:  # type: ignore[override]
        # A manager reaches `!settings` in any channel, so nobody locks themselves out.
        if manages(ctx.author, ctx.guild):
            return True
        resolved = await server_settings.of(self.bot).get(ctx.guild.id if ctx.guild else None)
        return resolved.allows(ctx.channel.id)

    @property
    def cache(self) -> server_settings.ServerSettingsCache:
        cache = server_settings.of(self.bot)
        if cache.store is None:
            raise UserFacingError("Settings are not set up on this bot (it has no dataset).")
        return cache

    @commands.hybrid_group(
        name="settings",
        fallback="show",
        invoke_without_command=True,
        description="This server's settings.",
    )
    async def settings(self, ctx: commands.Context) -> None:
        """This server's settings, and which come from the environment. Members with Manage
        Server change them: `!settings policy refuse|warn|off`, `!settings band 0.1`,
        `!settings channels #a #b` (or `all`), `!settings collect on|off`, `!settings ask 5`,
        `!settings ask_hour 3`, `!settings voters 2`, `!settings reset NAME`.
        """
        if ctx.guild is None:
            shown = server_settings.environment(self.bot.settings)
            text = describe(shown, ctx.clean_prefix) + f"\n-# {IN_A_SERVER}"
        else:
            shown = await server_settings.of(self.bot).fresh(ctx.guild.id)
            text = describe(shown, ctx.clean_prefix)
        await ctx.reply(text, mention_author=False)

    @settings.command(name="policy", description="What to do with images unlike my training.")
    @app_commands.describe(value="refuse, warn or off")
    @manager_only(CHANGE)
    async def policy(self, ctx: commands.Context, value: str) -> None:
        """What I do with an image unlike those I learned from: `refuse` to judge it, judge it
        with a `warn`ing, or judge it as any other (`off`)."""
        word = value.strip().lower()
        if word not in OOD_POLICIES:
            raise UserFacingError(f"The policy is {_either(OOD_POLICIES)}, not `{_clean(value)}`.")
        await self._change(ctx, ood_policy=word)

    @settings.command(name="band", description='How close to 0.5 a score is "can\'t tell".')
    @app_commands.describe(value="A number from 0 to 0.5, e.g. 0.1")
    @manager_only(CHANGE)
    async def band(self, ctx: commands.Context, value: str) -> None:
        """Scores within this much of 0.5 are answered "Can't tell" (0 to 0.5; 0: never)."""
        try:
            number = float(value.strip())
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and 0 <= number <= MAX_BAND):
            raise UserFacingError(f"The band is a number from 0 to 0.5, not `{_clean(value)}`.")
        await self._change(ctx, uncertain_band=number)

    @settings.command(name="channels", description="The channels I answer in.")
    @app_commands.describe(channels="Channel mentions (#a #b), or all")
    @manager_only(CHANGE)
    async def channels(self, ctx: commands.Context, *, channels: str) -> None:
        """The channels I answer in: `!settings channels #a #b`, or `all` for every channel.
        Members with Manage Server can always use `!settings`, wherever they type it."""
        assert ctx.guild is not None  # manager_only
        if channels.strip().lower() == "all":
            await self._change(ctx, channels=[])
            return
        ids = channel_ids(channels, ctx.guild)
        await self._change(ctx, channels=ids)

    @settings.command(name="collect", description="Keep labelled images here to train me.")
    @app_commands.describe(switch="on or off")
    @manager_only("turn collection on or off")
    async def collect(self, ctx: commands.Context, switch: str) -> None:
        """Turn collection on or off in this server, as `!dataset collect on|off` does."""
        await self._change(ctx, collecting=on_or_off(switch))

    @settings.command(name="ask", description="Ask for a label on one verdict in N at most.")
    @app_commands.describe(value="A whole number, e.g. 5 (0: never ask)")
    @manager_only(CHANGE)
    async def ask(self, ctx: commands.Context, value: str) -> None:
        """Where collection is on, I ask for a label on an unsure verdict: on one verdict in
        this many at most (0: never)."""
        await self._change(ctx, ask_every=_count("ask", value))

    @settings.command(name="ask_hour", description="Ask for a label at most N times an hour.")
    @app_commands.describe(value="A whole number, e.g. 3 (0: never ask)")
    @manager_only(CHANGE)
    async def ask_hour(self, ctx: commands.Context, value: str) -> None:
        """I ask for a label at most this many times an hour in each channel (0: never)."""
        await self._change(ctx, ask_per_hour=_count("ask_hour", value))

    @settings.command(name="voters", description="Members a held-out image's label needs.")
    @app_commands.describe(value="A whole number from 1 to 20, e.g. 2")
    @manager_only(CHANGE)
    async def voters(self, ctx: commands.Context, value: str) -> None:
        """A held-out image judges this server's new models only when this many members (or a
        moderator) voted for its label."""
        count = _count("voters", value, MAX_VOTERS)
        if count < 1:
            raise UserFacingError(f"`voters` is a whole number from 1 to {MAX_VOTERS}, not `0`.")
        await self._change(ctx, holdout_min_voters=count)

    @settings.command(name="reset", description="Go back to the default of one setting.")
    @app_commands.describe(name="policy, band, channels, collect, share, ask, ask_hour or voters")
    @manager_only(CHANGE)
    async def reset(self, ctx: commands.Context, name: str) -> None:
        """Go back to the default of one setting: the environment's for `policy`, `band`,
        `channels`, `ask`, `ask_hour` and `voters`, off for `collect` and `share`."""
        key = name.strip().lower()
        if key not in RESET:
            names = _either(tuple(RESET))
            raise UserFacingError(f"The settings are {names}, not `{_clean(name)}`.")
        stored = RESET[key]
        await self._change(ctx, **{stored: False if stored in ("collecting", "sharing") else None})

    async def _change(self, ctx: commands.Context, **changes: Any) -> None:
        assert ctx.guild is not None  # manager_only
        changed = await self.cache.update(ctx.guild.id, by=ctx.author.id, **changes)
        text = "Changed. " + describe(changed, ctx.clean_prefix)
        await ctx.reply(text, mention_author=False)


def describe(shown: ServerSettings, prefix: str) -> str:
    """The `!settings` reply: each value, and where it comes from."""

    def origin(name: str) -> str:
        return " (the bot's default)" if name in shown.from_environment else ""

    channels = (
        ", ".join(f"<#{channel}>" for channel in sorted(shown.channels))
        if shown.channels
        else "every channel"
    )
    band = shown.uncertain_band
    return "\n".join(
        [
            "**Settings of this server**",
            f"- `policy`: **{shown.ood_policy}**{origin('ood_policy')}, for images unlike "
            "those I learned from (refuse, warn or off)",
            f"- `band`: **{band:g}**{origin('uncertain_band')}: scores from {0.5 - band:.2f} to "
            f'{0.5 + band:.2f} are "Can\'t tell"',
            f"- `channels`: {channels}{origin('channels')}",
            f"- `collect`: **{_on(shown.collecting)}**, keeping labelled images to train me",
            f"- `share`: **{_on(shown.sharing)}**, lending the labels to the default model "
            f"(`{prefix}dataset share on|off`)",
            f"- `ask`: **{shown.ask_every}**{origin('ask_every')}: {_asking(shown.ask_every)}",
            f"- `ask_hour`: **{shown.ask_per_hour}**{origin('ask_per_hour')}: at most "
            f"{_plural(shown.ask_per_hour, 'ask')} an hour in each channel",
            f"- `voters`: **{shown.holdout_min_voters}**{origin('holdout_min_voters')}: a "
            f"held-out image judges new models once {_plural(shown.holdout_min_voters, 'member')}"
            " (or a moderator) voted for its label",
            f"-# Members with Manage Server change them: `{prefix}settings NAME VALUE`, "
            f"`{prefix}settings reset NAME`.",
        ]
    )


def channel_ids(text: str, guild: discord.Guild) -> list[int]:
    """The ids of the channels `text` names (mentions or ids), each a channel of `guild`."""
    ids = [int(mention or number) for mention, number in _CHANNEL.findall(text)]
    rest = _CHANNEL.sub(" ", text).replace(",", " ").split()
    if rest or not ids:
        raise UserFacingError(
            "Name the channels as mentions (`#general #art`), or say `all` for every channel."
        )
    for channel_id in ids:
        if guild.get_channel_or_thread(channel_id) is None:
            raise UserFacingError(f"<#{channel_id}> is not a channel of this server.")
    return list(dict.fromkeys(ids))


def _count(name: str, value: str, most: int = MAX_ASK) -> int:
    """A whole number from 0 to `most`, as a manager typed it."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > most:
        raise UserFacingError(
            f"`{name}` is a whole number from 0 to {most}, not `{_clean(value)}`."
        )
    return int(text)


def _asking(every: int) -> str:
    if every == 0:
        return "I never ask for a label"
    which = "any verdict" if every == 1 else f"one verdict in {every} at most"
    return f"where collection is on, I ask for a label when unsure, on {which}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _on(value: bool) -> str:
    return "on" if value else "off"


def _either(words: tuple[str, ...]) -> str:
    quoted = [f"`{word}`" for word in words]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def _clean(value: str) -> str:
    return value.replace("`", "'")[:40]


async def setup(bot: JediSithBot) -> None:
    await bot.add_cog(ServerSettingsCog(bot))
