"""The scores of the out-of-distribution benchmark (`benchmarks.ood`): what the served model
says about a set of images, the metrics on it, and the detector's graph alone for timing."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HELD_OUT_SEED = 7  # training used seed 0
KEEP = 0.95  # the confidence baseline's threshold keeps this share of held-out synthetic images
SURE = 0.9  # the "very sure" bucket: calibrated confidence at least this
BATCH = 32


@dataclass(frozen=True)
class Scored:
    """What the served model says about a set of images, one entry per image."""

    names: list[str]
    logits: np.ndarray  # the network's logit
    raw: np.ndarray  # its own score (sigmoid of the logit)
    calibrated: np.ndarray  # the calibrated score
    distances: np.ndarray  # the detector's distance

    def __len__(self) -> int:
        return len(self.names)

    @property
    def confidence_ood(self) -> np.ndarray:
        return confidence_ood(self.logits)

    @staticmethod
    def pooled(parts: Sequence[Scored]) -> Scored:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Scored([], *(np.zeros(0) for _ in range(4)))
        return Scored(
            [name for p in parts for name in p.names],
            np.concatenate([p.logits for p in parts]),
            np.concatenate([p.raw for p in parts]),
            np.concatenate([p.calibrated for p in parts]),
            np.concatenate([p.distances for p in parts]),
        )


# -- pure helpers (tested in tests/benchmarks) ------------------------------------------------


def confidence_ood(logits: np.ndarray) -> np.ndarray:
    """The plain-confidence OOD score: `-|logit|`, higher = less sure = more unlike."""
    return -np.abs(np.asarray(logits, dtype=np.float64))


def keep_threshold(in_distribution: np.ndarray, keep: float = KEEP) -> float:
    """The score at or below which `keep` of the in-distribution images fall."""
    values = np.asarray(in_distribution, dtype=np.float64)
    return float(np.quantile(values, keep, method="higher"))


def refused_share(values: np.ndarray, threshold: float) -> float:
    """The share of images refused (score strictly above the threshold); NaN for none."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.mean(values > threshold)) if len(values) else float("nan")


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """AUROC of an OOD score: in-distribution images negative, unlike images positive."""
    from training.evaluate import roc_auc

    negatives, positives = np.asarray(negatives), np.asarray(positives)
    labels = np.concatenate([np.zeros(len(negatives)), np.ones(len(positives))])
    return roc_auc(labels, np.concatenate([negatives, positives]))


def sure_bucket(scores: np.ndarray, labels: np.ndarray, level: float = SURE) -> dict[str, float]:
    """Among images whose verdict is at least `level` sure: how many, how sure, how right."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    confidence = np.maximum(scores, 1.0 - scores)
    inside = confidence >= level
    if not inside.any():
        return {"count": 0, "share": 0.0, "confidence": float("nan"), "accuracy": float("nan")}
    correct = (scores[inside] >= 0.5).astype(int) == labels[inside]
    return {
        "count": int(inside.sum()),
        "share": float(inside.mean()),
        "confidence": float(confidence[inside].mean()),
        "accuracy": float(correct.mean()),
    }


def extremes(names: Sequence[str], values: np.ndarray, n: int, *, lowest: bool) -> list[tuple]:
    """The `n` (name, value) pairs with the lowest (or highest) values, in that order."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    if not lowest:
        order = order[::-1]
    return [(names[i], float(values[i])) for i in order[:n]]


def group_row(
    held_out: Scored, group: Scored, confidence_threshold: float, distance_threshold: float
) -> dict[str, float]:
    """One line of the table: AUROC and share refused of both scores, and how sure the net is."""
    confidence = np.maximum(group.calibrated, 1.0 - group.calibrated)
    return {
        "images": len(group),
        "auroc_confidence": 100 * auroc(held_out.confidence_ood, group.confidence_ood),
        "auroc_detector": 100 * auroc(held_out.distances, group.distances),
        "refused_confidence": 100 * refused_share(group.confidence_ood, confidence_threshold),
        "refused_detector": 100 * refused_share(group.distances, distance_threshold),
        "sure": 100 * float(np.mean(confidence >= SURE)) if len(group) else float("nan"),
        "median_distance": float(np.median(group.distances)) if len(group) else float("nan"),
    }


# -- running the model ------------------------------------------------------------------------


def decode(items: Sequence[tuple[str, bytes]]) -> tuple[list[str], np.ndarray, list[str]]:
    """(names, images) of the items `load_image` decodes, and the names of those it refuses."""
    from model.preprocess import ImageError, load_image

    names, images, failed = [], [], []
    for name, data in items:
        try:
            images.append(load_image(data))
        except ImageError as error:
            failed.append(f"{name} ({error})")
            continue
        names.append(name)
    stacked = np.stack(images) if images else np.zeros((0, 200, 200, 3), np.uint8)
    return names, stacked, failed


def score(classifier, names: list[str], images: np.ndarray) -> Scored:
    """One forward pass per batch, through the classifier's backend and its `predictions`."""
    logits, raw, calibrated, distances = [], [], [], []
    for start in range(0, len(images), BATCH):
        outputs = classifier.backend.classify(np.ascontiguousarray(images[start : start + BATCH]))
        predictions = classifier.predictions(outputs)
        logits.append(outputs["logit"].astype(np.float64))
        raw.append(outputs["score"].astype(np.float64))
        calibrated.append(np.array([p.score for p in predictions]))
        distances.append(np.array([p.distance for p in predictions], dtype=np.float64))
    return Scored(
        names,
        *(np.concatenate(x) if x else np.zeros(0) for x in (logits, raw, calibrated, distances)),
    )


def held_out_set(per_class: int, class_names: Sequence[str]):
    """A fresh synthetic set, written to a temporary folder and read back: names, images, labels."""
    from training.synthetic import generate_dataset

    with tempfile.TemporaryDirectory(prefix="ood-heldout-") as tmp:
        folder = Path(tmp)
        generate_dataset(
            folder,
            jedi=per_class,
            sith=per_class,
            seed=HELD_OUT_SEED,
            workers=max(1, min(os.cpu_count() or 1, 4)),
        )
        items, labels = [], []
        for label, name in enumerate(class_names):
            for path in sorted((folder / name).iterdir()):
                items.append((path.name, path.read_bytes()))
                labels.append(label)
    names, images, failed = decode(items)
    kept = set(names)
    labels = [label for (name, _), label in zip(items, labels, strict=True) if name in kept]
    return names, images, np.asarray(labels, dtype=int), failed


def graph_ops(flatbuffer: bytes) -> dict[str, int]:
    """How many ops of each kind the graph's first subgraph has, DELEGATE (an XNNPACK
    partition) included, once run (`_get_ops_details` is a private LiteRT call)."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_content=flatbuffer, num_threads=1)
        # XNNPACK takes over its nodes when the graph is first run: DELEGATE nodes appear.
        interpreter.get_signature_runner("classify")(image=np.zeros((1, 200, 200, 3), np.uint8))
        ops = interpreter._get_ops_details()
    except (AttributeError, KeyError, RuntimeError, ValueError):
        return {}
    counts: dict[str, int] = {}
    for op in ops:
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


def detector_graph(detector, maps: dict[str, np.ndarray]) -> bytes:
    """The detector alone as a LiteRT graph: its layers' maps (and, combined, the `logit` and
    the `image`) in, `distance` out (signature `distance`), built from the same
    `distance_graph` as the shipped model's."""
    import tensorflow as tf

    from model.detector import distance_graph

    names = [*detector.layers, *(["logit", "image"] if detector.combination is not None else [])]
    specs = [tf.TensorSpec([None, *maps[name].shape[1:]], tf.float32, name=name) for name in names]

    @tf.function(input_signature=specs)
    def distance(*tensors):
        given = dict(zip(names, tensors, strict=True))
        return {
            "distance": distance_graph(
                detector, given, None, given.get("logit"), given.get("image")
            )
        }

    module = tf.Module()
    module.distance = distance
    with tempfile.TemporaryDirectory(prefix="ood-detector-") as saved_model:
        tf.saved_model.save(
            module, saved_model, signatures={"distance": distance.get_concrete_function()}
        )
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model, signature_keys=["distance"]
        )
        return converter.convert()


class DetectorRunner:
    """`detector_graph` on LiteRT with as many threads as the model's backend."""

    def __init__(self, flatbuffer: bytes, maps: dict[str, np.ndarray]) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from model.runtime import default_threads

        self._interpreter = Interpreter(model_content=flatbuffer, num_threads=default_threads())
        self._run = self._interpreter.get_signature_runner("distance")
        self._maps = {name: np.ascontiguousarray(m, dtype=np.float32) for name, m in maps.items()}

    def __call__(self) -> np.ndarray:
        return np.array(self._run(**self._maps)["distance"]).reshape(-1)


# -- the benchmark ----------------------------------------------------------------------------
