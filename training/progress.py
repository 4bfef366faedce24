"""How a training run is asked to stop, and the Keras callbacks that report it and stop it.

`Cancellation` is a flag set from anywhere (a signal handler, another thread); the run polls it
at every batch and between stages and stops by raising `Cancelled`, so the folders it stages are
removed by the code that made them and nothing half-done is published. The progress events the
callbacks write are `training.protocol`'s.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from training.protocol import ProgressLog


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


def keep_best_callback():
    """A Keras callback that remembers the weights of the best validation epoch (highest
    val_accuracy, ties broken by lower val_loss) and restores them at the end of training."""
    import keras

    class KeepBest(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best: tuple[float, float] | None = None
            self.best_epoch = -1
            self.best_logs: dict[str, float] = {}
            self._weights = None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            key = (float(logs.get("val_accuracy", 0.0)), -float(logs.get("val_loss", np.inf)))
            if self.best is None or key > self.best:
                self.best, self.best_epoch = key, epoch
                self.best_logs = {k: float(v) for k, v in logs.items()}
                self._weights = self.model.get_weights()

        def on_train_end(self, logs: dict | None = None) -> None:
            if self._weights is not None:
                self.model.set_weights(self._weights)

    return KeepBest()
