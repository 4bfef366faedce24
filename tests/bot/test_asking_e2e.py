"""The bot asks for labels, end to end: the real bot against the look-alike holding two servers,
A (padawan's, which turns collection on) and B (eve's, which never does).

An unsure verdict in A gets the asking line above its vote buttons, a sure one only the buttons;
the server's rate (`!settings ask`, `!settings ask_hour`) caps the asks per channel; an image
whose votes in A disagree is asked about however sure the model is; B is never asked.
`!dataset` in A says what would help most, with links to A's messages only.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from botkit import SAMPLES, TOKEN, Running, buttons_of, running_bot, sample, text_of, verdict_lines
from PIL import Image

from bot.asking import near_threshold
from dataset.labels import is_holdout
from model.runtime import Prediction
from playground.discord import DiscordServer
from playground.samples import SAMPLE_DIR

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(300, func_only=True),
]

ASKED = "I'm unsure about this one: which is it?"
EVE = {"username": "eve"}
MEMBERS = [{"username": "ahsoka"}, {"username": "kylo"}]
BAND = 0.1  # the environment's, which both servers keep


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[DiscordServer]:
    async with DiscordServer(token=TOKEN) as srv:
        srv.give_guild("eve", srv.guild_ids[1])  # before the bot connects
        yield srv


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(server: DiscordServer) -> AsyncIterator[Running]:
    async with running_bot(server) as bot:  # ASK_EVERY 5, ASK_PER_HOUR 3: the defaults
        yield bot


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def close(running: Running) -> tuple[str, bytes]:
    """A blend of a Jedi and a Sith drawing that the shipped model is unsure of."""
    with (
        Image.open(SAMPLE_DIR / "jedi-1.jpg") as jedi,
        Image.open(SAMPLE_DIR / "sith-1.jpg") as sith,
    ):
        first = jedi.convert("RGB")
        second = sith.convert("RGB").resize(first.size)
    blends = []
    for step in range(30, 71, 2):
        out = io.BytesIO()
        Image.blend(first, second, step / 100).save(out, "PNG")
        blends.append(out.getvalue())
    outcomes = await running.worker.classify_bytes(blends)
    scored = [
        (abs(outcome.score - 0.5), data)
        for data, outcome in zip(blends, outcomes, strict=True)
        if isinstance(outcome, Prediction)
    ]
    nearest, data = min(scored, key=lambda item: item[0])
    assert nearest < BAND, f"no blend is near the decision: {outcomes}"
    return "blend.png", data


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sure(running: Running) -> list[tuple[str, bytes]]:
    """The sample drawings the shipped model is sure of (far from 0.5 and from its threshold)."""
    drawings = [sample(name) for name in SAMPLES]
    outcomes = await running.worker.classify_bytes([data for _, data in drawings])
    found = [
        drawing
        for drawing, outcome in zip(drawings, outcomes, strict=True)
        if isinstance(outcome, Prediction)
        and abs(outcome.score - 0.5) >= 2 * BAND
        and not near_threshold(outcome)
    ]
    assert len(found) >= 2, outcomes
    return found


def channels(running: Running, index: int) -> list[int]:
    """The channels of server `index` (0: A, 1: B): general first."""
    server = running.server
    return list(server.state.guild(server.guild_ids[index]).channel_ids)


def labels(message: dict[str, Any]) -> list[str]:
    """The vote buttons' labels under `message` (not its Why? buttons: bot.exts.why)."""
    return [b["label"] for b in buttons_of(message) if b["custom_id"].startswith("jedisith:vote:")]


async def asks(running: Running, image: tuple[str, bytes], **where: Any) -> bool:
    """Whether the verdict on `image` asks for a label (checked to carry a verdict)."""
    reply = await running.command(image, **where)
    assert len(verdict_lines(text_of(reply))) == 1, text_of(reply)
    return ASKED in text_of(reply).splitlines()


async def test_a_server_without_collection_is_never_asked(
    running: Running, close: tuple[str, bytes]
) -> None:
    for _ in range(2):
        reply = await running.command(close)
        assert ASKED not in text_of(reply) and not labels(reply)
    b_general = channels(running, 1)[0]
    reply = await running.command(close, author=EVE, channel_id=b_general)
    assert ASKED not in text_of(reply) and not labels(reply)


async def test_an_unsure_verdict_asks_with_the_vote_buttons_and_a_sure_one_does_not(
    running: Running, close: tuple[str, bytes], sure: list[tuple[str, bytes]]
) -> None:
    reply = await running.command(content="!dataset collect on")  # padawan owns A
    assert "Collection is **on**" in text_of(reply)
    general, archives = channels(running, 0)

    reply = await running.command(close, channel_id=general)
    lines = text_of(reply).splitlines()
    assert ASKED in lines and lines[lines.index(ASKED) + 1].startswith("-# Am I right?"), lines
    assert labels(reply)[-3:] == ["It's a Jedi", "It's a Sith", "Neither"]

    reply = await running.command(sure[0], channel_id=archives)
    assert ASKED not in text_of(reply)
    assert labels(reply) == ["Right", "It's a Jedi", "It's a Sith", "Neither"]

    b_general = channels(running, 1)[0]  # B still collects nothing
    reply = await running.command(close, author=EVE, channel_id=b_general)
    assert ASKED not in text_of(reply) and not labels(reply)


async def test_the_servers_rate_caps_the_asks_per_channel(
    running: Running, close: tuple[str, bytes]
) -> None:
    general = channels(running, 0)[0]  # asked once, just before
    # One verdict in five at most: the next four do not ask, the fifth does.
    assert [await asks(running, close, channel_id=general) for _ in range(5)] == [
        False,
        False,
        False,
        False,
        True,
    ]
    reply = await running.command(content="!settings ask 1")
    assert "- `ask`: **1**: where collection is on" in text_of(reply)
    # Every verdict may ask now, but three asks an hour at most: this is the third.
    assert [await asks(running, close, channel_id=general) for _ in range(2)] == [True, False]
    reply = await running.command(content="!settings ask_hour 4")
    assert "- `ask_hour`: **4**: at most 4 asks an hour in each channel" in text_of(reply)
    assert [await asks(running, close, channel_id=general) for _ in range(2)] == [True, False]
    reply = await running.command(content="!settings ask 0")
    assert "- `ask`: **0**: I never ask for a label" in text_of(reply)
    archives = channels(running, 0)[1]  # a channel that was never asked in
    assert not await asks(running, close, channel_id=archives)

    reply = await running.command(content="!settings ask 5", author=MEMBERS[0])
    assert "Only members with the Manage Server permission" in text_of(reply)
    for command, error in (
        ("!settings ask -1", "`ask` is a whole number from 0 to 1000, not `-1`."),
        ("!settings ask_hour lots", "`ask_hour` is a whole number from 0 to 1000, not `lots`."),
    ):
        assert text_of(await running.command(content=command)) == error


async def test_an_image_whose_votes_disagree_is_asked_about(
    running: Running, sure: list[tuple[str, bytes]]
) -> None:
    for name in ("ask", "ask_hour"):
        reply = await running.command(content=f"!settings reset {name}")
        assert text_of(reply).startswith("Changed.")
    archives = channels(running, 0)[1]
    image = sure[1]
    assert not await asks(running, image, channel_id=archives)  # sure, and nobody voted yet
    for member, label in zip(MEMBERS, ("jedi", "sith"), strict=True):
        reply = await running.command(image, content=f"!teach {label}", author=member)
        assert "Taught 1 new image" in text_of(reply) or "I already knew" in text_of(reply)
    assert "Its votes disagree" in text_of(reply)
    assert await asks(running, image, channel_id=archives)


async def test_dataset_says_what_would_help_most_with_this_servers_images_only(
    running: Running, close: tuple[str, bytes], sure: list[tuple[str, bytes]]
) -> None:
    server = running.server
    a, b = server.guild_ids[0], server.guild_ids[1]
    general, b_general = channels(running, 0)[0], channels(running, 1)[0]
    reply = await running.command(content="!dataset collect on", author=EVE, channel_id=b_general)
    assert "Collection is **on**" in text_of(reply)
    await running.command(close, content="!teach jedi", author=EVE, channel_id=b_general)
    in_b = running.posted[-1]["id"]
    await running.command(close, content="!teach jedi", channel_id=general)
    in_a = running.posted[-1]["id"]
    await running.command(sure[0], content="!teach jedi", channel_id=general)
    sure_in_a = running.posted[-1]["id"]

    shown = text_of(await running.command(content="!dataset", channel_id=general))
    lines = shown.splitlines()
    assert "**What would help most**" in lines, shown
    jedi = [i for i in (close[1], sure[0][1]) if not is_holdout(hashlib.sha256(i).hexdigest())]
    short = running.settings.retrain_min_images - len(jedi)
    needed = f"- Jedi: {short} more outside the holdout for a retrain (about "
    assert any(line.startswith(needed) for line in lines), shown
    sith = "- Sith: 20 more outside the holdout for a retrain (about 25 new labels, as one image"
    assert any(line.startswith(sith) for line in lines), shown
    (least,) = [line for line in lines if line.startswith("- Least sure here")]
    links = re.findall(
        r"\[(\d\.\d\d)\]\(<https://discord\.com/channels/(\d+)/(\d+)/(\d+)>\)", least
    )
    # This server's two labelled images from messages, the blend first; nothing of B's.
    assert [(g, c, m) for _, g, c, m in links] == [
        (str(a), str(general), in_a),
        (str(a), str(general), sure_in_a),
    ], least
    assert str(b) not in shown and in_b not in shown
    assert abs(float(links[0][0]) - 0.5) < BAND
