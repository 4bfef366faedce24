"""`!jedisith` and `!features` end to end: the real bot, in this process, against the local
Discord look-alike over loopback; what it answers for images, files it cannot use, and a burst."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import aiohttp
import pytest
from e2e_support import (
    VERDICT,
    Running,
    noise_png,
    png_size,
    replied_to,
    text_of,
    verdict_lines,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    # Fixture setup is left out: the session's trained_model may train for a minute first, and
    # every fixture here bounds its own waits.
    pytest.mark.timeout(60, func_only=True),
]

# -- !jedisith ---------------------------------------------------------------------------------


async def test_commands_were_registered(running: Running) -> None:
    def registered() -> set[tuple[str, int]]:
        return {(c["name"], c.get("type", 1)) for c in running.server.application_commands}

    for _ in range(250):  # the sync runs in the background of start-up: give it 5 s
        if registered():
            break
        await asyncio.sleep(0.02)
    assert {("jedisith", 1), ("features", 1), ("Jedi or Sith?", 3)} <= registered()


async def test_the_start_up_heap_is_frozen(running: Running) -> None:
    # setup_hook freezes what start-up made, so full collections skip it (event-loop lag).
    # The fixture unfroze the heap before starting the bot: this count is the bot's doing.
    assert gc.get_freeze_count() > 10_000


async def test_an_attached_image_gets_a_verdict(running: Running) -> None:
    message, reply = await running.command("!jedisith", [running.images[3]])
    assert replied_to(reply) == message["id"]
    lines = text_of(reply).splitlines()
    assert VERDICT.match(lines[0]), lines
    assert "probability of **Sith**" in lines[-1]
    assert reply["author"]["id"] == running.server.bot_user["id"]
    assert reply["mentions"] == []  # replies do not ping the author


async def test_noise_is_not_a_jedi_or_a_sith(running: Running) -> None:
    message, reply = await running.command("!jedisith", [("noise.png", noise_png(1))])
    assert replied_to(reply) == message["id"]
    assert text_of(reply).startswith("**Not a Jedi or a Sith?** - ")
    assert verdict_lines(text_of(reply)) == []


async def test_the_typing_indicator_is_sent(running: Running) -> None:
    bot_id = running.server.application_id
    seen = len(running.server.typing_events)
    await running.command("!jedisith", [running.images[1]])
    assert any(user == bot_id for user, _ in running.server.typing_events[seen:])


async def test_an_image_posted_before_the_command(running: Running) -> None:
    (_, first), (_, second) = running.images[0], running.images[4]
    await running.server.post_message(
        "who are these two?", attachments=[("first-one.png", first), ("second-one.png", second)]
    )
    message, reply = await running.command("!jedisith")
    assert replied_to(reply) == message["id"]
    lines = verdict_lines(text_of(reply))
    assert len(lines) == 2
    assert lines[0].startswith("1. `first-one.png`: ")
    assert lines[1].startswith("2. `second-one.png`: ")


async def test_a_reply_to_a_message_with_an_image(running: Running) -> None:
    (_, target), (_, newer) = running.images[2], running.images[5]
    original = await running.server.post_message(
        "", attachments=[("the-target.jpg", target), ("notes.txt", b"hello", "text/plain")]
    )
    await running.server.post_message("a newer image", attachments=[("newer.png", newer)])
    message, reply = await running.command("!jedisith", reply_to=original["id"])
    assert replied_to(reply) == message["id"]
    lines = text_of(reply).splitlines()
    assert VERDICT.search(lines[0]) and lines[0].startswith("1. `the-target.jpg`: ")
    assert lines[1].startswith("2. `notes.txt`: ") and "not an image" in lines[1]
    assert "newer.png" not in text_of(reply)


async def test_three_images_get_three_numbered_lines(running: Running) -> None:
    files = [(f"pic-{n}.png", data) for n, (_, data) in enumerate(running.images[:3], start=1)]
    _, reply = await running.command("!jedisith", files)
    lines = verdict_lines(text_of(reply))
    assert [line.split(":")[0] for line in lines] == [
        "1. `pic-1.png`",
        "2. `pic-2.png`",
        "3. `pic-3.png`",
    ]


async def test_the_bot_answers_a_mention_and_the_alias(running: Running) -> None:
    mention = f"<@{running.server.application_id}> jedisith"
    for content in (mention, "!js"):
        _, reply = await running.command(content, [running.images[0]])
        assert len(verdict_lines(text_of(reply))) == 1


# -- !features ---------------------------------------------------------------------------------


async def download_all(attachments: list[dict[str, Any]]) -> list[bytes]:
    async with aiohttp.ClientSession() as session:
        blobs = []
        for attachment in attachments:
            async with session.get(attachment["url"]) as response:
                assert response.status == 200
                blobs.append(await response.read())
        return blobs


async def test_features_sends_five_layer_images(running: Running) -> None:
    message, reply = await running.command("!features", [running.images[4]])
    assert replied_to(reply) == message["id"]
    names = [a["filename"] for a in reply["attachments"]]
    assert names == [f"conv{n}.png" for n in range(1, 6)]
    assert "all five convolutions" in text_of(reply)
    blobs = await download_all(reply["attachments"])
    for blob, attachment in zip(blobs, reply["attachments"], strict=True):
        assert len(blob) == attachment["size"]
        width, height = png_size(blob)
        assert width > 100 and height > 100


async def test_features_of_one_layer(running: Running) -> None:
    _, reply = await running.command("!features 3", [running.images[1]])
    assert [a["filename"] for a in reply["attachments"]] == ["conv3.png"]
    assert "(convolution 3)" in text_of(reply)
    [blob] = await download_all(reply["attachments"])
    assert png_size(blob)[0] > 100


async def test_features_skip_the_bots_own_images_in_history(running: Running) -> None:
    await running.server.post_message(
        "", attachments=[("history-source.png", running.images[2][1])]
    )
    for layer in (1, 2):  # the second run must not pick the bot's conv1.png from the first
        _, reply = await running.command(f"!features {layer}")
        assert [a["filename"] for a in reply["attachments"]] == [f"conv{layer}.png"]
        assert "`history-source.png`" in text_of(reply)


@pytest.mark.parametrize("argument", ["9", "0", "three"])
async def test_features_with_a_bad_layer_explains_the_usage(
    running: Running, argument: str
) -> None:
    _, reply = await running.command(f"!features {argument}", [running.images[1]])
    assert reply["attachments"] == []
    assert "Usage: `!features" in text_of(reply)
    assert "1 to 5" in text_of(reply) or "not a number" in text_of(reply)


# -- files the bot cannot use -------------------------------------------------------------------


def corrupt_png(images: list[tuple[str, bytes]]) -> bytes:
    data = next(blob for name, blob in images if name.endswith(".png"))
    return data[: len(data) // 2]


async def test_a_text_file(running: Running) -> None:
    _, reply = await running.command("!jedisith", [("notes.txt", b"just text\n", "text/plain")])
    assert text_of(reply).startswith("`notes.txt`: ")
    assert "not an image" in text_of(reply)
    assert not verdict_lines(text_of(reply))
    await running.assert_still_answers()


async def test_a_truncated_png(running: Running) -> None:
    _, reply = await running.command("!jedisith", [("cut.png", corrupt_png(running.images))])
    assert text_of(reply).startswith("`cut.png`: ")
    assert "incomplete" in text_of(reply) or "damaged" in text_of(reply)
    await running.assert_still_answers()


async def test_an_oversized_image(running: Running) -> None:
    huge = b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * 1024 * 1024)  # over the default 10 MB
    _, reply = await running.command("!jedisith", [("huge.png", huge)])
    assert "11.0 MB" in text_of(reply) and "10.0 MB" in text_of(reply)
    assert len(text_of(reply)) < 200
    await running.assert_still_answers()


async def test_no_image_anywhere(running: Running) -> None:
    for n in range(5):  # push every earlier image out of the bot's history window (5)
        await running.server.post_message(f"just chatting {n}")
    _, reply = await running.command("!jedisith")
    assert text_of(reply).startswith("I found no image.")
    await running.assert_still_answers()


async def test_a_reply_to_a_message_without_an_image(running: Running) -> None:
    original = await running.server.post_message("no picture here")
    _, reply = await running.command("!jedisith", reply_to=original["id"])
    assert "has no image" in text_of(reply)


async def test_features_of_a_text_file(running: Running) -> None:
    _, reply = await running.command("!features", [("a.txt", b"words", "text/plain")])
    assert reply["attachments"] == [] and "not an image" in text_of(reply)


# -- load ---------------------------------------------------------------------------------------


@pytest.mark.timeout(90, func_only=True)
async def test_a_burst_of_fifty_commands(running: Running) -> None:
    server = running.server
    before = running.worker.stats()
    authors = [{"username": f"burst-{n % 10}"} for n in range(50)]
    messages = await asyncio.gather(
        *(
            server.post_message("!jedisith", attachments=[running.images[n % 6]], author=authors[n])
            for n in range(50)
        )
    )
    replies = await asyncio.gather(*(server.wait_for_reply(m["id"], timeout=60) for m in messages))
    assert len({r["id"] for r in replies}) == 50
    for message, reply in zip(messages, replies, strict=True):
        assert replied_to(reply) == message["id"]
        assert len(verdict_lines(text_of(reply))) == 1
    after = running.worker.stats()
    assert after.images - before.images == 50
    assert after.batches - before.batches < 50  # the worker batched some of them together
