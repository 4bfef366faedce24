"""Importing a folder of class folders (`jedisith-dataset import`): each image with one vote."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dataset.records import DatasetError, ImportReport

if TYPE_CHECKING:
    from dataset.store import DatasetStore


def import_folder(
    store: DatasetStore,
    folder: Path,
    *,
    user_id: int,
    guild_id: int | None,
    source: str,
    moderator: bool,
) -> ImportReport:
    """Add every image of `folder/<class>/` (any depth) with a vote by `user_id` for its
    folder's class. Files that are not usable images are skipped with the reason; a folder
    that is not a class is a `DatasetError` naming it."""
    folders = " and ".join(f"{name}/" for name in store.class_names)
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder; it should hold {folders}")
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
    added = already = 0
    seen: dict[str, str] = {}  # sha256 -> its class in this import
    for class_folder in classes:
        label = class_folder.name
        for path in _files_in(class_folder):
            try:
                record = store.add_image(path.read_bytes(), guild_id=guild_id, filename=path.name)
            except OSError as error:
                skipped.append((str(path), f"cannot read the file: {error.strerror or error}"))
                continue
            except DatasetError as error:
                skipped.append((str(path), str(error)))
                continue
            if seen.setdefault(record.sha256, label) != label:
                other = seen[record.sha256]
                skipped.append((str(path), f"the same image is in {other}/; kept as {other}"))
                continue
            store.vote(
                record.sha256,
                user_id=user_id,
                guild_id=guild_id,
                label=label,
                source=source,
                moderator=moderator,
            )
            added, already = (added + 1, already) if record.new else (added, already + 1)
    return ImportReport(added=added, already=already, skipped=skipped)


def _files_in(folder: Path) -> list[Path]:
    """The files under `folder`, any depth, hidden ones left out (as `training.data` does)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
