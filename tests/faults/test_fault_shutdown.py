"""SIGTERM while `python -m bot` serves a burst: what is in flight is finished, what comes
after is told the bot is restarting, and the process exits 0 in time."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from botkit import (
    SAMPLES,
    TOKEN,
    answers,
    expected_label,
    replies_to,
    sample,
    start_bot_process,
    text_of,
    verdict_lines,
)

from bot.client import COMMAND_GRACE, SHUTDOWN_SECONDS
from bot.replies import RESTARTING
from playground.discord import DiscordServer
from playground.launch import LoggedBot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60, func_only=True)]

MARGIN = 5.0  # seconds past SHUTDOWN_SECONDS for the process to stop (closing sockets, threads)


def assert_clean_log(process: LoggedBot) -> str:
    stdout, stderr = process.output()
    assert "Traceback" not in stdout + stderr, stderr
    assert "received SIGTERM" in stderr and "stopped" in stderr, stderr
    assert TOKEN not in stdout + stderr
    return stderr


async def test_sigterm_during_a_burst(tmp_path: Path) -> None:
    async with DiscordServer(token=TOKEN) as server:
        process = await start_bot_process(server, tmp_path, {"LOG_LEVEL": "INFO"})
        try:
            held = server.faults.cdn(hold=True, filename="held-*")  # one command surely in flight
            post = server.post_message
            burst = [
                await post("!jedisith", attachments=[sample(SAMPLES[n % 6])]) for n in range(10)
            ]
            name, data = sample("sith-3")
            burst.append(await post("!jedisith", attachments=[(f"held-{name}", data)]))
            await held.wait_held(1)
            sent = time.monotonic()
            process.proc.send_signal(signal.SIGTERM)
            await process.wait_for_log("shutting down")

            # Still connected, finishing the held command: new commands are told to come back.
            late = [
                await post(
                    "!jedisith", attachments=[sample(SAMPLES[n])], author={"username": "late"}
                )
                for n in range(3)
            ]
            late_replies = await answers(server, late)
            assert [text_of(r) for r in late_replies] == [RESTARTING] * 3
            held.release()
            code = await process.wait(timeout=SHUTDOWN_SECONDS + MARGIN)
            took = time.monotonic() - sent
        finally:
            process.kill()
            await process.proc.wait()
        assert code == 0 and took < SHUTDOWN_SECONDS + MARGIN

        # The bot is gone: every reply it will ever send is here to be counted.
        for message in burst + late:
            replies = replies_to(server, message)
            assert len(replies) == 1, (message["attachments"][0]["filename"], replies)
            text = text_of(replies[0])
            if text != RESTARTING:  # those that arrived after SIGTERM may be turned away
                label = expected_label(message["attachments"][0]["filename"].removeprefix("held-"))
                assert verdict_lines(text)[0].startswith(f"**{label}**"), text
        held_reply = text_of(replies_to(server, burst[-1])[0])
        assert verdict_lines(held_reply)[0].startswith("**Sith**")  # in flight: finished
    assert_clean_log(process)


@dataclass
class Overdue:
    code: int
    took: float
    replies: list[dict]
    stderr: str


@pytest.fixture(scope="module")
def overdue(tmp_path_factory: pytest.TempPathFactory) -> Overdue:
    """SIGTERM while a command's download hangs past the grace (and within its timeout)."""

    async def scenario() -> Overdue:
        folder = tmp_path_factory.mktemp("overdue")
        async with DiscordServer(token=TOKEN) as server:
            settings = {"LOG_LEVEL": "INFO", "DOWNLOAD_TIMEOUT": str(SHUTDOWN_SECONDS * 3)}
            process = await start_bot_process(server, folder, settings)
            try:
                stuck = server.faults.cdn(hold=True)
                message = await server.post_message("!jedisith", attachments=[sample("jedi-1")])
                await stuck.wait_held(1)
                sent = time.monotonic()
                process.proc.send_signal(signal.SIGTERM)
                code = await process.wait(timeout=SHUTDOWN_SECONDS + MARGIN)
                took = time.monotonic() - sent
            finally:
                process.kill()
                await process.proc.wait()
            return Overdue(code, took, replies_to(server, message), process.output()[1])

    return asyncio.run(scenario())


def test_sigterm_with_a_command_past_the_grace_exits_in_time(overdue: Overdue) -> None:
    assert overdue.code == 0
    assert COMMAND_GRACE <= overdue.took < SHUTDOWN_SECONDS + MARGIN
    assert "closing with 1 commands unfinished" in overdue.stderr


def test_sigterm_with_a_command_past_the_grace_answers_it(overdue: Overdue) -> None:
    assert len(overdue.replies) == 1, "the command in flight was never answered"
    assert text_of(overdue.replies[0]) == RESTARTING  # stopped, and told to retry
    assert "Traceback" not in overdue.stderr
