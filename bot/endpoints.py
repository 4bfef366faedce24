"""Point discord.py at a self-hosted Discord-compatible server (e.g. the local playground).

discord.py has no public setting for this, so two class attributes are patched:

* ``discord.http.Route.BASE`` - the REST base URL. It is read each time a ``Route`` is built, so
  the change applies to every later request (webhooks and interaction responses included).
* ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` - where a non-sharded client opens its
  gateway socket (it never asks ``GET /gateway/bot``). After READY the client resumes at the
  ``resume_gateway_url`` the server announced, so a local server must announce itself there.

Attachment and CDN URLs need no patching: discord.py downloads whatever URL the server returns.
Sharded clients ask ``GET /gateway/bot`` through ``Route.BASE``, so they follow automatically.
"""

from __future__ import annotations

import logging

import aiohttp
import discord.http
import yarl
from discord.gateway import DiscordWebSocket

log = logging.getLogger(__name__)

DEFAULT_API_URL: str = discord.http.Route.BASE
DEFAULT_GATEWAY_URL: str = str(DiscordWebSocket.DEFAULT_GATEWAY)


def use_endpoints(api_url: str | None, gateway_url: str | None) -> None:
    """Make discord.py talk to ``api_url`` (REST) and ``gateway_url`` (WebSocket).

    ``api_url`` is the versioned base, e.g. ``http://127.0.0.1:8080/api/v10``. ``None`` (or an
    empty string) restores discord.py's default for that endpoint, so
    ``use_endpoints(None, None)`` undoes everything. Call it before ``client.start()``.
    """
    api = (api_url or "").rstrip("/") or DEFAULT_API_URL
    gateway = gateway_url or DEFAULT_GATEWAY_URL
    discord.http.Route.BASE = api
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    if api != DEFAULT_API_URL or gateway != DEFAULT_GATEWAY_URL:
        log.info("discord.py endpoints: API %s, gateway %s", api, gateway)


async def discover_gateway(session: aiohttp.ClientSession, api_url: str) -> str:
    """Ask ``GET {api_url}/gateway`` (no token needed) and return the gateway URL it names."""
    async with session.get(f"{api_url.rstrip('/')}/gateway") as response:
        response.raise_for_status()
        data = await response.json()
    return str(data["url"])
