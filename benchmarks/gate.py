"""A server's gate over many simulated retrains: "surely better" against plain "not worse".

Each retrain is simulated on a holdout of N images: the current model answers each right with
probability 0.8, the candidate with 0.8 + delta, their mistakes shared as a real pair of models
shares them (the candidate's chance of being right is drawn from the same per-image draw as the
current model's with probability `--shared`, else from its own). "Not worse" publishes when the
candidate's holdout accuracy is at least the current one's (the gate before issue 20); "surely
better" is `model.compare` (the exact one-sided McNemar test, p < 0.05). Reported: how often each
publishes a worse candidate (delta < 0), an equal one, and refuses a better one (delta > 0).
Pure NumPy: no model, no bot.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._common import Report, parser, run_main

CURRENT = 0.8
DELTAS = (-0.10, -0.05, 0.0, 0.05, 0.10, 0.15)
HOLDOUTS = (10, 20, 40, 100, 400)
TARGET = 0.05  # the issue's: under 5% of worse models published


def simulate(
    images: int, delta: float, runs: int, shared: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per run: whether "not worse" and whether "surely better" publishes the candidate."""
    from model.compare import Comparison

    mine = rng.random((runs, images))
    theirs = np.where(rng.random((runs, images)) < shared, mine, rng.random((runs, images)))
    right_before, right_after = mine < CURRENT, theirs < CURRENT + delta
    not_worse = right_after.sum(axis=1) >= right_before.sum(axis=1)
    surely = np.empty(runs, dtype=bool)
    for run in range(runs):
        comparison = Comparison(
            images=images,
            before=float(right_before[run].mean()),
            after=float(right_after[run].mean()),
            gained=int((right_after[run] & ~right_before[run]).sum()),
            lost=int((right_before[run] & ~right_after[run]).sum()),
        )
        surely[run] = comparison.better
    return not_worse, surely


def run(args: argparse.Namespace) -> Report:
    report = Report("gate", "a server's gate: surely better against not worse")
    runs = args.runs or (300 if args.quick else 2000)
    report.header(
        f"{runs} simulated retrains per cell; current model {CURRENT:.0%} right; mistakes "
        f"shared with probability {args.shared}; seed {args.seed}"
    )
    rng = np.random.default_rng(args.seed)
    worst = 0.0
    for images in HOLDOUTS:
        report.section(
            f"{images} held-out images: share of retrains published (not worse | surely)"
        )
        for delta in DELTAS:
            not_worse, surely = simulate(images, delta, runs, args.shared, rng)
            key = f"n{images}_d{delta:+.2f}"
            report.figure(
                f"{key}_not_worse", f"delta {delta:+.2f}: not worse", float(not_worse.mean())
            )
            report.figure(
                f"{key}_surely", f"delta {delta:+.2f}: surely better", float(surely.mean())
            )
            if delta < 0:
                worst = max(worst, float(surely.mean()))
    report.outcome(
        "worse candidates published by 'surely better' (the worst cell)",
        worst,
        unit="",
        target=TARGET,
        better="at_most",
    )
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("gate", __doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=None, help="retrains per cell (default 2000)")
    p.add_argument("--shared", type=float, default=0.7, help="how much the models' mistakes agree")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
