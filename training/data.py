"""Find, check and load a training set: one folder per class, every file through `model.preprocess`.

Every file goes through the serving decode, `load_image`, with its bound: a file whose decode
would allocate more than `ImageLimits.max_decoded_bytes` is skipped with the reason, and the
decoding threads together hold at most `model.preprocess.DECODE_MEMORY` (a 16-bit or palette
PNG of 40 megapixels is reduced a strip at a time, not converted whole).

Class names come from the folder names, sorted, as `keras.utils.image_dataset_from_directory`
does, so "jedi" is 0 and "sith" is 1. Files that are not usable images are listed and skipped;
a missing or empty class folder, or other than two classes, is a `DatasetError`.

Two ways to hold the images, the same files, the same split and the same batches:

- in memory (`load_dataset`): every image decoded once into one (n, 200, 200, 3) uint8 array,
  120 KB an image (20,000 images: 2.4 GB);
- streamed (`load_dataset(..., stream=True)`): every file is decoded once to check it (so the
  same files are skipped and the split is the same), then only the paths are kept
  (`StreamedImages`) and `training_batches` / `to_tf_dataset` decode them again in parallel,
  epoch after epoch, with `load_image`; a `DecodedCache` keeps at most `cache_bytes` of them.

`choose_data_path` picks one for `--data-path auto`: memory while the decoded images would
take at most `MEMORY_SHARE` of the memory available beyond `TRAINING_RESERVE`, streamed beyond.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.architecture import CHANNELS, IMAGE_SIZE
from model.preprocess import ImageError, ImageLimits, load_image

log = logging.getLogger(__name__)

IMAGE_BYTES = IMAGE_SIZE[0] * IMAGE_SIZE[1] * CHANNELS  # one decoded image: 120,000 bytes
DATA_PATHS = ("auto", "memory", "stream")
# --data-path auto keeps the images in memory while, decoded, they take at most MEMORY_SHARE of
# the memory available when training starts beyond TRAINING_RESERVE. The in-memory path holds
# them twice (the whole set and its train/validation copies), and TensorFlow with the training
# step of the network peaks at about 1.4 GB whichever the path (benchmarks/RESULTS.md,
# training_memory): so a run in memory takes about half of what is available, or less.
MEMORY_SHARE = 0.25
TRAINING_RESERVE = 1_500_000_000
# The streamed path's cache of decoded images (--cache-mb), off by default: on the CPU,
# decoding an image costs about 1/35 of training on it, and a cache only serves the share of
# the set it holds (its size over the set's, under a shuffle); it pays where a GPU trains faster
# than the CPUs decode and a good share of the set fits.
DEFAULT_CACHE_BYTES = 0


class DatasetError(ValueError):
    """The data folder cannot be trained on; the message says why and what to do."""


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


class DecodedCache:
    """Decoded images kept in memory, at most `max_bytes` of them: the first ones stored stay.

    Nothing is evicted: the training set is shuffled anew each epoch, so every image is as
    likely to come next as any other and no eviction policy would hit more often (a share
    `max_bytes / set size` of the reads hit whichever images are kept); keeping the first
    costs no copies and no lock on reads.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("the cache size cannot be negative")
        self.capacity = max_bytes // IMAGE_BYTES
        self._images: dict[Path, np.ndarray] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0  # counted without a lock: near enough, for figures

    def get(self, path: Path) -> np.ndarray | None:
        image = self._images.get(path)
        if image is None:
            self.misses += 1
        else:
            self.hits += 1
        return image

    def put(self, path: Path, image: np.ndarray) -> None:
        if len(self._images) >= self.capacity:
            return
        with self._lock:
            if len(self._images) < self.capacity:
                self._images.setdefault(path, image)

    def __len__(self) -> int:
        return len(self._images)

    @property
    def nbytes(self) -> int:
        return len(self._images) * IMAGE_BYTES


class StreamedImages:
    """The images of a streamed `Dataset`: its files, decoded with `load_image` when read.

    Indexed like the in-memory array for reading (`images[i]`, `images[a:b]`, `len`, `shape`,
    `dtype`): a slice or a list of indices is decoded in threads and stacked, so what reads
    batches of the in-memory array (the detector's fit, the export check) reads these too.
    """

    dtype = np.dtype(np.uint8)

    def __init__(
        self,
        paths: Sequence[Path],
        limits: ImageLimits | None = None,
        cache: DecodedCache | None = None,
        workers: int | None = None,
    ) -> None:
        self.paths = list(paths)
        self.limits = limits or ImageLimits()
        self.cache = cache
        self.workers = workers or _default_workers()

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), *IMAGE_SIZE, CHANNELS)

    def read(self, index: int) -> np.ndarray:
        """Image `index`, from the cache or decoded; a file that can no longer be used (it
        changed or went since it was checked) is a `DatasetError`."""
        path = self.paths[index]
        if self.cache is not None:
            image = self.cache.get(path)
            if image is not None:
                return image
        try:
            image = load_image(path.read_bytes(), self.limits)
        except ImageError as error:
            raise DatasetError(f"{path} changed since it was checked: {error}") from None
        except OSError as error:
            raise DatasetError(
                f"{path} cannot be read any more: {error.strerror or error}"
            ) from None
        if self.cache is not None:
            self.cache.put(path, image)
        return image

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.read(int(key))
        indices = range(len(self))[key] if isinstance(key, slice) else [int(i) for i in key]
        if len(indices) == 0:
            return np.zeros((0, *IMAGE_SIZE, CHANNELS), dtype=np.uint8)
        with ThreadPoolExecutor(max_workers=min(self.workers, len(indices))) as pool:
            return np.stack(list(pool.map(self.read, indices)))

    def subset(self, index: Sequence[int]) -> StreamedImages:
        """The images at `index` (the same cache), still undecoded."""
        return StreamedImages(
            [self.paths[int(i)] for i in index], self.limits, self.cache, self.workers
        )

    @property
    def nbytes(self) -> int:
        """What the images would take decoded (none of them is held, but the cache's)."""
        return len(self.paths) * IMAGE_BYTES


@dataclass
class Dataset:
    """Images (n, 200, 200, 3) uint8, labels (n,) int, and what was skipped.

    `images` is the decoded array, or for a streamed dataset a `StreamedImages` that decodes
    its files when read."""

    images: np.ndarray | StreamedImages
    labels: np.ndarray
    paths: list[Path]
    class_names: tuple[str, ...]
    skipped: list[Skipped] = field(default_factory=list)
    data_path: DataPath | None = None  # how a training run chose to hold them, when it did

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

    @property
    def streamed(self) -> bool:
        return isinstance(self.images, StreamedImages)

    def _subset(self, index: np.ndarray) -> Dataset:
        images = self.images
        return Dataset(
            images.subset(index) if isinstance(images, StreamedImages) else images[index],
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
    *,
    stream: bool = False,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
) -> Dataset:
    """Decode every file of every class with the serving preprocessing; skip unusable ones.

    With `stream`, the decoded images are not kept (but `cache_bytes` of them, in a
    `DecodedCache`): the dataset holds the usable files, in the same order, as
    `StreamedImages`."""
    class_names, files = find_classes(data_dir)
    cache = DecodedCache(cache_bytes) if stream and cache_bytes >= IMAGE_BYTES else None
    dataset = _decode(files, class_names, limits, workers, on_skip, cache=cache, stream=stream)
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


def _default_workers() -> int:
    return min(8, (os.cpu_count() or 1) * 2)


def _decode(
    files: dict[str, list[Path]],
    class_names: tuple[str, ...],
    limits: ImageLimits | None,
    workers: int | None,
    on_skip: Callable[[Skipped], None] | None,
    *,
    cache: DecodedCache | None = None,
    stream: bool = False,
) -> Dataset:
    jobs = [(path, label) for label, name in enumerate(class_names) for path in files[name]]
    limits = limits or ImageLimits()
    workers = workers or _default_workers()
    # In memory, each image is written into one array as it is decoded (no list of arrays and
    # a stacked copy: the set is held once); streamed, it is checked and dropped (or cached).
    images = np.empty((0 if stream else len(jobs), *IMAGE_SIZE, CHANNELS), dtype=np.uint8)

    def decode(number: int) -> Skipped | None:
        path = jobs[number][0]
        try:
            image = load_image(path.read_bytes(), limits)
        except ImageError as error:
            return Skipped(path, str(error))
        except OSError as error:
            return Skipped(path, f"cannot read the file: {error.strerror or error}")
        if stream:
            if cache is not None:
                cache.put(path, image)
        else:
            images[number] = image
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(decode, range(len(jobs))))

    kept, labels, paths, skipped = [], [], [], []
    for number, ((path, label), result) in enumerate(zip(jobs, results, strict=True)):
        if result is not None:
            skipped.append(result)
            if on_skip is not None:
                on_skip(result)
            continue
        kept.append(number)
        labels.append(label)
        paths.append(path)
    if stream:
        held: np.ndarray | StreamedImages = StreamedImages(paths, limits, cache, workers)
    elif len(kept) == len(jobs):
        held = images
    else:  # move the usable images down, in place, over the skipped ones
        for place, number in enumerate(kept):
            if place != number:
                images[place] = images[number]
        held = images[: len(kept)]  # a view: the few slots left over are not worth a copy
    return Dataset(held, np.asarray(labels, dtype=np.int32), paths, class_names, skipped)


def to_tf_dataset(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int,
):
    """A `tf.data.Dataset` of float32 (images, labels) batches, one pass over `dataset` per
    iteration: shuffled anew each time (tf.data's seeded reshuffle) when `shuffle`, prefetched.

    Indices, not images, go through the shuffle: its buffer holds the whole set at 16 bytes an
    image, nothing is copied into TensorFlow, and a streamed dataset gives the batches of the
    same dataset in memory. Training uses `training_batches`.
    """
    import tensorflow as tf

    labels = np.asarray(dataset.labels)
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(labels), dtype=np.int64), labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return _finish(_fetch(ds, dataset.images, batch_size))


def training_batches(dataset: Dataset, batch_size: int, seed: int):
    """Endless float32 (images, labels) batches: epoch after epoch of `dataset`, epoch `e` in
    the order of a permutation drawn from `(seed, e)` alone, ending with its own last, smaller
    batch; fit it with `steps_per_epoch`.

    The order depends on nothing else, not on how many iterators were made before: Keras under
    a distribution strategy draws a batch to build the model, which moved tf.data's own
    reshuffle on by an epoch. So one device and several, in memory or streamed, see the same
    images in the same steps.
    """
    import tensorflow as tf

    labels = tf.constant(np.asarray(dataset.labels))
    n = len(dataset.labels)

    def epoch(number):
        keys = tf.random.stateless_uniform(
            [n], seed=tf.stack([tf.constant(seed, tf.int64), number])
        )
        order = tf.data.Dataset.from_tensor_slices(tf.argsort(keys))
        return _fetch(order.map(lambda i: (i, tf.gather(labels, i))), dataset.images, batch_size)

    return _finish(tf.data.Dataset.counter().flat_map(epoch))


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Steps in an epoch of `training_batches`: every image once, the last batch smaller."""
    return -(-images // batch_size)


def _fetch(ds, images: np.ndarray | StreamedImages, batch_size: int):
    """Batches of (uint8 images, labels) from a dataset of (index, label): decoded one by one
    in parallel (streamed), or gathered a batch at a time from the array (in memory)."""
    import tensorflow as tf

    shape = (*IMAGE_SIZE, CHANNELS)
    if isinstance(images, StreamedImages):

        def read(index: np.ndarray) -> np.ndarray:
            return images.read(int(index))

        def decode(index, label):
            image = tf.numpy_function(read, [index], tf.uint8, stateful=False)
            return tf.ensure_shape(image, shape), label

        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.batch(batch_size)

    def take(index: np.ndarray) -> np.ndarray:
        return images[index]

    def gather(index, label):
        batch = tf.numpy_function(take, [index], tf.uint8, stateful=False)
        return tf.ensure_shape(batch, (None, *shape)), label

    ds = ds.batch(batch_size)
    return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)


def _finish(ds):
    import tensorflow as tf

    ds = ds.map(
        lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.float32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


@dataclass(frozen=True)
class DataPath:
    """Which way a run holds its images (`memory` or `stream`), and why."""

    chosen: str
    asked: str
    images: int  # the files found, before checking them
    decoded_bytes: int  # what they would take decoded
    available_bytes: int | None  # memory available when the run started
    limit_bytes: int | None  # the most auto keeps in memory (choose_data_path)

    @property
    def reason(self) -> str:
        size = f"{self.images:,} images, {self.decoded_bytes / 1e9:.2f} GB decoded"
        if self.asked != "auto":
            return f"--data-path {self.asked} ({size})"
        if self.limit_bytes is None:
            return f"auto: {size}; the memory available is unknown, so in memory"
        side = "at most" if self.chosen == "memory" else "more than"
        return (
            f"auto: {size}, {side} the {self.limit_bytes / 1e9:.2f} GB kept for them in memory "
            f"({MEMORY_SHARE:.0%} of the {self.available_bytes / 1e9:.1f} GB available beyond "
            f"{TRAINING_RESERVE / 1e9:.1f} GB)"
        )

    def as_dict(self) -> dict:
        return {
            "chosen": self.chosen,
            "asked": self.asked,
            "images": self.images,
            "decoded_bytes": self.decoded_bytes,
            "available_bytes": self.available_bytes,
            "memory_limit_bytes": self.limit_bytes,
            "rule": RULE,
            "reason": self.reason,
        }


RULE = (
    f"auto streams when the decoded images (120 KB each) would take more than "
    f"{MEMORY_SHARE:.0%} of the memory available beyond {TRAINING_RESERVE / 1e9:.1f} GB"
)


def choose_data_path(asked: str, images: int, available: int | None = None) -> DataPath:
    """`memory` or `stream` for `images` files: as asked, or for `auto` by `RULE` (the memory
    `available` found with `available_memory` when not given)."""
    if asked not in DATA_PATHS:
        raise ValueError(f"--data-path must be one of {', '.join(DATA_PATHS)}, not {asked!r}")
    available = available_memory() if available is None else available
    limit = int(max(0, available - TRAINING_RESERVE) * MEMORY_SHARE) if available else None
    decoded = images * IMAGE_BYTES
    if asked == "auto":
        chosen = "stream" if limit is not None and decoded > limit else "memory"
    else:
        chosen = asked
    return DataPath(chosen, asked, images, decoded, available, limit)


def available_memory() -> int | None:
    """Bytes of memory this process may still use: the kernel's MemAvailable, or less under a
    cgroup (container) limit; None when neither can be read."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            found.append(max(0, int(limit) - usage))
        break
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            return None
    return min(found)
