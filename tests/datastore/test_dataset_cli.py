"""`jedisith-dataset info|export|import` (`python -m dataset`): output, the defaults, and
one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dataset import DatasetStore
from dataset.cli import main
from dataset.database import display_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def photos(tmp_path: Path, make_image) -> Path:
    """A folder of class folders: 3 Jedi, 2 Sith."""
    folder = tmp_path / "photos"
    for label, seeds in (("jedi", (1, 2, 3)), ("sith", (4, 5))):
        (folder / label).mkdir(parents=True)
        for seed in seeds:
            (folder / label / f"{seed}.png").write_bytes(make_image(seed))
    return folder


def _one_error(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1, captured.err
    return captured.err


def test_import_info_and_export(
    photos: Path, data_dir: Path, database_url: str, tmp_path: Path, capsys
) -> None:
    where = ["--data-dir", str(data_dir), "--database-url", database_url]
    assert main(["import", str(photos), "--user", "42", *where]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{photos}: 5 images added, 0 already stored, 0 files skipped"
    )
    with DatasetStore.open(data_dir, database_url) as store:
        assert store.summary(None).contributors == [(42, 5)]
        conflict = store.add_image((photos / "jedi" / "1.png").read_bytes()).sha256
        store.vote(conflict, user_id=43, guild_id=None, label="sith", source="button")
        counts = store.summary(None).counts

    assert main(["info", *where]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines if line[0] != " ")
    assert table["data"] == str(data_dir) and table["database"] == display_url(database_url)
    assert table["images"] == "5 (1 without a label)" and table["votes"] == "6"
    for name in ("jedi", "sith"):
        assert table[name] == f"{counts[name]['train']} train, {counts[name]['holdout']} holdout"
    assert table["since last training"] == "4 images labelled"
    assert table["conflicts"] == "1" and lines[-1] == f"  {conflict[:12]}  jedi 1, sith 1"

    out_dir = tmp_path / "export"
    assert main(["export", str(out_dir), *where]) == 0
    printed = capsys.readouterr().out
    exported = {d.name: len(list(d.iterdir())) for d in out_dir.iterdir()}
    assert printed.strip() == (
        f"{out_dir}: {exported['jedi']} jedi, {exported['sith']} sith (training split)"
    )
    assert exported["sith"] == counts["sith"]["train"]

    assert main(["export", str(out_dir), *where]) == 2  # not empty any more
    assert "not empty" in _one_error(capsys)
    assert main(["export", str(tmp_path / "held"), "--holdout", *where]) == 0
    assert "(holdout)" in capsys.readouterr().out


def test_a_servers_data_and_the_shared_set(
    photos: Path, data_dir: Path, database_url: str, tmp_path: Path, capsys
) -> None:
    where = ["--data-dir", str(data_dir), "--database-url", database_url]
    assert main(["import", str(photos), "--guild", "5", *where]) == 0
    capsys.readouterr()
    assert main(["info", "--guild", "5", *where]) == 0
    table = dict(
        re.split(r"\s{2,}", line, maxsplit=1)
        for line in capsys.readouterr().out.splitlines()
        if line[0] != " "
    )
    assert table["server"] == "5" and table["images"] == "5 (0 without a label)"
    assert main(["info", *where]) == 0
    assert "0 (0 without a label)" in capsys.readouterr().out  # no server: nothing
    shared = tmp_path / "shared"
    assert main(["export", str(shared), "--shared", "--holdout", *where]) == 0
    assert sum(len(list(d.iterdir())) for d in shared.iterdir()) == 0  # server 5 does not share
    with DatasetStore.open(data_dir, database_url) as store:
        store.update_guild_settings(5, by=1, sharing=True)
        expected = store.export(tmp_path / "five", 5)
    assert main(["export", str(tmp_path / "both"), "--shared", *where]) == 0
    written = {d.name: len(list(d.iterdir())) for d in (tmp_path / "both").iterdir()}
    assert written == expected and "(training split)" in capsys.readouterr().out


def test_the_data_folder_and_database_come_from_the_environment(
    photos: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["import", str(photos)]) == 0
    assert (tmp_path / "from-env" / "dataset.sqlite3").is_file()
    other = tmp_path / "elsewhere.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{other}")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"sqlite:///{other}" in out and "0 (0 without a label)" in out
    assert other.is_file()


def test_skipped_files_are_listed(photos: Path, data_dir: Path, capsys) -> None:
    (photos / "sith" / "notes.txt").write_text("hello")
    assert main(["import", str(photos), "--data-dir", str(data_dir)]) == 0
    captured = capsys.readouterr()
    assert "1 files skipped" in captured.out
    assert captured.err.startswith(f"jedisith-dataset: skipped {photos / 'sith' / 'notes.txt'}: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "{tmp}/missing"], "is not a folder"),
        (["import", "{tmp}/bad"], "not classes: yoda"),
        (["info", "--database-url", "nonsense"], "not a database URL"),
        (["info", "--database-url", "postgresql+pg8000://u:secret@db/x"], "driver is not"),
        (["info", "--database-url", "postgresql://u:secret@127.0.0.1:1/x"], "cannot open"),
    ],
)
def test_errors_are_one_line(args, message, tmp_path: Path, data_dir: Path, capsys) -> None:
    (tmp_path / "bad" / "yoda").mkdir(parents=True)
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    assert main([*args, "--data-dir", str(data_dir)]) == 2
    error = _one_error(capsys)
    assert error.startswith("jedisith-dataset: ") and message in error and "secret" not in error


def test_python_m_dataset_and_the_console_script_run_the_same_command(
    photos: Path, data_dir: Path
) -> None:
    """`python -m dataset` runs `dataset.cli.main`, which `jedisith-dataset` names too."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["jedisith-dataset"] == "dataset.cli:main"
    assert "dataset" not in scripts["jedisith"]  # the model's command knows no dataset
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "dataset", "import", str(photos), "--data-dir", str(data_dir)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{photos}: 5 images added, 0 already stored, 0 files skipped"
    command = [sys.executable, "-m", "dataset", "import", str(photos / "missing")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("jedisith-dataset: ") and result.stderr.count("\n") == 1
