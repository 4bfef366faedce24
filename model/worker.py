"""The model worker: one thread owns the model; asyncio code awaits its results.

Requests that arrive together are run as one batch (up to `max_batch` images, waiting at most
`max_wait` seconds for company), as TF Serving's and Triton's dynamic batchers do. Decoding and
rendering run in small thread pools of their own, so the event loop only ever awaits futures.
`classify_bytes` hands its images to a decode thread that queues them for the model itself: the
event loop starts a request and receives its answer, nothing in between, so a burst of requests
leaves it free (its lag stays low) and the results of a batch come back in one wake-up.
The queue is bounded: when it is full, `WorkerBusy` is raised at once instead of queueing forever.
Between batches the worker notices a newly published model and swaps it in; a broken new model
is refused and the old one keeps serving.

The network runs once per batch for the requests of every server together; each request then
gets its own server's `Head` applied to its images' outputs (`model.head`), or none: the served
model's own verdict. A head learned on another network is never applied (`check_backbone`). A
server whose model is a network of its own (`ServerNetwork`) has its requests run on that
network, apart from the shared pass, with the same decoding, limits and queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from model.bundle import TFLITE_FILE, publish_stamp
from model.head import Head, HeadError, check_backbone
from model.preprocess import CorruptImageError, ImageError, ImageLimits, load_image
from model.runtime import Classifier, FeatureMaps, Outputs, Prediction, ServerNetwork

Served = Head | ServerNetwork  # a server's own model: a head, or a network of its own

log = logging.getLogger(__name__)


class WorkerBusy(RuntimeError):
    """Too many requests are waiting; the caller should ask the user to retry shortly."""

    def __init__(self) -> None:
        super().__init__("I'm busy with a lot of images right now. Try again in a few seconds.")


class WorkerClosed(RuntimeError):
    """The worker is shutting down (or its thread has died) and takes no new requests."""


class WorkerTimeout(RuntimeError):
    """A request took longer than the worker's `request_timeout`; the caller should say so."""

    def __init__(self) -> None:
        super().__init__("That took me too long. Try again in a moment.")


class _Kind(Enum):
    CLASSIFY = "classify"  # scores: batched with every other classify job
    FEATURES = "features"  # feature maps of one image: run alone


@dataclass
class _Job:
    kind: _Kind
    images: np.ndarray
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    # Turns this job's predictions into its result, in the worker thread (classify_bytes).
    finish: Callable[[list[Prediction]], Any] | None = None
    head: Served | None = None  # a server's head or own network; None: the shared verdict
    raw: bool = False  # the network's outputs themselves (`outputs`), not predictions

    def outcome(self, value: Any = None, error: BaseException | None = None) -> _Outcome:
        return _Outcome(self.future, self.loop, value, error)


class _Outcome(NamedTuple):
    """A result (or an error) for a future waiting in some event loop."""

    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    value: Any = None
    error: BaseException | None = None


@dataclass(frozen=True)
class WorkerStats:
    batches: int
    images: int
    largest_batch: int
    reloads: int
    model_stamp: tuple[int, int, int] | None
    reload_checks: int  # times the worker looked for a newly published model


class ModelWorker:
    """Serve a `Classifier` from one thread, batching concurrent requests."""

    def __init__(
        self,
        loader: Callable[[], Classifier],
        *,
        max_batch: int = 8,
        max_wait: float = 0.005,
        queue_size: int = 256,
        limits: ImageLimits | None = None,
        watch: Path | None = None,
        reload_interval: float = 2.0,
        decode_threads: int = 2,
        request_timeout: float = 60.0,
    ) -> None:
        if max_batch < 1 or queue_size < 1 or max_wait < 0 or not request_timeout > 0:
            raise ValueError(
                "max_batch, queue_size and request_timeout must be positive, max_wait not negative"
            )
        self.request_timeout = request_timeout
        self.max_ahead = 4 * max_batch  # decoded images waiting for the model, at most
        self._ahead = 0
        self._held_back = 0  # decode threads waiting for room (for tests and debugging)
        self._room = threading.Condition()
        self._max_decoding = queue_size  # classify_bytes requests waiting for a decode thread
        self._loader = loader
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.limits = limits or ImageLimits()
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self._watch = watch
        self._reload_interval = reload_interval
        self._decode_pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="decode")
        self._render_pool = ThreadPoolExecutor(1, thread_name_prefix="render")
        self._thread: threading.Thread | None = None
        self._closed = False
        self._classifier: Classifier | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._refused: tuple[int, int, int] | None = None
        self._refused_heads: set[tuple[str, str | None]] = set()  # logged once each
        self._next_check = 0.0
        self._batches = self._images = self._largest = self._reloads = self._checks = 0
        self._in_flight = 0
        self._decoding = 0  # classify_bytes requests still decoding: on their way to the queue
        self._lock = threading.Lock()
        # Held while checking `_closed` and queueing from a decode thread, and while closing:
        # nothing is queued behind the stop sentinel.
        self._queue_lock = threading.Lock()

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> Classifier:
        """Load and warm up the model (blocking), then start the worker thread."""
        if self._thread is not None:
            raise RuntimeError("worker already started")
        self._stamp = publish_stamp(self._watch) if self._watch else None
        self._classifier = self._loader()
        self._next_check = time.monotonic() + self._reload_interval
        self._thread = threading.Thread(target=self._run, name="model-worker", daemon=True)
        self._thread.start()
        return self._classifier

    async def aclose(self, timeout: float = 8.0) -> None:
        """Stop taking requests, finish those queued (up to `timeout`), stop the threads."""
        with self._queue_lock:
            self._closed = True
        with self._room:
            self._room.notify_all()  # decode threads waiting for room: stop waiting
        if self._thread is not None:
            await asyncio.to_thread(self._stop_thread, timeout)
        self._decode_pool.shutdown(wait=False, cancel_futures=True)
        self._render_pool.shutdown(wait=False, cancel_futures=True)

    def _stop_thread(self, timeout: float) -> None:
        assert self._thread is not None
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("model worker queue still full at shutdown")
        self._thread.join(timeout)

    @property
    def classifier(self) -> Classifier:
        if self._classifier is None:
            raise RuntimeError("worker not started")
        return self._classifier

    @property
    def pending(self) -> int:
        """Requests queued or running."""
        return self._in_flight

    def stats(self) -> WorkerStats:
        return WorkerStats(
            self._batches, self._images, self._largest, self._reloads, self._stamp, self._checks
        )

    # -- the asyncio side -------------------------------------------------------------------

    async def decode(self, data: bytes) -> np.ndarray:
        """Preprocess image bytes off the event loop; raises `ImageError`."""
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._decode_pool, load_image, data, self.limits)
        return await self._bounded(work)

    async def _bounded(self, awaitable: Any) -> Any:
        """Wait for a request at most `request_timeout` seconds: no command hangs forever."""
        try:
            return await asyncio.wait_for(awaitable, self.request_timeout)
        except TimeoutError:
            log.error("a model worker request took over %.0f s; gave up", self.request_timeout)
            raise WorkerTimeout() from None

    async def classify(
        self, images: Sequence[np.ndarray], head: Served | None = None
    ) -> list[Prediction]:
        """Predictions for preprocessed images (by a server's `head` or own network; None: the
        served model's own), batched with whatever else is waiting."""
        if len(images) == 0:
            return []
        return await self._submit(_Kind.CLASSIFY, np.stack(images), head=head)

    async def outputs(self, images: Sequence[np.ndarray]) -> Outputs:
        """The network's raw outputs for preprocessed images (per name, one row per image;
        `embedding` and `stats` among them), batched with the rest: what a head is fitted on."""
        if len(images) == 0:
            raise ValueError("no images")
        return await self._submit(_Kind.CLASSIFY, np.stack(images), raw=True)

    async def classify_bytes(
        self, blobs: Sequence[bytes | Exception], head: Served | None = None
    ) -> list[Prediction | Exception]:
        """Decode and classify each item of `blobs` (by a server's `head`, as `classify`), in
        order: its `Prediction`, or the `ImageError` that says why it cannot be used. An item
        that is already an error (a download that failed, say) stays in its place, so a
        command's per-file outcomes travel one list from download to reply.

        One decode thread decodes all of `blobs` and queues the good images as one request.
        """
        if len(blobs) == 0:
            return []
        self._check_running()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Prediction | Exception]] = loop.create_future()
        with self._lock:
            if self._decoding >= self._max_decoding:  # refuse before decoding, not after
                raise WorkerBusy()
            self._in_flight += 1
            self._decoding += 1
        try:
            work = self._decode_pool.submit(self._decode_and_queue, list(blobs), future, loop, head)

            def on_done(done: Future[None]) -> None:
                # Shutdown cancels decodes that have not started: their callers must hear of it.
                if done.cancelled():
                    self._decoded()
                    _deliver(_Outcome(future, loop, error=WorkerClosed("the model worker stopped")))

            work.add_done_callback(on_done)
            return await self._bounded(future)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _decode_and_queue(
        self,
        blobs: list[bytes | Exception],
        future: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
        head: Served | None = None,
    ) -> None:
        """In a decode thread: decode `blobs`, queue the good images for the model."""
        try:
            decoded: list[np.ndarray | Exception] = []
            for blob in blobs:
                if isinstance(blob, Exception):
                    decoded.append(blob)
                    continue
                try:
                    decoded.append(load_image(blob, self.limits))
                except ImageError as error:
                    decoded.append(error)
                except Exception:  # a bug in decoding: this image's line, not its message's
                    log.exception("decoding an image failed unexpectedly")
                    decoded.append(CorruptImageError("I couldn't read that image."))
            good = [item for item in decoded if isinstance(item, np.ndarray)]
            if not good:
                _deliver(_Outcome(future, loop, decoded))
                return
            images = np.stack(good)
            # Keep only the errors for the merge: the decoded arrays live on in `images` alone.
            slots = [item if isinstance(item, Exception) else None for item in decoded]
            del decoded, good
            finish = partial(self._merge, slots)
            job = _Job(_Kind.CLASSIFY, images, future, loop, finish=finish, head=head)
            self._wait_for_room(len(images))
            try:
                with self._queue_lock:
                    if self._closed:
                        raise WorkerClosed("the model worker is not running")
                    self._queue.put_nowait(job)
            except BaseException:
                self._free_room(len(images))
                raise
        except queue.Full:
            _deliver(_Outcome(future, loop, error=WorkerBusy()))
        except Exception as error:
            _deliver(_Outcome(future, loop, error=error))
        finally:
            self._decoded()

    def _decoded(self) -> None:
        with self._lock:
            self._decoding -= 1

    @staticmethod
    def _merge(
        slots: list[Exception | None], predictions: list[Prediction]
    ) -> list[Prediction | Exception]:
        """Predictions for the decoded images (None in `slots`), each error left in its place."""
        left = iter(predictions)
        return [item if item is not None else next(left) for item in slots]

    def _wait_for_room(self, count: int) -> None:
        """In a decode thread: hold decoded images back while `max_ahead` already wait for the
        model, so a burst of large files keeps a few batches of pixels in memory, not all."""
        with self._room:
            while self._ahead and self._ahead + count > self.max_ahead and not self._closed:
                self._held_back += 1
                self._room.wait(0.5)
                self._held_back -= 1
            self._ahead += count

    def _free_room(self, count: int) -> None:
        with self._room:
            self._ahead -= count
            self._room.notify_all()

    async def features(self, image: np.ndarray) -> FeatureMaps:
        """The score and five feature maps of one preprocessed image."""
        return await self._submit(_Kind.FEATURES, image[None])

    async def render(
        self, features: FeatureMaps, layers: Sequence[int] | None, caption: str
    ) -> list[tuple[str, bytes]]:
        """PNG grids of the chosen layers, drawn in the render thread."""
        from model.render import render_features

        loop = asyncio.get_running_loop()
        return await self._bounded(
            loop.run_in_executor(self._render_pool, render_features, features, layers, caption)
        )

    async def draw(self, function: Callable[..., bytes], *args: Any) -> bytes:
        """Run a drawing function (`model.render`) in the render thread, bounded like `render`."""
        loop = asyncio.get_running_loop()
        return await self._bounded(loop.run_in_executor(self._render_pool, function, *args))

    def _check_running(self) -> None:
        if self._closed or self._thread is None:
            raise WorkerClosed("the model worker is not running")
        if not self._thread.is_alive():
            raise WorkerClosed("the model worker has stopped")

    async def _submit(
        self, kind: _Kind, images: np.ndarray, head: Served | None = None, raw: bool = False
    ) -> Any:
        self._check_running()
        loop = asyncio.get_running_loop()
        job = _Job(kind, images, loop.create_future(), loop, head=head, raw=raw)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise WorkerBusy() from None
        with self._lock:
            self._in_flight += 1
        try:
            return await self._bounded(job.future)
        finally:
            with self._lock:
                self._in_flight -= 1

    # -- the worker thread ------------------------------------------------------------------

    def _run(self) -> None:
        running: list[_Job] = []  # the batch in hand, failed if the thread dies with it
        try:
            while True:
                try:
                    first = self._queue.get(timeout=self._reload_interval)
                except queue.Empty:
                    self._maybe_reload()
                    continue
                if first is None:
                    return
                batch, stop = [first], False
                running = batch
                try:
                    batch, stop = self._gather(first)
                    running = batch
                    self._maybe_reload()
                    self._process(batch)
                except Exception as error:  # a bug: fail this batch's requests, keep serving
                    log.exception("the model worker failed a batch of %d requests", len(batch))
                    _deliver(*(job.outcome(error=error) for job in batch))
                running = []
                if stop:
                    return
        except BaseException:
            log.critical("the model worker thread died", exc_info=True)
            raise
        finally:
            self._fail_waiting(running)

    def _fail_waiting(self, running: list[_Job]) -> None:
        """When the thread ends, for whatever reason: nobody may wait on it forever."""
        left = [job.outcome(error=WorkerClosed("the model worker has stopped")) for job in running]
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                left.append(job.outcome(error=WorkerClosed("the model worker has stopped")))
        _deliver(*left)

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        """`first` plus whatever arrives within `max_wait`, up to `max_batch` images."""
        batch, size = [first], len(first.images)
        if first.kind is not _Kind.CLASSIFY:
            return batch, False
        deadline = time.perf_counter() + self.max_wait
        while size < self.max_batch:
            remaining = deadline - time.perf_counter()
            if self._decoding == 0 and all(job.finish is not None for job in batch):
                # Only classify_bytes requests so far, and none still decoding: nobody is on
                # the way, so waiting would only delay this batch (a lone command, say).
                remaining = 0
            try:
                job = (
                    self._queue.get_nowait()
                    if remaining <= 0
                    else self._queue.get(timeout=remaining)
                )
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
            size += len(job.images)
            if job.kind is not _Kind.CLASSIFY:
                break
        return batch, False

    def _process(self, batch: list[_Job]) -> None:
        classify = [job for job in batch if job.kind is _Kind.CLASSIFY]
        others = [job for job in batch if job.kind is not _Kind.CLASSIFY]
        classifier = self.classifier
        outcomes: list[_Outcome] = []
        decoded_here = sum(len(job.images) for job in classify if job.finish is not None)
        if decoded_here:
            self._free_room(decoded_here)  # their pixels are in this batch now
        own = [job for job in classify if isinstance(job.head, ServerNetwork)]
        classify = [job for job in classify if not isinstance(job.head, ServerNetwork)]
        outcomes += [self._on_own_network(job) for job in own]
        if classify:
            try:
                images = np.concatenate([job.images for job in classify])
                outputs = self._run_network(classifier, images)
            except Exception as error:
                log.exception("classification failed")
                outcomes += [job.outcome(error=error) for job in classify]
            else:
                self._batches += 1
                self._images += len(images)
                self._largest = max(self._largest, len(images))
                start = 0
                for job in classify:
                    mine = {k: v[start : start + len(job.images)] for k, v in outputs.items()}
                    start += len(job.images)
                    try:
                        value = mine if job.raw else self._verdicts(classifier, job.head, mine)
                        outcomes.append(job.outcome(job.finish(value) if job.finish else value))
                    except Exception as error:  # a head that cannot read these outputs
                        log.error("a request's verdicts failed: %s", error)
                        outcomes.append(job.outcome(error=error))
        _deliver(*outcomes)  # one wake-up per event loop for the whole batch
        for job in others:
            try:
                _deliver(job.outcome(classifier.features(job.images[0])))
            except Exception as error:
                log.exception("feature extraction failed")
                _deliver(job.outcome(error=error))

    def _on_own_network(self, job: _Job) -> _Outcome:
        """A request of a server served its own network: run on that network alone."""
        network = job.head
        assert isinstance(network, ServerNetwork)
        try:
            outputs = self._run_network(network.classifier, job.images)
            value = network.classifier.predictions(outputs)
            self._images += len(job.images)
            return job.outcome(job.finish(value) if job.finish else value)
        except Exception as error:
            log.exception("a server's own network failed a request")
            return job.outcome(error=error)

    def _run_network(self, classifier: Classifier, images: np.ndarray) -> Outputs:
        # Run in chunks of max_batch: a single request may carry more images than that.
        chunks = [
            classifier.outputs(images[start : start + self.max_batch])
            for start in range(0, len(images), self.max_batch)
        ]
        return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}

    def _verdicts(
        self, classifier: Classifier, head: Served | None, outputs: Outputs
    ) -> list[Prediction]:
        """`head`'s predictions on `outputs`, or the served model's own: a head learned on
        another network than the one served is refused (one log line per pair)."""
        if isinstance(head, Head):
            try:
                check_backbone(head, classifier.info)
            except HeadError as error:
                served = classifier.info.files.get(TFLITE_FILE)
                if (head.backbone, served) not in self._refused_heads:
                    self._refused_heads.add((head.backbone, served))
                    log.warning("served the default model's verdict instead of a head: %s", error)
            else:
                return head.predictions(outputs)
        return classifier.predictions(outputs)

    def follow(self, folder: Path, loader: Callable[[], Classifier]) -> None:
        """Serve from `folder` from now on: its current model is loaded (by `loader`) at the
        next check, and its later publishes are picked up as before. A model that does not
        load is refused as any bad publish is, and the old one keeps serving."""
        with self._lock:
            self._watch, self._loader = Path(folder), loader
            self._stamp = self._refused = None
            self._next_check = 0.0

    @property
    def folder(self) -> Path | None:
        """The model folder watched for new publishes."""
        return self._watch

    def _maybe_reload(self) -> None:
        with self._lock:  # `follow` changes both at once
            watch, loader = self._watch, self._loader
        if watch is None or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + self._reload_interval
        self._checks += 1
        current = publish_stamp(watch)
        if current is None or current in (self._stamp, self._refused):
            return
        try:
            classifier = loader()
        except Exception as error:  # any failure: keep serving the old model
            self._refused = current
            log.error("refused the new model in %s, still serving the old one: %s", watch, error)
            return
        self._classifier, self._stamp = classifier, current
        self._reloads += 1
        log.info("reloaded the model from %s", watch)


def _deliver(*outcomes: _Outcome) -> None:
    """Hand results to their futures from any thread: one callback per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome.loop, []).append(outcome)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_apply, items)


def _apply(outcomes: list[_Outcome]) -> None:
    """In the futures' event loop: set each result or exception."""
    for outcome in outcomes:
        if outcome.future.done():  # cancelled while waiting
            continue
        if outcome.error is not None:
            outcome.future.set_exception(outcome.error)
        else:
            outcome.future.set_result(outcome.value)
