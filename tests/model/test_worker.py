"""ModelWorker with a fake classifier: batching, ordering, back-pressure, errors, reload, close."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from model.architecture import CONV_LAYERS
from model.bundle import METADATA_FILE, ModelError, ModelInfo, publish, staging_folder
from model.preprocess import CorruptImageError, ImageError, NotAnImageError
from model.runtime import Classifier, FeatureMaps, LiteRTBackend, Prediction
from model.worker import ModelWorker, WorkerBusy, WorkerClosed, WorkerTimeout

pytestmark = pytest.mark.timeout(30)

POISON = 255  # an image of this value makes the fake model fail


class FakeClassifier(Classifier):
    """A real `Classifier` over a fake backend (built with `spec_set` against `LiteRTBackend`,
    so it cannot drift from the real one): the score of an image is its mean pixel / 255, plus
    `version` / 4."""

    def __init__(
        self, version: int = 0, *, gate: threading.Event | None = None, size: int = 4
    ) -> None:
        backend = mock.create_autospec(LiteRTBackend, instance=True, spec_set=True)
        backend.classify.side_effect = self._classify
        backend.features.side_effect = self._features
        super().__init__(backend, ModelInfo(("jedi", "sith"), (size, size), 0))
        self.version = version
        self.gate = gate  # when set, classifying waits for it: lets a test hold a batch
        self.entered = threading.Event()
        self.batches: list[int] = []
        self.feature_calls = 0

    def _score(self, images: np.ndarray) -> np.ndarray:
        means = images.reshape(len(images), -1).mean(axis=1) / 255
        return (means + self.version / 4).astype(np.float32)

    def _classify(self, images: np.ndarray) -> dict[str, np.ndarray]:
        assert images.ndim == 4 and images.dtype == np.uint8
        self.batches.append(len(images))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "the test never released the gate"
        if (images == POISON).all(axis=(1, 2, 3)).any():
            raise RuntimeError("the model exploded")
        return {"score": self._score(images)}

    def _features(self, images: np.ndarray) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        self.feature_calls += 1
        if (images == POISON).all():
            raise RuntimeError("features exploded")
        return {"score": self._score(images)}, [images.astype(np.float32)] * len(CONV_LAYERS)


def img(value: int, size: int = 4) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


def png(value: int, size: int = 32) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (value, value, value)).save(out, "PNG")
    return out.getvalue()


def noisy_png(size: int = 64) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


async def wait_for(event: threading.Event, timeout: float = 5.0) -> None:
    assert await asyncio.to_thread(event.wait, timeout), "timed out waiting for the worker"


async def checks_pass(worker: ModelWorker, count: int) -> None:
    """Wait until the worker has looked for a new model `count` more times."""
    start = worker.stats().reload_checks
    await eventually(lambda: worker.stats().reload_checks >= start + count)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def make_worker() -> AsyncIterator[Callable[..., ModelWorker]]:
    """Build and start workers (without a model folder by default); close them all after."""
    workers: list[ModelWorker] = []
    gates: list[threading.Event] = []

    def make(loader: Callable[[], Any] | FakeClassifier | None = None, **options: Any):
        fake = loader if loader is not None else FakeClassifier()
        if isinstance(fake, FakeClassifier) and fake.gate is not None:
            gates.append(fake.gate)
        load = fake if callable(fake) and not isinstance(fake, FakeClassifier) else lambda: fake
        options.setdefault("max_wait", 0.0)
        worker = ModelWorker(load, **options)  # type: ignore[arg-type]
        worker.start()
        workers.append(worker)
        return worker

    yield make
    for gate in gates:
        gate.set()  # never leave the worker thread stuck
    for worker in workers:
        await worker.aclose(timeout=5)


def score_of(prediction: Prediction) -> float:
    return round(prediction.score, 4)


# -- batching and order ----------------------------------------------------------------------


async def test_concurrent_requests_are_batched(make_worker) -> None:
    fake = FakeClassifier()
    worker = make_worker(fake, max_batch=8, max_wait=0.05)
    values = list(range(0, 200, 10))  # 20 requests, one image each
    results = await asyncio.gather(*(worker.classify([img(v)]) for v in values))
    assert [score_of(r[0]) for r in results] == [round(v / 255, 4) for v in values]
    stats = worker.stats()
    assert stats.images == 20 and sum(fake.batches) == 20
    assert max(fake.batches) <= 8  # max_batch respected
    assert stats.largest_batch == max(fake.batches) > 1
    assert stats.batches == len(fake.batches) < 20


async def test_a_request_larger_than_max_batch_runs_in_chunks(make_worker) -> None:
    fake = FakeClassifier()
    worker = make_worker(fake, max_batch=4)
    values = list(range(0, 250, 25))  # 10 images in one request
    predictions = await worker.classify([img(v) for v in values])
    assert [score_of(p) for p in predictions] == [round(v / 255, 4) for v in values]
    assert max(fake.batches) <= 4 and sum(fake.batches) == 10


async def test_every_caller_gets_its_own_results_in_order(make_worker) -> None:
    worker = make_worker(FakeClassifier(), max_batch=6, max_wait=0.02)
    requests = [[img(n * 7 + k) for k in range(n % 3 + 1)] for n in range(25)]
    results = await asyncio.gather(*(worker.classify(images) for images in requests))
    for images, predictions in zip(requests, results, strict=True):
        expected = [round(float(i[0, 0, 0]) / 255, 4) for i in images]
        assert [score_of(p) for p in predictions] == expected


async def test_predictions_carry_the_label(make_worker) -> None:
    worker = make_worker(FakeClassifier())
    low, high = await worker.classify([img(10), img(250)])
    assert low.label == "jedi" and high.label == "sith"


async def test_classify_nothing(make_worker) -> None:
    fake = FakeClassifier()
    worker = make_worker(fake)
    assert await worker.classify([]) == []
    assert await worker.classify_bytes([]) == []
    assert fake.batches == []


async def test_features_run_alone_beside_classification(make_worker) -> None:
    fake = FakeClassifier()
    worker = make_worker(fake, max_batch=8, max_wait=0.05)
    maps, *scores = await asyncio.gather(
        worker.features(img(51)), *(worker.classify([img(v)]) for v in (0, 102, 204))
    )
    assert isinstance(maps, FeatureMaps) and round(maps.score, 4) == round(51 / 255, 4)
    assert [score_of(s[0]) for s in scores] == [0.0, 0.4, 0.8]
    assert fake.feature_calls == 1


# -- back-pressure ---------------------------------------------------------------------------


async def test_a_full_queue_raises_worker_busy_at_once(make_worker) -> None:
    fake = FakeClassifier(gate=threading.Event())
    worker = make_worker(fake, queue_size=2, max_batch=8)
    first = asyncio.create_task(worker.classify([img(10)]))
    await wait_for(fake.entered)  # the worker is busy with `first`
    queued = [asyncio.create_task(worker.classify([img(v)])) for v in (20, 30)]
    await eventually(lambda: worker.pending == 3)

    started = time.monotonic()
    with pytest.raises(WorkerBusy) as caught:
        await worker.classify([img(40)])
    assert time.monotonic() - started < 0.5
    assert "Try again" in str(caught.value)
    assert worker.pending == 3  # the refused request left no trace

    assert fake.gate is not None
    fake.gate.set()
    assert score_of((await first)[0]) == round(10 / 255, 4)
    assert [score_of((await t)[0]) for t in queued] == [round(20 / 255, 4), round(30 / 255, 4)]
    # Later requests are served as usual.
    assert score_of((await worker.classify([img(50)]))[0]) == round(50 / 255, 4)
    await eventually(lambda: worker.pending == 0)


# -- errors ----------------------------------------------------------------------------------


async def test_a_model_error_reaches_only_the_callers_of_that_batch(make_worker) -> None:
    fake = FakeClassifier(gate=threading.Event())
    worker = make_worker(fake, max_batch=8)
    before = asyncio.create_task(worker.classify([img(10)]))
    await wait_for(fake.entered)
    # These two wait together, so they become the next batch, which fails.
    poisoned = asyncio.create_task(worker.classify([img(POISON)]))
    neighbour = asyncio.create_task(worker.classify([img(20)]))
    await eventually(lambda: worker.pending == 3)
    assert fake.gate is not None
    fake.gate.set()

    assert score_of((await before)[0]) == round(10 / 255, 4)
    for task in (poisoned, neighbour):
        with pytest.raises(RuntimeError, match="exploded"):
            await task
    # The worker keeps serving.
    after = await asyncio.gather(*(worker.classify([img(v)]) for v in (30, 40)))
    assert [score_of(p[0]) for p in after] == [round(30 / 255, 4), round(40 / 255, 4)]
    assert fake.batches[:2] == [1, 2]


async def test_a_failed_request_alone_does_not_hurt_the_next(make_worker) -> None:
    worker = make_worker(FakeClassifier())
    with pytest.raises(RuntimeError):
        await worker.classify([img(POISON)])
    with pytest.raises(RuntimeError, match="features exploded"):
        await worker.features(img(POISON))
    assert score_of((await worker.classify([img(51)]))[0]) == 0.2
    assert (await worker.features(img(102))).score == pytest.approx(0.4)


async def test_classify_bytes_gives_image_errors_in_place(make_worker) -> None:
    fake = FakeClassifier(size=200)  # decoded uploads are the network's 200x200
    worker = make_worker(fake, max_batch=8)
    whole = noisy_png()
    truncated = whole[: len(whole) // 2]
    results = await worker.classify_bytes([png(51), b"not an image", truncated, png(204), b""])
    assert isinstance(results[0], Prediction) and results[0].score == pytest.approx(0.2, abs=1e-3)
    assert isinstance(results[1], NotAnImageError)
    assert isinstance(results[2], CorruptImageError)
    assert isinstance(results[3], Prediction) and results[3].score == pytest.approx(0.8, abs=1e-3)
    assert isinstance(results[4], ImageError)
    assert fake.batches == [2]  # only the good images reached the model, in one batch


async def test_classify_bytes_keeps_earlier_errors_in_their_place(make_worker) -> None:
    fake = FakeClassifier(size=200)
    worker = make_worker(fake)
    failed = RuntimeError("the download failed")  # what a caller already knows went wrong
    results = await worker.classify_bytes([png(51), failed, png(204)])
    assert results[1] is failed
    assert [type(r) for r in results] == [Prediction, RuntimeError, Prediction]
    assert fake.batches == [2]


async def test_classify_bytes_with_only_bad_images_skips_the_model(make_worker) -> None:
    fake = FakeClassifier()
    worker = make_worker(fake)
    results = await worker.classify_bytes([b"GIF89a-broken", b"\x00" * 10])
    assert all(isinstance(r, ImageError) for r in results)
    assert fake.batches == []


async def test_decode_resizes_to_the_network_input(make_worker) -> None:
    worker = make_worker(FakeClassifier())
    image = await worker.decode(png(90, size=50))
    assert image.shape == (200, 200, 3) and image.dtype == np.uint8
    assert int(image.mean()) == 90


# -- life cycle ------------------------------------------------------------------------------


async def test_aclose_finishes_queued_work_then_refuses_more(make_worker) -> None:
    fake = FakeClassifier(gate=threading.Event())
    worker = make_worker(fake, max_batch=8)
    running = asyncio.create_task(worker.classify([img(10)]))
    await wait_for(fake.entered)
    queued = [asyncio.create_task(worker.classify([img(v)])) for v in (20, 30, 40)]
    feature = asyncio.create_task(worker.features(img(50)))
    await eventually(lambda: worker.pending == 5)

    closing = asyncio.create_task(worker.aclose(timeout=5))
    await eventually(lambda: worker._closed)  # new requests are refused from here on
    with pytest.raises(WorkerClosed):
        await worker.classify([img(60)])
    assert fake.gate is not None
    fake.gate.set()
    await asyncio.wait_for(closing, 5)

    assert score_of((await running)[0]) == round(10 / 255, 4)
    assert [score_of((await t)[0]) for t in queued] == [round(v / 255, 4) for v in (20, 30, 40)]
    assert (await feature).score == pytest.approx(50 / 255)
    assert worker._thread is not None and not worker._thread.is_alive()
    with pytest.raises(WorkerClosed):
        await worker.features(img(1))


async def test_a_worker_that_was_never_started() -> None:
    worker = ModelWorker(FakeClassifier)  # type: ignore[arg-type]
    with pytest.raises(WorkerClosed):
        await worker.classify([img(1)])
    with pytest.raises(RuntimeError, match="not started"):
        _ = worker.classifier
    await worker.aclose()


async def test_start_twice_is_refused(make_worker) -> None:
    worker = make_worker(FakeClassifier())
    with pytest.raises(RuntimeError, match="already started"):
        worker.start()


@pytest.mark.parametrize("options", [{"max_batch": 0}, {"queue_size": 0}, {"max_wait": -0.001}])
def test_bad_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ModelWorker(FakeClassifier, **options)  # type: ignore[arg-type]


# -- hot reload ------------------------------------------------------------------------------


def publish_fake_model(folder: Path, version: int) -> None:
    """Publish a model folder holding only a small model.json, the way training publishes."""
    with staging_folder(folder) as staging:
        (staging / METADATA_FILE).write_text(json.dumps({"version": version}), encoding="utf-8")
        publish(staging, folder)


class Loader:
    """Returns a new FakeClassifier (version 0, 1, 2...) per call; may fail on chosen calls."""

    def __init__(self, fail_on: dict[int, BaseException] | None = None) -> None:
        self.calls = 0
        self.fail_on = fail_on or {}
        self.made: list[FakeClassifier] = []

    def __call__(self) -> FakeClassifier:
        call = self.calls
        self.calls += 1
        if call in self.fail_on:
            raise self.fail_on[call]
        fake = FakeClassifier(version=len(self.made))
        self.made.append(fake)
        return fake


async def score_now(worker: ModelWorker) -> float:
    return score_of((await worker.classify([img(0)]))[0])


async def test_a_published_model_is_swapped_in_between_batches(make_worker, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    publish_fake_model(folder, 0)
    loader = Loader()
    worker = make_worker(loader, watch=folder, reload_interval=0.05)
    assert loader.calls == 1 and worker.classifier is loader.made[0]
    assert await score_now(worker) == 0.0

    # Hold a batch on the old model, publish meanwhile: that batch still ends on the old model.
    old = loader.made[0]
    old.gate = threading.Event()
    old.entered.clear()
    held = asyncio.create_task(worker.classify([img(0)]))
    await wait_for(old.entered)
    publish_fake_model(folder, 1)
    old.gate.set()
    assert score_of((await held)[0]) == 0.0

    await eventually(lambda: worker.stats().reloads == 1)
    assert worker.classifier is loader.made[1]
    assert await score_now(worker) == 0.25
    assert worker.stats().model_stamp is not None


async def test_a_model_that_fails_to_load_is_refused(make_worker, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    publish_fake_model(folder, 0)
    loader = Loader(fail_on={1: ModelError("model.json is missing or has a bad field")})
    worker = make_worker(loader, watch=folder, reload_interval=0.05)
    publish_fake_model(folder, 1)

    await eventually(lambda: loader.calls == 2)
    assert await score_now(worker) == 0.0  # the old model keeps serving
    assert worker.stats().reloads == 0
    await checks_pass(worker, 3)  # three more looks: the refused folder is not retried
    assert loader.calls == 2

    publish_fake_model(folder, 2)  # a good model after a bad one is taken
    await eventually(lambda: worker.stats().reloads == 1)
    assert await score_now(worker) == 0.25


async def test_an_unexpected_load_failure_keeps_the_worker_alive(
    make_worker, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    publish_fake_model(folder, 0)
    loader = Loader(fail_on={1: RuntimeError("interpreter refused the graph")})
    worker = make_worker(loader, watch=folder, reload_interval=0.05)
    publish_fake_model(folder, 1)
    await eventually(lambda: loader.calls == 2)
    assert await asyncio.wait_for(score_now(worker), 5) == 0.0
    assert worker._thread is not None and worker._thread.is_alive()


async def test_a_removed_model_folder_keeps_the_old_model(make_worker, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    publish_fake_model(folder, 0)
    loader = Loader()
    worker = make_worker(loader, watch=folder, reload_interval=0.05)
    shutil.rmtree(folder)
    await checks_pass(worker, 3)
    assert loader.calls == 1
    assert await score_now(worker) == 0.0


async def test_follow_serves_another_folder_and_its_later_publishes(
    make_worker, tmp_path: Path
) -> None:
    first, second = tmp_path / "shipped", tmp_path / "retrained"
    publish_fake_model(first, 0)
    publish_fake_model(second, 0)
    loader = Loader()
    worker = make_worker(loader, watch=first, reload_interval=0.05)
    other = Loader()
    other.made.extend([None] * 4)  # type: ignore[list-item]  # its models score 4 x 0.25 = 1.0
    worker.follow(second, other)
    assert worker.folder == second
    await eventually(lambda: other.calls == 1)
    assert await score_now(worker) == 1.0
    publish_fake_model(first, 1)  # the old folder is no longer watched
    await checks_pass(worker, 3)
    assert loader.calls == 1
    publish_fake_model(second, 1)
    await eventually(lambda: other.calls == 2)
    await eventually(lambda: worker.stats().reloads == 2)  # counted just after the load returns


async def test_no_watch_folder_means_no_reload(make_worker) -> None:
    loader = Loader()
    worker = make_worker(loader, reload_interval=0.01)
    for _ in range(5):  # several batches, each a chance to look: it never does
        assert await score_now(worker) == 0.0
    assert loader.calls == 1 and worker.stats().model_stamp is None
    assert worker.stats().reload_checks == 0


# -- faults: nothing a bug or a stuck model does may hang a command ----------------------------


async def test_a_bug_in_a_batch_fails_that_batch_and_the_worker_serves_on(
    make_worker, monkeypatch
) -> None:
    worker = make_worker(FakeClassifier())
    real_gather = worker._gather
    calls = {"n": 0}

    def gather_that_breaks_once(first):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("a bug in batching")
        return real_gather(first)

    monkeypatch.setattr(worker, "_gather", gather_that_breaks_once)
    with pytest.raises(KeyError, match="a bug in batching"):
        await worker.classify([img(10)])
    assert score_of((await worker.classify([img(51)]))[0]) == 0.2
    assert worker._thread is not None and worker._thread.is_alive()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_dead_worker_thread_fails_every_waiting_request(make_worker, monkeypatch) -> None:
    fake = FakeClassifier(gate=threading.Event())
    worker = make_worker(fake)
    first = asyncio.create_task(worker.classify([img(10)]))
    await wait_for(fake.entered)  # the thread is busy with `first`
    queued = asyncio.create_task(worker.classify([img(20)]))
    await eventually(lambda: worker._queue.qsize() == 1)

    def die(batch):
        raise SystemExit("the thread is gone")  # not an Exception: ends the thread

    monkeypatch.setattr(worker, "_process", die)
    fake.gate.set()
    assert score_of((await first)[0]) == round(10 / 255, 4)  # its batch was already running
    with pytest.raises(WorkerClosed, match="stopped"):
        await asyncio.wait_for(queued, 5)
    await eventually(lambda: not worker._thread.is_alive())
    with pytest.raises(WorkerClosed, match="stopped"):
        await worker.classify([img(30)])
    with pytest.raises(WorkerClosed, match="stopped"):
        await worker.classify_bytes([png(30)])


async def test_a_stuck_model_times_out_instead_of_hanging(make_worker) -> None:
    fake = FakeClassifier(gate=threading.Event())
    worker = make_worker(fake, request_timeout=0.3)
    with pytest.raises(WorkerTimeout) as caught:
        await worker.classify([img(10)])
    assert "too long" in str(caught.value)
    fake.gate.set()  # the model comes back: so does the service
    assert score_of((await worker.classify([img(51)]))[0]) == 0.2


async def test_decoding_refuses_at_once_when_too_many_wait(make_worker, monkeypatch) -> None:
    import model.worker as worker_module

    release, started = threading.Event(), threading.Event()
    real_load = worker_module.load_image

    def slow_load(data, limits):
        started.set()
        assert release.wait(10)
        return real_load(data, limits)

    monkeypatch.setattr(worker_module, "load_image", slow_load)
    worker = make_worker(FakeClassifier(size=200), queue_size=1, decode_threads=1)
    first = asyncio.create_task(worker.classify_bytes([png(51)]))
    await wait_for(started)
    with pytest.raises(WorkerBusy):
        await worker.classify_bytes([png(52)])  # refused before any decoding, not after
    release.set()
    assert isinstance((await first)[0], Prediction)


async def test_an_unexpected_decoding_failure_stays_that_images_line(
    make_worker, monkeypatch
) -> None:
    import model.worker as worker_module

    real_load = worker_module.load_image

    def exotic(data, limits):
        if data == b"exotic":
            raise IndexError("a Pillow plugin's own bug")
        return real_load(data, limits)

    monkeypatch.setattr(worker_module, "load_image", exotic)
    worker = make_worker(FakeClassifier(size=200))
    results = await worker.classify_bytes([png(51), b"exotic", png(204)])
    assert isinstance(results[0], Prediction) and isinstance(results[2], Prediction)
    assert isinstance(results[1], CorruptImageError)


async def test_decoded_images_wait_for_the_model_a_few_batches_at_most(make_worker) -> None:
    fake = FakeClassifier(size=200, gate=threading.Event())
    worker = make_worker(fake, max_batch=2, decode_threads=2)  # at most 8 images ahead
    first = asyncio.create_task(worker.classify_bytes([png(1)]))
    await wait_for(fake.entered)  # the model is busy (held) with `first`
    later = [
        asyncio.create_task(worker.classify_bytes([png(n), png(n + 1), png(n + 2)]))
        for n in range(10, 40, 3)
    ]  # 30 images for a model that is not taking any
    # While the model is held: both decode threads end up blocked on room, with two requests
    # (6 images) queued and the other eight held back. Without the cap, all 30 would queue.
    await eventually(lambda: worker._held_back == 2)
    assert worker._ahead == 6 and worker._decoding == 8
    fake.gate.set()
    results = await asyncio.gather(first, *later)
    assert all(isinstance(p, Prediction) for result in results for p in result)
    assert worker._ahead == 0
