"""A server's `!retrain`: a head on the shared network, fitted in seconds in the bot's process.

The server's labelled images (`bot.server_models.server_images`) are decoded off the event loop,
run through the model worker for their features (`ModelWorker.outputs`, batched with everyone's
verdicts), and `model.head.fit_head` (NumPy) runs in a thread. The new head and the server's
current model (its head, or the default model: the default head, or the network's own verdict)
are scored on the server's held-out images by the same serving path (`ModelWorker.classify`);
the head is published as the server's next version only if it is not worse (`force`: anyway).
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
from bot.server_models import HeadCache, publish_head, server_folder, server_images
from bot.settings import Settings
from dataset import DatasetStore, TrainingBusy
from model.bundle import TFLITE_FILE, versions
from model.head import Head, HeadError, fit_head, with_figures
from model.preprocess import ImageError, ImageLimits, load_image
from model.worker import ModelWorker

log = logging.getLogger(__name__)

CHUNK = 32  # images decoded and run through the network at a time
MAX_FITS = 2  # servers' head fits running at once in this process
KIND = "a head on the shared network"
BUSY = "This server's model is already being retrained; it takes a few seconds."


@dataclass(frozen=True)
class FitOutcome:
    """What a server's `!retrain` did, for its reply."""

    published: int | None  # the new version, or None: refused (worse) or cancelled
    images: int
    per_class: dict[str, int]
    holdout: int
    before: float | None  # the current model's holdout accuracy (None: no holdout)
    after: float | None
    current: str  # "the default model" or "version N"
    seconds: float
    cancelled: bool = False

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
            "before": self.before,
            "after": self.after,
            "seconds": round(self.seconds, 2),
        }

    def text(self, prefix: str) -> str:
        learned = " + ".join(f"{n} {label.capitalize()}" for label, n in self.per_class.items())
        if self.cancelled:
            return f"**Retrain cancelled.** {self.current.capitalize()} keeps serving this server."
        if self.holdout and self.before is not None and self.after is not None:
            score = (
                f"holdout accuracy {self.before:.1%} ({self.current}) → {self.after:.1%} "
                f"on {self.holdout} held-out images"
            )
        else:
            score = "no held-out images to compare on yet"
        made = f"{KIND}, learned from {self.images} labelled images ({learned}) in "
        made += f"{self.seconds:.1f} s; {score}"
        if self.published is None:
            return (
                f"**Not published**: worse on this server's holdout than {self.current}. Made "
                f"{made}. `{prefix}retrain force` publishes it anyway."
            )
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
        """Fit `guild_id`'s head on its labelled images and publish it if it is not worse.

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
        images = await asyncio.to_thread(server_images, self.store, guild_id, None)
        train = [image for image in images if not image.holdout]
        held = [image for image in images if image.holdout]
        self._check_counts(train)
        features, labels = await self._features(train, cancel)
        self._check_counts_of(labels)
        backbone = self.worker.classifier.info.files.get(TFLITE_FILE)
        if backbone is None:
            raise UserFacingError("The served network has no recorded hash: I can't learn on it.")
        try:
            head = await asyncio.to_thread(
                fit_head, features, labels, self.class_names, backbone=backbone
            )
        except HeadError as error:
            raise UserFacingError(f"I couldn't learn this server's model: {error}") from None
        own = await asyncio.to_thread(self.heads.own, guild_id)
        current = own if own is not None else await asyncio.to_thread(self.heads.default)
        name = "the default model"
        if own is not None:
            name = f"version {own.figures.get('version', '?')}"
        before, after, count = await self._holdout(held, current, head, cancel)
        per_class = {n: int((labels == i).sum()) for i, n in enumerate(self.class_names)}
        seconds = time.perf_counter() - started
        outcome = FitOutcome(None, len(labels), per_class, count, before, after, name, seconds)
        if cancel.is_set():
            return FitOutcome(None, 0, {}, 0, None, None, name, seconds, cancelled=True)
        if not force and before is not None and after is not None and after < before:
            return outcome
        folder = server_folder(self.settings.data_dir, guild_id)
        holdout = {"accuracy": after, "images": count, "before": before}
        number = await asyncio.to_thread(self._publish, head, folder, holdout, force)
        log.info("server %s: published head version %d (%.1f s)", guild_id, number, seconds)
        return FitOutcome(number, len(labels), per_class, count, before, after, name, seconds)

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

    async def _features(
        self, images: Sequence[Any], cancel: asyncio.Event
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The network's `embedding` and `stats` of each readable image, and its label index."""
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
            labels += [self.class_names.index(image.label) for image, _ in good]
        features = {n: np.concatenate(p) if p else np.empty((0, 1)) for n, p in parts.items()}
        return features, np.asarray(labels, dtype=int)

    async def _holdout(
        self, held: Sequence[Any], current: Head | None, new: Head, cancel: asyncio.Event
    ) -> tuple[float | None, float | None, int]:
        """The holdout accuracy of `current` (None: the default model) and of `new`, by the
        serving path, and the number of held-out images read."""
        if not held or cancel.is_set():
            return None, None, 0
        right_before = right_after = count = 0
        for start in range(0, len(held), CHUNK):
            good = await self._read(held[start : start + CHUNK])
            if not good:
                continue
            arrays = [array for _, array in good]
            before, after = await asyncio.gather(
                self.worker.classify(arrays, head=current), self.worker.classify(arrays, head=new)
            )
            truth = [image.label for image, _ in good]
            right_before += sum(p.label == t for p, t in zip(before, truth, strict=True))
            right_after += sum(p.label == t for p, t in zip(after, truth, strict=True))
            count += len(good)
        if count == 0:
            return None, None, 0
        return right_before / count, right_after / count, count

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
