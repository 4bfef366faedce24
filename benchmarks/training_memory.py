"""Training beyond memory: peak RSS and images per second, images in memory vs streamed.

For each set size (2,000 and 20,000 synthetic images by default, generated once into
`benchmarks/out/datasets/`) and each data path (`--data-path memory` and `stream`), a fresh
process does what `jedisith-train` does up to the first epoch: `training.train.
load_training_data` (in memory: every image decoded into one array; streamed: every file
decoded once to check it, then only the paths kept, with the `--cache-mb` cache), the split,
`training.data.training_batches`, the notebook's network with RMSprop, then `--warmup` training
steps of 32 (not counted) and `--steps` timed ones. A CPU epoch of 16,000 images is about ten
minutes here, so no epoch is run to its end: the rate is that of the timed steps, and what
the in-memory path costs is its RSS once loaded, which the steps only add to.

Reported per run: the RSS after importing TensorFlow, after loading (and splitting), after
the timed steps, the peak (VmHWM), the loading time, training images/s and the CPU cores busy
during the timed steps, and, alone, how fast the streamed pipeline decodes when nothing
trains. The two paths run alternately (memory first for one size, stream first for the next).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import Report, parser, run_main, synthetic_dataset

STREAM_PEAK_TARGET_MB = 1500.0  # the streamed path's peak at 20,000 images (issue 13)
BATCH = 32
VAL_SPLIT = 0.2
SEED = 123  # the split and the network, as jedisith-train's default
CHILD_FLAG = "--child"


def status_mb() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MB (10^6 bytes)."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) * 1024 / 1e6
    return found


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def child(data_dir: Path, data_path: str, steps: int, warmup: int, cache_mb: int) -> dict:
    """One run, in this (fresh) process: load, then train `warmup` + `steps` steps."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    from model.architecture import build_model
    from training.data import to_tf_dataset, training_batches
    from training.train import TrainConfig, load_training_data

    tf.constant(0)  # start the runtime: its memory is the baseline, not the data's
    figures: dict = {"rss_tf_mb": status_mb()["VmRSS"]}
    config = TrainConfig(data_dir, data_path=data_path, cache_mb=cache_mb, seed=SEED)
    start = time.perf_counter()
    dataset = load_training_data(config, report=lambda _: None)  # kept, as train() keeps it
    train_set, val_set = dataset.split(VAL_SPLIT, SEED)
    train_ds = training_batches(train_set, BATCH, SEED)  # what fit_network trains on
    to_tf_dataset(val_set, BATCH, shuffle=False, seed=SEED)
    figures["load_s"] = time.perf_counter() - start
    figures["rss_loaded_mb"] = status_mb()["VmRSS"]
    figures["images"] = len(dataset.labels)
    figures["chosen"] = dataset.data_path.chosen

    if dataset.streamed:  # the pipeline alone: how fast it decodes with nothing training
        decode_batches = 40 if len(train_set.labels) > 40 * BATCH else 4
        iterator = iter(training_batches(train_set, BATCH, SEED))
        next(iterator)
        start, cpu = time.perf_counter(), cpu_seconds()
        for _ in range(decode_batches):
            next(iterator)
        seconds = time.perf_counter() - start
        figures["decode_img_s"] = decode_batches * BATCH / seconds
        figures["decode_cores"] = (cpu_seconds() - cpu) / seconds
        del iterator

    keras.utils.set_random_seed(SEED)
    model = build_model(seed=SEED)
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-4),
        metrics=["accuracy"],
    )
    marks: list[tuple[float, float]] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            marks.append((time.perf_counter(), cpu_seconds()))

    model.fit(
        train_ds,
        epochs=1,
        steps_per_epoch=warmup + steps,
        verbose=0,
        callbacks=[Clock()],
        shuffle=False,
    )
    (start, cpu), (end, cpu_end) = marks[warmup - 1], marks[-1]
    figures["train_img_s"] = steps * BATCH / (end - start)
    figures["train_cores"] = (cpu_end - cpu) / (end - start)
    figures["rss_trained_mb"] = status_mb()["VmRSS"]
    figures["peak_mb"] = status_mb()["VmHWM"]
    cache = getattr(train_set.images, "cache", None)
    if cache is not None:
        figures["cache_images"] = len(cache)
        figures["cache_hit"] = cache.hits / max(1, cache.hits + cache.misses)
    return figures


def run_child(data_dir: Path, data_path: str, args: argparse.Namespace, cache_mb: int) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.training_memory",
        CHILD_FLAG,
        str(data_dir),
        data_path,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--cache-mb",
        str(cache_mb),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise SystemExit(f"the {data_path} run on {data_dir} failed ({done.returncode}):\n{tail}")
    return json.loads(lines[-1])


def run(args: argparse.Namespace) -> Report:
    report = Report("training_memory", "training beyond memory: in memory vs streamed")
    if args.quick:
        args.sizes, args.steps, args.warmup, args.extra_cache_mb = [96], min(args.steps, 2), 1, 0
    if args.warmup < 1 or args.steps < 1:
        raise SystemExit("--warmup and --steps must be at least 1")
    report.header(
        f"sizes {', '.join(f'{n:,}' for n in args.sizes)} synthetic images (seed {args.seed}), "
        f"split {VAL_SPLIT} with seed {SEED}, batch {BATCH}; {args.warmup} warm-up + "
        f"{args.steps} timed training steps per run; stream cache {args.cache_mb} MB (and "
        f"{args.extra_cache_mb} MB in one more run at {args.sizes[0]:,}); MB = 10^6 bytes; "
        "CPU training"
    )
    rows = []
    for number, size in enumerate(args.sizes):
        report.section(f"{size:,} images")
        start = time.perf_counter()
        data_dir = synthetic_dataset(size, seed=args.seed)
        report.figure(f"data_{size}", "data set (generated once, then cached)", str(data_dir))
        report.figure(f"data_{size}_s", "  ready after", time.perf_counter() - start, "s")
        runs = [("memory", args.cache_mb), ("stream", args.cache_mb)]
        if number % 2:
            runs.reverse()
        if number == 0 and args.extra_cache_mb:
            runs.append(("stream", args.extra_cache_mb))
        for data_path, cache_mb in runs:
            figures = run_child(data_dir, data_path, args, cache_mb)
            report.check(
                f"{data_path} path used at {size}",
                figures["chosen"] == data_path,
                f"load_training_data chose {figures['chosen']}",
            )
            name = data_path if cache_mb == args.cache_mb else f"stream, cache {cache_mb} MB"
            key = f"{name.replace(', ', '_').replace(' ', '')}_{size}"
            for figure, value in figures.items():
                if figure != "chosen":
                    report.figure(f"{key}_{figure}", f"{name}: {figure}", value)
            rows.append({"size": size, "path": name, **figures})

    report.section("table")
    print(table(rows), flush=True)
    report.figures["rows"] = {"value": rows, "unit": ""}
    for size in args.sizes:
        by_path = {row["path"]: row for row in rows if row["size"] == size}
        report.outcome(
            f"{size:,} images: training img/s, stream / memory",
            by_path["stream"]["train_img_s"] / by_path["memory"]["train_img_s"],
        )
        report.outcome(
            f"{size:,} images: peak RSS, stream",
            by_path["stream"]["peak_mb"],
            unit="MB",
            target=STREAM_PEAK_TARGET_MB if size >= 20_000 else None,
            better="at_most",
        )
        report.outcome(
            f"{size:,} images: peak RSS, memory", by_path["memory"]["peak_mb"], unit="MB"
        )
    return report


def table(rows: list[dict]) -> str:
    """The RESULTS.md table."""
    lines = [
        "| images | path | loading | RSS after TF | RSS loaded | peak RSS | training img/s "
        "(cores busy) | decoding alone img/s (cores) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        decode = (
            f"{row['decode_img_s']:.0f} ({row['decode_cores']:.2f})"
            if "decode_img_s" in row
            else "-"
        )
        lines.append(
            f"| {row['images']:,} | {row['path']} | {row['load_s']:.0f} s | "
            f"{row['rss_tf_mb']:.0f} MB | {row['rss_loaded_mb']:.0f} MB | "
            f"{row['peak_mb']:.0f} MB | "
            f"{row['train_img_s']:.1f} ({row['train_cores']:.2f}) | {decode} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [CHILD_FLAG]:
        p = argparse.ArgumentParser(prog="python -m benchmarks.training_memory --child")
        p.add_argument("data_dir", type=Path)
        p.add_argument("data_path", choices=("memory", "stream"))
        p.add_argument("--steps", type=int, required=True)
        p.add_argument("--warmup", type=int, required=True)
        p.add_argument("--cache-mb", type=int, required=True)
        a = p.parse_args(argv[1:])
        print(json.dumps(child(a.data_dir, a.data_path, a.steps, a.warmup, a.cache_mb)))
        return 0
    p = parser("training_memory", __doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 20_000], help="set sizes")
    p.add_argument("--steps", type=int, default=24, help="timed training steps per run (24)")
    p.add_argument("--warmup", type=int, default=4, help="untimed steps first (4)")
    p.add_argument("--cache-mb", type=int, default=0, help="the stream path's cache (0)")
    p.add_argument(
        "--extra-cache-mb",
        type=int,
        default=256,
        help="one more stream run at the first size with this cache (256; 0: none)",
    )
    p.add_argument("--seed", type=int, default=5, help="synthetic data seed (5)")
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
