"""The `jedisith` command: classify images, draw feature maps, describe the model.

    jedisith classify IMAGE... [--json] [--model PATH] [--backend auto|litert|tensorflow]
    jedisith features IMAGE -o OUT.png [--layer N]
    jedisith info

A bad file gets a one-line error on stderr and a non-zero exit code; the other images of the same
call are still classified. The bot's labelled images have their own command, `jedisith-dataset`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from model.architecture import CONV_LAYERS
from model.bundle import DEFAULT_MODEL_DIR, ModelError
from model.preprocess import ImageError, ImageLimits, load_image
from model.runtime import BACKENDS, Classifier, Prediction

EXIT_BAD_INPUT = 1
EXIT_NO_MODEL = 2


def default_model_path() -> Path:
    """`MODEL_PATH` from the environment, else the model shipped with the project."""
    return Path(os.environ.get("MODEL_PATH") or DEFAULT_MODEL_DIR)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jedisith", description="Tell whether an image shows a Jedi or a Sith."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--model", type=Path, default=None, help="model folder (default: $MODEL_PATH or shipped)"
    )
    common.add_argument("--backend", default="auto", choices=BACKENDS)
    commands = parser.add_subparsers(dest="command", required=True)

    classify = commands.add_parser(
        "classify", parents=[common], help="print the verdict for each image"
    )
    classify.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    classify.add_argument("--json", action="store_true", help="one JSON object per line")

    features = commands.add_parser(
        "features", parents=[common], help="draw the feature maps of an image"
    )
    features.add_argument("image", type=Path, metavar="IMAGE")
    features.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png")
    features.add_argument(
        "--layer",
        type=int,
        choices=range(1, len(CONV_LAYERS) + 1),
        metavar="N",
        help=f"only convolution N (1-{len(CONV_LAYERS)})",
    )

    commands.add_parser("info", parents=[common], help="describe the model")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    path = args.model or default_model_path()
    try:
        classifier = Classifier.load(path, args.backend)
    except (ModelError, ValueError) as error:
        print(f"jedisith: cannot load the model: {error}", file=sys.stderr)
        return EXIT_NO_MODEL
    if args.command == "classify":
        return _classify(classifier, args.images, args.json)
    if args.command == "features":
        return _features(classifier, args.image, args.output, args.layer)
    return _info(classifier)


def _read(path: Path, limits: ImageLimits) -> bytes:
    """The file's bytes, reading at most one past the limit so a huge file is not read whole."""
    if path.is_dir():
        raise ImageError("is a folder, not an image")
    with path.open("rb") as handle:
        return handle.read(limits.max_bytes + 1)


def _load(path: Path) -> np.ndarray:
    limits = ImageLimits()
    try:
        return load_image(_read(path, limits), limits)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except OSError as error:
        raise ImageError(error.strerror or str(error)) from None


def _classify(classifier: Classifier, paths: list[Path], as_json: bool) -> int:
    images, good = [], []
    failed = 0
    for path in paths:
        try:
            images.append(_load(path))
            good.append(path)
        except ImageError as error:
            failed += 1
            print(f"jedisith: {path}: {error}", file=sys.stderr)
    predictions = classifier.predict(images) if images else []
    for path, prediction in zip(good, predictions, strict=True):
        if as_json:
            print(json.dumps({"file": str(path), **prediction_record(prediction)}))
        else:
            print(f"{path}: {describe(prediction)}")
    return EXIT_BAD_INPUT if failed else 0


def prediction_record(prediction: Prediction) -> dict[str, object]:
    """The JSON fields of one verdict; the detector's are null for a model without one."""
    raw = prediction.raw_score if prediction.raw_score is not None else prediction.score
    return {
        "label": prediction.label,
        "score": prediction.score,
        "raw_score": raw,
        "distance": prediction.distance,
        "threshold": prediction.threshold,
        "in_distribution": prediction.in_distribution,
    }


def describe(prediction: Prediction) -> str:
    """`Sith 0.973`, or what it would have said about an image unlike the training data."""
    verdict = f"{prediction.label.capitalize()} {prediction.score:.3f}"
    if prediction.in_distribution is False:
        return f"not like the training images (would say {verdict})"
    return verdict


def _features(classifier: Classifier, image: Path, output: Path, layer: int | None) -> int:
    from model.render import render_features

    try:
        array = _load(image)
    except ImageError as error:
        print(f"jedisith: {image}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    maps = classifier.features(array)
    files = render_features(maps, [layer] if layer else None, describe(maps.prediction))
    try:
        if len(files) == 1:
            output.write_bytes(files[0][1])
            written = [output]
        else:
            written = []
            for name, data in files:
                target = output.with_name(f"{output.stem}_{Path(name).stem}{output.suffix}")
                target.write_bytes(data)
                written.append(target)
    except OSError as error:
        print(f"jedisith: cannot write {output}: {error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in written:
        print(path)
    return 0


def _info(classifier: Classifier) -> int:
    raw = classifier.info.raw
    dataset = raw.get("dataset", {})
    validation = raw.get("metrics", {}).get("validation", {})
    lines = {
        "model": str(classifier.path),
        "backend": classifier.backend_name,
        "classes": ", ".join(classifier.info.class_names),
        "score": f"probability of '{classifier.info.positive_class}'",
        "parameters": f"{classifier.info.parameters:,}",
        "input": "x".join(str(n) for n in classifier.info.image_size) + " RGB",
        "trained on": dataset.get("notes") or dataset.get("path", "unknown"),
        "images": ", ".join(f"{n} {name}" for name, n in dataset.get("counts", {}).items()),
        "trained": raw.get("created", "unknown"),
        "command": raw.get("command", "unknown"),
    }
    if isinstance(raw.get("refit"), dict):
        refit = raw["refit"]
        lines["refitted"] = f"{refit.get('date', '?')}: {refit.get('command', '?')}"
    for key in ("accuracy", "precision", "recall", "roc_auc"):
        if key in validation:
            lines[f"validation {key}"] = f"{validation[key]:.4f}"
    lines.update(_honesty_lines(raw))
    for number, evaluation in enumerate(raw.get("evaluations", []), start=1):
        lines[f"evaluation {number}"] = (
            f"accuracy {evaluation.get('accuracy', float('nan')):.4f} on "
            f"{evaluation.get('count', '?')} images: {evaluation.get('data', '')}"
        )
    width = max(len(key) for key in lines)
    for key, value in lines.items():
        print(f"{key:<{width}}  {value}")
    return 0


def _honesty_lines(raw: dict) -> dict[str, str]:
    """What `model.json` records of the calibration and the detector, as `info` lines."""
    calibration, detector = raw.get("calibration"), raw.get("detector")
    if not calibration or not detector:
        return {
            "honesty": "no calibration or detector (made before they existed): every "
            "image gets a verdict; add them with jedisith-train DATA --out MODEL --refit"
        }
    validation = detector.get("validation", {})
    unlike = ", ".join(
        f"{share:.0%} of {name}" for name, share in detector.get("refused_unlike", {}).items()
    )
    return {
        "calibration": (
            f"temperature {calibration['temperature']:.3f}, fitted on the "
            f"{calibration.get('fitted_on', 'validation split')}"
        ),
        "calibration ECE": (
            f"{calibration['ece_before']:.4f} -> {calibration['ece_after']:.4f} "
            f"({calibration.get('reported_on', '')})"
        ),
        "calibration Brier": (
            f"{calibration['brier_before']:.4f} -> {calibration['brier_after']:.4f}"
        ),
        "detector": (
            f"{detector.get('method', '?')}: {', '.join(detector.get('layers', []))}, "
            f"k={detector.get('k', '?')}, {detector.get('bank', '?')} reference images"
        ),
        "detector threshold": (
            f"{detector['threshold']:.3f}: keeps {1 - validation.get('refused', 0):.1%} of "
            f"{validation.get('images', '?')} validation images (" + _guarantee(detector) + ")"
        ),
        "detector refuses": unlike or "-",
    }


def _guarantee(detector: dict) -> str:
    """What the threshold promises for new images like the training ones."""
    guarantee = detector.get("guarantee") or {}
    keep = guarantee.get("keep", detector.get("keep", 0.95))
    confidence = guarantee.get("confidence", detector.get("confidence", 0.5))
    text = f"for at least {keep:.0%} of new ones, with {confidence:.0%} confidence"
    if detector.get("threshold_rule") == "largest validation distance":
        wanted = detector.get("keep", 0.95)
        text += f"; too few validation images for the {wanted:.0%} bound: the largest distance"
    return text


if __name__ == "__main__":
    raise SystemExit(main())
