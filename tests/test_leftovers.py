"""The check that no test leaves a process or thread running (`leftovers`, run after every
test by conftest.py): it names what a test left, kills processes, and lets pools idle."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from leftovers import Snapshot


def test_a_process_left_running_is_named_and_killed() -> None:
    before = Snapshot.take()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # left"])
    try:
        found = before.leftovers(grace=0.2)
        assert len(found) == 1 and f"process {child.pid}: " in found[0], found
        assert "time.sleep(60)  # left" in found[0]
        assert child.wait(timeout=10) == -9  # killed
    finally:
        child.kill()
        child.wait()


def test_a_process_that_ends_within_the_grace_is_not_a_leftover() -> None:
    before = Snapshot.take()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    try:
        assert before.leftovers(grace=10) == []
        assert child.wait(timeout=10) == 0  # it ended by itself
    finally:
        child.kill()
        child.wait()


def test_a_working_thread_is_named() -> None:
    before = Snapshot.take()
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="still-working")
    thread.start()
    try:
        assert before.leftovers(grace=0.2) == ["thread 'still-working'"]
    finally:
        release.set()
        thread.join()
    assert before.leftovers(grace=0.2) == []


def test_idle_pool_workers_and_daemon_threads_are_not_leftovers() -> None:
    before = Snapshot.take()
    release = threading.Event()
    daemon = threading.Thread(target=release.wait, name="daemon", daemon=True)
    daemon.start()
    pool = ThreadPoolExecutor(2, thread_name_prefix="idle")
    try:
        assert pool.submit(sum, [1, 2]).result() == 3
        assert before.leftovers(grace=0.2) == []
        busy = pool.submit(release.wait)
        found = before.leftovers(grace=0.2)
        assert len(found) == 1 and found[0].startswith("thread 'idle_"), found  # busy: named
        release.set()
        busy.result(timeout=10)
    finally:
        release.set()
        pool.shutdown()
        daemon.join()


def test_a_process_owned_by_a_module_fixture_is_left_to_it() -> None:
    before = Snapshot.take()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # owned"])
    try:
        assert before.leftovers(grace=0.2, owned={child.pid}) == []
        assert child.poll() is None  # still running: its fixture stops it
        assert len(before.leftovers(grace=0.2)) == 1  # when the module's fixtures have ended
    finally:
        child.kill()
        child.wait()
