"""Publishing a model folder atomically, and reading one consistently."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from model.bundle import (
    KEEP_VERSIONS,
    ModelError,
    current_version,
    model_dir,
    publish,
    publish_stamp,
    read_info,
    read_model_file,
    set_current,
    sha256,
    staging_folder,
    versions,
)


def write_model(folder: Path, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.tflite").write_bytes(f"tflite {version}".encode() * 1000)
    (folder / "model.keras").write_bytes(f"keras {version}".encode())
    meta = {"class_names": ["jedi", "sith"], "image_size": [200, 200], "parameters": 1}
    (folder / "model.json").write_text(json.dumps({**meta, "version": version}))


def test_publish_adds_a_numbered_version_and_records_hashes(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    for number, version in enumerate(("one", "two"), start=1):
        with staging_folder(destination) as staging:
            write_model(staging, version)
            publish(staging, destination)
        info = read_info(destination)
        assert info.raw["version"] == version
        assert current_version(destination) == number
        assert model_dir(destination) == destination / str(number)
        data = (model_dir(destination) / "model.tflite").read_bytes()
        assert info.files["model.tflite"] == sha256(data)
    assert sorted(p.name for p in destination.iterdir()) == ["1", "2", "CURRENT"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left
    assert (model_dir(destination).stat().st_mode & 0o777) == 0o755


def test_only_the_last_versions_are_kept(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    for n in range(7):
        with staging_folder(destination) as staging:
            write_model(staging, f"v{n}")
            publish(staging, destination, keep=3)
    assert versions(destination) == [5, 6, 7] and current_version(destination) == 7


def test_rolling_back_is_naming_another_version(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    for version in ("one", "two"):
        with staging_folder(destination) as staging:
            write_model(staging, version)
            publish(staging, destination)
    before = publish_stamp(destination)
    set_current(destination, 1)
    assert read_info(destination).raw["version"] == "one"
    assert publish_stamp(destination) != before  # a watching bot notices a rollback too
    with pytest.raises(ModelError, match="no version 9"):
        set_current(destination, 9)


def test_a_flat_folder_is_read_as_it_is_and_publishing_starts_versions(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    write_model(destination, "flat")  # the model files right in the folder, as shipped
    assert read_info(destination).raw["version"] == "flat"
    assert current_version(destination) is None and model_dir(destination) == destination
    with staging_folder(destination) as staging:
        write_model(staging, "new")
        publish(staging, destination)
    assert read_info(destination).raw["version"] == "new"
    assert sorted(p.name for p in destination.iterdir()) == ["1", "CURRENT"]


def test_a_damaged_pointer_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "CURRENT").write_text("../../etc")
    with pytest.raises(ModelError, match="does not name a version"):
        read_info(tmp_path)


PUBLISHER = """
import json, sys
from pathlib import Path
from model.bundle import publish, staging_folder

destination = Path(sys.argv[1])
for n in range(10_000):
    with staging_folder(destination) as staging:
        (staging / "model.tflite").write_bytes(b"tflite %d" % n * 5000)
        meta = {"class_names": ["jedi", "sith"], "image_size": [200, 200], "parameters": n}
        (staging / "model.json").write_text(json.dumps(meta))
        publish(staging, destination)
    print(n, flush=True)
"""


@pytest.mark.slow
def test_the_folder_is_servable_whenever_the_publisher_is_killed(tmp_path: Path) -> None:
    """Kill a publisher at random instants, many times: the folder always reads whole."""
    destination = tmp_path / "model"
    rng = random.Random(7)
    published = 0
    for _ in range(40):
        process = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(destination)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert process.stdout is not None
        process.stdout.readline()  # it has published at least once: now kill it at random
        time.sleep(rng.uniform(0.0, 0.05))
        process.kill()
        process.wait()
        process.stdout.close()
        info, data = read_model_file(destination, "model.tflite", attempts=1)
        assert data == b"tflite %d" % info.parameters * 5000
        published += 1
    assert published == 40
    assert len(versions(destination)) <= KEEP_VERSIONS + 1  # at most one not yet pruned


def test_a_failed_block_removes_the_staging_folder(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    with pytest.raises(RuntimeError), staging_folder(destination) as staging:
        write_model(staging, "broken")
        raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []


def test_readers_never_see_a_mix_during_publishes(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    with staging_folder(destination) as staging:
        write_model(staging, "v0")
        publish(staging, destination)
    stop = threading.Event()
    mismatches: list[str] = []
    errors: list[BaseException] = []
    seen: set[str] = set()
    read = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                info, data = read_model_file(destination, "model.tflite")
                seen.add(info.raw["version"])
                read.set()
                if data != f"tflite {info.raw['version']}".encode() * 1000:
                    mismatches.append(info.raw["version"])
        except BaseException as error:  # a failed read must fail the test, not end the thread
            errors.append(error)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(1, 40):
            with staging_folder(destination) as staging:
                write_model(staging, f"v{n}")
                publish(staging, destination)
            if n % 10 == 0:  # make sure the reader reads between publishes
                read.clear()
                assert read.wait(5), "the reader stopped reading"
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert mismatches == []
    assert len(seen) > 1  # it really read while publishes happened


def test_the_publish_stamp_changes_on_publish(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    assert publish_stamp(destination) is None
    with staging_folder(destination) as staging:
        write_model(staging, "a")
        publish(staging, destination)
    first = publish_stamp(destination)
    with staging_folder(destination) as staging:
        write_model(staging, "b")
        publish(staging, destination)
    assert publish_stamp(destination) not in (None, first)


def test_bad_metadata_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        read_info(tmp_path)
    (tmp_path / "model.json").write_text(
        '{"class_names": ["a", "b", "c"], "image_size": [1, 1], "parameters": 3}'
    )
    with pytest.raises(ModelError, match="two classes"):
        read_info(tmp_path)


class Killed(BaseException):
    """Stands for SIGKILL: the publisher stops between two file-system operations."""


PUBLISH_STEPS = 3  # model.json's replace, staging -> version, CURRENT's replace


def test_a_publish_takes_the_steps_the_next_test_stops_at(tmp_path: Path, monkeypatch) -> None:
    destination = tmp_path / "model"
    with staging_folder(destination) as staging:
        write_model(staging, "v1")
        publish(staging, destination)
    calls: list[str] = []
    for name in ("rename", "replace", "symlink"):
        real = getattr(os, name)
        monkeypatch.setattr(
            os, name, lambda *a, _r=real, _n=name, **k: (calls.append(_n), _r(*a, **k))[1]
        )
    with staging_folder(destination) as staging:
        write_model(staging, "v2")
        publish(staging, destination)
    assert len(calls) == PUBLISH_STEPS, calls


@pytest.mark.parametrize("survives", range(PUBLISH_STEPS))
def test_the_folder_is_servable_after_every_step_of_a_publish(
    tmp_path: Path, monkeypatch, survives: int
) -> None:
    """Stop a publish after each of its renames, replaces and links in turn."""
    destination = tmp_path / "model"
    with staging_folder(destination) as staging:
        write_model(staging, "v1")
        publish(staging, destination)
    steps = {"n": 0}

    def step(real):
        def run(*args, **kwargs):
            if steps["n"] == survives:
                raise Killed
            steps["n"] += 1
            return real(*args, **kwargs)

        return run

    for name in ("rename", "replace", "symlink"):
        monkeypatch.setattr(os, name, step(getattr(os, name)))
    with pytest.raises(Killed), staging_folder(destination) as staging:
        write_model(staging, "v2")
        publish(staging, destination)
    monkeypatch.undo()
    info, data = read_model_file(destination, "model.tflite", attempts=1)
    assert data == f"tflite {info.raw['version']}".encode() * 1000
    assert info.raw["version"] in ("v1", "v2")
