"""The bot's own `!help`: one line a person understands per command, and per command its
arguments and examples, as an embed. Every command's help text lives in `TOPICS`; the
operator's commands and examples are shown to the operator only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import discord
from discord.ext import commands

from bot.checks import is_operator

COLOUR = discord.Colour.blurple()
MANAGERS = "Only members with the Manage Server permission run it."
OPERATOR = "Only the bot's operator runs it."


@dataclass(frozen=True)
class Topic:
    """What `!help` says of one command: `{p}` stands for the prefix everywhere."""

    line: str  # what it does, in one line
    arguments: tuple[tuple[str, str], ...] = ()  # (argument, what it is)
    examples: tuple[tuple[str, str], ...] = ()  # (what to type, what it does)
    who: str = ""  # who may run it, when not everyone
    operator: tuple[tuple[str, str], ...] = ()  # the operator's own examples
    operator_only: bool = False  # hidden from everyone else


TOPICS: dict[str, Topic] = {
    "jedisith": Topic(
        "Say whether an image shows a Jedi or a Sith, with a score from 0 (Jedi) to 1 (Sith).",
        (("image", "attach it, reply to its message, or leave it out for the latest image"),),
        (
            ("{p}jedisith", "judge the image attached or the latest one in the channel"),
            ("{p}js", "the same, shorter"),
        ),
    ),
    "features": Topic(
        "Show what the network sees in an image: the maps of its five convolution layers.",
        (
            ("image", "found as for {p}jedisith"),
            ("layer", "only this layer, 1 to 5 (leave it out for all five)"),
        ),
        (("{p}features", "all five layers"), ("{p}features 3", "only the third layer")),
    ),
    "why": Topic(
        "Show which parts of an image decided its verdict, as a heatmap over it.",
        (("image", "found as for {p}jedisith"),),
        (("{p}why", "explain the latest image's verdict"),),
    ),
    "teach": Topic(
        "Tell me what an image shows, so that this server's model learns from it.",
        (
            ("label", "jedi, sith, or neither (an image I should refuse to judge)"),
            ("image", "found as for {p}jedisith; every image of that message gets the label"),
        ),
        (
            ("{p}teach jedi", "label the attached or latest images Jedi"),
            ("{p}teach neither", "an image that is neither, for me to refuse"),
        ),
    ),
    "dataset": Topic(
        "Show what I learned from in this server and what would help most; in a DM, what you gave.",
        (
            ("collect on|off", "keep labelled images here, or stop"),
            ("share on|off", "lend this server's labels to the default model, or stop"),
        ),
        (
            ("{p}dataset", "images per class, the holdout, contributors"),
            ("{p}dataset collect on", "start keeping labelled images (Manage Server)"),
        ),
    ),
    "forget": Topic(
        "Delete the labels and images you gave me in this server (in a DM: in every server).",
        (),
        (("{p}forget", "asks you to confirm, then deletes"),),
    ),
    "retrain": Topic(
        "Learn this server's own model from its labelled images; it is used only if it is "
        "surely better.",
        (
            ("force", "use the new model even if it is not surely better"),
            ("cancel", "stop the training that runs"),
            (
                "network",
                "train a whole network on many images (minutes) instead of a head (seconds)",
            ),
            ("epochs=N", "with network: how many passes over the images"),
        ),
        (
            ("{p}retrain", "learn a new model, in seconds"),
            ("{p}retrain force", "use it even if it is not surely better"),
        ),
        MANAGERS,
        (
            ("{p}retrain shared", "train the default model every other server gets"),
            ("{p}retrain shared epochs=10 force", "fewer epochs, published anyway"),
        ),
    ),
    "model": Topic(
        "Show which model serves this server, what it learned from, and its last versions.",
        (("shared", "the default model's, instead of this server's"),),
        (("{p}model", "this server's model"), ("{p}model shared", "the default model")),
    ),
    "rollback": Topic(
        "Go back to an earlier version of this server's model, or to the default model.",
        (
            ("N", "the version to serve (leave it out for the one before)"),
            ("default", "the default model"),
        ),
        (("{p}rollback", "the version before"), ("{p}rollback default", "the default model")),
        MANAGERS,
        (
            ("{p}rollback shared 2", "serve version 2 of the shared network"),
            ("{p}rollback shared network", "serve the network's own verdict by default"),
        ),
    ),
    "default": Topic(
        "Serve a server's model to every server without one of its own, if it shares.",
        (
            ("from SERVER_ID", "the server"),
            ("VERSION", "its version (leave it out for its current one)"),
        ),
        (("{p}default from 123456789012345678", "that server's current model"),),
        OPERATOR,
        operator_only=True,
    ),
    "mistakes": Topic(
        "Show what this server's model gets wrong on its held-out images, as one picture.",
        (),
        (("{p}mistakes", "the mistakes, the confusion matrix and the learning curve"),),
        MANAGERS,
    ),
    "settings": Topic(
        "Show this server's settings; members with Manage Server change them.",
        (
            ("policy refuse|warn|off", "what to do with an image unlike my training"),
            ("band 0.1", 'scores this close to 0.5 are "can\'t tell"'),
            ("channels #a #b", "the channels I answer in (all: every one)"),
            ("collect on|off", "keep labelled images here"),
            ("ask N", "ask for a label on one unsure verdict in N at most (0: never)"),
            ("ask_hour N", "ask at most N times an hour per channel"),
            ("voters N", "members a held-out image's label needs"),
            ("reset NAME", "go back to the default of one setting"),
        ),
        (("{p}settings", "show them"), ("{p}settings band 0.1", "a wider can't-tell band")),
    ),
    "help": Topic(
        "List my commands, or explain one.",
        (("command", "the command to explain"),),
        (("{p}help", "every command"), ("{p}help teach", "how to teach me")),
    ),
}


def topic(command: commands.Command[Any, ..., Any]) -> Topic:
    """The help of `command`: its entry in `TOPICS`, else the first line of its docstring."""
    known = TOPICS.get(command.qualified_name)
    if known is not None:
        return known
    return Topic((command.short_doc or command.description or "").strip())


def overview(
    listed: Sequence[commands.Command[Any, ..., Any]], prefix: str, description: str
) -> discord.Embed:
    """`!help`: what the bot is, then one line per command, in the order of `TOPICS`."""
    order = list(TOPICS)
    ranked = sorted(
        listed, key=lambda c: (order.index(c.name) if c.name in order else len(order), c.name)
    )
    lines = [f"`{prefix}{c.qualified_name}` {topic(c).line.format(p=prefix)}" for c in ranked]
    text = f"{description}\n\n" + "\n".join(lines) if description else "\n".join(lines)
    embed = discord.Embed(title="My commands", description=text, colour=COLOUR)
    embed.set_footer(text=f"{prefix}help COMMAND explains one, with examples.")
    return embed


def detail(command: commands.Command[Any, ..., Any], prefix: str, operator: bool) -> discord.Embed:
    """`!help COMMAND`: its line, who may run it, each argument, and examples."""
    about = topic(command)
    names = ", ".join(f"{prefix}{name}" for name in command.aliases)
    title = f"{prefix}{command.qualified_name}" + (f" (also {names})" if names else "")
    description = about.line.format(p=prefix)
    if about.who:
        description += f"\n*{about.who}*"
    embed = discord.Embed(title=title, description=description, colour=COLOUR)
    if about.arguments:
        embed.add_field(
            name="Arguments",
            value="\n".join(f"`{name}`: {what.format(p=prefix)}" for name, what in about.arguments),
            inline=False,
        )
    examples = about.examples + (about.operator if operator else ())
    if examples:
        embed.add_field(
            name="Examples",
            value="\n".join(f"`{typed.format(p=prefix)}`: {what}" for typed, what in examples),
            inline=False,
        )
    return embed


class JediSithHelp(commands.HelpCommand):
    """`!help` and `!help COMMAND` as embeds, from `TOPICS`."""

    def __init__(self) -> None:
        super().__init__(verify_checks=False, command_attrs={"help": TOPICS["help"].line})

    async def _operator(self) -> bool:
        return await is_operator(self.context.bot, self.context.author)

    async def _shown(
        self, candidates: Sequence[commands.Command[Any, ..., Any]]
    ) -> list[commands.Command[Any, ..., Any]]:
        """The commands this person may see: not hidden; the operator's to the operator."""
        operator = await self._operator()
        listed = await self.filter_commands(candidates, sort=True)
        return [c for c in listed if operator or not topic(c).operator_only]

    async def send_bot_help(
        self, mapping: Mapping[commands.Cog | None, list[commands.Command[Any, ..., Any]]]
    ) -> None:
        listed = await self._shown(list(self.context.bot.commands))
        prefix = self.context.clean_prefix
        description = self.context.bot.description or ""
        await self.context.reply(embed=overview(listed, prefix, description), mention_author=False)

    async def send_cog_help(self, cog: commands.Cog) -> None:
        await self.send_bot_help({})

    async def send_command_help(self, command: commands.Command[Any, ..., Any]) -> None:
        if not await self._shown([command]):
            await self.send_error_message(self.command_not_found(command.qualified_name))
            return
        embed = detail(command, self.context.clean_prefix, await self._operator())
        await self.context.reply(embed=embed, mention_author=False)

    async def send_group_help(self, group: commands.Group[Any, ..., Any]) -> None:
        await self.send_command_help(group)

    def command_not_found(self, string: str) -> str:
        prefix = self.context.clean_prefix
        return f"I have no command `{string[:40]}`; `{prefix}help` lists them."

    def subcommand_not_found(self, command: commands.Command[Any, ..., Any], string: str) -> str:
        prefix = self.context.clean_prefix
        return (
            f"`{prefix}{command.qualified_name}` has no `{string[:40]}`; "
            f"`{prefix}help {command.qualified_name}` explains it."
        )

    async def send_error_message(self, error: str) -> None:
        await self.context.reply(error, mention_author=False)
