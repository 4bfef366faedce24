"""Retrain the network beside a running bot, and publish the result only if it is not worse.

    python -m training.retrain --data DIR --model MODEL_PATH --work WORK [--holdout DIR]
        [--epochs 29] [--batch-size 32] [--val-split 0.2] [--seed 123] [--learning-rate 1e-4]
        [--ood-keep 0.95] [--notes TEXT] [--force] [--parent-pid PID] [--threads N] [--nice 10]

The bot runs this in a process of its own and follows it through files in WORK:

- `progress.jsonl`: one JSON object per line, flushed as it happens (`training.progress`):
  `{"event": "stage", "stage": ..., "time": ...}` for loading, training, fitting, exporting,
  evaluating and publishing, and `{"event": "epoch", "epoch": n, "epochs": N, "accuracy",
  "val_accuracy", "loss", "val_loss", "elapsed_s", "eta_s", "time"}` after each epoch.
- `result.json`, written once at the end of every run (atomically, so a reader sees all of it or
  none): `status` is published, refused, failed or cancelled, `reason` one line to show a person,
  and the figures (see `Run.result`). `curves.png` and `confusion.png` beside it.
- `train.log`: everything the run logs, tracebacks included; stdout and stderr stay quiet.

The gate: the candidate (built in a staging folder beside MODEL_PATH, not published) and the
current model are scored on the same holdout images through the serving path
(`model.runtime.Classifier`, LiteRT, the calibrated score against 0.5). The candidate is published
as a new numbered version only if it is right on at least as many of them (`--force`: whatever
the comparison says). A refused, failed or cancelled run leaves MODEL_PATH as it was, byte for
byte. Publishing into a flat MODEL_PATH first keeps the flat model as version 1, so a rollback
can return to it.

SIGTERM or SIGINT stops the run at the next batch (or between stages; a few seconds at most, a
LiteRT conversion being the longest step that is not interrupted) and removes what it staged;
so does the end of `--parent-pid`, checked every second. A stop that arrives while publishing
lets the publish finish.

Exit status: 0 published, 3 refused, 4 cancelled (all three are clean ends), 1 failed, 2 a bad
command line. `result.json` says the same and more; read it rather than the code.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow

import numpy as np

from model.bundle import (
    CURRENT_FILE,
    DEFAULT_MODEL_DIR,
    METADATA_FILE,
    MODEL_FILES,
    ModelError,
    current_version,
    publish,
    read_info,
    sha256,
    staging_folder,
    write_text_atomic,
)
from model.detector import DEFAULT_KEEP
from training.progress import Cancellation, Cancelled, ProgressLog, finite

log = logging.getLogger("training.retrain")  # not __main__ under python -m

MIN_IMAGES_PER_CLASS = 20
PROGRESS_FILE = "progress.jsonl"
RESULT_FILE = "result.json"
LOG_FILE = "train.log"
CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion.png"
NICE = 10
PARENT_CHECK_S = 1.0
SCORE_BATCH = 32
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

EXIT_PUBLISHED, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_CANCELLED = 0, 1, 2, 3, 4
EXIT_CODES = {
    "published": EXIT_PUBLISHED,
    "failed": EXIT_FAILED,
    "refused": EXIT_REFUSED,
    "cancelled": EXIT_CANCELLED,
}


class RetrainError(Exception):
    """A run that cannot go on; the message is the one line result.json gives as its reason."""


class Refusal(RetrainError):
    """The candidate is not published (the gate, or nothing to compare on); says why."""


@dataclass(frozen=True)
class RetrainOptions:
    """One retraining run: where the data, the model and the scratch folder are, and the
    hyperparameters (the notebook's by default, as `jedisith-train` has them)."""

    data: Path
    model: Path
    work: Path
    holdout: Path | None = None
    epochs: int = 29
    batch_size: int = 32
    val_split: float = 0.2
    seed: int = 123
    learning_rate: float = 1e-4
    ood_keep: float = DEFAULT_KEEP
    notes: str = ""
    force: bool = False
    parent_pid: int | None = None
    threads: int | None = None  # LiteRT threads for the gate (TensorFlow's are set by main)
    min_images: int = MIN_IMAGES_PER_CLASS  # per class in DATA, below which nothing is trained
    command: str = ""  # recorded in model.json


def retrain(options: RetrainOptions, cancellation: Cancellation | None = None) -> dict:
    """Train, score against the current model, publish if not worse; return the result.

    The result is also written to `WORK/result.json`. Whatever happens (bad data, a refusal, a
    cancellation through `cancellation` or the end of `options.parent_pid`, an unexpected
    error), this returns a result instead of raising; tracebacks go to `WORK/train.log`.
    """
    work = Path(options.work)
    work.mkdir(parents=True, exist_ok=True)
    (work / RESULT_FILE).unlink(missing_ok=True)
    (work / PROGRESS_FILE).write_text("", encoding="utf-8")  # a fresh file for this run
    cancellation = cancellation or Cancellation()
    run = Run(options, ProgressLog(work / PROGRESS_FILE), cancellation)
    with _logging_to(work / LOG_FILE), _watching(options.parent_pid, cancellation):
        log.info("retrain: %s", options)
        try:
            run.go()
        except Cancelled as stop:
            run.end("cancelled", run.stopped_reason(stop.reason))
        except KeyboardInterrupt:
            run.end("cancelled", run.stopped_reason("interrupted"))
        except Refusal as refusal:
            run.end("refused", str(refusal))
        except RetrainError as error:
            run.end("failed", str(error))
        except Exception as error:  # every other failure: one line here, the traceback logged
            log.exception("the run failed")
            run.end("failed", run.failure_line(error))
        finally:
            run.clean_up()
        result = run.result()
        write_text_atomic(
            work / RESULT_FILE, json.dumps(finite(result), indent=2, allow_nan=False) + "\n"
        )
        log.info("%s: %s", result["status"], result["reason"])
    return result


class Run:
    """The state of one retraining run, from which `result.json` is written."""

    def __init__(
        self, options: RetrainOptions, progress: ProgressLog, cancellation: Cancellation
    ) -> None:
        self.options = options
        self.model = Path(options.model)
        self.work = Path(options.work)
        self.progress = progress
        self.cancellation = cancellation
        self.started = time.monotonic()
        self.status = "failed"
        self.reason = "the run did not finish"
        self.version: int | None = None
        self.before: dict | None = None
        self.after: dict | None = None
        self.calibration: dict | None = None
        self.ood: dict | None = None
        self.val_accuracy: float | None = None
        self.images: dict = {"train": None, "val": None, "holdout": None}
        self.skipped: dict = {"data": 0, "holdout": 0}
        self.plots: dict = {"curves": None, "confusion": None}
        self.confusion_on: str | None = None
        self.forced = False
        self.notes: list[str] = []
        self.staged: list[Path] = []
        self.compared_version: int | None = None

    @property
    def stage(self) -> str:
        """The last stage the run entered, as its progress file says."""
        return _last_stage(self.progress.path)

    # -- the run -------------------------------------------------------------------------

    def go(self) -> None:
        from training.data import DatasetError, load_labelled
        from training.train import TrainConfig, build_model_folder, load_training_data

        options = self.options
        self.enter("loading")
        self.check_model_path()
        try:
            config = TrainConfig(
                data_dir=Path(options.data),
                out=self.model,
                epochs=options.epochs,
                batch_size=options.batch_size,
                val_split=options.val_split,
                seed=options.seed,
                learning_rate=options.learning_rate,
                notes=options.notes,
                ood_keep=options.ood_keep,
                verbose=0,
                command=options.command or "python -m training.retrain",
                progress=self.progress.path,
                cancellation=self.cancellation,
            )
        except ValueError as error:
            raise RetrainError(str(error)) from None
        try:
            dataset = load_training_data(config, report=log.info)
        except DatasetError as error:
            raise RetrainError(str(error)) from None
        self.skipped["data"] = len(dataset.skipped)
        self.check_enough(dataset.counts())
        self.cancellation.check()

        holdout_dir = options.holdout
        if holdout_dir is not None and Path(holdout_dir).is_dir():
            try:
                holdout = load_labelled(
                    Path(holdout_dir),
                    dataset.class_names,
                    on_skip=lambda s: log.info("  skipped %s: %s", s.path, s.reason),
                )
            except DatasetError as error:
                raise RetrainError(f"the holdout: {error}") from None
            self.skipped["holdout"] = len(holdout.skipped)
            holdout = self.without_training_images(holdout, dataset.paths)
        else:
            holdout = _empty(dataset.class_names)
            if holdout_dir is not None:
                self.notes.append(f"the holdout folder {holdout_dir} does not exist")
        self.images["holdout"] = len(holdout.labels)
        log.info("holdout: %d images %s", len(holdout.labels), holdout.counts())

        if len(holdout.labels) == 0:
            if not options.force:
                raise Refusal(
                    f"not published: no holdout images to compare on; {self.model} is "
                    "unchanged (force publishes without comparing)"
                )
            self.forced = True
        self.cancellation.check()

        with staging_folder(self.model) as staging:
            self.staged.append(staging)
            built = build_model_folder(
                config, dataset, staging, report=log.info, started=self.started
            )
            self.record_candidate(built)
            self.enter("evaluating")
            self.evaluate(staging, holdout, dataset.class_names, built)
            publishing = self.decide()
            if not publishing:
                return
            self.cancellation.check()  # the last moment a stop request is heeded
            self.enter("publishing")
            now = self.current_version_or_none()
            if not options.force and now != self.compared_version:
                raise Refusal(
                    f"not published: the current model changed while it was being compared "
                    f"(version {self.compared_version} -> {now}, a rollback?); {self.model} "
                    "keeps it; train again to compare with it"
                )
            self.keep_flat_model()
            publish(staging, self.model)
            self.version = current_version(self.model)
            self.after["version"] = self.version
        self.status = "published"
        self.reason = self.published_reason()
        if self.cancellation.reason:
            self.notes.append(
                f"a stop request ({self.cancellation.reason}) came while publishing; the "
                "publish was let finish"
            )

    def enter(self, stage: str) -> None:
        self.cancellation.check()
        self.progress.stage(stage)
        log.info("stage: %s", stage)

    def check_model_path(self) -> None:
        if self.model.exists() and not self.model.is_dir():
            raise RetrainError(f"--model {self.model} is a file, not a model folder")
        if self.model.resolve() == DEFAULT_MODEL_DIR.resolve():
            raise RetrainError(
                f"--model {self.model} is the shipped model inside the package, which is never "
                "rewritten; serve and retrain a folder of your own (it can start as a copy)"
            )
        if self.has_model():
            try:
                read_info(self.model)
            except ModelError as error:
                if not self.options.force:
                    raise RetrainError(
                        f"cannot read the current model to compare with: {error}; nothing was "
                        "trained (force publishes without comparing)"
                    ) from None
                self.notes.append(f"the current model cannot be read: {error}")

    def check_enough(self, counts: dict[str, int]) -> None:
        least = self.options.min_images
        short = {name: least - n for name, n in counts.items() if n < least}
        self.images["data"] = counts
        if not short:
            return
        have = " and ".join(f"{name} has {n}" for name, n in counts.items())
        more = ", ".join(f"{n} more {name}" for name, n in short.items())
        raise RetrainError(
            f"too few images to train: {have}; at least {least} of each are needed ({more})"
        )

    def without_training_images(self, holdout, training_paths):
        """The holdout less any image (by content) that is also in the training data."""
        seen = {_file_hash(path) for path in training_paths}
        keep = [i for i, path in enumerate(holdout.paths) if _file_hash(path) not in seen]
        dropped = len(holdout.paths) - len(keep)
        if dropped:
            self.notes.append(
                f"{dropped} holdout images are also in the training data and were left out "
                "of the comparison"
            )
            holdout = holdout._subset(np.asarray(keep, dtype=int))
        self.images["holdout_in_data"] = dropped
        return holdout

    def has_model(self) -> bool:
        return (self.model / CURRENT_FILE).exists() or (self.model / METADATA_FILE).exists()

    def current_version_or_none(self) -> int | None:
        try:
            return current_version(self.model) if self.has_model() else None
        except ModelError:
            return None

    def record_candidate(self, built) -> None:
        figures = built.honesty.figures
        self.val_accuracy = built.val_metrics["accuracy"]
        self.images["train"] = len(built.train_set.labels)
        self.images["val"] = len(built.val_set.labels)
        calibration, detector = figures["calibration"], figures["detector"]
        self.calibration = {
            "ece_before": calibration["ece_before"],
            "ece_after": calibration["ece_after"],
            "temperature": calibration["temperature"],
            "images": len(built.val_set.labels),
            **({"note": calibration["note"]} if "note" in calibration else {}),
        }
        self.ood = {
            "threshold": detector["threshold"],
            "validation_refused": detector["validation"]["refused"],
            "validation_images": detector["validation"]["images"],
            "threshold_rule": detector.get("threshold_rule"),
            "guarantee": detector.get("guarantee"),
            **({"note": detector["note"]} if "note" in detector else {}),
        }
        for caveat in (calibration.get("note"), detector.get("note")):
            if caveat:
                self.notes.append(caveat)
        shutil.copyfile(built.folder / "curves.png", self.work / CURVES_FILE)
        self.plots["curves"] = str(self.work / CURVES_FILE)

    def evaluate(self, staging: Path, holdout, class_names, built) -> None:
        from model.runtime import Classifier
        from training.evaluate import plot_confusion

        threads = self.options.threads
        _seal(staging)  # as publish will: the hashes make Classifier.load take the detector too
        candidate = Classifier.load(staging, "litert", num_threads=threads)
        self.after, candidate_scores = _score(candidate, holdout, self.cancellation)
        self.after["version"] = None
        self.compared_version = self.current_version_or_none()
        self.before = _no_figures(self.compared_version) if self.has_model() else None
        if len(holdout.labels) and self.has_model():
            try:
                current = Classifier.load(self.model, "litert", num_threads=threads)
            except ModelError as error:
                if not self.options.force:
                    raise RetrainError(
                        f"cannot load the current model to compare with: {error}; nothing was "
                        "published (force publishes without comparing)"
                    ) from None
                self.notes.append(f"the current model cannot be loaded: {error}")
            else:
                if set(current.info.class_names) != set(class_names):
                    self.notes.append(
                        f"the current model's classes {list(current.info.class_names)} are not "
                        f"the data's {list(class_names)}: it cannot be compared"
                    )
                else:
                    self.before, _ = _score(current, holdout, self.cancellation)
                    self.before["version"] = self.compared_version

        if len(holdout.labels):
            from training.evaluate import confusion

            matrix = confusion(holdout.labels, candidate_scores)
            plot_confusion(
                matrix,
                class_names,
                self.work / CONFUSION_FILE,
                title=f"Holdout confusion matrix ({len(holdout.labels)} images)",
            )
            self.confusion_on = "holdout"
        else:
            shutil.copyfile(built.folder / "confusion.png", self.work / CONFUSION_FILE)
            self.confusion_on = "validation split (the holdout is empty)"
            self.notes.append(
                "the holdout is empty: confusion.png is on the validation split, "
                f"{len(built.val_set.labels)} images"
            )
        self.plots["confusion"] = str(self.work / CONFUSION_FILE)

    def decide(self) -> bool:
        """Whether to publish; sets the refusal when not."""
        after, before = self.after or {}, self.before or {}
        if after.get("images", 0) == 0:
            self.forced = True  # only reached with --force
            return True
        if before.get("accuracy") is None:
            if self.has_model() and not self.options.force:
                self.status = "refused"
                self.reason = (
                    f"not published: the current model cannot be compared with; {self.model} "
                    "is unchanged (force publishes it anyway)"
                )
                return False
            if self.has_model():
                self.forced = True
            return True
        if after["correct"] >= before["correct"]:
            return True
        if self.options.force:
            self.forced = True
            return True
        self.status = "refused"
        self.reason = (
            f"not published: the candidate is right on {_percent(after['accuracy'])} of "
            f"{after['images']} holdout images, the current model{_version(before)} on "
            f"{_percent(before['accuracy'])}; {self.model} is unchanged "
            "(force publishes it anyway)"
        )
        return False

    def keep_flat_model(self) -> None:
        """Make a flat MODEL_PATH's model version 1 before the candidate becomes version 2."""
        if not (self.model / METADATA_FILE).exists() or (self.model / CURRENT_FILE).exists():
            return
        with staging_folder(self.model) as staging:
            self.staged.append(staging)
            for path in self.model.iterdir():
                if path.is_file():
                    shutil.copy2(path, staging / path.name)
            publish(staging, self.model)
        kept = current_version(self.model)
        if self.before is not None:
            self.before["version"] = kept
        self.notes.append(f"the flat model that was in {self.model} is kept as version {kept}")

    # -- endings -------------------------------------------------------------------------

    def end(self, status: str, reason: str) -> None:
        self.status, self.reason = status, reason

    def stopped_reason(self, why: str) -> str:
        epochs = _epochs_run(self.progress.path)
        during = f"during {self.stage}"
        if self.stage == "training":
            during += f", after {epochs} of {self.options.epochs} epochs"
        return f"{why} {during}; nothing was published, {self.model} is unchanged"

    def failure_line(self, error: Exception) -> str:
        if isinstance(error, ModuleNotFoundError) and (error.name or "").partition(".")[0] in (
            "tensorflow",
            "keras",
        ):
            return "training needs TensorFlow: pip install 'jedisith[train]'"
        if isinstance(error, OSError):
            where = f": {error.filename}" if error.filename else ""
            detail = f"{error.strerror or error}{where}"
        else:
            detail = " ".join(str(error).split())[:300] or type(error).__name__
        return (
            f"failed {_during(self.stage)}: {detail}; nothing was published, {self.model} is "
            f"unchanged (details in {self.work / LOG_FILE})"
        )

    def clean_up(self) -> None:
        for folder in self.staged:  # published ones were renamed away; refused ones remain
            shutil.rmtree(folder, ignore_errors=True)

    def published_reason(self) -> str:
        after, before = self.after or {}, self.before or {}
        head = f"published version {self.version}"
        if after.get("images", 0) == 0:
            return (
                f"{head} because it was forced, without comparing: the holdout is empty "
                f"(validation accuracy {_percent(self.val_accuracy)} on "
                f"{self.images['val']} images)"
            )
        mine = f"right on {_percent(after['accuracy'])} of {after['images']} holdout images"
        if before.get("accuracy") is None:
            if self.forced:
                return f"{head} because it was forced, without comparing: {mine}"
            return f"{head}, the first model in {self.model}: {mine}"
        theirs = f"the previous model{_version(before)} {_percent(before['accuracy'])}"
        if self.forced:
            return f"{head} because it was forced: {mine}, below {theirs}"
        return f"{head}: {mine}, {theirs}"

    def result(self) -> dict:
        return {
            "status": self.status,
            "reason": self.reason,
            "version": self.version,
            "model": str(self.model),
            "before": self.before,
            "after": self.after,
            "forced": self.forced,
            "calibration": self.calibration,
            "ood": self.ood,
            "val_accuracy": self.val_accuracy,
            "epochs_run": _epochs_run(self.progress.path),
            "epochs": self.options.epochs,
            "images": self.images,
            "skipped": self.skipped,
            "confusion_on": self.confusion_on,
            "plots": self.plots,
            "stage": self.stage,
            "notes": self.notes,
            "log": str(self.work / LOG_FILE),
            "seconds": round(time.monotonic() - self.started, 1),
        }


def _score(classifier, holdout, cancellation: Cancellation) -> tuple[dict, np.ndarray]:
    """A model's figures on the holdout through the serving path: calibrated score >= 0.5."""
    predictions = []
    for start in range(0, len(holdout.labels), SCORE_BATCH):
        cancellation.check()
        predictions += classifier.predict(holdout.images[start : start + SCORE_BATCH])
    scores = np.array([p.score for p in predictions], dtype=np.float64)
    labels = np.asarray(holdout.labels, dtype=int)
    # By name: a model whose classes are in another order is still judged on what it says.
    names = holdout.class_names
    correct = np.array(
        [p.label == names[label] for p, label in zip(predictions, labels, strict=True)], dtype=bool
    )
    per_class = {}
    for index, name in enumerate(holdout.class_names):
        inside = labels == index
        per_class[name] = {
            "images": int(inside.sum()),
            "correct": int(correct[inside].sum()),
            "accuracy": float(correct[inside].mean()) if inside.any() else None,
        }
    verdicts = [p.in_distribution for p in predictions]
    refused = (
        float(np.mean([not v for v in verdicts]))
        if verdicts and all(v is not None for v in verdicts)
        else None
    )
    figures = {
        "accuracy": float(correct.mean()) if len(labels) else None,
        "images": len(labels),
        "correct": int(correct.sum()),
        "per_class": per_class,
        "ood_refused": refused,
    }
    return figures, scores


def _seal(folder: Path) -> None:
    """Record the SHA-256 of the model files in `folder/model.json`, as `publish` does."""
    path = folder / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata["files"] = {
        name: sha256((folder / name).read_bytes())
        for name in MODEL_FILES
        if (folder / name).exists()
    }
    path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


def _no_figures(version: int | None) -> dict:
    """The figures of a model that could not be scored."""
    return {
        "accuracy": None,
        "images": 0,
        "correct": None,
        "per_class": None,
        "ood_refused": None,
        "version": version,
    }


def _empty(class_names: tuple[str, ...]):
    from training.data import Dataset

    return Dataset(
        np.zeros((0, 200, 200, 3), dtype=np.uint8), np.zeros((0,), np.int32), [], class_names
    )


def _last_stage(progress: Path) -> str:
    stage = "loading"
    try:
        lines = progress.read_text(encoding="utf-8").splitlines()
    except OSError:
        return stage
    for line in lines:
        with contextlib.suppress(ValueError, AttributeError):
            event = json.loads(line)
            if event.get("event") == "stage":
                stage = event["stage"]
    return stage


def _file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{path}"


def _epochs_run(progress: Path) -> int:
    try:
        lines = progress.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    count = 0
    for line in lines:
        with contextlib.suppress(ValueError):
            count += json.loads(line).get("event") == "epoch"
    return count


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _version(figures: dict) -> str:
    return f" (version {figures['version']})" if figures.get("version") is not None else ""


def _during(stage: str) -> str:
    return {
        "loading": "while loading the data",
        "training": "while training",
        "fitting": "while fitting the detector and the calibration",
        "exporting": "while exporting the model",
        "evaluating": "while comparing with the current model",
        "publishing": "while publishing",
    }.get(stage, f"during {stage}")


# -- the process: logging, the parent, signals, priority -------------------------------------


@contextlib.contextmanager
def _logging_to(path: Path):
    """Send every log record of the run to `path` (and warnings too), for the run's length."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.setLevel(logging.INFO)
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def parent_gone(pid: int, original_ppid: int) -> bool:
    """Whether process `pid` has ended (or is a zombie): the run's parent, when it was."""
    if pid == original_ppid and os.getppid() != original_ppid:
        return True  # re-parented: the parent ended
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


@contextlib.contextmanager
def _watching(pid: int | None, cancellation: Cancellation):
    """While the block runs, request a stop when process `pid` ends (checked every second)."""
    if pid is None:
        yield
        return
    original_ppid = os.getppid()
    done = threading.Event()
    reason = f"the bot stopped (process {pid} is gone)"

    def watch() -> None:
        while not done.wait(PARENT_CHECK_S):
            if parent_gone(pid, original_ppid):
                log.warning("process %d is gone: stopping", pid)
                cancellation.request(reason)
                return

    if parent_gone(pid, original_ppid):
        cancellation.request(reason)
    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=2 * PARENT_CHECK_S)


@contextlib.contextmanager
def _on_signals(cancellation: Cancellation):
    """While the block runs, SIGTERM and SIGINT ask the run to stop (at the next batch); a
    second one stops it at once."""

    def handler(number: int, frame) -> None:
        if cancellation.reason is not None:
            raise KeyboardInterrupt
        cancellation.request(f"cancelled ({signal.Signals(number).name})")

    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def be_a_good_neighbour(nice: int, threads: int | None) -> None:
    """Lower the priority of every thread of this process (threads made later inherit it from
    the one that makes them) and cap TensorFlow's thread pools when asked."""
    if nice:
        renice(nice)
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def renice(increment: int) -> None:
    """`os.nice` for all threads: on Linux a nice value belongs to a thread, and NumPy's
    OpenBLAS threads exist before `main` runs."""
    try:
        tasks = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: nice(2) is per process there
        tasks = []
    if not tasks:
        with contextlib.suppress(OSError):
            os.nice(increment)
        return
    for task in tasks:
        try:
            now = os.getpriority(os.PRIO_PROCESS, task)
            os.setpriority(os.PRIO_PROCESS, task, min(19, now + increment))
        except OSError as error:  # a thread that ended meanwhile, or a raise we may not make
            log.debug("could not renice thread %d: %s", task, error)


@contextlib.contextmanager
def _quiet_output(path: Path):
    """Point file descriptors 1 and 2 at `path` (TensorFlow's C++ logs, LiteRT's banner), and
    restore them after."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


# -- the command line ------------------------------------------------------------------------


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # raise instead of exiting, so result.json can say it
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    defaults = RetrainOptions(Path("."), Path("."), Path("."))
    parser = _Parser(
        prog="python -m training.retrain",
        description="Train a candidate on DATA, compare it with the current model in MODEL on "
        "the HOLDOUT images, and publish it into MODEL only if it is not worse. Progress and "
        "the result are written to WORK (progress.jsonl, result.json, train.log, plots).",
    )
    parser.add_argument("--data", type=Path, required=True, help="jedi/ and sith/ to train on")
    parser.add_argument("--holdout", type=Path, help="jedi/ and sith/ never trained on")
    parser.add_argument("--model", type=Path, required=True, help="the model folder served")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for this run")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--val-split", type=float, default=defaults.val_split)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="split and init seed")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--ood-keep", type=float, default=defaults.ood_keep)
    parser.add_argument("--notes", default="", help="what the data is, recorded in model.json")
    parser.add_argument("--force", action="store_true", help="publish even if it is worse")
    parser.add_argument("--parent-pid", type=int, help="stop when this process ends")
    parser.add_argument(
        "--min-images",
        type=int,
        default=MIN_IMAGES_PER_CLASS,
        help="images per class in DATA needed to train (default: %(default)s)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="cap TensorFlow's and LiteRT's threads (0: all)"
    )
    parser.add_argument(
        "--nice", type=int, default=NICE, help=f"lower the priority by this much ({NICE})"
    )
    return parser


def _work_in(argv: list[str]) -> Path | None:
    """--work from a command line that may not parse, to put result.json where it belongs."""
    finder = argparse.ArgumentParser(add_help=False)
    finder.add_argument("--work", type=Path)
    try:
        known, _ = finder.parse_known_args(argv)
    except SystemExit:
        return None
    return known.work


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(argv)
    except _UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        work = _work_in(argv)
        if work is not None:
            with contextlib.suppress(OSError):
                work.mkdir(parents=True, exist_ok=True)
                failed = {"status": "failed", "reason": f"bad command line: {error}"}
                write_text_atomic(work / RESULT_FILE, json.dumps(failed, indent=2) + "\n")
        return EXIT_USAGE
    options = RetrainOptions(
        data=args.data,
        model=args.model,
        work=args.work,
        holdout=args.holdout,
        epochs=args.epochs,
        batch_size=args.batch_size,
        val_split=args.val_split,
        seed=args.seed,
        learning_rate=args.learning_rate,
        ood_keep=args.ood_keep,
        notes=args.notes,
        force=args.force,
        parent_pid=args.parent_pid,
        threads=args.threads or None,
        min_images=max(args.min_images, 1),
        command="python -m training.retrain " + shlex.join(argv),
    )
    try:
        args.work.mkdir(parents=True, exist_ok=True)
        (args.work / LOG_FILE).write_text("", encoding="utf-8")
    except OSError as error:
        print(f"error: cannot use --work {args.work}: {error.strerror or error}", file=sys.stderr)
        return EXIT_FAILED
    cancellation = Cancellation()
    with _on_signals(cancellation), _quiet_output(args.work / LOG_FILE):
        try:
            be_a_good_neighbour(args.nice, args.threads or None)
        except Exception:
            traceback.print_exc()
        result = retrain(options, cancellation)
    try:
        print(f"{result['status']}: {result['reason']}", flush=True)
    except OSError:  # the reader (the bot) is gone
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    return EXIT_CODES[result["status"]]


if __name__ == "__main__":
    raise SystemExit(main())
