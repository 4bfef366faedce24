"""The gate a retrained model passes before the bot serves it.

The candidate is built in a staging folder beside the model folder (not published), then it and
the current model are scored on the same holdout images through the serving path
(`model.runtime.Classifier`, LiteRT, the calibrated score against 0.5). The candidate is
published as a new numbered version only if it is surely better on them, by the paired rule
the servers' models pass (`model.compare`: exact McNemar, with the interval of the difference
and the images that would settle it in the reason); `force`: whatever the comparison says.
A refused, failed or cancelled run leaves the model folder as it was, byte for byte. Publishing
into a flat model folder first keeps the flat model as version 1, so a rollback can return to it.

`Gate.run` does all of it and raises on every end but a publish; `Gate.result` is what the run
says about itself (`training.protocol.TrainerResult`), whatever the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

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
)
from model.compare import Comparison, compare
from model.detector import DEFAULT_KEEP
from training.progress import Cancellation
from training.protocol import (
    DEFAULT_EPOCHS,
    MIN_IMAGES_PER_CLASS,
    TRAINER_MODULE,
    ProgressLog,
    Stage,
    Status,
    TrainerResult,
    WorkFolder,
    epochs_done,
    last_stage,
    read_progress,
)

log = logging.getLogger(__name__)

SCORE_BATCH = 32


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
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 32
    val_split: float = 0.2
    seed: int = 123
    learning_rate: float = 1e-4
    ood_keep: float = DEFAULT_KEEP
    notes: str = ""
    force: bool = False
    threads: int | None = None  # LiteRT threads for the gate (TensorFlow's are set by main)
    min_images: int = MIN_IMAGES_PER_CLASS  # per class in DATA, below which nothing is trained
    command: str = ""  # recorded in model.json
    init: Path | None = None  # a model folder whose weights training starts from (None: random)


class Gate:
    """One retraining run: builds the candidate, judges it and publishes it or not, and keeps
    what `result()` reports."""

    def __init__(
        self, options: RetrainOptions, progress: ProgressLog, cancellation: Cancellation
    ) -> None:
        self.options = options
        self.model = Path(options.model)
        self.work = WorkFolder(Path(options.work))
        self.progress = progress
        self.cancellation = cancellation
        self.started = time.monotonic()
        self.status = Status.FAILED
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
        self.comparison: Comparison | None = None  # paired, when both models were scored

    @property
    def stage(self) -> Stage:
        """The last stage the run entered, as its progress file says."""
        return last_stage(read_progress(self.progress.path)) or Stage.LOADING

    @property
    def epochs_run(self) -> int:
        return epochs_done(read_progress(self.progress.path))

    # -- the run -------------------------------------------------------------------------

    def run(self) -> None:
        """Build the candidate, judge it, publish it if it passes; raises `Refusal`,
        `RetrainError` or `Cancelled` when it does not publish."""
        from training.data import DatasetError, load_labelled
        from training.train import TrainConfig, build_model_folder, load_training_data

        options = self.options
        self.enter(Stage.LOADING)
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
                command=options.command or f"python -m {TRAINER_MODULE}",
                progress=self.progress.path,
                cancellation=self.cancellation,
                init=options.init,
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
            self.enter(Stage.EVALUATING)
            self.evaluate(staging, holdout, dataset.class_names, built)
            publishing = self.decide()
            if not publishing:
                return
            self.cancellation.check()  # the last moment a stop request is heeded
            self.enter(Stage.PUBLISHING)
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
        self.status = Status.PUBLISHED
        self.reason = self.published_reason()
        if self.cancellation.reason:
            self.notes.append(
                f"a stop request ({self.cancellation.reason}) came while publishing; the "
                "publish was let finish"
            )

    def enter(self, stage: Stage) -> None:
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
        figures = built.uncertainty.figures
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
        shutil.copyfile(built.folder / "curves.png", self.work.curves)
        self.plots["curves"] = str(self.work.curves)

    def evaluate(self, staging: Path, holdout, class_names, built) -> None:
        from model.runtime import Classifier
        from training.evaluate import plot_confusion

        threads = self.options.threads
        _seal(staging)  # as publish will: the hashes make Classifier.load take the detector too
        candidate = Classifier.load(staging, "litert", num_threads=threads)
        self.after, candidate_scores, candidate_right = _score(
            candidate, holdout, self.cancellation
        )
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
                    self.before, _, current_right = _score(current, holdout, self.cancellation)
                    self.before["version"] = self.compared_version
                    truth = np.ones(len(candidate_right), dtype=bool)  # paired: right or not
                    self.comparison = compare(truth, current_right, candidate_right)

        if len(holdout.labels):
            from training.evaluate import confusion

            matrix = confusion(holdout.labels, candidate_scores)
            plot_confusion(
                matrix,
                class_names,
                self.work.confusion,
                title=f"Holdout confusion matrix ({len(holdout.labels)} images)",
            )
            self.confusion_on = "holdout"
        else:
            shutil.copyfile(built.folder / "confusion.png", self.work.confusion)
            self.confusion_on = "validation split (the holdout is empty)"
            self.notes.append(
                "the holdout is empty: confusion.png is on the validation split, "
                f"{len(built.val_set.labels)} images"
            )
        self.plots["confusion"] = str(self.work.confusion)

    def decide(self) -> bool:
        """Whether to publish; sets the refusal when not."""
        after, before = self.after or {}, self.before or {}
        if after.get("images", 0) == 0:
            self.forced = True  # only reached with --force
            return True
        if before.get("accuracy") is None:
            if self.has_model() and not self.options.force:
                self.status = Status.REFUSED
                self.reason = (
                    f"not published: the current model cannot be compared with; {self.model} "
                    "is unchanged (force publishes it anyway)"
                )
                return False
            if self.has_model():
                self.forced = True
            return True
        comparison = self.comparison
        assert comparison is not None  # both were scored on the same images
        if comparison.better:
            return True
        if self.options.force:
            self.forced = True
            return True
        self.status = Status.REFUSED
        self.reason = (
            f"not published: {comparison.summary(_current(before))}; {comparison.verdict()}; "
            f"{self.model} is unchanged (force publishes it anyway)"
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

    def end(self, status: Status, reason: str) -> None:
        self.status, self.reason = status, reason

    def stopped_reason(self, why: str) -> str:
        epochs = self.epochs_run
        during = f"during {self.stage}"
        if self.stage == Stage.TRAINING:
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
            f"unchanged (details in {self.work.log})"
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
        comparison = self.comparison
        assert comparison is not None
        compared = f"{comparison.summary(_current(before))}; {comparison.verdict()}"
        if self.forced:
            return f"{head} because it was forced: {compared}"
        return f"{head}: {compared}"

    def result(self) -> TrainerResult:
        """What the run says about itself, as `result.json` records it."""
        return TrainerResult.model_validate(
            {
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
                "epochs_run": self.epochs_run,
                "epochs": self.options.epochs,
                "images": self.images,
                "skipped": self.skipped,
                "confusion_on": self.confusion_on,
                "plots": self.plots,
                "stage": self.stage,
                "notes": self.notes,
                "log": str(self.work.log),
                "seconds": round(time.monotonic() - self.started, 1),
            }
        )


def _score(classifier, holdout, cancellation: Cancellation) -> tuple[dict, np.ndarray, np.ndarray]:
    """A model's figures on the holdout through the serving path (calibrated score >= 0.5),
    its scores, and whether it is right on each image."""
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
    return figures, scores, correct


def _current(figures: dict) -> str:
    """The current model as the reason names it."""
    version = figures.get("version")
    return f"version {version}" if version is not None else "the current model"


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


def _file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{path}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _during(stage: Stage) -> str:
    return _DURING[stage]


_DURING = {
    Stage.LOADING: "while loading the data",
    Stage.TRAINING: "while training",
    Stage.FITTING: "while fitting the detector and the calibration",
    Stage.EXPORTING: "while exporting the model",
    Stage.EVALUATING: "while comparing with the current model",
    Stage.PUBLISHING: "while publishing",
}
