"""End-to-end tests: the real discord.py client against playground.discord."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discordkit import TOKEN, Runner, make_intents, new_client, tiny_png

from bot.endpoints import discover_gateway, use_endpoints
from playground.discord import DEFAULT_GUILDS, DiscordError, DiscordServer, Limits

pytestmark = pytest.mark.timeout(20)


async def test_login_ready_and_guild(server: DiscordServer, run_client: Runner) -> None:
    client = await run_client(new_client())
    assert server.bot_ready.is_set()
    assert client.user is not None and client.user.id == int(server.bot_user["id"])
    assert client.application_id == server.application_id
    guild = client.get_guild(server.guild_id)
    assert guild is not None and guild.member_count == 3  # the bot, padawan, master
    channel = client.get_channel(server.channel_id)
    assert isinstance(channel, discord.TextChannel) and channel.name == "general"
    assert channel.permissions_for(guild.me).attach_files
    fetched = await client.fetch_channel(server.channel_id)
    assert fetched.id == server.channel_id
    member = await guild.fetch_member(int(server.human["id"]))
    assert member.name == "padawan"
    assert (await client.fetch_guild(server.guild_id)).name == guild.name
    async with aiohttp.ClientSession() as session:
        assert await discover_gateway(session, server.api_url) == server.gateway_url


async def test_wrong_token_is_login_failure(server: DiscordServer) -> None:
    client = new_client()
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()


async def test_privileged_intents_refused(run_client: Runner) -> None:
    async with DiscordServer(token=TOKEN, privileged_intents=False) as srv:
        use_endpoints(srv.api_url, srv.gateway_url)
        try:
            client = new_client()
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(client.start(TOKEN), 5)
            await client.close()
        finally:
            use_endpoints(None, None)


async def test_message_attachment_and_reply_with_file(
    server: DiscordServer, run_client: Runner
) -> None:
    image = tiny_png()
    received: asyncio.Queue[discord.Message] = asyncio.Queue()
    client = new_client()

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author != client.user:
            await received.put(message)

    await run_client(client)
    posted = await server.post_message("what am I?", attachments=[("vader.png", image)])
    message = await asyncio.wait_for(received.get(), 5)
    assert message.content == "what am I?"
    assert message.author.name == "padawan" and isinstance(message.author, discord.Member)
    (attachment,) = message.attachments
    assert attachment.filename == "vader.png"
    assert attachment.content_type == "image/png"
    assert (attachment.width, attachment.height) == (3, 2)
    assert await attachment.read() == image

    reply_bytes = b"\x89PNG-not-really" * 10
    sent = await message.reply("hi", file=discord.File(io.BytesIO(reply_bytes), "verdict.png"))
    stored = await server.wait_for_reply(posted["id"], timeout=5)
    assert stored["id"] == str(sent.id)
    assert stored["content"] == "hi"
    assert stored["type"] == 19 and stored["referenced_message"]["id"] == posted["id"]
    assert sent.reference is not None and sent.reference.message_id == message.id
    url = stored["attachments"][0]["url"]
    assert url.startswith(server.base_url)
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert await response.read() == reply_bytes
    assert await sent.attachments[0].read() == reply_bytes
    assert [m["id"] for m in server.messages] == [posted["id"], stored["id"]]


async def test_history_edit_delete_and_reactions(server: DiscordServer, run_client: Runner) -> None:
    client = await run_client(new_client())
    events = server.subscribe()
    posted = [await server.post_message(f"message {i}") for i in range(5)]
    channel = client.get_channel(server.channel_id)
    assert isinstance(channel, discord.TextChannel)

    newest_first = [m.content async for m in channel.history(limit=3)]
    assert newest_first == ["message 4", "message 3", "message 2"]
    before = discord.Object(int(posted[2]["id"]))
    assert [m.content async for m in channel.history(limit=10, before=before)] == [
        "message 1",
        "message 0",
    ]
    after = discord.Object(int(posted[2]["id"]))
    oldest_first = [m.content async for m in channel.history(limit=10, after=after)]
    assert oldest_first == ["message 3", "message 4"]

    sent = await channel.send("draft")
    await sent.edit(content="final")
    await sent.add_reaction("👍")
    assert server.messages[-1]["content"] == "final"
    assert server.messages[-1]["reactions"][0]["emoji"]["name"] == "👍"
    fetched = await channel.fetch_message(sent.id)
    assert fetched.content == "final" and fetched.edited_at is not None
    assert fetched.reactions[0].me
    await sent.delete()
    assert all(m["id"] != str(sent.id) for m in server.messages)

    with pytest.raises(discord.Forbidden):
        await (await channel.fetch_message(int(posted[0]["id"]))).edit(content="nope")

    kinds = []
    while not events.empty():
        kinds.append(events.get_nowait()["type"])
    server.unsubscribe(events)
    assert kinds.count("message_create") == 6
    assert "message_update" in kinds and kinds[-1] == "message_delete"


async def test_typing_is_recorded(server: DiscordServer, run_client: Runner) -> None:
    client = await run_client(new_client())
    channel = client.get_channel(server.channel_id)
    assert isinstance(channel, discord.TextChannel)
    async with channel.typing():
        await asyncio.sleep(0.05)
    assert server.typing_events and server.typing_events[-1][0] == server.application_id

    seen: asyncio.Future[discord.abc.User] = asyncio.get_running_loop().create_future()

    @client.event
    async def on_typing(_channel: Any, user: discord.abc.User, _when: Any) -> None:
        if not seen.done():
            seen.set_result(user)

    await server.simulate_typing()
    assert (await asyncio.wait_for(seen, 5)).name == "padawan"


async def test_app_commands(server: DiscordServer, run_client: Runner) -> None:
    calls: list[tuple[str, Any]] = []
    bot = commands.Bot(command_prefix="!", intents=make_intents(), guild_ready_timeout=0.05)

    @bot.tree.command(name="classify", description="Jedi or Sith?")
    @app_commands.describe(image="A picture")
    async def classify(interaction: discord.Interaction, image: discord.Attachment) -> None:
        data = await image.read()
        calls.append(("classify", data))
        await interaction.response.send_message(f"{image.filename}: {len(data)} bytes")

    @bot.tree.context_menu(name="Classify image")
    async def classify_message(interaction: discord.Interaction, message: discord.Message) -> None:
        calls.append(("menu", message.id))
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(
            "verdict", file=discord.File(io.BytesIO(b"heatmap"), "heatmap.png")
        )

    await run_client(bot)
    synced = await bot.tree.sync()
    assert {c.name for c in synced} == {"classify", "Classify image"}
    assert len(server.application_commands) == 2
    assert {c.id for c in await bot.tree.sync()} == {c.id for c in synced}  # ids are stable

    image = tiny_png()
    interaction = await server.invoke_slash_command("classify", {}, [("yoda.png", image)])
    answer = await server.wait_for_reply(interaction["id"], timeout=5)
    assert calls[0] == ("classify", image)
    assert answer["content"] == "yoda.png: " + str(len(image)) + " bytes"
    assert answer["interaction_metadata"]["id"] == interaction["id"]
    callback = server.interaction_responses[0]
    assert callback["kind"] == "callback" and callback["type"] == 4

    target = await server.post_message("look at this", attachments=[("maul.png", image)])
    interaction = await server.invoke_message_command("Classify image", int(target["id"]))
    answer = await server.wait_for_reply(interaction["id"], timeout=5)
    assert calls[1] == ("menu", int(target["id"]))
    assert answer["content"] == "verdict" and answer["type"] == 23
    kinds = [(r["kind"], r.get("type")) for r in server.interaction_responses[1:]]
    assert kinds == [("callback", 5), ("followup", None)]
    url = answer["attachments"][0]["url"]
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert await response.read() == b"heatmap"


async def test_gateway_resume_after_drop(server: DiscordServer, run_client: Runner) -> None:
    received: asyncio.Queue[str] = asyncio.Queue()
    resumed = asyncio.Event()
    client = new_client()

    @client.event
    async def on_message(message: discord.Message) -> None:
        await received.put(message.content)

    @client.event
    async def on_resumed() -> None:
        resumed.set()

    await run_client(client)
    assert await server.drop_connections() == 1
    await server.post_message("while you were away")
    await asyncio.wait_for(resumed.wait(), 5)
    assert await asyncio.wait_for(received.get(), 5) == "while you were away"
    await server.post_message("after the resume")
    assert await asyncio.wait_for(received.get(), 5) == "after the resume"
    assert server.connected_sessions == 1


async def test_upload_over_limit_is_413(server: DiscordServer, run_client: Runner) -> None:
    client = await run_client(new_client())
    channel = client.get_channel(server.channel_id)
    assert isinstance(channel, discord.TextChannel)
    too_big = discord.File(io.BytesIO(b"x" * (server.max_upload_bytes + 1)), "big.bin")
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send("big", file=too_big)
    assert caught.value.status == 413 and caught.value.code == 40005
    assert server.messages == []


async def test_unknown_route_is_404(server: DiscordServer) -> None:
    headers = {"Authorization": f"Bot {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{server.api_url}/voice/regions") as response:
            assert response.status == 404
            assert (await response.json())["code"] == 0
        async with session.get(f"{server.api_url}/channels/1/messages") as response:
            assert (await response.json())["code"] == 10003


async def test_interaction_edit_ephemeral_and_followups(
    server: DiscordServer, run_client: Runner
) -> None:
    bot = commands.Bot(command_prefix="!", intents=make_intents(), guild_ready_timeout=0.05)

    @bot.tree.command(name="verdict", description="Answer in steps")
    async def verdict(interaction: discord.Interaction, secret: bool = False) -> None:
        if secret:
            await interaction.response.send_message(
                "only you", ephemeral=True, file=discord.File(io.BytesIO(b"s"), "s.txt")
            )
            return
        await interaction.response.defer()
        await interaction.edit_original_response(
            content="Sith", attachments=[discord.File(io.BytesIO(b"png"), "cam.png")]
        )
        await interaction.followup.send("details")

    await run_client(bot)
    await bot.tree.sync()

    interaction = await server.invoke_slash_command("verdict", {})
    original = await server.wait_for_reply(interaction["id"], timeout=5)
    assert original["content"] == "Sith" and original["attachments"][0]["filename"] == "cam.png"
    followup = await server.wait_for_message(lambda m: m["content"] == "details", timeout=5)
    metadata = followup["interaction_metadata"]
    assert metadata["original_response_message_id"] == original["id"]
    assert [r["kind"] for r in server.interaction_responses] == ["callback", "edit", "followup"]

    interaction = await server.invoke_slash_command("verdict", {"secret": True})
    secret = await server.wait_for_reply(interaction["id"], timeout=5)
    assert secret["flags"] & 64 and secret["attachments"][0]["ephemeral"]
    channel = bot.get_channel(server.channel_id)
    assert isinstance(channel, discord.TextChannel)
    assert "only you" not in [m.content async for m in channel.history(limit=10)]

    with pytest.raises(asyncio.TimeoutError):
        await server.wait_for_message(lambda m: m["content"] == "never", timeout=0.1)
    with pytest.raises(LookupError):
        await server.invoke_slash_command("nope", {})


async def test_message_content_needs_intent_or_mention(
    server: DiscordServer, run_client: Runner
) -> None:
    received: asyncio.Queue[discord.Message] = asyncio.Queue()
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)

    @client.event
    async def on_message(message: discord.Message) -> None:
        await received.put(message)

    await run_client(client)
    await server.post_message("hidden", attachments=[("a.png", tiny_png())])
    hidden = await asyncio.wait_for(received.get(), 5)
    assert hidden.content == "" and hidden.attachments == []
    await server.post_message(f"<@{server.application_id}> visible")
    shown = await asyncio.wait_for(received.get(), 5)
    assert shown.content.endswith("visible") and client.user in shown.mentions


# ------------------------------------------------------------------------------ guilds, bounds


async def test_every_guild_and_an_answer_in_a_second_guild(
    server: DiscordServer, run_client: Runner
) -> None:
    client = new_client()

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.content == "!where":
            assert message.guild is not None
            await message.reply(f"{message.guild.name} #{message.channel}")

    await run_client(client)
    guilds = list(server.state.guilds.values())
    assert [g.name for g in guilds] == [name for name, _ in DEFAULT_GUILDS]
    assert {g.id for g in client.guilds} == set(server.state.guilds)
    for guild, (_, channel_names) in zip(guilds, DEFAULT_GUILDS, strict=True):
        seen = client.get_guild(guild.id)
        assert seen is not None and seen.member_count == 3
        assert [c.name for c in seen.text_channels] == list(channel_names)
    assert guilds[0].id == server.guild_id and guilds[0].channel_ids[0] == server.channel_id

    second = guilds[1]
    channel_id = second.channel_ids[0]
    posted = await server.post_message("!where", channel_id=channel_id)
    assert posted["guild_id"] == str(second.id)
    reply = await server.wait_for_reply(posted["id"], timeout=5)
    assert reply["content"] == f"{second.name} #general"
    assert (reply["channel_id"], reply["guild_id"]) == (str(channel_id), str(second.id))
    assert [m["id"] for m in server.messages_in(channel_id)] == [posted["id"], reply["id"]]
    assert server.messages == []  # nothing in the default channel
    channel = client.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    assert [m.content async for m in channel.history(limit=5)] == [reply["content"], "!where"]


async def test_message_lookup_by_id(server: DiscordServer, run_client: Runner) -> None:
    client = await run_client(new_client())
    other_id = list(server.state.guilds.values())[2].channel_ids[0]
    here = [await server.post_message(f"here {i}") for i in range(50)]
    there = await server.post_message("there", channel_id=other_id)
    for message in (here[0], here[25], here[-1], there):
        assert server.get_message(message["id"]) is message
        channel = client.get_channel(int(message["channel_id"]))
        assert isinstance(channel, discord.TextChannel)
        assert (await channel.fetch_message(int(message["id"]))).content == message["content"]
    default = client.get_channel(server.channel_id)
    assert isinstance(default, discord.TextChannel)
    with pytest.raises(discord.NotFound) as caught:
        await default.fetch_message(int(there["id"]))  # not in this channel
    assert caught.value.code == 10008
    with pytest.raises(DiscordError):
        server.get_message(1)
    await server.delete_message(int(here[25]["id"]))
    with pytest.raises(DiscordError):
        server.get_message(here[25]["id"])
    assert len(server.messages) == 49


async def test_old_messages_files_and_slow_subscribers_are_bounded() -> None:
    limits = Limits(messages=3, files=4, file_bytes=10_000, queue=2, records=2)
    async with DiscordServer(token=TOKEN, limits=limits) as srv:
        events = srv.subscribe()
        posted = [
            await srv.post_message(f"m{i}", attachments=[(f"f{i}.bin", bytes([i]) * 100)])
            for i in range(6)
        ]
        assert [m["content"] for m in srv.messages] == ["m3", "m4", "m5"]
        with pytest.raises(DiscordError):
            srv.get_message(posted[0]["id"])
        async with aiohttp.ClientSession() as session:
            for i, message in enumerate(posted):
                url = message["attachments"][0]["url"]
                async with session.get(url) as response:
                    assert response.status == (200 if i >= 2 else 404), i
            big = await srv.post_message("big", attachments=[("big.bin", b"x" * 9_990)])
            async with session.get(big["attachments"][0]["url"]) as response:
                assert response.status == 200
            async with session.get(posted[-1]["attachments"][0]["url"]) as response:
                assert response.status == 404  # over file_bytes: only the newest fits
        assert srv.state.file_bytes <= limits.file_bytes

        # The subscriber read nothing: it kept the newest two events and counted the rest.
        assert events.qsize() == 2 and events.dropped == 5
        assert [events.get_nowait()["data"]["content"] for _ in range(2)] == ["m5", "big"]
        for _ in range(3):
            await srv.simulate_typing()
        assert len(srv.typing_events) == 2


async def test_feed_of_one_channel(server: DiscordServer) -> None:
    other_id = list(server.state.guilds.values())[1].channel_ids[1]
    default, everything = server.subscribe(server.channel_id), server.subscribe()
    await server.post_message("elsewhere", channel_id=other_id)
    await server.simulate_typing(channel_id=other_id)
    await server.post_message("here")
    assert [default.get_nowait()["data"]["content"]] == ["here"] and default.empty()
    kinds = [everything.get_nowait()["type"] for _ in range(everything.qsize())]
    assert kinds == ["message_create", "typing_start", "message_create"]


# -- staged faults (server.faults, server.drop_gateway) ---------------------------------------


async def test_a_fault_answers_the_next_calls_of_a_route(server: DiscordServer) -> None:
    headers = {"Authorization": f"Bot {TOKEN}"}
    channel = f"{server.api_url}/channels/{server.channel_id}"
    fault = server.faults.fail(f"GET /channels/{server.channel_id}", 503, times=2)
    async with aiohttp.ClientSession(headers=headers) as session:
        for expected in (503, 503, 200, 200):
            async with session.get(channel) as response:
                assert response.status == expected
                if expected == 503:
                    assert await response.json() == {
                        "message": "503: Service Unavailable",
                        "code": 0,
                    }
        async with session.get(f"{server.api_url}/users/@me") as response:
            assert response.status == 200  # other routes were never touched
        async with session.get(channel, headers={"Authorization": "Bot wrong"}) as response:
            assert response.status == 401  # the token is checked before any fault
    assert fault.hits == 2 and not fault.active
    assert [(c.method, c.path) for c in fault.calls] == [
        ("GET", f"/channels/{server.channel_id}")
    ] * 2
    await fault.wait_hits(2, timeout=0.1)
    with pytest.raises(TimeoutError):
        await fault.wait_hits(3, timeout=0.05)


def test_fault_routes_match_segments_methods_and_subtrees(server: DiscordServer) -> None:
    faults = server.faults
    one = faults.fail("POST /channels/*/messages", 500, times=None)
    every = faults.fail("* /channels/7/**", 500, times=None)
    full = faults.fail("/api/v10/users/@me", 500, times=None)  # no method: any
    assert one.matches("POST", "/channels/123/messages")
    assert not one.matches("GET", "/channels/123/messages")
    assert not one.matches("POST", "/channels/123/messages/4")
    assert every.matches("DELETE", "/channels/7/messages/4/reactions/x/@me")
    assert every.matches("GET", "/channels/7") and not every.matches("GET", "/channels/70")
    assert full.matches("GET", "/users/@me") and full.matches("PATCH", "/users/@me")
    faults.clear()
    assert not one.active and not one.matches("POST", "/channels/123/messages")
    with pytest.raises(ValueError):
        faults.fail("GET channels", 500)
    with pytest.raises(ValueError):
        faults.fail("GET /x", 500, times=0)


async def test_discord_py_waits_out_a_429_and_sees_403_and_400(
    server: DiscordServer, run_client: Runner
) -> None:
    client = await run_client(new_client())
    channel = client.get_channel(server.channel_id)
    assert isinstance(channel, discord.TextChannel)
    route = f"POST /channels/{server.channel_id}/messages"
    limited = server.faults.fail(route, 429, times=2, retry_after=0.05)
    sent = await channel.send("after two 429s")
    assert limited.hits == 2 and [m["content"] for m in server.messages] == ["after two 429s"]
    assert sent.content == "after two 429s"
    assert limited.calls[0].json()["content"] == "after two 429s"  # the refused body is kept

    server.faults.fail(f"GET /channels/{server.channel_id}/messages", 403)
    with pytest.raises(discord.Forbidden) as forbidden:
        [m async for m in channel.history(limit=5)]
    assert forbidden.value.code == 50001 and "Missing Access" in str(forbidden.value)

    errors = {"0": {"name": {"_errors": [{"code": "BAD", "message": "no"}]}}}
    server.faults.fail(route, 400, errors=errors)
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send("refused")
    assert refused.value.status == 400 and refused.value.code == 50035
    assert "In 0.name: no" in str(refused.value)
    assert len(server.messages) == 1


async def test_an_applied_fault_runs_the_route_and_loses_its_answer(server: DiscordServer) -> None:
    headers = {"Authorization": f"Bot {TOKEN}"}
    server.faults.fail(f"POST /channels/{server.channel_id}/messages", 500, applied=True)
    url = f"{server.api_url}/channels/{server.channel_id}/messages"
    body = {"content": "made anyway", "nonce": "42", "enforce_nonce": True}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(url, json=body) as response:
            assert response.status == 500
        assert [m["content"] for m in server.messages] == ["made anyway"]
        async with session.post(url, json=body) as response:  # the retry, same nonce
            assert response.status == 200
            assert (await response.json())["id"] == server.messages[0]["id"]
        async with session.post(url, json={**body, "enforce_nonce": False}) as response:
            assert response.status == 200  # without enforce_nonce: a new message
    assert len(server.messages) == 2


async def test_a_rate_limit_lets_a_few_calls_through_per_window(server: DiscordServer) -> None:
    headers = {"Authorization": f"Bot {TOKEN}"}
    limit = server.faults.rate_limit("GET /users/@me", limit=2, per=0.3)
    async with aiohttp.ClientSession(headers=headers) as session:
        statuses = []
        for _ in range(3):
            async with session.get(f"{server.api_url}/users/@me") as response:
                statuses.append(response.status)
                body, answered = await response.json(), response.headers
        assert statuses == [200, 200, 429]
        assert 0 < body["retry_after"] <= 0.3 and body["global"] is False
        assert answered["Via"] and answered["X-RateLimit-Scope"] == "user"
        await asyncio.sleep(body["retry_after"])  # the window is over: calls go through again
        async with session.get(f"{server.api_url}/users/@me") as response:
            assert response.status == 200
    assert limit.hits == 1 and limit.allowed == 3


async def test_cdn_faults_hold_delay_fail_cut_and_lie(server: DiscordServer) -> None:
    data = bytes(range(256)) * 40
    posted = await server.post_message("", attachments=[("a.bin", data), ("b.png", tiny_png())])
    url_a, url_b = (a["url"] for a in posted["attachments"])
    faults = server.faults
    async with aiohttp.ClientSession() as session:

        async def get(url: str) -> tuple[int, bytes]:
            async with session.get(url) as response:
                return response.status, await response.read()

        held = faults.cdn(hold=True, times=2, filename="*.bin")
        downloads = [asyncio.create_task(get(url_a)) for _ in range(2)]
        await held.wait_held(2)
        assert await get(url_b) == (200, tiny_png())  # another file: not held
        assert not any(d.done() for d in downloads)
        held.release()
        assert await asyncio.gather(*downloads) == [(200, data)] * 2
        assert held.held == 0 and held.hits == 2 and not held.active

        faults.cdn(times=1, delay=0.05, status=500)
        assert (await get(url_a))[0] == 500
        assert await get(url_a) == (200, data)  # times=1: over

        faults.cdn(times=1, declared_length=100)  # says 100 bytes: the client stops there
        assert await get(url_a) == (200, data[:100])

        for lie in ({"declared_length": len(data) * 2}, {"cut_after": 1000}):
            faults.cdn(times=1, **lie)
            async with session.get(url_a) as response:
                assert response.status == 200
                assert response.content_length == len(data) * (2 if "declared_length" in lie else 1)
                with pytest.raises(aiohttp.ClientPayloadError):
                    await response.read()
        assert await get(url_a) == (200, data)  # the server is fine afterwards

        forever = faults.cdn(hold=True)
        stuck = asyncio.create_task(get(url_b))
        await forever.wait_held(1)
        faults.clear()  # releases what was held
        assert await stuck == (200, tiny_png())


async def test_an_abrupt_gateway_drop_is_resumed(server: DiscordServer, run_client: Runner) -> None:
    received: asyncio.Queue[str] = asyncio.Queue()
    resumed = asyncio.Event()
    client = new_client()

    @client.event
    async def on_message(message: discord.Message) -> None:
        await received.put(message.content)

    @client.event
    async def on_resumed() -> None:
        resumed.set()

    await run_client(client)
    assert await server.drop_gateway(abrupt=True) == 1
    await server.post_message("sent into the void")
    await asyncio.wait_for(resumed.wait(), 10)
    assert await asyncio.wait_for(received.get(), 5) == "sent into the void"
    assert server.connected_sessions == 1 and len(server.gateway.sessions) == 1
