"""The bot's layers, read from its imports: it uses the trainer only through its protocol, its
modules import each other without a loop, and no cog imports another. (`model/`'s own rule is
tests/model/test_layer.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports at run time, and each name it takes from one as if it were a
    module (`from a import b` gives `a` and `a.b`); imports under `if TYPE_CHECKING:` are left
    out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join([*base, *([node.module] if node.module else [])])
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def modules(folder: str) -> dict[str, Path]:
    return {module_name(path): path for path in sorted((ROOT / folder).rglob("*.py"))}


def first_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop of `graph` (module -> modules it imports), or None."""
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for following in sorted(graph[node]):
            if state.get(following) == "open":
                return [*trail[trail.index(following) :], following]
            if following not in state and (loop := visit(following, [*trail, following])):
                return loop
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (loop := visit(node, [node])):
            return loop
    return None


def test_the_checks_see_a_loop_and_a_relative_import(tmp_path: Path) -> None:
    assert first_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert first_cycle({"a": {"b"}, "b": set()}) is None
    path = ROOT / "bot" / "exts" / "models" / "_cog.py"
    assert "bot.exts.models._retrainer" in imports(path)


def test_the_bot_uses_the_trainer_only_through_its_protocol() -> None:
    for name, path in modules("bot").items():
        trainer = sorted(i for i in imports(path) if i.partition(".")[0] == "training")
        assert all(i.startswith("training.protocol") for i in trainer), f"{name}: {trainer}"


def test_no_import_loop_between_the_bots_modules() -> None:
    found = modules("bot")
    graph = {
        name: {other for other in found if other != name and other in imports(path)}
        for name, path in found.items()
    }
    assert first_cycle(graph) is None, " -> ".join(first_cycle(graph) or [])


def test_no_cog_imports_another() -> None:
    exts = ROOT / "bot" / "exts"
    features = {path.stem for path in exts.iterdir() if not path.name.startswith("__")}
    for name, path in modules("bot/exts").items():
        own = name.split(".")[2] if name.count(".") >= 2 else None
        others = sorted(
            i
            for i in imports(path)
            if i.startswith("bot.exts.") and i.split(".")[2] in features - {own}
        )
        assert not others, f"{name} imports {others}"
