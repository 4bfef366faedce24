"""`python -m benchmarks.training_memory --quick`: both data paths train a few steps in fresh
processes and the report has every figure the RESULTS.md table takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import training_memory


def test_the_table_has_a_row_per_run() -> None:
    row = {
        "images": 2000,
        "path": "stream",
        "load_s": 3.2,
        "rss_tf_mb": 601.0,
        "rss_loaded_mb": 613.0,
        "peak_mb": 1358.6,
        "train_img_s": 29.51,
        "train_cores": 1.93,
        "decode_img_s": 724.7,
        "decode_cores": 1.05,
    }
    memory = {**row, "path": "memory", "rss_loaded_mb": 1094.0}
    del memory["decode_img_s"], memory["decode_cores"]
    lines = training_memory.table([memory, row]).splitlines()
    assert len(lines) == 4 and lines[0].count("|") == lines[2].count("|") == lines[3].count("|")
    assert (
        "| 2,000 | stream | 3 s | 601 MB | 613 MB | 1359 MB | 29.5 (1.93) | 725 (1.05) |" in lines
    )
    assert lines[2].endswith("| - |")


@pytest.mark.slow
def test_quick_run_measures_both_paths(tmp_path: Path) -> None:
    out = tmp_path / "training_memory.json"
    assert training_memory.main(["--quick", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["figures"]["rows"]["value"]
    assert [row["path"] for row in rows] == ["memory", "stream"]
    for row in rows:
        assert row["images"] == 96 and row["train_img_s"] > 0
        assert row["peak_mb"] >= row["rss_loaded_mb"] >= row["rss_tf_mb"] > 0
    assert rows[1]["decode_img_s"] > 0
    assert all(check["ok"] for check in report["checks"])
