"""`benchmarks/` is not an installed package: make sure the repository's copy is the one imported
(a bare `pytest` does not put the repository root on sys.path, and this folder's own name would
otherwise shadow it as a namespace package)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
