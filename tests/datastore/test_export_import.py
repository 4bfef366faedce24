"""Export to the folders `jedisith-train` takes, and import from them."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import dataset.files
from dataset import DatasetError, DatasetStore
from training.data import load_dataset


def _fill(store: DatasetStore, split_images, train: int = 3, holdout: int = 2) -> dict:
    """`train` and `holdout` images per class, voted by one member; returns sha256 -> label."""
    labels = {}
    images = split_images(False, 2 * train) + split_images(True, 2 * holdout)
    for index, data in enumerate(images):
        label = "jedi" if index % 2 == 0 else "sith"
        record = store.add_image(data)
        store.vote(record.sha256, user_id=1, guild_id=5, label=label, source="button")
        labels[record.sha256] = label
    return labels


def _tree(folder: Path) -> dict[str, set[str]]:
    return {d.name: {f.name for f in d.iterdir()} for d in sorted(folder.iterdir())}


def test_export_writes_the_training_split_that_training_loads(
    store: DatasetStore, split_images, tmp_path: Path
) -> None:
    labels = _fill(store, split_images)
    out = tmp_path / "export"
    assert store.export(out, 5) == {"jedi": 3, "sith": 3}
    expected = {"jedi": set(), "sith": set()}
    for image in store.labelled(5, holdout=False):
        expected[image.label].add(image.path.name)
        exported = out / image.label / image.path.name
        assert exported.read_bytes() == image.path.read_bytes()
        assert exported.stat().st_ino != image.path.stat().st_ino  # a copy, never a link (#19)
    assert _tree(out) == expected and sum(map(len, expected.values())) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "export"]  # no staging left

    loaded = load_dataset(out)
    assert loaded.class_names == ("jedi", "sith")
    assert loaded.counts() == {"jedi": 3, "sith": 3} and loaded.skipped == []
    for path, label in zip(loaded.paths, loaded.labels, strict=True):
        assert labels[path.stem] == loaded.class_names[label]


def test_export_of_the_holdout_or_both(store: DatasetStore, split_images, tmp_path) -> None:
    _fill(store, split_images)
    assert store.export(tmp_path / "holdout", 5, holdout=True) == {"jedi": 2, "sith": 2}
    names = {f.name for d in (tmp_path / "holdout").iterdir() for f in d.iterdir()}
    assert names == {image.path.name for image in store.labelled(5, holdout=True)}
    empty = tmp_path / "both"
    empty.mkdir()  # an empty folder is fine
    assert store.export(empty, 5, holdout=None) == {"jedi": 5, "sith": 5}


def test_export_refuses_a_folder_that_is_not_empty(store, split_images, tmp_path) -> None:
    _fill(store, split_images)
    out = tmp_path / "used"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        store.export(out, 5)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_failed_export_leaves_nothing(store, split_images, tmp_path, monkeypatch) -> None:
    _fill(store, split_images)
    calls = []

    def fail_on_the_third(source: Path, target: Path) -> None:
        calls.append(target)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        os.link(source, target)

    monkeypatch.setattr(dataset.files, "_copy", fail_on_the_third)
    with pytest.raises(DatasetError, match="No space left"):
        store.export(tmp_path / "out", 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_export_copies_where_links_are_impossible(store, split_images, tmp_path, monkeypatch):
    _fill(store, split_images, train=1, holdout=0)

    def no_links(source, target) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    assert store.export(tmp_path / "out", 5) == {"jedi": 1, "sith": 1}
    for image in store.labelled(5):
        copy = tmp_path / "out" / image.label / image.path.name
        assert copy.read_bytes() == image.path.read_bytes()
        assert copy.stat().st_ino != image.path.stat().st_ino


def test_import_then_export_round_trip(store: DatasetStore, make_image, tmp_path: Path) -> None:
    source = tmp_path / "photos"
    for label, seeds in (("jedi", (1, 2, 3)), ("sith", (4, 5))):
        (source / label / "deeper").mkdir(parents=True)
        for seed in seeds:
            (source / label / f"{seed}.png").write_bytes(make_image(seed))
    (source / "jedi" / "deeper" / "6.jpg").write_bytes(make_image(6, "JPEG"))
    (source / "sith" / "notes.txt").write_text("not an image")
    (source / "sith" / ".hidden.png").write_bytes(make_image(7))
    (source / "README").write_text("top-level file")

    report = store.import_folder(source, user_id=42)
    assert (report.added, report.already) == (6, 0)
    skipped = sorted((Path(path).name, reason) for path, reason in report.skipped)
    assert [name for name, _ in skipped] == ["README", "notes.txt"]
    assert skipped[0][1] == "not in a class folder" and "not an image" in skipped[1][1]
    summary = store.summary(None)
    assert summary.contributors == [(42, 6)] and summary.labelled == 6

    again = store.import_folder(source, user_id=42)
    assert (again.added, again.already, store.summary(None).votes) == (0, 6, 6)

    out = tmp_path / "out"
    assert store.export(out, None, holdout=None) == {"jedi": 4, "sith": 2}
    for label in ("jedi", "sith"):
        imported = sorted(
            p.read_bytes()
            for p in (source / label).rglob("*.*")
            if p.suffix in {".png", ".jpg"} and not p.name.startswith(".")
        )
        exported = sorted(p.read_bytes() for p in (out / label).iterdir())
        assert imported == exported


def test_import_refuses_unknown_class_folders(store, make_image, tmp_path: Path) -> None:
    source = tmp_path / "photos"
    for name in ("jedi", "yoda", "droids"):
        (source / name).mkdir(parents=True)
        (source / name / "a.png").write_bytes(make_image(len(name)))
    with pytest.raises(DatasetError, match="not classes: droids, yoda"):
        store.import_folder(source)
    assert store.summary(None).images == 0
    with pytest.raises(DatasetError, match="not a folder"):
        store.import_folder(tmp_path / "missing")


def test_the_same_image_in_both_classes_keeps_the_first(store, make_image, tmp_path) -> None:
    source = tmp_path / "photos"
    for name in ("jedi", "sith"):
        (source / name).mkdir(parents=True)
        (source / name / f"{name}.png").write_bytes(make_image(1))
    report = store.import_folder(source)
    assert report.added == 1 and len(report.skipped) == 1
    assert "same image is in jedi/" in report.skipped[0][1]
    assert [image.label for image in store.labelled(None)] == ["jedi"]
