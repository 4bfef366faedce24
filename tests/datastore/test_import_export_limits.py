"""`jedisith-dataset import` measures before it reads and stays inside its folder; exports are
copies, and a stored file that was changed is repaired when its image is added again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from dataset import DatasetStore
from dataset.importing import OUTSIDE


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_skips_a_file_over_the_limit_without_reading_it(
    store: DatasetStore, make_image, tmp_path: Path
) -> None:
    source = tmp_path / "photos"
    (source / "jedi").mkdir(parents=True)
    (source / "jedi" / "small.png").write_bytes(make_image(1))
    with open(source / "jedi" / "huge.png", "wb") as sparse:  # 3 GB on paper, no blocks on disk
        sparse.truncate(3 * 1024**3)
    report = store.import_folder(source)
    assert report.added == 1
    assert report.skipped == [
        (str(source / "jedi" / "huge.png"), "the file is 3,072 MB; the limit is 10 MB")
    ]


def test_import_does_not_follow_links_out_of_its_folder(
    store: DatasetStore, make_image, tmp_path: Path
) -> None:
    outside = tmp_path / "private"
    (outside / "sith").mkdir(parents=True)
    (outside / "secret.png").write_bytes(make_image(2))
    (outside / "sith" / "other.png").write_bytes(make_image(3))
    source = tmp_path / "photos"
    (source / "jedi").mkdir(parents=True)
    (source / "jedi" / "mine.png").write_bytes(make_image(4))
    (source / "jedi" / "again.png").symlink_to(source / "jedi" / "mine.png")  # inside: read
    (source / "jedi" / "secret.png").symlink_to(outside / "secret.png")
    (source / "sith").symlink_to(outside / "sith", target_is_directory=True)

    report = store.import_folder(source)
    assert (report.added, report.already) == (1, 1)
    assert sorted(report.skipped) == [
        (str(source / "jedi" / "secret.png"), OUTSIDE),
        (str(source / "sith"), OUTSIDE),
    ]
    assert store.summary(None).images == 1


def test_writing_into_an_export_leaves_the_stored_file(
    store: DatasetStore, make_image, tmp_path: Path
) -> None:
    data = make_image(5)
    record, _ = store.add_image_and_vote(
        data, guild_id=None, user_id=1, label="jedi", source="import"
    )
    store.export(tmp_path / "out", None, holdout=None)
    exported = tmp_path / "out" / "jedi" / record.path.name
    assert exported.read_bytes() == data
    with open(exported, "r+b") as handle:
        handle.write(b"changed")
    assert record.path.read_bytes() == data and _sha256(record.path) == record.sha256


def test_a_changed_stored_file_is_repaired_when_its_image_comes_again(
    store: DatasetStore, make_image, tmp_path: Path
) -> None:
    data = make_image(6)
    record = store.add_image(data, guild_id=None)
    link = tmp_path / "old-export.png"  # what an export made before exports were copies
    os.link(record.path, link)
    with open(link, "r+b") as handle:
        handle.write(bytes(16))  # the same size, other bytes
    assert _sha256(record.path) != record.sha256

    again = store.add_image(data, guild_id=None)
    assert not again.new and _sha256(record.path) == record.sha256
    assert link.read_bytes() != data  # the changed file is no longer the stored one
