"""LiteRT's C++ logger prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on
stderr when a process first runs an interpreter, whatever TF_CPP_MIN_LOG_LEVEL says; the
command-line tools and the bot's log should not show it."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_first = True  # no interpreter has run in this process yet: the banner is still to come


@contextlib.contextmanager
def without_banner() -> Iterator[None]:
    """Around running an interpreter: the process's first run has file descriptor 2 pointed at
    /dev/null meanwhile (LiteRT prints the banner once per process); later runs are left be."""
    global _first
    if not _first:
        yield
        return
    with _lock:
        if not _first:
            yield
            return
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
            _first = False
