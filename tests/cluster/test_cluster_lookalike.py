"""The look-alike speaks sharding, seen from a raw gateway client: ``GET /gateway/bot``, READY and
GUILD_CREATE per shard, events routed by ``(guild_id >> 22) % count``, the close codes 4010 and
4011, INVALID_SESSION past max_concurrency, and RESUME of one shard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from playground.discord import DiscordServer, Sharding, numbered_guilds

INTENTS = 1 | 1 << 9 | 1 << 15  # GUILDS, GUILD_MESSAGES, MESSAGE_CONTENT


class Client:
    """One raw gateway connection."""

    def __init__(self, server: DiscordServer, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.server = server
        self.ws = ws
        self.session_id = ""
        self.seq = 0

    async def receive(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The next payload; None once the server closed the socket."""
        message = await self.ws.receive(timeout)
        if message.type is not aiohttp.WSMsgType.TEXT:
            return None
        payload = message.json()
        if payload.get("s"):
            self.seq = payload["s"]
        return payload

    async def dispatch(self, event: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            payload = await self.receive(timeout)
            assert payload is not None, f"closed ({self.ws.close_code}) before {event}"
            if payload.get("t") == event:
                return payload["d"]

    async def identify(self, shard: Any = None) -> None:
        data: dict[str, Any] = {"token": self.server.token, "intents": INTENTS}
        if shard is not None:
            data["shard"] = shard
        await self.ws.send_json({"op": 2, "d": data})

    async def ready(self, shard: Any = None) -> tuple[dict[str, Any], list[int]]:
        """IDENTIFY, then READY and the GUILD_CREATEs (their guild ids)."""
        await self.identify(shard)
        ready = await self.dispatch("READY")
        self.session_id = ready["session_id"]
        created = [int((await self.dispatch("GUILD_CREATE"))["id"]) for _ in ready["guilds"]]
        return ready, created

    async def closed_with(self) -> int | None:
        while await self.receive() is not None:
            pass
        return self.ws.close_code


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@contextlib.asynccontextmanager
async def lookalike(**sharding: Any) -> AsyncIterator[DiscordServer]:
    async with DiscordServer(guilds=numbered_guilds(8), sharding=Sharding(**sharding)) as server:
        yield server


async def connect(server: DiscordServer, http: aiohttp.ClientSession) -> Client:
    ws = await http.ws_connect(server.gateway_url)
    hello = await ws.receive_json()
    assert hello["op"] == 10
    return Client(server, ws)


async def test_gateway_bot_recommends_shards_and_counts_session_starts(
    http: aiohttp.ClientSession,
) -> None:
    async with lookalike(guilds_per_shard=3, max_concurrency=4, session_starts=50) as server:
        headers = {"Authorization": f"Bot {server.token}"}

        async def gateway_bot() -> dict[str, Any]:
            async with http.get(f"{server.api_url}/gateway/bot", headers=headers) as response:
                return await response.json()

        before = await gateway_bot()
        assert before["url"] == server.gateway_url
        assert before["shards"] == 3 == server.recommended_shards  # ceil(8 / 3)
        limit = before["session_start_limit"]
        assert limit["total"] == limit["remaining"] == 50 and limit["max_concurrency"] == 4
        assert 0 < limit["reset_after"] <= 24 * 3600 * 1000
        client = await connect(server, http)
        await client.ready([0, 3])
        assert (await gateway_bot())["session_start_limit"]["remaining"] == 49


async def test_a_shard_gets_only_its_guilds(http: aiohttp.ClientSession) -> None:
    async with lookalike() as server:
        clients = []  # kept: a client collected closes its socket
        for shard in range(4):
            clients.append(client := await connect(server, http))
            ready, created = await client.ready([shard, 4])
            mine = server.guilds_of_shard(shard, 4)
            assert len(mine) == 2
            assert [int(g["id"]) for g in ready["guilds"]] == created == mine
            assert ready["shard"] == [shard, 4]
        assert sorted(server.shard_sessions()) == [0, 1, 2, 3]


@pytest.mark.parametrize("shard", [[4, 4], [0, 0], [-1, 2], [0], [1, 2, 3], "0,2", [0, True]])
async def test_an_invalid_shard_is_closed_with_4010(http: aiohttp.ClientSession, shard) -> None:
    async with lookalike() as server:
        client = await connect(server, http)
        await client.identify(shard)
        assert await client.closed_with() == 4010
        assert server.gateway.starts.refused[0].refused == "4010"
        assert not server.gateway.sessions


@pytest.mark.parametrize(("shard", "code"), [(None, 4011), ([0, 2], 4011), ([0, 3], None)])
async def test_too_many_guilds_on_one_connection_is_closed_with_4011(
    http: aiohttp.ClientSession, shard: list[int] | None, code: int | None
) -> None:
    async with lookalike(max_guilds_per_shard=3) as server:  # 8 guilds: 3 shards at least
        client = await connect(server, http)
        if code is None:
            _, created = await client.ready(shard)
            assert created == server.guilds_of_shard(0, 3)  # 8 guilds over 3 shards: 3, 3, 2
        else:
            await client.identify(shard)
            assert await client.closed_with() == code


async def test_events_go_to_the_shard_of_their_guild_and_dms_to_shard_zero(
    http: aiohttp.ClientSession,
) -> None:
    async with lookalike() as server:
        clients = []
        for shard in (0, 1):
            clients.append(await connect(server, http))
            await clients[-1].ready([shard, 2])
        for guild_id in server.guild_ids:
            shard = server.shard_of(guild_id, 2)
            message = await server.post_message("hi", channel_id=server.first_channel(guild_id))
            got = await clients[shard].dispatch("MESSAGE_CREATE")
            assert got["id"] == message["id"]
            assert server.delivered_to(message["id"]) == [(clients[shard].session_id, (shard, 2))]
        direct = {"id": "1", "channel_id": "2", "author": {"id": "3"}, "content": "a DM"}
        await server.gateway.dispatch("MESSAGE_CREATE", direct)  # no guild_id
        assert (await clients[0].dispatch("MESSAGE_CREATE"))["content"] == "a DM"
        assert [shard for _, shard in server.delivered_to("1")] == [(0, 2)]
        with pytest.raises(asyncio.TimeoutError):  # shard 1 got none of shard 0's
            await clients[1].dispatch("MESSAGE_CREATE", timeout=0.2)


async def test_identify_past_max_concurrency_gets_invalid_session(
    http: aiohttp.ClientSession,
) -> None:
    async with lookalike(max_concurrency=2, pace_identify=True) as server:
        clients = []
        for shard in (0, 1):  # one per bucket: both at once
            clients.append(client := await connect(server, http))
            await client.ready([shard, 4])
        third = await connect(server, http)
        await third.identify([2, 4])  # bucket 0 again, within 5 s
        refused = await third.receive()
        assert refused == {"op": 9, "d": False, "s": None, "t": None}
        assert [i.refused for i in server.gateway.starts.identifies] == ["", "", "max_concurrency"]
        assert sorted(server.shard_sessions()) == [0, 1]


async def test_a_dropped_shard_resumes_with_what_it_missed(http: aiohttp.ClientSession) -> None:
    async with lookalike() as server:
        first, second = await connect(server, http), await connect(server, http)
        await first.ready([0, 2])
        await second.ready([1, 2])
        assert await server.drop_shard(0) == 1
        assert await first.closed_with() == 4000
        assert await server.drop_shard(0) == 0  # nothing left to drop
        guild_id = server.guilds_of_shard(0, 2)[0]
        missed = await server.post_message("meanwhile", channel_id=server.first_channel(guild_id))

        again = await connect(server, http)
        resume = {"token": server.token, "session_id": first.session_id, "seq": first.seq}
        await again.ws.send_json({"op": 6, "d": resume})
        assert (await again.dispatch("MESSAGE_CREATE"))["id"] == missed["id"]
        await again.dispatch("RESUMED")
        assert server.shard_sessions() == {0: first.session_id, 1: second.session_id}


async def test_a_new_session_of_a_shard_replaces_its_disconnected_ones(
    http: aiohttp.ClientSession,
) -> None:
    async with lookalike() as server:
        old = await connect(server, http)
        await old.ready([0, 2])
        await server.drop_shard(0, abrupt=True)
        new = await connect(server, http)
        await new.ready([0, 2])
        assert list(server.gateway.sessions) == [new.session_id]
