"""What a training run tells whoever watches it, and how it is asked to stop.

`ProgressLog` appends one JSON object per line to a file (`progress.jsonl`), flushed at once, so
another process (the bot) can follow a run by reading the lines that have appeared:

    {"event": "stage", "stage": "training", "time": 1767000000.0}
    {"event": "epoch", "epoch": 3, "epochs": 29, "accuracy": 0.71, "val_accuracy": 0.69,
     "loss": 0.55, "val_loss": 0.58, "elapsed_s": 61.2, "eta_s": 530.4, "time": ...}

`Cancellation` is a flag set from anywhere (a signal handler, a watchdog thread); the run polls it
at every batch and between stages and stops by raising `Cancelled`, so the folders it stages are
removed by the code that made them and nothing half-done is published.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

STAGES = ("loading", "training", "fitting", "exporting", "evaluating", "publishing")


class Cancelled(Exception):
    """The run was asked to stop; `reason` says by whom."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Cancellation:
    """A stop request that any thread (or a signal handler) may make, and the run polls."""

    def __init__(self) -> None:
        self._reason: str | None = None
        self._lock = threading.Lock()

    def request(self, reason: str) -> None:
        """Ask the run to stop; the first reason given is the one reported."""
        with self._lock:
            if self._reason is None:
                self._reason = reason

    @property
    def reason(self) -> str | None:
        return self._reason

    def check(self) -> None:
        """Raise `Cancelled` if a stop was requested."""
        if self._reason is not None:
            raise Cancelled(self._reason)


def finite(value: object) -> object:
    """`value` with NaN and infinities replaced by None, recursively: strict JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


class ProgressLog:
    """Appends events to a JSON-lines file; each line is written and flushed in one call."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, event: dict) -> None:
        line = json.dumps(finite(event), allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()

    def stage(self, stage: str) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        self.write({"event": "stage", "stage": stage, "time": round(time.time(), 3)})

    def epoch(self, epoch: int, epochs: int, logs: dict, elapsed: float) -> None:
        """Epoch `epoch` (1-based) of `epochs` is done; `elapsed` seconds since training began."""
        per_epoch = elapsed / max(epoch, 1)
        self.write(
            {
                "event": "epoch",
                "epoch": epoch,
                "epochs": epochs,
                **{
                    key: float(logs[key])
                    for key in ("accuracy", "val_accuracy", "loss", "val_loss")
                    if key in logs
                },
                "elapsed_s": round(elapsed, 2),
                "eta_s": round(per_epoch * (epochs - epoch), 1),
                "time": round(time.time(), 3),
            }
        )


def keras_callbacks(
    progress: ProgressLog | None, epochs: int, cancellation: Cancellation | None
) -> list:
    """Keras callbacks that write an `epoch` event after each epoch and stop at the next batch
    once `cancellation` is requested (by raising `Cancelled` out of `fit`)."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.started = time.monotonic()
            self.epochs_done = 0

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.started = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.epochs_done = epoch + 1
            if progress is not None:
                progress.epoch(epoch + 1, epochs, logs or {}, time.monotonic() - self.started)

    class StopWhenAsked(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            cancellation.check()

        def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
            cancellation.check()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            cancellation.check()

    callbacks: list = [Progress()]
    if cancellation is not None:
        callbacks.append(StopWhenAsked())
    return callbacks
