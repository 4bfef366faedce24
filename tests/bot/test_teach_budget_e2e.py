"""`!teach` and the vote buttons under the bot's download budget, the store's work in its own
bounded pool, and a small hostile file (6300x6300, 16 bits) taught within the decode bound:
the real bot against the look-alike."""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from botkit import (
    BUSY,
    TOKEN,
    Running,
    answers,
    buttons_of,
    running_bot,
    sample,
    text_of,
    verdict_lines,
)

from model.preprocess import DECODE_MEMORY, ImageLimits
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120, func_only=True),
]

REPLY = 30.0
FILES = [sample("sith-1"), sample("jedi-2")]
WEIGHT = sum(len(data) for _, data in FILES)  # what one command's attachments declare
VISITOR = {"username": "ahsoka"}


def grey16_png(side: int = 6300) -> bytes:
    """A 16-bit greyscale PNG of `side` x `side` in a few hundred KB (79 MB decoded)."""
    row = b"\0" + (bytes(range(256)) * (2 * side // 256 + 1))[: 2 * side]

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * side, 9))
        + chunk(b"IEND", b"")
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(
            server,
            data_dir=tmp_path_factory.mktemp("budget-data"),
            # One command's files fit, and nothing more beside them: not one file.
            max_bytes_in_flight=WEIGHT + min(len(data) for _, data in FILES) - 1,
            store_threads=1,
        ) as bot,
    ):
        reply = await bot.command(content="!dataset collect on")
        assert "on" in text_of(reply).lower()
        yield bot


async def click(running: Running, message: dict[str, Any], label: str) -> str:
    """Click `label` under `message` as a visitor; the bot's ephemeral answer."""
    buttons = buttons_of(message)
    custom_id = next(b["custom_id"] for b in buttons if b["label"] == label)
    interaction = await running.server.click_button(message["id"], custom_id, user=VISITOR)
    answer = await running.server.wait_for_reply(interaction["id"], timeout=REPLY)
    return text_of(answer)


async def test_teach_and_a_click_wait_their_turn_behind_a_verdicts_downloads(
    running: Running,
) -> None:
    server, bot = running.server, running.bot
    verdict = await running.command(FILES[0])  # its buttons, clicked below
    learning = bot.get_cog("Learning")
    learning.recent = type(learning.recent)()  # the click must download the image again
    mark = running.logs.mark()
    held = server.faults.cdn(hold=True)
    judging = await running.post(attachments=FILES)
    await held.wait_held(2)
    assert bot.downloads.held == WEIGHT

    teaching = await running.post("!teach sith", attachments=FILES, author=VISITOR)
    [refused] = await answers(server, [teaching])
    assert text_of(refused) == BUSY  # at once: no download started
    assert held.held == 2
    assert await click(running, verdict, "It's a Sith") == BUSY
    assert held.held == 2

    held.clear()
    [judged] = await answers(server, [judging])
    assert len(verdict_lines(text_of(judged))) == 2
    assert (await click(running, verdict, "It's a Sith")).startswith("Thanks!")
    taught = await running.command(*FILES, content="!teach sith", author=VISITOR)
    first = text_of(taught).splitlines()[0]  # both kept as Sith (one clicked just before)
    assert first == "Taught 1 new image as **Sith**, 1 already known.", first
    assert bot.downloads.held == 0
    assert running.logs.tracebacks(mark) == []


async def test_the_store_works_in_its_own_bounded_pool(running: Running, monkeypatch) -> None:
    store = running.bot.dataset
    assert store is not None
    threads: list[str] = []
    real = store.add_image_and_vote

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "add_image_and_vote", spy)
    reply = await running.command(sample("jedi-1"), content="!teach jedi", author=VISITOR)
    assert "as **Jedi**" in text_of(reply) or "**Jedi** on 1 image" in text_of(reply)
    learning = running.bot.get_cog("Learning")
    assert learning.store_pool._max_workers == running.settings.store_threads == 1
    assert threads and all(name.startswith("store") for name in threads)


async def test_a_small_16_bit_image_of_40_megapixels_is_taught_within_the_bound(
    running: Running,
) -> None:
    """It took 1 GB to decode, twice (the worker's check, then the store's) (issue 19)."""
    data = grey16_png()
    assert len(data) < 1024 * 1024
    DECODE_MEMORY.peak = 0
    reply = await running.command(("deep.png", data), content="!teach jedi", author=VISITOR)
    assert text_of(reply).startswith("Taught 1 new image as **Jedi**."), text_of(reply)
    assert 0 < DECODE_MEMORY.peak <= ImageLimits().max_decoded_bytes


async def test_a_refused_file_before_a_good_one_leaves_the_good_one_kept(running: Running) -> None:
    """The refusal's text once took the place of the message the next file was kept from."""
    mark = running.logs.mark()
    reply = await running.command(
        ("notes.txt", b"not an image", "text/plain"),
        sample("sith-2"),
        content="!teach sith",
        author=VISITOR,
    )
    first = text_of(reply).splitlines()[0]
    assert first.startswith("Taught 1 new image as **Sith**; refused 1, `notes.txt`: "), first
    assert first.endswith(". Its label: Sith (1 Sith)."), first
    assert running.logs.tracebacks(mark) == []
