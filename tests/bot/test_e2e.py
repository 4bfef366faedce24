"""The real bot against the local Discord look-alike, over loopback.

One bot runs in this process for the whole module (started by `bot.__main__.run`, as `python -m
bot` does); the tests post messages and invoke commands on `DiscordServer` and assert on what it
recorded. Startup failures, the cooldown and SIGTERM use `python -m bot` subprocesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import os
import re
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

import bot.__main__ as bot_main
from bot.endpoints import use_endpoints
from bot.settings import Settings
from model.bundle import METADATA_FILE, model_dir, publish, staging_folder
from model.worker import ModelWorker
from playground.discord import FLAG_EPHEMERAL, DiscordServer
from playground.launch import bot_setting_keys, start_logged_bot

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    # Fixture setup is left out: the session's trained_model may train for a minute first, and
    # every fixture here bounds its own waits.
    pytest.mark.timeout(60, func_only=True),
]

TOKEN = "MTk4NjIy.jedisith-e2e.Gx7Qp-secret-token"
VERDICT = re.compile(r"\*\*(Jedi|Sith|Can't tell)\*\* - score [01]\.\d{3} \(")
REPLY_TIMEOUT = 20.0
LITERT_BANNER = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


# -- helpers -----------------------------------------------------------------------------------


def load_images(folder: Path, model: Path | None = None) -> list[tuple[str, bytes]]:
    """Three Jedi and three Sith images; with `model`, ones its detector finds typical (by
    design it finds 5% of such images unlike its training set, and refuses to judge them)."""
    from model.preprocess import load_image
    from model.runtime import Classifier

    classifier = Classifier.load(model, "litert") if model is not None else None
    chosen = []
    for label in ("jedi", "sith"):
        files = sorted((folder / label).iterdir())
        if classifier is not None:
            predictions = classifier.predict([load_image(path.read_bytes()) for path in files])
            files = [f for f, p in zip(files, predictions, strict=True) if p.in_distribution]
        chosen += files[:3]
    return [(path.name, path.read_bytes()) for path in chosen]


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def noise_png(seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (180, 240, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def verdict_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if VERDICT.search(line)]


def replied_to(reply: dict[str, Any]) -> str | None:
    return (reply.get("message_reference") or {}).get("message_id")


def bot_env(**values: str) -> dict[str, str]:
    """The environment for `python -m bot`: this one without any bot setting, plus `values`."""
    env = {k: v for k, v in os.environ.items() if k not in bot_setting_keys()}
    env["DATA_DIR"] = tempfile.mkdtemp(prefix="jedisith-e2e-data-")  # never the project's
    env.update(values)
    return env


# -- the in-process bot ------------------------------------------------------------------------


@dataclass
class Running:
    server: DiscordServer
    worker: ModelWorker
    model_path: Path
    images: list[tuple[str, bytes]]

    async def command(
        self,
        content: str,
        attachments: list[tuple[str, bytes]] | list[tuple[str, bytes, str]] = (),  # type: ignore[assignment]
        *,
        reply_to: int | str | None = None,
        author: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Post a message as a human; return it and the bot's reply to it."""
        message = await self.server.post_message(
            content,
            attachments=attachments,
            reply_to=int(reply_to) if reply_to is not None else None,
            author=author,
        )
        reply = await self.server.wait_for_reply(message["id"], timeout=REPLY_TIMEOUT)
        return message, reply

    async def assert_still_answers(self) -> None:
        message, reply = await self.command("!jedisith", [self.images[0]])
        assert replied_to(reply) == message["id"]
        assert len(verdict_lines(reply["content"])) == 1


@pytest.fixture(scope="module")
def images(tiny_dataset: Path, trained_model: Path) -> list[tuple[str, bytes]]:
    return load_images(tiny_dataset, trained_model)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[DiscordServer]:
    async with DiscordServer(token=TOKEN) as srv:
        yield srv


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    server: DiscordServer,
    trained_model: Path,
    images: list[tuple[str, bytes]],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Running]:
    """The bot, started as `python -m bot` starts it, with its worker captured for checks."""
    model_path = tmp_path_factory.mktemp("served") / "model"
    shutil.copytree(trained_model, model_path)
    settings = Settings(
        token=TOKEN,
        api_url=server.api_url,
        model_path=model_path,
        model_backend="litert",
        cooldown_rate=0,
        sync_commands=True,
        history_limit=5,
        reload_interval=0.2,
        data_dir=tmp_path_factory.mktemp("data"),
    )
    workers: list[ModelWorker] = []
    make_worker = bot_main.make_worker

    def recording_make_worker(settings: Settings) -> ModelWorker:
        worker = make_worker(settings)
        workers.append(worker)
        return worker

    bot_main.make_worker = recording_make_worker  # type: ignore[assignment]
    gc.unfreeze()  # whatever pytest froze: after start-up, only what the bot froze counts
    loop = asyncio.get_running_loop()
    task = loop.create_task(bot_main.run(settings))
    try:
        ready = asyncio.ensure_future(server.bot_ready.wait())
        done, _ = await asyncio.wait({task, ready}, timeout=30, return_when="FIRST_COMPLETED")
        if ready not in done:
            ready.cancel()
            if task.done():
                task.result()
            raise AssertionError("the bot never connected")
        yield Running(server, workers[0], model_path, images)
    finally:
        bot_main.make_worker = make_worker  # type: ignore[assignment]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        for sig in (signal.SIGINT, signal.SIGTERM):  # run() handled them on this loop
            loop.remove_signal_handler(sig)
        use_endpoints(None, None)


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
    lines = reply["content"].splitlines()
    assert VERDICT.match(lines[0]), lines
    assert "probability of **Sith**" in lines[-1]
    assert reply["author"]["id"] == running.server.bot_user["id"]
    assert reply["mentions"] == []  # replies do not ping the author


async def test_noise_is_not_a_jedi_or_a_sith(running: Running) -> None:
    message, reply = await running.command("!jedisith", [("noise.png", noise_png(1))])
    assert replied_to(reply) == message["id"]
    assert reply["content"].startswith("**Not a Jedi or a Sith?** - ")
    assert verdict_lines(reply["content"]) == []


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
    lines = verdict_lines(reply["content"])
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
    lines = reply["content"].splitlines()
    assert VERDICT.search(lines[0]) and lines[0].startswith("1. `the-target.jpg`: ")
    assert lines[1].startswith("2. `notes.txt`: ") and "not an image" in lines[1]
    assert "newer.png" not in reply["content"]


async def test_three_images_get_three_numbered_lines(running: Running) -> None:
    files = [(f"pic-{n}.png", data) for n, (_, data) in enumerate(running.images[:3], start=1)]
    _, reply = await running.command("!jedisith", files)
    lines = verdict_lines(reply["content"])
    assert [line.split(":")[0] for line in lines] == [
        "1. `pic-1.png`",
        "2. `pic-2.png`",
        "3. `pic-3.png`",
    ]


async def test_the_bot_answers_a_mention_and_the_alias(running: Running) -> None:
    mention = f"<@{running.server.application_id}> jedisith"
    for content in (mention, "!js"):
        _, reply = await running.command(content, [running.images[0]])
        assert len(verdict_lines(reply["content"])) == 1


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
    assert "all five convolutions" in reply["content"]
    blobs = await download_all(reply["attachments"])
    for blob, attachment in zip(blobs, reply["attachments"], strict=True):
        assert len(blob) == attachment["size"]
        width, height = png_size(blob)
        assert width > 100 and height > 100


async def test_features_of_one_layer(running: Running) -> None:
    _, reply = await running.command("!features 3", [running.images[1]])
    assert [a["filename"] for a in reply["attachments"]] == ["conv3.png"]
    assert "(convolution 3)" in reply["content"]
    [blob] = await download_all(reply["attachments"])
    assert png_size(blob)[0] > 100


async def test_features_skip_the_bots_own_images_in_history(running: Running) -> None:
    await running.server.post_message(
        "", attachments=[("history-source.png", running.images[2][1])]
    )
    for layer in (1, 2):  # the second run must not pick the bot's conv1.png from the first
        _, reply = await running.command(f"!features {layer}")
        assert [a["filename"] for a in reply["attachments"]] == [f"conv{layer}.png"]
        assert "`history-source.png`" in reply["content"]


@pytest.mark.parametrize("argument", ["9", "0", "three"])
async def test_features_with_a_bad_layer_explains_the_usage(
    running: Running, argument: str
) -> None:
    _, reply = await running.command(f"!features {argument}", [running.images[1]])
    assert reply["attachments"] == []
    assert "Usage: `!features" in reply["content"]
    assert "1 to 5" in reply["content"] or "not a number" in reply["content"]


# -- files the bot cannot use -------------------------------------------------------------------


def corrupt_png(images: list[tuple[str, bytes]]) -> bytes:
    data = next(blob for name, blob in images if name.endswith(".png"))
    return data[: len(data) // 2]


async def test_a_text_file(running: Running) -> None:
    _, reply = await running.command("!jedisith", [("notes.txt", b"just text\n", "text/plain")])
    assert reply["content"].startswith("`notes.txt`: ")
    assert "not an image" in reply["content"]
    assert not verdict_lines(reply["content"])
    await running.assert_still_answers()


async def test_a_truncated_png(running: Running) -> None:
    _, reply = await running.command("!jedisith", [("cut.png", corrupt_png(running.images))])
    assert reply["content"].startswith("`cut.png`: ")
    assert "incomplete" in reply["content"] or "damaged" in reply["content"]
    await running.assert_still_answers()


async def test_an_oversized_image(running: Running) -> None:
    huge = b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * 1024 * 1024)  # over the default 10 MB
    _, reply = await running.command("!jedisith", [("huge.png", huge)])
    assert "11.0 MB" in reply["content"] and "10.0 MB" in reply["content"]
    assert len(reply["content"]) < 200
    await running.assert_still_answers()


async def test_no_image_anywhere(running: Running) -> None:
    for n in range(5):  # push every earlier image out of the bot's history window (5)
        await running.server.post_message(f"just chatting {n}")
    _, reply = await running.command("!jedisith")
    assert reply["content"].startswith("I found no image.")
    await running.assert_still_answers()


async def test_a_reply_to_a_message_without_an_image(running: Running) -> None:
    original = await running.server.post_message("no picture here")
    _, reply = await running.command("!jedisith", reply_to=original["id"])
    assert "has no image" in reply["content"]


async def test_features_of_a_text_file(running: Running) -> None:
    _, reply = await running.command("!features", [("a.txt", b"words", "text/plain")])
    assert reply["attachments"] == [] and "not an image" in reply["content"]


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
        assert len(verdict_lines(reply["content"])) == 1
    after = running.worker.stats()
    assert after.images - before.images == 50
    assert after.batches - before.batches < 50  # the worker batched some of them together


# -- application commands -------------------------------------------------------------------------


def responses_for(server: DiscordServer, interaction_id: str) -> list[dict[str, Any]]:
    return [r for r in server.interaction_responses if r["interaction_id"] == interaction_id]


async def test_the_slash_command(running: Running) -> None:
    server = running.server
    interaction = await server.invoke_slash_command(
        "jedisith", {"image": ("slash.png", running.images[0][1])}
    )
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    assert len(verdict_lines(reply["content"])) == 1
    kinds = [(r["kind"], r.get("type")) for r in responses_for(server, interaction["id"])]
    assert kinds[0] == ("callback", 5)  # deferred: "JediSith is thinking..."
    assert ("followup", None) in kinds


async def test_the_slash_features_command_with_a_layer(running: Running) -> None:
    server = running.server
    interaction = await server.invoke_slash_command(
        "features", {"image": ("slash.jpg", running.images[5][1]), "layer": 2}
    )
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    assert [a["filename"] for a in reply["attachments"]] == ["conv2.png"]
    assert "(convolution 2)" in reply["content"]
    assert responses_for(server, interaction["id"])


async def test_the_message_context_menu(running: Running) -> None:
    server = running.server
    target = await server.post_message(
        "", attachments=[("menu-a.png", running.images[0][1]), ("menu-b.png", running.images[3][1])]
    )
    interaction = await server.invoke_message_command("Jedi or Sith?", int(target["id"]))
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    lines = verdict_lines(reply["content"])
    assert [line.split(":")[0] for line in lines] == ["1. `menu-a.png`", "2. `menu-b.png`"]
    assert responses_for(server, interaction["id"])[0]["type"] == 5


async def test_the_context_menu_on_a_message_without_an_image(running: Running) -> None:
    server = running.server
    target = await server.post_message("words only")
    interaction = await server.invoke_message_command("Jedi or Sith?", int(target["id"]))
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    assert reply["content"] == "That message has no image to judge."
    assert reply["flags"] & FLAG_EPHEMERAL


# -- the connection ------------------------------------------------------------------------------


async def test_the_bot_resumes_after_the_gateway_drops(running: Running) -> None:
    assert await running.server.drop_connections() == 1
    await running.assert_still_answers()  # sent while reconnecting: replayed on RESUME
    await running.assert_still_answers()


# -- hot reload ---------------------------------------------------------------------------------


async def test_a_newly_published_model_is_picked_up(running: Running) -> None:
    worker = running.worker
    before = worker.stats().reloads
    with staging_folder(running.model_path) as staging:
        for path in model_dir(running.model_path).iterdir():
            if path.is_file():
                shutil.copy2(path, staging / path.name)
        meta = json.loads((staging / METADATA_FILE).read_text())
        meta["notes"] = "second model"
        (staging / METADATA_FILE).write_text(json.dumps(meta))
        publish(staging, running.model_path)
    # The worker looks every 0.2 s; each command also gives it a chance between batches.
    for _ in range(50):
        await running.assert_still_answers()
        if worker.stats().reloads > before:
            break
        await asyncio.sleep(0.1)
    assert worker.stats().reloads == before + 1
    assert worker.classifier.info.raw.get("notes") == "second model"
    await running.assert_still_answers()


async def test_the_shipped_model_judges_a_sith_and_refuses_noise(running: Running) -> None:
    """Honest answers end to end: a drawn Sith gets its verdict, noise gets the refusal."""
    from model.bundle import DEFAULT_MODEL_DIR
    from playground.samples import SAMPLE_DIR

    worker = running.worker
    before = worker.stats().reloads
    with staging_folder(running.model_path) as staging:
        for path in DEFAULT_MODEL_DIR.iterdir():
            if path.is_file():
                shutil.copy2(path, staging / path.name)
        publish(staging, running.model_path)
    for _ in range(100):
        if worker.stats().reloads > before:
            break
        await asyncio.sleep(0.1)
    assert worker.classifier.detector is not None

    sith = ("sith-1.jpg", (SAMPLE_DIR / "sith-1.jpg").read_bytes())
    noise = ("noise.png", noise_png())
    _, reply = await running.command("!jedisith", [sith])
    assert reply["content"].startswith("**Sith** - score "), reply["content"]
    _, reply = await running.command("!jedisith", [noise])
    first = reply["content"].splitlines()[0]
    assert first.startswith("**Not a Jedi or a Sith?** - this doesn't look like what I learned")
    assert re.search(r"\(it would have said (Jedi|Sith), [01]\.\d{3}\)$", first), first
    _, reply = await running.command("!jedisith", [noise, sith])
    lines = reply["content"].splitlines()
    assert lines[0].startswith("1. `noise.png`: **Not a Jedi or a Sith?** - ")
    assert lines[1].startswith("2. `sith-1.jpg`: **Sith** - score ")
    _, reply = await running.command("!features 1", [noise])
    assert "doesn't look like what I learned from" in reply["content"]
    assert len(reply["attachments"]) == 1


# -- python -m bot: startup failures -----------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def startup_failures(
    trained_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[int, str, str]]:
    """Start `python -m bot` five broken ways at once; each case's (exit code, stdout, stderr)."""
    root = tmp_path_factory.mktemp("startup")
    with socket.socket() as probe:  # a port nothing listens on once this is closed
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    empty_model = root / "empty-model"
    empty_model.mkdir()
    async with (
        DiscordServer(token=TOKEN) as normal,
        DiscordServer(token=TOKEN, privileged_intents=False) as no_intents,
    ):
        common = {"MODEL_PATH": str(trained_model), "LOG_LEVEL": "ERROR", "MODEL_BACKEND": "litert"}
        cases = {
            "missing token": bot_env(**common, DISCORD_API_URL=normal.api_url),
            "wrong token": bot_env(
                **common, DISCORD_API_URL=normal.api_url, DISCORD_TOKEN="not-the-right-token"
            ),
            "empty model folder": bot_env(
                **{**common, "MODEL_PATH": str(empty_model)},
                DISCORD_API_URL=normal.api_url,
                DISCORD_TOKEN=TOKEN,
            ),
            "message content intent off": bot_env(
                **common, DISCORD_API_URL=no_intents.api_url, DISCORD_TOKEN=TOKEN
            ),
            "server unreachable": bot_env(
                **common,
                DISCORD_API_URL=f"http://127.0.0.1:{closed_port}/api/v10",
                DISCORD_TOKEN=TOKEN,
            ),
        }
        processes = {
            name: await start_logged_bot(env, root / name.replace(" ", "-"))
            for name, env in cases.items()
        }
        codes = await asyncio.gather(*(p.wait(timeout=45) for p in processes.values()))
    return {
        name: (code, *process.output())
        for (name, process), code in zip(processes.items(), codes, strict=True)
    }


@pytest.mark.parametrize(
    ("case", "code", "says"),
    [
        ("missing token", 2, "DISCORD_TOKEN is not set"),
        ("wrong token", 1, "Discord refused the token"),
        ("empty model folder", 1, "cannot load the model"),
        ("message content intent off", 1, "Message Content intent is off"),
        ("server unreachable", 1, "cannot reach http://127.0.0.1:"),
    ],
)
async def test_a_startup_failure_is_one_line(
    startup_failures: dict[str, tuple[int, str, str]], case: str, code: int, says: str
) -> None:
    exit_code, stdout, stderr = startup_failures[case]
    assert "Traceback" not in stderr + stdout
    # LiteRT prints its own banner from C++, past Python's logging; anything else is ours.
    lines = [line for line in stderr.splitlines() if line.strip() and line != LITERT_BANNER]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("jedisith-bot: ") and says in lines[0]
    assert exit_code == code
    assert TOKEN not in stderr + stdout
    assert "not-the-right-token" not in stderr + stdout


# -- python -m bot: cooldown and SIGTERM ---------------------------------------------------------


@pytest.mark.timeout(90, func_only=True)
async def test_a_bot_process_rate_limits_then_stops_cleanly_on_sigterm(
    trained_model: Path, images: list[tuple[str, bytes]], tmp_path: Path
) -> None:
    async with DiscordServer(token=TOKEN) as server:
        env = bot_env(
            DISCORD_TOKEN=TOKEN,
            DISCORD_API_URL=server.api_url,
            MODEL_PATH=str(trained_model),
            MODEL_BACKEND="litert",
            COOLDOWN_RATE="1",
            COOLDOWN_SECONDS="60",
            SYNC_COMMANDS="1",
            LOG_LEVEL="DEBUG",
        )
        process = await start_logged_bot(env, tmp_path)
        try:
            await process.wait_connected(server.bot_ready)

            async def command(author: str) -> dict[str, Any]:
                message = await server.post_message(
                    "!jedisith", attachments=[images[0]], author={"username": author}
                )
                reply = await server.wait_for_reply(message["id"], timeout=REPLY_TIMEOUT)
                assert replied_to(reply) == message["id"]
                return reply

            assert verdict_lines((await command("anakin"))["content"])
            slow = (await command("anakin"))["content"]
            assert slow.startswith("Slow down! Try again in ") and slow.endswith(" s.")
            assert verdict_lines((await command("obi-wan"))["content"])  # cooldowns are per user
            interaction = await server.invoke_slash_command(
                "jedisith", {"image": images[1]}, user={"username": "anakin"}
            )
            answer = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
            assert answer["content"].startswith("Slow down!")
            assert answer["flags"] & FLAG_EPHEMERAL

            # SIGTERM while a command is being served: it is finished, then the bot exits 0.
            bot_id = server.application_id
            typed = sum(1 for user, _ in server.typing_events if user == bot_id)
            last = await server.post_message(
                "!jedisith", attachments=[images[3]], author={"username": "mace"}
            )
            deadline = asyncio.get_running_loop().time() + REPLY_TIMEOUT
            while sum(1 for user, _ in server.typing_events if user == bot_id) == typed:
                assert asyncio.get_running_loop().time() < deadline, "the bot never started"
                await asyncio.sleep(0.005)  # until the bot starts on the command (it types)
            process.proc.send_signal(signal.SIGTERM)
            reply = await server.wait_for_reply(last["id"], timeout=10)
            assert verdict_lines(reply["content"])
            assert await process.wait(timeout=10) == 0
        finally:
            process.kill()
            await process.proc.wait()
    stdout, stderr = process.output()
    assert "Traceback" not in stderr
    assert "received SIGTERM" in stderr and "stopped" in stderr
    assert TOKEN not in stdout + stderr
    assert TOKEN.split(".")[-1] not in stdout + stderr


@pytest.mark.timeout(60, func_only=True)
async def test_sigterm_while_the_model_loads_exits_cleanly(tmp_path: Path) -> None:
    # The TensorFlow backend takes seconds to load: SIGTERM lands while the bot is starting.
    async with DiscordServer(token=TOKEN) as server:
        env = bot_env(
            DISCORD_TOKEN=TOKEN,
            DISCORD_API_URL=server.api_url,
            MODEL_BACKEND="tensorflow",
            LOG_LEVEL="INFO",
        )
        process = await start_logged_bot(env, tmp_path)
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while "loading the model" not in process.output()[1]:
                assert process.proc.returncode is None, process.output()
                assert asyncio.get_running_loop().time() < deadline, "never started loading"
                await asyncio.sleep(0.01)
            process.proc.send_signal(signal.SIGTERM)
            assert await process.wait(timeout=30) == 0
        finally:
            process.kill()
        stdout, stderr = process.output()
        assert "received SIGTERM" in stderr
        assert "Traceback" not in stdout + stderr
        assert not server.bot_ready.is_set()  # it stopped before connecting
