"""The trainer as a process beside the bot: where its logs and its C++ output go, how a signal
asks it to stop, and its lower priority.

The trainer does not watch its parent: the bot starts it with `bot.processes.die_with_parent`,
so the end of the bot, however it ends, reaches the trainer as a SIGTERM, which stops it as any
SIGTERM does; `on_signals` then says that the bot stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from training.progress import Cancellation

log = logging.getLogger(__name__)

NICE = 10  # how much lower than its parent the trainer runs, by default
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def logging_to(path: Path) -> Iterator[None]:
    """Send every log record of the run to `path` (and warnings too), for the run's length."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.setLevel(logging.INFO)
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


@contextlib.contextmanager
def on_signals(cancellation: Cancellation, parent: int | None = None) -> Iterator[None]:
    """While the block runs, SIGTERM and SIGINT ask the run to stop (at the next batch); a
    second one stops it at once. A signal that comes once process `parent` (the bot that
    started the trainer) has ended says so: that is `die_with_parent`'s SIGTERM."""

    def handler(number: int, frame: object) -> None:
        if cancellation.reason is not None:
            raise KeyboardInterrupt
        if parent is not None and os.getppid() != parent:
            cancellation.request(f"the bot stopped (process {parent} is gone)")
        else:
            cancellation.request(f"cancelled ({signal.Signals(number).name})")

    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def lower_priority(nice: int, threads: int | None) -> None:
    """Lower the priority of every thread of this process (threads made later inherit it from
    the one that makes them) and cap TensorFlow's thread pools when asked."""
    if nice:
        renice(nice)
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def renice(increment: int) -> None:
    """`os.nice` for all threads: on Linux a nice value belongs to a thread, and NumPy's
    OpenBLAS threads exist before `main` runs."""
    try:
        tasks = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: nice(2) is per process there
        tasks = []
    if not tasks:
        with contextlib.suppress(OSError):
            os.nice(increment)
        return
    for task in tasks:
        try:
            now = os.getpriority(os.PRIO_PROCESS, task)
            os.setpriority(os.PRIO_PROCESS, task, min(19, now + increment))
        except OSError as error:  # a thread that ended meanwhile, or a raise we may not make
            log.debug("could not renice thread %d: %s", task, error)


@contextlib.contextmanager
def quiet_output(path: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 at `path` (TensorFlow's C++ logs, LiteRT's banner), and
    restore them after."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)
