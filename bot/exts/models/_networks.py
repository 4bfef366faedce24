"""A server's `!retrain network`: a whole network trained on that server's images alone.

The `Retrainer` runs it as any full training (the fair queue, the trainer in its own process),
from the shared network's weights (`start_from`), on the server's labelled images outside its
holdout (`export_server`). The trainer publishes its candidate into the run's own folder; then
`NetworkJudge` compares it on the server's holdout with the server's current model (its head,
an earlier network, or the default model) by the serving path, as a head fit is judged, and
publishes it into the server's versions (kind "network") only if it is surely better (a paired
test on the same images, `model.compare`; `force`: anyway).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord

from bot.errors import UserFacingError
from bot.exts.models._curve import add_point
from bot.exts.models._heads import (
    HeadTrainer,
    HoldoutAnswers,
    gate_text,
    holdout_figures,
    surely_better,
)
from bot.exts.models._pictures import picture_files
from bot.exts.models._words import (
    comparison_figures,
    gate_verdict,
    interrupted_text,
    refused_text,
)
from bot.server_models import (
    HeadCache,
    current_head_version,
    load_network,
    publish_network,
    server_folder,
    server_images,
)
from bot.settings import Settings
from dataset import DatasetStore
from dataset.files import export_files
from model.bundle import model_dir
from model.compare import Comparison
from model.runtime import ServerNetwork
from model.worker import ModelWorker
from training.protocol import Status, TrainerResult, WorkFolder

log = logging.getLogger(__name__)


def server_counts(
    store: DatasetStore, settings: Settings, guild_id: int, class_names: Sequence[str]
) -> dict[str, int]:
    """The server's labelled images per class outside its holdout, if enough to train a
    network on; else `UserFacingError` saying what is missing."""
    train = [image for image in server_images(store, guild_id, False) if not image.holdout]
    counts = {name: sum(image.label == name for image in train) for name in class_names}
    total, least = sum(counts.values()), settings.retrain_min_images
    if total < settings.server_network_min_images or min(counts.values()) < least:
        have = " + ".join(f"{n} {name.capitalize()}" for name, n in counts.items())
        prefix = settings.command_prefix
        raise UserFacingError(
            f"A network of this server's own needs at least {settings.server_network_min_images} "
            f"labelled images, {least} of each class, not counting the holdout; this server has "
            f"{total} ({have}). `{prefix}retrain` learns a head from fewer, in seconds."
        )
    return counts


def export_server(store: DatasetStore, guild_id: int, work: WorkFolder) -> None:
    """The server's labelled images, by its own votes only, into `work`: its holdout apart."""
    images = server_images(store, guild_id, None)
    for folder, holdout in ((work.data, False), (work.holdout, True)):
        chosen = [(image.label, Path(image.path)) for image in images if image.holdout == holdout]
        export_files(folder, chosen, store.class_names)


def ending_text(result: TrainerResult, cancelled_by: str | None, prefix: str) -> str:
    """The message of a server's network training that made no candidate: the trainer's own
    reasons name the bot's folders, so a server is told what happened in its own words."""
    unchanged = "This server's model and its images are unchanged."
    if result.status == Status.CANCELLED:
        by = f" by {cancelled_by}" if cancelled_by else ""
        return f"**Training cancelled**{by}. {unchanged}"
    if result.status == Status.INTERRUPTED:
        return interrupted_text(result.reason, prefix, network=True)
    return f"**Training failed**; the bot's operator finds why in its log. {unchanged}"


@dataclass(frozen=True)
class NetworkOutcome:
    """What a server's network training did, for its message."""

    published: int | None  # the new version, or None: refused (not surely better)
    per_class: dict[str, int]
    comparison: Comparison | None  # None: no held-out images
    current: str  # "the default model" or "version N (a head)"
    answers: HoldoutAnswers | None = None  # the current model's and the candidate's, for pictures

    @property
    def status(self) -> Status:
        return Status.PUBLISHED if self.published is not None else Status.REFUSED

    @property
    def images(self) -> int:
        return sum(self.per_class.values())

    def record(self) -> dict[str, Any]:
        """What the trainings row keeps of it (figures only, no names)."""
        comparison = self.comparison
        return {
            "kind": "network",
            "images": self.images,
            "per_class": self.per_class,
            "holdout": comparison.images if comparison else 0,
            "before": comparison.before if comparison else None,
            "after": comparison.after if comparison else None,
        }

    def text(self, prefix: str) -> str:
        learned = " + ".join(f"{n} {label.capitalize()}" for label, n in self.per_class.items())
        made = f"a network trained on your {self.images} images ({learned})"
        score = gate_text(self.comparison, self.current)
        if self.published is None:
            figures = comparison_figures(self.comparison, self.current)
            keeps = f"{self.current.capitalize()} keeps serving this server."
            verdict = gate_verdict(self.comparison)
            text = refused_text(self.current, figures, keeps, "retrain network", prefix, verdict)
            return f"{text}\n-# Made {made}."
        return (
            f"**New model for this server: version {self.published}**, {made}; {score}. It "
            f"serves this server from now on; `{prefix}rollback` goes back to the one before."
        )


class NetworkJudge:
    """Scores a server's candidate network against its current model and publishes it."""

    def __init__(
        self,
        store: DatasetStore | None,
        settings: Settings,
        worker: ModelWorker,
        heads: HeadCache,
        fitter: HeadTrainer,
    ) -> None:
        self.store = store
        self.settings = settings
        self.worker = worker
        self.heads = heads
        self.fitter = fitter

    def start_from(self) -> Path:
        """The shared network's model folder, whose weights a server's network starts from."""
        path = self.worker.classifier.path or self.worker.folder
        if path is None:
            raise UserFacingError("The served network has no folder to start a training from.")
        return Path(path)

    async def judge(
        self,
        guild_id: int,
        target: Path,
        counts: dict[str, int],
        *,
        force: bool = False,
        figures: dict[str, Any] | None = None,
    ) -> NetworkOutcome:
        """Score the trainer's candidate in `target` (trained on `counts` images per class) on
        the server's holdout against what the server is served now, and publish it as the
        server's next version (with `figures`) if surely better."""
        candidate = model_dir(Path(target))
        network = ServerNetwork(await asyncio.to_thread(load_network, candidate))
        voters = self.settings.holdout_min_voters
        held = await asyncio.to_thread(server_images, self.store, guild_id, True, min_voters=voters)
        own = await asyncio.to_thread(self.heads.own, guild_id)
        current = own if own is not None else await asyncio.to_thread(self.heads.default)
        folder = server_folder(self.settings.data_dir, guild_id)
        name = "the default model"
        if own is not None:
            kind = "a network" if isinstance(own, ServerNetwork) else "a head"
            name = f"version {await asyncio.to_thread(current_head_version, folder)} ({kind})"
        answers = await self.fitter.holdout_answers(held, current, network)
        comparison = answers.comparison() if answers is not None else None
        counts = {str(label): int(n) for label, n in counts.items()}
        number = None
        if surely_better(comparison, force):
            figures = {
                **(figures or {}),
                "per_class": counts,
                "holdout": holdout_figures(comparison),
                "force": force,
            }
            keep = self.settings.server_model_versions
            number = await asyncio.to_thread(publish_network, candidate, folder, figures, keep)
            log.info("server %s: published network version %d", guild_id, number)
        labels = sum(counts.values())
        await asyncio.to_thread(add_point, folder, "network", labels, comparison, number)
        return NetworkOutcome(number, counts, comparison, name, answers)

    async def pictures(self, outcome: NetworkOutcome, guild_id: int) -> list[discord.File]:
        """The candidate's mistakes, confusion matrix and the server's learning curve, as a
        head's `!retrain` attaches them; none when there was no holdout or drawing failed."""
        if outcome.answers is None:
            return []
        title = "the new network on this server's held-out images"
        try:
            files, _ = await picture_files(self.fitter, outcome.answers, 1, title, guild_id)
        except Exception:
            log.exception("server %s: the new network's pictures could not be drawn", guild_id)
            return []
        return files
