"""A server's own settings, end to end: the real bot against the look-alike holding two servers
of different owners. Server A is padawan's, server B eve's.

A's manager sets `!settings policy warn`, `band 0.3` and `channels #general`: A's verdicts warn
instead of refusing and say "Can't tell" more widely, the bot no longer answers in A's other
channel, where `!settings` still works for a manager; a plain member can change nothing; B keeps
the environment's values.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from botkit import TOKEN, Running, replies_to, running_bot, sample, text_of
from PIL import Image

from model.runtime import Prediction
from playground.discord import DiscordServer
from playground.samples import SAMPLE_DIR

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(300, func_only=True),
]

MEMBER = {"username": "ahsoka"}
EVE = {"username": "eve"}
NOT_A_MANAGER = "Only members with the Manage Server permission can change this server's settings."
WARNED = "- but this doesn't look like what I learned from, so take it lightly"
REFUSED = "**Not a Jedi or a Sith?**"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[DiscordServer]:
    async with DiscordServer(token=TOKEN) as srv:
        srv.give_guild("eve", srv.guild_ids[1])  # before the bot connects
        yield srv


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(server: DiscordServer) -> AsyncIterator[Running]:
    async with running_bot(server) as bot:  # the environment: refuse, band 0.1, every channel
        yield bot


def channels(running: Running, index: int) -> list[int]:
    """The channels of server `index` (0: A, 1: B): general first."""
    server = running.server
    return list(server.state.guild(server.guild_ids[index]).channel_ids)


async def close_call(running: Running) -> tuple[str, bytes]:
    """A blend of a Jedi and a Sith drawing whose score is 0.15 to 0.25 away from 0.5: a
    verdict with the environment's band (0.1), "Can't tell" with a band of 0.3."""
    with (
        Image.open(SAMPLE_DIR / "jedi-1.jpg") as jedi,
        Image.open(SAMPLE_DIR / "sith-1.jpg") as sith,
    ):
        first = jedi.convert("RGB")
        second = sith.convert("RGB").resize(first.size)
    blends = []
    for step in range(40, 61):
        out = io.BytesIO()
        Image.blend(first, second, step / 100).save(out, "PNG")
        blends.append(out.getvalue())
    outcomes = await running.worker.classify_bytes(blends)
    for data, outcome in zip(blends, outcomes, strict=True):
        typical = isinstance(outcome, Prediction) and outcome.in_distribution
        if typical and 0.15 <= abs(outcome.score - 0.5) <= 0.25:
            return "blend.png", data
    raise AssertionError(f"no blend is a close call: {outcomes}")


async def test_only_a_manager_changes_a_servers_settings(running: Running) -> None:
    shown = await running.command(content="!settings", author=MEMBER)
    assert "`policy`: **refuse** (the bot's default)" in text_of(shown)
    for command in ("!settings policy warn", "!settings band 0.3", "!settings reset band"):
        reply = await running.command(content=command, author=MEMBER)
        assert text_of(reply) == NOT_A_MANAGER, command
    assert running.bot.dataset is not None
    assert running.bot.dataset.guild_settings(running.server.guild_ids[0]).ood_policy is None

    for command, error in (
        ("!settings band 2", "The band is a number from 0 to 0.5, not `2`."),
        ("!settings policy maybe", "The policy is `refuse`, `warn` or `off`, not `maybe`."),
        (
            "!settings reset colour",
            "The settings are `policy`, `band`, `channels`, `collect`, `share`, `ask`, "
            "`ask_hour` or `voters`, not `colour`.",
        ),
        (f"!settings channels <#{channels(running, 1)[0]}>", "is not a channel of this server."),
        ("!settings channels general", "Name the channels as mentions"),
    ):
        reply = await running.command(content=command)
        assert error in text_of(reply) and "\n" not in text_of(reply), command


async def test_a_managers_settings_apply_in_her_server_only(running: Running) -> None:
    general, archives = channels(running, 0)
    b_general, b_other = channels(running, 1)
    for command, shown in (
        ("!settings policy warn", "`policy`: **warn**,"),
        ("!settings band 0.3", "`band`: **0.3**:"),
        (f"!settings channels <#{general}>", f"`channels`: <#{general}>\n"),
    ):
        reply = await running.command(content=command)
        assert text_of(reply).startswith("Changed.") and shown in text_of(reply), command

    unlike = sample("other-1")  # the shipped model finds it unlike its training images
    close = await close_call(running)
    in_a = await running.command(unlike, close)
    lines = text_of(in_a).splitlines()
    assert WARNED in lines[0] and lines[1].startswith("2. `blend.png`: **Can't tell**"), lines
    in_b = await running.command(unlike, close, author=EVE, channel_id=b_general)
    lines = text_of(in_b).splitlines()
    assert REFUSED in lines[0] and "**Can't tell**" not in lines[1], lines
    assert text_of(await running.command(author=EVE, channel_id=b_other))  # every channel
    shown = await running.command(content="!settings", author=EVE, channel_id=b_general)
    assert "`policy`: **refuse** (the bot's default)" in text_of(shown)
    assert "`channels`: every channel (the bot's default)" in text_of(shown)

    # A's other channel: no answer to anyone's verdict, nor to a member's !settings...
    quiet = [
        await running.post("!jedisith", [sample("jedi-1")], channel_id=archives),
        await running.post("!settings", author=MEMBER, channel_id=archives),
        await running.post("!settings channels all", author=MEMBER, channel_id=archives),
    ]
    await running.settle()
    assert all(replies_to(running.server, message) == [] for message in quiet)
    # ... but a manager can still see and change the settings there.
    shown = await running.command(content="!settings", channel_id=archives)
    assert f"`channels`: <#{general}>\n" in text_of(shown)
    reply = await running.command(content="!settings channels all", channel_id=archives)
    assert "`channels`: every channel\n" in text_of(reply)
    answered = await running.command(sample("sith-1"), channel_id=archives)
    assert text_of(answered).startswith("**Sith**")
