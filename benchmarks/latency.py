"""Single-image latency, image bytes -> score: the notebook's way vs the project's fast path.

* notebook: the Keras model loaded from `model.keras`; PIL decode, `tf.image.resize`,
  `model.predict` on a batch of one (see `benchmarks/_notebook.py`).
* ours: `model.preprocess.load_image` + `Classifier.scores` on LiteRT (what the bot runs).
* also shown: our TensorFlow backend (`tf.function`, what `auto` picks on a GPU machine).

Before timing, the fast path's scores are checked against the Keras model called directly,
`model(x, training=False)`, on the same preprocessed uint8 images cast to float32: they must
agree within 1e-4 or the benchmark stops.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._common import (
    Report,
    Stats,
    cycle,
    interleave,
    ms,
    parser,
    resolve_model,
    run_main,
    sample_pngs,
)

TOLERANCE = 1e-4
TARGET = 25.0
IMAGES = 32
OURS_PER_ROUND = 10
TF_PER_ROUND = 3


def score_differences(classifier, keras_model, images: np.ndarray) -> dict[str, float]:
    """Largest |score - Keras score| for a batch call and for one-image calls."""
    expected = np.asarray(keras_model(images.astype(np.float32), training=False)).reshape(-1)
    batch = classifier.scores(images)
    single = np.array([classifier.scores(images[i : i + 1])[0] for i in range(len(images))])
    return {
        "batch": float(np.max(np.abs(batch - expected))),
        "single": float(np.max(np.abs(single - expected))),
    }


def run(args: argparse.Namespace) -> Report:
    from benchmarks._notebook import load_keras_model, notebook_score
    from model.preprocess import load_image
    from model.runtime import Classifier

    report = Report("latency", "one image, decode -> score: the notebook's way vs ours")
    model_dir, origin = resolve_model(args.model)
    rounds = args.rounds or (8 if args.quick else 30)
    report.header(
        f"model: {origin}\n{rounds} rounds, interleaved; each round: 1 notebook call, "
        f"{OURS_PER_ROUND} of ours (LiteRT), {TF_PER_ROUND} of our TensorFlow backend; "
        f"{IMAGES} different 200x200 PNGs in turn"
    )
    pngs = sample_pngs(IMAGES)
    litert = Classifier.load(model_dir, "litert")
    tensorflow = Classifier.load(model_dir, "tensorflow")
    keras_model = load_keras_model(model_dir)

    report.section("correctness")
    images = np.stack([load_image(png) for png in pngs])
    for name, classifier in (("LiteRT", litert), ("TensorFlow backend", tensorflow)):
        diff = score_differences(classifier, keras_model, images)
        worst = max(diff.values())
        report.figure(f"max_diff_{classifier.backend_name}", f"{name} vs Keras, max |diff|", worst)
        report.check(
            f"{name} scores match Keras model(x, training=False)",
            worst <= TOLERANCE,
            f"largest difference {worst:.2g} over {IMAGES} images, batched and one at a time; "
            f"tolerance {TOLERANCE:g}",
        )
    notebook_scores = np.array([notebook_score(keras_model, png) for png in pngs])
    ours_scores = litert.scores(images)
    report.figure(
        "max_diff_notebook_path",
        "notebook path vs ours, max |diff| (info)",
        float(np.max(np.abs(notebook_scores - ours_scores))),
    )

    report.section("timing (decode -> score, one image)")
    next_a, next_b, next_c = cycle(pngs), cycle(pngs), cycle(pngs)
    samples = interleave(
        {
            "notebook": lambda: notebook_score(keras_model, next_a()),
            "ours": lambda: litert.scores([load_image(next_b())])[0],
            "tensorflow": lambda: tensorflow.scores([load_image(next_c())])[0],
        },
        rounds,
        per_round={"ours": OURS_PER_ROUND, "tensorflow": TF_PER_ROUND},
        warmup=3,
    )
    notebook = report.stats(
        "notebook_ms",
        "notebook: PIL + tf.image.resize + predict",
        Stats.of(ms(samples["notebook"])),
        "ms",
    )
    tf_stats = report.stats(
        "tensorflow_ms",
        "ours, TensorFlow backend (tf.function)",
        Stats.of(ms(samples["tensorflow"])),
        "ms",
    )
    ours = report.stats(
        "ours_ms", "ours: load_image + LiteRT scores", Stats.of(ms(samples["ours"])), "ms"
    )
    report.outcome("ours, median latency", ours.median, unit="ms")
    report.outcome(
        "latency: notebook / our TensorFlow backend (medians)", notebook.median / tf_stats.median
    )
    report.outcome(
        "latency: notebook / ours (medians)",
        notebook.median / ours.median,
        target=TARGET,
        note=f"p95s: {notebook.p95 / ours.p95:.1f}x",
    )
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("latency", __doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=None, help="default 30 (8 with --quick)")
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
