"""The gateway drops in the middle of a burst of commands: none is lost, none answered twice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from botkit import (
    SAMPLES,
    TOKEN,
    Running,
    answers,
    assert_answered_once,
    expected_label,
    running_bot,
    sample,
    text_of,
    verdict_lines,
)

from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(60, func_only=True),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running() -> AsyncIterator[Running]:
    async with DiscordServer(token=TOKEN) as server, running_bot(server) as bot:
        yield bot


def resumed(line: str) -> bool:
    return line.startswith("bot resumed session")


async def test_a_gateway_drop_mid_burst_loses_and_doubles_nothing(running: Running) -> None:
    server, logs = running.server, running.logs
    mark = logs.mark()

    async def burst(count: int, prefix: str) -> list[dict]:
        return [
            await running.post(
                attachments=[sample(SAMPLES[n % len(SAMPLES)])], author=f"{prefix}-{n % 4}"
            )
            for n in range(count)
        ]

    # Eight commands surely in flight: their downloads wait until released.
    held = server.faults.cdn(hold=True, times=8)
    first = await burst(8, "first")
    await held.wait_held(8)

    # A clean close (4000): what is posted meanwhile is replayed when the bot resumes.
    since = logs.mark()
    assert await server.drop_gateway() == 1
    during = await burst(8, "during")
    await logs.wait_for(resumed, since)
    held.release()

    # A cut connection (no close frame): events already written may never have been read.
    since = logs.mark()
    assert await server.drop_gateway(abrupt=True) == 1
    after = await burst(8, "after")
    await logs.wait_for(resumed, since)

    commands = first + during + after
    replies = await answers(server, commands)
    await running.settle()
    assert_answered_once(server, commands)
    for command, reply in zip(commands, replies, strict=True):
        lines = verdict_lines(text_of(reply))
        label = expected_label(command["attachments"][0]["filename"])
        assert len(lines) == 1 and lines[0].startswith(f"**{label}**"), text_of(reply)
    assert server.connected_sessions == 1 and len(server.gateway.sessions) == 1  # no re-IDENTIFY
    assert logs.tracebacks(mark) == []
    await running.assert_still_serves()
