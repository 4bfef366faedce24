"""The runs of `benchmarks.learning` and what is made of them: the summary per size, the table,
the CSV and the plotted learning curve."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

BOT_MINIMUM = 20  # RETRAIN_MIN_IMAGES: what !retrain asks for per class

COLUMNS = (
    "n_per_class",
    "repeat",
    "seed",
    "train_images",
    "val_images",
    "epochs",
    "best_epoch",
    "val_accuracy",
    "holdout_images",
    "accuracy",
    "refused",
    "refused_share",
    "accuracy_kept",
    "ece",
    "ece_raw",
    "train_seconds",
    "temperature",
    "confidence",
)


@dataclass
class Run:
    """One trained model, scored on the holdout."""

    n_per_class: int
    repeat: int
    seed: int
    train_images: int
    val_images: int
    epochs: int
    best_epoch: int
    val_accuracy: float
    holdout_images: int
    accuracy: float
    refused: int
    refused_share: float
    accuracy_kept: float
    ece: float
    ece_raw: float
    train_seconds: float
    temperature: float = float("nan")  # the calibration's, from model.json
    confidence: float = float("nan")  # mean calibrated confidence on the holdout, 0.5-1


_EXAMPLE = Run(0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0)


# -- summary, table, plot ---------------------------------------------------------------------


def summarise(runs: list[Run]) -> list[dict[str, float]]:
    """Per n: repeats, mean/min/max accuracy, mean ECE, mean refusals, mean seconds."""
    rows = []
    for n in sorted({r.n_per_class for r in runs}):
        group = [r for r in runs if r.n_per_class == n]
        acc = np.array([r.accuracy for r in group])
        rows.append(
            {
                "n_per_class": n,
                "repeats": len(group),
                "accuracy_mean": float(acc.mean()),
                "accuracy_min": float(acc.min()),
                "accuracy_max": float(acc.max()),
                "accuracy_kept_mean": float(np.nanmean([r.accuracy_kept for r in group])),
                "confidence_mean": _mean([r.confidence for r in group]),
                "ece_mean": float(np.mean([r.ece for r in group])),
                "refused_share_mean": float(np.mean([r.refused_share for r in group])),
                "train_seconds_mean": float(np.mean([r.train_seconds for r in group])),
            }
        )
    return rows


def _mean(values: list[float]) -> float:
    """The mean of the values that are not NaN; NaN if none."""
    known = [v for v in values if not np.isnan(v)]
    return float(np.mean(known)) if known else float("nan")


def table(rows: list[dict[str, float]]) -> str:
    """The summary as a Markdown table (what RESULTS.md shows)."""
    lines = [
        "| images per class | runs | holdout accuracy, mean (min-max) | accuracy on kept "
        "| ECE | mean confidence | refused | training |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        spread = (
            f" ({100 * row['accuracy_min']:.1f}-{100 * row['accuracy_max']:.1f})"
            if row["repeats"] > 1
            else ""
        )
        lines.append(
            f"| {row['n_per_class']} | {row['repeats']} | {100 * row['accuracy_mean']:.1f} %"
            f"{spread} | {100 * row['accuracy_kept_mean']:.1f} % | "
            f"{100 * row['ece_mean']:.1f} % | {_percent(row['confidence_mean'])} | "
            f"{100 * row['refused_share_mean']:.1f} % | "
            f"{row['train_seconds_mean']:.0f} s |"
        )
    return "\n".join(lines)


def _percent(value: float) -> str:
    return "-" if np.isnan(value) else f"{100 * value:.1f} %"


def write_csv(runs: list[Run], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for run in runs:
            writer.writerow({k: _rounded(v) for k, v in asdict(run).items()})


def _rounded(value):
    return round(value, 6) if isinstance(value, float) else value


def read_csv(path: Path) -> list[Run]:
    """The runs `write_csv` wrote (columns added since read as NaN)."""
    types = {name: type(default) for name, default in asdict(_EXAMPLE).items()}
    runs = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            values = {
                name: kind(row[name])
                for name, kind in types.items()
                if row.get(name) not in ("", None)
            }
            runs.append(Run(**values))
    return runs


def _epochs_label(runs: list[Run]) -> str:
    epochs = sorted({r.epochs for r in runs})
    return "/".join(map(str, epochs)) + (" epoch" if epochs == [1] else " epochs")


def plot(
    runs: list[Run],
    rows: list[dict[str, float]],
    path: Path,
    *,
    holdout: int,
    reference: dict[str, float] | None,
    also: list[list[Run]] = (),
    source: str = "synthetic set",
) -> None:
    """Accuracy against images per class (log x), every run a dot, the mean a line; beside it
    the refusals and the ECE. `also`: other runs (other epochs), drawn as more series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [row["n_per_class"] for row in rows]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 4.4), width_ratios=(3, 2), constrained_layout=True
    )
    left.scatter(
        [r.n_per_class for r in runs],
        [100 * r.accuracy for r in runs],
        color="tab:blue",
        alpha=0.45,
        s=22,
        label=f"{_epochs_label(runs)}: one training (repeats: other images, other seed)",
    )
    left.plot(
        ns,
        [100 * row["accuracy_mean"] for row in rows],
        color="tab:blue",
        marker="o",
        label=f"{_epochs_label(runs)}: mean, every holdout image",
    )
    left.plot(
        ns,
        [100 * row["accuracy_kept_mean"] for row in rows],
        color="tab:green",
        linestyle=":",
        marker=".",
        label=f"{_epochs_label(runs)}: mean, images the detector keeps",
    )
    for extra, colour in zip(also, ("tab:brown", "tab:olive", "tab:pink"), strict=False):
        extra_rows = summarise(extra)
        label = _epochs_label(extra)
        left.scatter(
            [r.n_per_class for r in extra],
            [100 * r.accuracy for r in extra],
            color=colour,
            alpha=0.45,
            s=22,
            marker="D",
        )
        left.plot(
            [row["n_per_class"] for row in extra_rows],
            [100 * row["accuracy_mean"] for row in extra_rows],
            color=colour,
            marker="D",
            label=f"{label}: each training and the mean",
        )
    if reference is not None:
        left.axhline(
            100 * reference["accuracy"],
            color="0.4",
            linestyle="--",
            linewidth=1,
            label=f"shipped model (1,382 images, 29 epochs): {100 * reference['accuracy']:.1f} %",
        )
    left.axvline(BOT_MINIMUM, color="tab:red", linestyle="--", linewidth=0.8, alpha=0.6)
    left.annotate(
        "!retrain's minimum",
        (BOT_MINIMUM, 0.02),
        xycoords=("data", "axes fraction"),
        rotation=90,
        color="tab:red",
        fontsize=8,
        ha="right",
        va="bottom",
    )
    left.axhline(50, color="0.8", linewidth=0.8)
    left.set_xscale("log")
    left.set_xticks(ns, [str(n) for n in ns])
    left.minorticks_off()
    left.set_ylim(40, 102)
    left.set_xlabel("labelled images per class (80 % trained on, 20 % validation)")
    left.set_ylabel(f"accuracy on {holdout} held-out images (%)")
    left.set_title(f"Learning curve, {source}, {_epochs_label(runs)}, LiteRT serving path")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="lower right")

    right.plot(
        ns,
        [100 * row["refused_share_mean"] for row in rows],
        marker="o",
        color="tab:orange",
        label="refused by the detector",
    )
    right.plot(
        ns,
        [100 * row["ece_mean"] for row in rows],
        marker="s",
        color="tab:purple",
        label="ECE of the calibrated score",
    )
    right.set_xscale("log")
    right.set_xticks(ns, [str(n) for n in ns])
    right.minorticks_off()
    right.set_ylim(bottom=0)
    right.set_xlabel("labelled images per class")
    right.set_ylabel("% of the holdout (means over repeats)")
    right.set_title(f"Honesty on the same holdout ({_epochs_label(runs)})")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
