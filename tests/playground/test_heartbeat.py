"""The look-alike's HEARTBEAT_ACK follows the heartbeat it answers, as over a real network, so
discord.py measures a round trip, not the interval (its "Can't keep up ... behind" warning).
The server runs on a loop of its own, in a thread, as it runs in a process of its own for the
playground's bot: then it can answer while discord.py's keep-alive thread is still waking."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import discord
import pytest
from discordkit import TOKEN, Runner, new_client

from bot.endpoints import use_endpoints
from playground.discord import DiscordServer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def threaded_server() -> Iterator[DiscordServer]:
    """A look-alike on an event loop in a background thread, announcing a 0.6 s heartbeat."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = DiscordServer(token=TOKEN)
    server.gateway.heartbeat_interval_ms = 600  # Discord's 41.25 s, shortened
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    use_endpoints(server.api_url, server.gateway_url)
    try:
        yield server
    finally:
        use_endpoints(None, None)
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


async def test_discord_py_has_noted_each_heartbeat_before_its_ack(
    threaded_server: DiscordServer, run_client: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[float] = []  # when each heartbeat started on its way
    noted: list[tuple[float, float]] = []  # (discord.py's note of the last send, that start)
    enough = asyncio.Event()
    send_heartbeat = discord.gateway.DiscordWebSocket.send_heartbeat
    ack = discord.gateway.KeepAliveHandler.ack

    async def recording_send(ws: discord.gateway.DiscordWebSocket, data: object) -> None:
        sent.append(time.perf_counter())
        await send_heartbeat(ws, data)

    def recording_ack(handler: discord.gateway.KeepAliveHandler) -> None:
        if sent:  # the heartbeat sent with IDENTIFY does not go through send_heartbeat
            noted.append((handler._last_send, sent[-1]))
            if len(noted) >= 5:
                enough.set()
        ack(handler)

    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "send_heartbeat", recording_send)
    monkeypatch.setattr(discord.gateway.KeepAliveHandler, "ack", recording_ack)
    await run_client(new_client())
    await asyncio.wait_for(enough.wait(), 15)
    assert all(last_send >= started for last_send, started in noted), noted
