"""Finding the image a command is about, and downloading it within limits."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import AsyncIterator, Iterable
from types import SimpleNamespace
from typing import Any
from unittest import mock

import aiohttp
import discord
import pytest
from aiohttp import web
from PIL import Image

from bot.errors import DownloadFailed, NoImageFound, UserFacingError
from bot.images import (
    ByteBudget,
    declared_bytes,
    download,
    find_target,
    gather_bytes,
    looks_like_image,
    target_attachments,
)
from model.preprocess import ImageError, ImageTooLargeError
from model.worker import WorkerBusy

pytestmark = pytest.mark.timeout(20)

BOT_ID = 1000
HUMAN_ID = 2000
_ids = itertools.count(10_000)


def png(size: tuple[int, int] = (8, 8), color: tuple[int, int, int] = (10, 20, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def attachment(
    filename: str = "image.png",
    *,
    url: str = "http://127.0.0.1:9/none",
    size: int = 100,
    content_type: str | None = "image/png",
) -> discord.Attachment:
    """A real `discord.Attachment`, as discord.py builds it from Discord's JSON."""
    data: dict[str, Any] = {
        "id": str(next(_ids)),
        "filename": filename,
        "size": size,
        "url": url,
        "proxy_url": url,
    }
    if content_type is not None:
        data["content_type"] = content_type
    return discord.Attachment(data=data, state=SimpleNamespace(http=None))  # type: ignore[arg-type]


def text_file(name: str = "notes.txt") -> discord.Attachment:
    return attachment(name, content_type="text/plain; charset=utf-8")


# -- a channel and its messages, as spec_set mocks of discord.py's own classes ----------------


def member(member_id: int) -> discord.Member:
    person = mock.create_autospec(discord.Member, instance=True, spec_set=True)
    person.id = member_id
    return person


class FakeChannel:
    """A `discord.TextChannel` (spec_set) whose messages live in a list, oldest first."""

    def __init__(self) -> None:
        self.messages: list[discord.Message] = []
        self.fetches: list[int] = []
        self.history_calls = 0
        self.hidden: set[int] = set()  # ids fetch_message cannot see
        self.channel = mock.create_autospec(discord.TextChannel, instance=True, spec_set=True)
        self.channel.fetch_message.side_effect = self._fetch_message
        self.channel.history.side_effect = self._history

    async def _fetch_message(self, message_id: int) -> discord.Message:
        self.fetches.append(message_id)
        for message in self.messages:
            if message.id == message_id and message_id not in self.hidden:
                return message
        response = mock.create_autospec(aiohttp.ClientResponse, instance=True, spec_set=True)
        response.status, response.reason = 404, "Not Found"
        raise discord.NotFound(response, "Unknown Message")

    async def _history(
        self, *, limit: int, before: discord.Message
    ) -> AsyncIterator[discord.Message]:
        self.history_calls += 1
        earlier = [m for m in self.messages if m.id < before.id]
        for message in list(reversed(earlier))[:limit]:
            yield message


def post(
    channel: FakeChannel,
    *,
    attachments: Iterable[discord.Attachment] = (),
    content: str = "",
    author_id: int = HUMAN_ID,
    reply_to: discord.Message | None = None,
    resolved: Any = None,
) -> discord.Message:
    """A `discord.Message` (spec_set) posted in `channel`; a reply carries a real
    `discord.MessageReference`, whose `resolved` is what Discord sent along (or None)."""
    message = mock.create_autospec(discord.Message, instance=True, spec_set=True)
    message.id = next(_ids)
    message.channel = channel.channel
    message.author = member(author_id)
    message.attachments = list(attachments)
    message.content = content
    guild = mock.create_autospec(discord.Guild, instance=True, spec_set=True)
    guild.me = member(BOT_ID)
    message.guild = guild
    message.reference = None
    if reply_to is not None:
        reference = discord.MessageReference(message_id=reply_to.id, channel_id=1)
        reference.resolved = resolved
        message.reference = reference
    channel.messages.append(message)
    return message


# -- find_target ------------------------------------------------------------------------------


async def test_the_commands_own_attachments_come_first() -> None:
    channel = FakeChannel()
    post(channel, attachments=[attachment("earlier.png")])
    own = attachment("mine.png")
    command = post(channel, attachments=[own], content="!jedisith")
    assert await find_target(command, history_limit=25) is command
    assert channel.history_calls == 0 and channel.fetches == []


async def test_own_attachments_win_over_a_reply() -> None:
    channel = FakeChannel()
    original = post(channel, attachments=[attachment("theirs.png")])
    command = post(channel, attachments=[attachment("mine.png")], reply_to=original)
    assert await find_target(command, 25) is command


async def test_the_replied_to_message_comes_next() -> None:
    channel = FakeChannel()
    original = post(channel, attachments=[attachment("vader.png")])
    post(channel, attachments=[attachment("later.png")])  # newer, but not the one meant
    command = post(channel, content="!jedisith", reply_to=original)
    assert await find_target(command, 25) is original
    assert channel.fetches == [original.id]
    assert channel.history_calls == 0


async def test_a_resolved_reply_is_used_without_fetching_it() -> None:
    channel = FakeChannel()
    original = post(channel, attachments=[attachment("vader.png")])
    command = post(channel, content="!jedisith", reply_to=original, resolved=original)
    assert await find_target(command, 25) is original
    assert channel.fetches == [] and channel.history_calls == 0


async def test_a_reply_to_a_message_without_an_image() -> None:
    channel = FakeChannel()
    post(channel, attachments=[attachment("older.png")])
    original = post(channel, content="just words")
    command = post(channel, content="!jedisith", reply_to=original)
    with pytest.raises(NoImageFound, match="replied to has no image"):
        await find_target(command, 25)
    assert channel.history_calls == 0  # a reply never falls back to history


async def test_a_reply_to_a_message_that_cannot_be_fetched() -> None:
    channel = FakeChannel()
    original = post(channel, attachments=[attachment("gone.png")])
    channel.hidden.add(original.id)
    reference = discord.MessageReference(message_id=original.id, channel_id=1)
    deleted = discord.DeletedReferencedMessage(reference)  # what Discord sends for a deleted one
    command = post(channel, content="!jedisith", reply_to=original, resolved=deleted)
    with pytest.raises(NoImageFound, match="can't see the message"):
        await find_target(command, 25)


async def test_else_the_latest_image_in_history() -> None:
    channel = FakeChannel()
    post(channel, attachments=[attachment("old.png")])
    latest = post(channel, attachments=[attachment("new.jpg", content_type="image/jpeg")])
    post(channel, content="what is this?")
    command = post(channel, content="!jedisith")
    assert await find_target(command, 25) is latest


async def test_history_skips_the_bots_own_messages() -> None:
    channel = FakeChannel()
    human = post(channel, attachments=[attachment("luke.png")])
    post(channel, attachments=[attachment("conv1.png")], author_id=BOT_ID)  # feature maps
    command = post(channel, content="!features")
    assert await find_target(command, 25) is human


async def test_history_skips_messages_with_only_text_files() -> None:
    channel = FakeChannel()
    image = post(channel, attachments=[attachment("x.webp", content_type=None)])
    post(channel, attachments=[text_file("log.txt"), text_file("b.md")])
    command = post(channel, content="!jedisith")
    assert await find_target(command, 25) is image


async def test_history_stops_at_its_limit() -> None:
    channel = FakeChannel()
    post(channel, attachments=[attachment("far.png")])
    for n in range(3):
        post(channel, content=f"chat {n}")
    command = post(channel, content="!jedisith")
    with pytest.raises(NoImageFound):
        await find_target(command, history_limit=3)
    assert await find_target(command, history_limit=4) is channel.messages[0]


async def test_no_read_message_history_permission_is_explained(caplog) -> None:
    channel = FakeChannel()
    response = mock.create_autospec(aiohttp.ClientResponse, instance=True, spec_set=True)
    response.status, response.reason = 403, "Forbidden"
    channel.channel.history.side_effect = discord.Forbidden(response, "Missing Access")
    command = post(channel, content="!jedisith")
    with caplog.at_level("WARNING", logger="bot.images"), pytest.raises(NoImageFound) as caught:
        await find_target(command, 25)
    assert "Read Message History" in str(caught.value)
    (record,) = caplog.records
    assert "Read Message History" in record.getMessage() and record.exc_info is None


async def test_a_channel_without_history_permission_is_not_searched(caplog) -> None:
    """Discord answers an empty history when the permission is missing: the bot asks first."""
    channel = FakeChannel()
    post(channel, attachments=[attachment("old.png")])
    command = post(channel, content="!jedisith")
    channel.channel.permissions_for.return_value = discord.Permissions(read_message_history=False)
    with caplog.at_level("WARNING", logger="bot.images"), pytest.raises(NoImageFound) as caught:
        await find_target(command, 25)
    assert "Read Message History" in str(caught.value)
    assert channel.history_calls == 0 and len(caplog.records) == 1
    channel.channel.permissions_for.return_value = discord.Permissions(read_message_history=True)
    assert await find_target(command, 25) is channel.messages[0]


async def test_a_zero_history_limit_does_not_search() -> None:
    channel = FakeChannel()
    post(channel, attachments=[attachment("old.png")])
    command = post(channel, content="!jedisith")
    with pytest.raises(NoImageFound):
        await find_target(command, history_limit=0)
    assert channel.history_calls == 0


async def test_nothing_anywhere() -> None:
    channel = FakeChannel()
    post(channel, content="hello")
    command = post(channel, content="!jedisith")
    with pytest.raises(NoImageFound, match="found no image") as caught:
        await find_target(command, 25)
    assert isinstance(caught.value, UserFacingError)


async def test_links_in_message_text_are_never_followed() -> None:
    channel = FakeChannel()
    post(channel, content="look: https://example.com/vader.png")
    command = post(channel, content="!jedisith https://example.com/sidious.jpg")
    with pytest.raises(NoImageFound):
        await find_target(command, 25)


# -- which attachments -------------------------------------------------------------------------


def test_looks_like_image() -> None:
    assert looks_like_image(attachment("a.bin", content_type="image/png"))
    assert looks_like_image(attachment("a", content_type="IMAGE/JPEG; q=1"))
    assert looks_like_image(attachment("PHOTO.JPG", content_type=None))
    assert looks_like_image(attachment("a.gif", content_type="application/octet-stream"))
    assert not looks_like_image(attachment("a.txt", content_type="text/plain"))
    assert not looks_like_image(attachment("archive.png.zip", content_type=None))
    assert not looks_like_image(attachment("noext", content_type=None))


def test_target_attachments_of_the_command_keep_every_file() -> None:
    channel = FakeChannel()
    files = [attachment("a.png"), text_file("b.txt")]
    command = post(channel, attachments=files)
    assert target_attachments(command, command, 10) == files  # b.txt: told it is not an image


def test_target_attachments_from_history_keep_only_images() -> None:
    channel = FakeChannel()
    image, notes = attachment("a.png"), text_file("b.txt")
    earlier = post(channel, attachments=[notes, image])
    command = post(channel, content="!jedisith")
    assert target_attachments(command, earlier, 10) == [image]


def test_target_attachments_of_a_replied_message_keep_every_file() -> None:
    channel = FakeChannel()
    files = [text_file("b.txt"), attachment("a.png")]
    original = post(channel, attachments=files)
    command = post(channel, content="!jedisith", reply_to=original)
    assert target_attachments(command, original, 10) == files


def test_target_attachments_respect_the_limit() -> None:
    channel = FakeChannel()
    files = [attachment(f"{n}.png") for n in range(5)]
    command = post(channel, attachments=files)
    assert target_attachments(command, command, 3) == files[:3]


# -- download -----------------------------------------------------------------------------------


class FileHost:
    """A tiny HTTP server with well-behaved and badly behaved files; counts requests."""

    IMAGE = png((16, 16))

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.streamed = 0
        self.base = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/image.png", self._image)
        app.router.add_get("/missing.png", self._missing)
        app.router.add_get("/declares-too-much.png", self._declares_too_much)
        app.router.add_get("/endless.png", self._endless)
        app.router.add_get("/slow.png", self._slow)
        app.router.add_get("/error.png", self._error)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    async def _image(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.Response(body=self.IMAGE, content_type="image/png")

    async def _missing(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.Response(status=404, text="404: Not Found")

    async def _error(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.Response(status=503, text="try later")

    async def _declares_too_much(self, request: web.Request) -> web.StreamResponse:
        """Says 50 MB in Content-Length, though Discord said the file was small."""
        self.hits.append(request.path)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = 50 * 1024 * 1024
        await response.prepare(request)
        try:
            for _ in range(800):  # 50 MB, in 64 KiB writes
                await response.write(b"\0" * 65536)
                self.streamed += 65536
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        """No Content-Length, and bytes until the client hangs up (or 200 MB)."""
        self.hits.append(request.path)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            while self.streamed < 200 * 1024 * 1024:
                await response.write(b"\x89" * 65536)
                self.streamed += 65536
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def _slow(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        await asyncio.sleep(10)
        return web.Response(body=self.IMAGE, content_type="image/png")


@pytest.fixture
async def host() -> AsyncIterator[FileHost]:
    server = FileHost()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_download_returns_the_bytes(host: FileHost, session: aiohttp.ClientSession) -> None:
    file = attachment("image.png", url=host.url("image.png"), size=len(FileHost.IMAGE))
    assert await download(session, file, max_bytes=1_000_000, timeout=5) == FileHost.IMAGE


async def test_a_declared_size_over_the_limit_is_refused_before_fetching(
    host: FileHost, session: aiohttp.ClientSession
) -> None:
    file = attachment("big.png", url=host.url("image.png"), size=11 * 1024 * 1024)
    with pytest.raises(ImageTooLargeError, match=r"11\.0 MB.*10\.0 MB") as caught:
        await download(session, file, max_bytes=10 * 1024 * 1024, timeout=5)
    assert isinstance(caught.value, ImageError)
    assert host.hits == []


async def test_a_content_length_over_the_limit_is_refused_before_reading(
    host: FileHost, session: aiohttp.ClientSession
) -> None:
    file = attachment("liar.png", url=host.url("declares-too-much.png"), size=1000)
    with pytest.raises(ImageTooLargeError, match=r"50\.0 MB"):
        await download(session, file, max_bytes=1024 * 1024, timeout=5)
    assert host.hits == ["/declares-too-much.png"]


async def test_a_body_over_the_limit_is_cut_off_while_reading(
    host: FileHost, session: aiohttp.ClientSession
) -> None:
    file = attachment("endless.png", url=host.url("endless.png"), size=1000)
    with pytest.raises(ImageTooLargeError, match="more than") as caught:
        await download(session, file, max_bytes=1024 * 1024, timeout=10)
    assert "1.0 MB" in str(caught.value)
    assert host.hits == ["/endless.png"]
    # The client stopped reading soon after the limit; it did not drain the 200 MB.
    assert host.streamed < 64 * 1024 * 1024


async def test_http_404_is_a_download_failure(
    host: FileHost, session: aiohttp.ClientSession
) -> None:
    file = attachment("gone.png", url=host.url("missing.png"))
    with pytest.raises(DownloadFailed, match="404") as caught:
        await download(session, file, max_bytes=1_000_000, timeout=5)
    assert isinstance(caught.value, UserFacingError)


async def test_a_server_error_is_a_download_failure(
    host: FileHost, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    signed = host.url("error.png") + "?ex=6767&is=6766&hm=" + "f" * 64  # like Discord's CDN
    file = attachment("busy.png", url=signed)
    with (
        caplog.at_level("WARNING", logger="bot.images"),
        pytest.raises(DownloadFailed, match="503"),
    ):
        await download(session, file, max_bytes=1_000_000, timeout=5)
    (record,) = caplog.records
    assert str(file.id) in record.getMessage() and "503" in record.getMessage()
    assert "hm=" not in record.getMessage() and host.base not in record.getMessage()


async def test_a_timeout_is_a_download_failure(
    host: FileHost, session: aiohttp.ClientSession
) -> None:
    file = attachment("slow.png", url=host.url("slow.png"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DownloadFailed, match="too long"):
        await download(session, file, max_bytes=1_000_000, timeout=0.3)
    assert loop.time() - started < 3


async def test_an_unreachable_host_is_a_download_failure(session: aiohttp.ClientSession) -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()  # nothing listens on `port` any more
    file = attachment("x.png", url=f"http://127.0.0.1:{port}/x.png")
    with pytest.raises(DownloadFailed, match="couldn't download"):
        await download(session, file, max_bytes=1_000_000, timeout=5)


async def test_gather_bytes_keeps_failures_in_place(
    host: FileHost, session: aiohttp.ClientSession
) -> None:
    files = [
        attachment("a.png", url=host.url("image.png")),
        attachment("b.png", url=host.url("missing.png")),
        attachment("c.png", url=host.url("image.png"), size=5_000_000),
        attachment("d.png", url=host.url("image.png")),
    ]
    results = await gather_bytes(session, files, max_bytes=1_000_000, timeout=5)
    assert results[0] == FileHost.IMAGE
    assert isinstance(results[1], DownloadFailed)
    assert isinstance(results[2], ImageTooLargeError)
    assert results[3] == FileHost.IMAGE
    assert sorted(host.hits) == ["/image.png", "/image.png", "/missing.png"]


async def test_gather_bytes_of_nothing(session: aiohttp.ClientSession) -> None:
    assert await gather_bytes(session, [], max_bytes=10, timeout=1) == []


# -- the bytes of downloads the whole bot holds ------------------------------------------------


def test_the_download_budget_refuses_at_once_past_its_limit() -> None:
    budget = ByteBudget(limit=100)
    with budget.reserve(60):
        with budget.reserve(40):
            assert budget.held == 100
            with pytest.raises(WorkerBusy), budget.reserve(1):
                pass
        assert budget.held == 60
    assert budget.held == 0
    with budget.reserve(500):  # alone, a command always goes
        assert budget.held == 500
    with pytest.raises(RuntimeError), budget.reserve(30):
        raise RuntimeError("a failed download")
    assert budget.held == 0  # released, whatever happened


def test_declared_bytes_counts_each_file_at_most_the_image_limit() -> None:
    files = [attachment(size=10), attachment(size=5_000), attachment(size=-1)]
    assert declared_bytes(files, max_bytes=1_000) == 10 + 1_000 + 0
