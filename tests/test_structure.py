"""Size limits of the code: no source file over 600 lines, no class with more than 40 methods."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "model", "training", "dataset", "playground", "benchmarks", "tests")
MAX_LINES = 600
MAX_METHODS = 40


def source_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def classes_over(path: Path, limit: int) -> list[str]:
    """`name (count)` of each class in `path` with more than `limit` methods of its own."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            methods = [
                item
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            if len(methods) > limit:
                found.append(f"{node.name} ({len(methods)})")
    return found


def test_the_packages_hold_source_files() -> None:
    names = {relative(path) for path in source_files()}
    assert "bot/__main__.py" in names and "tests/test_structure.py" in names


def test_no_source_file_is_over_600_lines() -> None:
    over = {
        f"{relative(path)} ({count})"
        for path in source_files()
        if (count := line_count(path)) > MAX_LINES
    }
    assert not over, f"over {MAX_LINES} lines: {', '.join(sorted(over))}"


def test_no_class_has_more_than_40_methods() -> None:
    over = [
        f"{relative(path)}: {found}"
        for path in source_files()
        for found in classes_over(path, MAX_METHODS)
    ]
    assert not over, f"classes with more than {MAX_METHODS} methods: {'; '.join(over)}"


def test_the_method_count_sees_methods_of_each_class_alone(tmp_path: Path) -> None:
    many = "\n".join(f"    def m{i}(self): ..." for i in range(41))
    source = tmp_path / "example.py"
    source.write_text(
        f"class Big:\n{many}\n    class Inner:\n        def one(self): ...\n"
        "class Small:\n    async def a(self): ...\n    x = 1\n"
    )
    assert classes_over(source, MAX_METHODS) == ["Big (41)"]
    assert sorted(classes_over(source, 0)) == ["Big (41)", "Inner (1)", "Small (1)"]
