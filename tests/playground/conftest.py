"""Fixtures of the look-alike's tests: a running `DiscordServer` with discord.py pointed at
it, and a runner of discord.py clients that closes them all at the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import discord
import pytest
from discordkit import TOKEN, Runner

from bot.endpoints import DEFAULT_API_URL, DEFAULT_GATEWAY_URL, use_endpoints
from playground.discord import DiscordServer


@pytest.fixture
async def server() -> AsyncIterator[DiscordServer]:
    async with DiscordServer(token=TOKEN, max_upload_bytes=64 * 1024) as srv:
        use_endpoints(srv.api_url, srv.gateway_url)
        try:
            yield srv
        finally:
            use_endpoints(None, None)
    assert discord.http.Route.BASE == DEFAULT_API_URL
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == DEFAULT_GATEWAY_URL


@pytest.fixture
async def run_client() -> AsyncIterator[Runner]:
    """Start clients in the background; wait for on_ready; close them all at the end."""
    started: list[tuple[discord.Client, asyncio.Task[None]]] = []

    async def run(client: discord.Client, token: str = TOKEN) -> discord.Client:
        task = asyncio.create_task(client.start(token))
        started.append((client, task))
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, timeout=5, return_when="FIRST_COMPLETED")
        if task in done:
            ready.cancel()
            task.result()  # re-raises why the client stopped
            raise AssertionError("client stopped before it was ready")
        assert ready in done, "client never got ready"
        return client

    yield run
    for client, task in started:
        await client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
