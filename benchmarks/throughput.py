"""Throughput: a burst of 256 images through the bot's `ModelWorker`, against one at a time.

* ours, burst: 256 PNGs (200x200) submitted at once, `asyncio.gather` of 256
  `worker.classify_bytes([png])`, with the bot's worker settings (batches of up to 32, 5 ms
  wait, 2 decode threads). Meanwhile a task sleeping 5 ms in a loop records how late it
  wakes: the event loop's lag, which is what delays heartbeats and other users' commands.
* ours, one at a time: `load_image` + `Classifier.scores` per image, sequentially, on a
  LiteRT classifier of its own (always batch 1: the best case for this baseline).
* notebook: `notebook_score` (PIL, `tf.image.resize`, `model.predict`) per image, measured on
  the first 32 images of the burst each round and scaled to 256 (it is linear per image).

Each round runs all three, so machine noise hits them alike. Our two run in a child process
that imports what the bot imports (no TensorFlow), driven round by round; the notebook's in
this one. Every caller's score in the burst is checked against the one-at-a-time score of
the same image.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks._common import (
    OUT,
    REPO,
    Report,
    Stats,
    parser,
    resolve_model,
    run_main,
    sample_pngs,
)

TARGET_NOTEBOOK = 30.0
TARGET_SEQUENTIAL = 1.5
TARGET_LAG_MS = 20.0
LAG_PERIOD = 0.005
NOTEBOOK_SUBSET = 32


class LagMonitor:
    """A task that sleeps `period` seconds in a loop and records how late each wake-up is.

    For each wake-up it also records the CPU time the event-loop thread used meanwhile: a
    late wake-up with little CPU means the thread was waiting (for the GIL or for a core),
    not running callbacks.
    """

    def __init__(self, period: float = LAG_PERIOD) -> None:
        self.period = period
        self.lags: list[float] = []
        self.busy: list[float] = []  # event-loop thread CPU seconds during each interval
        self._task: asyncio.Task[None] | None = None
        self._running = False

    async def _loop(self) -> None:
        while self._running:
            start, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(self.period)
            self.lags.append(time.perf_counter() - start - self.period)
            self.busy.append(time.thread_time() - cpu)

    @property
    def worst_busy(self) -> float:
        """Loop-thread CPU in the interval of the latest wake-up."""
        if not self.lags:
            return 0.0
        return self.busy[max(range(len(self.lags)), key=self.lags.__getitem__)]

    async def __aenter__(self) -> LagMonitor:
        self._running = True
        self._task = asyncio.create_task(self._loop())
        await asyncio.sleep(0)  # let it start sleeping
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._running = False
        assert self._task is not None
        await self._task

    @property
    def worst(self) -> float:
        return max(self.lags, default=0.0)


async def burst(worker, pngs: list[bytes]) -> tuple[float, LagMonitor, list, float]:
    """Submit every image at once; return seconds, the lag monitor, the results and the
    event-loop thread's CPU seconds (its own work, whatever else runs on the machine)."""
    async with LagMonitor() as monitor:
        cpu = time.thread_time()
        start = time.perf_counter()
        results = await asyncio.gather(*(worker.classify_bytes([png]) for png in pngs))
        elapsed = time.perf_counter() - start
        cpu = time.thread_time() - cpu
    return elapsed, monitor, results, cpu


def sequential(classifier, pngs: list[bytes]) -> np.ndarray:
    """Our backend one image at a time: decode, score, next."""
    from model.preprocess import load_image

    return np.array([classifier.scores([load_image(png)])[0] for png in pngs])


def make_worker(model_dir, args: argparse.Namespace):
    """A `ModelWorker` configured as the bot configures it (or as the options say)."""
    import functools

    from bot.settings import Settings
    from model.runtime import Classifier
    from model.worker import ModelWorker

    defaults = Settings(token="benchmark")
    batch = args.batch or defaults.batch_size
    wait_ms = defaults.batch_wait_ms if args.wait_ms is None else args.wait_ms
    worker = ModelWorker(
        functools.partial(Classifier.load, model_dir, "litert", num_threads=args.litert_threads),
        max_batch=batch,
        max_wait=wait_ms / 1000,
        queue_size=max(defaults.queue_size, args.images),
        **({"decode_threads": args.decode_threads} if args.decode_threads else {}),
    )
    settings = (
        f"max_batch {batch}, max_wait {wait_ms:g} ms, queue {max(defaults.queue_size, args.images)}"
        f", decode threads {args.decode_threads or 'default'}, "
        f"LiteRT threads {args.litert_threads or 'default'}"
    )
    return worker, settings


def tuning_args(args: argparse.Namespace) -> list[str]:
    """The worker options, as command-line arguments for the child process."""
    out = ["--images", str(args.images)]
    for name in ("batch", "wait_ms", "decode_threads", "litert_threads"):
        value = getattr(args, name)
        if value is not None:
            out += [f"--{name.replace('_', '-')}", str(value)]
    out.append("--gc-freeze" if getattr(args, "gc_freeze", True) else "--no-gc-freeze")
    return out


async def child(args: argparse.Namespace) -> None:
    """Our side, in a process that imports what the bot imports (no TensorFlow).

    Protocol on stdin/stdout: it prints one `@@` + JSON line when ready, then for each `round`
    line it reads runs one burst and one one-at-a-time pass and prints the figures.
    """
    from model.runtime import Classifier

    pngs = sample_pngs(args.images)
    worker, settings = make_worker(args.model, args)
    await asyncio.to_thread(worker.start)
    single = Classifier.load(args.model, "litert", num_threads=args.litert_threads)
    # Warm up both paths (the first batches of each size resize LiteRT's tensors).
    expected = sequential(single, pngs)
    await burst(worker, pngs)
    if args.gc_freeze:
        gc.collect()
        gc.freeze()  # as the bot does once started (bot/client.py setup_hook)
        settings += f", gc.freeze() after start-up ({gc.get_freeze_count()} objects)"
    print("@@" + json.dumps({"settings": settings}), flush=True)
    while sys.stdin.readline().strip() == "round":
        before = worker.stats()
        gen2 = gc.get_stats()[2]["collections"]
        elapsed, monitor, results, cpu = await burst(worker, pngs)
        gen2 = gc.get_stats()[2]["collections"] - gen2
        batches = worker.stats().batches - before.batches
        scores = np.array([r[0].score for r in results])
        start = time.perf_counter()
        sequential(single, pngs)
        seq = time.perf_counter() - start
        figures = {
            "burst_s": elapsed,
            "lags": monitor.lags,
            "worst_busy": monitor.worst_busy,
            "loop_cpu": cpu,
            "batches": batches,
            "largest_batch": worker.stats().largest_batch,
            "gen2_collections": gen2,
            "max_diff": float(np.max(np.abs(scores - expected))),
            "sequential_s": seq,
        }
        print("@@" + json.dumps(figures), flush=True)
    await worker.aclose()


class Child:
    """The child process running our side, driven round by round."""

    def __init__(self, model_dir, args: argparse.Namespace) -> None:
        log = OUT / "logs" / "throughput-child.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log, "wb")  # noqa: SIM115 - closed in close()
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
        )
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "benchmarks.throughput", "--child"),
                *("--model", str(model_dir), *tuning_args(args)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=REPO,
            env=env,
        )
        self.ready = self._read()

    def _read(self) -> dict:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
        raise RuntimeError(f"the throughput child process died; see {self._log.name}")

    def round(self) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write("round\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        self._log.close()


def measure(args: argparse.Namespace, report: Report, model_dir) -> None:
    from benchmarks._notebook import load_keras_model, notebook_score

    pngs = sample_pngs(args.images)
    subset = pngs[:NOTEBOOK_SUBSET]
    ours = Child(model_dir, args)
    keras_model = load_keras_model(model_dir)
    for png in subset[:3]:  # predict builds its pipeline on the first calls
        notebook_score(keras_model, png)
    report.note(f"worker: {ours.ready['settings']}")
    report.note(
        "ours runs in a child process that imports what the bot imports (no TensorFlow): with "
        "TensorFlow and a Keras model in the same process, its garbage collections (seen: "
        "270 ms) would show as event-loop lag the bot never has"
    )
    report.note(
        f"notebook measured on {len(subset)} of the {len(pngs)} images each round, scaled to "
        f"{len(pngs)} (one predict per image: the time is linear in the number of images)"
    )
    rounds = args.rounds or (2 if args.quick else 5)

    report.section(f"timing: {rounds} rounds, each: burst, one at a time, notebook subset")
    burst_s, seq_s, nb_s, lags, round_worst, loop_cpu, worst_busy = [], [], [], [], [], [], []
    largest, worst_diff = 0, 0.0
    try:
        for index in range(rounds):
            figures = ours.round()
            worst_diff = max(worst_diff, figures["max_diff"])
            burst_s.append(figures["burst_s"])
            seq_s.append(figures["sequential_s"])
            lags.extend(figures["lags"])
            round_worst.append(max(figures["lags"], default=0.0))
            loop_cpu.append(figures["loop_cpu"])
            worst_busy.append(figures["worst_busy"])
            largest = max(largest, figures["largest_batch"])
            start = time.perf_counter()
            for png in subset:
                notebook_score(keras_model, png)
            nb_s.append((time.perf_counter() - start) * len(pngs) / len(subset))
            batches = figures["batches"]
            print(
                f"   round {index + 1}: burst {burst_s[-1] * 1e3:.0f} ms in {batches} batches "
                f"(mean {len(pngs) / max(batches, 1):.1f} images), worst lag "
                f"{round_worst[-1] * 1e3:.1f} ms (loop busy {worst_busy[-1] * 1e3:.1f} ms of it, "
                f"{figures['gen2_collections']} full GCs), loop CPU {loop_cpu[-1] * 1e3:.0f} ms; "
                f"one at a time {seq_s[-1] * 1e3:.0f} ms; "
                f"notebook (scaled) {nb_s[-1] * 1e3:.0f} ms",
                flush=True,
            )
    finally:
        ours.close()
    report.check(
        "every caller gets its own image's score",
        worst_diff <= 1e-4,
        f"{rounds} bursts of {len(pngs)}: largest difference between a caller's score and the "
        f"one-at-a-time score of its image {worst_diff:.2g} (tolerance 1e-4)",
    )

    n = len(pngs)
    report.section(f"images per second ({n} images; spread over rounds)")
    nb = report.stats(
        "notebook_img_s",
        "notebook, one predict per image",
        Stats.of([n / s for s in nb_s]),
        "img/s",
        1,
    )
    seq = report.stats(
        "sequential_img_s", "ours, one at a time", Stats.of([n / s for s in seq_s]), "img/s", 1
    )
    bur = report.stats(
        "burst_img_s",
        "ours, burst through ModelWorker",
        Stats.of([n / s for s in burst_s]),
        "img/s",
        1,
    )
    report.section("event-loop lag during the bursts (5 ms sleeper)")
    lag_stats = report.stats("lag_ms", "lag per wake-up", Stats.of([x * 1e3 for x in lags]), "ms")
    report.stats(
        "worst_lag_per_round_ms",
        "worst lag per burst",
        Stats.of([x * 1e3 for x in round_worst]),
        "ms",
    )
    report.stats(
        "worst_lag_busy_ms",
        "  loop-thread CPU during that worst wake-up",
        Stats.of([x * 1e3 for x in worst_busy]),
        "ms",
    )
    report.stats(
        "loop_cpu_ms",
        "event-loop thread CPU per burst",
        Stats.of([x * 1e3 for x in loop_cpu]),
        "ms",
        1,
    )
    report.figure("largest_batch", "largest batch", largest, "images")

    report.outcome(
        "worst event-loop lag", lag_stats.maximum, unit="ms", target=TARGET_LAG_MS, better="lower"
    )
    report.outcome(
        "burst / one at a time (medians)", bur.median / seq.median, target=TARGET_SEQUENTIAL
    )
    report.outcome("burst / notebook (medians)", bur.median / nb.median, target=TARGET_NOTEBOOK)


def run(args: argparse.Namespace) -> Report:
    report = Report("throughput", f"{args.images} images at once through the bot's ModelWorker")
    model_dir, origin = resolve_model(args.model)
    report.header(f"model: {origin}")
    measure(args, report, model_dir)
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("throughput", __doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=None, help="default 5 (2 with --quick)")
    p.add_argument("--images", type=int, default=256, help="images per burst (default 256)")
    p.add_argument("--batch", type=int, default=None, help="worker max_batch (default: bot's)")
    p.add_argument("--wait-ms", type=float, default=None, help="worker max_wait (bot's default)")
    p.add_argument("--decode-threads", type=int, default=None, help="decode pool size")
    p.add_argument("--litert-threads", type=int, default=None, help="LiteRT num_threads")
    p.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="call gc.freeze() in our process after start-up, as the bot does (default: on)",
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        asyncio.run(child(args))
        return 0
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
