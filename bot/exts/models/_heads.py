"""A server's `!retrain`: a head on the shared network, fitted in seconds in the bot's process.

The server's labelled images (`bot.server_models.server_images`) are decoded off the event loop,
run through the model worker for their features (`ModelWorker.outputs`, batched with everyone's
verdicts), and `model.head.fit_head` (NumPy) runs in a thread. The new head and the server's
current model (its head, or the default model: the default head, or the network's own verdict)
answer the server's held-out images by the same serving path (`ModelWorker.classify`); the head
is published as the server's next version only if it is surely better there (`model.compare`:
a paired test on the same images; `force`: anyway). Each retrain adds a point to the server's
learning curve (`._curve`).
One fit per server at a time; servers fit at once, bounded by `MAX_FITS` in this process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import UserFacingError
from bot.exts.models._curve import add_point
from bot.exts.models._words import comparison_figures, gate_verdict, refused_text
from bot.server_models import HeadCache, publish_head, server_folder, server_images
from bot.settings import Settings
from dataset import DatasetStore, TrainingBusy
from model.bundle import TFLITE_FILE, versions
from model.compare import Comparison, compare
from model.head import Head, HeadError, fit_head, with_figures
from model.preprocess import ImageError, ImageLimits, load_image
from model.runtime import Prediction, ServerNetwork
from model.worker import ModelWorker, Served

log = logging.getLogger(__name__)

CHUNK = 32  # images decoded and run through the network at a time
MAX_FITS = 2  # servers' head fits running at once in this process
KIND = "a head on the shared network"
BUSY = "This server's model is already being retrained; it takes a few seconds."


@dataclass(frozen=True)
class HoldoutAnswers:
    """Each readable held-out image of a server, its label, and each model's answer to it."""

    images: list[Any]  # `LabelledImage`s
    truth: list[str]
    answers: list[list[Prediction]]  # one list per model, in the order they were asked

    def comparison(self) -> Comparison:
        """The paired comparison of the first model (the current one) and the second."""
        current, candidate = ([p.label for p in answers] for answers in self.answers[:2])
        return compare(self.truth, current, candidate)


def gate_text(comparison: Comparison | None, current: str) -> str:
    """Both accuracies with the difference and its interval, and the gate's verdict."""
    if comparison is None:
        return "no held-out images to judge it on yet"
    return f"{comparison.summary(current)}; {comparison.verdict()}"


def holdout_figures(comparison: Comparison | None) -> dict[str, Any]:
    """What a version's figures keep of its holdout."""
    if comparison is None:
        return {"accuracy": None, "images": 0, "before": None}
    return {
        "accuracy": comparison.after,
        "images": comparison.images,
        "before": comparison.before,
        **comparison.record(),
    }


def surely_better(comparison: Comparison | None, force: bool) -> bool:
    """The gate: published when surely better on the holdout (`force`: anyway)."""
    return force or (comparison is not None and comparison.better)


@dataclass(frozen=True)
class FitOutcome:
    """What a server's `!retrain` did, for its reply."""

    published: int | None  # the new version, or None: refused (not surely better) or cancelled
    images: int
    per_class: dict[str, int]
    comparison: Comparison | None  # None: no held-out images
    current: str  # "the default model" or "version N"
    seconds: float
    cancelled: bool = False
    answers: HoldoutAnswers | None = None  # the candidate's answers, for its mistakes

    @property
    def holdout(self) -> int:
        return self.comparison.images if self.comparison is not None else 0

    @property
    def status(self) -> str:
        """The trainings row's final status."""
        if self.cancelled:
            return "cancelled"
        return "published" if self.published is not None else "refused"

    def record(self) -> dict[str, Any]:
        """What the trainings row keeps of it (figures only, no names)."""
        return {
            "kind": "head",
            "images": self.images,
            "per_class": self.per_class,
            "holdout": self.holdout,
            "before": self.comparison.before if self.comparison else None,
            "after": self.comparison.after if self.comparison else None,
            "seconds": round(self.seconds, 2),
        }

    def text(self, prefix: str) -> str:
        learned = " + ".join(f"{n} {label.capitalize()}" for label, n in self.per_class.items())
        if self.cancelled:
            return f"**Retrain cancelled.** {self.current.capitalize()} keeps serving this server."
        source = f"{KIND}, learned from {self.images} labelled images ({learned}) in "
        source += f"{self.seconds:.1f} s"
        made = f"{source}; {gate_text(self.comparison, self.current)}"
        if self.published is None:
            figures = comparison_figures(self.comparison, self.current)
            keeps = f"{self.current.capitalize()} keeps serving this server."
            verdict = gate_verdict(self.comparison)
            text = refused_text(self.current, figures, keeps, "retrain", prefix, verdict)
            return f"{text}\n-# Made {source}."
        return (
            f"**New model for this server: version {self.published}**, {made}. It serves this "
            f"server from now on; `{prefix}rollback default` goes back to the default model."
        )


class HeadTrainer:
    """Fits, scores and publishes servers' heads; one at a time per server."""

    def __init__(
        self,
        store: DatasetStore | None,
        settings: Settings,
        worker: ModelWorker,
        heads: HeadCache,
        class_names: Sequence[str],
    ) -> None:
        self.store = store
        self.settings = settings
        self.worker = worker
        self.heads = heads
        self.class_names = (str(class_names[0]), str(class_names[1]))
        self.limits = ImageLimits(
            settings.max_image_bytes, settings.max_image_pixels, settings.max_decoded_bytes
        )
        self._fitting: dict[int, asyncio.Event] = {}  # server -> its cancel request
        self._pool = asyncio.Semaphore(MAX_FITS)

    def running(self, guild_id: int) -> bool:
        return guild_id in self._fitting

    def cancel(self, guild_id: int) -> bool:
        """Ask the server's running fit to stop; False when none runs."""
        request = self._fitting.get(guild_id)
        if request is None:
            return False
        request.set()
        return True

    async def retrain(
        self, guild_id: int, force: bool = False, *, user_id: int | None = None
    ) -> FitOutcome:
        """Fit `guild_id`'s head on its labelled images and publish it if surely better.

        The server's training lock (a trainings row of scope `guild_id`, kind "head") keeps two
        fits of one server apart across the cluster's processes, and records the outcome."""
        store = self.store
        if store is None:
            raise UserFacingError("Learning is not set up on this bot (it has no dataset).")
        if guild_id in self._fitting:
            raise UserFacingError(BUSY)
        cancel = self._fitting[guild_id] = asyncio.Event()
        try:
            try:
                record = await asyncio.to_thread(
                    store.trainings.start,
                    scope=guild_id,
                    kind="head",
                    guild_id=guild_id,
                    channel_id=None,
                    user_id=user_id,
                    pid=os.getpid(),
                    params={"force": force},
                )
            except TrainingBusy:
                raise UserFacingError(BUSY) from None
            status, outcome = "failed", None
            try:
                async with self._pool:
                    outcome = await self._retrain(guild_id, force, cancel)
                status = outcome.status
            finally:
                result = outcome.record() if outcome is not None else {"reason": "failed"}
                version = outcome.published if outcome is not None else None
                await asyncio.to_thread(
                    store.trainings.finish, record.id, status, result=result, version=version
                )
            return outcome
        finally:
            del self._fitting[guild_id]

    async def _retrain(self, guild_id: int, force: bool, cancel: asyncio.Event) -> FitOutcome:
        started = time.perf_counter()
        voters = self.settings.holdout_min_voters
        images = await asyncio.to_thread(
            server_images, self.store, guild_id, None, min_voters=voters
        )
        train = [image for image in images if not image.holdout]
        held = [image for image in images if image.holdout]
        self._check_counts(train)
        features, labels = await self._features(train, cancel)
        self._check_counts_of(labels)
        neither = await self._neither_features(guild_id, cancel)
        backbone = self.worker.classifier.info.files.get(TFLITE_FILE)
        if backbone is None:
            raise UserFacingError("The served network has no recorded hash: I can't learn on it.")
        try:
            head = await asyncio.to_thread(
                fit_head, features, labels, self.class_names, backbone=backbone, neither=neither
            )
        except HeadError as error:
            raise UserFacingError(f"I couldn't learn this server's model: {error}") from None
        own = await asyncio.to_thread(self.heads.own, guild_id)
        current = own if own is not None else await asyncio.to_thread(self.heads.default)
        name = "the default model"
        if own is not None:
            name = f"version {own.figures.get('version', '?')}"
            if isinstance(own, ServerNetwork):
                name += " (a network of its own)"
        answers = await self.holdout_answers(held, current, head, cancel=cancel)
        comparison = answers.comparison() if answers is not None else None
        per_class = {n: int((labels == i).sum()) for i, n in enumerate(self.class_names)}
        seconds = time.perf_counter() - started
        if cancel.is_set():
            return FitOutcome(None, 0, {}, None, name, seconds, cancelled=True)
        folder = server_folder(self.settings.data_dir, guild_id)
        number = None
        if surely_better(comparison, force):
            holdout = holdout_figures(comparison)
            number = await asyncio.to_thread(self._publish, head, folder, holdout, force)
            log.info("server %s: published head version %d (%.1f s)", guild_id, number, seconds)
        await asyncio.to_thread(add_point, folder, "head", len(labels), comparison, number)
        return FitOutcome(
            number, len(labels), per_class, comparison, name, seconds, answers=answers
        )

    def _publish(self, head: Head, folder: Path, holdout: dict[str, Any], force: bool) -> int:
        number = max(versions(folder), default=0) + 1
        stamped = with_figures(head, holdout=holdout, version=number, force=force)
        return publish_head(stamped, folder, keep=self.settings.server_model_versions)

    def _check_counts(self, train: Sequence[Any]) -> None:
        counts = {n: sum(1 for image in train if image.label == n) for n in self.class_names}
        minimum = self.settings.retrain_min_images
        missing = {n: minimum - c for n, c in counts.items() if c < minimum}
        if missing:
            have = " and ".join(f"{counts[n]} {n.capitalize()}" for n in self.class_names)
            need = " and ".join(f"{k} more {n.capitalize()}" for n, k in missing.items())
            prefix = self.settings.command_prefix
            raise UserFacingError(
                f"I need at least {minimum} labelled images of each class to learn this "
                f"server's model, not counting the holdout; I have {have}: {need} needed. Label "
                f"them with the buttons under my verdicts or `{prefix}teach`."
            )

    def _check_counts_of(self, labels: np.ndarray) -> None:
        if len(labels) == 0 or np.bincount(labels, minlength=2).min() < 2:
            raise UserFacingError("Too few of this server's labelled images could be read.")

    async def _neither_features(
        self, guild_id: int, cancel: asyncio.Event
    ) -> dict[str, np.ndarray] | None:
        """The features of the server's images labelled neither, of both splits (the gate
        judges on Jedi and Sith alone): what its head learns to refuse; None when none."""
        images = await asyncio.to_thread(server_images, self.store, guild_id, None, neither=True)
        if not images:
            return None
        features, _ = await self._features(images, cancel, labelled=False)
        return features if len(features["stats"]) else None

    async def _features(
        self, images: Sequence[Any], cancel: asyncio.Event, *, labelled: bool = True
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The network's `embedding` and `stats` of each readable image, and its label index
        (none when not `labelled`)."""
        parts: dict[str, list[np.ndarray]] = {"embedding": [], "stats": []}
        labels: list[int] = []
        for start in range(0, len(images), CHUNK):
            if cancel.is_set():
                break
            good = await self._read(images[start : start + CHUNK])
            if not good:
                continue
            outputs = await self.worker.outputs([array for _, array in good])
            for name in parts:
                if name not in outputs:
                    raise UserFacingError(
                        "The served network gives no features for a server's model (it was "
                        "exported before they existed): the operator must re-export it."
                    )
                parts[name].append(np.asarray(outputs[name]))
            if labelled:
                labels += [self.class_names.index(image.label) for image, _ in good]
        features = {n: np.concatenate(p) if p else np.empty((0, 1)) for n, p in parts.items()}
        return features, np.asarray(labels, dtype=int)

    async def holdout_answers(
        self, held: Sequence[Any], *models: Served | None, cancel: asyncio.Event | None = None
    ) -> HoldoutAnswers | None:
        """Each model's answers (None: the default model; else a head or a server's network) to
        the readable images of `held`, by the serving path; None when there are none."""
        if not held or (cancel is not None and cancel.is_set()):
            return None
        images: list[Any] = []
        answers: list[list[Prediction]] = [[] for _ in models]
        for start in range(0, len(held), CHUNK):
            good = await self._read(held[start : start + CHUNK])
            if not good:
                continue
            arrays = [array for _, array in good]
            given = await asyncio.gather(
                *(self.worker.classify(arrays, head=model) for model in models)
            )
            for mine, theirs in zip(answers, given, strict=True):
                mine += theirs
            images += [image for image, _ in good]
        if not images:
            return None
        return HoldoutAnswers(images, [image.label for image in images], answers)

    async def _read(self, images: Sequence[Any]) -> list[tuple[Any, np.ndarray]]:
        """Each readable image of `images` with its network input, decoded in a thread."""
        return await asyncio.to_thread(self._decode, images)

    def _decode(self, images: Sequence[Any]) -> list[tuple[Any, np.ndarray]]:
        decoded = []
        for image in images:
            try:
                decoded.append((image, load_image(Path(image.path).read_bytes(), self.limits)))
            except (OSError, ImageError) as error:
                log.warning("left out a labelled image that cannot be read: %s", error)
        return decoded
