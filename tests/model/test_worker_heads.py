"""ModelWorker with servers' heads: one forward pass for a batch of several servers' requests,
each request's own head applied to its images, a head of another network refused."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from unittest import mock

import numpy as np
import pytest

from model.bundle import TFLITE_FILE, ModelInfo
from model.head import Head, fit_head
from model.runtime import Classifier, LiteRTBackend
from model.worker import ModelWorker

pytestmark = pytest.mark.timeout(30)

BACKBONE = "b" * 64
CLASSES = ("jedi", "sith")


class FeatureClassifier(Classifier):
    """A real `Classifier` over a fake backend (`spec_set` against `LiteRTBackend`) whose
    outputs include the features a head reads: `embedding` is the image's mean pixel / 255 in
    its first column, `stats` the same; its own score is always 0.3."""

    def __init__(self, backbone: str = BACKBONE) -> None:
        backend = mock.create_autospec(LiteRTBackend, instance=True, spec_set=True)
        backend.classify.side_effect = self._classify
        super().__init__(backend, ModelInfo(CLASSES, (200, 200), 0, {TFLITE_FILE: backbone}))
        self.batches: list[int] = []

    def _classify(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self.batches.append(len(images))
        n = len(images)
        means = images.reshape(n, -1).mean(axis=1) / 255
        embedding = np.stack([means, 1 - means, means**2], axis=1)
        stats = np.stack([means, 1 - means], axis=1)
        return {"score": np.full(n, 0.3, np.float32), "embedding": embedding, "stats": stats}


def img(value: int) -> np.ndarray:
    return np.full((200, 200, 3), value, dtype=np.uint8)


def head_for(bright: str, backbone: str = BACKBONE) -> Head:
    """A head that calls bright images `bright` and dark ones the other class."""
    values = np.repeat([20, 40, 60, 200, 220, 240], 2)
    means = values / 255
    embedding = np.stack([means, 1 - means, means**2], axis=1)
    features = {"embedding": embedding, "stats": np.stack([means, 1 - means], axis=1)}
    bright_index = CLASSES.index(bright)
    labels = np.where(values > 128, bright_index, 1 - bright_index)
    return fit_head(features, labels, CLASSES, backbone=backbone)


@pytest.fixture
async def make_worker() -> AsyncIterator[Callable[..., ModelWorker]]:
    workers: list[ModelWorker] = []

    def make(classifier: Classifier, **options) -> ModelWorker:
        worker = ModelWorker(lambda: classifier, **options)
        worker.start()
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.aclose(timeout=5)


async def test_one_batch_applies_each_requests_own_head(make_worker) -> None:
    classifier = FeatureClassifier()
    worker = make_worker(classifier, max_batch=5, max_wait=5.0)  # a batch waits for 5 images
    bright_jedi, bright_sith = head_for("jedi"), head_for("sith")
    first, second, default = await asyncio.gather(
        worker.classify([img(230), img(30)], head=bright_jedi),
        worker.classify([img(230), img(30)], head=bright_sith),
        worker.classify([img(230)]),
    )
    assert [p.label for p in first] == ["jedi", "sith"]
    assert [p.label for p in second] == ["sith", "jedi"]
    assert default[0].label == "jedi" and default[0].score == pytest.approx(0.3)
    assert classifier.batches == [5]  # the three requests shared one forward pass
    assert first[0].distance is not None and first[0].threshold == bright_jedi.threshold


async def test_a_head_of_another_network_gets_the_default_verdict(make_worker, caplog) -> None:
    worker = make_worker(FeatureClassifier(), max_wait=0.0)
    stranger = head_for("sith", backbone="c" * 64)
    with caplog.at_level(logging.WARNING, logger="model.worker"):
        for _ in range(3):
            [prediction] = await worker.classify([img(230)], head=stranger)
            assert prediction.label == "jedi" and prediction.score == pytest.approx(0.3)
    refusals = [r for r in caplog.records if "instead of a head" in r.getMessage()]
    assert len(refusals) == 1


async def test_classify_bytes_applies_the_head(make_worker) -> None:
    from tests.model.test_worker import png

    worker = make_worker(FeatureClassifier(), max_wait=0.0)
    outcomes = await worker.classify_bytes([png(240), b"nope", png(10)], head=head_for("sith"))
    assert outcomes[0].label == "sith" and outcomes[2].label == "jedi"
    assert isinstance(outcomes[1], Exception)


async def test_outputs_are_the_networks_rows_in_order(make_worker) -> None:
    worker = make_worker(FeatureClassifier(), max_batch=2, max_wait=0.0)
    outputs = await worker.outputs([img(0), img(51), img(102), img(255)])
    assert outputs["embedding"].shape == (4, 3)
    assert outputs["embedding"][:, 0] == pytest.approx([0.0, 0.2, 0.4, 1.0])
    assert set(outputs) == {"score", "embedding", "stats"}
