"""Publishing a model folder atomically, and reading one consistently."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from model.bundle import (
    ModelError,
    publish,
    publish_stamp,
    read_info,
    read_model_file,
    sha256,
    staging_folder,
)


def write_model(folder: Path, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.tflite").write_bytes(f"tflite {version}".encode() * 1000)
    (folder / "model.keras").write_bytes(f"keras {version}".encode())
    meta = {"class_names": ["jedi", "sith"], "image_size": [200, 200], "parameters": 1}
    (folder / "model.json").write_text(json.dumps({**meta, "version": version}))


def test_publish_replaces_the_folder_and_records_hashes(tmp_path: Path) -> None:
    destination = tmp_path / "model"
    for version in ("one", "two"):
        with staging_folder(destination) as staging:
            write_model(staging, version)
            publish(staging, destination)
        info = read_info(destination)
        assert info.raw["version"] == version
        data = (destination / "model.tflite").read_bytes()
        assert info.files["model.tflite"] == sha256(data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert (destination.stat().st_mode & 0o777) == 0o755


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
