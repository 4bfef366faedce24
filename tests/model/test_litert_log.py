"""The command-line tools do not print LiteRT's XNNPACK banner; what else goes to stderr still
shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "playground" / "samples" / "sith-1.jpg"
BANNER = "XNNPACK delegate"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", [["classify", str(SAMPLE)], ["info"]])
def test_jedisith_prints_no_banner(command: list[str]) -> None:
    done = run("-m", "model.cli", *command, "--backend", "litert")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


def test_features_prints_no_banner(tmp_path: Path) -> None:
    done = run("-m", "model.cli", "features", str(SAMPLE), "-o", str(tmp_path / "f.png"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


def test_stderr_still_shows_around_the_first_run() -> None:
    """Only the first run's own output is dropped: lines before and after it come through,
    as does a second model's run."""
    code = (
        "import os, sys\n"
        "from model.runtime import Classifier\n"
        "os.write(2, b'before\\n')\n"
        "Classifier.load('model/default', 'litert')\n"
        "print('between', file=sys.stderr, flush=True)\n"
        "Classifier.load('model/default', 'litert')\n"
        "os.write(2, b'after\\n')\n"
    )
    done = run("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "before\nbetween\nafter\n"
    assert BANNER not in done.stderr
