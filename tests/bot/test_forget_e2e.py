"""Forgetting forgets, end to end: the real bot against the look-alike. A person takes back the
pictures they posted that others labelled, and no copy of them stays anywhere under DATA_DIR
(work folders included); deleting a message takes its images out of the server unless a
moderator labelled them; a killed training's work folder is gone after the next start-up."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import discord
import pytest
from botkit import TOKEN, Running, forget, rows_of, running_bot, text_of, wait_until
from sqlalchemy import select, update

from bot.confirm import CANCELLED, NOT_YOURS
from dataset import DatasetStore
from dataset.schema import ImageRef, Training
from dataset.trainings import TRAININGS_FOLDER
from playground.discord import DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(300, func_only=True),
]

REPLY = 20.0
POSTER = {"username": "ahsoka"}
MEMBER = {"username": "kylo"}
MODERATOR = {"username": "mace", "roles": ["Moderators"]}


def images_of(folder: Path, label: str, count: int) -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in sorted((folder / label).iterdir())[:count]]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hashes_under(folder: Path) -> set[str]:
    """The SHA-256 of every file under `folder`, at any depth (links followed)."""
    return {sha256(path.read_bytes()) for path in folder.rglob("*") if path.is_file()}


async def click_row(running: Running, message: dict[str, Any], row: int, user: dict) -> str:
    """Click the first button of `row` (one row per image) as `user`; the bot's answer."""
    button = rows_of(message)[row]["components"][0]
    interaction = await running.server.click_button(message["id"], button["custom_id"], user=user)
    answer = await running.server.wait_for_reply(interaction["id"], timeout=REPLY)
    return text_of(answer)


def work_folder(store: DatasetStore, guild: int, scope: int, *, running: bool) -> Path:
    """A training's work folder as the retrainer makes it (the server's images exported into
    it), its row running in this process or left running by a process that was killed."""
    pid = os.getpid()
    if not running:
        dead = subprocess.Popen(["true"])
        dead.wait()
        pid = dead.pid
    training = store.trainings.start(
        scope=scope, guild_id=guild, channel_id=None, user_id=None, pid=pid, params={}
    )
    folder = store.data_dir / TRAININGS_FOLDER / str(training.id)
    store.export(folder / "data", guild, holdout=None)
    (folder / "train.log").write_text("epoch 1/2\n")
    return folder


async def test_forget_takes_back_what_a_person_posted_and_leaves_no_copy(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    (mine,) = images_of(tiny_dataset, "jedi", 1)
    (theirs,) = images_of(tiny_dataset, "sith", 1)
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, data_dir=tmp_path / "data") as running,
    ):
        store = running.bot.dataset
        assert store is not None
        guild = server.guild_id
        await running.command(content="!dataset collect on")
        posted = await running.post("look at this", [mine], author=POSTER)
        reply = await running.server.wait_for_reply(
            (await running.post("!teach jedi", author=MEMBER))["id"], timeout=REPLY
        )
        assert "Taught 1 new image as **Jedi**." in text_of(reply), text_of(reply)
        verdict = await running.command(mine, content="!jedisith", author=MODERATOR)
        await click_row(running, verdict, 0, MODERATOR)
        bad = ("notes.png", b"not an image")  # refused; the next file is still kept as its own
        reply = await running.command(bad, theirs, content="!teach sith", author=MEMBER)
        assert text_of(reply).startswith("Taught 1 new image as **Sith**; refused 1, `notes.png`")
        assert store.summary(guild).images == 2
        running_training = work_folder(store, guild, guild, running=True)
        killed = work_folder(store, guild, 0, running=False)
        assert sha256(mine[1]) in hashes_under(running_training)

        text = await forget(running, POSTER)
        assert text.startswith("Deleted your 0 labels and 1 image nobody else labelled."), text
        assert "The 1 image you posted went too, with the 2 labels others gave them." in text
        assert sha256(mine[1]) not in hashes_under(store.data_dir)
        assert sha256(theirs[1]) in hashes_under(running_training)
        assert (running_training / "data").is_dir() and not killed.exists()
        assert store.summary(guild).images == 1 and posted["id"]


async def test_a_deleted_message_takes_its_images_unless_a_moderator_labelled_them(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    plain, ruled = images_of(tiny_dataset, "jedi", 2)
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, data_dir=tmp_path / "data") as running,
    ):
        store = running.bot.dataset
        assert store is not None
        guild = server.guild_id
        await running.command(content="!dataset collect on")
        message = await running.post("!jedisith", [plain, ruled], author=POSTER)
        verdict = await server.wait_for_reply(message["id"], timeout=REPLY)
        await click_row(running, verdict, 0, MEMBER)
        await click_row(running, verdict, 1, MODERATOR)
        assert store.summary(guild).images == 2
        with store.engine.connect() as connection:  # a click records the message's author
            posters = set(connection.scalars(select(ImageRef.poster_id)))
        assert posters == {int(server.state.user_named("ahsoka")["id"])}

        await server.delete_message(message["id"])
        await wait_until(lambda: store.summary(guild).images == 1)
        assert hashes_under(store.data_dir / "images") == {sha256(ruled[1])}
        assert store.summary(guild).votes == 1

        # A bulk delete (a moderator's purge) does the same for each message.
        (other,) = images_of(tiny_dataset, "sith", 1)
        message = await running.post("!jedisith", [other], author=MEMBER)
        await click_row(
            running, await server.wait_for_reply(message["id"], timeout=REPLY), 0, MEMBER
        )
        assert store.summary(guild).images == 2
        channel = int(message["channel_id"])
        ids = [int(message["id"]), 1]
        payload = {"ids": ids, "channel_id": channel, "guild_id": guild}
        running.bot.dispatch("raw_bulk_message_delete", discord.RawBulkMessageDeleteEvent(payload))
        await wait_until(lambda: store.summary(guild).images == 1)
        assert hashes_under(store.data_dir / "images") == {sha256(ruled[1])}


async def test_a_killed_trainings_work_folder_is_gone_after_start_up(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with DatasetStore.open(data) as store:
        store.import_folder(tiny_dataset)
        ended = work_folder(store, 0, 1, running=True)
        with store.engine.begin() as connection:  # it ended: its log stays, not its images
            connection.execute(update(Training).where(Training.scope == 1).values(status="failed"))
        killed = work_folder(store, 0, 0, running=False)
    assert (killed / "data" / "jedi").is_dir()
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, data_dir=data) as running,
    ):
        await wait_until(lambda: not killed.exists())
        await wait_until(lambda: not (ended / "data").exists())
        assert (ended / "train.log").is_file()
        store = running.bot.dataset
        assert store is not None
        assert {t.status for t in store.trainings.latest(2)} == {"interrupted", "failed"}


async def test_a_slash_commands_image_is_posted_by_who_ran_the_command(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    """A slash command's image lives in no message: whoever ran the command posted it, and
    takes it back with `!forget` though someone else labelled it."""
    (image,) = images_of(tiny_dataset, "sith", 1)
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, data_dir=tmp_path / "data", sync_commands=True) as running,
    ):
        store = running.bot.dataset
        assert store is not None
        await running.command(content="!dataset collect on")
        await wait_until(lambda: "jedisith" in {c["name"] for c in server.application_commands})
        interaction = await server.invoke_slash_command("jedisith", {"image": image}, user=POSTER)
        verdict = await server.wait_for_reply(interaction["id"], timeout=REPLY)
        await click_row(running, verdict, 0, MEMBER)
        assert store.summary(server.guild_id).images == 1

        text = await forget(running, POSTER)
        assert "The 1 image you posted went too, with the 1 label others gave them." in text
        assert store.summary(server.guild_id).images == 0
        assert sha256(image[1]) not in hashes_under(store.data_dir)


async def test_forget_deletes_only_once_its_asker_confirms(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    """Someone else's click and Cancel change nothing; with nothing to delete, it says so."""
    (mine,) = images_of(tiny_dataset, "jedi", 1)
    async with (
        DiscordServer(token=TOKEN) as server,
        running_bot(server, data_dir=tmp_path / "data") as running,
    ):
        store = running.bot.dataset
        assert store is not None
        await running.command(content="!dataset collect on")
        await running.command(mine, content="!teach jedi", author=POSTER)
        text = await forget(running, MEMBER)
        assert text == (
            "You have given me no labels or images in this server: there is nothing to delete."
        )

        reply = await running.command(content="!forget", author=POSTER)
        delete, cancel = (b["custom_id"] for b in reply["components"][0]["components"])
        click = await server.click_button(reply["id"], delete, user=MEMBER)
        answer = await server.wait_for_interaction_response(click["id"], timeout=REPLY)
        assert answer["content"] == NOT_YOURS
        click = await server.click_button(reply["id"], cancel, user=POSTER)
        answer = await server.wait_for_interaction_response(click["id"], timeout=REPLY)
        assert answer["content"] == CANCELLED and not answer.get("components")
        assert store.summary(server.guild_id).images == 1
        assert store.user_summary(int(server.state.user_named("ahsoka")["id"])).total == 1
