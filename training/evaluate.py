"""Measure a model: accuracy, precision, recall, ROC AUC, confusion matrix, and their plots.

`python -m training.evaluate DATA_DIR [--model MODEL_DIR]` scores a published model on a labelled
folder (one sub-folder per class) with the serving path, e.g. on a fresh synthetic set:

    python -m training.synthetic /tmp/holdout --seed 7
    python -m training.evaluate /tmp/holdout
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Binary classification metrics; the positive class is label 1 ("sith")."""
    labels = np.asarray(labels).astype(int).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    predicted = (scores >= threshold).astype(int)
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    tn = int(np.sum((predicted == 0) & (labels == 0)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    total = max(1, len(labels))
    return {
        "accuracy": (tp + tn) / total,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "roc_auc": roc_auc(labels, scores),
        "count": len(labels),
    }


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the probability a random positive outscores a random negative."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = np.asarray(scores)[labels], np.asarray(scores)[~labels]
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    # Mann-Whitney U with ties counted half, via average ranks.
    order = np.argsort(np.concatenate([positives, negatives]), kind="mergesort")
    ranks = np.empty(len(order), dtype=np.float64)
    ranks[order] = np.arange(1, len(order) + 1)
    values = np.concatenate([positives, negatives])
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    u = ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2
    return float(u / (len(positives) * len(negatives)))


def confusion(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """2x2 counts: rows are the true class, columns the predicted class."""
    matrix = np.zeros((2, 2), dtype=int)
    guesses = np.asarray(scores) >= threshold
    for truth, guess in zip(np.asarray(labels).astype(int), guesses, strict=True):
        matrix[truth, int(guess)] += 1
    return matrix


def plot_confusion(
    matrix: np.ndarray,
    class_names: Sequence[str],
    path: Path,
    title: str = "Validation confusion matrix",
) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 4), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=colour, fontsize=14)
    ax.set_xticks([0, 1], labels=list(class_names))
    ax.set_yticks([0, 1], labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    figure.savefig(path)


def plot_history(history_csv: Path, path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, from Keras' CSVLogger file."""
    from matplotlib.figure import Figure

    with open(history_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    for index, key in enumerate(("loss", "accuracy")):
        ax = figure.add_subplot(1, 2, index + 1)
        for prefix, style in (("", "-o"), ("val_", "-s")):
            if rows and prefix + key in rows[0]:
                values = [float(row[prefix + key]) for row in rows]
                ax.plot(epochs, values, style, label=(prefix or "train_") + key, markersize=3)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    figure.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Score a published model on a labelled folder (jedi/, sith/).",
    )
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: shipped)")
    parser.add_argument("--backend", default="litert", choices=("litert", "tensorflow"))
    parser.add_argument(
        "--record",
        metavar="DESCRIPTION",
        help="also add the result, with this description of the data, to the model's model.json",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from model.bundle import DEFAULT_MODEL_DIR, ModelError
    from model.runtime import Classifier
    from training.data import DatasetError, load_dataset

    try:
        classifier = Classifier.load(args.model or DEFAULT_MODEL_DIR, args.backend)
        dataset = load_dataset(args.data_dir)
    except (ModelError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if dataset.class_names != tuple(classifier.info.class_names):
        print(
            f"error: the folder's classes {dataset.class_names} are not the model's "
            f"{classifier.info.class_names}",
            file=sys.stderr,
        )
        return 1
    scores = np.concatenate(
        [
            classifier.scores(dataset.images[start : start + 64])
            for start in range(0, len(dataset.labels), 64)
        ]
    )
    result = metrics(dataset.labels, scores)
    result["confusion"] = confusion(dataset.labels, scores).tolist()
    result["skipped"] = len(dataset.skipped)
    print(json.dumps(result, indent=2))
    if args.record:
        record_evaluation(classifier.path, args.record, args.data_dir, result)
    return 0


def record_evaluation(model_dir: Path, description: str, data_dir: Path, result: dict) -> None:
    """Publish the current model again with this evaluation added to its `model.json`.

    A published version is never rewritten in place (a bot may be reading it): the files are
    copied into a new version, the same model with one more evaluation, which becomes current.
    """
    import shutil
    from datetime import UTC, datetime

    from model.bundle import METADATA_FILE, publish, staging_folder
    from model.bundle import model_dir as current_dir

    current = current_dir(model_dir)
    metadata = json.loads((current / METADATA_FILE).read_text(encoding="utf-8"))
    metadata.setdefault("evaluations", []).append(
        {
            "data": description,
            "path": str(data_dir),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            **{k: result[k] for k in ("accuracy", "precision", "recall", "roc_auc", "count")},
            "confusion": result["confusion"],
        }
    )
    with staging_folder(model_dir) as staging:
        for path in current.iterdir():
            if path.is_file() and path.name != METADATA_FILE:
                shutil.copy2(path, staging / path.name)
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        publish(staging, model_dir)


if __name__ == "__main__":
    raise SystemExit(main())
