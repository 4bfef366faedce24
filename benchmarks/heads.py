"""A server's head against training the network: the learning curve at 5-100 images per class.

For each task (`benchmarks._heads_tasks`: the synthetic drawings and two binary tasks on crops of
installed photographs, split by source photo), each size and each run: draw n labelled images per
class from the task's pool, fit every head variant (`model.head.fit_head`: logistic regression at
a few L2 strengths and a prototype classifier, on the `embedding` features, the `stats`, or
both) and score it on the task's validation part (where the default is chosen, on the tasks of
`CHOOSE_ON` only) and on its fixed holdout (only reported). The baselines train the network with
`training.train.fit_network` from random weights and from the shipped weights, on the same
images, for a few epochs (slow on CPUs: fewer sizes and runs). The out-of-distribution reference
is scored as the share of the task's own holdout it keeps and of the other tasks' images and of
noise and blank images it refuses, on `stats` and on `embedding`, with its threshold chosen on
folds that keep near-duplicates together (`model.head.near_groups`, at a few factors `NEARS`)
or not. `--install` first installs the photographs' packages (`ensure_photos`, as root).

    python -m benchmarks.heads [--quick] [--install] [--runs N] [--baseline-epochs E] [--json PATH]
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks._common import parser
from benchmarks._heads_tasks import (
    CHOOSE_ON,
    REAL_TASKS,
    Task,
    available,
    ensure_photos,
    real_task,
    synthetic_task,
)

SIZES = (5, 10, 20, 50, 100)
VARIANTS: dict[str, dict] = {
    **{
        f"logistic l2={l2:g} {'+'.join(use)}": {"classifier": "logistic", "l2": l2, "use": use}
        for use in (("embedding",), ("stats",), ("embedding", "stats"))
        for l2 in (0.01, 0.1, 1.0)
    },
    **{
        f"prototype {'+'.join(use)}": {"classifier": "prototype", "use": use}
        for use in (("embedding",), ("stats",), ("embedding", "stats"))
    },
    "logistic, features and l2 chosen per server (grouped CV)": {
        "classifier": "logistic",
        "choose": True,
    },
    **{
        f"mlp 64 {'+'.join(use)}": {"classifier": "mlp", "use": use}
        for use in (("embedding",), ("embedding", "stats"))
    },
}


def features_of(classifier, images: np.ndarray) -> dict[str, np.ndarray]:
    """The shared network's `embedding` and `stats` for a batch of images (LiteRT)."""
    parts = defaultdict(list)
    for start in range(0, len(images), 32):
        outputs = classifier.backend.classify(images[start : start + 32])
        for name in ("embedding", "stats"):
            parts[name].append(outputs[name])
    return {name: np.concatenate(values) for name, values in parts.items()}


def draw(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices of each class, at random."""
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), n, replace=False) for c in (0, 1)]
    )


def subset(features: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[index] for name, values in features.items()}


def head_runs(task: Task, feats: dict, sizes, runs: int) -> list[dict]:
    """Every variant at every size and run: validation and holdout accuracy, fit seconds."""
    rows = []
    for n in sizes:
        if 2 * n > len(task.pool.labels) or n > np.bincount(task.pool.labels).min():
            continue
        for run in range(runs):
            index = draw(task.pool.labels, n, np.random.default_rng(1000 * n + run))
            for name, options in VARIANTS.items():
                started = time.perf_counter()
                logits_of = fit_variant(task, feats, index, options, seed=run)
                seconds = time.perf_counter() - started
                row = {"task": task.name, "n": n, "run": run, "variant": name, "fit_s": seconds}
                for part in ("validation", "holdout"):
                    logits = logits_of(feats[part])
                    labels = getattr(task, part).labels
                    row[part] = float(np.mean((logits >= 0) == (labels == 1)))
                rows.append(row)
    return rows


def fit_variant(task: Task, feats: dict, index: np.ndarray, options: dict, seed: int):
    """Fit one variant on the drawn pool images; returns its logit function of outputs."""
    from benchmarks._heads_mlp import MLP
    from model.head import fit_head, stack

    if options["classifier"] == "mlp":
        use = options["use"]
        mlp = MLP(stack(feats["pool"], use)[index], task.pool.labels[index], seed=seed)
        return lambda outputs: mlp.logits(stack(outputs, use))
    head = fit_head(
        subset(feats["pool"], index),
        task.pool.labels[index],
        task.class_names,
        backbone="benchmark",
        seed=seed,
        **options,
    )
    return head.logits


NEARS = (0.0, 1.5, 2.0, 3.0)  # model.head.near_groups' factor: 0 is no grouping


def unlike_images(count: int) -> np.ndarray:
    """Noise and blank images (`benchmarks._ood_data`), as the serving decode gives them."""
    from benchmarks._ood_data import build_group
    from model.preprocess import load_image

    samples = build_group("noise", count) + build_group("blank", count)
    return np.stack([load_image(sample.data) for sample in samples])


def reference_rows(tasks: list[Task], feats: dict, n: int, unlike: dict) -> list[dict]:
    """The reference on `stats` or `embedding`, with near-duplicates grouped into one fold or
    not: own holdout kept, other tasks' holdouts and noise/blank images refused (3 draws)."""
    from model.head import fit_head

    rows = []
    for task in tasks:
        others = [t.name for t in tasks if t.name != task.name]
        for reference in (("stats",), ("embedding",)):
            for near in NEARS:
                kept, refused, unlike_refused = [], [], []
                for draw_seed in range(3):
                    index = draw(task.pool.labels, n, np.random.default_rng(7 + draw_seed))
                    head = fit_head(
                        subset(feats[task.name]["pool"], index),
                        task.pool.labels[index],
                        task.class_names,
                        backbone="benchmark",
                        reference=reference,
                        near=near,
                        seed=draw_seed,
                    )
                    kept.append(
                        np.mean(head.distances(feats[task.name]["holdout"]) <= head.threshold)
                    )
                    if others:
                        refused.append(
                            np.mean(
                                np.concatenate(
                                    [
                                        head.distances(feats[o]["holdout"]) > head.threshold
                                        for o in others
                                    ]
                                )
                            )
                        )
                    unlike_refused.append(np.mean(head.distances(unlike) > head.threshold))
                rows.append(
                    {
                        "task": task.name,
                        "reference": "+".join(reference),
                        "near": near,
                        "kept_own": float(np.mean(kept)),
                        "refused_other": float(np.mean(refused)) if refused else float("nan"),
                        "refused_noise_blank": float(np.mean(unlike_refused)),
                    }
                )
    return rows


def baseline_runs(task: Task, sizes, runs: int, epochs: int) -> list[dict]:
    """The network trained on the same draws, from random weights and from the shipped ones."""
    import keras

    from model.bundle import DEFAULT_MODEL_DIR, KERAS_FILE
    from training.data import Dataset
    from training.train import TrainConfig, fit_network

    def shipped(seed: int):
        return keras.saving.load_model(DEFAULT_MODEL_DIR / KERAS_FILE, compile=False)

    rows = []
    for n in sizes:
        if n > np.bincount(task.pool.labels).min():
            continue
        for run in range(runs):
            index = draw(task.pool.labels, n, np.random.default_rng(1000 * n + run))
            paths = [Path(f"{i}.png") for i in index]
            data = Dataset(
                task.pool.images[index], task.pool.labels[index], paths, task.class_names
            )
            train_set, val_set = data.split(0.2, run)
            for name, network in (("from random weights", None), ("from shipped weights", shipped)):
                config = TrainConfig(Path("."), epochs=epochs, seed=run, verbose=0)
                started = time.perf_counter()
                model, _ = fit_network(config, train_set, val_set, network=network)
                seconds = time.perf_counter() - started
                scores = model.predict(task.holdout.images, verbose=0).reshape(-1)
                accuracy = float(np.mean((scores >= 0.5) == (task.holdout.labels == 1)))
                rows.append(
                    {
                        "task": task.name,
                        "n": n,
                        "run": run,
                        "variant": f"network {name} ({epochs} epochs)",
                        "fit_s": seconds,
                        "holdout": accuracy,
                    }
                )
    return rows


def fit_time(task: Task, feats: dict, options: dict, per_class: int) -> dict:
    """Seconds to fit a head (default options but `options`) on `per_class` images per class of
    the task's pool, drawn with replacement where the pool has fewer (the best of three)."""
    from model.head import fit_head

    rng = np.random.default_rng(0)
    index = np.concatenate(
        [rng.choice(np.flatnonzero(task.pool.labels == c), per_class, replace=True) for c in (0, 1)]
    )
    times = []
    for _ in range(3):
        started = time.perf_counter()
        fit_head(
            subset(feats["pool"], index),
            task.pool.labels[index],
            task.class_names,
            backbone="benchmark",
            **options,
        )
        times.append(time.perf_counter() - started)
    return {"images": len(index), "seconds": min(times)}


def summary(rows: list[dict]) -> dict[tuple, dict]:
    """Mean holdout (and validation) accuracy and fit time per (task, variant, n)."""
    groups = defaultdict(list)
    for row in rows:
        groups[(row["task"], row["variant"], row["n"])].append(row)
    return {
        key: {
            "runs": len(group),
            "holdout": float(np.mean([r["holdout"] for r in group])),
            "validation": float(np.mean([r.get("validation", np.nan) for r in group])),
            "fit_s": float(np.mean([r["fit_s"] for r in group])),
        }
        for key, group in groups.items()
    }


def choose(summaries: dict, sizes=(10, 20, 50)) -> str:
    """The variant with the best mean validation accuracy over `CHOOSE_ON` tasks and `sizes`."""
    means = {  # the MLP is compared, not served: a head is linear (model.head)
        name: np.mean(
            [
                s["validation"]
                for (task, variant, n), s in summaries.items()
                if variant == name and task in CHOOSE_ON and n in sizes
            ]
        )
        for name in VARIANTS
        if VARIANTS[name]["classifier"] != "mlp"
    }
    return max(means, key=lambda name: means[name])


def table(summaries: dict, variants: list[str], sizes) -> str:
    tasks = sorted({task for task, _, _ in summaries}, key=lambda t: (t != "synthetic", t))
    lines = []
    for task in tasks:
        lines += [
            f"\n{task} (holdout accuracy, mean of runs; fit seconds at the largest size)\n",
            "| variant | " + " | ".join(f"{n}/class" for n in sizes) + " | runs | fit s |",
            "|---" * (len(sizes) + 3) + "|",
        ]
        for variant in variants:
            cells, fit, runs = [], "", ""
            for n in sizes:
                s = summaries.get((task, variant, n))
                cells.append(f"{s['holdout']:.1%}" if s else "-")
                if s:
                    fit, runs = f"{s['fit_s']:.2f}", str(s["runs"])
            if any(cell != "-" for cell in cells):
                lines.append(f"| {variant} | " + " | ".join(cells) + f" | {runs} | {fit} |")
    return "\n".join(lines)


DEFAULT_VARIANT = "logistic l2=0.1 embedding"  # model.head's defaults


def targets(summaries: dict, fit: dict, tasks: list[Task], n: int = 20) -> list[dict]:
    """The issue's targets at `n` per class, as `python -m benchmarks` summarises them."""
    outcomes = []

    def outcome(name: str, met: bool | None, text: str) -> None:
        verdict = "report" if met is None else ("met" if met else "NOT MET")
        outcomes.append({"name": name, "met": met, "line": f"{name}: {text} ({verdict})"})

    for task in tasks:
        head = summaries.get((task.name, DEFAULT_VARIANT, n))
        random = [
            s
            for (t, v, size), s in summaries.items()
            if t == task.name and size == n and "random weights" in v
        ]
        if head is None:
            continue
        if task.name != "synthetic":
            outcome(
                f"{task.name}: head at {n}/class >= 85%",
                head["holdout"] >= 0.85,
                f"{head['holdout']:.1%}",
            )
        if random:
            gap = head["holdout"] - random[0]["holdout"]
            outcome(
                f"{task.name}: head at {n}/class >= 20 points above random weights",
                gap >= 0.20,
                f"{head['holdout']:.1%} vs {random[0]['holdout']:.1%}",
            )
    outcome(
        f"head fit on {fit['images']} images < 2 s",
        fit["seconds"] < 2.0,
        f"{fit['seconds']:.2f} s",
    )
    return outcomes


def main(argv: list[str] | None = None) -> int:
    p = parser("heads", __doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=None, help="runs per size (heads)")
    p.add_argument("--baseline-runs", type=int, default=1)
    p.add_argument("--baseline-epochs", type=int, default=10)
    p.add_argument("--baseline-sizes", default="5,20,100")
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--split", type=int, default=0, help="another split of the photos")
    p.add_argument("--install", action="store_true", help="apt-get the photos' packages (root)")
    args = p.parse_args(argv)
    from model.bundle import DEFAULT_MODEL_DIR
    from model.runtime import Classifier

    quick = args.quick
    sizes = (5, 20) if quick else SIZES
    runs = args.runs or (1 if quick else 5)
    per_photo = 4 if quick else 20
    started = time.perf_counter()
    tasks = [synthetic_task(*((12, 10, 10) if quick else (120, 60, 100)))]
    why = ensure_photos() if args.install else None
    if available():
        tasks += [real_task(name, per_photo, split=args.split) for name in REAL_TASKS]
    else:
        print(
            f"the real tasks' photographs are not installed ({why or 'see --install'}): "
            "the synthetic task only"
        )
    classifier = Classifier.load(args.model or DEFAULT_MODEL_DIR, "litert")
    feats = {
        task.name: {
            part: features_of(classifier, getattr(task, part).images)
            for part in ("pool", "validation", "holdout")
        }
        for task in tasks
    }
    print(f"tasks and features ready in {time.perf_counter() - started:.0f} s")
    for task in tasks:
        photos = (
            f" (source photos: {len(set(task.pool.sources))} in the pool, "
            f"{len(set(task.holdout.sources))} in the holdout)"
            if task.name != "synthetic"
            else ""
        )
        print(
            f"  {task.name}: pool {len(task.pool.labels)}, validation "
            f"{len(task.validation.labels)}, holdout {len(task.holdout.labels)} images{photos}"
        )
    rows = [row for task in tasks for row in head_runs(task, feats[task.name], sizes, runs)]
    summaries = summary(rows)
    chosen = choose(summaries, sizes=(5, 20) if quick else (10, 20, 50))
    baselines = []
    if not args.no_baselines:
        b_sizes = (5,) if quick else tuple(int(s) for s in args.baseline_sizes.split(","))
        epochs = 1 if quick else args.baseline_epochs
        for task in tasks[: 1 if quick else None]:
            baselines += baseline_runs(task, b_sizes, args.baseline_runs, epochs)
    summaries.update(summary(baselines))
    unlike = features_of(classifier, unlike_images(4 if quick else 20))
    references = reference_rows(tasks, feats, 20 if not quick else 5, unlike)
    variants = [chosen, *[v for v in VARIANTS if v != chosen]]
    variants += sorted({row["variant"] for row in baselines})
    print(f"\nchosen on {', '.join(CHOOSE_ON)} (validation parts): {chosen}")
    print(table(summaries, variants, sizes))
    print("\nthe reference at 20 per class: own holdout kept / other tasks / noise+blank refused")
    for row in references:
        print(
            f"  {row['task']}: {row['reference']}, near {row['near']:g}: kept "
            f"{row['kept_own']:.1%}, refused {row['refused_other']:.1%} / "
            f"{row['refused_noise_blank']:.1%}"
        )
    timing = {
        name: fit_time(tasks[-1], feats[tasks[-1].name], options, 200)
        for name, options in (("default", {}), ("chosen", VARIANTS[chosen]))
    }
    for name, figures in timing.items():
        print(
            f"\nfitting the {name} head on {figures['images']} images of {tasks[-1].name}: "
            f"{figures['seconds']:.2f} s"
        )
    outcomes = targets(summaries, timing["default"], tasks)
    print()
    for outcome in outcomes:
        print(outcome["line"])
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "tasks": [task.name for task in tasks],
                    "outcomes": outcomes,
                    "chosen": chosen,
                    "fit": timing,
                    "runs": rows,
                    "baselines": baselines,
                    "references": references,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
