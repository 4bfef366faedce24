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


README_MAX_LINES = 250
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> str:
    """Markdown without its fenced blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def test_readme_starts_with_what_it_is_and_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:15]
    sentence = head[0].lstrip("# ")
    assert sentence.endswith(".") and len(sentence.split()) >= 8, head[0]
    commands = [line.split("#")[0].strip() for line in head if line.startswith("make ")]
    assert commands == ["make run", "make test"]


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_every_relative_link_resolves() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(_prose(page.read_text())):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL (https:, mailto:) or an anchor on the same page
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.is_file() or ROOT not in path.parents:
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken
    assert len(pages) > 5  # the docs pages were found
