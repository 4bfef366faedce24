"""The learning curve and the training-beside benchmarks: their pieces (fast), and their quick
modes end to end (slow: they train, and start a bot and trainers)."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from benchmarks import _learning_curve, learning, training_beside

# -- learning: the pieces ---------------------------------------------------------------------


def test_plan_gives_every_size_once_before_the_repeats() -> None:
    runs = learning.plan((10, 20, 50, 100), repeats=3, repeat_up_to=20)
    assert runs[:4] == [(10, 0), (20, 0), (50, 0), (100, 0)]
    assert sorted(runs[4:]) == [(10, 1), (10, 2), (20, 1), (20, 2)]
    assert learning.pool_size(runs) == 100  # 3 x 20 = 60 < 100
    assert learning.pool_size(learning.plan((50,), 3, 50)) == 150


def test_subsets_of_one_size_share_no_image(tmp_path) -> None:
    pool = tmp_path / "pool"
    for label in ("jedi", "sith"):
        (pool / label).mkdir(parents=True)
        for i in range(9):
            (pool / label / f"{label}_{i:05d}.png").write_bytes(f"{label}{i}".encode())
    first = learning.subset_folder(pool, 3, 0, tmp_path / "runs")
    second = learning.subset_folder(pool, 3, 2, tmp_path / "runs")
    names = {p.name for p in (first / "jedi").iterdir()}
    assert names == {"jedi_00000.png", "jedi_00001.png", "jedi_00002.png"}
    assert {p.name for p in (second / "sith").iterdir()} == {
        "sith_00006.png",
        "sith_00007.png",
        "sith_00008.png",
    }
    with pytest.raises(SystemExit):
        learning.subset_folder(pool, 4, 2, tmp_path / "runs")  # 8..11: only 9 images


def test_real_data_sizes_are_cut_to_what_the_folder_holds(tmp_path) -> None:
    from benchmarks._common import Report

    for label, count in (("jedi", 5), ("sith", 12)):
        (tmp_path / label).mkdir()
        for i in range(count):
            (tmp_path / label / f"{i:064x}.png").write_bytes(b"x")
    report = Report("learning", "test", info={})
    assert learning.fitting_sizes((3, 5, 10), tmp_path, report) == ((3, 5), 5)
    assert report.notes and "5 images of its smallest class" in report.notes[0]
    with pytest.raises(SystemExit):
        learning.fitting_sizes((10,), tmp_path, report)
    with pytest.raises(SystemExit, match="go together"):
        learning.main(["--data", str(tmp_path)])


def test_score_counts_right_refused_and_calibration() -> None:
    from model.runtime import Prediction

    class Fake:
        def predict(self, images):
            out = []
            for image in images:
                value = float(image[0, 0, 0]) / 100
                out.append(Prediction("sith" if value >= 0.5 else "jedi", value, value, 1.0, 2.0))
            return out

    images = np.zeros((4, 2, 2, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = [10, 90, 60, 20]
    labels = np.array([0, 1, 0, 1])  # right, right, wrong, wrong
    figures = learning.score(Fake(), images, labels)
    assert figures["holdout_images"] == 4 and figures["accuracy"] == 0.5
    assert figures["refused"] == 0 and figures["accuracy_kept"] == 0.5
    assert 0 <= figures["ece"] <= 1 and figures["ece"] == figures["ece_raw"]
    assert figures["confidence"] == pytest.approx((0.9 + 0.9 + 0.6 + 0.8) / 4)


def test_summary_table_and_csv(tmp_path) -> None:
    def run(n, repeat, accuracy):
        return _learning_curve.Run(n, repeat, 123 + repeat, 2 * n, n // 2, 15, 9, 0.9, 200,
                                   accuracy, 4, 0.02, accuracy, 0.03, 0.05, 12.0)  # fmt: skip

    runs = [run(10, 0, 0.6), run(10, 1, 0.8), run(20, 0, 0.9)]
    rows = _learning_curve.summarise(runs)
    assert [r["n_per_class"] for r in rows] == [10, 20]
    assert rows[0]["repeats"] == 2 and rows[0]["accuracy_mean"] == pytest.approx(0.7)
    assert (rows[0]["accuracy_min"], rows[0]["accuracy_max"]) == (0.6, 0.8)
    text = _learning_curve.table(rows)
    assert "| 10 | 2 | 70.0 % (60.0-80.0) |" in text and "| 20 | 1 | 90.0 % |" in text
    _learning_curve.write_csv(runs, tmp_path / "l.csv")
    with open(tmp_path / "l.csv") as handle:
        read = list(csv.DictReader(handle))
    assert tuple(read[0]) == _learning_curve.COLUMNS and len(read) == 3
    back = _learning_curve.read_csv(tmp_path / "l.csv")
    assert [r.accuracy for r in back] == [0.6, 0.8, 0.9] and back[0].n_per_class == 10
    assert np.isnan(back[0].confidence)  # not measured by this made-up run


# -- training_beside: the pieces --------------------------------------------------------------


def test_conditions_alternate_and_name_their_priority() -> None:
    names = [c.name for c in training_beside.conditions()]
    assert names == ["idle", "nice0", "nice10", "nice10_1thread"]
    assert [c.name for c in training_beside.conditions(one_thread=False)][-1] == "nice10"
    order = training_beside.schedule(["a", "b", "c"], 3)
    assert order == [["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c"]]


def test_trainer_command_is_the_training_cli_under_nice(tmp_path) -> None:
    nice = training_beside.Trainer(training_beside.NICE10_1T, tmp_path / "data", tmp_path)
    command = nice.command()
    assert command[:3] == ["nice", "-n", "10"]
    assert command[4:7] == ["-m", "training", str(tmp_path / "data")]
    assert "--quiet" in command and "--epochs" in command
    assert nice.condition.env == {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    plain = training_beside.Trainer(training_beside.NICE0, tmp_path / "data", tmp_path).command()
    assert plain[1:3] == ["-m", "training"]


def test_proc_readers_see_this_process() -> None:
    before = training_beside.cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))
    assert training_beside.cpu_seconds(os.getpid()) >= before > 0
    assert training_beside.nice_of(os.getpid()) == os.getpriority(os.PRIO_PROCESS, 0)
    threads = training_beside.thread_seconds(os.getpid())
    assert os.getpid() in threads and sum(threads.values()) > 0
    assert training_beside.machine_seconds() > 0


def test_busy_threads_counts_those_over_a_tenth_of_a_core() -> None:
    before = {1: 0.0, 2: 5.0, 3: 1.0}
    after = {1: 1.9, 2: 5.05, 3: 1.3, 4: 0.5}  # over 2 s: 0.95, 0.025, 0.15, 0.25 cores
    assert training_beside.busy_threads(before, after, 2.0) == 3


# -- the quick modes, end to end --------------------------------------------------------------


@pytest.mark.slow
def test_learning_quick_trains_scores_and_writes_csv_and_plot(tmp_path, capsys) -> None:
    out = tmp_path / "learning.json"
    files = ["--json", str(out), "--csv", str(tmp_path / "l.csv")]
    code = learning.main(["--quick", *files, "--plot", str(tmp_path / "curve.png")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| images per class | runs | holdout accuracy" in printed
    with open(tmp_path / "l.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == _learning_curve.COLUMNS and len(rows) == 1
    row = rows[0]
    assert row["n_per_class"] == "6" and row["epochs"] == "1" and row["holdout_images"] == "16"
    assert 0 <= float(row["accuracy"]) <= 1 and 0 <= int(row["refused"]) <= 16
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(out.read_text())
    assert saved["figures"]["summary"][0]["n_per_class"] == 6
    assert [o["unit"] for o in saved["outcomes"]] == ["%"]


@pytest.mark.slow
def test_training_beside_quick_measures_every_condition(tmp_path, capsys) -> None:
    out = tmp_path / "beside.json"
    assert training_beside.main(["--quick", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    figures = saved["figures"]
    for name in ("idle", "nice0", "nice10", "nice10_1thread"):
        assert figures[f"{name}_ms"]["n"] == 6
        assert figures[f"{name}_ms"]["median"] > 0
        assert figures[f"{name}_bot_cores"]["value"] > 0
        assert figures[f"{name}_others_cores"]["value"] >= 0
    assert figures["idle_trainer_cores"]["value"] == 0
    assert figures["nice10_1thread_trainer_busy_threads"]["value"] >= 0
    assert all(check["ok"] for check in saved["checks"])
    ratios = [o for o in saved["outcomes"] if o["unit"] == "x"]
    assert len(ratios) == 3 and all(o["value"] > 0 for o in ratios)
    assert "median latency, training beside, nice 10 / idle" in capsys.readouterr().out
