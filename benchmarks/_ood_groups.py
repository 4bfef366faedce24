"""Tuned on some groups, judged on others: the held-out tables of the OOD benchmark.

The combined detector (`model.combination`) is a logistic regression over nine features. Fitted
on the very groups it is measured on, it would look better than it is on kinds of images
nobody tuned it to. Here every figure comes from a rule that never saw the group it is judged
on:

* leave one group out: for each unlike group, the combination is fitted on the held-out
  synthetic images' first half against every *other* group, its threshold chosen on that half
  (out-of-fold scores, the coverage bound of `model.detector`: 95% kept with 90% confidence),
  and the group is scored, with the false refusals on the second half of the synthetic images;
* one half against the other: `HALVES` splits the groups in two, each with one group of real
  photographs; on the tuning half the candidate rule (`CANDIDATES`: which features) with the
  best mean AUROC is chosen and fitted; the other half is reported group by group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from benchmarks._ood_scores import auroc, refused_share

CANDIDATES: dict[str, tuple[int, ...]] = {
    "k-NN distance": (0,),
    "confidence": (1,),
    "input statistics": (2, 3, 4, 5, 6, 7, 8),
    "k-NN + confidence": (0, 1),
    "all nine": tuple(range(9)),
}
HALVES: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("noise", "text and plots", "shapes and scenes", "matplotlib photos"),
    ("blank", "screenshots", "wallpaper photos"),
)
FOLDS = 5
KEEP, CONFIDENCE = 0.95, 0.9


def features_of(classifier, images: np.ndarray, batch: int = 32) -> np.ndarray:
    """The `OOD_FEATURES` of `images` under `classifier`'s network and k-NN detector."""
    from model.combination import input_statistics, ood_features

    detector = classifier.detector
    rows = []
    for start in range(0, len(images), batch):
        chunk = np.ascontiguousarray(images[start : start + batch])
        outputs = classifier.backend.classify(chunk)
        rows.append(
            ood_features(
                detector.distances(outputs["stats"]), outputs["logit"], input_statistics(chunk)
            )
        )
    return np.concatenate(rows) if rows else np.zeros((0, 9))


def tuned_rule(
    inside: np.ndarray, groups: Sequence[np.ndarray], columns: Sequence[int], seed: int = 0
):
    """(combination, threshold): fitted on `inside` against `groups`; the threshold keeps
    `KEEP` of new in-distribution images with `CONFIDENCE`, from out-of-fold scores."""
    from model.combination import fit_combination
    from model.detector import covering_rank

    folds = np.random.default_rng(seed).permutation(len(inside)) % FOLDS
    held = np.empty(len(inside))
    for fold in range(FOLDS):
        out = folds == fold
        held[out] = fit_combination(inside[~out], groups, columns).apply(inside[out])
    rank = covering_rank(len(held), KEEP, CONFIDENCE)
    return fit_combination(inside, groups, columns), float(np.sort(held)[rank - 1])


def leave_one_group_out(
    tune: np.ndarray, judge: np.ndarray, groups: Mapping[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Per group: AUROC against `judge` and share refused by the rule tuned on `tune` and
    every other group (all nine features); `false_refusals`: of `judge`, under that rule."""
    rows = {}
    for name, group in groups.items():
        if not len(group):
            continue
        others = [g for other, g in groups.items() if other != name and len(g)]
        combination, threshold = tuned_rule(tune, others, CANDIDATES["all nine"])
        inside, outside = combination.apply(judge), combination.apply(group)
        rows[name] = {
            "images": len(group),
            "auroc": 100 * auroc(inside, outside),
            "refused": 100 * refused_share(outside, threshold),
            "false_refusals": 100 * refused_share(inside, threshold),
        }
    return rows


def half_against_half(
    tune: np.ndarray, judge: np.ndarray, groups: Mapping[str, np.ndarray]
) -> list[dict[str, object]]:
    """For each way round of `HALVES`: the candidate chosen on the tuning half (best mean
    AUROC there, each candidate fitted on it) and its figures on each group of the other."""
    results = []
    for tuning, judged in (HALVES, HALVES[::-1]):
        fit_on = [groups[g] for g in tuning if g in groups and len(groups[g])]
        scored = {}
        for candidate, columns in CANDIDATES.items():
            combination, _ = tuned_rule(tune, fit_on, columns)
            inside = combination.apply(tune)
            scored[candidate] = float(
                np.mean([auroc(inside, combination.apply(g)) for g in fit_on])
            )
        chosen = max(scored, key=scored.__getitem__)
        combination, threshold = tuned_rule(tune, fit_on, CANDIDATES[chosen])
        inside = combination.apply(judge)
        rows = {}
        for name in judged:
            group = groups.get(name)
            if group is None or not len(group):
                continue
            outside = combination.apply(group)
            rows[name] = {
                "images": len(group),
                "auroc": 100 * auroc(inside, outside),
                "refused": 100 * refused_share(outside, threshold),
            }
        results.append(
            {
                "tuned_on": list(tuning),
                "candidates_auroc": {k: 100 * v for k, v in scored.items()},
                "chosen": chosen,
                "false_refusals": 100 * refused_share(inside, threshold),
                "groups": rows,
            }
        )
    return results


def print_tables(logo: Mapping[str, dict], halves: Sequence[dict]) -> None:
    """The two tables, as the benchmark prints them."""
    print(
        "   leave one group out (tuned on the other groups and on half the held-out "
        "synthetic set, judged on the other half):",
        flush=True,
    )
    print(f"   {'group':<22}{'images':>7}{'AUROC':>9}{'refused':>9}{'false ref.':>11}")
    for name, row in logo.items():
        print(
            f"   {name:<22}{row['images']:>7}{row['auroc']:>8.1f}%{row['refused']:>8.1f}%"
            f"{row['false_refusals']:>10.1f}%",
            flush=True,
        )
    for half in halves:
        candidates = ", ".join(f"{k} {v:.1f}" for k, v in half["candidates_auroc"].items())
        print(
            f"   tuned on {', '.join(half['tuned_on'])}: chose {half['chosen']} (mean AUROC "
            f"there: {candidates}); false refusals {half['false_refusals']:.1f} %",
            flush=True,
        )
        for name, row in half["groups"].items():
            print(
                f"      {name:<22}{row['images']:>7}{row['auroc']:>8.1f}%{row['refused']:>8.1f}%",
                flush=True,
            )
