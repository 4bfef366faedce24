"""A model folder: what is in it, how to read it consistently, and how to publish one atomically.

A model is `model.keras` (the training network), `model.tflite` (the inference graph, with a
`classify` and a `features` signature), `detector.npz` (the out-of-distribution detector; absent
from models made before it existed) and `model.json` (metadata, including the SHA-256 of every
model file), with the training run's plots beside them. A server's head (`model.head`) is a
model of kind "head": `head.npz`, `head.json` and a `model.json` naming the network it reads.

A published `MODEL_PATH` holds numbered versions, as TensorFlow Serving's model folders do:
`MODEL_PATH/1`, `MODEL_PATH/2`, ... (each written once, never changed), and `MODEL_PATH/CURRENT`,
a small file naming the current one, replaced in one `rename` (after an fsync). A reader resolves
CURRENT and reads that version, so it never sees a missing or half-written model, and a publisher
killed at any instant leaves a servable one; the last `KEEP_VERSIONS` are kept, so rolling back is
rewriting CURRENT. A flat folder (the model files right in it, as the shipped model and folders
made before versions are) is still read as it is; publishing into it starts its versions.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
DETECTOR_FILE = "detector.npz"
HEAD_ARRAYS_FILE = "head.npz"  # a server's head (model.head): its arrays
HEAD_FILE = "head.json"  # and what they are
MODEL_FILES = (KERAS_FILE, TFLITE_FILE, DETECTOR_FILE, HEAD_ARRAYS_FILE, HEAD_FILE)
"""The files hashed in model.json when present (a network's, or a server's head's)."""
CURRENT_FILE = "CURRENT"  # names the current version of a versioned MODEL_PATH
KEEP_VERSIONS = 5
METADATA_FILE = "model.json"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"


class ModelError(RuntimeError):
    """A model folder that is missing, incomplete or unreadable; the message says which."""


@dataclass(frozen=True)
class ModelInfo:
    """The metadata of a model folder (`model.json`)."""

    class_names: tuple[str, str]
    image_size: tuple[int, int]
    parameters: int
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        try:
            class_names = tuple(str(name) for name in data["class_names"])
            image_size = tuple(int(n) for n in data["image_size"])
            parameters = int(data["parameters"])
            files = {str(k): str(v) for k, v in data.get("files", {}).items()}
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"model.json is missing or has a bad field: {error}") from None
        if len(class_names) != 2 or len(image_size) != 2:
            raise ModelError("model.json must name two classes and a 2-number image size")
        return cls(class_names, image_size, parameters, files, data)  # type: ignore[arg-type]

    @property
    def positive_class(self) -> str:
        """The class whose probability the network outputs (the second, sorted: 'sith')."""
        return self.class_names[1]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_dir(folder: Path) -> Path:
    """The folder holding the current model's files: the version CURRENT names, or `folder`
    itself when it is flat."""
    folder = Path(folder)
    try:
        named = (folder / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return folder
    except OSError as error:
        raise ModelError(f"cannot read {folder / CURRENT_FILE}: {error}") from None
    if not named.isdigit():
        raise ModelError(f"{folder / CURRENT_FILE} does not name a version: {named[:40]!r}")
    return folder / named


def versions(folder: Path) -> list[int]:
    """The version numbers published in `folder`, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir())


def current_version(folder: Path) -> int | None:
    """The version CURRENT names; None for a flat folder."""
    resolved = model_dir(folder)
    return int(resolved.name) if resolved != Path(folder) else None


def read_info(folder: Path) -> ModelInfo:
    """Read and validate the current `model.json` of `folder`."""
    path = model_dir(folder) / METADATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no model at {folder}: {METADATA_FILE} is missing") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} is not a JSON object")
    return ModelInfo.from_dict(data)


def read_model_file(folder: Path, name: str, attempts: int = 5) -> tuple[ModelInfo, bytes]:
    """Read `model.json` and the model file `name` as one consistent pair."""
    info, files = read_model_files(folder, name, attempts=attempts)
    return info, files[name]


def read_model_files(
    folder: Path, name: str, *, optional: tuple[str, ...] = (), attempts: int = 5
) -> tuple[ModelInfo, dict[str, bytes]]:
    """Read `model.json`, the model file `name` and each `optional` file that `model.json`
    lists, as one consistent set.

    If a publish swaps the folder between the reads, a hash does not match and the read is
    retried; a file that never matches its recorded hash is an error.
    """
    folder = Path(folder)
    last_error: Exception | None = None
    for attempt in range(attempts):
        try:
            version = model_dir(folder)  # a version is never rewritten: read it whole
            info = read_info(version)
            wanted = [name, *(extra for extra in optional if extra in info.files)]
            files = {item: (version / item).read_bytes() for item in wanted}
        except (ModelError, OSError) as error:
            last_error = error
        else:
            wrong = [
                item
                for item, data in files.items()
                if info.files.get(item) not in (None, sha256(data))
            ]
            if not wrong:
                return info, files
            last_error = ModelError(
                f"{folder / wrong[0]} does not match the hash in {METADATA_FILE}"
            )
        time.sleep(0.05 * (attempt + 1))
    if isinstance(last_error, FileNotFoundError):
        missing = Path(last_error.filename or name).name
        raise ModelError(f"no model at {folder}: {missing} is missing") from None
    if isinstance(last_error, ModelError):
        raise last_error
    raise ModelError(f"cannot read the model in {folder}: {last_error}")


def publish_stamp(folder: Path) -> tuple[int, int, int] | None:
    """A cheap value that changes whenever a model is published into `folder` (or rolled back)."""
    folder = Path(folder)
    try:
        pointer = folder / CURRENT_FILE
        st = pointer.stat() if pointer.exists() else (folder / METADATA_FILE).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@contextmanager
def staging_folder(destination: Path) -> Iterator[Path]:
    """A fresh folder beside `destination` to write a model into; removed if the block fails."""
    destination = _beside(destination)
    for folder in (destination.parent, *destination.parent.parents):
        if folder.exists() and not folder.is_dir():  # mkdir would say "File exists"
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(folder))
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.staging-", dir=destination.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish(staging: Path, destination: Path, keep: int = KEEP_VERSIONS) -> Path:
    """Make the complete model folder `staging` the current version of `destination`.

    Before the swap, `model.json` is given the SHA-256 of every model file. `staging` becomes
    `destination/<n+1>`; then CURRENT is replaced in one rename. Versions beyond the last
    `keep` (never the current one) are removed afterwards, and so are the files of a flat
    folder once CURRENT has replaced them.
    """
    staging, destination = Path(staging), _beside(destination)
    seal(staging)
    for path in staging.iterdir():
        fsync(path)
    os.chmod(staging, 0o755)  # mkdtemp made it private; a model folder is read by other users
    fsync(staging)

    destination.mkdir(parents=True, exist_ok=True)
    flat = (destination / METADATA_FILE).exists() and not (destination / CURRENT_FILE).exists()
    number = max(versions(destination), default=0) + 1
    os.rename(staging, destination / str(number))
    fsync(destination)
    set_current(destination, number)
    if flat:
        _remove_flat_files(destination)
    _remove_old_versions(destination, keep)
    log.info("published model version %d to %s", number, destination)
    return destination


def seal(folder: Path) -> None:
    """Record the SHA-256 of every model file in `folder/model.json` (as `publish` does before
    its swap), for a folder whose files were rewritten in place (a re-export)."""
    meta_path = Path(folder) / METADATA_FILE
    metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    metadata["files"] = {
        name: sha256((Path(folder) / name).read_bytes())
        for name in MODEL_FILES
        if (Path(folder) / name).exists()
    }
    write_text_atomic(meta_path, json.dumps(metadata, indent=2, sort_keys=True) + "\n")


def set_current(folder: Path, number: int) -> None:
    """Make version `number` of `folder` the current one, in one rename (a rollback, too)."""
    folder = Path(folder)
    if not (folder / str(number) / METADATA_FILE).is_file():
        raise ModelError(f"{folder} has no version {number}")
    write_text_atomic(folder / CURRENT_FILE, f"{number}\n")
    fsync(folder)


def _beside(destination: Path) -> Path:
    destination = Path(destination).expanduser()
    return destination.absolute().parent.resolve() / destination.name


def _remove_flat_files(folder: Path) -> None:
    """The files of a flat model folder, now that CURRENT names a version instead."""
    for path in folder.iterdir():
        if path.is_file() and path.name != CURRENT_FILE:
            with contextlib.suppress(OSError):
                path.unlink()


def _remove_old_versions(folder: Path, keep: int) -> None:
    current = current_version(folder)
    for number in versions(folder)[: -max(keep, 1)]:
        if number != current:
            shutil.rmtree(folder / str(number), ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename: readers see the old file or the new one, even
    after a crash (the new file is on disk before the rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def fsync(path: Path) -> None:
    """Flush a file, or a folder's entries (a rename in it), to disk; a no-op where a path
    cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
