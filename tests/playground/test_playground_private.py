"""The playground never serves or writes a developer's own model, data or database: its bot gets
a copy of the model and a dataset in the playground's temporary folder, whatever `.env` says."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

import playground.__main__ as cli
from model.bundle import CURRENT_FILE, DEFAULT_MODEL_DIR, publish, staging_folder, versions
from playground.launch import PROJECT_ROOT, bot_setting_keys
from playground.web import TOKEN_HEADER

READY = re.compile(r"Playground ready: open (http://\S+)")
META = re.compile(r'<meta name="playground-token" content="([^"]+)">')


def developers_model(folder: Path) -> Path:
    """A developer's model folder: the shipped model published twice (versions 1 and 2)."""
    model = folder / "model"
    for _ in range(2):
        with staging_folder(model) as staging:
            for path in DEFAULT_MODEL_DIR.iterdir():
                if path.is_file():
                    shutil.copy2(path, staging / path.name)
            publish(staging, model)
    return model


def test_a_model_given_with_model_is_served_as_a_copy(tmp_path: Path) -> None:
    model = developers_model(tmp_path / "dev")
    served = cli.private_model(model, tmp_path / "run")
    assert served == tmp_path / "run" / "model"
    assert versions(served) == versions(model) == [1, 2]
    assert (served / CURRENT_FILE).read_text() == (model / CURRENT_FILE).read_text()
    assert cli.private_model(tmp_path / "none", tmp_path / "other") == tmp_path / "none"


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_page_cannot_roll_back_the_model_env_names(tmp_path: Path) -> None:
    """`.env` names a developer's model (two versions), data folder and database; the page's
    `!rollback shared 1` as the owner reaches the playground's copy of the shipped model (which
    has no earlier version), and nothing of the developer's is touched."""
    dev = tmp_path / "dev"
    model = developers_model(dev)
    data = dev / "data"
    data.mkdir()
    database = dev / "dev.sqlite3"
    env_file = dev / ".env"
    env_file.write_text(
        f"MODEL_PATH={model}\nDATA_DIR={data}\nDATABASE_URL=sqlite:///{database}\n"
        "MODEL_BACKEND=litert\nCOOLDOWN_RATE=0\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in bot_setting_keys()}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")])
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "playground", "--port", "0", "--env-file", str(env_file)],
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        url = None
        while url is None:
            line = await asyncio.wait_for(process.stdout.readline(), 150)
            assert line, "the playground exited before it was ready"
            if match := READY.search(line.decode()):
                url = match.group(1)
        reply = await rollback_as_the_page(url)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    assert reply == "I can't roll back: there is no earlier version to go back to.", reply
    assert (model / CURRENT_FILE).read_text().strip() == "2"
    assert not database.exists() and list(data.iterdir()) == []


async def rollback_as_the_page(url: str) -> str:
    """Post `!rollback shared 1` as the page does (its token, its origin); the bot's reply."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/") as response:
            match = META.search(await response.text())
        assert match is not None
        headers = {TOKEN_HEADER: match.group(1), "Origin": url}
        data = {"content": "!rollback shared 1"}
        async with http.post(f"{url}/playground/api/messages", data=data, headers=headers) as sent:
            assert sent.status == 201
            posted = (await sent.json())["message"]["id"]
        deadline = time.monotonic() + 60
        while True:  # the page's state, until the bot's reply to that message is in it
            async with http.get(f"{url}/playground/api/state", headers=headers) as response:
                messages = (await response.json())["messages"]
            replies = [m for m in messages if (m.get("reply_to") or {}).get("id") == posted]
            if replies:
                return replies[0]["content"]
            assert time.monotonic() < deadline, "the bot never answered"
            await asyncio.sleep(0.2)
