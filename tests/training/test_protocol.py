"""The bot and its trainer's contract: the progress log, the result, and what each side reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.progress import Cancellation, Cancelled
from training.protocol import (
    PROTOCOL,
    EpochEvent,
    ExitCode,
    HoldoutScore,
    ProgressLog,
    ProtocolError,
    Stage,
    StageEvent,
    Status,
    TrainerResult,
    WorkFolder,
    epochs_done,
    last_stage,
    read_progress,
)

ROOT = Path(__file__).resolve().parents[2]


def test_progress_lines_are_strict_json_and_a_cancellation_raises(tmp_path: Path) -> None:
    progress = ProgressLog(tmp_path / "progress.jsonl")
    progress.stage("training")
    progress.epoch(1, 4, {"accuracy": 0.5, "val_accuracy": float("nan"), "loss": 0.7}, 10.0)
    with pytest.raises(ValueError, match="unknown stage"):
        progress.stage("dreaming")
    stage, epoch = (json.loads(line) for line in progress.path.read_text().splitlines())
    assert stage["event"] == "stage" and stage["stage"] == "training"
    assert epoch["val_accuracy"] is None and "val_loss" not in epoch
    assert epoch["eta_s"] == 30.0 and epoch["epochs"] == 4
    cancellation = Cancellation()
    cancellation.check()  # nothing asked yet
    cancellation.request("first")
    cancellation.request("second")
    with pytest.raises(Cancelled, match="first"):
        cancellation.check()


def test_progress_events_round_trip_and_a_half_written_line_is_skipped(tmp_path: Path) -> None:
    work = WorkFolder(tmp_path)
    progress = ProgressLog(work.progress)
    progress.stage(Stage.LOADING)
    progress.stage(Stage.TRAINING)
    progress.epoch(1, 3, {"accuracy": 0.6, "val_accuracy": 0.55, "loss": 0.6}, 4.0)
    progress.epoch(2, 3, {"accuracy": 0.7, "val_accuracy": 0.65, "loss": 0.5}, 8.0)
    with open(work.progress, "a", encoding="utf-8") as handle:
        handle.write('{"event": "stage", "stage": "fitt')  # the writer is mid-line
    events = read_progress(work.progress)
    assert [type(event) for event in events] == [StageEvent, StageEvent, EpochEvent, EpochEvent]
    assert last_stage(events) == Stage.TRAINING and epochs_done(events) == 2
    second = events[3]
    assert (second.epoch, second.epochs, second.val_accuracy) == (2, 3, 0.65)
    assert second.elapsed_s == 8.0 and second.eta_s == 4.0 and second.val_loss is None
    assert read_progress(tmp_path / "missing.jsonl") == []
    assert last_stage([]) is None and epochs_done([]) == 0
    assert Stage.FITTING.label == "fitting the detector and the calibration"


def test_a_result_round_trips_through_its_file(tmp_path: Path) -> None:
    work = WorkFolder(tmp_path)
    assert TrainerResult.read(work.result) is None  # none yet
    score = {
        "accuracy": 0.75,
        "images": 4,
        "correct": 3,
        "per_class": {"jedi": {"images": 2, "correct": 2, "accuracy": 1.0}},
        "ood_refused": 0.25,
        "version": 2,
    }
    result = TrainerResult(
        status=Status.PUBLISHED,
        reason="published version 2",
        version=2,
        val_accuracy=float("nan"),  # strict JSON has no NaN: written as null
        after=HoldoutScore.model_validate(score),
        images={"train": 32, "data": {"jedi": 20, "sith": 20}},
        stage=Stage.PUBLISHING,
        notes=["a note"],
    )
    result.write(work.result)
    written = json.loads(work.result.read_text())
    assert written["protocol"] == PROTOCOL and written["status"] == "published"
    assert written["val_accuracy"] is None and written["stage"] == "publishing"
    back = TrainerResult.read(work.result)
    assert back == result.model_copy(update={"val_accuracy": None})
    assert back.after.per_class["jedi"].accuracy == 1.0 and back.images["data"]["sith"] == 20
    assert ExitCode.of(back.status) == ExitCode.PUBLISHED == 0
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary file left


def test_a_result_from_a_newer_trainer_is_refused_with_a_clear_message() -> None:
    newer = json.dumps({"protocol": PROTOCOL + 1, "status": "published", "reason": "r"})
    with pytest.raises(ProtocolError, match=f"protocol {PROTOCOL + 1}, newer than this bot's"):
        TrainerResult.from_json(newer)
    with pytest.raises(ProtocolError, match="same version of jedisith"):
        TrainerResult.from_json(newer)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"status": "dreaming", "reason": "r"}', "malformed at status"),
        ('{"status": "failed"}', "malformed at reason"),
        ('{"status": "failed", "reason": "r", "epochs_run": "many"}', "malformed at epochs_run"),
    ],
)
def test_a_malformed_result_is_refused(text: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        TrainerResult.from_json(text)


def test_the_protocol_imports_neither_tensorflow_keras_nor_numpy() -> None:
    code = (
        "import sys, training.protocol; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out
