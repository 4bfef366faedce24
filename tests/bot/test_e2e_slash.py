"""The slash commands and the message menu end to end, and what the running bot survives: a
dropped gateway, a newly published model."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from typing import Any

import pytest
from e2e_support import (
    REPLY_TIMEOUT,
    Running,
    noise_png,
    text_of,
    verdict_lines,
)

from model.bundle import METADATA_FILE, model_dir, publish, staging_folder
from playground.discord import FLAG_EPHEMERAL, DiscordServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    # Fixture setup is left out: the session's trained_model may train for a minute first, and
    # every fixture here bounds its own waits.
    pytest.mark.timeout(60, func_only=True),
]

# -- application commands -------------------------------------------------------------------------


def responses_for(server: DiscordServer, interaction_id: str) -> list[dict[str, Any]]:
    return [r for r in server.interaction_responses if r["interaction_id"] == interaction_id]


async def test_the_slash_command(running: Running) -> None:
    server = running.server
    interaction = await server.invoke_slash_command(
        "jedisith", {"image": ("slash.png", running.images[0][1])}
    )
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    assert len(verdict_lines(text_of(reply))) == 1
    kinds = [(r["kind"], r.get("type")) for r in responses_for(server, interaction["id"])]
    assert kinds[0] == ("callback", 5)  # deferred: "JediSith is thinking..."
    assert ("followup", None) in kinds


async def test_a_slash_command_without_an_image_judges_the_last_one_posted(
    running: Running,
) -> None:
    """The image option is optional: without it, `/jedisith` finds the image as `!jedisith`
    does (here the last one posted in the channel)."""
    server = running.server
    posted = [("posted-a.png", running.images[3][1]), ("posted-b.png", running.images[1][1])]
    await server.post_message("", attachments=posted)
    interaction = await server.invoke_slash_command("jedisith", {})
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    lines = verdict_lines(text_of(reply))
    assert len(lines) == 2, text_of(reply)
    assert lines[0].startswith("1. `posted-a.png`: ")
    assert lines[1].startswith("2. `posted-b.png`: ")


async def test_the_slash_features_command_with_a_layer(running: Running) -> None:
    server = running.server
    interaction = await server.invoke_slash_command(
        "features", {"image": ("slash.jpg", running.images[5][1]), "layer": 2}
    )
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    assert [a["filename"] for a in reply["attachments"]] == ["conv2.png"]
    assert "(convolution 2)" in text_of(reply)
    assert responses_for(server, interaction["id"])


async def test_the_message_context_menu(running: Running) -> None:
    server = running.server
    target = await server.post_message(
        "", attachments=[("menu-a.png", running.images[0][1]), ("menu-b.png", running.images[3][1])]
    )
    interaction = await server.invoke_message_command("Jedi or Sith?", int(target["id"]))
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    lines = verdict_lines(text_of(reply))
    assert [line.split(":")[0] for line in lines] == ["1. `menu-a.png`", "2. `menu-b.png`"]
    assert responses_for(server, interaction["id"])[0]["type"] == 5


async def test_the_context_menu_on_a_message_without_an_image(running: Running) -> None:
    server = running.server
    target = await server.post_message("words only")
    interaction = await server.invoke_message_command("Jedi or Sith?", int(target["id"]))
    reply = await server.wait_for_reply(interaction["id"], timeout=REPLY_TIMEOUT)
    assert text_of(reply) == "That message has no image to judge."
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
    assert text_of(reply).startswith("**Sith** - score "), text_of(reply)
    _, reply = await running.command("!jedisith", [noise])
    first = text_of(reply).splitlines()[0]
    assert first.startswith("**Not a Jedi or a Sith?** - this doesn't look like what I learned")
    assert re.search(r"\(it would have said (Jedi|Sith), [01]\.\d{3}\)$", first), first
    _, reply = await running.command("!jedisith", [noise, sith])
    lines = text_of(reply).splitlines()
    assert lines[0].startswith("1. `noise.png`: **Not a Jedi or a Sith?** - ")
    assert lines[1].startswith("2. `sith-1.jpg`: **Sith** - score ")
    _, reply = await running.command("!features 1", [noise])
    assert "doesn't look like what I learned from" in text_of(reply)
    assert len(reply["attachments"]) == 1
