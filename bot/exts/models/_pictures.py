"""The pictures of a model's answers to a server's held-out images, for `!mistakes` and for
`!retrain`'s candidate: one picture of the images it gets wrong or is least sure about (each
with its label, the model's answer and score), the confusion matrix with an image of each cell,
and the server's learning curve (`._curve`). Drawn by `model.render`, in a thread.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import discord
import numpy as np

from bot.exts.models._curve import curve_points
from bot.exts.models._heads import HeadTrainer, HoldoutAnswers
from bot.server_models import server_folder
from model.preprocess import ImageError, load_image
from model.render import Tile, render_confusion, render_curve, render_tiles
from model.runtime import Prediction

log = logging.getLogger(__name__)

MAX_TILES = 12  # the picture's thumbnails at most: every mistake first, then the least sure
LEAST_SURE = 4  # right answers shown after the mistakes, the least sure first
MISTAKES_FILE, CONFUSION_FILE, CURVE_FILE = "mistakes.png", "confusion.png", "curve.png"


def chosen_tiles(answers: HoldoutAnswers, model: int) -> list[int]:
    """The indices of the images to show: the mistakes (the surest first), then the right
    answers the model is least sure about; `MAX_TILES` at most."""
    predictions = answers.answers[model]
    wrong = [i for i, p in enumerate(predictions) if p.label != answers.truth[i]]
    right = [i for i, p in enumerate(predictions) if p.label == answers.truth[i]]
    wrong.sort(key=lambda i: -predictions[i].confidence)
    right.sort(key=lambda i: predictions[i].confidence)
    return (wrong + right[:LEAST_SURE])[:MAX_TILES]


def confusion(answers: HoldoutAnswers, model: int, class_names: Sequence[str]) -> np.ndarray:
    """Counts: rows the images' labels, columns the model's answers."""
    counts = np.zeros((len(class_names), len(class_names)), dtype=int)
    for truth, prediction in zip(answers.truth, answers.answers[model], strict=True):
        if truth in class_names and prediction.label in class_names:
            counts[class_names.index(truth), class_names.index(prediction.label)] += 1
    return counts


def confusion_line(counts: np.ndarray, class_names: Sequence[str]) -> str:
    """The confusion matrix in words, one class after the other."""
    parts = []
    for i, name in enumerate(class_names):
        said = ", ".join(
            f"{counts[i, j]} called {other.capitalize()}" for j, other in enumerate(class_names)
        )
        parts.append(f"{name.capitalize()}: {said}")
    return "; ".join(parts)


def _caption(truth: str, prediction: Prediction) -> tuple[str, str]:
    return (
        f"is {truth.capitalize()}",
        f"says {prediction.label.capitalize()}, {prediction.score:.2f}",
    )


def draw(
    answers: HoldoutAnswers,
    model: int,
    class_names: Sequence[str],
    title: str,
    curve_folder: Path | None,
    limits: Any,
) -> tuple[list[tuple[str, bytes]], int]:
    """The pictures of `answers`' model number `model` (PNG files by name) and how many
    thumbnails the first holds; decodes the few images it shows, so it runs in a thread."""
    shown = chosen_tiles(answers, model)
    counts = confusion(answers, model, class_names)
    cells: dict[tuple[int, int], int] = {}
    for i, (truth, prediction) in enumerate(
        zip(answers.truth, answers.answers[model], strict=True)
    ):
        if truth in class_names and prediction.label in class_names:
            cells.setdefault((class_names.index(truth), class_names.index(prediction.label)), i)
    needed = sorted(set(shown) | set(cells.values()))
    pixels = {i: _pixels(answers.images[i], limits) for i in needed}
    tiles = []
    for i in shown:
        prediction = answers.answers[model][i]
        first, second = _caption(answers.truth[i], prediction)
        tiles.append(Tile(pixels[i], first, second, prediction.label != answers.truth[i]))
    previews = {cell: pixels[i] for cell, i in cells.items()}
    files = [
        (MISTAKES_FILE, render_tiles(tiles, title)),
        (CONFUSION_FILE, render_confusion(class_names, counts, previews)),
    ]
    points = (
        [p for p in curve_points(curve_folder) if p.accuracy is not None] if curve_folder else []
    )
    if points:
        files.append(
            (
                CURVE_FILE,
                render_curve(
                    [p.labels for p in points],
                    [p.accuracy for p in points],  # type: ignore[misc]
                    [p.version is not None for p in points],
                ),
            )
        )
    return files, len(tiles)


def _pixels(image: Any, limits: Any) -> np.ndarray:
    """A held-out image as the network sees it; grey when it can no longer be read."""
    try:
        return load_image(Path(image.path).read_bytes(), limits)
    except (OSError, ImageError) as error:
        log.warning("a held-out image cannot be read for a picture: %s", error)
        return np.full((64, 64, 3), 200, dtype=np.uint8)


def summary(answers: HoldoutAnswers, model: int, shown: int, class_names: Sequence[str]) -> str:
    """How the model does on the holdout and what the picture shows, in two lines."""
    total = len(answers.truth)
    right = sum(p.label == t for p, t in zip(answers.answers[model], answers.truth, strict=True))
    wrong = total - right
    line = (
        f"{right} of {total} held-out images right ({right / total:.1%}), {wrong} wrong. "
        f"The picture shows {shown}: "
    )
    line += "its mistakes first (red), then " if wrong else "no mistakes; "
    line += "the ones it is least sure about."
    counts = confusion(answers, model, class_names)
    return f"{line}\n-# {confusion_line(counts, class_names)}."


async def picture_files(
    fitter: HeadTrainer, answers: HoldoutAnswers, model: int, title: str, guild_id: int
) -> tuple[list[discord.File], int]:
    """The pictures of model number `model` in `answers` as files to attach, and the number of
    thumbnails in the first."""
    folder = server_folder(fitter.settings.data_dir, guild_id)
    drawn, shown = await asyncio.to_thread(
        draw, answers, model, fitter.class_names, title, folder, fitter.limits
    )
    return [discord.File(io.BytesIO(data), filename=name) for name, data in drawn], shown
