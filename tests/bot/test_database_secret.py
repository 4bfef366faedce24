"""DATABASE_URL's password is a secret like the token: never in repr(Settings), a log or the
one line `python -m bot` ends with when it cannot open the dataset."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from e2e_support import TOKEN, bot_env
from pydantic import SecretStr

from bot.settings import Settings
from dataset.database import display_url, hide_password
from playground.launch import start_logged_bot

PASSWORD = "hunter2-database-secret"


def closed_port() -> int:
    """A port nothing listens on once this returns."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_database_url_stays_out_of_repr_and_dumps() -> None:
    url = f"postgresql+psycopg://jedisith:{PASSWORD}@db.example/jedisith"
    for settings in (
        Settings(token=TOKEN, database_url=url),
        Settings.from_env({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": url}),
    ):
        assert isinstance(settings.database_url, SecretStr)
        assert settings.database_url.get_secret_value() == url
        for shown in (repr(settings), str(settings), str(settings.model_dump())):
            assert PASSWORD not in shown


def test_urls_and_errors_are_printed_without_the_password() -> None:
    url = f"postgresql+psycopg://jedisith:{PASSWORD}@db.example/jedisith"
    assert display_url(url) == "postgresql+psycopg://jedisith:***@db.example/jedisith"
    unparsable = f"postgresql://jedisith:{PASSWORD}@db.example:port/jedisith"
    assert PASSWORD not in display_url(unparsable)
    said = hide_password(f"could not connect with {url} (password {PASSWORD})", url)
    assert said == "could not connect with *** (password ***)"


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_database_out_of_reach_is_one_line_without_its_password(tmp_path: Path) -> None:
    """`python -m bot` with an unreachable PostgreSQL and with a URL it cannot parse, both with a
    password: one line each, naming the database without the password."""
    nowhere = f"http://127.0.0.1:{closed_port()}"
    common = {
        "DISCORD_TOKEN": TOKEN,
        "DISCORD_API_URL": f"{nowhere}/api/v10",
        "DISCORD_GATEWAY_URL": nowhere.replace("http", "ws"),  # the dataset opens first
        "MODEL_BACKEND": "litert",
        "LOG_LEVEL": "DEBUG",  # whatever is logged on the way must not show it either
    }
    cases = {
        "unreachable": f"postgresql+psycopg://jedisith:{PASSWORD}@127.0.0.1:{closed_port()}/db",
        "unparsable": f"postgresql://jedisith:{PASSWORD}@127.0.0.1:port/db",
    }
    processes = {
        name: await start_logged_bot(bot_env(**common, DATABASE_URL=url), tmp_path / name)
        for name, url in cases.items()
    }
    codes = await asyncio.gather(*(p.wait(timeout=90) for p in processes.values()))
    assert codes == [1, 1]
    for name, process in processes.items():
        stdout, stderr = process.output()
        assert PASSWORD not in stdout + stderr, name
        assert "Traceback" not in stdout + stderr
        lines = [line for line in stderr.splitlines() if line.startswith("jedisith-bot: ")]
        assert len(lines) == 1, stderr
        assert lines[0].startswith("jedisith-bot: cannot open the dataset at postgresql")
    unreachable = processes["unreachable"].output()[1]
    assert "postgresql+psycopg://jedisith:***@127.0.0.1:" in unreachable
