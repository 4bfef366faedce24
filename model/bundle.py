"""A model folder: what is in it, how to read it consistently, and how to publish one atomically.

A model folder holds `model.keras` (the training network), `model.tflite` (the inference graph,
with a `classify` and a `features` signature), `detector.npz` (the out-of-distribution detector;
absent from folders made before it existed) and `model.json` (metadata, including the SHA-256 of
every model file). Training writes a whole folder next to the destination and swaps it in with
two renames, so a reader sees the old folder or the new one, never a mix: the hashes in
`model.json` let a reader detect the instant between the two renames and try again.
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
MODEL_FILES = (KERAS_FILE, TFLITE_FILE, DETECTOR_FILE)  # hashed in model.json when present
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


def read_info(folder: Path) -> ModelInfo:
    """Read and validate `folder/model.json`."""
    path = Path(folder) / METADATA_FILE
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
            info = read_info(folder)
            wanted = [name, *(extra for extra in optional if extra in info.files)]
            files = {item: (folder / item).read_bytes() for item in wanted}
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
    """A cheap value that changes whenever a new model is published into `folder`."""
    try:
        st = (Path(folder) / METADATA_FILE).stat()
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


def publish(staging: Path, destination: Path) -> Path:
    """Make the complete model folder `staging` the one at `destination`, in one step.

    Before the swap, `model.json` is given the SHA-256 of every model file. `staging` becomes a
    version folder beside `destination` (`.NAME.v<time>`), and `destination` is a symbolic link
    to it, replaced with one `rename`: at every instant `destination` is the old model or the
    new one, whenever the publisher is killed. Older version folders are removed afterwards.
    A `destination` that is still a real folder (made before versions) is moved aside first:
    the one instant, once, that nothing is there.
    """
    staging, destination = Path(staging), _beside(destination)
    meta_path = staging / METADATA_FILE
    metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    metadata["files"] = {
        name: sha256((staging / name).read_bytes())
        for name in MODEL_FILES
        if (staging / name).exists()
    }
    write_text_atomic(meta_path, json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    for path in staging.iterdir():
        _fsync(path)
    os.chmod(staging, 0o755)  # mkdtemp made it private; a model folder is read by other users
    _fsync(staging)

    version = destination.parent / f".{destination.name}.v{time.time_ns()}"
    os.rename(staging, version)
    link = destination.parent / f".{destination.name}.link-{os.getpid()}-{time.time_ns()}"
    os.symlink(version.name, link)  # relative: the folder and its versions can move together
    if destination.is_dir() and not destination.is_symlink():
        os.rename(destination, destination.parent / f".{destination.name}.v0-unversioned")
    os.replace(link, destination)
    _fsync(destination.parent)
    _remove_old_versions(destination)
    log.info("published model to %s", destination)
    return destination


def _beside(destination: Path) -> Path:
    """`destination` made absolute without following it: it may be a link to a version."""
    destination = Path(destination).expanduser()
    return destination.absolute().parent.resolve() / destination.name


def _remove_old_versions(destination: Path) -> None:
    """Remove the version folders (and stray links) that `destination` no longer points at."""
    current = os.readlink(destination) if destination.is_symlink() else None
    for path in destination.parent.glob(f".{destination.name}.*"):
        kind = path.name[len(destination.name) + 2 :]
        if kind.startswith("v") and path.name != current:
            shutil.rmtree(path, ignore_errors=True)
        elif kind.startswith("link-") and path.is_symlink():
            with contextlib.suppress(OSError):
                path.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename: readers see the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
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
