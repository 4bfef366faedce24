"""The one launcher of `python -m bot` against a look-alike: its environment."""

from __future__ import annotations

from pathlib import Path

from playground.launch import PROJECT_ROOT, bot_environment, bot_setting_keys

BASE = {"PATH": "/usr/bin", "COOLDOWN_RATE": "9", "DISCORD_TOKEN": "real", "PYTHONPATH": "/x"}


def test_the_bots_settings_are_cleared_and_the_look_alike_named(tmp_path: Path) -> None:
    env = bot_environment(
        "http://127.0.0.1:5/api/v10",
        "fake-token",
        model=tmp_path / "model",
        settings={"LOG_LEVEL": "WARNING"},
        caches=tmp_path,
        base=BASE,
    )
    assert "COOLDOWN_RATE" not in env  # a shell's setting cannot change what is tested
    assert env["DISCORD_TOKEN"] == "fake-token" and env["DISCORD_API_URL"].endswith("/api/v10")
    assert env["DISCORD_GATEWAY_URL"] == ""  # the bot asks the look-alike
    assert env["LOG_LEVEL"] == "WARNING" and env["PATH"] == "/usr/bin"
    assert env["MODEL_PATH"] == str((tmp_path / "model").resolve())
    assert env["PYTHONPATH"].split(":") == [str(PROJECT_ROOT), "/x"]
    assert env["MPLCONFIGDIR"] == str(tmp_path / "matplotlib")


def test_the_playground_keeps_a_developers_settings() -> None:
    env = bot_environment("http://h/api", "t", base=BASE, keep_settings=True)
    assert env["COOLDOWN_RATE"] == "9" and env["DISCORD_TOKEN"] == "t"


def test_the_setting_keys_are_the_bots() -> None:
    keys = bot_setting_keys()
    assert {"DISCORD_TOKEN", "DISCORD_API_URL", "COOLDOWN_RATE", "OOD_POLICY"} <= keys


def test_the_terminal_leaves_out_alembic_and_the_discord_invite() -> None:
    from playground.__main__ import shown

    stamp = "02:10:11"
    assert not shown(f"{stamp} INFO    alembic.runtime.migration: Context impl SQLiteImpl.")
    assert not shown(f"{stamp} INFO    alembic.runtime.migration: Running upgrade  -> 0001, x")
    assert not shown(
        f"{stamp} INFO    bot.client: invite me with: https://discord.com/oauth2/authorize?client_id=1"
    )
    assert shown(f"{stamp} WARNING alembic.runtime.migration: something to know")
    assert shown(f"{stamp} INFO    bot.client: logged in as JediSith#0001 (id 1) in 1 servers")
