"""A server's model: what it learned on top of the shared network, in NumPy.

The shared network computes, in the same forward pass as its own verdict, the features a head
reads (`embedding`: the `dense` layer's 512 outputs; `stats`: the detector's 288 statistics of
`pool2` and `pool3`). A `Head` is:

1. the standardisation of its input features and a linear classifier on them: logistic
   regression with an L2 penalty, fitted by Newton's method, on `embedding` (`benchmarks/heads.py`
   compares it with other penalties, features, a prototype classifier and a small MLP; its
   choosing tasks did not tell them apart, see benchmarks/RESULTS.md, so this stays the choice
   the issue's own measurement made);
2. a temperature for its logit, fitted on out-of-fold logits and never below 1 on fewer than
   `MIN_SHARPEN_IMAGES` images (so few images may soften the scores, never sharpen them);
3. the server's own out-of-distribution reference: the k-th nearest-neighbour distance to its
   labelled images' standardised features, with the threshold chosen on out-of-fold distances
   so that a `keep` share (95%) of new images like its own are kept (`model.detector`'s rule);
   near-duplicates (`near_groups`: crops of one photo, an image sent twice) are kept in one fold,
   else the threshold learns "like these images" and refuses new photos of the same kind;
4. the images the server's members labelled neither (`neither`, optional): an image nearer to
   them than to its labelled images counts as that many times farther (`distance`), so images
   like them are refused; `benchmarks/neither.py` measured this against a third output of the
   classifier (neither against the two classes) at one false-refusal rate, and it refused more.
   A head without them behaves exactly as before.

`Head.predictions` gives `model.runtime.Prediction`s, as the default model's `Classifier` does.
A head is saved as `head.npz` (no pickle) and `head.json` in a folder whose `model.json` names
kind "head", the class names, the backbone's hash and the files' hashes (`model.bundle`), so the
bundle's publish and version machinery hold heads as they hold networks.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from model.architecture import IMAGE_SIZE
from model.bundle import (
    HEAD_ARRAYS_FILE,
    HEAD_FILE,
    METADATA_FILE,
    TFLITE_FILE,
    ModelError,
    ModelInfo,
    read_model_files,
    seal,
    sha256,
)
from model.calibration import MIN_SHARPEN_IMAGES, Calibration, sigmoid
from model.detector import covering_rank
from model.runtime import Prediction

KIND = "head"
FEATURES: tuple[str, ...] = ("embedding",)  # what the classifier reads
REFERENCE: tuple[str, ...] = ("stats",)  # what the reference reads: refuses more unlike images
L2 = 0.1  # penalty on the mean log-loss, features standardised
KEEP = 0.95
NEAR = 2.0  # near-duplicates kept in one fold (near_groups; 0: none), by benchmarks/heads.py
CONFIDENCE = 0.9
FOLDS = 5
MAX_K = 5
MAX_BANK = 500  # reference images kept (a random subset beyond): under 1 MB on disk
FORMAT = 1
# What `fit_head(choose=True)` picks from, by grouped cross-validation on the server's own
# labelled images (`choose_options`): which features and how strong a penalty suit its images.
CANDIDATES: tuple[tuple[tuple[str, ...], float], ...] = tuple(
    (use, l2)
    for use in (("embedding",), ("stats",), ("embedding", "stats"))
    for l2 in (0.01, 0.1, 1.0)
)
CHOOSE_MAX = 300  # images the choice is made on, at most: fitting stays well under 2 s


class HeadError(ModelError):
    """A head that cannot be fitted, read or served here; the message says why."""


@dataclass(frozen=True)
class Head:
    """A server's classifier, calibration and out-of-distribution reference on the shared
    network's features (`backbone`: the SHA-256 of that network's `model.tflite`)."""

    class_names: tuple[str, str]
    backbone: str
    features: tuple[str, ...]
    center: np.ndarray  # (d,) standardisation of the classifier's features
    scale: np.ndarray  # (d,)
    weights: np.ndarray  # (d,) on standardised features
    bias: float
    temperature: float
    reference: tuple[str, ...]
    reference_center: np.ndarray  # (r,)
    reference_scale: np.ndarray  # (r,)
    bank: np.ndarray  # (m, r) standardised reference features of labelled images, float16
    k: int
    threshold: float
    keep: float
    figures: dict[str, Any] = field(default_factory=dict)
    # (n, r) standardised reference features of the images labelled neither, float16; None: none
    neither: np.ndarray | None = None
    # The banks as the distances use them, made once per loaded head rather than per request.
    _bank32: np.ndarray = field(init=False, repr=False, compare=False)
    _bank_norms: np.ndarray = field(init=False, repr=False, compare=False)
    _neither32: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bank = np.asarray(self.bank, dtype=np.float32)
        object.__setattr__(self, "_bank32", bank)
        object.__setattr__(self, "_bank_norms", (bank * bank).sum(axis=1))
        neither = None if self.neither is None else np.asarray(self.neither, dtype=np.float32)
        object.__setattr__(self, "_neither32", neither)

    @property
    def nbytes(self) -> int:
        """The memory its arrays hold (what a cache of loaded heads counts)."""
        arrays = (self.center, self.scale, self.weights, self.reference_center)
        arrays += (self.reference_scale, self.bank, self._bank32, self._bank_norms)
        if self.neither is not None and self._neither32 is not None:
            arrays += (self.neither, self._neither32)
        return sum(a.nbytes for a in arrays)

    def logits(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The head's logit of `class_names[1]` for each image, before calibration."""
        x = (stack(outputs, self.features) - self.center) / self.scale
        return x @ self.weights + self.bias

    def distances(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Each image's distance to its k-th nearest labelled image (higher: less like them),
        times how much nearer it is to the images labelled neither, when it is."""
        query = (stack(outputs, self.reference) - self.reference_center) / self.reference_scale
        distances = knn_distances(query, self._bank32, self.k, self._bank_norms)
        return nearer_neither(query, distances, self._neither32, self.k)

    def predictions(self, outputs: Mapping[str, np.ndarray]) -> list[Prediction]:
        """A `Prediction` per image from a backend's outputs (`model.runtime.Outputs`)."""
        logits = self.logits(outputs)
        raw = sigmoid(logits)
        calibrated = Calibration(self.temperature).apply(logits)
        distances = self.distances(outputs)
        negative, positive = self.class_names
        return [
            Prediction(
                positive if score >= 0.5 else negative,
                float(score),
                raw_score=float(raw[i]),
                distance=float(distances[i]),
                threshold=self.threshold,
            )
            for i, score in enumerate(calibrated)
        ]

    # -- storage ----------------------------------------------------------------------------

    def save(self, folder: Path) -> Path:
        """Write `head.npz`, `head.json` and `model.json` (with the files' hashes) in `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = io.BytesIO()
        np.savez_compressed(
            out,
            center=self.center.astype(np.float32),
            scale=self.scale.astype(np.float32),
            weights=self.weights.astype(np.float32),
            reference_center=self.reference_center.astype(np.float32),
            reference_scale=self.reference_scale.astype(np.float32),
            bank=self.bank.astype(np.float16),
            **({} if self.neither is None else {"neither": self.neither.astype(np.float16)}),
        )
        (folder / HEAD_ARRAYS_FILE).write_bytes(out.getvalue())
        description = {
            "format": FORMAT,
            "features": list(self.features),
            "bias": self.bias,
            "temperature": self.temperature,
            "reference": list(self.reference),
            "k": self.k,
            "threshold": self.threshold,
            "keep": self.keep,
            "arrays": sha256(out.getvalue()),
        }
        (folder / HEAD_FILE).write_text(json.dumps(description, indent=2) + "\n")
        metadata = {
            "name": "jedisith",
            "kind": KIND,
            "class_names": list(self.class_names),
            "image_size": list(IMAGE_SIZE),
            "parameters": int(self.weights.size + 1),
            "backbone": self.backbone,
            "head": self.figures,
        }
        (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        seal(folder)
        return folder

    @classmethod
    def load(cls, folder: Path) -> Head:
        """Read the head in `folder` (a version folder, or a `CURRENT`-versioned one); a missing,
        damaged or mismatched file is a `HeadError`."""
        try:
            info, files = read_model_files(Path(folder), HEAD_ARRAYS_FILE, optional=(HEAD_FILE,))
        except HeadError:
            raise
        except ModelError as error:
            raise HeadError(f"no usable head at {folder}: {error}") from None
        return cls.from_files(info, files)

    @classmethod
    def from_files(cls, info: ModelInfo, files: Mapping[str, bytes]) -> Head:
        """A head from its `model.json` and the bytes of its two files."""
        if info.raw.get("kind") != KIND:
            raise HeadError(f"the model is of kind {info.raw.get('kind', 'network')!r}, not a head")
        if HEAD_FILE not in files or HEAD_ARRAYS_FILE not in info.files:
            raise HeadError(f"{METADATA_FILE} does not list {HEAD_FILE} and {HEAD_ARRAYS_FILE}")
        try:
            description = json.loads(files[HEAD_FILE])
            if description.get("format") != FORMAT:
                raise HeadError(f"{HEAD_FILE} has format {description.get('format')}")
            if description["arrays"] != sha256(files[HEAD_ARRAYS_FILE]):
                raise HeadError(f"{HEAD_ARRAYS_FILE} does not match {HEAD_FILE}")
            with np.load(io.BytesIO(files[HEAD_ARRAYS_FILE]), allow_pickle=False) as npz:
                arrays = {name: np.array(npz[name]) for name in npz.files}
            head = cls(
                class_names=info.class_names,
                backbone=str(info.raw["backbone"]),
                features=tuple(description["features"]),
                center=arrays["center"].astype(np.float64),
                scale=arrays["scale"].astype(np.float64),
                weights=arrays["weights"].astype(np.float64),
                bias=float(description["bias"]),
                temperature=float(description["temperature"]),
                reference=tuple(description["reference"]),
                reference_center=arrays["reference_center"].astype(np.float64),
                reference_scale=arrays["reference_scale"].astype(np.float64),
                bank=arrays["bank"].astype(np.float16),
                k=int(description["k"]),
                threshold=float(description["threshold"]),
                keep=float(description["keep"]),
                figures=dict(info.raw.get("head", {})),
                neither=arrays["neither"].astype(np.float16) if "neither" in arrays else None,
            )
        except HeadError:
            raise
        except (OSError, KeyError, ValueError, TypeError, AttributeError) as error:
            raise HeadError(f"the head's files are damaged: {error}") from None
        d, r = head.center.shape[0], head.reference_center.shape[0]
        shapes_agree = (
            head.scale.shape == head.weights.shape == (d,)
            and head.reference_scale.shape == (r,)
            and head.bank.ndim == 2
            and head.bank.shape[1] == r
            and 1 <= head.k <= len(head.bank)
            and (head.neither is None or (head.neither.ndim == 2 and head.neither.shape[1] == r))
        )
        if not shapes_agree or not 0.0 < head.temperature < np.inf:
            raise HeadError(f"{HEAD_ARRAYS_FILE} has arrays of mismatched shapes")
        return head


def check_backbone(head: Head, network: ModelInfo | str) -> None:
    """Refuse (`HeadError`) a head learned on another network than `network` (its `ModelInfo`
    or the SHA-256 of its `model.tflite`): its features would mean something else."""
    backbone = network if isinstance(network, str) else network.files.get(TFLITE_FILE)
    if backbone != head.backbone:
        raise HeadError(
            f"this head was learned on the network {head.backbone[:12]}, not on the one served "
            f"now ({str(backbone)[:12]}): it must be learned again"
        )


def stack(outputs: Mapping[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """The named feature outputs side by side, (n, d) float64; a `HeadError` names a missing one."""
    missing = [name for name in names if name not in outputs]
    if missing:
        raise HeadError(
            f"the served network gives no {', '.join(missing)} (exported before heads existed): "
            "re-export it with `python -m training.export MODEL_DIR` to serve heads"
        )
    return np.concatenate([np.asarray(outputs[name], np.float64) for name in names], axis=1)


def knn_distances(
    query: np.ndarray, bank: np.ndarray, k: int, bank_norms: np.ndarray | None = None
) -> np.ndarray:
    """The distance from each row of `query` to its k-th nearest row of `bank` (whose squared
    row norms may be given, when they are kept)."""
    if bank_norms is None:
        bank_norms = (bank * bank).sum(axis=1)
    squared = (query * query).sum(axis=1)[:, None] - 2.0 * query @ bank.T + bank_norms
    kth = np.partition(squared, k - 1, axis=1)[:, k - 1]
    return np.sqrt(np.maximum(kth, 0.0))


def nearer_neither(
    query: np.ndarray, distances: np.ndarray, neither: np.ndarray | None, k: int
) -> np.ndarray:
    """`distances` (to the labelled images) times how much nearer each `query` row is to the
    rows of `neither` (the images labelled neither; None or empty: unchanged)."""
    if neither is None or len(neither) == 0:
        return distances
    to_neither = knn_distances(query, neither, min(k, len(neither)))
    return distances * np.maximum(1.0, distances / np.maximum(to_neither, 1e-9))


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of the columns of `x`, the spread floored (a silent feature is not
    divided by zero), as `model.detector` does."""
    spread = x.std(axis=0)
    return x.mean(axis=0), np.maximum(spread, 0.1 * float(np.median(spread)) + 1e-6)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Weights and bias minimising the mean log-loss + l2 / 2 |w|^2 (the bias unpenalised), by
    Newton's method; in the dual-sized system when there are fewer images than features."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(d + 1, l2)
    penalty[-1] = 1e-4  # the bias is all but free
    theta = np.zeros(d + 1)
    for _ in range(50):
        p = sigmoid(design @ theta)
        gradient = design.T @ (p - y) / n + penalty * theta
        w = np.maximum(p * (1.0 - p), 1e-9) / n
        if n < d:  # (A^T W A + P)^-1 g by the Woodbury identity: an n x n solve
            scaled = design / penalty
            inner = np.diag(1.0 / w) + scaled @ design.T
            step = gradient / penalty - scaled.T @ np.linalg.solve(inner, scaled @ gradient)
        else:
            step = np.linalg.solve(design.T @ (design * w[:, None]) + np.diag(penalty), gradient)
        theta -= step
        if float(np.max(np.abs(step))) < 1e-7:
            break
    return theta[:-1], float(theta[-1])


def fit_prototype(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Nearest class mean as a linear rule: the logit is half the difference of the squared
    distances to the two means (standardised features)."""
    mean0, mean1 = x[y == 0].mean(axis=0), x[y == 1].mean(axis=0)
    return mean1 - mean0, float((mean0 @ mean0 - mean1 @ mean1) / 2.0)


def folds_of(labels: np.ndarray, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """A fold number per image, classes spread evenly over at most `FOLDS` folds; with `groups`
    (a group number per image), each group whole in one fold, where every fold then leaves
    images of both classes outside it (else the plain folds)."""
    count = int(max(2, min(FOLDS, np.bincount(labels, minlength=2).min())))
    folds = np.empty(len(labels), dtype=int)
    rng = np.random.default_rng(seed)
    for label in (0, 1):
        where = np.flatnonzero(labels == label)
        folds[rng.permutation(where)] = np.arange(len(where)) % count
    if groups is None:
        return folds
    grouped = np.empty(len(labels), dtype=int)
    sizes = np.zeros(count, dtype=int)
    names, size = np.unique(groups, return_counts=True)
    for group in names[np.lexsort((rng.random(len(names)), -size))]:  # largest first
        fold = int(np.argmin(sizes))
        grouped[groups == group] = fold
        sizes[fold] += int(np.sum(groups == group))
    outside_both = all(
        np.bincount(labels[grouped != fold], minlength=2).min() >= 2 for fold in range(count)
    )
    return grouped if outside_both and len(names) >= count else folds


def near_groups(x: np.ndarray, near: float) -> np.ndarray:
    """A group number per row of `x`: rows nearer than `near` times the median nearest-neighbour
    distance are joined (transitively), so near-duplicates (crops of one photo, one image sent
    twice) fall in one fold and the threshold is chosen on images unlike those it learned."""
    squared = (x * x).sum(axis=1)

    def rows(start: int) -> np.ndarray:  # distances of 512 rows to all: memory stays bounded
        block = slice(start, start + 512)
        d = squared[block, None] - 2.0 * x[block] @ x.T + squared
        d = np.sqrt(np.maximum(d, 0.0))
        d[np.arange(d.shape[0]), np.arange(start, start + d.shape[0])] = np.inf
        return d

    starts = range(0, len(x), 512)
    limit = near * float(np.median(np.concatenate([rows(s).min(axis=1) for s in starts])))
    pairs = [np.nonzero(rows(start) < limit) for start in starts]
    first = np.concatenate([i + start for (i, _), start in zip(pairs, starts, strict=True)])
    second = np.concatenate([j for _, j in pairs])
    groups = np.arange(len(x))
    if len(first) > 50 * len(x):  # too crowded to tell near-duplicates: every image alone
        return groups
    while True:  # each image takes the smallest group number among its near neighbours
        joined = groups.copy()
        np.minimum.at(joined, first, groups[second])
        joined = joined[joined]
        if np.array_equal(joined, groups):
            return groups
        groups = joined


def fit_head(
    features: Mapping[str, np.ndarray],
    labels: np.ndarray,
    class_names: tuple[str, str],
    *,
    backbone: str,
    seed: int = 0,
    l2: float = L2,
    classifier: str = "logistic",
    use: tuple[str, ...] = FEATURES,
    reference: tuple[str, ...] = REFERENCE,
    keep: float = KEEP,
    near: float = NEAR,
    choose: bool = False,
    neither: Mapping[str, np.ndarray] | None = None,
) -> Head:
    """Learn a server's head from its labelled images' features (a backend's outputs, per name
    (n, d)) and labels (0/1 indices into `class_names`). `classifier` ("logistic" or
    "prototype"), `l2`, `use` and `reference` are the choices `benchmarks/heads.py` compares;
    with `choose`, `use` and `l2` are chosen among `CANDIDATES` on the images' own folds.
    `neither`: the features of the server's images labelled neither, which it should refuse."""
    labels = np.asarray(labels).astype(int).reshape(-1)
    counts = np.bincount(labels, minlength=2)
    if len(counts) > 2 or counts.min() < 2:
        raise HeadError(f"a head needs at least 2 labelled images of each class, not {counts}")
    fitter = {"logistic": lambda x, y: fit_logistic(x, y, l2), "prototype": fit_prototype}
    if classifier not in fitter:
        raise ValueError(f"unknown classifier {classifier!r}")
    r = stack(features, reference)
    if len(r) != len(labels):
        raise HeadError(f"{len(labels)} labels for {len(r)} images' features")
    r_neither = None
    if neither and len(stack(neither, reference)):
        r_neither = stack(neither, reference)
    r_all = (r - r.mean(axis=0)) / standardisation(r)[1]
    folds = folds_of(labels, seed, near_groups(r_all, near) if near > 0 else None)
    scores: dict[str, float] = {}
    if choose and classifier == "logistic":
        use, l2, scores = choose_options(features, labels, folds)
    x = stack(features, use)
    if len(x) != len(labels):
        raise HeadError(f"{len(labels)} labels for {len(x)} images' features")
    out_logits = np.empty(len(labels))
    out_distances = np.empty(len(labels))
    k = max(1, min(MAX_K, int(counts.sum()) // 20))
    for fold in np.unique(folds):
        inside = folds == fold
        center, scale = standardisation(x[~inside])
        weights, bias = fitter[classifier]((x[~inside] - center) / scale, labels[~inside])
        out_logits[inside] = (x[inside] - center) / scale @ weights + bias
        r_center, r_scale = standardisation(r[~inside])
        bank = (r[~inside] - r_center) / r_scale
        query = (r[inside] - r_center) / r_scale
        refused = None if r_neither is None else (r_neither - r_center) / r_scale
        out_distances[inside] = nearer_neither(query, knn_distances(query, bank, k), refused, k)
    calibration = Calibration.fit(out_logits, labels)
    if len(labels) < MIN_SHARPEN_IMAGES and calibration.temperature < 1.0:
        calibration = Calibration(1.0)
    rank = covering_rank(len(labels), keep, CONFIDENCE)
    threshold = float(np.sort(out_distances)[rank - 1])

    center, scale = standardisation(x)
    weights, bias = fitter[classifier]((x - center) / scale, labels)
    r_center, r_scale = standardisation(r)
    bank = (r - r_center) / r_scale
    if len(bank) > MAX_BANK:
        kept = np.random.default_rng(seed).choice(len(bank), MAX_BANK, replace=False)
        bank = bank[np.sort(kept)]
    neither_bank = None if r_neither is None else (r_neither - r_center) / r_scale
    if neither_bank is not None and len(neither_bank) > MAX_BANK:
        kept = np.random.default_rng(seed).choice(len(neither_bank), MAX_BANK, replace=False)
        neither_bank = neither_bank[np.sort(kept)]
    figures = {
        "images": len(labels),
        "per_class": {name: int(counts[i]) for i, name in enumerate(class_names)},
        "classifier": classifier,
        "l2": l2 if classifier == "logistic" else None,
        "features": list(use),
        "chosen_from": scores,
        "cv_folds": int(folds.max() + 1),
        "near": near,
        "cv_accuracy": float(np.mean((out_logits >= 0) == (labels == 1))),
        "temperature": calibration.temperature,
        "reference": list(reference),
        "k": k,
        "threshold": threshold,
        "keep": keep,
        "cv_kept": float(np.mean(out_distances <= threshold)),
    }
    if r_neither is not None:
        figures["neither"] = len(r_neither)

    def stored(values: np.ndarray) -> np.ndarray:  # as head.npz keeps them: saving changes nothing
        return values.astype(np.float32).astype(np.float64)

    return Head(
        class_names=(str(class_names[0]), str(class_names[1])),
        backbone=backbone,
        features=tuple(use),
        center=stored(center),
        scale=stored(scale),
        weights=stored(weights),
        bias=bias,
        temperature=calibration.temperature,
        reference=tuple(reference),
        reference_center=stored(r_center),
        reference_scale=stored(r_scale),
        bank=bank.astype(np.float16),
        k=k,
        threshold=threshold,
        keep=keep,
        figures=figures,
        neither=None if neither_bank is None else neither_bank.astype(np.float16),
    )


def choose_options(
    features: Mapping[str, np.ndarray], labels: np.ndarray, folds: np.ndarray
) -> tuple[tuple[str, ...], float, dict[str, float]]:
    """The features and penalty among `CANDIDATES` with the most images right out of fold (ties:
    the lower out-of-fold log-loss), and every candidate's out-of-fold accuracy by name."""
    if len(labels) > CHOOSE_MAX:  # a random part of many images chooses as well, in bounded time
        part = np.sort(np.random.default_rng(0).choice(len(labels), CHOOSE_MAX, replace=False))
        features = {name: values[part] for name, values in features.items()}
        labels, folds = labels[part], folds[part]
    best: tuple[float, float, tuple[str, ...], float] | None = None
    scores = {}
    for use, l2 in CANDIDATES:
        x = stack(features, use)
        logits = np.empty(len(labels))
        for fold in np.unique(folds):
            inside = folds == fold
            center, scale = standardisation(x[~inside])
            weights, bias = fit_logistic((x[~inside] - center) / scale, labels[~inside], l2)
            logits[inside] = (x[inside] - center) / scale @ weights + bias
        right = float(np.mean((logits >= 0) == (labels == 1)))
        loss = float(np.mean(np.logaddexp(0.0, -(2 * labels - 1) * logits)))
        scores[f"{'+'.join(use)} l2={l2:g}"] = right
        if best is None or (-right, loss) < best[:2]:
            best = (-right, loss, use, l2)
    assert best is not None
    return best[2], best[3], scores


def with_figures(head: Head, **figures: Any) -> Head:
    """The same head with more figures (a holdout accuracy measured by the caller)."""
    return replace(head, figures={**head.figures, **figures})
