"""`!help`'s words: one whole line per command, arguments and examples, from `bot.help.TOPICS`."""

from __future__ import annotations

from discord.ext import commands

from bot.help import MANAGERS, TOPICS, detail, overview, topic


async def _teach(ctx: commands.Context, label: str) -> None:
    """Teach me what an image shows."""


async def _other(ctx: commands.Context) -> None:
    """A command without a topic. Its docstring's first line is its help.

    More about it."""


def test_every_topic_is_one_line_in_sentences() -> None:
    for name, about in TOPICS.items():
        line = about.line.format(p="!")
        assert "\n" not in line and line.endswith(".") and len(line) <= 110, name
        for typed, what in about.examples + about.operator:
            assert typed.startswith("{p}") and what, name


def test_the_overview_has_one_line_per_command() -> None:
    teach = commands.Command(_teach, name="teach")
    other = commands.Command(_other, name="other")
    embed = overview([other, teach], "?", "I tell Jedi from Sith.")
    assert embed.description == (
        "I tell Jedi from Sith.\n\n"
        f"`?teach` {TOPICS['teach'].line}\n"
        "`?other` A command without a topic. Its docstring's first line is its help."
    )
    assert embed.footer.text == "?help COMMAND explains one, with examples."


def test_a_commands_help_has_its_arguments_examples_and_who_runs_it() -> None:
    retrain = commands.Command(_other, name="retrain")
    embed = detail(retrain, "!", operator=False)
    assert embed.title == "!retrain"
    assert embed.description == f"{TOPICS['retrain'].line}\n*{MANAGERS}*"
    fields = {field.name: field.value for field in embed.fields}
    assert "`force`: use the new model even if it is not surely better" in fields["Arguments"]
    assert "`!retrain force`:" in fields["Examples"] and "shared" not in fields["Examples"]
    assert "`!retrain shared`:" in str(detail(retrain, "!", operator=True).fields)
    assert topic(commands.Command(_other, name="other")).line == (
        "A command without a topic. Its docstring's first line is its help."
    )
