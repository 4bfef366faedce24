"""Processes and threads a test leaves running: what runs now that did not before, read from
/proc and `threading` (cheap enough to check after every test, see conftest.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Set
from dataclasses import dataclass

LEFTOVER_GRACE = 3.0  # seconds a process or thread being stopped gets to end by itself
_POOL_MODULE = os.path.join("concurrent", "futures", "thread.py")
_KEPT_HELPERS = (
    "-c from multiprocessing.resource_tracker import main",
    "-c from multiprocessing.forkserver import main",
)


def _processes() -> dict[int, tuple[int, str]]:
    """Every process of the machine: pid -> (ppid, state), from /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    fields = stat.read().rpartition(b")")[2].split()
            except OSError:  # ended meanwhile
                continue
            table[int(entry.name)] = (int(fields[1]), fields[0].decode())
    return table


def _running_children() -> set[int]:
    """The children of this process that run (a zombie has ended; its parent reaps it), but
    the helpers `multiprocessing` starts once and keeps for the rest of the run."""
    me = os.getpid()
    return {
        pid
        for pid, (ppid, state) in _processes().items()
        if ppid == me and state != "Z" and not _kept_helper(_command_line(pid))
    }


def _kept_helper(command_line: str) -> bool:
    return any(helper in command_line for helper in _KEPT_HELPERS)


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()[:300]
    except OSError:
        return "?"


def _kill_with_children(pid: int) -> None:
    table = _processes()
    tree, found = [pid], [pid]
    while found:
        found = [child for child, (ppid, _) in table.items() if ppid in found]
        tree += found
    for member in reversed(tree):
        with contextlib.suppress(OSError):
            os.kill(member, signal.SIGKILL)


def _working_threads() -> set[threading.Thread]:
    """Non-daemon threads but this one, less the idle workers of thread pools (asyncio's
    executor, the model's decoders): a pool keeps those until it is shut down."""
    frames = sys._current_frames()
    working = set()
    for thread in threading.enumerate():
        if thread.daemon or thread is threading.main_thread() or not thread.is_alive():
            continue
        frame = frames.get(thread.ident or -1)
        idle = (
            frame is not None
            and frame.f_code.co_name == "_worker"
            and frame.f_code.co_filename.endswith(_POOL_MODULE)
        )
        if not idle:
            working.add(thread)
    return working


MODULE_OWNED: set[int] = set()  # see `owned_by_module`


def owned_by_module(pid: int) -> None:
    """A process a test starts for a module-scoped fixture, which stops it: it is looked for
    when the module's fixtures have ended, not after that test."""
    MODULE_OWNED.add(pid)


@dataclass
class Snapshot:
    processes: set[int]
    threads: set[threading.Thread]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(_running_children(), _working_threads())

    def leftovers(self, grace: float = LEFTOVER_GRACE, owned: Set[int] = frozenset()) -> list[str]:
        """What runs now that did not then, but the processes ``owned`` by a fixture, once
        given ``grace`` seconds to end, by name; processes are killed (with their children)."""
        deadline = time.monotonic() + grace
        while True:
            processes = _running_children() - self.processes - owned
            threads = _working_threads() - self.threads
            if not (processes or threads) or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        found = [f"process {pid}: {_command_line(pid)}" for pid in sorted(processes)]
        found += [f"thread {thread.name!r}" for thread in threads]
        for pid in processes:
            _kill_with_children(pid)
        deadline = time.monotonic() + 10
        while processes & _running_children() and time.monotonic() < deadline:
            time.sleep(0.05)
        return found
