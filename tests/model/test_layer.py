"""`model/` is the bottom layer: no module of it imports a package built on it."""

from __future__ import annotations

import ast
from pathlib import Path

MODEL = Path(__file__).resolve().parents[2] / "model"
ABOVE = {"dataset", "bot", "training", "playground", "benchmarks", "discord"}


def imported_packages(source: str) -> set[str]:
    """The top-level packages `source` imports anywhere: at the top, in a function, or under
    `if TYPE_CHECKING`. Relative imports stay inside the package and are left out."""
    packages = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            packages |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            packages.add(node.module.partition(".")[0])
    return packages


def test_every_import_is_seen() -> None:
    source = (
        "import os, bot.client\n"
        "from typing import TYPE_CHECKING\n"
        "from . import bundle\n"
        "if TYPE_CHECKING:\n"
        "    from dataset import DatasetStore\n"
        "def later():\n"
        "    import training.retrain as retrain\n"
    )
    assert imported_packages(source) == {"os", "bot", "typing", "dataset", "training"}


def test_model_imports_nothing_above_it() -> None:
    files = sorted(MODEL.rglob("*.py"))
    assert len(files) >= 10  # the package is where the test looks
    found = {
        f"{path.relative_to(MODEL.parent)} imports {package}"
        for path in files
        for package in imported_packages(path.read_text()) & ABOVE
    }
    assert found == set()
