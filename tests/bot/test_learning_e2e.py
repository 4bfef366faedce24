"""The bot learning from its server, end to end: the real bot against the look-alike, clicked
and taught by several members, retraining in a real trainer process, versions and rollback.

The served model at the start is the shipped one with its class names swapped: a model that
gets nearly every image wrong, so the first retrain is certainly not worse on the holdout and is
published. The shipped model itself (99.5% right on such drawings) is then published beside it by
hand, so the next retrain, one epoch long, is certainly worse and refused.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from botkit import (
    TOKEN,
    Running,
    buttons_of,
    forget,
    running_bot,
    start_bot_process,
    text_of,
    verdict_lines,
)

from bot.feedback import TEMPLATE
from dataset import DatasetStore
from model.bundle import (
    DEFAULT_MODEL_DIR,
    METADATA_FILE,
    current_version,
    model_dir,
    publish,
    staging_folder,
    versions,
)
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(300, func_only=True),
]

REPLY = 20.0
TRAINING = 240.0  # a two-epoch retrain on 48 images, with export and checks, on 2 slow cores
MODERATOR = {"username": "mace", "roles": ["Moderators"]}
VISITORS = [{"username": "ahsoka"}, {"username": "kylo"}]


def images_of(folder: Path, label: str, count: int | None = None) -> list[tuple[str, bytes]]:
    files = sorted((folder / label).iterdir())[:count]
    return [(path.name, path.read_bytes()) for path in files]


def publish_copy(source: Path, target: Path, *, swap_classes: bool = False) -> None:
    """Publish the current model of `source` as a new version of `target`."""
    with staging_folder(target / "next") as staging:
        for path in model_dir(source).iterdir():
            if path.is_file():
                shutil.copy2(path, staging / path.name)
        if swap_classes:
            meta = json.loads((staging / METADATA_FILE).read_text())
            meta["class_names"] = list(reversed(meta["class_names"]))
            (staging / METADATA_FILE).write_text(json.dumps(meta))
        publish(staging, target)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The vote buttons under `message` (not its Why? buttons: bot.exts.why)."""
    return [b for b in buttons_of(message) if b["custom_id"].startswith("jedisith:vote:")]


def button(message: dict[str, Any], label: str) -> dict[str, Any]:
    return next(b for b in buttons(message) if b["label"] == label)


async def click(running: Running, message: dict[str, Any], label: str, user=None) -> str:
    """Click `label` under `message` as `user`; the bot's (ephemeral) answer."""
    server = running.server
    interaction = await server.click_button(
        message["id"], button(message, label)["custom_id"], user=user
    )
    answer = await server.wait_for_reply(interaction["id"], timeout=REPLY)
    assert answer["flags"] & 64, "answers to clicks are ephemeral"
    return text_of(answer)


async def final(server: DiscordServer, message_id: str, timeout: float = TRAINING) -> str:
    """The progress message's text once the training has ended."""
    deadline = time.monotonic() + timeout
    while True:
        content = text_of(server.get_message(message_id))
        if not content.startswith("**Training** a new model"):
            return content
        assert time.monotonic() < deadline, f"the training did not end: {content!r}"
        await asyncio.sleep(0.2)


async def until_progress(server: DiscordServer, message_id: str, pattern: str) -> str:
    """The progress message once it matches `pattern` (fails at once if the training ended)."""
    deadline = time.monotonic() + TRAINING
    while not re.search(pattern, content := text_of(server.get_message(message_id))):
        assert content.startswith("**Training** a new model"), content
        assert time.monotonic() < deadline, f"no {pattern!r} in {content!r}"
        await asyncio.sleep(0.2)
    return content


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[DiscordServer]:
    async with DiscordServer(token=TOKEN) as srv:
        yield srv


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    server: DiscordServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    model_path = tmp_path_factory.mktemp("learning") / "models"
    publish_copy(DEFAULT_MODEL_DIR, model_path, swap_classes=True)
    async with running_bot(
        server,
        model_path,
        data_dir=tmp_path_factory.mktemp("learning-data"),
        retrain_min_images=10,
        reload_interval=0.2,
        sync_commands=True,
    ) as bot:
        yield bot


@pytest.fixture(scope="module")
def store(running: Running) -> DatasetStore:
    assert running.bot.dataset is not None
    return running.bot.dataset


# -- consent ---------------------------------------------------------------------------------


async def test_nothing_is_kept_until_a_manager_turns_collection_on(
    running: Running, tiny_dataset: Path, store: DatasetStore
) -> None:
    image = images_of(tiny_dataset, "sith", 1)
    reply = await running.command(*image)
    assert verdict_lines(text_of(reply)) and not buttons(reply)  # no buttons while off
    reply = await running.command(*image, content="!teach sith")
    assert "Collection is off in this server" in text_of(reply)
    assert store.summary(running.server.guild_id).images == 0

    reply = await running.command(content="!dataset collect on", author=VISITORS[0])
    assert "Only members with the Manage Server permission" in text_of(reply)
    assert not store.collecting(running.server.guild_id)
    reply = await running.command(content="!dataset collect on")  # padawan owns the server
    assert "Collection is **on**" in text_of(reply)
    assert store.collecting(running.server.guild_id)


async def test_a_verdict_gets_feedback_buttons(running: Running, tiny_dataset: Path) -> None:
    reply = await running.command(*images_of(tiny_dataset, "jedi", 1))
    labels = [b["label"] for b in buttons(reply)]
    assert labels[-3:] == ["It's a Jedi", "It's a Sith", "Neither"]
    assert all(re.fullmatch(TEMPLATE, b["custom_id"]) for b in buttons(reply))
    assert "your answer and the image are kept" in text_of(reply).lower()


async def test_slash_and_menu_verdicts_get_buttons_and_teach_is_a_slash_command(
    running: Running, tiny_dataset: Path
) -> None:
    server = running.server
    await _until(lambda: {"teach", "retrain"} <= {c["name"] for c in server.application_commands})
    image = images_of(tiny_dataset, "jedi", 5)[4]
    interaction = await server.invoke_slash_command("jedisith", {"image": image})
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY)
    # No message holds a slash command's image: its buttons carry message 0, and a click finds
    # the bytes in the bot's memory of what it judged lately.
    assert buttons(reply) and all(":0:0:" in b["custom_id"] for b in buttons(reply))
    answer = await click(running, reply, "It's a Jedi", VISITORS[0])
    assert answer.startswith("Thanks! Kept with your label, **Jedi**.")

    target = await server.post_message("look", attachments=[images_of(tiny_dataset, "sith", 8)[7]])
    interaction = await server.invoke_message_command("Jedi or Sith?", int(target["id"]))
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY)
    assert buttons(reply) and all(f":{target['id']}:0:" in b["custom_id"] for b in buttons(reply))

    image = images_of(tiny_dataset, "sith", 9)[8]
    interaction = await server.invoke_slash_command("teach", {"label": "sith", "image": image})
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY)
    assert "Taught 1 new image as **Sith**" in text_of(reply)


async def test_several_members_vote_and_a_moderator_decides(
    running: Running, tiny_dataset: Path, store: DatasetStore
) -> None:
    reply = await running.command(*images_of(tiny_dataset, "jedi", 3)[2:])
    first = await click(running, reply, "It's a Jedi", VISITORS[0])
    assert first.startswith("Thanks! Kept with your label, **Jedi**.")
    second = await click(running, reply, "It's a Sith", VISITORS[1])
    assert "Its votes disagree (1 Jedi, 1 Sith)" in second
    sha = next(s for s, _ in store.summary(running.server.guild_id).conflicts)
    decided = await click(running, reply, "It's a Jedi", MODERATOR)
    assert "Its label: Jedi" in decided
    assert store.label_of(sha, running.server.guild_id).label == "jedi"
    changed = await click(running, reply, "It's a Sith", VISITORS[0])
    assert changed.startswith("Changed your label from Jedi to **Sith**.")
    # The moderator still outvotes both.
    assert store.label_of(sha, running.server.guild_id).label == "jedi"


async def test_buttons_keep_working_when_the_image_must_be_fetched_again(
    running: Running, tiny_dataset: Path, store: DatasetStore
) -> None:
    reply = await running.command(*images_of(tiny_dataset, "sith", 2)[-1:])
    learning = running.bot.get_cog("Learning")
    learning.recent = type(learning.recent)()  # as after a restart: nothing in memory
    answer = await click(running, reply, "It's a Sith", VISITORS[0])
    assert answer.startswith("Thanks! Kept with your label, **Sith**.")


async def test_teach_keeps_every_image_once(
    running: Running, tiny_dataset: Path, store: DatasetStore
) -> None:
    before = store.summary(running.server.guild_id).images
    three = images_of(tiny_dataset, "sith", 6)[3:]
    reply = await running.command(*three, content="!teach sith")
    assert text_of(reply).startswith("Taught 3 new images as **Sith**."), text_of(reply)
    again = await running.command(*three, content="!teach sith", author=VISITORS[1])
    assert text_of(again).startswith("Taught **Sith** on 3 images I already knew.")
    assert store.summary(running.server.guild_id).images == before + 3


async def test_teach_refuses_what_is_not_an_image(running: Running, store: DatasetStore) -> None:
    before = store.summary(running.server.guild_id).images
    reply = await running.command(
        ("notes.txt", b"not an image", "text/plain"), content="!teach jedi"
    )
    assert "`notes.txt`:" in text_of(reply) and "kept" not in text_of(reply)
    bad = await running.command(content="!teach wookiee")
    assert "The label must be `jedi`, `sith` or `neither`." in text_of(bad)
    assert store.summary(running.server.guild_id).images == before


async def test_dataset_shows_counts_and_contributors(running: Running) -> None:
    reply = await running.command(content="!dataset")
    text = text_of(reply)
    assert text.startswith("**What I learn from**")
    assert re.search(r"- Sith: \d+ \(\d+ to train, \d+ held out\)", text)
    assert "Top contributors here:" in text and "Collection is on" in text


async def test_forget_deletes_a_persons_votes_and_their_images(
    running: Running, tiny_dataset: Path, store: DatasetStore
) -> None:
    mine = images_of(tiny_dataset, "jedi", 12)[10:]
    await running.command(*mine, content="!teach jedi", author={"username": "leaver"})
    before = store.summary(running.server.guild_id)
    text = await forget(running, {"username": "leaver"})
    assert text.startswith("Deleted your 2 labels and 2 images nobody else labelled.")
    after = store.summary(running.server.guild_id)
    assert after.images == before.images - 2 and after.votes == before.votes - 2
    again = await forget(running, {"username": "leaver"})
    assert "nothing to delete" in again


async def test_two_servers_keep_their_labels_apart(
    running: Running, tiny_dataset: Path, store: DatasetStore
) -> None:
    server = running.server
    home, away = server.guild_id, server.guild_ids[1]
    there = server.first_channel(away)
    reply = await running.command(content="!dataset collect on", channel_id=there)
    assert "Collection is **on**" in text_of(reply)
    image = images_of(tiny_dataset, "sith", 13)[12:]
    here = await running.command(*image, content="!teach sith", author=MODERATOR)
    assert "Its label: Sith (1 Sith)." in text_of(here)
    # Taught the other way in another server: only that server's votes count there.
    taught = await running.command(
        *image, content="!teach jedi", author=VISITORS[1], channel_id=there
    )
    assert "I already knew" in text_of(taught)
    assert "Its label: Jedi (1 Jedi)." in text_of(taught)
    # The first server's moderator is a member like any other there: a tie, not an overrule.
    tie = await running.command(
        *image, content="!teach sith", author={"username": "mace"}, channel_id=there
    )
    assert "Its votes disagree (1 Jedi, 1 Sith)" in text_of(tie)
    ((sha, votes),) = store.summary(away).conflicts
    assert votes == {"jedi": 1, "sith": 1}
    assert store.label_of(sha, home).label == "sith" and store.label_of(sha, away).label is None
    assert sha not in dict(store.summary(home).conflicts)

    shown = text_of(await running.command(content="!dataset", channel_id=there))
    assert "- Jedi: 0 (0 to train, 0 held out)" in shown and "1 with disagreeing votes" in shown
    people = {server.state.user_named(name)["id"] for name in ("kylo", "mace")}
    assert set(re.findall(r"<@(\d+)>", shown)) == {str(i) for i in people}

    # Forgetting there leaves this server's label and the image.
    gone = await forget(running, VISITORS[1], channel_id=there)
    assert gone.startswith("Deleted your 1 label and 0 images nobody else labelled.")
    assert "In this server only" in gone
    await forget(running, {"username": "mace"}, channel_id=there)
    assert store.summary(away).images == 0 and store.summary(away).votes == 0
    assert store.label_of(sha, home).label == "sith"
    assert any(p.name.startswith(sha) for p in (store.data_dir / "images").rglob("*"))


# -- retraining --------------------------------------------------------------------------------


async def test_a_retrain_needs_enough_images_and_a_manager(running: Running) -> None:
    reply = await running.command(content="!retrain", author=VISITORS[0])
    assert "Only members with the Manage Server permission can retrain me." in text_of(reply)
    reply = await running.command(content="!retrain")
    assert "I need at least 10 labelled images of each class" in text_of(reply)
    assert "more Jedi needed" in text_of(reply) or "more Sith needed" in text_of(reply)
    reply = await running.command(content="!retrain shared epochs=0")
    assert "from 1 to 100" in text_of(reply)


async def teach_all(running: Running, tiny_dataset: Path) -> None:
    """Label the tiny set in this server, and share it with the shared model."""
    shared = await running.command(content="!dataset share on")
    assert "**on**" in text_of(shared), text_of(shared)
    for label in ("jedi", "sith"):
        files = images_of(tiny_dataset, label)
        for start in range(0, len(files), 10):
            await running.command(*files[start : start + 10], content=f"!teach {label}")


async def test_a_retrain_that_is_better_is_published_and_served(
    running: Running, tiny_dataset: Path, store: DatasetStore
) -> None:
    await teach_all(running, tiny_dataset)
    folder = running.worker.folder
    assert folder is not None and versions(folder) == [1]
    progress = await running.command(content="!retrain shared epochs=2")
    assert text_of(progress).startswith("**Training** a new model")
    busy = await running.command(content="!retrain shared")
    assert "A training is already running" in text_of(busy)
    # The bot keeps answering while the trainer runs beside it.
    await until_progress(running.server, progress["id"], r"epoch \d/2|detector|export|holdout")
    during = await running.command(*images_of(tiny_dataset, "sith", 1))
    assert verdict_lines(text_of(during))

    text = await final(running.server, progress["id"])
    assert text.startswith("**New model published: version 2.**"), text
    assert re.search(r"Holdout accuracy \d+\.\d% → \d+\.\d%", text)
    assert versions(folder) == [1, 2] and current_version(folder) == 2
    plots = await running.server.wait_for_reply(progress["id"], timeout=REPLY)
    assert {a["filename"] for a in plots["attachments"]} >= {"curves.png", "confusion.png"}
    await _until(lambda: running.worker.stats().reloads >= 1)
    assert store.trainings.latest(1)[0].status == "published"


async def test_a_worse_retrain_is_refused_and_nothing_changes(
    running: Running, store: DatasetStore
) -> None:
    folder = running.worker.folder
    assert folder is not None
    publish_copy(DEFAULT_MODEL_DIR, folder)  # a good model becomes current: version 3
    assert current_version(folder) == 3
    progress = await running.command(content="!retrain shared epochs=1")
    text = await final(running.server, progress["id"])
    assert text.startswith("**Not published**"), text
    assert "`!retrain force`" in text
    assert versions(folder) == [1, 2, 3] and current_version(folder) == 3
    assert store.trainings.latest(1)[0].status == "refused"


async def test_a_training_can_be_cancelled(running: Running, store: DatasetStore) -> None:
    folder = running.worker.folder
    assert folder is not None
    progress = await running.command(content="!retrain shared epochs=60")
    await until_progress(running.server, progress["id"], r"epoch \d+/60")
    shown = await running.command(content="!model shared")  # read from the database's lock
    assert "-# A training is running, started by <@" in text_of(shown)
    assert "another of my processes" not in text_of(shown)
    reply = await running.command(content="!retrain shared cancel", author=VISITORS[0])
    assert "Only members with the Manage Server permission" in text_of(reply)
    reply = await running.command(content="!retrain shared cancel")
    assert text_of(reply).startswith("Stopping the training")
    text = await final(running.server, progress["id"], timeout=60)
    assert text.startswith("**Training cancelled**: cancelled by"), text
    assert current_version(folder) == 3 and versions(folder) == [1, 2, 3]
    assert store.trainings.latest(1)[0].status == "cancelled"


async def test_model_lists_versions_and_rollback_brings_one_back(running: Running) -> None:
    folder = running.worker.folder
    assert folder is not None
    reply = await running.command(content="!model shared")
    assert text_of(reply).startswith("**version 3** (current)")
    assert "**version 2**" in text_of(reply) and "**version 1**" in text_of(reply)
    refused = await running.command(content="!rollback shared", author=VISITORS[1])
    assert "Only members with the Manage Server permission" in text_of(refused)
    reply = await running.command(content="!rollback shared")
    assert text_of(reply).startswith("Version 2 is current again (it was version 3)")
    assert current_version(folder) == 2
    reloads = running.worker.stats().reloads
    await _until(lambda: running.worker.stats().reloads > reloads)
    wrong = await running.command(content="!rollback shared 9")
    assert "there is no version 9; the versions kept are 1, 2, 3" in text_of(wrong)
    await running.command(content="!rollback shared 3")
    assert current_version(folder) == 3


async def _until(done, timeout: float = REPLY) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        await asyncio.sleep(0.05)


# -- a restart or a crash in the middle of a training -----------------------------------------


@pytest.mark.timeout(300, func_only=True)
async def test_a_restart_or_a_crash_during_a_training_changes_nothing(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with DatasetStore.open(data) as store:
        store.import_folder(tiny_dataset)
    models = data / "models"
    settings = {"RETRAIN_MIN_IMAGES": "10", "DATA_DIR": str(data)}

    async def start_training(server: DiscordServer) -> dict[str, Any]:
        message = await server.post_message("!retrain shared epochs=60")
        progress = await server.wait_for_reply(message["id"], timeout=REPLY)
        assert text_of(progress).startswith("**Training** a new model")
        await until_progress(server, progress["id"], r"epoch \d+/60")
        return progress

    async with DiscordServer(token=TOKEN) as server:
        # A clean stop (SIGTERM): the bot stops its trainer and says so before it exits.
        first = await start_bot_process(server, tmp_path, settings)
        progress = await start_training(server)
        first.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.proc.wait(), 30) == 0
        text = text_of(server.get_message(progress["id"]))
        assert text.startswith("**Training interrupted**: the bot restarted"), text
        assert versions(models) == [1] and current_version(models) == 1

        # A crash (SIGKILL): the trainer notices its bot is gone and stops by itself.
        server.bot_ready.clear()
        (tmp_path / "second").mkdir()
        second = await start_bot_process(server, tmp_path / "second", settings)
        progress = await start_training(server)
        second.proc.send_signal(signal.SIGKILL)
        await second.proc.wait()
        result = data / "trainings" / "2" / "result.json"
        deadline = time.monotonic() + 60
        while not result.exists():
            assert time.monotonic() < deadline, "the orphaned trainer kept running"
            await asyncio.sleep(0.2)
        assert json.loads(result.read_text())["status"] == "cancelled"
        assert versions(models) == [1] and current_version(models) == 1

        # The next start finds the lock the crash left, frees it, and says what happened.
        server.bot_ready.clear()
        (tmp_path / "third").mkdir()
        third = await start_bot_process(server, tmp_path / "third", settings)
        try:
            text = await until_progress(server, progress["id"], r"^\*\*Training interrupted\*\*")
            assert "The current model and the dataset are unchanged." in text
            with DatasetStore.open(data) as store:
                assert [t.status for t in store.trainings.latest(2)] == [
                    "interrupted",
                    "interrupted",
                ]
                assert store.trainings.running(0) is None  # the lock is free again
                assert store.summary(None).images == 48  # the dataset is whole
        finally:
            third.proc.send_signal(signal.SIGTERM)
            await third.proc.wait()
