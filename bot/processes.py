"""Child processes that end with the process that started them, and the trainer's environment.

The one mechanism for it, used wherever this project starts a process that must not outlive its
parent (the cluster's bots, the trainer beside a bot, the playground's bot): Linux's
`PR_SET_PDEATHSIG`, set in the child between fork and exec, sends it SIGTERM when its parent
ends, however the parent ends (SIGKILL included), and the child stops as it does on any SIGTERM.

The trainer reads images from folders and needs no secret: `trainer_environment` passes it only
what runs Python, TensorFlow and the GPU (never DISCORD_TOKEN, DATABASE_URL or other settings).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable, Mapping

PR_SET_PDEATHSIG = 1

# What the trainer inherits: these names, and those starting with these prefixes.
TRAINER_VARIABLES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TEMP",
        "TMP",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONWARNINGS",
        "VIRTUAL_ENV",
        "LD_LIBRARY_PATH",
        "MPLCONFIGDIR",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "KERAS_HOME",
        "SYSTEMROOT",
    }
)
TRAINER_PREFIXES = ("LC_", "TF_", "CUDA_", "NVIDIA_", "XLA_", "OMP_", "MKL_", "OPENBLAS_", "KMP_")


def trainer_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The trainer's environment: of `base` (default: this process's), only `TRAINER_VARIABLES`
    and `TRAINER_PREFIXES`, with TensorFlow's C++ logs quiet."""
    source = os.environ if base is None else base
    env = {
        key: value
        for key, value in source.items()
        if key in TRAINER_VARIABLES or key.startswith(TRAINER_PREFIXES)
    }
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess` and `asyncio.create_subprocess_exec` that makes the child
    get SIGTERM when this process ends; None where the system cannot (not Linux)."""
    if _prctl is None:
        return None
    return functools.partial(_set_parent_death_signal, os.getpid())


def _set_parent_death_signal(parent: int) -> None:  # pragma: no cover - runs in the child
    if _prctl is None:
        return
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent ended before the signal was set
        os.kill(os.getpid(), signal.SIGTERM)


def _load_prctl():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()
