"""`python -m training.retrain`: train beside the bot, publish only what is surely better."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.bundle import DEFAULT_MODEL_DIR, model_dir, versions
from model.runtime import Classifier
from training.protocol import (
    EpochEvent,
    ExitCode,
    Stage,
    StageEvent,
    Status,
    TrainerResult,
    WorkFolder,
    read_progress,
)
from training.retrain import RetrainOptions, main, retrain

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (its versions and CURRENT too) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def events(work: Path) -> list[StageEvent | EpochEvent]:
    return read_progress(WorkFolder(work).progress)


def stages(work: Path) -> list[Stage]:
    return [event.stage for event in events(work) if isinstance(event, StageEvent)]


def outcome(work: Path) -> TrainerResult:
    """The run's result.json, as the bot reads it."""
    result = TrainerResult.read(WorkFolder(work).result)
    assert result is not None, f"no result.json in {work}"
    return result


def staging_left(folder: Path) -> list[Path]:
    return [p for p in folder.parent.iterdir() if ".staging-" in p.name]


def is_png(path: str | Path) -> bool:
    with Image.open(path) as image:
        return image.format == "PNG" and image.width > 100


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The least a retrain takes: 20 synthetic images per class."""
    from training.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("small")
    generate_dataset(root, jedi=20, sith=20, seed=13)
    return root


@pytest.fixture(scope="module")
def holdout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("holdout")
    generate_dataset(root, jedi=8, sith=8, seed=7)
    return root


@pytest.fixture(scope="module")
def sith_holdout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A holdout with no jedi/ folder at all."""
    from training.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("sith-holdout")
    generate_dataset(root, jedi=0, sith=10, seed=8)
    (root / "jedi").rmdir()
    return root


@pytest.fixture(scope="module")
def always_jedi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat model folder (no detector, no calibration) whose network says Jedi to anything."""
    from model.architecture import build_model
    from training.export import export_tflite

    folder = tmp_path_factory.mktemp("always-jedi") / "model"
    folder.mkdir()
    network = build_model(seed=0)
    score = network.get_layer("score")
    kernel, bias = score.get_weights()
    score.set_weights([np.zeros_like(kernel), np.full_like(bias, -8.0)])
    network.save(folder / "model.keras")
    (folder / "model.tflite").write_bytes(export_tflite(network))
    meta = {"class_names": ["jedi", "sith"], "image_size": [200, 200], "parameters": 622_753}
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """The shipped model as version 1 of a versioned folder, as a bot would serve it."""
    folder = tmp_path / "served"
    shutil.copytree(DEFAULT_MODEL_DIR, folder / "1")
    (folder / "CURRENT").write_text("1\n")
    return folder


def test_a_surely_better_candidate_is_published_as_a_new_version(
    tmp_path: Path, tiny_dataset: Path, sith_holdout: Path, always_jedi: Path
) -> None:
    """Learned from the shipped model's weights, the candidate gets the Sith drawings right
    where the current model (Jedi to everything) gets none: surely better, published. (This
    test was "not worse is published"; the gate is now the servers' paired rule.)"""
    model, work = tmp_path / "model", tmp_path / "work"
    shutil.copytree(always_jedi, model)  # flat: publishing keeps it as version 1
    data = tmp_path / "data"  # links to the images, as a content-addressed export makes
    for path in tiny_dataset.rglob("*.*"):
        (data / path.parent.name).mkdir(parents=True, exist_ok=True)
        (data / path.parent.name / path.name).symlink_to(path)
    held_out = tmp_path / "holdout"
    shutil.copytree(sith_holdout, held_out)
    leaked = next((tiny_dataset / "sith").iterdir())
    shutil.copy(leaked, held_out / "sith" / "leaked.png")  # also in the training data
    options = RetrainOptions(
        data, model, work, holdout=held_out, epochs=2, batch_size=16, init=DEFAULT_MODEL_DIR
    )
    result = retrain(options)

    assert result.status == Status.PUBLISHED, result.reason
    assert outcome(work) == result
    assert result.version == 2 and (model / "CURRENT").read_text().strip() == "2"
    assert versions(model) == [1, 2]
    assert (model / "1" / "model.keras").read_bytes() == (always_jedi / "model.keras").read_bytes()
    assert result.reason.startswith("published version 2: holdout accuracy 0.0% (version 1) → "), (
        result.reason
    )
    assert "on 10 held-out images" in result.reason and "(95% interval +" in result.reason
    assert "surely better (p = 0.0" in result.reason
    # The current model says Jedi to everything and the holdout has only Sith: 0 right.
    before, after = result.before, result.after
    assert before.accuracy == 0.0 and before.version == 1 and before.images == 10
    assert before.per_class["jedi"].model_dump() == {"images": 0, "correct": 0, "accuracy": None}
    assert after.version == 2 and after.images == 10
    assert after.accuracy == pytest.approx(after.correct / 10) and after.correct >= 5
    assert after.per_class["sith"].correct == after.correct
    assert result.images["train"] + result.images["val"] == 48
    assert result.images["holdout"] == 10 and not result.forced
    assert result.images["holdout_in_data"] == 1  # left out of the comparison
    assert result.epochs_run == 2 and result.confusion_on == "holdout"

    lines = events(work)
    epochs = [event for event in lines if isinstance(event, EpochEvent)]
    assert [event.epoch for event in epochs] == [1, 2]
    for event in epochs:
        assert event.epochs == 2 and 0.0 <= event.val_accuracy <= 1.0
        assert event.loss > 0 and event.elapsed_s > 0 and event.eta_s >= 0
    assert epochs[-1].eta_s == 0
    assert stages(work) == list(Stage)
    raw = [json.loads(line) for line in WorkFolder(work).progress.read_text().splitlines()]
    assert all(isinstance(event["time"], float) for event in raw)
    assert is_png(result.plots.curves) and is_png(result.plots.confusion)

    served = Classifier.load(model, "litert")  # what the bot's hot reload will load
    meta = served.info.raw
    assert served.detector.threshold == pytest.approx(result.ood.threshold)
    assert served.calibration.temperature == pytest.approx(result.calibration.temperature)
    assert meta["metrics"]["validation"]["accuracy"] == pytest.approx(result.val_accuracy)
    assert meta["dataset"]["counts"] == {"jedi": 24, "sith": 24}
    assert meta["training"]["epochs"] == 2
    # a server's network from the shared weights keeps Outlier Exposure and the combined detector
    assert meta["training"]["outlier_exposure"]["outliers"] == "generated"
    assert served.detector.combination is not None and "combination" in meta["detector"]
    assert not staging_left(model)
    assert "stage: publishing" in (work / "train.log").read_text()


def test_a_worse_candidate_is_refused_and_the_model_is_unchanged(
    tmp_path: Path, small_data: Path, holdout: Path, shipped: Path
) -> None:
    """The real trainer, `python -m training.retrain`, read as the bot reads it."""
    before = snapshot(shipped)
    work = tmp_path / "work"
    process = start(
        [
            "--data", str(small_data), "--holdout", str(holdout), "--model", str(shipped),
            "--epochs", "1", "--nice", "0",
        ],
        work,
    )  # fmt: skip
    out, err = process.communicate(timeout=600)
    result = outcome(work)
    assert process.returncode == ExitCode.REFUSED and result.status == Status.REFUSED
    assert snapshot(shipped) == before
    assert not staging_left(shipped)
    assert result.version is None and not result.forced
    assert result.before.version == 1 and result.after.version is None
    assert result.before.accuracy > result.after.accuracy
    assert result.before.images == result.after.images == 16
    assert result.reason.startswith("not published: holdout accuracy "), result.reason
    assert "(version 1) → " in result.reason and "(95% interval " in result.reason
    assert Stage.PUBLISHING not in stages(work) and result.epochs_run == 1
    assert is_png(WorkFolder(work).confusion) and is_png(WorkFolder(work).curves)
    # Twenty images per class: a validation split of 8, and the fallbacks say so.
    assert result.images == {
        "train": 32, "val": 8, "holdout": 16, "data": {"jedi": 20, "sith": 20},
        "holdout_in_data": 0,
    }  # fmt: skip
    assert result.ood.threshold_rule == "largest validation distance"
    assert "45" in result.ood.note and result.ood.validation_images == 8
    assert result.calibration.temperature >= 1.0 and "8 validation" in result.notes[0]
    assert out.startswith("refused: not published") and out.count("\n") == 1 and err == ""


def test_a_candidate_only_as_good_is_refused_saying_what_would_settle_it(
    tmp_path: Path, tiny_dataset: Path, sith_holdout: Path, shipped: Path
) -> None:
    """The shipped model and a candidate learned from its weights are both right on the Sith
    drawings: "not worse" published such a candidate; "surely better" refuses it, with the
    interval and the held-out images that would settle it. `force` still publishes it."""
    before = snapshot(shipped)
    common = {"holdout": sith_holdout, "epochs": 1, "batch_size": 16, "init": DEFAULT_MODEL_DIR}
    result = retrain(RetrainOptions(tiny_dataset, shipped, tmp_path / "work", **common))
    assert result.status == Status.REFUSED, result.reason
    assert result.before.accuracy == 1.0 and result.after.accuracy >= 0.9
    assert result.reason.startswith("not published: holdout accuracy 100.0% (version 1) → ")
    assert "on 10 held-out images" in result.reason and "(95% interval " in result.reason
    needed = re.search(
        r"not surely better \(p = 1\.00\); about (\d+) held-out images \((\d+) more\) "
        "would settle it",
        result.reason,
    )
    assert needed is not None and int(needed[1]) == 10 + int(needed[2]) > 10, result.reason
    assert result.reason.endswith("is unchanged (force publishes it anyway)")
    assert snapshot(shipped) == before and result.version is None

    forced = retrain(
        RetrainOptions(tiny_dataset, shipped, tmp_path / "forced", force=True, **common)
    )
    assert forced.status == Status.PUBLISHED and forced.forced and forced.version == 2
    assert forced.reason.startswith("published version 2 because it was forced: holdout accuracy")
    assert "would settle it" in forced.reason and versions(shipped) == [1, 2]


def test_a_bad_command_line_is_a_failed_result(tmp_path: Path, capsys) -> None:
    work = tmp_path / "work"
    assert main(["--work", str(work), "--data", str(tmp_path)]) == ExitCode.USAGE
    result = outcome(work)
    assert result.status == Status.FAILED
    assert result.reason.startswith("bad command line: ") and "--model" in result.reason
    assert "error: " in capsys.readouterr().err


def test_force_publishes_what_the_gate_refuses(
    tmp_path: Path, small_data: Path, holdout: Path, shipped: Path
) -> None:
    version_one = snapshot(shipped / "1")
    options = RetrainOptions(
        small_data, shipped, tmp_path / "work", holdout=holdout, epochs=1, force=True
    )
    result = retrain(options)
    assert result.status == Status.PUBLISHED and result.forced
    assert "because it was forced" in result.reason
    assert result.after.accuracy < result.before.accuracy
    assert versions(shipped) == [1, 2] and model_dir(shipped) == shipped / "2"
    assert snapshot(shipped / "1") == version_one  # a rollback can go back to it
    assert not staging_left(shipped)


def test_an_empty_holdout_is_refused_before_training_unless_forced(
    tmp_path: Path, small_data: Path, shipped: Path
) -> None:
    before = snapshot(shipped)
    empty = tmp_path / "holdout"
    (empty / "jedi").mkdir(parents=True)
    (empty / "sith").mkdir()
    result = retrain(RetrainOptions(small_data, shipped, tmp_path / "w1", holdout=empty))
    assert result.status == Status.REFUSED
    assert "no holdout images to compare on" in result.reason
    assert stages(tmp_path / "w1") == [Stage.LOADING]  # no time spent training
    assert snapshot(shipped) == before

    forced = retrain(
        RetrainOptions(small_data, shipped, tmp_path / "w2", epochs=1, force=True)
    )  # no --holdout at all
    assert forced.status == Status.PUBLISHED and forced.forced
    assert "the holdout is empty" in forced.reason
    assert forced.confusion_on.startswith("validation split")
    assert forced.after.images == 0 and forced.before.accuracy is None
    assert is_png(forced.plots.confusion)
    assert versions(shipped) == [1, 2]


def test_too_few_images_fail_with_how_many_more_are_needed(tmp_path: Path) -> None:
    from training.synthetic import generate_dataset

    data = tmp_path / "data"
    generate_dataset(data, jedi=12, sith=25, seed=3)
    model = tmp_path / "model"
    result = retrain(RetrainOptions(data, model, tmp_path / "work"))
    assert result.status == Status.FAILED
    assert result.reason == (
        "too few images to train: jedi has 12 and sith has 25; at least 20 of each are "
        "needed (8 more jedi)"
    )
    assert stages(tmp_path / "work") == [Stage.LOADING] and not model.exists()
    assert result.images["data"] == {"jedi": 12, "sith": 25}


def test_bad_input_fails_in_one_line_with_the_traceback_in_the_log(
    tmp_path: Path, tiny_dataset: Path, holdout: Path, monkeypatch
) -> None:
    model = tmp_path / "model"

    def failure(**changes) -> str:
        work = tmp_path / f"work{len(list(tmp_path.iterdir()))}"
        fields = {"data": tiny_dataset, "model": model, "work": work, **changes}
        result = retrain(RetrainOptions(**fields))
        assert result.status == Status.FAILED and "\n" not in result.reason
        assert "Traceback" not in result.to_json()
        assert outcome(fields["work"]) == result
        return result.reason

    assert "is not a folder" in failure(data=tmp_path / "missing")
    assert "--epochs must be at least 1" in failure(epochs=0)
    assert "the shipped model" in failure(model=DEFAULT_MODEL_DIR)
    odd = tmp_path / "odd-holdout"
    shutil.copytree(holdout, odd)
    (odd / "yoda").mkdir()
    reason = failure(holdout=odd)
    assert "not classes of the model" in reason and "yoda" in reason

    unreadable = tmp_path / "unreadable"
    for name in ("jedi", "sith"):
        (unreadable / name).mkdir(parents=True)
        for i in range(25):
            (unreadable / name / f"{i}.png").write_bytes(b"not an image")
    assert failure(data=unreadable).startswith("no usable image in")

    import training.train

    def boom(*args, **kwargs):
        raise RuntimeError("the GPU caught fire")

    monkeypatch.setattr(training.train, "build_model_folder", boom)
    work = tmp_path / "boom"
    reason = failure(work=work, holdout=holdout)
    assert "the GPU caught fire" in reason and "train.log" in reason
    assert "Traceback" in (work / "train.log").read_text()
    assert not model.exists() and not staging_left(model)


def start(args: list[str], work: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "training.retrain", *args, "--work", str(work)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_stage(work: Path, stage: Stage, process: subprocess.Popen, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (work / "progress.jsonl").exists() and stage in stages(work):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError(f"no {stage} stage in {timeout} s")


def test_sigterm_stops_the_run_cleanly(
    tmp_path: Path, tiny_dataset: Path, holdout: Path, shipped: Path
) -> None:
    before = snapshot(shipped)
    work = tmp_path / "work"
    args = ["--data", str(tiny_dataset), "--holdout", str(holdout), "--model", str(shipped)]
    process = start(args, work)  # the notebook's 29 epochs: minutes, unless stopped
    wait_for_stage(work, Stage.TRAINING, process)
    process.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    out, err = process.communicate(timeout=60)
    assert time.monotonic() - stopped < 20  # at the next batch, not at the end of the run
    result = outcome(work)
    assert process.returncode == ExitCode.CANCELLED, (out, err)
    assert result.status == Status.CANCELLED and result.stage == Stage.TRAINING
    assert result.reason.startswith("cancelled (SIGTERM) during training")
    assert result.epochs_run < 29 and result.version is None
    assert snapshot(shipped) == before and not staging_left(shipped)
    assert out.startswith("cancelled: ") and err == ""  # TensorFlow's noise is in train.log


# A bot in miniature: starts the trainer as the bot does, with die_with_parent, says its pid,
# and waits to be killed.
BOT = """
import subprocess, sys, time
from bot.processes import die_with_parent
trainer = subprocess.Popen(
    [sys.executable, "-m", "training.retrain", *sys.argv[1:]],
    stdin=subprocess.DEVNULL,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
    preexec_fn=die_with_parent(),
)
print(trainer.pid, flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Whether process `pid` exists and has not ended (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def test_the_trainer_stops_by_itself_when_the_bot_that_started_it_is_killed(
    tmp_path: Path, tiny_dataset: Path, holdout: Path, shipped: Path
) -> None:
    before = snapshot(shipped)
    work = tmp_path / "work"
    args = ["--data", str(tiny_dataset), "--holdout", str(holdout), "--model", str(shipped)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bot = subprocess.Popen(
        [sys.executable, "-c", BOT, *args, "--work", str(work)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    trainer = int(bot.stdout.readline())
    try:
        deadline = time.monotonic() + 90
        while Stage.TRAINING not in stages(work):
            assert running(trainer) and time.monotonic() < deadline, "no training stage"
            time.sleep(0.1)
        bot.kill()  # SIGKILL: the bot has no chance to stop its trainer itself
        bot.wait()
        deadline = time.monotonic() + 60
        while running(trainer):
            assert time.monotonic() < deadline, "the trainer outlived its bot"
            time.sleep(0.1)
    finally:
        bot.kill()
        with contextlib.suppress(ProcessLookupError):
            if running(trainer):
                os.kill(trainer, signal.SIGKILL)
    result = outcome(work)
    assert result.status == Status.CANCELLED and result.stage == Stage.TRAINING
    assert result.reason.startswith(f"the bot stopped (process {bot.pid} is gone) during training")
    assert result.version is None and result.epochs_run < 29
    assert snapshot(shipped) == before and not staging_left(shipped)
