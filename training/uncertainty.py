"""Fit the out-of-distribution detector and the calibration of a trained network's scores.

Both are fitted from the network's own outputs on the images of the training run, with no other
data:

- the out-of-distribution detector (`model.detector`) describes the *training* images' feature
  statistics; its threshold is chosen on the *validation* images, which the network never
  trained on, to keep at least `keep` (95%) of new images like them, with 90% confidence;
- the temperature (`model.calibration`) is fitted on the validation images' logits. Its figures
  are reported by 5-fold cross-validation on the validation split: each fold is scored with a
  temperature fitted on the other four, so no image is scored by a temperature it helped fit.

Small validation splits (a retrain from 20 images per class validates on about 8) get honest
fallbacks, recorded in `model.json`: the detector's bound cannot be met below 45 validation
images, so the threshold is then the largest validation distance and the figures say what that
does promise; and a temperature fitted on fewer than `MIN_SHARPEN_IMAGES` images may soften the
scores but never sharpen them (a handful of images the network gets right would otherwise drive
the temperature to its floor and make every answer "100% sure").

`fit_uncertainty` returns the detector, the calibration and the figures `model.json` records;
`plot_reliability` draws `calibration.png`. `fit_for_network` and `write_uncertainty_files` are
what a training run (`training.train`) calls at its end, `summary` what it prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.bundle import DETECTOR_FILE, TFLITE_FILE
from model.calibration import (
    Calibration,
    brier_score,
    expected_calibration_error,
    reliability,
    sigmoid,
)
from model.combination import fit_combination, input_statistics, ood_features
from model.detector import (
    DEFAULT_CONFIDENCE,
    DEFAULT_KEEP,
    STAT_LAYERS,
    Detector,
    channel_statistics,
    covering_rank,
)

BATCH = 32
FOLDS = 5
MIN_SHARPEN_IMAGES = 50  # fewer validation images than this: the temperature is at least 1
TUNING_PER_KIND = 40  # outliers of each kind the combined detector is tuned on
TUNING_SEED = 1_000_003  # added to the run's seed: outliers that Outlier Exposure did not see


@dataclass(frozen=True)
class NetworkOutputs:
    """What the inference network says about a set of images: logits and feature statistics,
    and the images' own `input_statistics`."""

    logits: np.ndarray  # (n,)
    statistics: np.ndarray  # (n, d): `channel_statistics` of `STAT_LAYERS`
    inputs: np.ndarray | None = None  # (n, 7): `model.combination.input_statistics`

    def features(self, detector: Detector) -> np.ndarray:
        """The combined detector's `OOD_FEATURES` of these images under `detector`'s k-NN."""
        inputs = self.inputs if self.inputs is not None else np.zeros((len(self.logits), 7))
        return ood_features(detector.distances(self.statistics), self.logits, inputs)


@dataclass(frozen=True)
class UncertaintyFit:
    """The detector and the calibration fitted for one network, and what model.json records."""

    detector: Detector
    calibration: Calibration
    figures: dict[str, dict]  # "calibration" and "detector", as recorded in model.json
    validation_scores: np.ndarray  # the network's own scores of the validation images
    reliability_before: list[dict]
    reliability_after: list[dict]


def network_outputs(
    inference,
    images: np.ndarray,
    layers: Sequence[str] = STAT_LAYERS,
    check: Callable[[], None] | None = None,
) -> NetworkOutputs:
    """Run the Keras inference network over `images` in batches (maps are large: 2.5 MB each).

    `check` is called before each batch (a cancellation raises from it)."""
    logits, statistics, inputs = [], [], []
    for start in range(0, len(images), BATCH):
        if check is not None:
            check()
        batch = np.asarray(images[start : start + BATCH])
        outputs = inference(batch.astype(np.float32), training=False)
        logits.append(np.asarray(outputs["logit"], dtype=np.float64).reshape(-1))
        maps = {name: np.asarray(outputs[name]) for name in layers}
        statistics.append(channel_statistics(maps, layers))
        inputs.append(input_statistics(batch))
    if not logits:
        return NetworkOutputs(np.zeros((0,)), np.zeros((0, 0)), np.zeros((0, 7)))
    return NetworkOutputs(
        np.concatenate(logits), np.concatenate(statistics), np.concatenate(inputs)
    )


def fit_uncertainty(
    train: NetworkOutputs,
    validation: NetworkOutputs,
    validation_labels: np.ndarray,
    *,
    keep: float = DEFAULT_KEEP,
    unlike: dict[str, NetworkOutputs] | None = None,
    seed: int = 0,
    outliers: dict[str, NetworkOutputs] | None = None,
) -> UncertaintyFit:
    """Fit the detector (train, threshold on validation) and the temperature (validation).

    With `outliers` (groups of images that are neither class, not trained on), the detector is
    the combined one (`model.combination`): fitted on the validation images against them, its
    threshold chosen on out-of-fold validation scores. `unlike` are groups of images nothing
    like the training data (noise, blank images) whose refusal rate is recorded as a sanity
    check; they are not used to fit anything.
    """
    labels = np.asarray(validation_labels).astype(int)
    detector = Detector.fit(train.statistics, seed=seed)
    tuning = {name: group for name, group in (outliers or {}).items() if len(group.logits)}
    if tuning and len(labels) >= FOLDS:
        detector, validation_distances = _combined(detector, validation, tuning, seed)
    else:
        validation_distances = detector.distances(validation.statistics)
    detector = detector.with_threshold(validation_distances, keep, DEFAULT_CONFIDENCE)

    def distances(outputs: NetworkOutputs) -> np.ndarray:
        if detector.combination is None:
            return detector.distances(outputs.statistics)
        return detector.combination.apply(outputs.features(detector))

    calibration = fit_temperature(validation.logits, labels)
    raw = sigmoid(validation.logits)
    held_out = _cross_validated_scores(validation.logits, labels, seed)
    refused = {
        name: float(np.mean(distances(outputs) > detector.threshold))
        for name, outputs in (unlike or {}).items()
        if len(outputs.logits)
    }
    tuned = {
        name: float(np.mean(distances(outputs) > detector.threshold))
        for name, outputs in tuning.items()
    }
    figures = {
        "calibration": {
            "method": "temperature scaling",
            "temperature": calibration.temperature,
            "fitted_on": f"validation split ({len(labels)} images)",
            "reported_on": f"{FOLDS}-fold cross-validation on the validation split",
            "ece_bins": 15,
            "ece_before": expected_calibration_error(raw, labels),
            "ece_after": expected_calibration_error(held_out, labels),
            "brier_before": brier_score(raw, labels),
            "brier_after": brier_score(held_out, labels),
            **_calibration_caveat(len(labels)),
        },
        "detector": {
            **detector.describe(),
            "confidence": DEFAULT_CONFIDENCE,
            **threshold_rule(len(validation_distances), keep, DEFAULT_CONFIDENCE),
            "validation": {
                "images": len(validation_distances),
                "refused": float(np.mean(validation_distances > detector.threshold)),
                "median_distance": float(np.median(validation_distances)),
            },
            "refused_unlike": refused,
            **({"refused_tuning_outliers": tuned} if detector.combination is not None else {}),
        },
    }
    return UncertaintyFit(
        detector,
        calibration,
        figures,
        raw,
        reliability(raw, labels),
        reliability(held_out, labels),
    )


def _combined(
    detector: Detector,
    validation: NetworkOutputs,
    outliers: dict[str, NetworkOutputs],
    seed: int,
) -> tuple[Detector, np.ndarray]:
    """The combined detector fitted on all the validation images against `outliers`, and each
    validation image's distance from a combination fitted without its fold (the threshold is
    chosen on these, so no image is scored by a rule it helped fit)."""
    inside = validation.features(detector)
    groups = [group.features(detector) for group in outliers.values()]
    folds = np.random.default_rng(seed).permutation(len(inside)) % FOLDS
    held_out = np.empty(len(inside))
    for fold in range(FOLDS):
        out = folds == fold
        held_out[out] = fit_combination(inside[~out], groups).apply(inside[out])
    return detector.with_combination(fit_combination(inside, groups)), held_out


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    """`Calibration.fit`, except that on fewer than `MIN_SHARPEN_IMAGES` images the temperature
    is never below 1: so few images may say the network is too sure, not that it is too shy."""
    fitted = Calibration.fit(logits, labels)
    if len(logits) < MIN_SHARPEN_IMAGES and fitted.temperature < 1.0:
        return Calibration(1.0)
    return fitted


def _calibration_caveat(images: int) -> dict[str, str]:
    if images >= MIN_SHARPEN_IMAGES:
        return {}
    return {
        "note": f"fitted and scored on only {images} validation images: rough figures, and the "
        f"temperature is kept at 1 or above (below {MIN_SHARPEN_IMAGES} images it may soften "
        "the scores, never sharpen them)"
    }


def threshold_rule(n: int, keep: float, confidence: float) -> dict[str, object]:
    """What the threshold chosen from `n` validation distances promises (`model.json`).

    With enough images it is the coverage bound: at least `keep` of new images like them kept,
    with `confidence`. With too few, `Detector.with_threshold` falls back to the largest
    distance, which keeps n / (n + 1) of new images on average and at least
    (1 - confidence) ** (1 / n) of them with `confidence`; that is what is recorded then.
    """
    needed = math.ceil(math.log(1.0 - confidence) / math.log(keep)) if 0.0 < keep < 1.0 else None
    rank = covering_rank(n, keep, confidence) if n else 0
    met = needed is not None and n >= needed
    if met:
        return {
            "threshold_rule": "coverage bound",
            "guarantee": {"keep": keep, "confidence": confidence},
            "expected_keep": rank / (n + 1),
        }
    floor = (1.0 - confidence) ** (1.0 / n) if n else 0.0
    needs = f"; the {keep:.0%} bound needs {needed}" if needed else ""
    return {
        "threshold_rule": "largest validation distance",
        "guarantee": {"keep": floor, "confidence": confidence},
        "expected_keep": n / (n + 1) if n else 0.0,
        "note": f"only {n} validation images{needs}: the threshold is the largest validation "
        f"distance, which keeps about {n / (n + 1):.0%} of new images like the training ones "
        f"on average and at least {floor:.0%} of them with {confidence:.0%} confidence",
    }


def _cross_validated_scores(logits: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Each image's calibrated score from a temperature fitted on the other folds."""
    folds = np.random.default_rng(seed).permutation(len(logits)) % FOLDS
    scores = np.empty(len(logits), dtype=np.float64)
    for fold in range(FOLDS):
        inside = folds == fold
        if not inside.any():
            continue
        fitted = fit_temperature(logits[~inside], labels[~inside])
        scores[inside] = fitted.apply(logits[inside])
    return scores


def unlike_images(seed: int = 0, count: int = 16) -> dict[str, np.ndarray]:
    """Images no model of Jedi and Sith should claim: uniform noise and single colours."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (count, 200, 200, 3), dtype=np.uint8)
    colours = rng.integers(0, 256, (count, 1, 1, 3), dtype=np.uint8)
    blank = np.broadcast_to(colours, (count, 200, 200, 3)).copy()
    return {"noise": noise, "blank": blank}


def plot_reliability(fit: UncertaintyFit, path: Path) -> None:
    """`calibration.png`: accuracy against confidence per bin, before and after calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = fit.figures["calibration"]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(6, 6.5), height_ratios=(3, 1), sharex=True, constrained_layout=True
    )
    top.plot([0.5, 1], [0.5, 1], color="0.6", linestyle="--", label="perfectly calibrated")
    for rows, name, colour, key in (
        (fit.reliability_before, "network's score", "tab:red", "ece_before"),
        (fit.reliability_after, "calibrated", "tab:blue", "ece_after"),
    ):
        confidence = [row["confidence"] for row in rows]
        accuracy = [row["accuracy"] for row in rows]
        top.plot(
            confidence, accuracy, marker="o", color=colour, label=f"{name} (ECE {figures[key]:.3f})"
        )
        bottom.bar(
            [(row["low"] + row["high"]) / 2 for row in rows],
            [row["count"] for row in rows],
            width=1 / 15 * (0.45 if colour == "tab:red" else 0.9),
            color=colour,
            alpha=0.6,
        )
    top.set_ylabel("share correct")
    top.set_ylim(0.4, 1.02)
    top.set_title(
        f"Reliability: {figures['fitted_on']}, temperature {figures['temperature']:.2f}\n"
        f"scored by {figures['reported_on']}",
        fontsize=9,
    )
    top.legend(loc="lower right", fontsize=8)
    bottom.set_xlim(0.48, 1.01)
    bottom.set_xlabel("confidence of the verdict")
    bottom.set_ylabel("images")
    bottom.set_yscale("log")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fit_for_network(
    model,
    train_set,
    val_set,
    *,
    keep: float,
    seed: int,
    report: Callable[[str], None] = print,
    check: Callable[[], None] | None = None,
    combine: bool = True,
) -> UncertaintyFit:
    """Fit the detector and the calibration from a Keras network's outputs on a run's images
    (`train_set` and `val_set`, `training.data.Dataset`); `check` is called before each batch.
    With `combine`, the detector is the combined one, tuned on `training.outliers`' kinds drawn
    with another seed than training's (`TUNING_SEED`); else the k-NN distance alone."""
    from model.architecture import build_inference_model
    from training.outliers import outlier_groups

    report("Fitting the out-of-distribution detector and the calibration ...")
    inference = build_inference_model(model)
    tuning = outlier_groups(TUNING_PER_KIND, seed + TUNING_SEED) if combine else {}
    return fit_uncertainty(
        network_outputs(inference, train_set.images, check=check),
        network_outputs(inference, val_set.images, check=check),
        val_set.labels,
        keep=keep,
        unlike={
            name: network_outputs(inference, images, check=check)
            for name, images in unlike_images(seed).items()
        },
        seed=seed,
        outliers={
            name: network_outputs(inference, images, check=check) for name, images in tuning.items()
        },
    )


def write_uncertainty_files(staging: Path, model, val_set, fit: UncertaintyFit) -> dict:
    """Write `model.tflite` (with the detector in its graph), `detector.npz` and
    `calibration.png`; returns the `calibration` and `detector` entries of `model.json`."""
    from training.export import export_tflite

    check = val_set.images[:16]
    (staging / TFLITE_FILE).write_bytes(export_tflite(model, check, fit.detector))
    (staging / DETECTOR_FILE).write_bytes(fit.detector.to_bytes())
    plot_reliability(fit, staging / "calibration.png")
    return dict(fit.figures)


def summary(fit: UncertaintyFit) -> str:
    """Two lines on the calibration and the detector, as `jedisith-train` prints them."""
    calibration = fit.figures["calibration"]
    detector = fit.figures["detector"]
    refused = ", ".join(
        f"{share:.0%} of {name}" for name, share in detector["refused_unlike"].items()
    )
    return (
        f"Calibration: temperature {calibration['temperature']:.3f}; ECE "
        f"{calibration['ece_before']:.4f} -> {calibration['ece_after']:.4f}, Brier "
        f"{calibration['brier_before']:.4f} -> {calibration['brier_after']:.4f} "
        f"({calibration['reported_on']})\n"
        f"Detector: threshold {detector['threshold']:.3f} keeps "
        f"{1 - detector['validation']['refused']:.1%} of the validation images (at least "
        f"{detector['keep']:.0%} of new ones with {detector['confidence']:.0%} confidence); "
        f"refuses {refused}"
    )
