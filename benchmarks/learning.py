"""Learning curve: holdout accuracy against the number of labelled images per class.

What a moderator's `!retrain` would get from n labelled images of each class, on the synthetic
set (there are no real Jedi or Sith photographs on this machine). For each n and repeat:

* data: images `r*n .. (r+1)*n - 1` of each class of one synthetic pool
  (`training.synthetic.generate_dataset`, seed `--pool-seed`, 0 by default), hard-linked into a
  folder of its own, so the repeats of one n share no image;
* training: the project's own pipeline, `training.train.train(TrainConfig(...))`, with the
  notebook's hyperparameters (batch 32, validation split 0.2, RMSprop 1e-4, best validation
  epoch kept, detector and calibration fitted, LiteRT export checked) except the epochs, fixed
  by `--epochs` (15), and the seed, 123 + r. Of the 2n images, 20 % are its validation split;
  n counts both, as a moderator's labelled images would;
* scoring: the published folder through the serving path, `Classifier.load(folder, "litert")`
  on one fixed holdout (`--holdout` per class, 100 by default, from seed `--holdout-seed`, 7,
  decoded by `model.preprocess.load_image`): accuracy of the calibrated score against 0.5 on
  every holdout image, ECE (15 bins) of the calibrated score, and how many images the
  detector refuses ("Not a Jedi or a Sith?") with the accuracy on those it keeps.

`--data DIR --holdout-data DIR` runs the same on real labelled images (e.g. a server's
`jedisith dataset export DIR` and `jedisith dataset export HOLD --holdout`); none exist here.

The shipped model (`model/default`, 1,382 images, 29 epochs; or `--model`) is scored on the same
holdout as a reference. Prints a table, writes every run to a CSV (`benchmarks/out/learning.csv`)
and draws the curve (`docs/learning-curve.png`; `--quick` draws it under benchmarks/out/).

    python -m benchmarks.learning [--quick] [--sizes 10 20 50 100 200] [--repeats 3]
                                  [--repeat-up-to 50] [--epochs 15] [--holdout 100]
                                  [--data DIR --holdout-data DIR] [--replot] [--also CSV ...]
                                  [--csv PATH] [--plot PATH] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks._common import DEFAULT_MODEL, OUT, REPO, Report, parser, run_main

DEFAULT_SIZES = (10, 20, 50, 100, 200)
DEFAULT_CSV = OUT / "learning.csv"
DEFAULT_PLOT = REPO / "docs" / "learning-curve.png"
QUICK_SIZES = (6,)
BASE_SEED = 123  # the notebook's seed; repeat r trains with BASE_SEED + r
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


# -- data -------------------------------------------------------------------------------------


def synthetic_pool(per_class: int, seed: int) -> Path:
    """`per_class` synthetic images of each class from `seed`, generated once under out/."""
    from training.synthetic import generate_dataset

    folder = OUT / "datasets" / f"learning-{per_class}x2-seed{seed}"
    done = folder / ".complete"
    if not done.is_file():
        generate_dataset(
            folder, jedi=per_class, sith=per_class, seed=seed, workers=os.cpu_count() or 1
        )
        done.write_text("ok\n")
    return folder


def subset_folder(pool: Path, n: int, repeat: int, where: Path) -> Path:
    """A training folder with images `repeat*n .. (repeat+1)*n - 1` of each class of `pool`,
    hard-linked (copied where links are not possible)."""
    folder = where / f"n{n}-r{repeat}"
    shutil.rmtree(folder, ignore_errors=True)
    for label_dir in sorted(p for p in pool.iterdir() if p.is_dir()):
        files = sorted(p for p in label_dir.iterdir() if p.is_file())
        chosen = files[repeat * n : (repeat + 1) * n]
        if len(chosen) < n:
            raise SystemExit(f"{pool} holds {len(files)} {label_dir.name} images, not enough")
        (folder / label_dir.name).mkdir(parents=True)
        for path in chosen:
            target = folder / label_dir.name / path.name
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    return folder


def fitting_sizes(
    sizes: tuple[int, ...], data: Path, report: Report
) -> tuple[tuple[int, ...], int]:
    """The sizes a folder of real images holds enough of, and its smallest class's count."""
    from training.data import find_classes

    _, files = find_classes(data)
    fewest = min(len(paths) for paths in files.values())
    kept = tuple(n for n in sizes if n <= fewest)
    if len(kept) < len(sizes):
        report.note(f"{data} holds {fewest} images of its smallest class: sizes over it dropped")
    if not kept:
        raise SystemExit(f"{data}: {fewest} images in its smallest class, fewer than any size")
    return kept, fewest


def plan(sizes: tuple[int, ...], repeats: int, repeat_up_to: int) -> list[tuple[int, int]]:
    """(n, repeat) of every training, repeat 0 of every n first, so a cut-short run still has a
    whole curve."""
    runs = [(n, 0) for n in sizes]
    runs += [(n, r) for r in range(1, repeats) for n in sizes if n <= repeat_up_to]
    return runs


def pool_size(runs: list[tuple[int, int]]) -> int:
    """Images per class the pool needs so that every run has its own."""
    return max((r + 1) * n for n, r in runs)


# -- scoring ----------------------------------------------------------------------------------


def score(classifier, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy (calibrated score >= 0.5 is the second class), ECE, refusals on `images`."""
    from model.calibration import expected_calibration_error

    predictions = []
    for start in range(0, len(images), 32):
        predictions += classifier.predict(images[start : start + 32])
    calibrated = np.array([p.score for p in predictions], dtype=np.float64)
    raw = np.array(
        [p.raw_score if p.raw_score is not None else p.score for p in predictions],
        dtype=np.float64,
    )
    labels = np.asarray(labels).astype(int)
    right = (calibrated >= 0.5).astype(int) == labels
    kept = np.array([p.in_distribution is not False for p in predictions])
    return {
        "holdout_images": len(labels),
        "accuracy": float(right.mean()),
        "refused": int((~kept).sum()),
        "refused_share": float((~kept).mean()),
        "accuracy_kept": float(right[kept].mean()) if kept.any() else float("nan"),
        "ece": expected_calibration_error(calibrated, labels),
        "ece_raw": expected_calibration_error(raw, labels),
        "confidence": float(np.maximum(calibrated, 1.0 - calibrated).mean()),
    }


def train_one(data: Path, out: Path, epochs: int, seed: int, quiet: bool = True) -> Path:
    """`training.train.train` on `data` into a fresh `out`; returns the published folder."""
    from training.train import TrainConfig, train

    shutil.rmtree(out, ignore_errors=True)
    config = TrainConfig(
        data,
        out=out,
        epochs=epochs,
        seed=seed,
        verbose=0,
        notes=f"benchmarks.learning: {data.name}",
        command=f"benchmarks.learning {data.name} --epochs {epochs} --seed {seed}",
    )
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
        return train(config)


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


# -- the benchmark ----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> Report:
    from model.bundle import model_dir
    from model.runtime import Classifier
    from training.data import load_dataset

    report = Report("learning", "holdout accuracy vs labelled images per class")
    if (args.data is None) != (args.holdout_data is None):
        raise SystemExit("--data and --holdout-data go together (a holdout no training sees)")
    if args.quick:
        args.sizes = args.sizes or list(QUICK_SIZES)
        args.epochs = min(args.epochs, 1)
        args.holdout = min(args.holdout, 8)
        args.repeats = 1
        args.plot = args.plot or OUT / "learning-curve-quick.png"
        args.csv = args.csv or OUT / "learning-quick.csv"
    sizes = tuple(sorted(set(args.sizes or DEFAULT_SIZES)))
    if min(sizes) < 3:
        raise SystemExit("--sizes: at least 3 images per class (one must go to validation)")
    fewest = None
    if args.data is not None:
        sizes, fewest = fitting_sizes(sizes, args.data, report)
    runs_planned = plan(sizes, args.repeats, args.repeat_up_to)
    if fewest is not None:  # real images: only the repeats that have images of their own
        runs_planned = [(n, r) for n, r in runs_planned if (r + 1) * n <= fewest]
    csv_path, plot_path = args.csv or DEFAULT_CSV, args.plot or DEFAULT_PLOT
    source = (
        f"training images from {args.data}, holdout {args.holdout_data}"
        if args.data is not None
        else f"synthetic: pool seed {args.pool_seed}, holdout {args.holdout} per class from "
        f"seed {args.holdout_seed}"
    )
    report.header(
        f"sizes {', '.join(map(str, sizes))} images per class; {args.repeats} repeat(s) up to "
        f"{args.repeat_up_to} per class; {args.epochs} epochs (the notebook's other "
        f"hyperparameters); {source}; {len(runs_planned)} trainings"
    )

    report.section("data")
    start = time.perf_counter()
    if args.data is not None:
        pool, holdout_dir = args.data, args.holdout_data
    else:
        pool = None if args.replot else synthetic_pool(pool_size(runs_planned), args.pool_seed)
        holdout_dir = synthetic_pool(args.holdout, args.holdout_seed)
    holdout = load_dataset(holdout_dir)
    report.figure("data_seconds", "pool and holdout ready", time.perf_counter() - start, "s")
    if args.data is None:
        report.check(
            "holdout has both classes, as many of each",
            holdout.counts() == {"jedi": args.holdout, "sith": args.holdout},
            f"{holdout.counts()}",
        )
    else:
        report.figure("holdout_counts", "holdout images per class", str(holdout.counts()))

    reference = None
    reference_dir = args.model or DEFAULT_MODEL
    if not args.quick and (model_dir(reference_dir) / "model.json").is_file():
        reference = score(Classifier.load(reference_dir, "litert"), holdout.images, holdout.labels)
        report.figure(
            "shipped_accuracy", f"reference ({reference_dir}): accuracy", reference["accuracy"]
        )
        report.figure("shipped_refused", "reference: refused", reference["refused"])
        report.figure("shipped_ece", "reference: ECE", reference["ece"])

    report.section("trainings")
    work = OUT / "learning"
    print(
        f"   {'n/class':>7} {'rep':>3} {'seed':>4} {'best':>4} {'val_acc':>7} "
        f"{'accuracy':>8} {'kept_acc':>8} {'refused':>7} {'ECE':>6} {'seconds':>7}",
        flush=True,
    )
    runs: list[Run] = read_csv(csv_path) if args.replot else []
    if args.replot:
        print(f"   --replot: {len(runs)} runs read back from {csv_path}", flush=True)
    for n, repeat in [] if args.replot else runs_planned:
        seed = BASE_SEED + repeat
        data = subset_folder(pool, n, repeat, work / "data")
        start = time.perf_counter()
        folder = train_one(data, work / "models" / data.name, args.epochs, seed, not args.verbose)
        seconds = time.perf_counter() - start
        metadata = json.loads((model_dir(folder) / "model.json").read_text())
        classifier = Classifier.load(folder, "litert")
        figures = score(classifier, holdout.images, holdout.labels)
        result = Run(
            n_per_class=n,
            repeat=repeat,
            seed=seed,
            train_images=int(metadata["dataset"]["train"]),
            val_images=int(metadata["dataset"]["validation"]),
            epochs=args.epochs,
            best_epoch=int(metadata["training"]["best_epoch"]),
            val_accuracy=float(metadata["metrics"]["validation"]["accuracy"]),
            train_seconds=seconds,
            temperature=float(metadata.get("calibration", {}).get("temperature", "nan")),
            **figures,
        )
        runs.append(result)
        print(
            f"   {n:>7} {repeat:>3} {seed:>4} {result.best_epoch:>4} "
            f"{result.val_accuracy:>7.3f} {result.accuracy:>8.3f} {result.accuracy_kept:>8.3f} "
            f"{result.refused:>7} {result.ece:>6.3f} {seconds:>7.1f}",
            flush=True,
        )
        write_csv(runs, csv_path)  # after every run: a cut-short run keeps what it has
        if not args.keep_models:
            shutil.rmtree(work / "models" / data.name, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)

    rows = summarise(runs)
    report.section("summary")
    print(table(rows), flush=True)
    also = [read_csv(path) for path in args.also or ()]
    plot(
        runs,
        rows,
        plot_path,
        holdout=len(holdout.labels),
        reference=reference,
        also=also,
        source="synthetic set" if args.data is None else args.data.name,
    )
    report.figure("csv", "every run", str(csv_path))
    report.figure("plot", "the curve", str(plot_path))
    report.figures["summary"] = rows
    report.figures["runs"] = [asdict(r) for r in runs]
    if reference is not None:
        report.figures["shipped"] = reference
    for row in rows:
        report.outcome(
            f"holdout accuracy, {row['n_per_class']} per class"
            + (f" (mean of {row['repeats']})" if row["repeats"] > 1 else ""),
            100 * row["accuracy_mean"],
            unit="%",
            note=f"refused {100 * row['refused_share_mean']:.1f} %, "
            f"ECE {100 * row['ece_mean']:.1f} %",
        )
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("learning", __doc__.splitlines()[0])
    p.add_argument(
        "--sizes", type=int, nargs="+", default=None, help="images per class (10 20 50 100 200)"
    )
    p.add_argument("--repeats", type=int, default=3, help="trainings per small size (3)")
    p.add_argument(
        "--repeat-up-to", type=int, default=50, help="repeat sizes up to this (50 per class)"
    )
    p.add_argument("--epochs", type=int, default=15, help="epochs of every training (15)")
    p.add_argument("--holdout", type=int, default=100, help="holdout images per class (100)")
    p.add_argument("--pool-seed", type=int, default=0, help="seed of the training images (0)")
    p.add_argument("--holdout-seed", type=int, default=7, help="seed of the holdout (7)")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="a folder of real labelled images (jedi/, sith/; e.g. `jedisith dataset export "
        "DIR`) instead of the synthetic pool: subsets are its files in name order",
    )
    p.add_argument(
        "--holdout-data",
        type=Path,
        default=None,
        help="with --data: the held-out jedi/ and sith/ (e.g. `jedisith dataset export DIR "
        "--holdout`)",
    )
    p.add_argument("--csv", type=Path, default=None, help=f"default {DEFAULT_CSV}")
    p.add_argument("--plot", type=Path, default=None, help=f"default {DEFAULT_PLOT}")
    p.add_argument("--keep-models", action="store_true", help="keep the model folders")
    p.add_argument(
        "--replot",
        action="store_true",
        help="train nothing: read the runs back from --csv and draw the table and the curve",
    )
    p.add_argument(
        "--also",
        type=Path,
        nargs="+",
        default=None,
        metavar="CSV",
        help="other runs' CSVs (e.g. other epochs) drawn as more series on the curve",
    )
    p.add_argument("--verbose", action="store_true", help="show the trainer's own output")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
