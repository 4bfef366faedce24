"""A server's head (model.head): learns, is calibrated, knows its own images, saves safely.

Synthetic features stand in for the network's: NumPy only, fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.bundle import (
    HEAD_ARRAYS_FILE,
    HEAD_FILE,
    METADATA_FILE,
    ModelInfo,
    publish,
    read_info,
    staging_folder,
)
from model.calibration import expected_calibration_error
from model.head import (
    CANDIDATES,
    CHOOSE_MAX,
    Head,
    HeadError,
    check_backbone,
    fit_head,
    folds_of,
    near_groups,
)
from model.runtime import Prediction

BACKBONE = "a" * 64
CLASSES = ("jedi", "sith")


def features(n: int, seed: int, shift: float = 1.0, far: float = 0.0):
    """`n` images per class: 512 `embedding` and 288 `stats` numbers; the classes differ by
    `shift` along a few directions (overlapping at 1.0); `far` moves everything away."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n)
    embedding = rng.normal(size=(2 * n, 512))
    embedding[:, :8] += shift * (2 * labels[:, None] - 1)
    stats = rng.normal(size=(2 * n, 288))
    stats[:, :4] += 0.5 * (2 * labels[:, None] - 1)
    return {"embedding": embedding + far, "stats": stats + far}, labels


def accuracy(head: Head, outputs, labels) -> float:
    return float(np.mean((head.logits(outputs) >= 0) == (labels == 1)))


def test_separable_features_are_learned() -> None:
    train, labels = features(20, seed=0, shift=3.0)
    head = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    test, test_labels = features(200, seed=1, shift=3.0)
    assert accuracy(head, test, test_labels) >= 0.97
    predictions = head.predictions(test)
    assert all(isinstance(p, Prediction) for p in predictions)
    assert {p.label for p in predictions} == set(CLASSES)
    assert head.figures["images"] == 40 and head.figures["cv_accuracy"] >= 0.9


def test_scores_are_calibrated_on_a_large_set() -> None:
    train, labels = features(300, seed=2, shift=0.35)
    head = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    test, test_labels = features(2000, seed=3, shift=0.35)
    scores = np.array([p.score for p in head.predictions(test)])
    assert 0.7 <= accuracy(head, test, test_labels) < 0.99  # a task where calibration matters
    assert expected_calibration_error(scores, test_labels) < 0.06


def test_few_images_never_sharpen_the_scores() -> None:
    train, labels = features(6, seed=4, shift=0.5)
    head = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    assert head.temperature >= 1.0


def test_the_reference_keeps_images_like_its_own_and_refuses_far_ones() -> None:
    train, labels = features(100, seed=5)
    head = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    near, _ = features(500, seed=6)
    kept = np.mean([p.in_distribution for p in head.predictions(near)])
    assert 0.88 <= kept <= 1.0  # the target is 95%
    far, _ = features(50, seed=7, far=3.0)
    assert not any(p.in_distribution for p in head.predictions(far))


def unlike(n: int, seed: int, spread: float = 0.2) -> dict[str, np.ndarray]:
    """`n` images of one kind that is neither class: a tight cluster among the labelled images'
    features, which the reference alone keeps (nearer to all of them than they are apart)."""
    rng = np.random.default_rng(seed)
    return {
        "embedding": spread * rng.normal(size=(n, 512)),
        "stats": spread * rng.normal(size=(n, 288)),
    }


def test_images_like_the_neither_images_are_refused_and_the_answers_stay() -> None:
    train, labels = features(40, seed=20)
    plain = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    taught = fit_head(train, labels, CLASSES, backbone=BACKBONE, neither=unlike(20, seed=21))
    like = unlike(200, seed=22)
    assert all(p.in_distribution for p in plain.predictions(like))  # the reference alone keeps
    assert not any(p.in_distribution for p in taught.predictions(like))
    near, _ = features(200, seed=23)
    answers = taught.predictions(near)
    assert np.mean([p.in_distribution for p in answers]) >= 0.9
    assert [p.label for p in answers] == [p.label for p in plain.predictions(near)]
    assert [p.score for p in answers] == [p.score for p in plain.predictions(near)]
    assert taught.figures["neither"] == 20 and "neither" not in plain.figures


def test_a_head_without_neither_images_is_saved_and_served_as_before(tmp_path: Path) -> None:
    train, labels = features(30, seed=24)
    plain = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    same = fit_head(train, labels, CLASSES, backbone=BACKBONE, neither={})
    test, _ = features(40, seed=25)
    assert same.neither is None and same.predictions(test) == plain.predictions(test)
    plain.save(tmp_path / "old")
    with np.load(tmp_path / "old" / HEAD_ARRAYS_FILE) as npz:  # the arrays heads always had
        assert sorted(npz.files) == sorted(
            ["center", "scale", "weights", "reference_center", "reference_scale", "bank"]
        )
    loaded = Head.load(tmp_path / "old")
    assert loaded.neither is None and loaded.predictions(test) == plain.predictions(test)
    taught = fit_head(train, labels, CLASSES, backbone=BACKBONE, neither=unlike(10, seed=26))
    taught.save(tmp_path / "new")
    again = Head.load(tmp_path / "new")
    assert again.neither is not None and again.neither.shape == (10, 288)
    mixed = {name: np.concatenate([test[name], unlike(5, seed=27)[name]]) for name in test}
    assert again.predictions(mixed) == taught.predictions(mixed)


def test_too_few_images_or_a_missing_feature_is_refused() -> None:
    train, labels = features(1, seed=8)
    with pytest.raises(HeadError, match="at least 2"):
        fit_head(train, labels, CLASSES, backbone=BACKBONE)
    train, labels = features(10, seed=8)
    head = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    with pytest.raises(HeadError, match="re-export"):
        head.predictions({"score": np.zeros(3), "logit": np.zeros(3)})


def test_save_and_load_give_identical_predictions(tmp_path: Path) -> None:
    train, labels = features(30, seed=9)
    head = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    head.save(tmp_path / "head")
    loaded = Head.load(tmp_path / "head")
    test, _ = features(40, seed=10)
    assert loaded.predictions(test) == head.predictions(test)
    info = read_info(tmp_path / "head")
    assert info.raw["kind"] == "head" and info.raw["backbone"] == BACKBONE
    assert info.class_names == CLASSES
    assert set(info.files) == {HEAD_ARRAYS_FILE, HEAD_FILE}
    assert loaded.figures["images"] == 60


def test_a_head_is_published_as_a_version(tmp_path: Path) -> None:
    train, labels = features(10, seed=11)
    head = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    destination = tmp_path / "server-1"
    for _ in range(2):
        with staging_folder(destination) as staging:
            head.save(staging)
            publish(staging, destination)
    assert (destination / "CURRENT").read_text().strip() == "2"
    test, _ = features(5, seed=12)
    assert Head.load(destination).predictions(test) == head.predictions(test)


def test_500_images_take_under_a_megabyte(tmp_path: Path) -> None:
    train, labels = features(250, seed=13)
    fit_head(train, labels, CLASSES, backbone=BACKBONE).save(tmp_path)
    size = sum(path.stat().st_size for path in tmp_path.iterdir())
    assert size < 1_000_000


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "other arrays"])
def test_a_damaged_head_is_refused(tmp_path: Path, damage: str) -> None:
    train, labels = features(10, seed=14)
    head = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    head.save(tmp_path / "head")
    path = tmp_path / "head" / HEAD_ARRAYS_FILE
    data = bytearray(path.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:100]))
    else:  # a valid npz from another head, with model.json's hash updated: head.json disagrees
        other, other_labels = features(12, seed=15)
        fit_head(other, other_labels, CLASSES, backbone=BACKBONE).save(tmp_path / "other")
        path.write_bytes((tmp_path / "other" / HEAD_ARRAYS_FILE).read_bytes())
        meta = json.loads((tmp_path / "head" / METADATA_FILE).read_text())
        meta["files"][HEAD_ARRAYS_FILE] = read_info(tmp_path / "other").files[HEAD_ARRAYS_FILE]
        (tmp_path / "head" / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(HeadError):
        Head.load(tmp_path / "head")


def test_a_network_model_is_not_a_head(tmp_path: Path) -> None:
    from model.bundle import DEFAULT_MODEL_DIR

    with pytest.raises(HeadError, match=r"not a head|no usable head"):
        Head.load(DEFAULT_MODEL_DIR)


def test_a_head_of_another_backbone_is_refused() -> None:
    train, labels = features(10, seed=16)
    head = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    check_backbone(head, BACKBONE)
    info = ModelInfo(CLASSES, (200, 200), 1, {"model.tflite": BACKBONE})
    check_backbone(head, info)
    with pytest.raises(HeadError, match="learned again"):
        check_backbone(head, "b" * 64)
    with pytest.raises(HeadError):
        check_backbone(head, ModelInfo(CLASSES, (200, 200), 1, {}))


def photos(count: int, crops: int, seed: int, spread: float = 0.15):
    """`count` photos per class, `crops` near-duplicate crops of each (a photo's features plus
    `spread` of noise): features, labels and the photo of each image."""
    rng = np.random.default_rng(seed)
    photo = np.repeat(np.arange(2 * count), crops)
    labels = (photo >= count).astype(int)
    out = {}
    for name, d in (("embedding", 512), ("stats", 288)):
        centres = rng.normal(size=(2 * count, d))
        centres[:, :4] += 2.0 * (2 * (np.arange(2 * count) >= count)[:, None] - 1)
        out[name] = centres[photo] + spread * rng.normal(size=(len(photo), d))
    return out, labels, photo


def test_near_duplicates_are_grouped_and_kept_in_one_fold() -> None:
    train, labels, photo = photos(6, 5, seed=10)
    groups = near_groups(train["stats"], 2.0)
    assert len(np.unique(groups)) == 12
    for p in range(12):
        assert len(np.unique(groups[photo == p])) == 1
    folds = folds_of(labels, 0, groups)
    for p in range(12):
        assert len(np.unique(folds[photo == p])) == 1
    assert len(np.unique(folds)) == 5


def test_new_photos_of_its_own_kind_are_kept_when_crops_are_grouped() -> None:
    """Trained on crops of a few photos, the threshold chosen with each photo's crops in one
    fold keeps new photos of the same kind; chosen with crops in every fold, it does not."""
    train, labels, _ = photos(8, 10, seed=11)
    new, _, _ = photos(8, 1, seed=12)  # other photos from the same distribution
    noise = {name: 10.0 * np.ones_like(values[:4]) for name, values in new.items()}
    loose = fit_head(train, labels, CLASSES, backbone=BACKBONE, near=2.0)
    tight = fit_head(train, labels, CLASSES, backbone=BACKBONE, near=0.0)
    assert np.mean(loose.distances(new) <= loose.threshold) >= 0.9
    assert np.mean(tight.distances(new) <= tight.threshold) <= 0.5
    assert np.all(loose.distances(noise) > loose.threshold)
    assert loose.figures["near"] == 2.0


def test_choosing_finds_the_features_that_carry_the_label() -> None:
    """Where only `stats` tells the classes apart, the per-server choice reads `stats` and
    beats the fixed `embedding` head on new images; it records what it chose from."""
    rng = np.random.default_rng(5)

    def only_stats(n: int):
        labels = np.repeat([0, 1], n)
        stats = rng.normal(size=(2 * n, 288))
        stats[:, :6] += 1.2 * (2 * labels[:, None] - 1)
        return {"embedding": rng.normal(size=(2 * n, 512)), "stats": stats}, labels

    train, labels = only_stats(20)
    test, test_labels = only_stats(300)
    fixed = fit_head(train, labels, CLASSES, backbone=BACKBONE)
    chosen = fit_head(train, labels, CLASSES, backbone=BACKBONE, choose=True)
    assert chosen.features == ("stats",)
    assert set(chosen.figures["chosen_from"]) == {
        f"{'+'.join(use)} l2={l2:g}" for use, l2 in CANDIDATES
    }
    assert accuracy(chosen, test, test_labels) >= accuracy(fixed, test, test_labels) + 0.2
    assert fixed.figures["chosen_from"] == {}


def test_choosing_on_many_images_uses_a_bounded_part() -> None:
    """Above CHOOSE_MAX images the choice is made on a part of them; the head learns on all."""
    train, labels = features(CHOOSE_MAX // 2 + 40, seed=9, shift=3.0)
    head = fit_head(train, labels, CLASSES, backbone=BACKBONE, choose=True)
    assert head.figures["images"] == len(labels) > CHOOSE_MAX
    assert "embedding" in head.features
    test, test_labels = features(200, seed=10, shift=3.0)
    assert accuracy(head, test, test_labels) >= 0.97
