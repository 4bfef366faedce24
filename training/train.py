"""Train the jedisith network from a folder of images and publish it for the bot.

    jedisith-train DATA_DIR [--epochs 29] [--batch-size 32] [--val-split 0.2] [--seed 123]
                            [--learning-rate 1e-4] [--ood-keep 0.95] [--out runs/model]
                            [--data-path auto|memory|stream] [--cache-mb 0] [--devices N]
                            [--outliers generated|none|DIR]
    jedisith-train DATA_DIR --out MODEL_DIR --refit

DATA_DIR holds one folder per class (`jedi/`, `sith/`). Every hyperparameter's default is the
seed notebook's. Outlier Exposure (`training.outliers`, `--outliers`, on by default) adds images
that are neither class to every training batch and asks the network to score them 0.5. The
weights of the best validation epoch are kept; then the out-of-distribution detector and the
calibration of the scores are fitted (`training.uncertainty`), the model is exported to LiteRT
and checked against Keras, and the whole folder is published atomically: the bot, or anyone
reading `--out`, sees the previous model or the new one, never half of one.

`--refit` (`training.refit`) keeps the weights already in MODEL_DIR and fits only the detector
and the calibration, on the same split of DATA_DIR as the training run recorded in its
`model.json`: the way to give an older model folder honest answers without training it again.

The images are held in memory, or streamed from their files when they would not fit
(`--data-path`, `training.data.choose_data_path`); the network is trained on one device or
several (`--devices`: `training.devices`). Both choices are recorded in model.json
(`training.data_path`, `training.placement`).

`train()` is `load_training_data()`, then `build_model_folder()` into a staging folder, then
`publish()`. `build_model_folder()` alone writes a complete model folder without publishing it
(`training.retrain` scores it against the current model first); with `TrainConfig.progress` it
appends stage and epoch events to that file (`training.protocol.ProgressLog`), and with
`TrainConfig.cancellation` it stops at the next batch once asked, raising `Cancelled`.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.architecture import IMAGE_SIZE, PARAMETER_COUNT
from model.bundle import (
    KERAS_FILE,
    METADATA_FILE,
    model_dir,
    publish,
    staging_folder,
)
from model.detector import DEFAULT_KEEP
from training.arguments import Parser
from training.data import DATA_PATHS, DEFAULT_CACHE_BYTES, RULE
from training.outliers import GENERATED, NONE, describe_outliers, outlier_pool
from training.progress import Cancellation, keep_best_callback, keras_callbacks
from training.protocol import DEFAULT_EPOCHS, ProgressLog
from training.uncertainty import fit_for_network, summary, write_uncertainty_files

if TYPE_CHECKING:
    import keras

    from training.data import Dataset
    from training.devices import Placement
    from training.uncertainty import UncertaintyFit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run, with the notebook's values as defaults."""

    data_dir: Path
    out: Path = Path("runs/model")
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 32
    val_split: float = 0.2
    seed: int = 123
    learning_rate: float = 1e-4
    notes: str = ""
    ood_keep: float = DEFAULT_KEEP
    refit: bool = False
    verbose: int | str = "auto"
    command: str = ""  # the command line, as model.json records it
    progress: Path | None = None  # append stage and epoch events here (training.protocol)
    cancellation: Cancellation | None = field(default=None, compare=False)
    data_path: str = "auto"  # memory, stream, or auto: training.data.choose_data_path
    cache_mb: int = DEFAULT_CACHE_BYTES // (1024 * 1024)  # decoded images kept when streaming
    devices: int | None = None  # None: every GPU when several are visible, else one device
    init: Path | None = None  # a model folder whose weights training starts from (None: random)
    outliers: str = GENERATED  # Outlier Exposure's images: generated, none, or a folder

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("--epochs must be at least 1")
        if self.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        if not 0.0 < self.val_split < 1.0:
            raise ValueError("--val-split must be between 0 and 1")
        if self.learning_rate <= 0:
            raise ValueError("--learning-rate must be positive")
        if not 0.5 <= self.ood_keep <= 1.0:
            raise ValueError("--ood-keep must be between 0.5 and 1")
        if self.data_path not in DATA_PATHS:
            raise ValueError(f"--data-path must be one of {', '.join(DATA_PATHS)}")
        if self.cache_mb < 0:
            raise ValueError("--cache-mb cannot be negative")
        if self.devices is not None and self.devices < 1:
            raise ValueError("--devices must be at least 1")


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    defaults = TrainConfig(Path("."))
    parser = Parser(
        prog="jedisith-train",
        description="Train the Jedi/Sith network on DATA_DIR (one folder per class) and "
        "publish model.keras, model.tflite and model.json into --out.",
    )
    parser.add_argument("data_dir", type=Path, help="folder with jedi/ and sith/ sub-folders")
    parser.add_argument("--out", type=Path, default=defaults.out, help="model folder to publish")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="images per training step, all devices together (default: %(default)s)",
    )
    parser.add_argument("--val-split", type=float, default=defaults.val_split)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="split and init seed")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--notes", default="", help="what the data is, recorded in model.json")
    parser.add_argument(
        "--ood-keep",
        type=float,
        default=defaults.ood_keep,
        help="share of validation images the out-of-distribution threshold keeps",
    )
    parser.add_argument(
        "--refit",
        action="store_true",
        help="keep the weights in --out; fit only its detector and calibration",
    )
    parser.add_argument(
        "--data-path",
        choices=DATA_PATHS,
        default=defaults.data_path,
        help="hold the decoded images in memory, or stream them from their files (decoded "
        "again each epoch, in parallel); "
        + RULE.replace("%", "%%")
        + f"{_switch_here()} (default: auto; model.json records the choice and why)",
    )
    parser.add_argument(
        "--cache-mb",
        type=int,
        default=defaults.cache_mb,
        help="when streaming, keep this many MB of decoded images in memory (default: "
        "%(default)s: on the CPU, decoding costs about 1/35 of training)",
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=None,
        help="train on N devices with MirroredStrategy; --batch-size stays the global batch, "
        "split evenly over them (default: every GPU when several are visible, else one; with "
        "no GPU, N>1 splits the CPU into N logical devices). Several machines (TF_CONFIG) are "
        "refused: Keras 3 cannot fit under MultiWorkerMirroredStrategy (README)",
    )
    parser.add_argument(
        "--outliers",
        default=defaults.outliers,
        metavar="generated|none|DIR",
        help="Outlier Exposure: images that are neither class, added to each training batch "
        "with the target score 0.5 (weight 0.5): drawn here and taken from installed packages' "
        f"photos ({GENERATED}), every image under DIR, or {NONE} (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        return TrainConfig(
            data_dir=args.data_dir,
            out=args.out,
            epochs=args.epochs,
            batch_size=args.batch_size,
            val_split=args.val_split,
            seed=args.seed,
            learning_rate=args.learning_rate,
            notes=args.notes,
            ood_keep=args.ood_keep,
            refit=args.refit,
            verbose=2 if args.quiet else "auto",
            data_path=args.data_path,
            cache_mb=args.cache_mb,
            devices=args.devices,
            outliers=args.outliers,
            command="jedisith-train " + shlex.join(sys.argv[1:] if argv is None else argv),
        )
    except ValueError as error:
        parser.error(str(error))
        raise  # pragma: no cover - parser.error exits


def _switch_here() -> str:
    """Where auto switches on this machine now, for --help."""
    from training.data import IMAGE_BYTES, choose_data_path

    limit = choose_data_path("auto", 0).limit_bytes
    return "" if limit is None else f": here and now, beyond {limit // IMAGE_BYTES:,} images"


def train(config: TrainConfig) -> Path:
    """Run the whole pipeline and publish the model folder; returns its path."""
    started = time.monotonic()
    placement = _place(config)  # first: a device that is not there stops the run at once
    dataset = load_training_data(config)
    with staging_folder(config.out) as staging:
        built = build_model_folder(config, dataset, staging, started=started, placement=placement)
        published = publish(staging, config.out)

    val_metrics = built.val_metrics
    print(
        f"Validation: accuracy {val_metrics['accuracy']:.4f}, precision "
        f"{val_metrics['precision']:.4f}, recall {val_metrics['recall']:.4f}, ROC AUC "
        f"{val_metrics['roc_auc']:.4f}"
    )
    print(summary(built.uncertainty))
    print(f"Published the model to {published}")
    return published


def _say(text: str) -> None:
    print(text, flush=True)


def load_training_data(config: TrainConfig, report: Callable[[str], None] = _say) -> Dataset:
    """Decode `config.data_dir`, reporting what was skipped and what is left; the images are
    kept in memory or streamed as `config.data_path` says (`choose_data_path` for auto)."""
    from training.data import choose_data_path, find_classes, load_dataset

    _, files = find_classes(config.data_dir)
    path = choose_data_path(config.data_path, sum(len(found) for found in files.values()))
    if path.chosen == "stream":
        cached = f"{config.cache_mb} MB of them cached" if config.cache_mb else "no cache"
        report(f"Streaming the images from their files ({path.reason}; {cached})")
    else:
        report(f"Holding the images in memory ({path.reason})")
    report(f"Checking the images in {config.data_dir} ...")
    dataset = load_dataset(
        config.data_dir,
        on_skip=lambda s: report(f"  skipped {s.path}: {s.reason}"),
        stream=path.chosen == "stream",
        cache_bytes=config.cache_mb * 1024 * 1024,
    )
    dataset.data_path = path
    counts = dataset.counts()
    report(
        f"{len(dataset.labels)} usable images ("
        + ", ".join(f"{n} {name}" for name, n in counts.items())
        + f"), {len(dataset.skipped)} skipped"
    )
    return dataset


def _place(config: TrainConfig) -> Placement:
    from training.devices import place, workers_in_environment

    return place(config.devices, workers_in_environment())


def fit_network(
    config: TrainConfig,
    train_set: Dataset,
    val_set: Dataset,
    *,
    placement: Placement | None = None,
    callbacks: Sequence = (),
    network: Callable[[int], keras.Model] | None = None,
    outliers: np.ndarray | None = None,
):
    """Build the network (`network(seed)`, the notebook's by default) under `placement`'s
    strategy and train it on `train_set`, validating on `val_set`; returns the model, with
    the weights of its best validation epoch, and the callback that kept them.

    The batches are `config.batch_size` images in all, split evenly over the replicas, epoch
    `e` in an order drawn from `(config.seed, e)` (`training_batches`). Each batch gets
    outliers from `outliers` (by default `config.outliers`' pool) for Outlier Exposure.
    """
    import keras
    import tensorflow as tf

    from model.architecture import build_model
    from training.data import DatasetError, steps_per_epoch, to_tf_dataset, training_batches
    from training.outliers import labelled_accuracy, outlier_batch, with_outliers

    if outliers is None:
        outliers = outlier_pool(config.outliers, len(train_set.labels), config.seed)
    placement = placement or _place(config)
    placement.per_replica_batch(config.batch_size)  # a DeviceError unless it splits evenly
    keras.utils.set_random_seed(config.seed)
    if network is None and config.init is not None:
        network = functools.partial(load_weights_of, config.init)
    with placement.strategy.scope():
        model = (network or build_model)(seed=config.seed)
        model.compile(
            loss="binary_crossentropy",
            optimizer=keras.optimizers.RMSprop(learning_rate=config.learning_rate),
            metrics=[labelled_accuracy() if len(outliers) else "accuracy"],
        )

    # Keras splits each global batch over the replicas.
    train_ds = training_batches(train_set, config.batch_size, config.seed)
    if len(outliers):
        per_batch = outlier_batch(config.batch_size)
        train_ds = with_outliers(train_ds, outliers, per_batch, config.seed)
    val_ds = to_tf_dataset(val_set, config.batch_size, shuffle=False, seed=config.seed)

    keep_best = keep_best_callback()
    try:
        model.fit(
            train_ds,
            steps_per_epoch=steps_per_epoch(len(train_set.labels), config.batch_size),
            validation_data=val_ds,
            epochs=config.epochs,
            verbose=config.verbose,
            callbacks=[keep_best, *callbacks],
            shuffle=False,  # tf.data orders the batches (training_batches)
        )
    except tf.errors.OpError as error:  # a streamed file that changed: DatasetError's message
        found = _STREAM_ERROR.search(str(error.message))
        if found is None:
            raise
        raise DatasetError(found.group(1)) from None
    if len(outliers):  # the saved model names only Keras' own metric
        with placement.strategy.scope():
            model.compile(
                loss="binary_crossentropy", optimizer=model.optimizer, metrics=["accuracy"]
            )
    return model, keep_best


def load_weights_of(folder: Path, seed: int) -> keras.Model:
    """The network of the model folder `folder` (its current version), to train further: a
    server's network starts from the shared one's weights. `seed` is unused (no random init)."""
    import keras

    from training.data import DatasetError

    path = model_dir(Path(folder)) / KERAS_FILE
    try:
        return keras.saving.load_model(path, compile=False)
    except (ValueError, OSError) as error:
        raise DatasetError(f"cannot start from the weights in {path}: {error}") from None


# What a DatasetError raised while streaming says, inside TensorFlow's error about it.
_STREAM_ERROR = re.compile(r"DatasetError: (.*?(?:changed since it was checked|cannot be read).*)")


@dataclass(frozen=True)
class BuiltModel:
    """A complete model folder written by `build_model_folder`, and what went into it."""

    folder: Path
    metadata: dict
    train_set: Dataset
    val_set: Dataset
    uncertainty: UncertaintyFit
    val_metrics: dict[str, float]
    epochs_run: int
    best_epoch: int  # 1-based


def build_model_folder(
    config: TrainConfig,
    dataset: Dataset,
    staging: Path,
    *,
    report: Callable[[str], None] = _say,
    started: float | None = None,
    placement: Placement | None = None,
) -> BuiltModel:
    """Train on `dataset` and write a whole model folder into `staging`, without publishing it:
    weights, the LiteRT export (checked against Keras), the detector, the calibration, the
    plots and `model.json` (its file hashes are added by `publish`).

    Stages `training`, `fitting` and `exporting` are written to `config.progress`, and an epoch
    event after each epoch; `config.cancellation` is polled at every batch and between stages.
    """
    started = time.monotonic() if started is None else started
    progress = ProgressLog(config.progress) if config.progress is not None else None
    cancellation = config.cancellation

    def stage(name: str) -> None:
        if cancellation is not None:
            cancellation.check()
        if progress is not None:
            progress.stage(name)

    counts = dataset.counts()
    train_set, val_set = dataset.split(config.val_split, config.seed)
    report(f"Using {len(train_set.labels)} for training, {len(val_set.labels)} for validation.")

    import keras

    from training.data import choose_data_path
    from training.evaluate import confusion, metrics, plot_confusion, plot_history

    stage("training")
    placement = placement or _place(config)
    report(f"Training on {placement.describe(config.batch_size)}")
    data_path = dataset.data_path or choose_data_path(
        "stream" if dataset.streamed else "memory", len(dataset.labels)
    )
    history_csv = staging / "history.csv"
    watchers = keras_callbacks(progress, config.epochs, cancellation)
    outliers = outlier_pool(config.outliers, len(train_set.labels), config.seed)
    if len(outliers):
        report(f"Outlier Exposure: {len(outliers)} outliers ({config.outliers})")
    model, keep_best = fit_network(
        config,
        train_set,
        val_set,
        placement=placement,
        callbacks=[keras.callbacks.CSVLogger(str(history_csv)), *watchers],
        outliers=outliers,
    )
    report(
        f"Keeping epoch {keep_best.best_epoch + 1}: "
        f"val_accuracy {keep_best.best_logs.get('val_accuracy', float('nan')):.4f}, "
        f"val_loss {keep_best.best_logs.get('val_loss', float('nan')):.4f}"
    )

    stage("fitting")
    check = cancellation.check if cancellation is not None else None
    uncertainty = fit_for_network(
        model,
        train_set,
        val_set,
        keep=config.ood_keep,
        seed=config.seed,
        report=report,
        check=check,
    )
    stage("exporting")
    uncertainty_metadata = write_uncertainty_files(staging, model, val_set, uncertainty)
    scores = uncertainty.validation_scores  # the network's own: calibration keeps verdicts
    val_metrics = metrics(val_set.labels, scores)
    matrix = confusion(val_set.labels, scores)

    model.save(staging / KERAS_FILE)
    plot_history(history_csv, staging / "curves.png")
    plot_confusion(matrix, dataset.class_names, staging / "confusion.png")
    metadata = {
        "name": "jedisith",
        "class_names": list(dataset.class_names),
        "image_size": list(IMAGE_SIZE),
        "parameters": int(model.count_params()),
        "dataset": {
            "path": str(config.data_dir),
            "counts": counts,
            "train": len(train_set.labels),
            "validation": len(val_set.labels),
            "skipped": [{"file": str(s.path), "reason": s.reason} for s in dataset.skipped],
            "notes": config.notes,
        },
        "training": {
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "val_split": config.val_split,
            "seed": config.seed,
            "learning_rate": config.learning_rate,
            "optimizer": "RMSprop",
            "loss": "binary_crossentropy",
            "best_epoch": keep_best.best_epoch + 1,
            "seconds": round(time.monotonic() - started, 1),
            "data_path": data_path.as_dict(),
            "placement": placement.as_dict(config.batch_size),
            "outlier_exposure": describe_outliers(
                config.outliers, len(outliers), config.batch_size
            ),
        },
        "metrics": {"validation": val_metrics, "confusion": matrix.tolist()},
        **uncertainty_metadata,
        "command": config.command or "jedisith-train " + shlex.join(sys.argv[1:]),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"keras": keras.__version__, "tensorflow": _tf_version()},
    }
    if metadata["parameters"] != PARAMETER_COUNT:
        log.warning(
            "the network has %d parameters, not %d", metadata["parameters"], PARAMETER_COUNT
        )
    (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    _write_metrics_csv(staging / "metrics.csv", val_metrics)
    return BuiltModel(
        folder=staging,
        metadata=metadata,
        train_set=train_set,
        val_set=val_set,
        uncertainty=uncertainty,
        val_metrics=val_metrics,
        epochs_run=watchers[0].epochs_done,
        best_epoch=keep_best.best_epoch + 1,
    )


def _tf_version() -> str:
    import tensorflow as tf

    return tf.__version__


def _write_metrics_csv(path: Path, values: dict[str, float]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", "value"])
        for key, value in values.items():
            writer.writerow([key, value])


def _split_cpu_if_asked(config: TrainConfig) -> None:
    """`--devices N` with no GPU: N logical CPU devices, made before TensorFlow starts."""
    import tensorflow as tf

    from training.devices import split_cpu

    if config.refit or not config.devices or config.devices < 2:
        return
    if tf.config.list_physical_devices("GPU"):
        return
    try:
        split_cpu(config.devices)
    except RuntimeError:  # TensorFlow already started (a caller that imported and used it)
        return  # training.devices.place says what is visible
    log.warning(
        "no GPU: the CPU is split into %d logical devices (the same cores: this tries the "
        "multi-device path, it is not faster)",
        config.devices,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:  # training needs the `train` extra; the bot and the jedisith command do not
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in ("tensorflow", "keras"):
            raise
        print("jedisith-train needs TensorFlow: pip install 'jedisith[train]'", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # tf.distribute's chatter
    from training.data import DatasetError
    from training.devices import DeviceError
    from training.export import ExportError

    try:
        _split_cpu_if_asked(config)
        if config.refit:
            from training.refit import refit

            refit(config)
        else:
            train(config)
    except (DatasetError, ExportError, DeviceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: nothing was published; {config.out} is unchanged", file=sys.stderr)
        return 130
    except OSError as error:  # a full disk, an unwritable --out, a folder removed mid-run
        where = f": {error.filename}" if error.filename else ""
        print(
            f"error: {error.strerror or error}{where}; nothing was published, "
            f"{config.out} is unchanged",
            file=sys.stderr,
        )
        return 1
    return 0
