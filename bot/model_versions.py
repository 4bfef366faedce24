"""Which model folder the bot serves, where a model retrained from Discord is published, and how
a version is described to a moderator (`!model`, `!rollback`).

`MODEL_PATH` is served as it is. The shipped model (the default `MODEL_PATH`) is part of the
installed package and is never written to, so models retrained from Discord are published into
`DATA_DIR/models` instead: its first version is a copy of the shipped model (so `!rollback 1`
always brings it back), and once that folder has a current version the bot serves it, at this
start and every later one.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.bundle import (
    CURRENT_FILE,
    DEFAULT_MODEL_DIR,
    ModelError,
    current_version,
    model_dir,
    publish,
    read_info,
    staging_folder,
    versions,
)
from model.runtime import Classifier

if TYPE_CHECKING:
    from model.worker import ModelWorker

MODELS_FOLDER = "models"  # under DATA_DIR


def loader_for(folder: Path, backend: str) -> Callable[[], Classifier]:
    """How the bot's worker loads (and reloads) the model in `folder`."""
    return functools.partial(Classifier.load, Path(folder), backend)


def serve(worker: ModelWorker, folder: Path, backend: str) -> bool:
    """Make `worker` serve the model in `folder` (a training published there, or another
    process did); True if it switched, False if it already watched `folder`, whose hot reload
    picks up every new version."""
    watched = worker.folder
    if watched is not None and Path(watched).resolve() == Path(folder).resolve():
        return False
    worker.follow(folder, loader_for(folder, backend))
    return True


def retrained_folder(model_path: Path, data_dir: Path) -> Path:
    """Where `!retrain` publishes: MODEL_PATH, unless that is the shipped model."""
    if Path(model_path).resolve() == DEFAULT_MODEL_DIR.resolve():
        return Path(data_dir) / MODELS_FOLDER
    return Path(model_path)


def serving_folder(model_path: Path, data_dir: Path) -> Path:
    """The folder to serve: MODEL_PATH, or `DATA_DIR/models` once a retrained model is there."""
    target = retrained_folder(model_path, data_dir)
    if target != Path(model_path) and (target / CURRENT_FILE).is_file():
        return target
    return Path(model_path)


def prepare_retrained_folder(model_path: Path, data_dir: Path) -> Path:
    """`retrained_folder`, holding at least one version: the shipped model is copied in as its
    first version when it is new (published atomically, like any other version)."""
    target = retrained_folder(model_path, data_dir)
    if target == Path(model_path) or versions(target):
        return target
    source = model_dir(Path(model_path))
    with staging_folder(target / "1") as staging:
        for path in source.iterdir():
            if path.is_file():
                shutil.copy2(path, staging / path.name)
        publish(staging, target)
    return target


@dataclass(frozen=True)
class VersionInfo:
    """What `!model` says about one version of a model folder."""

    number: int | None  # None: a flat folder, which has no versions
    created: datetime | None
    notes: str
    counts: dict[str, int]
    val_accuracy: float | None
    holdout_accuracy: float | None
    current: bool

    def line(self) -> str:
        name = f"version {self.number}" if self.number is not None else "the model"
        parts = [f"**{name}**" + (" (current)" if self.current else "")]
        if self.created is not None:
            parts.append(f"made <t:{int(self.created.timestamp())}:R>")
        if self.counts:
            parts.append(" + ".join(f"{n} {label}" for label, n in self.counts.items()))
        if self.holdout_accuracy is not None:
            parts.append(f"holdout accuracy {self.holdout_accuracy:.1%}")
        elif self.val_accuracy is not None:
            parts.append(f"validation accuracy {self.val_accuracy:.1%}")
        text = " - ".join(parts)
        return f"{text}\n  -# {self.notes[:160]}" if self.notes else text


def describe(folder: Path, number: int | None, current: int | None) -> VersionInfo:
    """The `VersionInfo` of version `number` of `folder` (None: the flat folder itself)."""
    path = Path(folder) if number is None else Path(folder) / str(number)
    raw: dict[str, Any] = read_info(path).raw
    created = None
    if raw.get("created"):
        try:
            created = datetime.fromisoformat(str(raw["created"]))
        except ValueError:
            created = None
    dataset = raw.get("dataset") or {}
    validation = (raw.get("metrics") or {}).get("validation") or {}
    retrain = raw.get("retrain") or {}
    return VersionInfo(
        number=number,
        created=created,
        notes=str(dataset.get("notes") or raw.get("notes") or ""),
        counts={str(k): int(v) for k, v in (dataset.get("counts") or {}).items()},
        val_accuracy=_float(validation.get("accuracy")),
        holdout_accuracy=_float((retrain.get("after") or {}).get("accuracy")),
        current=number == current,
    )


def history(folder: Path, limit: int = 5) -> list[VersionInfo]:
    """The current version of `folder` first, then the newest others, `limit` in all."""
    folder = Path(folder)
    current = current_version(folder)
    numbers: list[int | None] = list(versions(folder))
    if current is None:
        return [describe(folder, None, None)]
    ordered = [current, *(n for n in reversed(numbers) if n != current)][:limit]
    described = []
    for number in ordered:
        try:
            described.append(describe(folder, number, current))
        except ModelError:
            continue  # a version being removed as we read: leave it out
    return described


def rollback_target(folder: Path, wanted: int | None) -> int:
    """The version `!rollback [N]` makes current: N, or the newest one before the current one."""
    folder = Path(folder)
    current = current_version(folder)
    numbers = versions(folder)
    if current is None or len(numbers) < 2:
        raise ModelError("there is no earlier version to go back to")
    if wanted is None:
        earlier = [n for n in numbers if n < current]
        if not earlier:
            raise ModelError(f"version {current} is the oldest one kept")
        return earlier[-1]
    if wanted not in numbers:
        kept = ", ".join(str(n) for n in numbers)
        raise ModelError(f"there is no version {wanted}; the versions kept are {kept}")
    if wanted == current:
        raise ModelError(f"version {wanted} is already the current one")
    return wanted


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
