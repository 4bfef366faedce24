"""The contract between the bot and its trainer, `python -m training.retrain`: the only place
that names the trainer's files, stages, exit codes and result.

The bot starts the trainer as a process of its own on a work folder (`WorkFolder`) holding the
exported images, and follows it through two files the trainer writes there:

- `progress.jsonl`: one JSON object per line, each written and flushed in one call
  (`ProgressLog`), read back with `read_progress`: a `StageEvent` when the run enters a stage,
  an `EpochEvent` after each epoch.
- `result.json`: a `TrainerResult`, written once, atomically, at the end of every run.

This module imports only the standard library, pydantic and `model.bundle` (no TensorFlow, no
NumPy), so the bot can import it without importing the trainer. A result written by a newer
trainer than the reader knows (`protocol` above `PROTOCOL`) is refused with `ProtocolError`, not
misread.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from model.bundle import write_text_atomic

PROTOCOL = 1  # bump when a field changes meaning or a required one is added
DEFAULT_EPOCHS = 29  # the notebook's
MIN_IMAGES_PER_CLASS = 20  # labelled images per class, outside the holdout, a retrain needs
TRAINER_MODULE = "training.retrain"


class ProtocolError(Exception):
    """A trainer's file that this side cannot read: malformed, or from a newer protocol."""


class Stage(enum.StrEnum):
    """The stages of a run, in order; `label` is how the bot shows the stage in progress."""

    LOADING = "loading"
    TRAINING = "training"
    FITTING = "fitting"
    EXPORTING = "exporting"
    EVALUATING = "evaluating"
    PUBLISHING = "publishing"

    @property
    def label(self) -> str:
        return _STAGE_LABELS[self]


_STAGE_LABELS = {
    Stage.LOADING: "loading the images",
    Stage.TRAINING: "training",
    Stage.FITTING: "fitting the detector and the calibration",
    Stage.EXPORTING: "exporting the model",
    Stage.EVALUATING: "comparing it with the current model on the holdout",
    Stage.PUBLISHING: "publishing it",
}


class Status(enum.StrEnum):
    """How a run ended. The trainer writes the first four; `INTERRUPTED` is the bot's own word
    for a run its process did not see to the end (a restart, a crash)."""

    PUBLISHED = "published"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class ExitCode(enum.IntEnum):
    """The trainer's exit status; `result.json` says the same and more."""

    PUBLISHED = 0
    FAILED = 1
    USAGE = 2
    REFUSED = 3
    CANCELLED = 4

    @classmethod
    def of(cls, status: Status) -> ExitCode:
        return cls[status.name]


@dataclass(frozen=True)
class WorkFolder:
    """One training's folder: the images it learns from and is judged on, and what it writes."""

    path: Path

    @property
    def data(self) -> Path:
        """Class folders (jedi/, sith/) of the images to train on."""
        return self.path / "data"

    @property
    def holdout(self) -> Path:
        """Class folders of the images never trained on, on which the candidate is judged."""
        return self.path / "holdout"

    @property
    def progress(self) -> Path:
        return self.path / "progress.jsonl"

    @property
    def result(self) -> Path:
        return self.path / "result.json"

    @property
    def log(self) -> Path:
        """Everything the run logs, tracebacks included."""
        return self.path / "train.log"

    @property
    def output(self) -> Path:
        """The trainer process's stdout and stderr, as its parent captured them."""
        return self.path / "trainer.out"

    @property
    def curves(self) -> Path:
        return self.path / "curves.png"

    @property
    def confusion(self) -> Path:
        return self.path / "confusion.png"


# -- progress -------------------------------------------------------------------------------


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class StageEvent(_Event):
    """The run entered `stage`."""

    event: Literal["stage"] = "stage"
    stage: Stage
    time: float


class EpochEvent(_Event):
    """Epoch `epoch` (1-based) of `epochs` is done; `eta_s` is the time left to train."""

    event: Literal["epoch"] = "epoch"
    epoch: int
    epochs: int
    accuracy: float | None = None
    val_accuracy: float | None = None
    loss: float | None = None
    val_loss: float | None = None
    elapsed_s: float
    eta_s: float
    time: float


ProgressEvent = Annotated[StageEvent | EpochEvent, Field(discriminator="event")]
_EVENT = TypeAdapter(ProgressEvent)


class ProgressLog:
    """The trainer's side of `progress.jsonl`: appends an event per line, flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, event: StageEvent | EpochEvent) -> None:
        # A metric Keras did not report is left out; one that is NaN is written as null.
        data = event.model_dump(mode="json", exclude_none=True)
        line = json.dumps(finite(data), allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()

    def stage(self, stage: Stage | str) -> None:
        try:
            stage = Stage(stage)
        except ValueError:
            raise ValueError(f"unknown stage {stage!r}") from None
        self.write(StageEvent(stage=stage, time=round(time.time(), 3)))

    def epoch(self, epoch: int, epochs: int, logs: dict[str, Any], elapsed: float) -> None:
        """Epoch `epoch` (1-based) of `epochs` is done; `elapsed` seconds since training began."""
        per_epoch = elapsed / max(epoch, 1)
        metrics = {
            key: float(logs[key])
            for key in ("accuracy", "val_accuracy", "loss", "val_loss")
            if key in logs
        }
        self.write(
            EpochEvent(
                epoch=epoch,
                epochs=epochs,
                **metrics,
                elapsed_s=round(elapsed, 2),
                eta_s=round(per_epoch * (epochs - epoch), 1),
                time=round(time.time(), 3),
            )
        )


def read_progress(path: Path) -> list[StageEvent | EpochEvent]:
    """The events in a progress file so far; a half-written or unknown line is skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError, ValidationError):
            events.append(_EVENT.validate_json(line))
    return events


def last_stage(events: list[StageEvent | EpochEvent]) -> Stage | None:
    """The stage the run entered last; None before it entered any."""
    stages = [e.stage for e in events if isinstance(e, StageEvent)]
    return stages[-1] if stages else None


def epochs_done(events: list[StageEvent | EpochEvent]) -> int:
    """How many epochs the run has finished."""
    return sum(isinstance(e, EpochEvent) for e in events)


# -- the result -----------------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ClassScore(_Record):
    images: int
    correct: int
    accuracy: float | None


class HoldoutScore(_Record):
    """One model's answers on the holdout, through the serving path."""

    accuracy: float | None
    images: int
    correct: int | None
    per_class: dict[str, ClassScore] | None
    ood_refused: float | None
    version: int | None = None  # the model's version in the model folder, when it has one


class CalibrationFigures(_Record):
    ece_before: float | None
    ece_after: float | None
    temperature: float | None
    images: int
    note: str | None = None


class DetectorFigures(_Record):
    threshold: float | None
    validation_refused: float | None
    validation_images: int | None
    threshold_rule: str | None = None
    guarantee: dict[str, float] | None = None  # the share of new images kept, and how surely
    note: str | None = None


class Plots(_Record):
    curves: str | None = None
    confusion: str | None = None


class TrainerResult(_Record):
    """How a run ended (`status`, and `reason`, one line to show a person) and its figures."""

    protocol: int = PROTOCOL
    status: Status
    reason: str
    version: int | None = None  # the version published, when one was
    model: str | None = None
    before: HoldoutScore | None = None  # the current model's answers on the holdout
    after: HoldoutScore | None = None  # the candidate's
    forced: bool = False
    calibration: CalibrationFigures | None = None
    ood: DetectorFigures | None = None
    val_accuracy: float | None = None
    epochs_run: int = 0
    epochs: int | None = None
    images: dict[str, int | dict[str, int] | None] = Field(default_factory=dict)
    skipped: dict[str, int] = Field(default_factory=dict)
    confusion_on: str | None = None
    plots: Plots = Field(default_factory=Plots)
    stage: Stage | None = None
    notes: list[str] = Field(default_factory=list)
    log: str | None = None
    seconds: float | None = None

    def to_json(self) -> str:
        data = finite(self.model_dump(mode="json"))
        return json.dumps(data, indent=2, allow_nan=False) + "\n"

    def write(self, path: Path) -> None:
        """Write to `path` atomically: a reader sees all of it or nothing."""
        write_text_atomic(Path(path), self.to_json())

    @classmethod
    def from_json(cls, text: str | bytes) -> TrainerResult:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ProtocolError(f"the trainer's result is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise ProtocolError("the trainer's result is not a JSON object")
        written = data.get("protocol", PROTOCOL)
        if not isinstance(written, int) or written > PROTOCOL:
            raise ProtocolError(
                f"the trainer wrote protocol {written!r}, newer than this bot's {PROTOCOL}: "
                "run the bot and the trainer from the same version of jedisith"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "result"
            raise ProtocolError(
                f"the trainer's result is malformed at {where}: {first['msg']}"
            ) from None

    @classmethod
    def read(cls, path: Path) -> TrainerResult | None:
        """The result in `path`; None while there is none. `ProtocolError` if unreadable."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            reason = error.strerror or type(error).__name__  # never the host path: the bot shows it
            raise ProtocolError(f"cannot read {Path(path).name}: {reason}") from None
        return cls.from_json(text)


def finite(value: Any) -> Any:
    """`value` with NaN and infinities replaced by None, recursively: strict JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value
