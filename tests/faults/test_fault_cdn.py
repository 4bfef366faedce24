"""Discord's CDN misbehaves: slow, failing, cut short or lying about the length; several big
downloads at once; a message whose files are each wrong in their own way."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from botkit import (
    BUSY,
    TOKEN,
    Running,
    answers,
    as_png,
    assert_answered_once,
    replies_to,
    running_bot,
    sample,
    text_of,
    verdict_lines,
    wait_until,
)

from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(60, func_only=True),
]

DOWNLOAD_TIMEOUT = 1.0
MAX_IMAGE_BYTES = 1024 * 1024


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running() -> AsyncIterator[Running]:
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(
            server, download_timeout=DOWNLOAD_TIMEOUT, max_image_bytes=MAX_IMAGE_BYTES
        ) as bot,
    ):
        yield bot


async def test_a_slow_download_within_the_timeout_gets_its_verdict(running: Running) -> None:
    slow = running.server.faults.cdn(times=1, delay=DOWNLOAD_TIMEOUT / 3)
    reply = await running.command(sample("jedi-1"))
    assert slow.hits == 1
    assert verdict_lines(text_of(reply))[0].startswith("**Jedi**")


async def test_a_download_that_never_ends_is_given_up(running: Running) -> None:
    server, logs = running.server, running.logs
    mark = logs.mark()
    stuck = server.faults.cdn(times=1, hold=True)
    message = await running.post(attachments=[sample("sith-1")])
    await stuck.wait_held(1)
    reply = await server.wait_for_reply(message["id"], timeout=DOWNLOAD_TIMEOUT + 5)
    assert stuck.held == 1  # answered while the download still hung
    assert text_of(reply) == "`sith-1.jpg`: Downloading that image took too long. Try again."
    stuck.release()
    await running.settle()
    assert_answered_once(server, [message])
    assert logs.tracebacks(mark) == []
    await running.assert_still_serves()


CDN_FAULTS: dict[str, tuple[dict[str, Any], str, str]] = {
    # name: (the fault, what the reply says, what the log says at WARNING; "": nothing)
    "a 500": (
        {"status": 500},
        "I couldn't download that image (Discord answered 500). Try posting it again.",
        "the download answered HTTP 500",
    ),
    "a 404": (
        {"status": 404},
        "I couldn't download that image (Discord answered 404). Try posting it again.",
        "the download answered HTTP 404",
    ),
    "a cut connection": (
        {"cut_after": 2000},
        "I couldn't download that image. Try posting it again.",
        "the download failed: ClientPayloadError",
    ),
    "a Content-Length too long": (
        {"declared_length": 50_000},
        "I couldn't download that image. Try posting it again.",
        "the download failed: ClientPayloadError",
    ),
    "a Content-Length too short": (
        {"declared_length": 3000},
        "The image is incomplete (the file was cut short).",
        "",
    ),
    "a Content-Length over the limit": (
        {"declared_length": 50 * 1024 * 1024},
        "That file is 50.0 MB; I take images up to 1.0 MB.",
        "",
    ),
}


@pytest.mark.parametrize("case", list(CDN_FAULTS))
async def test_a_failing_or_lying_cdn_gets_a_clear_line(running: Running, case: str) -> None:
    fault, says, logged = CDN_FAULTS[case]
    server, logs = running.server, running.logs
    mark = logs.mark()
    served = server.faults.cdn(times=1, **fault)
    reply = await running.command(sample("sith-2"))
    assert served.hits == 1
    assert text_of(reply) == f"`sith-2.jpg`: {says}"
    warnings = logs.lines(mark, logging.WARNING, "bot")
    assert len(warnings) == (1 if logged else 0) and all(logged in w for w in warnings), warnings
    assert logs.tracebacks(mark) == []
    await running.assert_still_serves()


async def test_one_exotic_file_does_not_spoil_its_message(running: Running) -> None:
    logs = running.logs
    mark = logs.mark()
    good = as_png("sith-1")
    damaged = good[:64] + bytes(range(256)) * 8 + good[-64:]  # a PNG header, then garbage
    reply = await running.command(
        ("good.png", good), ("damaged.png", damaged), ("notes.txt", b"just words", "text/plain")
    )
    lines = text_of(reply).splitlines()
    assert lines[0].startswith("1. `good.png`: **Sith** - score "), lines
    assert lines[1] == "2. `damaged.png`: The image is damaged and cannot be read.", lines
    assert lines[2].startswith("3. `notes.txt`: That file is not an image I can read ("), lines
    assert len(lines) == 4 and lines[3].startswith("-# The score is"), lines
    assert logs.tracebacks(mark) == []


# -- memory bounds -------------------------------------------------------------------------------


async def test_downloads_past_the_byte_budget_are_refused_at_once() -> None:
    files = [sample("sith-1"), sample("jedi-2")]
    weight = sum(len(data) for _, data in files)  # what one command's attachments declare
    budget = int(weight * 2.5)  # two commands fit, a third does not
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, max_bytes_in_flight=budget) as running,
    ):
        mark = running.logs.mark()
        slow = server.faults.cdn(hold=True)
        commands = [await running.post(attachments=files, author=f"big-{n}") for n in range(5)]
        await slow.wait_held(4)  # two commands, downloading two files each
        assert running.bot.downloads.held == 2 * weight <= budget

        def answered() -> list[dict]:
            return [m for m in commands if replies_to(server, m)]

        await wait_until(lambda: len(answered()) >= 3)
        # Three were refused at once, while the other two still waited for their downloads.
        assert slow.held == 4 and len(answered()) == 3
        assert [text_of(replies_to(server, m)[0]) for m in answered()] == [BUSY] * 3
        waiting = [m for m in commands if m not in answered()]
        slow.clear()  # the held downloads go on
        for reply in await answers(server, waiting):
            assert len(verdict_lines(text_of(reply))) == 2, text_of(reply)
        await running.settle()
        assert_answered_once(server, commands)
        assert running.bot.downloads.held == 0
        assert running.logs.tracebacks(mark) == []
        await running.assert_still_serves()
