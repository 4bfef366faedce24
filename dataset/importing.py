"""Importing a folder of class folders (`jedisith-dataset import`): each image with one vote.

A file is measured before it is read, and at most the size limit is read (a sparse file that
claims gigabytes costs nothing); a link that leads out of the folder is skipped, so an import
reads only what lies under the folder it was given.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from dataset.records import DatasetError, ImportReport, megabytes
from model.preprocess import ImageLimits

if TYPE_CHECKING:
    from dataset.store import DatasetStore

OUTSIDE = "a link that leads out of the folder: not followed"


def import_folder(
    store: DatasetStore,
    folder: Path,
    *,
    user_id: int,
    guild_id: int | None,
    source: str,
    moderator: bool,
    max_bytes: int | None = None,
) -> ImportReport:
    """Add every image of `folder/<class>/` (any depth) with a vote by `user_id` for its
    folder's class, each image with its vote in one transaction. Files that are not usable
    images (or larger than `max_bytes`, by default the store's limit) are skipped with the
    reason; a folder that is not a class is a `DatasetError` naming it."""
    limit = max_bytes or ImageLimits().max_bytes
    folders = " and ".join(f"{name}/" for name in store.class_names)
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder; it should hold {folders}")
    root = folder.resolve()
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    classes = [p for p in entries if p.is_dir()]
    unknown = [p.name for p in classes if p.name not in store.class_names]
    if unknown:
        raise DatasetError(
            f"{folder} has folders that are not classes: {', '.join(unknown)} "
            f"(the classes are {folders})"
        )
    if not classes:
        raise DatasetError(f"{folder} holds no class folder; it should hold {folders}")
    skipped = [(str(p), "not in a class folder") for p in entries if not p.is_dir()]
    skipped += [(str(p), OUTSIDE) for p in classes if not p.resolve().is_relative_to(root)]
    added = already = 0
    seen: dict[str, str] = {}  # sha256 -> its class in this import
    for class_folder in classes:
        if not class_folder.resolve().is_relative_to(root):
            continue
        label = class_folder.name
        for path in _files_in(class_folder):
            try:
                data = read_within(path, root, limit)
                sha256 = hashlib.sha256(data).hexdigest()
                if seen.get(sha256, label) != label:
                    other = seen[sha256]
                    raise DatasetError(f"the same image is in {other}/; kept as {other}")
                record, _ = store.add_image_and_vote(
                    data,
                    guild_id=guild_id,
                    user_id=user_id,
                    label=label,
                    source=source,
                    moderator=moderator,
                    filename=path.name,
                )
            except OSError as error:
                skipped.append((str(path), f"cannot read the file: {error.strerror or error}"))
                continue
            except DatasetError as error:
                skipped.append((str(path), str(error)))
                continue
            seen[sha256] = label
            added, already = (added + 1, already) if record.new else (added, already + 1)
    return ImportReport(added=added, already=already, skipped=skipped)


def read_within(path: Path, root: Path, limit: int) -> bytes:
    """The bytes of the regular file `path`, which must lie under `root` once its links are
    followed; a `DatasetError` when it does not, or when it is larger than `limit` (measured
    before reading; at most `limit` bytes are ever read)."""
    real = path.resolve()
    if not real.is_relative_to(root):
        raise DatasetError(OUTSIDE)
    with open(os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise DatasetError("not a regular file")
        if info.st_size > limit:
            raise DatasetError(_too_large(info.st_size, limit))
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew after it was measured
        raise DatasetError(_too_large(len(data), limit))
    return data


def _too_large(size: int, limit: int) -> str:
    return f"the file is {megabytes(size)}; the limit is {megabytes(limit)}"


def _files_in(folder: Path) -> list[Path]:
    """The files under `folder`, any depth, hidden ones left out (as `training.data` does)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
