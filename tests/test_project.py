"""Project-level promises: documented settings, CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

from dotenv import dotenv_values

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ENV_KEYS = {
    "token": "DISCORD_TOKEN",
    "api_url": "DISCORD_API_URL",
    "gateway_url": "DISCORD_GATEWAY_URL",
}


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(dotenv_values(ROOT / ".env.example"))
    expected = {ENV_KEYS.get(name, name.upper()) for name in Settings.model_fields}
    assert documented == expected
    # ...and each is the variable Settings reads for its field.
    assert set(Settings.env_names().values()) == expected
    for name, key in Settings.env_names().items():
        assert key == ENV_KEYS.get(name, name.upper()), name
    # Each key, or the group of keys it belongs to, is introduced by a comment.
    lines = (ROOT / ".env.example").read_text().splitlines()
    for key in expected:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{key}="))
        while index > 0 and re.match(r"^[A-Z_]+=", lines[index - 1]):
            index -= 1
        assert index > 0 and lines[index - 1].startswith("#"), f"{key} has no comment"


def test_env_example_documents_the_defaults() -> None:
    """Every value written in .env.example parses, and is the default it claims to be."""
    values = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    documented = Settings.from_env({**values, "DISCORD_TOKEN": "x"})
    defaults = Settings.from_env({"DISCORD_TOKEN": "x"})
    for name in Settings.model_fields:
        assert getattr(documented, name) == getattr(defaults, name), name


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line.split("#")[0].strip() for line in readme[:6] if line.startswith("make ")]
    assert commands == ["make run", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
