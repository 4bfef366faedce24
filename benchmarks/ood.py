"""Out of distribution: does the shipped model know when an image is nothing like a Jedi or Sith?

Measured on the shipped model (LiteRT, the serving path), with images decoded by
`model.preprocess.load_image` from their encoded files:

* in distribution: a fresh synthetic set (`training.synthetic`, seed 7; training used seed 0),
  300 Jedi and 300 Sith (100 each with --quick). Neither the network, nor the detector, nor
  the temperature was fitted on it.
* unlike images: the development groups of `benchmarks/_ood_data.py` (noise, blank, text and
  plots, screenshots, shapes and scenes, and the real photographs: matplotlib's and Debian's
  wallpapers), 40 per group (12 with --quick). The wallpapers are apt-installed first when
  missing (`ensure_wallpapers`).

Two out-of-distribution scores are compared, image by image:

* plain confidence (the baseline): `-|logit|`, i.e. the less sure the network, the more unlike
  (the same order as `0.5 - |raw score - 0.5|`, without float32's saturated scores tying).
  Its refusal threshold keeps 95% of the held-out synthetic images: it is fitted on the very
  images it is judged on, which flatters it.
* the detector (`model.detector`): its `distance`, refused above the model's own threshold
  (fitted on the training run's validation split). Since issue 21 it is the combined one
  (`model.combination`: k-NN distance, |logit| after Outlier Exposure, input statistics),
  tuned at training on `training.outliers`' kinds, never on these groups.

Held out from tuning (`benchmarks._ood_groups`): a leave-one-group-out table (for each group,
the combination fitted on half the held-out synthetic set against the *other* groups, judged on
that group and on the other half) and one half of the groups against the other (the rule's
features chosen and fitted on one half, reported group by group on the other).

Per group: AUROC (held-out synthetic negative, the group positive) and the share refused; the
in-distribution false refusals and the accuracy of the verdicts kept; calibration (ECE, Brier,
the "very sure" bucket) on the held-out set; and the detector's cost per image, timing the
shipped graph against the same network exported without the detector (`export_tflite` in a
temporary folder), and the detector alone on its layers' maps, all interleaved. Checks: LiteRT's
distances equal the NumPy reference on Keras' maps, its scores Keras', the graph without
the detector gives the same scores, and every group decoded (the wallpapers only if installed).
Targets not met are reported, not failures.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

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
)
from benchmarks._ood_groups import (
    features_of,
    half_against_half,
    leave_one_group_out,
    print_tables,
)
from benchmarks._ood_scores import (
    BATCH,
    HELD_OUT_SEED,
    KEEP,
    SURE,
    DetectorRunner,
    Scored,
    decode,
    detector_graph,
    extremes,
    graph_ops,
    group_row,
    held_out_set,
    keep_threshold,
    refused_share,
    score,
    sure_bucket,
)

HELD_OUT_PER_CLASS = 300
QUICK_HELD_OUT_PER_CLASS = 100
GROUP_COUNT = 40
QUICK_GROUP_COUNT = 12
GROUP_SEED = 0
CHECK_IMAGES = 4  # held-out images for the Keras / NumPy reference checks (plus one per group)
SCORE_TOLERANCE = 1e-4
DISTANCE_TOLERANCE = 1e-3  # relative, as `training.export` checks it
PER_ROUND_SINGLE = 10
# Multiply-adds of the network per image: conv1..conv5 (198^2*16*27 + 97^2*32*144 + 46^2*64*288
# + 21^2*64*576 + 8^2*64*576) and the dense layers (1024*512 + 512): about 118 M.
NETWORK_MACS = 118e6

TARGET_AUROC = 97.0  # %, each real-photo group, held out from tuning
TARGET_PHOTOS_REFUSED = 90.0  # %, each real-photo group, held out from tuning
TARGET_FALSE_REFUSALS = 5.0  # %, held-out synthetic
TARGET_TRIVIAL_REFUSED = 100.0  # %, noise and blank
TRIVIAL_GROUPS = ("noise", "blank")
TARGET_ECE = 3.0  # %, calibrated, held-out synthetic
TARGET_COST = 1.10  # with / without the detector, per image in a burst of 32

HELD_OUT = "held-out synthetic"
ALL_PHOTOS = "all real photographs"
ALL_UNLIKE = "all unlike"


def run(args: argparse.Namespace) -> Report:
    from benchmarks import _ood_data
    from model.bundle import TFLITE_FILE
    from model.bundle import model_dir as current_dir
    from model.calibration import brier_score, expected_calibration_error, sigmoid
    from model.runtime import Classifier

    report = Report("ood", "unlike images: plain confidence vs the detector; calibration; cost")
    model_dir, origin = resolve_model(args.model)
    per_class = QUICK_HELD_OUT_PER_CLASS if args.quick else HELD_OUT_PER_CLASS
    count = QUICK_GROUP_COUNT if args.quick else GROUP_COUNT
    rounds = args.rounds or (8 if args.quick else 50)
    report.header(
        f"model: {origin}\nheld-out synthetic: {per_class} + {per_class}, seed {HELD_OUT_SEED}; "
        f"unlike groups: {count} each (seed {GROUP_SEED}); LiteRT; timing {rounds} rounds, "
        f"interleaved"
    )

    report.section("set-up")
    why = _ood_data.ensure_wallpapers()
    wallpapers = len(_ood_data.wallpaper_paths())
    if why is None:
        report.figure("wallpapers", "wallpaper photographs (ensure_wallpapers: ok)", wallpapers)
    else:
        report.figure("wallpapers", "wallpaper photographs available", 0)
        report.note(f"ensure_wallpapers: {why}")
    classifier = Classifier.load(model_dir, "litert")
    detector, calibration = classifier.detector, classifier.calibration
    report.check(
        "the model has a detector and a calibration",
        detector is not None and calibration is not None,
        f"{model_dir}: detector {'present' if detector else 'missing'}, calibration "
        f"{'present' if calibration else 'missing'}"
        + ("" if detector and calibration else " (add them: jedisith-train DATA --refit)"),
    )
    threshold = detector.threshold
    layers = " + ".join(detector.layers)
    report.figure("threshold", "detector threshold (distance)", threshold)
    report.figure("temperature", "calibration temperature", calibration.temperature)

    names, images, labels, failed = held_out_set(per_class, classifier.info.class_names)
    report.check(
        "every held-out synthetic image decodes",
        not failed and len(names) == 2 * per_class,
        f"{len(names)} of {2 * per_class} decoded" + (f"; failed: {failed[:3]}" if failed else ""),
    )
    held_out = score(classifier, names, images)

    samples = _ood_data.build_groups(count, GROUP_SEED)
    groups: dict[str, Scored] = {}
    skipped: dict[str, list[str]] = {}
    group_images: dict[str, np.ndarray] = {}
    for group, items in samples.items():
        group_names, decoded, failed = decode([(s.name, s.data) for s in items])
        skipped[group] = failed
        groups[group] = score(classifier, group_names, decoded)
        group_images[group] = decoded
    del samples
    empty = [g for g, s in groups.items() if not len(s) and not (g == "wallpaper photos" and why)]
    report.check(
        "every unlike group has decoded images (wallpapers only when installed)",
        not empty,
        ", ".join(f"{g} {len(s)}" for g, s in groups.items())
        + (f"; empty: {', '.join(empty)}" if empty else ""),
    )
    for group, failed in skipped.items():
        if failed:
            report.note(f"{group}: {len(failed)} not decoded, e.g. {failed[0]}")

    report.section("correctness (Keras and the NumPy reference)")
    import keras

    from model.architecture import build_inference_model
    from model.bundle import KERAS_FILE
    from model.detector import channel_statistics

    keras_model = keras.saving.load_model(current_dir(model_dir) / KERAS_FILE, compile=False)
    inference = build_inference_model(keras_model)
    check = np.concatenate(
        [images[:: max(1, len(images) // CHECK_IMAGES)][:CHECK_IMAGES]]
        + [group_images[g][:1] for g in groups if len(group_images[g])]
    )
    outputs = inference(check.astype(np.float32), training=False)
    reference = detector.combined(
        channel_statistics({n: np.asarray(outputs[n]) for n in detector.layers}, detector.layers),
        np.asarray(outputs["logit"]).reshape(-1),
        check,
    )
    litert = classifier.backend.classify(check)
    relative = np.abs(litert["distance"] - reference) / np.maximum(reference, 1.0)
    worst = float(np.max(relative))
    report.figure("distance_rel_diff", "LiteRT distance vs NumPy on Keras maps", worst)
    report.check(
        f"LiteRT distances equal Detector.combined on Keras' {layers} maps, logits, images",
        bool(np.all(relative <= DISTANCE_TOLERANCE)),
        f"largest relative difference {worst:.2g} over {len(check)} images "
        f"({CHECK_IMAGES} held-out, one per unlike group); tolerance {DISTANCE_TOLERANCE:g}",
    )
    keras_scores = np.asarray(outputs["score"], dtype=np.float64).reshape(-1)
    score_diff = float(np.max(np.abs(keras_scores - litert["score"])))
    report.check(
        "LiteRT scores equal Keras' and the calibrated scores sigmoid(logit / T)",
        score_diff <= SCORE_TOLERANCE
        and bool(
            np.allclose(
                held_out.calibrated,
                sigmoid(held_out.logits / calibration.temperature),
                atol=1e-6,
            )
        ),
        f"largest score difference {score_diff:.2g} (tolerance {SCORE_TOLERANCE:g})",
    )

    # -- unlike images ------------------------------------------------------------------------
    report.section("unlike images: plain confidence vs the detector")
    confidence_threshold = keep_threshold(held_out.confidence_ood, KEEP)
    photos = Scored.pooled([groups[g] for g in _ood_data.REAL_PHOTO_GROUPS])
    unlike = Scored.pooled(list(groups.values()))
    rows = {
        name: group_row(held_out, scored, confidence_threshold, threshold)
        for name, scored in [*groups.items(), (ALL_PHOTOS, photos), (ALL_UNLIKE, unlike)]
    }
    in_row = {
        "images": len(held_out),
        "refused_confidence": 100 * refused_share(held_out.confidence_ood, confidence_threshold),
        "refused_detector": 100 * refused_share(held_out.distances, threshold),
        "sure": 100
        * float(np.mean(np.maximum(held_out.calibrated, 1 - held_out.calibrated) >= SURE)),
        "median_distance": float(np.median(held_out.distances)),
    }
    print(
        f"   refused: plain confidence above the |logit| threshold that keeps {KEEP:.0%} of the "
        f"held-out synthetic images (|logit| < {-confidence_threshold:.2f}); detector: distance "
        f"> {threshold:.2f} (the model's). 'sure': calibrated confidence >= {SURE:.0%}.",
        flush=True,
    )
    print(
        f"   {'group':<22}{'images':>7}{'skip':>5}  {'AUROC conf.':>11}{'AUROC det.':>11}  "
        f"{'refused conf.':>13}{'refused det.':>13}  {'sure':>6}{'med. dist':>10}",
        flush=True,
    )

    def line(name: str, row: dict, skip: str) -> None:
        def pct(key: str) -> str:
            return f"{row[key]:.1f} %" if key in row and np.isfinite(row[key]) else "-"

        print(
            f"   {name:<22}{row['images']:>7}{skip:>5}  {pct('auroc_confidence'):>11}"
            f"{pct('auroc_detector'):>11}  {pct('refused_confidence'):>13}"
            f"{pct('refused_detector'):>13}  {pct('sure'):>6}{row['median_distance']:>10.2f}",
            flush=True,
        )

    line(HELD_OUT, in_row, "0")
    for name, row in rows.items():
        skip = str(len(skipped[name])) if name in skipped else "-"
        line(name, row, skip)
    report.figures["groups"] = {"held_out": in_row, **rows}
    report.figures["confidence_threshold_abs_logit"] = {
        "value": -confidence_threshold,
        "unit": "",
    }

    report.section("what the detector gets wrong")
    shown = 3 if args.quick else 5

    def listing(label: str, pairs: list[tuple]) -> None:
        print(f"   {label}:", flush=True)
        for name, value in pairs:
            flag = "kept" if value <= threshold else "refused"
            print(f"      {value:7.2f}  {flag:<8} {name}", flush=True)

    photo_names = [f"{g}: {n}" for g in _ood_data.REAL_PHOTO_GROUPS for n in groups[g].names]
    unlike_names = [f"{g}: {n}" for g, s in groups.items() for n in s.names]
    typical_photos = extremes(photo_names, photos.distances, shown, lowest=True)
    typical_unlike = extremes(unlike_names, unlike.distances, shown, lowest=True)
    atypical = extremes(held_out.names, held_out.distances, shown, lowest=False)
    listing("most typical real photographs (lowest distance)", typical_photos)
    listing("most typical unlike images (lowest distance)", typical_unlike)
    listing("most atypical held-out synthetic images (highest distance)", atypical)
    report.figures["extremes"] = {
        "typical_photos": typical_photos,
        "typical_unlike": typical_unlike,
        "atypical_held_out": atypical,
    }

    # -- groups nobody tuned to ------------------------------------------------------------------
    report.section("held out from tuning: leave one group out, one half against the other")
    tune, judge = features_of(classifier, images[::2]), features_of(classifier, images[1::2])
    group_features = {g: features_of(classifier, group_images[g]) for g in groups}
    logo = leave_one_group_out(tune, judge, group_features)
    halves = half_against_half(tune, judge, group_features)
    print_tables(logo, halves)
    report.figures["leave_one_group_out"] = logo
    report.figures["half_against_half"] = halves

    # -- in distribution ----------------------------------------------------------------------
    report.section("held-out synthetic: false refusals, verdicts kept, calibration")
    kept = held_out.distances <= threshold
    correct = (held_out.calibrated >= 0.5).astype(int) == labels
    false_refusals = report.figure(
        "false_refusals_pct",
        "refused by the detector (false refusals)",
        100 * (1 - kept.mean()),
        "%",
    )
    report.figure("accuracy_all_pct", "verdict accuracy, all", 100 * correct.mean(), "%")
    report.figure(
        "accuracy_kept_pct",
        f"verdict accuracy, the {int(kept.sum())} kept",
        100 * correct[kept].mean(),
        "%",
    )
    if (~kept).any():
        report.figure(
            "accuracy_refused_pct",
            f"verdict accuracy, the {int((~kept).sum())} refused",
            100 * correct[~kept].mean(),
            "%",
        )
    ece_raw = expected_calibration_error(held_out.raw, labels)
    ece = expected_calibration_error(held_out.calibrated, labels)
    report.figure("ece_raw_pct", "ECE (15 bins), network's score", 100 * ece_raw, "%")
    report.figure("ece_calibrated_pct", "ECE (15 bins), calibrated", 100 * ece, "%")
    report.figure("brier_raw", "Brier score, network's score", brier_score(held_out.raw, labels))
    report.figure(
        "brier_calibrated", "Brier score, calibrated", brier_score(held_out.calibrated, labels)
    )
    sure = sure_bucket(held_out.calibrated, labels)
    report.figures["very_sure"] = sure
    print(
        f"   {'calibrated confidence >= 90%':<44} {sure['count']} images "
        f"({100 * sure['share']:.1f} %): mean confidence {100 * sure['confidence']:.2f} %, "
        f"correct {100 * sure['accuracy']:.2f} %",
        flush=True,
    )
    unsure = ~(np.maximum(held_out.calibrated, 1 - held_out.calibrated) >= SURE)
    if unsure.any():
        print(
            f"   {'calibrated confidence < 90%':<44} {int(unsure.sum())} images: correct "
            f"{100 * correct[unsure].mean():.1f} %",
            flush=True,
        )

    # -- the detector's cost ------------------------------------------------------------------
    report.section("the detector's cost per image (LiteRT classify, interleaved)")
    from model.runtime import LiteRTBackend
    from training.export import export_tflite

    with tempfile.TemporaryDirectory(prefix="ood-nodetector-") as tmp:
        path = Path(tmp) / TFLITE_FILE
        path.write_bytes(export_tflite(keras_model, images[:8]))
        plain_bytes = path.read_bytes()
    plain = LiteRTBackend(plain_bytes)
    shipped = classifier.backend
    burst = np.ascontiguousarray(images[:BATCH])
    with_detector, without = shipped.classify(burst), plain.classify(burst)
    diff = float(np.max(np.abs(with_detector["score"] - without["score"])))
    report.check(
        "the graph without the detector computes the same scores and no distance",
        diff <= SCORE_TOLERANCE and "distance" not in without,
        f"largest score difference {diff:.2g} on {len(burst)} images; outputs "
        f"{', '.join(sorted(without))}",
    )
    ops_with = graph_ops((current_dir(model_dir) / TFLITE_FILE).read_bytes())
    ops_without = graph_ops(plain_bytes)
    if ops_with and ops_without:
        added = {k: ops_with[k] - ops_without.get(k, 0) for k in ops_with}
        added = {k: v for k, v in sorted(added.items()) if v > 0 and k != "DELEGATE"}
        report.figure(
            "ops",
            "ops in the graph, with / without the detector",
            f"{sum(ops_with.values()) - ops_with.get('DELEGATE', 0)} / "
            f"{sum(ops_without.values()) - ops_without.get('DELEGATE', 0)}",
        )
        report.figure(
            "xnnpack_partitions",
            "XNNPACK partitions, with / without",
            f"{ops_with.get('DELEGATE', 0)} / {ops_without.get('DELEGATE', 0)}",
        )
        print(
            f"   {'ops the detector adds':<44} "
            + ", ".join(f"{k} {v}" if v > 1 else k for k, v in added.items()),
            flush=True,
        )
    # The detector alone, on the burst's maps of its layers (from Keras): all of it, and its
    # statistics alone (the same graph with a bank of one image: no nearest-neighbour part).
    burst_outputs = inference(burst.astype(np.float32), training=False)
    burst_maps = {name: np.asarray(burst_outputs[name]) for name in detector.layers}
    if detector.combination is not None:  # it also reads the logits and the images
        burst_maps["logit"] = np.asarray(burst_outputs["logit"]).reshape(-1)
        burst_maps["image"] = burst.astype(np.float32)
    alone = DetectorRunner(detector_graph(detector, burst_maps), burst_maps)
    tiny = dataclasses.replace(detector, bank=detector.bank[:1], k=1)
    statistics_only = DetectorRunner(detector_graph(tiny, burst_maps), burst_maps)
    relative = np.abs(alone() - with_detector["distance"]) / np.maximum(
        with_detector["distance"], 1.0
    )
    report.check(
        "the detector alone gives the shipped graph's distances",
        bool(np.all(relative <= DISTANCE_TOLERANCE)),
        f"largest relative difference {float(np.max(relative)):.2g} on {len(burst)} images",
    )
    singles = [np.ascontiguousarray(images[i : i + 1]) for i in range(min(32, len(images)))]
    next_a, next_b = cycle(singles), cycle(singles)
    samples_s = interleave(
        {
            "with_32": lambda: shipped.classify(burst),
            "without_32": lambda: plain.classify(burst),
            "with_1": lambda: shipped.classify(next_a()),
            "without_1": lambda: plain.classify(next_b()),
            "detector_32": alone,
            "statistics_32": statistics_only,
        },
        rounds,
        per_round={"with_1": PER_ROUND_SINGLE, "without_1": PER_ROUND_SINGLE},
        warmup=3,
    )
    stats = {}
    for key, label, size in (
        ("with_1", "batch 1, with the detector (shipped)", 1),
        ("without_1", "batch 1, without", 1),
        ("with_32", "batch 32, with the detector, per image", BATCH),
        ("without_32", "batch 32, without, per image", BATCH),
        ("detector_32", f"the detector alone on {layers} maps, per image", BATCH),
        ("statistics_32", "its statistics alone (bank of 1), per image", BATCH),
    ):
        stats[key] = report.stats(
            f"{key}_ms_per_image", label, Stats.of(ms(samples_s[key])).scaled(1 / size), "ms", 3
        )
    cost_1 = stats["with_1"].median / stats["without_1"].median
    cost_32 = stats["with_32"].median / stats["without_32"].median
    report.figure("cost_1", "with / without, batch 1 (medians)", cost_1, "x")
    report.figure("cost_32", "with / without, batch 32 (medians)", cost_32, "x")
    added_ms = stats["with_32"].median - stats["without_32"].median
    alone_ms = stats["detector_32"].median
    statistics_ms = stats["statistics_32"].median
    report.figure("added_ms", "added per image in a burst of 32 (medians)", added_ms, "ms")
    shapes = {name: burst_maps[name].shape[1:] for name in detector.layers}
    kilobytes = sum(4 * int(np.prod(shape)) for shape in shapes.values()) / 1024
    described = " and ".join(f"{'x'.join(map(str, s))} {n}" for n, s in shapes.items())
    knn_ms = alone_ms - statistics_ms
    report.note(
        f"the detector's arithmetic is small: per image, the mean, mean square and max of the "
        f"{described} maps ({kilobytes:.0f} KB of float32), "
        f"{detector.dimensions * len(detector.bank) / 1e3:.0f} k multiply-adds against the "
        f"{len(detector.bank)} bank images and a top-{detector.k}, against "
        f"~{NETWORK_MACS / 1e6:.0f} M multiply-adds for the network"
    )
    report.note(
        f"where its time goes: the shipped graph takes {added_ms:+.3f} ms per image more than the "
        f"graph without it (burst of {BATCH}); the detector alone takes {alone_ms:.3f} ms per "
        f"image on LiteRT (copying the maps in included), its statistics alone {statistics_ms:.3f}"
        f" ms, so the nearest-neighbour search costs {knn_ms:+.3f} ms: the time is in the "
        f"statistics' passes over the maps, not in the distances; some of the detector's ops "
        f"(top-k at least) run outside XNNPACK, whose partitions go from "
        f"{ops_without.get('DELEGATE', '?')} to {ops_with.get('DELEGATE', '?')}"
    )

    # -- outcomes -----------------------------------------------------------------------------
    for group in _ood_data.REAL_PHOTO_GROUPS:
        row = rows[group]
        if not row["images"]:
            report.note(f"{group}: no images, no AUROC")
            continue
        report.outcome(
            f"AUROC, shipped detector, {group}",
            row["auroc_detector"],
            unit="%",
            target=TARGET_AUROC,
            note=f"plain confidence {row['auroc_confidence']:.1f} %; {row['images']} images",
        )
        report.outcome(
            f"{group} refused by the shipped detector",
            row["refused_detector"],
            unit="%",
            target=TARGET_PHOTOS_REFUSED,
        )
        if group in logo:
            report.outcome(
                f"AUROC, leave one group out, {group}",
                logo[group]["auroc"],
                unit="%",
                target=TARGET_AUROC,
                note=f"refused {logo[group]['refused']:.1f} %, false refusals "
                f"{logo[group]['false_refusals']:.1f} %",
            )
            report.outcome(
                f"{group} refused, leave one group out",
                logo[group]["refused"],
                unit="%",
                target=TARGET_PHOTOS_REFUSED,
            )
    for group in TRIVIAL_GROUPS:
        report.outcome(
            f"{group} refused by the detector",
            rows[group]["refused_detector"],
            unit="%",
            target=TARGET_TRIVIAL_REFUSED,
            note=f"plain confidence {rows[group]['refused_confidence']:.1f} %",
        )
    report.outcome(
        "held-out synthetic refused (false refusals)",
        false_refusals,
        unit="%",
        target=TARGET_FALSE_REFUSALS,
        better="at_most",
        note=f"accuracy of the verdicts kept {100 * correct[kept].mean():.1f} % "
        f"(all {100 * correct.mean():.1f} %)",
    )
    report.outcome(
        "ECE, calibrated scores, held-out synthetic",
        100 * ece,
        unit="%",
        target=TARGET_ECE,
        better="at_most",
        note=f"network's own {100 * ece_raw:.2f} %; T = {calibration.temperature:.3f}",
    )
    report.outcome(
        "detector cost: with / without, burst of 32 (per image, medians)",
        cost_32,
        target=TARGET_COST,
        better="at_most",
        note=f"batch 1: {cost_1:.2f}x",
    )
    report.outcome(
        "real photographs refused by the detector",
        rows[ALL_PHOTOS]["refused_detector"],
        unit="%",
        target=TARGET_PHOTOS_REFUSED,
        note=f"plain confidence (keeping {KEEP:.0%} of held-out): "
        f"{rows[ALL_PHOTOS]['refused_confidence']:.1f} %; {rows[ALL_PHOTOS]['images']} images",
    )
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("ood", __doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=None, help="timing rounds (50; 8 with --quick)")
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
