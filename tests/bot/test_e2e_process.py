"""`python -m bot` as a process: start-up failures are one line, the cooldown, and a clean stop
on SIGTERM (also while the model loads)."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from e2e_support import (
    LITERT_BANNER,
    REPLY_TIMEOUT,
    TOKEN,
    bot_env,
    replied_to,
    text_of,
    verdict_lines,
)

from playground.discord import FLAG_EPHEMERAL, DiscordServer
from playground.launch import start_logged_bot

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    # Fixture setup is left out: the session's trained_model may train for a minute first, and
    # every fixture here bounds its own waits.
    pytest.mark.timeout(60, func_only=True),
]

# -- python -m bot: startup failures -----------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def startup_failures(
    trained_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[int, str, str]]:
    """Start `python -m bot` five broken ways at once; each case's (exit code, stdout, stderr)."""
    root = tmp_path_factory.mktemp("startup")
    with socket.socket() as probe:  # a port nothing listens on once this is closed
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    empty_model = root / "empty-model"
    empty_model.mkdir()
    async with (
        DiscordServer(token=TOKEN) as normal,
        DiscordServer(token=TOKEN, privileged_intents=False) as no_intents,
    ):
        common = {"MODEL_PATH": str(trained_model), "LOG_LEVEL": "ERROR", "MODEL_BACKEND": "litert"}
        cases = {
            "missing token": bot_env(**common, DISCORD_API_URL=normal.api_url),
            "wrong token": bot_env(
                **common, DISCORD_API_URL=normal.api_url, DISCORD_TOKEN="not-the-right-token"
            ),
            "empty model folder": bot_env(
                **{**common, "MODEL_PATH": str(empty_model)},
                DISCORD_API_URL=normal.api_url,
                DISCORD_TOKEN=TOKEN,
            ),
            "message content intent off": bot_env(
                **common, DISCORD_API_URL=no_intents.api_url, DISCORD_TOKEN=TOKEN
            ),
            "server unreachable": bot_env(
                **common,
                DISCORD_API_URL=f"http://127.0.0.1:{closed_port}/api/v10",
                DISCORD_TOKEN=TOKEN,
            ),
        }
        processes = {
            name: await start_logged_bot(env, root / name.replace(" ", "-"))
            for name, env in cases.items()
        }
        codes = await asyncio.gather(*(p.wait(timeout=45) for p in processes.values()))
    return {
        name: (code, *process.output())
        for (name, process), code in zip(processes.items(), codes, strict=True)
    }


@pytest.mark.parametrize(
    ("case", "code", "says"),
    [
        ("missing token", 2, "DISCORD_TOKEN is not set"),
        ("wrong token", 1, "Discord refused the token"),
        ("empty model folder", 1, "cannot load the model"),
        ("message content intent off", 1, "Message Content intent is off"),
        ("server unreachable", 1, "cannot reach http://127.0.0.1:"),
    ],
)
async def test_a_startup_failure_is_one_line(
    startup_failures: dict[str, tuple[int, str, str]], case: str, code: int, says: str
) -> None:
    exit_code, stdout, stderr = startup_failures[case]
    assert "Traceback" not in stderr + stdout
    # LiteRT prints its own banner from C++, past Python's logging; anything else is ours.
    lines = [line for line in stderr.splitlines() if line.strip() and line != LITERT_BANNER]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("jedisith-bot: ") and says in lines[0]
    assert exit_code == code
    assert TOKEN not in stderr + stdout
    assert "not-the-right-token" not in stderr + stdout


# -- python -m bot: cooldown and SIGTERM ---------------------------------------------------------


@pytest.mark.timeout(90, func_only=True)
async def test_a_bot_process_rate_limits_then_stops_cleanly_on_sigterm(
    trained_model: Path, images: list[tuple[str, bytes]], tmp_path: Path
) -> None:
    async with DiscordServer(token=TOKEN) as server:
        env = bot_env(
            DISCORD_TOKEN=TOKEN,
            DISCORD_API_URL=server.api_url,
            MODEL_PATH=str(trained_model),
            MODEL_BACKEND="litert",
            COOLDOWN_RATE="1",
            COOLDOWN_SECONDS="60",
            SYNC_COMMANDS="1",
            LOG_LEVEL="DEBUG",
        )
        process = await start_logged_bot(env, tmp_path)
        try:
            await process.wait_connected(server.bot_ready)

            async def command(author: str) -> dict[str, Any]:
                message = await server.post_message(
                    "!jedisith", attachments=[images[0]], author={"username": author}
                )
                reply = await server.wait_for_reply(message["id"], timeout=REPLY_TIMEOUT)
                assert replied_to(reply) == message["id"]
                return reply

            assert verdict_lines(text_of(await command("anakin")))
            slow = text_of(await command("anakin"))
            assert slow.startswith("Slow down! Try again in ") and slow.endswith(" s.")
            assert verdict_lines(text_of(await command("obi-wan")))  # cooldowns are per user
            interaction = await server.invoke_slash_command(
                "jedisith", {"image": images[1]}, user={"username": "anakin"}
            )
            answer = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
            assert text_of(answer).startswith("Slow down!")
            assert answer["flags"] & FLAG_EPHEMERAL

            # SIGTERM while a command is being served: it is finished, then the bot exits 0.
            bot_id = server.application_id
            typed = sum(1 for user, _ in server.typing_events if user == bot_id)
            last = await server.post_message(
                "!jedisith", attachments=[images[3]], author={"username": "mace"}
            )
            deadline = asyncio.get_running_loop().time() + REPLY_TIMEOUT
            while sum(1 for user, _ in server.typing_events if user == bot_id) == typed:
                assert asyncio.get_running_loop().time() < deadline, "the bot never started"
                await asyncio.sleep(0.005)  # until the bot starts on the command (it types)
            process.proc.send_signal(signal.SIGTERM)
            reply = await server.wait_for_reply(last["id"], timeout=10)
            assert verdict_lines(text_of(reply))
            assert await process.wait(timeout=10) == 0
        finally:
            process.kill()
            await process.proc.wait()
    stdout, stderr = process.output()
    assert "Traceback" not in stderr
    assert "received SIGTERM" in stderr and "stopped" in stderr
    assert TOKEN not in stdout + stderr
    assert TOKEN.split(".")[-1] not in stdout + stderr


@pytest.mark.timeout(60, func_only=True)
async def test_sigterm_while_the_model_loads_exits_cleanly(tmp_path: Path) -> None:
    # The TensorFlow backend takes seconds to load: SIGTERM lands while the bot is starting.
    async with DiscordServer(token=TOKEN) as server:
        env = bot_env(
            DISCORD_TOKEN=TOKEN,
            DISCORD_API_URL=server.api_url,
            MODEL_BACKEND="tensorflow",
            LOG_LEVEL="INFO",
        )
        process = await start_logged_bot(env, tmp_path)
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while "loading the model" not in process.output()[1]:
                assert process.proc.returncode is None, process.output()
                assert asyncio.get_running_loop().time() < deadline, "never started loading"
                await asyncio.sleep(0.01)
            process.proc.send_signal(signal.SIGTERM)
            assert await process.wait(timeout=30) == 0
        finally:
            process.kill()
        stdout, stderr = process.output()
        assert "received SIGTERM" in stderr
        assert "Traceback" not in stdout + stderr
        assert not server.bot_ready.is_set()  # it stopped before connecting
