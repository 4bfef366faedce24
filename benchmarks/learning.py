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
`jedisith-dataset export DIR` and `jedisith-dataset export HOLD --holdout`); none exist here.

The shipped model (`model/default`, 1,382 images, 29 epochs; or `--model`) is scored on the same
holdout as a reference. Prints a table, writes every run to a CSV (`benchmarks/out/learning.csv`)
and draws the curve (`docs/learning-curve.png`; `--quick` draws it under benchmarks/out/).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from benchmarks._common import DEFAULT_MODEL, OUT, REPO, Report, parser, run_main
from benchmarks._learning_curve import (
    Run,
    plot,
    read_csv,
    summarise,
    table,
    write_csv,
)

DEFAULT_SIZES = (10, 20, 50, 100, 200)
DEFAULT_CSV = OUT / "learning.csv"
DEFAULT_PLOT = REPO / "docs" / "learning-curve.png"
QUICK_SIZES = (6,)
BASE_SEED = 123  # the notebook's seed; repeat r trains with BASE_SEED + r


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
        help="a folder of real labelled images (jedi/, sith/; e.g. `jedisith-dataset export "
        "DIR`) instead of the synthetic pool: subsets are its files in name order",
    )
    p.add_argument(
        "--holdout-data",
        type=Path,
        default=None,
        help="with --data: the held-out jedi/ and sith/ (e.g. `jedisith-dataset export DIR "
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
