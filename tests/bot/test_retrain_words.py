"""What `!retrain` understands and says: options, progress, outcomes, and the trainer's files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot._images import UserFacingError
from bot._training import (
    DEFAULT_EPOCHS,
    RetrainOptions,
    count_images,
    final_text,
    parse_options,
    read_progress,
    read_result,
)


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


def test_progress_skips_a_half_written_last_line(tmp_path: Path) -> None:
    lines = [
        json.dumps({"event": "stage", "stage": "training"}),
        json.dumps({"event": "epoch", "epoch": 1, "epochs": 3}),
        '{"event": "epoch", "epo',
    ]
    (tmp_path / "progress.jsonl").write_text("\n".join(lines))
    assert [e["event"] for e in read_progress(tmp_path)] == ["stage", "epoch"]
    assert read_progress(tmp_path / "missing") == []


def test_a_missing_or_broken_result_is_none(tmp_path: Path) -> None:
    assert read_result(tmp_path) is None
    (tmp_path / "result.json").write_text("[1, 2]")
    assert read_result(tmp_path) is None
    (tmp_path / "result.json").write_text('{"status": "published"}')
    assert read_result(tmp_path) == {"status": "published"}


RESULT: dict[str, Any] = {
    "version": 4,
    "reason": "",
    "before": {"accuracy": 0.75, "images": 12},
    "after": {"accuracy": 0.9166, "images": 12},
    "calibration": {"ece_before": 0.08, "ece_after": 0.03, "temperature": 1.4},
    "ood": {"threshold": 2.5, "validation_refused": 0.05},
}


def test_a_published_model_is_described_with_its_figures() -> None:
    text = final_text("published", RESULT, None, "!")  # type: ignore[arg-type]
    assert text.startswith("**New model published: version 4.**")
    assert "Holdout accuracy 75.0% → 91.7% (12 images never trained on)" in text
    assert "Calibration error 8.0% → 3.0% (temperature 1.40)" in text
    assert "threshold 2.50; 5.0% of validation images refused" in text
    assert "`!rollback`" in text


@pytest.mark.parametrize(
    ("status", "start", "also"),
    [
        ("refused", "**Not published**: worse on the holdout", "`!retrain force`"),
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
    text = final_text(status, {**RESULT, "reason": reasons[status]}, None, "!")  # type: ignore[arg-type]
    assert text.startswith(start), text
    assert also in text
    assert "The current model and the dataset are unchanged." in text
    if status == "refused":
        assert "Holdout accuracy 75.0% → 91.7%" in text
