"""Train the jedisith network from a folder of images and publish it for the bot.

    jedisith-train DATA_DIR [--epochs 29] [--batch-size 32] [--val-split 0.2] [--seed 123]
                            [--learning-rate 1e-4] [--out runs/model]

DATA_DIR holds one folder per class (`jedi/`, `sith/`). Every hyperparameter's default is the
seed notebook's. The weights of the best validation epoch are kept, the model is exported to
LiteRT and checked against Keras, and the whole folder is published atomically: the bot, or
anyone reading `--out`, sees the previous model or the new one, never half of one.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from model.architecture import IMAGE_SIZE, PARAMETER_COUNT
from model.bundle import KERAS_FILE, METADATA_FILE, TFLITE_FILE, publish, staging_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run, with the notebook's values as defaults."""

    data_dir: Path
    out: Path = Path("runs/model")
    epochs: int = 29
    batch_size: int = 32
    val_split: float = 0.2
    seed: int = 123
    learning_rate: float = 1e-4
    notes: str = ""
    verbose: int | str = "auto"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("--epochs must be at least 1")
        if self.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        if not 0.0 < self.val_split < 1.0:
            raise ValueError("--val-split must be between 0 and 1")
        if self.learning_rate <= 0:
            raise ValueError("--learning-rate must be positive")


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    defaults = TrainConfig(Path("."))
    parser = argparse.ArgumentParser(
        prog="jedisith-train",
        description="Train the Jedi/Sith network on DATA_DIR (one folder per class) and "
        "publish model.keras, model.tflite and model.json into --out.",
    )
    parser.add_argument("data_dir", type=Path, help="folder with jedi/ and sith/ sub-folders")
    parser.add_argument("--out", type=Path, default=defaults.out, help="model folder to publish")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--val-split", type=float, default=defaults.val_split)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="split and init seed")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--notes", default="", help="what the data is, recorded in model.json")
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
            verbose=2 if args.quiet else "auto",
        )
    except ValueError as error:
        parser.error(str(error))
        raise  # pragma: no cover - parser.error exits


def _keep_best_callback():
    import keras

    class KeepBest(keras.callbacks.Callback):
        """Remember the weights of the best validation epoch and restore them at the end.

        Best: highest val_accuracy, ties broken by lower val_loss.
        """

        def __init__(self) -> None:
            super().__init__()
            self.best: tuple[float, float] | None = None
            self.best_epoch = -1
            self.best_logs: dict[str, float] = {}
            self._weights = None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            key = (float(logs.get("val_accuracy", 0.0)), -float(logs.get("val_loss", np.inf)))
            if self.best is None or key > self.best:
                self.best, self.best_epoch = key, epoch
                self.best_logs = {k: float(v) for k, v in logs.items()}
                self._weights = self.model.get_weights()

        def on_train_end(self, logs: dict | None = None) -> None:
            if self._weights is not None:
                self.model.set_weights(self._weights)

    return KeepBest()


def train(config: TrainConfig) -> Path:
    """Run the whole pipeline and publish the model folder; returns its path."""
    from training.data import load_dataset, to_tf_dataset

    started = time.monotonic()
    print(f"Checking the images in {config.data_dir} ...", flush=True)
    dataset = load_dataset(
        config.data_dir, on_skip=lambda s: print(f"  skipped {s.path}: {s.reason}", flush=True)
    )
    counts = dataset.counts()
    print(
        f"{len(dataset.labels)} usable images ("
        + ", ".join(f"{n} {name}" for name, n in counts.items())
        + f"), {len(dataset.skipped)} skipped",
        flush=True,
    )
    train_set, val_set = dataset.split(config.val_split, config.seed)
    print(f"Using {len(train_set.labels)} for training, {len(val_set.labels)} for validation.")

    import keras

    from model.architecture import build_model
    from training.evaluate import confusion, metrics, plot_confusion, plot_history
    from training.export import export_tflite

    keras.utils.set_random_seed(config.seed)
    model = build_model(seed=config.seed)
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.RMSprop(learning_rate=config.learning_rate),
        metrics=["accuracy"],
    )
    train_ds = to_tf_dataset(train_set, config.batch_size, shuffle=True, seed=config.seed)
    val_ds = to_tf_dataset(val_set, config.batch_size, shuffle=False, seed=config.seed)

    with staging_folder(config.out) as staging:
        history_csv = staging / "history.csv"
        keep_best = _keep_best_callback()
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.epochs,
            verbose=config.verbose,
            callbacks=[keep_best, keras.callbacks.CSVLogger(str(history_csv))],
            shuffle=False,  # train_ds is already shuffled each epoch by tf.data
        )
        print(
            f"Keeping epoch {keep_best.best_epoch + 1}: "
            f"val_accuracy {keep_best.best_logs.get('val_accuracy', float('nan')):.4f}, "
            f"val_loss {keep_best.best_logs.get('val_loss', float('nan')):.4f}",
            flush=True,
        )

        from model.architecture import build_inference_model

        inference = build_inference_model(model)
        scores = np.concatenate(
            [
                np.asarray(inference(batch.astype(np.float32), training=False)[0]).reshape(-1)
                for batch in np.array_split(val_set.images, max(1, len(val_set.labels) // 64))
            ]
        )
        val_metrics = metrics(val_set.labels, scores)
        matrix = confusion(val_set.labels, scores)

        model.save(staging / KERAS_FILE)
        (staging / TFLITE_FILE).write_bytes(export_tflite(model, val_set.images[:16]))
        plot_history(history_csv, staging / "curves.png")
        plot_confusion(matrix, dataset.class_names, staging / "confusion.png")
        metadata = {
            "name": "jedisith",
            "class_names": list(dataset.class_names),
            "positive_class": dataset.class_names[1],
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
            },
            "metrics": {"validation": val_metrics, "confusion": matrix.tolist()},
            "command": "jedisith-train " + shlex.join(sys.argv[1:]),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {"keras": keras.__version__, "tensorflow": _tf_version()},
        }
        if metadata["parameters"] != PARAMETER_COUNT:
            log.warning("the network has %d parameters, not %d", metadata["parameters"], 622_753)
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        _write_metrics_csv(staging / "metrics.csv", val_metrics)
        published = publish(staging, config.out)

    print(
        f"Validation: accuracy {val_metrics['accuracy']:.4f}, precision "
        f"{val_metrics['precision']:.4f}, recall {val_metrics['recall']:.4f}, ROC AUC "
        f"{val_metrics['roc_auc']:.4f}"
    )
    print(f"Published the model to {published}")
    return published


def _tf_version() -> str:
    import tensorflow as tf

    return tf.__version__


def _write_metrics_csv(path: Path, values: dict[str, float]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", "value"])
        for key, value in values.items():
            writer.writerow([key, value])


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from training.data import DatasetError
    from training.export import ExportError

    try:
        train(config)
    except (DatasetError, ExportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: nothing was published; {config.out} is unchanged", file=sys.stderr)
        return 130
    return 0
