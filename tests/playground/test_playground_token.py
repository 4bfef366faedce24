"""The page's API and WebSocket answer only the page: `Origin: null` is another site, and every
request needs this run's token, which only the page's HTML carries."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from playground.web import TOKEN_HEADER, PlaygroundServer

pytestmark = pytest.mark.timeout(30)

META = re.compile(r'<meta name="playground-token" content="([^"]+)">')


@pytest.fixture
async def server() -> AsyncIterator[PlaygroundServer]:
    async with PlaygroundServer(token="page-test-token") as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def page_token(http: aiohttp.ClientSession, server: PlaygroundServer) -> str:
    """The token, read from the page as the browser reads it."""
    async with http.get(f"{server.base_url}/") as response:
        assert response.status == 200
        match = META.search(await response.text())
    assert match is not None
    return match.group(1)


async def post_hi(
    http: aiohttp.ClientSession, server: PlaygroundServer, headers: dict[str, str]
) -> int:
    url = f"{server.base_url}/playground/api/messages"
    async with http.post(url, data={"content": "hi"}, headers=headers) as response:
        return response.status


async def test_each_run_gives_its_page_its_own_token(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    token = await page_token(http, server)
    assert token == server.web.page_token and len(token) >= 40
    async with PlaygroundServer() as other:
        assert await page_token(http, other) != token
    assert await post_hi(http, server, {TOKEN_HEADER: token}) == 201
    assert await post_hi(http, server, {TOKEN_HEADER: token, "Origin": server.base_url}) == 201
    assert len(server.messages) == 2


async def test_origin_null_or_no_token_is_refused(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    token = await page_token(http, server)
    refused = [
        {TOKEN_HEADER: token, "Origin": "null"},  # a sandboxed frame or a data: page
        {},
        {TOKEN_HEADER: ""},
        {TOKEN_HEADER: token[:-1]},
        {TOKEN_HEADER: "é" + token},
    ]
    for headers in refused:
        assert await post_hi(http, server, headers) == 403, headers
    for path in ("interactions", "click"):
        async with http.post(f"{server.base_url}/playground/api/{path}", data={}) as response:
            assert response.status == 403
    async with http.get(f"{server.base_url}/playground/api/state") as response:
        assert response.status == 403
        assert "reload the playground" in (await response.json())["error"]
    assert server.messages == []


async def test_the_websocket_needs_the_token_and_the_page_origin(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    token = await page_token(http, server)
    url = f"{server.base_url}/playground/ws"
    for address, headers in (
        (url, {}),
        (f"{url}?token=wrong", {}),
        (f"{url}?token={token}", {"Origin": "null"}),
        (f"{url}?token={token}", {"Origin": "http://evil.example"}),
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(address, headers=headers)
        assert refused.value.status == 403
    async with http.ws_connect(f"{url}?token={token}", headers={"Origin": server.base_url}) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
