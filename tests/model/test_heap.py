"""`model.heap`: glibc's mmap threshold held, so that freed decodes leave the process."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from model.heap import map_large_blocks

ROOT = Path(__file__).resolve().parents[2]
glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")

# A child allocates and frees 24 MiB blocks, then many 12 MiB ones that stay in use briefly,
# freed in an order that leaves holes; it prints how much of them stays resident.
_CHILD = """
import json, resource, sys
from model.heap import map_large_blocks
if sys.argv[1] == "1":
    map_large_blocks()
big = bytearray(24 << 20)
del big  # glibc now maps only blocks over 24 MiB, unless the threshold is held
blocks = [bytearray(12 << 20) for _ in range(20)]
del blocks[::2]
del blocks[:-1]
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
print(json.dumps(rss()))
"""


def _resident(held: bool) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, "1" if held else "0"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


@glibc
def test_the_threshold_is_held() -> None:
    assert map_large_blocks() is True


@glibc
def test_freed_large_blocks_leave_the_process_when_the_threshold_is_held() -> None:
    kept, returned = _resident(False), _resident(True)
    assert kept - returned > 64 << 20, (kept, returned)  # the freed blocks below the last one
