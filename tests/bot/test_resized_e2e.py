"""Large images at the size the network needs, end to end: the real bot against the look-alike,
whose CDN resizes as Discord's media proxy does. A verdict fetches the resized WebP; a resized
fetch that fails in any way falls back to the original; !teach keeps the original bytes."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from botkit import TOKEN, Running, running_bot, text_of, verdict_lines
from PIL import Image

from bot import images
from playground.discord import DiscordServer
from playground.discord.cdn import Fetch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120, func_only=True),
]

SAMPLE = "playground/samples/jedi-1.jpg"  # 200x200: the shipped model says Jedi


def large_photo(size: tuple[int, int] = (1600, 1200), orientation: int = 1) -> bytes:
    """The Jedi sample enlarged to a phone photo's size (the network sees the same drawing);
    with `orientation` 6, stored on its side as phones store portraits."""
    with Image.open(SAMPLE) as image:
        image = image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    if orientation == 6:
        image = image.transpose(Image.Transpose.ROTATE_90)  # EXIF 6 turns it back upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def fetches_of(running: Running, filename: str) -> list[Fetch]:
    return [fetch for fetch in running.server.cdn.fetches if fetch.filename == filename]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running() -> AsyncIterator[Running]:
    async with DiscordServer(token=TOKEN) as server, running_bot(server) as bot:
        yield bot


async def test_a_large_image_is_fetched_resized_and_judged(running: Running) -> None:
    reply = await running.command(("big.jpg", large_photo()))
    assert verdict_lines(text_of(reply))[0].startswith("**Jedi**"), text_of(reply)
    (fetch,) = fetches_of(running, "big.jpg")  # the resized image only, not the original
    assert fetch.query == {"format": "webp", "width": "533", "height": "400"}


async def test_a_phone_portrait_stored_on_its_side_is_fetched_resized_upright(
    running: Running,
) -> None:
    reply = await running.command(("portrait.jpg", large_photo((1200, 1600), orientation=6)))
    assert verdict_lines(text_of(reply))[0].startswith("**Jedi**"), text_of(reply)
    (fetch,) = fetches_of(running, "portrait.jpg")  # the resized answer passed the checks
    assert fetch.query == {"format": "webp", "width": "400", "height": "533"}


async def test_a_small_image_is_fetched_as_it_is(running: Running) -> None:
    with open(SAMPLE, "rb") as file:
        reply = await running.command(("small.jpg", file.read()))
    assert verdict_lines(text_of(reply))[0].startswith("**Jedi**"), text_of(reply)
    assert [fetch.query for fetch in fetches_of(running, "small.jpg")] == [{}]


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"body": b"<html>Bad gateway</html>", "content_type": "text/html"},
        {"body": b"\x00garbage" * 100, "content_type": "image/webp"},
        {"body": b"", "content_type": "image/webp"},
    ],
    ids=["http-500", "wrong-type", "garbage", "empty"],
)
async def test_a_failed_resized_fetch_falls_back_to_the_original(
    running: Running, fault: dict
) -> None:
    name = f"fallback-{len(running.posted)}.jpg"
    staged = running.server.faults.cdn(times=1, filename=name, resized=True, **fault)
    reply = await running.command((name, large_photo()))
    assert staged.hits == 1
    assert verdict_lines(text_of(reply))[0].startswith("**Jedi**"), text_of(reply)
    assert [fetch.resized for fetch in fetches_of(running, name)] == [True, False]


async def test_the_fallback_is_logged_once(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "_resized_failures", 0)  # the bot runs in this process
    mark = running.logs.mark()
    for number in range(2):
        name = f"logged-{number}.jpg"
        running.server.faults.cdn(times=1, filename=name, resized=True, status=502)
        reply = await running.command((name, large_photo()))
        assert verdict_lines(text_of(reply))[0].startswith("**Jedi**"), text_of(reply)
    warnings = [line for line in running.logs.lines(mark) if "resized download failed" in line]
    assert len(warnings) == 1, warnings  # the first fallback is a warning, later ones debug
    assert "HTTP 502" in warnings[0] and "Traceback" not in warnings[0]


async def test_teach_and_the_buttons_keep_the_original(running: Running) -> None:
    store = running.bot.dataset
    assert store is not None
    reply = await running.command(content="!dataset collect on")
    assert "Collection is **on**" in text_of(reply)
    photo = large_photo((1400, 1000))
    reply = await running.command(("taught.jpg", photo), content="!teach jedi")
    assert [fetch.query for fetch in fetches_of(running, "taught.jpg")] == [{}]
    digest = hashlib.sha256(photo).hexdigest()
    assert store.label_of(digest, running.server.guild_id).label == "jedi"
    # Where the server collects, a verdict's bytes go to the dataset on a click: the original.
    reply = await running.command(("voted.jpg", large_photo((1300, 900))))
    assert verdict_lines(text_of(reply))[0].startswith("**Jedi**"), text_of(reply)
    assert [fetch.query for fetch in fetches_of(running, "voted.jpg")] == [{}]


async def test_features_fetch_the_image_resized(running: Running) -> None:
    reply = await running.command(("features.jpg", large_photo()), content="!features")
    assert reply["attachments"], text_of(reply)
    assert [fetch.resized for fetch in fetches_of(running, "features.jpg")] == [True]
