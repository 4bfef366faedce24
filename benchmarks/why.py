"""Why?: occlusion on LiteRT vs Grad-CAM in Keras, and the cost of one Why? next to `!features`.

* agreement: on synthetic drawings (`training.synthetic`), whose saber (blade and hilt) and
  robed figure are known, each heatmap's share of its mass inside the saber+figure mask and the
  pointing game (its hottest pixel inside that mask, widened by `TOLERANCE` pixels); chance is
  the mask's share of the image.
* cost: one Why? as the bot does it (decode, 7x7 occlusion in one batch of 50, the PNG with its
  colour bar) against one `!features` (decode, feature maps, five PNG grids), interleaved.
"""

from __future__ import annotations

import argparse
import io
from contextlib import ExitStack
from unittest import mock

import numpy as np

from benchmarks._common import Report, Stats, interleave, parser, resolve_model, run_main

TOLERANCE = 7  # pixels around the mask that still count as a hit (a cell is about 29 pixels)


def scene_with_masks(label: str, index: int, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic drawing (200, 200, 3) and its saber+figure mask (200, 200) bool.

    The figure is drawn a second time onto two blank canvases (black and white) from the same
    generator state: where both agree, the figure painted. The blade and hilt are the segments
    `_blade_segments` chose, drawn at the blade's glowing band width.
    """
    from PIL import Image, ImageDraw

    from training import synthetic

    original_figure = synthetic._draw_figure
    original_segments = synthetic._blade_segments
    canvases: list[Image.Image] = []
    chosen: list = []

    def figure(draw, rng, robe, hand, s):
        state = rng.bit_generator.state
        for background in ((0, 0, 0), (255, 255, 255)):
            canvas = Image.new("RGB", (synthetic._CANVAS, synthetic._CANVAS), background)
            rng.bit_generator.state = state
            original_figure(ImageDraw.Draw(canvas), rng, robe, hand, s)
            canvases.append(canvas)
        rng.bit_generator.state = state
        return original_figure(draw, rng, robe, hand, s)

    def segments(*args):
        found = original_segments(*args)
        chosen.append(found)
        return found

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(synthetic, "_draw_figure", figure))
        stack.enter_context(mock.patch.object(synthetic, "_blade_segments", segments))
        rng = np.random.default_rng([seed, synthetic.LABELS.index(label), index])
        image = np.asarray(synthetic.draw_scene(label, rng))
    black, white = (np.asarray(c, dtype=np.int16) for c in canvases)
    drawn = (black == white).all(axis=2).astype(np.uint8) * 255
    figure_mask = Image.fromarray(drawn).reduce(synthetic._SS)
    saber = Image.new("L", (synthetic.SIZE, synthetic.SIZE), 0)
    draw = ImageDraw.Draw(saber)
    segs, hilt = chosen[0]
    scale = synthetic._SS
    for a, b in [*segs, hilt]:
        draw.line((a[0] / scale, a[1] / scale, b[0] / scale, b[1] / scale), fill=255, width=8)
    mask = (np.asarray(figure_mask) > 127) | (np.asarray(saber) > 0)
    return image, mask


def widen(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` grown by `pixels` in every direction (a square structuring element)."""
    from PIL import Image, ImageFilter

    grown = Image.fromarray(mask.astype(np.uint8) * 255).filter(
        ImageFilter.MaxFilter(2 * pixels + 1)
    )
    return np.asarray(grown) > 0


class GradCam:
    """Grad-CAM on the last convolution of `model.keras`: the channels weighted by the mean
    gradient of the logit towards the verdict, summed, negative parts dropped."""

    def __init__(self, keras_path) -> None:
        from model.runtime import import_tensorflow

        self.tf = import_tensorflow()
        import keras

        from model.architecture import CONV_LAYERS, build_inference_model

        self.model = build_inference_model(keras.saving.load_model(keras_path, compile=False))
        self.layer = CONV_LAYERS[-1]

    def cells(self, image: np.ndarray) -> np.ndarray:
        tf = self.tf
        batch = tf.convert_to_tensor(image[None].astype(np.float32))
        with tf.GradientTape() as tape:
            outputs = self.model(batch, training=False)
            maps, logit = outputs[self.layer], outputs["logit"][0]
            target = logit if float(logit.numpy().reshape(-1)[0]) >= 0 else -logit
        grads = tape.gradient(target, maps)[0].numpy()
        weights = grads.mean(axis=(0, 1))
        return np.maximum((maps[0].numpy() * weights).sum(axis=2), 0)


def run(args: argparse.Namespace) -> Report:
    from model.explain import mass_inside, occlusion, points_inside, upsample
    from model.preprocess import load_image
    from model.render import render_features, render_why
    from model.runtime import Classifier

    report = Report("why", "Why?: occlusion (LiteRT) vs Grad-CAM (Keras); cost against !features")
    model_dir, origin = resolve_model(args.model)
    count = args.images or (16 if args.quick else 100)
    rounds = args.rounds or (3 if args.quick else 10)
    report.header(
        f"model: {origin}\n{count} synthetic drawings per class; pointing tolerance "
        f"{TOLERANCE} px; {rounds} rounds of the cost, interleaved"
    )
    classifier = Classifier.load(model_dir, "litert")
    gradcam = GradCam(model_dir / "model.keras")

    report.section("agreement with the saber + figure mask")
    results: dict[str, dict[str, list[float]]] = {
        name: {"mass": [], "hit": []} for name in ("occlusion", "gradcam")
    }
    shares = []
    for label in ("jedi", "sith"):
        for index in range(count):
            image, mask = scene_with_masks(label, index)
            widened = widen(mask, TOLERANCE)
            shares.append(float(mask.mean()))
            maps = {
                "occlusion": occlusion(image, classifier.scores).heatmap(mask.shape),
                "gradcam": upsample(gradcam.cells(image), mask.shape),
            }
            for name, heat in maps.items():
                results[name]["mass"].append(mass_inside(heat, mask))
                results[name]["hit"].append(float(points_inside(heat, widened)))
    chance = report.figure("mask_share", "mask's share of the image (chance)", np.mean(shares))
    summary = {}
    for name, found in results.items():
        mass = report.figure(
            f"{name}_mass", f"{name}: heat inside the mask", np.mean(found["mass"])
        )
        hits = report.figure(
            f"{name}_pointing", f"{name}: pointing game hits", np.mean(found["hit"])
        )
        summary[name] = (mass, hits)
    report.check(
        "both heatmaps beat chance",
        all(mass > chance for mass, _ in summary.values()),
        f"chance {chance:.3f}; " + ", ".join(f"{n} {m:.3f}" for n, (m, _) in summary.items()),
    )

    report.section("cost: one Why? against one !features (decode to PNG bytes)")
    data = _png(scene_with_masks("sith", 0)[0])

    def why() -> None:
        image = load_image(data)
        explanation = occlusion(image, classifier.scores)
        render_why(image, explanation.heatmap(image.shape[:2]), "Sith 0.900")

    def features() -> None:
        render_features(classifier.features(load_image(data)), None, "Sith 0.900")

    def gradcam_only() -> None:
        gradcam.cells(load_image(data))

    samples = interleave(
        {"why": why, "features": features, "gradcam": gradcam_only}, rounds, warmup=1
    )
    why_s = report.stats(
        "why_s", "Why? (occlusion 7x7, one batch)", Stats.of(samples["why"]), "s", 3
    )
    features_s = report.stats(
        "features_s", "!features (all five layers)", Stats.of(samples["features"]), "s", 3
    )
    report.stats(
        "gradcam_s", "Grad-CAM heatmap alone (Keras, CPU)", Stats.of(samples["gradcam"]), "s", 3
    )
    for name, (mass, hits) in summary.items():
        report.outcome(f"{name}: heat inside the mask / chance", mass / chance)
        report.outcome(f"{name}: pointing game", hits, unit="hits")
    report.outcome("cost: Why? / !features (medians)", why_s.median / features_s.median)
    return report


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = parser("why", __doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=None, help="per class (default 100, 16 quick)")
    p.add_argument("--rounds", type=int, default=None, help="default 10 (3 with --quick)")
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
