"""The C heap of a process that decodes images: large blocks are mapped, and returned to the
system when freed.

glibc raises its mmap threshold each time a mapped block is freed (up to 32 MiB), so later
decodes take their blocks from per-thread heaps that keep what they once held: four threads
decoding hostile files within 160 MiB of `DECODE_MEMORY` grew the process by 329 MiB, by
148 MiB with the threshold held at 128 KiB (benchmarks/RESULTS.md, hostile).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BLOCK = 128 * 1024  # glibc's own default, kept from moving up


def map_large_blocks(threshold: int = LARGE_BLOCK) -> bool:
    """Hold glibc's mmap threshold at `threshold` bytes (as MALLOC_MMAP_THRESHOLD_ would);
    False where the C library has no `mallopt` or refuses it."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
