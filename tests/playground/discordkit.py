"""Helpers for tests that run the real discord.py against playground.discord (the fixtures
``server`` and ``run_client`` are in this folder's conftest.py)."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord

TOKEN = "test-token"

Runner = Callable[..., Awaitable[discord.Client]]


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A valid RGB PNG without needing Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x10\x20\x30" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def make_intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


def new_client() -> discord.Client:
    """A plain client; a short guild_ready_timeout makes on_ready fire quickly (default 2 s)."""
    return discord.Client(intents=make_intents(), guild_ready_timeout=0.05)


def new_bot() -> Any:
    """A `commands.Bot` with the "!" prefix, ready quickly."""
    from discord.ext import commands

    return commands.Bot(command_prefix="!", intents=make_intents(), guild_ready_timeout=0.05)


async def rest(
    server: Any, method: str, path: str, json: Any = None, *, token: str | None = TOKEN
) -> tuple[int, Any]:
    """Call the look-alike's REST API as a bot would (``token=None``: no Authorization)."""
    headers = {"Authorization": f"Bot {token}"} if token else {}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.request(method, f"{server.api_url}{path}", json=json) as response,
    ):
        body = await response.json() if response.status != 204 else None
        return response.status, body


async def first(queue: asyncio.Queue[Any], timeout: float = 5) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)


async def eventually(check: Callable[[], bool], timeout: float = 5) -> None:
    """Wait until ``check()`` is true (for what a bot does after its last HTTP call)."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


# Components as a request carries them.


def button(custom_id: str = "b", **fields: Any) -> dict[str, Any]:
    return {"type": 2, "style": 1, "label": "B", "custom_id": custom_id, **fields}


def link(**fields: Any) -> dict[str, Any]:
    return {"type": 2, "style": 5, "label": "Docs", **fields}


def row(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(children)}


def codes_at(errors: dict[str, Any], path: str) -> list[str]:
    """The error codes Discord's ``errors`` tree gives for a dotted path."""
    node = errors
    for key in path.split("."):
        node = node[key]
    return [e["code"] for e in node["_errors"]]
