"""Images that are surely neither Jedi nor Sith, for Outlier Exposure during training.

Outlier Exposure (Hendrycks, Mazeika and Dietterich, ICLR 2019) adds such images to training
and asks the network to be unsure on them: binary cross-entropy to the target 0.5, weighted by
`OUTLIER_WEIGHT` (the paper's lambda, 0.5) against the loss of the labelled images. Outliers are
never labelled Jedi or Sith: they are not part of the dataset, its split, its counts, the
validation, the calibration or the detector's reference bank.

`--outliers generated` (`GENERATED`) draws them here, from `seed`:

* ``noise``: uniform, Gaussian, blocky and cloud-like noise, in colour or grey;
* ``gradients``: single colours and linear or radial gradients;
* ``text``: words in matplotlib's bundled DejaVu fonts on a plain background;
* ``plots``: matplotlib line, bar, scatter and histogram plots;
* ``scenes``: the synthetic set's own backgrounds (`training.synthetic_backgrounds`) with no
  figure and no blade;
* ``package photos``: crops of the photographs that installed Debian packages ship
  (`PHOTO_FOLDERS`: KDE's plasma wallpapers, palapeli's puzzle photos), when present.

Never used here: scikit-image's images (kept to judge the project from outside), matplotlib's
sample photograph and the Debian wallpapers under /usr/share/backgrounds (`benchmarks.ood`'s
held-out photo groups). Nothing is downloaded. `--outliers DIR` takes every image under DIR
instead, decoded as the bot decodes uploads; `--outliers none` trains without outliers.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from model.architecture import IMAGE_SIZE

GENERATED = "generated"
NONE = "none"
OUTLIER_TARGET = 0.5  # the score asked of an outlier: neither class
OUTLIER_WEIGHT = 0.5  # lambda of Outlier Exposure
DEFAULT_OUTLIERS = 1200  # images in the pool; each epoch draws its outlier batches from it
OUTLIER_SHARE = 0.25  # outliers per labelled image in a training batch (8 with 32)

KINDS: tuple[str, ...] = ("noise", "gradients", "text", "plots", "scenes", "package photos")
SHARES = {"noise": 1, "gradients": 1, "text": 1, "plots": 1, "scenes": 1, "package photos": 3}

# Folders of images (photographs, renders, textures) shipped by Debian packages, by package.
PACKAGE_FOLDERS: dict[str, Path] = {
    "plasma-workspace-wallpapers": Path("/usr/share/wallpapers"),  # photos and renders
    "palapeli-data": Path("/usr/share/palapeli"),  # puzzle photos and textures
}
MAX_PACKAGE_IMAGES = 64  # distinct source images read at most (crops come from them)

Outlier = Callable[[np.random.Generator], Image.Image]


def load_outliers(source: str, count: int = DEFAULT_OUTLIERS, seed: int = 0) -> np.ndarray:
    """The outlier pool for `--outliers SOURCE`: (n, 200, 200, 3) uint8, empty for `none`.

    `generated` gives `count` images, each kind of `KINDS` in its `SHARES` (3/8 package
    photos, their share going to the other kinds when no package is installed); a folder gives
    every image under it that decodes."""
    if source == NONE:
        return np.zeros((0, *IMAGE_SIZE, 3), np.uint8)
    if source == GENERATED:
        return generated_outliers(count, seed)
    return folder_outliers(Path(source))


def generated_outliers(count: int, seed: int = 0) -> np.ndarray:
    """`count` outliers, image `i` of a kind drawn from a generator seeded with (seed, kind, i)."""
    photos = package_images()
    makers: dict[str, Outlier] = dict(_MAKERS)
    if photos:
        makers["package photos"] = _photo_maker(photos)
    kinds = [kind for kind in KINDS if kind in makers for _ in range(SHARES[kind])]
    images = np.empty((count, *IMAGE_SIZE, 3), np.uint8)
    for i in range(count):
        kind = kinds[i % len(kinds)]
        rng = np.random.default_rng((seed, KINDS.index(kind), i))
        images[i] = _as_input(makers[kind](rng))
    return images


def outlier_groups(per_kind: int, seed: int) -> dict[str, np.ndarray]:
    """`per_kind` outliers of each kind of `KINDS` (package photos when installed), by kind:
    what the combined detector is tuned on. Image `i` of a kind is drawn from a generator
    seeded with (seed, kind, i), as in `generated_outliers`; pass another seed than training's
    for images it did not see."""
    makers: dict[str, Outlier] = dict(_MAKERS)
    photos = package_images()
    if photos:
        makers["package photos"] = _photo_maker(photos)
    return {
        kind: np.stack(
            [
                _as_input(makers[kind](np.random.default_rng((seed, KINDS.index(kind), i))))
                for i in range(per_kind)
            ]
        )
        for kind in KINDS
        if kind in makers
    }


def folder_outliers(folder: Path) -> np.ndarray:
    """Every image under `folder` that decodes, as the network's input."""
    from model.preprocess import ImageError, load_image

    if not folder.is_dir():
        raise ValueError(f"--outliers: {folder} is neither a folder, {GENERATED!r} nor {NONE!r}")
    images = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            images.append(load_image(path.read_bytes()))
        except (ImageError, OSError):
            continue
    if not images:
        raise ValueError(f"--outliers: no image under {folder} decodes")
    return np.stack(images)


def package_images() -> list[Path]:
    """The JPEG and PNG images of `PACKAGE_FOLDERS` that are installed, one file per wallpaper
    (its largest file), at most `MAX_PACKAGE_IMAGES`, in a fixed order."""
    found: dict[Path, Path] = {}
    for folder in PACKAGE_FOLDERS.values():
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() not in (".jpg", ".jpeg", ".png") or not path.is_file():
                continue
            if path.stem == "screenshot":  # a wallpaper's preview: the same picture again
                continue
            owner = path.parent.parent if path.parent.name.startswith("images") else path
            if owner not in found or path.stat().st_size > found[owner].stat().st_size:
                found[owner] = path
    return sorted(found.values())[:MAX_PACKAGE_IMAGES]


# --------------------------------------------------------------------------- the kinds


def _as_input(image: Image.Image) -> np.ndarray:
    """The network's input from an RGB image, as `model.preprocess.prepare` makes it."""
    from model.preprocess import prepare

    return prepare(image.convert("RGB"))


def _noise(rng: np.random.Generator) -> Image.Image:
    side = int(rng.choice([2, 4, 8, 25, 50, 200]))
    channels = 1 if rng.random() < 0.3 else 3
    if rng.random() < 0.5:
        small = rng.uniform(0, 255, (side, side, channels))
    else:
        small = rng.normal(rng.uniform(40, 215), rng.uniform(10, 80), (side, side, channels))
    if rng.random() < 0.5:  # cloud-like: coarse noise under fine noise
        small = small + rng.normal(0, rng.uniform(5, 40), small.shape)
    array = np.clip(small, 0, 255).astype(np.uint8)
    image = Image.fromarray(array[..., 0] if channels == 1 else array)
    smooth = Image.Resampling.BICUBIC if rng.random() < 0.5 else Image.Resampling.NEAREST
    return image.resize(IMAGE_SIZE[::-1], smooth)


def _gradient(rng: np.random.Generator) -> Image.Image:
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    y, x = np.mgrid[-1 : 1 : complex(0, IMAGE_SIZE[0]), -1 : 1 : complex(0, IMAGE_SIZE[1])]
    kind = int(rng.integers(3))
    if kind == 0:
        t = np.zeros_like(x)
    elif kind == 1:
        angle = rng.uniform(0, 2 * math.pi)
        t = (np.cos(angle) * x + np.sin(angle) * y + 1.5) / 3
    else:
        cx, cy = rng.uniform(-1, 1, 2)
        t = np.clip(np.hypot(x - cx, y - cy) / 2, 0, 1)
    array = a + (b - a) * t[..., None]
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def _font(size: int) -> ImageFont.FreeTypeFont:
    import matplotlib

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return ImageFont.truetype(str(fonts / "DejaVuSans.ttf"), size)


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _text(rng: np.random.Generator) -> Image.Image:
    light = rng.random() < 0.6
    back = tuple(int(v) for v in (rng.uniform(200, 255, 3) if light else rng.uniform(0, 60, 3)))
    ink = tuple(int(v) for v in (rng.uniform(0, 80, 3) if light else rng.uniform(180, 255, 3)))
    image = Image.new("RGB", (400, 400), back)
    draw = ImageDraw.Draw(image)
    size = int(rng.integers(14, 60))
    font = _font(size)
    y = float(rng.uniform(0, 30))
    while y < 400:
        words = [
            "".join(rng.choice(list(_LETTERS), int(rng.integers(2, 9))))
            for _ in range(int(rng.integers(1, 8)))
        ]
        draw.text((float(rng.uniform(0, 40)), y), " ".join(words), fill=ink, font=font)
        y += size * rng.uniform(1.2, 2.0)
    return image


def _plot(rng: np.random.Generator) -> Image.Image:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(figsize=(2.5, 2.5), dpi=80)
    kind = int(rng.integers(4))
    x = np.arange(int(rng.integers(5, 40)))
    if kind == 0:
        for _ in range(int(rng.integers(1, 4))):
            axes.plot(x, np.cumsum(rng.normal(size=len(x))))
    elif kind == 1:
        axes.bar(x, rng.uniform(0, 10, len(x)))
    elif kind == 2:
        axes.scatter(rng.normal(size=60), rng.normal(size=60), c=rng.uniform(size=60))
    else:
        axes.hist(rng.normal(size=300), bins=int(rng.integers(5, 30)))
    axes.set_title("".join(rng.choice(list(_LETTERS), 8)))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _scene(rng: np.random.Generator) -> Image.Image:
    """The synthetic set's world with nobody in it: a background, lit and noisy as the
    drawings are, with no figure and no blade."""
    from training.synthetic_backgrounds import _BACKGROUNDS, _SS

    image = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))](rng).reduce(_SS)
    array = np.asarray(image, np.float32) * rng.uniform(0.6, 1.15) * rng.uniform(0.82, 1.18, 3)
    array = array + rng.normal(0, rng.uniform(0, 10), array.shape)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def _photo_maker(paths: list[Path]) -> Outlier:
    """Random crops (30-100% of each side) of the package images, decoded small."""
    cache: dict[Path, Image.Image] = {}

    def crop(rng: np.random.Generator) -> Image.Image:
        path = paths[int(rng.integers(len(paths)))]
        if path not in cache:
            with Image.open(path) as opened:
                opened.draft("RGB", (1024, 1024))
                image = opened.convert("RGB")
                image.thumbnail((1024, 1024))
                cache[path] = image
        image = cache[path]
        w, h = image.size
        cw, ch = max(8, int(w * rng.uniform(0.3, 1.0))), max(8, int(h * rng.uniform(0.3, 1.0)))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return image.crop((x, y, x + cw, y + ch))

    return crop


_MAKERS: dict[str, Outlier] = {
    "noise": _noise,
    "gradients": _gradient,
    "text": _text,
    "plots": _plot,
    "scenes": _scene,
}


def pool_size(training_images: int) -> int:
    """Outliers generated for a run on `training_images` labelled images: as many, within
    64..`DEFAULT_OUTLIERS` (drawing them costs about 70 ms each)."""
    return max(64, min(DEFAULT_OUTLIERS, training_images))


def outlier_batch(batch_size: int) -> int:
    """Outliers added to each training batch of `batch_size` labelled images."""
    return max(1, round(batch_size * OUTLIER_SHARE))


def with_outliers(batches, outliers: np.ndarray, per_batch: int, seed: int):
    """`batches` of (images, labels) with `per_batch` outliers appended to each, labelled
    `OUTLIER_TARGET`, and sample weights that make Keras' mean loss Outlier Exposure's:
    mean(labelled loss) + `OUTLIER_WEIGHT` * mean(outlier loss)."""
    import tensorflow as tf

    pool = len(outliers)

    def take(index: np.ndarray) -> np.ndarray:
        return outliers[index]

    def gather(index):
        batch = tf.numpy_function(take, [index], tf.uint8, stateful=False)
        return tf.cast(tf.ensure_shape(batch, (per_batch, *IMAGE_SIZE, 3)), tf.float32)

    drawn = (
        tf.data.Dataset.counter()
        .map(lambda step: tf.random.stateless_uniform([per_batch], [seed, step], 0, pool, tf.int64))
        .map(gather)
    )

    def join(pair, extra):
        images, labels = pair
        labelled = tf.cast(tf.shape(labels)[0], tf.float32)
        total = labelled + per_batch
        weights = tf.concat(
            [
                tf.fill(tf.shape(labels), total / labelled),
                tf.fill([per_batch], OUTLIER_WEIGHT * total / per_batch),
            ],
            axis=0,
        )
        targets = tf.concat([labels, tf.fill([per_batch], OUTLIER_TARGET)], axis=0)
        return tf.concat([images, extra], axis=0), targets, weights

    joined = tf.data.Dataset.zip((batches, drawn)).map(join, num_parallel_calls=tf.data.AUTOTUNE)
    return joined.prefetch(tf.data.AUTOTUNE)


def labelled_accuracy():
    """Keras' binary accuracy over the labelled images of a batch only (targets 0 and 1), so
    that outliers, whose target is 0.5, count neither as right nor as wrong."""
    import keras
    from keras import ops

    class LabelledAccuracy(keras.metrics.Metric):
        def __init__(self, name: str = "accuracy", **kwargs) -> None:
            super().__init__(name=name, **kwargs)
            self.right = self.add_variable(shape=(), initializer="zeros", name="right")
            self.seen = self.add_variable(shape=(), initializer="zeros", name="seen")

        def update_state(self, y_true, y_pred, sample_weight=None) -> None:
            y_true = ops.reshape(ops.cast(y_true, "float32"), (-1,))
            y_pred = ops.reshape(ops.cast(y_pred, "float32"), (-1,))
            labelled = ops.cast(ops.not_equal(y_true, OUTLIER_TARGET), "float32")
            right = ops.cast(ops.equal(y_true, ops.cast(y_pred > 0.5, "float32")), "float32")
            self.right.assign_add(ops.sum(right * labelled))
            self.seen.assign_add(ops.sum(labelled))

        def result(self):
            return ops.divide_no_nan(self.right, self.seen)

        def reset_state(self) -> None:
            self.right.assign(0.0)
            self.seen.assign(0.0)

    return LabelledAccuracy()


def outlier_pool(source: str, training_images: int, seed: int) -> np.ndarray:
    """Outlier Exposure's images for a run on `training_images` labelled images; a
    `DatasetError` when `source` gives none."""
    from training.data import DatasetError

    try:
        return load_outliers(source, pool_size(training_images), seed)
    except ValueError as error:
        raise DatasetError(str(error)) from None


def describe_outliers(source: str, images: int, batch_size: int) -> dict[str, object]:
    """What `model.json` records about a run's Outlier Exposure."""
    if not images:
        return {"outliers": NONE}
    described: dict[str, object] = {
        "outliers": source,
        "images": images,
        "per_batch": outlier_batch(batch_size),
        "target": OUTLIER_TARGET,
        "weight": OUTLIER_WEIGHT,
    }
    if source == GENERATED:
        described["package_images"] = len(package_images())
    return described
