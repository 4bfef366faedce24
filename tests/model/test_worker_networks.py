"""ModelWorker with a server's own network: its requests run on that network alone, not in the
shared forward pass, through the same queue and decoding."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from model.bundle import TFLITE_FILE, ModelInfo
from model.runtime import Classifier, LiteRTBackend, ServerNetwork
from model.worker import ModelWorker

pytestmark = pytest.mark.timeout(30)

CLASSES = ("jedi", "sith")


class ConstantClassifier(Classifier):
    """A real `Classifier` over a fake backend (`spec_set` against `LiteRTBackend`) whose
    score is always `score`; it records the size of each batch it runs."""

    def __init__(self, score: float, backbone: str) -> None:
        backend = mock.create_autospec(LiteRTBackend, instance=True, spec_set=True)
        backend.classify.side_effect = self._classify
        super().__init__(backend, ModelInfo(CLASSES, (200, 200), 0, {TFLITE_FILE: backbone}))
        self.score = score
        self.batches: list[int] = []

    def _classify(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self.batches.append(len(images))
        return {"score": np.full(len(images), self.score, np.float32)}


def img(value: int) -> np.ndarray:
    return np.full((200, 200, 3), value, dtype=np.uint8)


def png(value: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (value, value, value)).save(out, format="PNG")
    return out.getvalue()


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


async def test_a_servers_network_answers_its_requests_apart_from_the_shared_pass(
    make_worker,
) -> None:
    shared = ConstantClassifier(0.2, "a" * 64)
    own = ConstantClassifier(0.9, "b" * 64)  # another network: no backbone check applies
    worker = make_worker(shared, max_batch=8, max_wait=0.5)
    mine, theirs = await asyncio.gather(
        worker.classify([img(10), img(20), img(30)], head=ServerNetwork(own)),
        worker.classify([img(40)]),
    )
    assert [p.label for p in mine] == ["sith"] * 3
    assert [p.label for p in theirs] == ["jedi"]
    assert own.batches == [3] and shared.batches == [1]  # not batched together


async def test_decoded_bytes_reach_a_servers_network_in_chunks_with_errors_in_place(
    make_worker,
) -> None:
    shared = ConstantClassifier(0.2, "a" * 64)
    own = ConstantClassifier(0.9, "b" * 64)
    worker = make_worker(shared, max_batch=2)
    blobs: list[bytes | Exception] = [png(10), b"not an image", png(30), png(50)]
    results = await worker.classify_bytes(blobs, head=ServerNetwork(own))
    assert isinstance(results[1], Exception)
    assert [getattr(r, "label", None) for r in results] == ["sith", None, "sith", "sith"]
    assert own.batches == [2, 1] and shared.batches == []  # chunks of max_batch
