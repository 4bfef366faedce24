"""What `!retrain` understands and says: options, progress and outcomes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.errors import UserFacingError
from bot.exts.models._jobs import count_images, parse_options
from bot.exts.models._words import (
    RetrainOptions,
    final_text,
    progress_text,
    public_notes,
    running_text,
)
from dataset import TrainingRecord
from training.protocol import DEFAULT_EPOCHS, EpochEvent, Stage, StageEvent, TrainerResult


def test_options_default_to_the_notebook() -> None:
    assert parse_options([], 100) == RetrainOptions(DEFAULT_EPOCHS, False)
    assert parse_options(["epochs=10", "FORCE"], 100) == RetrainOptions(10, True)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["epochs=0"], "from 1 to 100"),
        (["epochs=101"], "from 1 to 100"),
        (["epochs=ten"], "from 1 to 100"),
        (["lr=0.1"], "I don't know `lr=0.1`"),
        (["force=yes"], "I don't know `force=yes`"),
    ],
)
def test_bad_options_get_one_clear_line(words: list[str], message: str) -> None:
    with pytest.raises(UserFacingError, match=message):
        parse_options(words, 100)


def test_count_images_counts_image_files_per_class(tmp_path: Path) -> None:
    (tmp_path / "jedi").mkdir()
    (tmp_path / "sith").mkdir()
    for name in ("a.jpg", "b.PNG", "notes.txt"):
        (tmp_path / "jedi" / name).write_bytes(b"x")
    (tmp_path / "sith" / "c.webp").write_bytes(b"x")
    assert count_images(tmp_path, ("jedi", "sith")) == {"jedi": 2, "sith": 1}
    assert count_images(None, ("jedi", "sith")) == {"jedi": 0, "sith": 0}
    assert count_images(tmp_path / "missing", ("jedi",)) == {"jedi": 0}


def test_progress_shows_the_epoch_while_training_then_the_stage() -> None:
    training = StageEvent(stage=Stage.TRAINING, time=1.0)
    epoch = EpochEvent(epoch=2, epochs=5, val_accuracy=0.875, elapsed_s=20, eta_s=30, time=2.0)
    options = RetrainOptions(5, force=True)
    assert progress_text([], options, "<@1>", "!").startswith(
        "**Training** a new model for <@1> (force: published even if not surely better): "
        "starting the trainer.\n"
    )
    text = progress_text([training, epoch], options, "<@1>", "!")
    assert ": epoch 2/5 · validation accuracy 87.5% · about 30 s left." in text
    assert text.endswith("`!retrain cancel` stops the training.")
    exporting = StageEvent(stage=Stage.EXPORTING, time=3.0)
    text = progress_text([training, epoch, exporting], None, "<@1>", "!")
    assert "<@1>: exporting the model.\n" in text


SCORE = {"images": 12, "per_class": None, "ood_refused": None}
RESULT: dict[str, Any] = {
    "status": "published",
    "version": 4,
    "reason": "",
    "before": {**SCORE, "accuracy": 0.75, "correct": 9},
    "after": {**SCORE, "accuracy": 0.9166, "correct": 11},
    "calibration": {"ece_before": 0.08, "ece_after": 0.03, "temperature": 1.4, "images": 40},
    "ood": {"threshold": 2.5, "validation_refused": 0.05, "validation_images": 40},
}


def test_a_published_model_is_described_with_its_figures() -> None:
    text = final_text(TrainerResult.model_validate(RESULT), "!")
    assert text.startswith("**New model published: version 4.**")
    assert "Holdout accuracy 75.0% → 91.7% (12 images never trained on)" in text
    assert "Calibration error 8.0% → 3.0% (temperature 1.40)" in text
    assert "threshold 2.50; 5.0% of validation images refused" in text
    assert "`!rollback`" in text


@pytest.mark.parametrize(
    ("status", "start", "also"),
    [
        (
            "refused",
            "**Not published**: the new model is worse than the current",
            "`!retrain force`",
        ),
        ("cancelled", "**Training cancelled**: cancelled by Mace", "unchanged"),
        ("interrupted", "**Training interrupted**: the bot restarted", "`!retrain` starts"),
        ("failed", "**Training failed**: out of disk", "unchanged"),
    ],
)
def test_every_other_outcome_says_nothing_changed(status: str, start: str, also: str) -> None:
    reasons = {
        "refused": "worse on the holdout",
        "cancelled": "cancelled by Mace",
        "interrupted": "the bot restarted during the training",
        "failed": "out of disk",
    }
    result = TrainerResult.model_validate({**RESULT, "status": status, "reason": reasons[status]})
    text = final_text(result, "!")
    assert text.startswith(start), text
    assert also in text
    assert "The current model and the dataset are unchanged." in text
    if status == "refused":
        assert "Holdout accuracy 75.0% → 91.7%" in text


def test_a_refused_training_says_it_once_without_the_trainers_folder_or_version() -> None:
    """The trainer's reason names its model folder and a version `!model` may not show; the
    reply gives the figures, what would settle it, and what to do, each once."""
    reason = (
        "not published: holdout accuracy 50.0% (version 1) → 50.0% on 12 held-out images: +0.0 "
        "points (95% interval -14.0 to +14.0); not surely better (p = 1.00); about 78 held-out "
        "images (66 more) would settle it, if the models disagree as often as here (0 of 12); "
        "playground/data/models is unchanged (force publishes it anyway)"
    )
    score = {"images": 12, "per_class": None, "ood_refused": None, "accuracy": 0.5, "correct": 6}
    result = TrainerResult(status="refused", reason=reason, before=score, after=score)
    text = final_text(result, "!")
    assert text == (
        "**Not published**: the new model is not surely better than the current default model "
        "on the held-out images. Holdout accuracy 50.0% → 50.0% (12 images never trained on); "
        "about 78 held-out images (66 more) would settle it, if the models disagree as often as "
        "here (0 of 12). The current model and the dataset are unchanged. Next: label more "
        "images (`!dataset` says which help most), then `!retrain` again; `!retrain force` "
        "publishes it anyway."
    )
    empty = "not published: no holdout images to compare on; data/models is unchanged (force "
    text = final_text(TrainerResult(status="refused", reason=empty + "publishes without)"), "!")
    assert text.startswith("**Not published**: there are no held-out images to judge it on yet")
    assert text.count("force") == 1 and "models" not in text


def _record(**fields: Any) -> TrainingRecord:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    values: dict[str, Any] = dict(
        id=7, status="running", guild_id=1, channel_id=2, message_id=3, user_id=424242,
        pid=99, host="node-1", params={}, result={}, version=None, started_at=now,
        heartbeat_at=now, finished_at=None,
    )  # fmt: skip
    return TrainingRecord(**{**values, **fields})


def test_a_shared_versions_notes_name_the_operator_not_who_asked() -> None:
    assert public_notes("retrained from Discord by padawan (training 3)") == (
        "retrained by the operator (training 3)"
    )
    assert public_notes("retrained from Discord (training 12)") == (
        "retrained by the operator (training 12)"
    )
    assert public_notes("the shipped model") == "the shipped model"


def test_the_running_training_names_nobody_but_to_an_operator() -> None:
    record = _record(cancel_requested_at=datetime(2026, 1, 1, tzinfo=UTC), cancel_requested_by=5)
    public = running_text(record, False, "padawan", operator=False)
    assert public.startswith("-# A training is running, started by the operator <t:")
    assert "the operator asked it to stop" in public
    assert not {"424242", "node-1", "99", "padawan"} & set(re.findall(r"[\w-]+", public))
    private = running_text(record, False, "padawan")
    assert "<@424242>" in private and "node-1" in private and "padawan asked" in private
