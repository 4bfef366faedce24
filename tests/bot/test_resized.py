"""The resized download's request (`bot.images.resized_request`) and the look-alike CDN's
resizing (`playground.discord.cdn.resized`), which answers it as Discord's media proxy does."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import discord
import pytest
from PIL import Image

from bot.images import RESIZED_SIDE, resized_request, resized_size
from bot.settings import Settings
from playground.discord.cdn import resized

PROXY = "https://media.discordapp.net/attachments/1/2/photo.jpg?ex=65&is=64&hm=abc"


def attachment(
    width: int | None, height: int | None, content_type: str = "image/jpeg", url: str = PROXY
) -> discord.Attachment:
    """A real `discord.Attachment`, as discord.py builds it from Discord's JSON."""
    data: dict[str, Any] = {
        "id": "10",
        "filename": "photo.jpg",
        "size": 2_000_000,
        "url": url.replace("media.discordapp.net", "cdn.discordapp.com"),
        "proxy_url": url,
        "content_type": content_type,
    }
    if width is not None and height is not None:
        data["width"], data["height"] = width, height
    return discord.Attachment(data=data, state=SimpleNamespace(http=None))  # type: ignore[arg-type]


def jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 40)).save(out, "JPEG")
    return out.getvalue()


def test_the_shorter_side_is_twice_the_networks_and_the_aspect_ratio_is_kept() -> None:
    assert RESIZED_SIDE == 400
    assert resized_size(4032, 3024) == (533, 400)
    assert resized_size(3024, 4032) == (400, 533)
    assert resized_size(1170, 2532) == (400, 866)  # a phone screenshot
    assert resized_size(400, 3000) is None and resized_size(300, 200) is None


def test_the_request_asks_the_media_proxy_for_webp_and_keeps_the_signature() -> None:
    request = resized_request(attachment(4032, 3024))
    assert request is not None
    url, size = request
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("media.discordapp.net", "/attachments/1/2/photo.jpg")
    query = dict(parse_qsl(parts.query))
    assert query == {
        "ex": "65",
        "is": "64",
        "hm": "abc",
        "format": "webp",
        "width": "533",
        "height": "400",
    }
    assert size == (533, 400)


@pytest.mark.parametrize(
    "item",
    [
        attachment(300, 200),  # small: the original is smaller than what we would ask for
        attachment(None, None),  # Discord did not say its size
        attachment(4000, 3000, content_type="video/mp4"),  # not marked as an image
    ],
    ids=["small", "no-size", "not-an-image"],
)
def test_no_resized_request_unless_a_large_image_of_known_size(item: discord.Attachment) -> None:
    assert resized_request(item) is None


def test_resized_downloads_are_on_unless_turned_off() -> None:
    assert Settings(token="x" * 59).resized_downloads
    off = Settings.model_validate({"DISCORD_TOKEN": "x" * 59, "RESIZED_DOWNLOADS": "false"})
    assert not off.resized_downloads


def test_the_cdn_resizes_to_webp_within_the_box() -> None:
    answer = resized(jpeg((1600, 1200)), {"width": "533", "height": "400", "format": "webp"})
    assert answer is not None
    data, content_type = answer
    assert content_type == "image/webp"
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("WEBP", (533, 400))


def test_the_cdn_never_enlarges_and_keeps_the_format_unless_asked() -> None:
    answer = resized(jpeg((300, 200)), {"width": "600", "height": "400"})
    assert answer is not None
    with Image.open(io.BytesIO(answer[0])) as image:
        assert (image.format, image.size, answer[1]) == ("JPEG", (300, 200), "image/jpeg")


@pytest.mark.parametrize(
    "query",
    [{"width": "x"}, {"width": "0"}, {"width": "99999"}, {"format": "tiff"}],
    ids=["not-a-number", "zero", "too-large", "unknown-format"],
)
def test_the_cdn_refuses_a_query_the_media_proxy_does_not_take(query: dict[str, str]) -> None:
    assert resized(jpeg((50, 50)), query) is None


def test_the_cdn_refuses_what_is_no_image() -> None:
    assert resized(b"not an image", {"width": "10", "height": "10"}) is None
