"""The training command lines' `--help` shows every option's default."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLAGS = {"-h", "--refit", "--quiet"}  # on or off, nothing to default
NO_DEFAULT = {"--notes"}  # empty: nothing to show


def options_help(module: str) -> dict[str, str]:
    """Each option of `python -m module --help` and its help text, joined into one line."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stderr == ""
    blocks: dict[str, str] = {}
    option = None
    for line in done.stdout.split("options:", 1)[1].splitlines():
        start = re.match(r"  (-[-\w]+)", line)
        if start:
            option = start.group(1)
            blocks[option] = line
        elif option is not None:
            blocks[option] += " " + line.strip()
    return blocks


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("training", {"--epochs": "29", "--val-split": "0.2", "--learning-rate": "0.0001"}),
        ("training.synthetic", {"--jedi": "745", "--sith": "637"}),
    ],
)
def test_every_option_shows_its_default(module: str, expected: dict[str, str]) -> None:
    blocks = options_help(module)
    for option, text in blocks.items():
        if option not in FLAGS | NO_DEFAULT:
            assert "default" in text, (option, text)
        assert text.count("(default") <= 1, (option, text)
    for option, value in expected.items():
        assert f"(default: {value})" in blocks[option], blocks[option]
    assert "(default: None)" not in "".join(blocks.values())
    assert set(blocks) >= set(expected)
