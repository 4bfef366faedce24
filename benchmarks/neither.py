"""What a server's "neither" images should teach its head: two ways, at one false-refusal rate.

A server labels n synthetic Jedi and Sith drawings (`training.synthetic`) and m images as
neither, drawn from the groups of `benchmarks._ood_data` (noise, blank images, text and plots,
screenshots, scenes without a figure, photographs). Each run splits every group's images and the
drawings in three: what the server labels, a choosing part and a report part. Every rule scores
an image (higher: refuse) and refuses above a threshold set on the choosing part's drawings so
that `FALSE_REFUSALS` of them are refused; the rule is chosen by the outliers it refuses on the
choosing part, and both are then reported on the report part, never seen before:

- `reference`: today's head alone (the k-th nearest labelled image in `stats`, neither unused);
- `nearer`: that distance, times how much nearer the image is to the neither-images than to the
  labelled ones when it is (`d_class * max(1, d_class / d_neither)`);
- `third output`: that distance, times the odds of a logistic classifier of neither against the
  two classes on `embedding` when above 1 (`d_class * max(1, exp(logit))`).

    python -m benchmarks.neither [--quick] [--runs N] [--json PATH]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks._common import parser

FALSE_REFUSALS = 0.05  # of the server's own held-out drawings
LABELLED = 20  # drawings per class the server labels
GROUP_SIZE = 30  # images per group of unlike images
RULES = ("reference", "nearer", "third output")


def features(quick: bool) -> tuple[dict, np.ndarray, dict, np.ndarray]:
    """The shared network's features of the drawings (with labels) and of the unlike images
    (with their group number), by the serving decode and LiteRT."""
    from benchmarks._heads_tasks import synthetic_task
    from benchmarks._ood_data import GROUPS, build_group
    from benchmarks.heads import features_of
    from model.bundle import DEFAULT_MODEL_DIR
    from model.preprocess import load_image
    from model.runtime import Classifier

    per_part = 10 if quick else 30
    task = synthetic_task(per_part, per_part, per_part)
    classifier = Classifier.load(DEFAULT_MODEL_DIR, "litert")
    images = np.concatenate([task.pool.images, task.validation.images, task.holdout.images])
    labels = np.concatenate([task.pool.labels, task.validation.labels, task.holdout.labels])
    count = 9 if quick else GROUP_SIZE
    unlike, groups = [], []
    for number, group in enumerate(GROUPS):
        samples = build_group(group, count)[:count]
        unlike += [load_image(sample.data) for sample in samples]
        groups += [number] * len(samples)
    return (
        features_of(classifier, images),
        labels,
        features_of(classifier, np.stack(unlike)),
        np.asarray(groups),
    )


def thirds(index: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    shuffled = rng.permutation(index)
    return tuple(np.array_split(shuffled, 3))


def scores(
    rule: str, drawn: dict, labels: np.ndarray, neither: dict, query: dict, seed: int
) -> np.ndarray:
    """The rule's refusal score of each `query` image, learned from the labelled drawings and
    the neither-images."""
    from model.head import fit_head, fit_logistic, stack, standardisation

    head = fit_head(drawn, labels, ("jedi", "sith"), backbone="benchmark", seed=seed)
    d_class = head.distances(query)
    if rule == "reference":
        return d_class
    if rule == "nearer":  # as `model.head` serves it
        with_neither = fit_head(
            drawn, labels, ("jedi", "sith"), backbone="benchmark", seed=seed, neither=neither
        )
        return with_neither.distances(query)
    x = np.concatenate([stack(drawn, ("embedding",)), stack(neither, ("embedding",))])
    y = np.concatenate([np.zeros(len(labels)), np.ones(len(stack(neither, ("embedding",))))])
    center, scale = standardisation(x)
    weights, bias = fit_logistic((x - center) / scale, y)
    logit = (stack(query, ("embedding",)) - center) / scale @ weights + bias
    return d_class * np.maximum(1.0, np.exp(np.minimum(logit, 50.0)))


def run(feats: tuple, seed: int) -> dict[str, dict[str, float]]:
    """One split: per rule, the drawings and outliers refused on the choosing and report parts."""
    drawn, labels, unlike, groups = feats
    rng = np.random.default_rng(seed)
    parts = [thirds(np.flatnonzero(labels == c), rng) for c in (0, 1)]
    taught = np.concatenate([parts[0][0][:LABELLED], parts[1][0][:LABELLED]])
    choosing = np.concatenate([parts[0][1], parts[1][1]])
    report = np.concatenate([parts[0][2], parts[1][2]])
    group_parts = [thirds(np.flatnonzero(groups == g), rng) for g in np.unique(groups)]
    neither = np.concatenate([p[0] for p in group_parts])
    out_choose = np.concatenate([p[1] for p in group_parts])
    out_report = np.concatenate([p[2] for p in group_parts])

    def rows(features: dict, index: np.ndarray) -> dict:
        return {name: values[index] for name, values in features.items()}

    result = {}
    for rule in RULES:

        def score(features: dict, index: np.ndarray, rule: str = rule) -> np.ndarray:
            return scores(
                rule,
                rows(drawn, taught),
                labels[taught],
                rows(unlike, neither),
                rows(features, index),
                seed,
            )

        threshold = float(np.quantile(score(drawn, choosing), 1.0 - FALSE_REFUSALS))
        result[rule] = {
            "choose_false": float(np.mean(score(drawn, choosing) > threshold)),
            "choose_outliers": float(np.mean(score(unlike, out_choose) > threshold)),
            "report_false": float(np.mean(score(drawn, report) > threshold)),
            "report_outliers": float(np.mean(score(unlike, out_report) > threshold)),
        }
        per_group = {}
        for g in np.unique(groups[out_report]):
            mine = out_report[groups[out_report] == g]
            per_group[int(g)] = float(np.mean(score(unlike, mine) > threshold))
        result[rule]["report_per_group"] = per_group
    head = fit_head_with(drawn, labels, unlike, taught, neither, seed)
    result["served"] = {
        "report_false": float(np.mean(head.distances(rows(drawn, report)) > head.threshold)),
        "report_outliers": float(
            np.mean(head.distances(rows(unlike, out_report)) > head.threshold)
        ),
    }
    return result


def fit_head_with(drawn, labels, unlike, taught, neither, seed):
    """The head `!retrain` would fit: its own threshold, chosen on its own folds."""
    from model.head import fit_head

    return fit_head(
        {name: values[taught] for name, values in drawn.items()},
        labels[taught],
        ("jedi", "sith"),
        backbone="benchmark",
        seed=seed,
        neither={name: values[neither] for name, values in unlike.items()},
    )


def main(argv: list[str] | None = None) -> int:
    from benchmarks._ood_data import GROUPS

    cli = parser("neither", __doc__.splitlines()[0])
    cli.add_argument("--runs", type=int, default=5, help="splits, each with its own seed")
    args = cli.parse_args(argv)
    runs = 2 if args.quick else args.runs
    feats = features(args.quick)
    results = [run(feats, seed) for seed in range(runs)]

    def mean(rule: str, key: str) -> float:
        return float(np.mean([r[rule][key] for r in results]))

    chosen = max(RULES[1:], key=lambda rule: mean(rule, "choose_outliers"))
    print(
        f"{runs} runs, {LABELLED} drawings per class labelled, false refusals set to "
        f"{FALSE_REFUSALS:.0%} on the choosing part"
    )
    print("rule | choosing: drawings refused, outliers refused | report: drawings, outliers")
    for rule in RULES:
        print(
            f"{rule} | {mean(rule, 'choose_false'):.1%}, {mean(rule, 'choose_outliers'):.1%} | "
            f"{mean(rule, 'report_false'):.1%}, {mean(rule, 'report_outliers'):.1%}"
        )
    print(f"chosen on the choosing part: {chosen}")
    served = mean("served", "report_false"), mean("served", "report_outliers")
    print(
        "the served head (nearer, its own out-of-fold threshold), report part: drawings refused "
        f"{served[0]:.1%}, outliers refused {served[1]:.1%}"
    )
    for rule in RULES:
        groups = {
            GROUPS[g]: float(np.mean([r[rule]["report_per_group"].get(g, np.nan) for r in results]))
            for g in results[0][rule]["report_per_group"]
        }
        print(
            f"report, {rule}, refused per group: "
            + ", ".join(f"{name} {share:.0%}" for name, share in groups.items())
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "chosen": chosen}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
