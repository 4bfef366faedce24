"""Find, check and load a training set: one folder per class, every file through `model.preprocess`.

Class names come from the folder names, sorted, as `keras.utils.image_dataset_from_directory`
does, so "jedi" is 0 and "sith" is 1. Files that are not usable images are listed and skipped;
a missing or empty class folder, or other than two classes, is a `DatasetError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.architecture import IMAGE_SIZE
from model.preprocess import ImageError, ImageLimits, load_image

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """The data folder cannot be trained on; the message says why and what to do."""


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass
class Dataset:
    """Decoded images (n, 200, 200, 3) uint8, labels (n,) int, and what was skipped."""

    images: np.ndarray
    labels: np.ndarray
    paths: list[Path]
    class_names: tuple[str, ...]
    skipped: list[Skipped] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            name: int(np.sum(self.labels == index)) for index, name in enumerate(self.class_names)
        }

    def split(self, val_split: float, seed: int) -> tuple[Dataset, Dataset]:
        """Shuffle with `seed` and hold out the last `val_split` of the images for validation."""
        if not 0.0 < val_split < 1.0:
            raise DatasetError(f"--val-split must be between 0 and 1, not {val_split}")
        order = np.random.default_rng(seed).permutation(len(self.labels))
        n_val = max(1, round(len(order) * val_split))
        if n_val >= len(order):
            raise DatasetError("too few images to hold some out for validation")
        return self._subset(order[:-n_val]), self._subset(order[-n_val:])

    def _subset(self, index: np.ndarray) -> Dataset:
        return Dataset(
            self.images[index],
            self.labels[index],
            [self.paths[i] for i in index],
            self.class_names,
        )


def find_classes(data_dir: Path) -> tuple[tuple[str, ...], dict[str, list[Path]]]:
    """The class folders of `data_dir`, sorted, and the files in each."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir} is not a folder; it should hold jedi/ and sith/ folders")
    folders = sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) != 2:
        names = ", ".join(p.name for p in folders) or "none"
        raise DatasetError(
            f"{data_dir} must hold exactly two class folders (jedi/ and sith/); found {names}"
        )
    files = {folder.name: files_under(folder) for folder in folders}
    for name, paths in files.items():
        if not paths:
            raise DatasetError(f"the class folder {data_dir / name} is empty")
    return tuple(files), files


def load_dataset(
    data_dir: Path,
    limits: ImageLimits | None = None,
    workers: int | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
) -> Dataset:
    """Decode every file of every class with the serving preprocessing; skip unusable ones."""
    class_names, files = find_classes(data_dir)
    dataset = _decode(files, class_names, limits, workers, on_skip)
    for index, name in enumerate(class_names):
        if index not in dataset.labels:
            raise DatasetError(f"no usable image in {Path(data_dir) / name}")
    return dataset


def load_labelled(
    data_dir: Path,
    class_names: tuple[str, ...],
    limits: ImageLimits | None = None,
    workers: int | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
) -> Dataset:
    """Decode the images of `data_dir/<class>` for the given classes, as `load_dataset` does,
    but accept what a held-out set may be: no folder at all, a class folder missing or empty,
    no usable image. A folder that is not one of `class_names` is a `DatasetError`."""
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise DatasetError(f"{data_dir} is not a folder; it should hold jedi/ and sith/ folders")
    if data_dir.is_dir():
        others = sorted(
            p.name
            for p in data_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.name not in class_names
        )
        if others:
            raise DatasetError(
                f"{data_dir} holds folders that are not classes of the model "
                f"({', '.join(class_names)}): {', '.join(others)}"
            )
    files = {
        name: files_under(data_dir / name) if (data_dir / name).is_dir() else []
        for name in class_names
    }
    return _decode(files, class_names, limits, workers, on_skip)


def files_under(folder: Path) -> list[Path]:
    """Every file in `folder` and its sub-folders, sorted, hidden ones left out. Links are
    followed, into folders too (each real folder once); a broken link is listed, so that it
    is reported as unreadable rather than silently missing."""
    found, seen = [], set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link back up the tree
            dirs.clear()
            continue
        seen.add(real)
        for name in names:
            path = Path(root) / name
            if not name.startswith(".") and (path.is_file() or path.is_symlink()):
                found.append(path)
    return sorted(found)


def _decode(
    files: dict[str, list[Path]],
    class_names: tuple[str, ...],
    limits: ImageLimits | None,
    workers: int | None,
    on_skip: Callable[[Skipped], None] | None,
) -> Dataset:
    jobs = [(path, label) for label, name in enumerate(class_names) for path in files[name]]

    def decode(job: tuple[Path, int]) -> np.ndarray | Skipped:
        path, _ = job
        try:
            return load_image(path.read_bytes(), limits or ImageLimits())
        except ImageError as error:
            return Skipped(path, str(error))
        except OSError as error:
            return Skipped(path, f"cannot read the file: {error.strerror or error}")

    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(decode, jobs))

    images, labels, paths, skipped = [], [], [], []
    for (path, label), result in zip(jobs, results, strict=True):
        if isinstance(result, Skipped):
            skipped.append(result)
            if on_skip is not None:
                on_skip(result)
            continue
        images.append(result)
        labels.append(label)
        paths.append(path)
    stacked = np.stack(images) if images else np.zeros((0, *IMAGE_SIZE, 3), dtype=np.uint8)
    return Dataset(stacked, np.asarray(labels, dtype=np.int32), paths, class_names, skipped)


def to_tf_dataset(dataset: Dataset, batch_size: int, shuffle: bool, seed: int):
    """A `tf.data.Dataset` of float32 (images, labels): cached as uint8, shuffled, prefetched."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((dataset.images, dataset.labels)).cache()
    if shuffle:
        ds = ds.shuffle(len(dataset.labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(
        lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.float32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds.prefetch(tf.data.AUTOTUNE)
