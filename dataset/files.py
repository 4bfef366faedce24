"""Image files on disk, content-addressed: `DATA_DIR/images/<sha[:2]>/<sha256>.<ext>`.

A file's name is the SHA-256 of its bytes, so the same picture is one file however often it is
posted, and a file is never rewritten: it is written once, atomically (a temporary file beside
it, fsynced, then renamed), so a reader or a crash never sees half an image. The extension comes
from the format Pillow detects, not from the name it was posted under.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dataset.records import DatasetError
from model.bundle import fsync
from model.preprocess import IMAGE_FORMATS, ImageError, ImageLimits, decode

IMAGES_FOLDER = "images"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageInfo:
    format: str  # Pillow's name: JPEG, PNG, GIF, WEBP, BMP
    width: int  # upright (after the EXIF orientation), as the network sees it
    height: int

    @property
    def extension(self) -> str:
        return IMAGE_FORMATS[self.format][1][0]


def inspect(data: bytes, limits: ImageLimits | None = None) -> ImageInfo:
    """The format and upright size of `data`, decoded once by the serving decode (bounded, as
    training will decode it); anything that is not a usable image is a `DatasetError` with the
    reason fit to show."""
    try:
        decoded = decode(data, limits or ImageLimits())
    except ImageError as error:
        raise DatasetError(str(error)) from None
    detected = decoded.format
    if detected == "MPO":  # what some phones write: a JPEG with more frames after the first
        detected = "JPEG"
    if detected not in IMAGE_FORMATS:  # pragma: no cover - decode accepted it
        raise DatasetError(f"unsupported image format {detected}")
    return ImageInfo(detected, decoded.width, decoded.height)


def image_path(images: Path, sha256: str, image_format: str) -> Path:
    """Where the image with this hash and format lives under the `images` folder."""
    return Path(images) / sha256[:2] / f"{sha256}{IMAGE_FORMATS[image_format][1][0]}"


def write_once(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically unless the same bytes are already there; True if this
    call wrote it. A file that was changed since (its bytes no longer hash to its name) is
    written again, as a new file: whatever still links the changed one keeps it."""
    if holds(path, data):
        return False
    if path.exists():
        log.warning("image file %s was changed since it was stored: written again", path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp made it private; the trainer may run as another user
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync(path.parent)
    return True


def holds(path: Path, data: bytes) -> bool:
    """Whether the file at `path` holds exactly `data` (reading at most one byte more)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(data) + 1) == data
    except (FileNotFoundError, IsADirectoryError):
        return False


def remove(path: Path) -> bool:
    """Delete an image file; True if it was there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def export_files(
    folder: Path, images: list[tuple[str, Path]], class_names: tuple[str, ...]
) -> dict[str, int]:
    """Write `(label, path)` files as `folder/<label>/<name>`, staged beside `folder` and
    renamed into place; the count per class. Copies, never links: writing into an exported file
    must not change the stored one."""
    folder = Path(folder).expanduser().absolute()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DatasetError(f"{folder} is not empty: export into a new or empty folder")
    counts = dict.fromkeys(class_names, 0)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.export-", dir=folder.parent))
    except OSError as error:
        raise DatasetError(f"cannot export to {folder}: {error.strerror or error}") from None
    try:
        for name in class_names:
            (staging / name).mkdir()
        for label, path in images:
            if label not in counts:  # a label from other class names: not this set
                continue
            try:
                _copy(path, staging / label / path.name)
            except FileNotFoundError:
                log.warning("image file %s is missing: not exported", path)
                continue
            counts[label] += 1
        os.chmod(staging, 0o755)  # mkdtemp made it private
        os.rename(staging, folder)  # replaces `folder` only if it is (still) empty
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DatasetError(f"cannot export to {folder}: {error.strerror or error}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts


def _copy(source: Path, target: Path) -> None:
    """A copy of its own (a hard link would share the stored file's bytes)."""
    shutil.copyfile(source, target)
