"""Serving 1,000 servers, each with its own model (a head), against one shared model.

Built once per run, in a temporary DATA_DIR: the served network's outputs for `--pool`
synthetic drawings (`training.synthetic`, 200x200), then for each of `--servers` servers a head
fitted with `model.head.fit_head` on a random subset of them (10 to 150 images per class, most
servers few) whose labels the server assigns its own way (the classes swapped in half of the
servers, a fifth of the labels flipped in each), published as the bot publishes it
(`bot.server_models.publish_head`). One more head, fitted on more images than `MAX_BANK`, gives
the largest a server model can be on disk.

Then each condition runs in a fresh process that imports the bot (`bot.__main__.make_worker`:
the worker as the bot configures it, discord.py and SQLAlchemy imported, no gateway): requests
for servers drawn from a Zipf law (`--zipf`, rank k has weight 1/k^s: a few busy servers, many
quiet ones) go at a steady `--concurrency` through the bot's path: `HeadCache.get` in a thread,
then `ModelWorker.classify_bytes([image], head=...)`. Latency is from before the head is
looked up to the reply (decode, network, head). Conditions:

* shared: no server has its own model (the bot's path, `HeadCache.get` finds no `CURRENT`);
* heads: every server its own head, HEAD_CACHE_MB at the bot's default;
* heads, small cache: HEAD_CACHE_MB `--small-cache-mb`, so heads are let go and loaded again;
* cold against warm (in the heads process, after its run): one request at a time, alternately
  the busiest server (its head held) and one of the `--cold-servers` servers left out of the
  Zipf draw (never asked before: its head read from disk).

Peak RSS is the child's VmHWM at its end. The images are `--images drawings` (the synthetic
200x200 drawings: network-bound, where a head's own cost shows most) or `uploads` (3 MP phone
JPEGs, 1080p PNG screenshots and WebP memes from `benchmarks._uploads_data`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import OUT, Report, Stats, parser, resolve_model, run_main, sample_pngs

TARGET_RATIO = 1.3  # median latency, heads / shared
TARGET_RSS_MB = 350.0
TARGET_DISK_MB = 1.0
CHILD_FLAG = "--child"
FIRST_GUILD = 10**17  # server ids shaped like Discord's snowflakes
PER_CLASS = (10, 20, 50, 100, 150)  # images per class a server labelled ...
PER_CLASS_WEIGHTS = (0.35, 0.3, 0.2, 0.1, 0.05)  # ... and how often
UPLOAD_KINDS = ("3 MP JPEG", "1080p PNG screenshot", "WebP meme")
MB = 1e6


def guild_id(index: int) -> int:
    return FIRST_GUILD + index


# -- building the servers' models (in the parent) ---------------------------------------------


def feature_pool(model_dir: Path, count: int) -> tuple[dict[str, np.ndarray], np.ndarray, str]:
    """The served network's outputs for `count` synthetic drawings, their labels (0/1) and the
    network's hash (the heads' backbone)."""
    from model.bundle import TFLITE_FILE
    from model.preprocess import load_image
    from model.runtime import Classifier

    classifier = Classifier.load(model_dir, "litert")
    images = np.stack([load_image(png) for png in sample_pngs(count, seed=11)])
    chunks = [classifier.outputs(images[i : i + 32]) for i in range(0, len(images), 32)]
    outputs = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
    backbone = classifier.info.files[TFLITE_FILE]
    return outputs, np.arange(count) % 2, backbone


def server_labels(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """One server's own labels for these images: classes swapped in half of the servers, a
    fifth flipped at random, at least 2 of each class."""
    own = labels ^ int(rng.random() < 0.5)
    flip = rng.random(len(own)) < 0.2
    own = np.where(flip, 1 - own, own)
    own[:2], own[2:4] = 0, 1
    return own


def build_servers(
    data_dir: Path, pool: dict[str, np.ndarray], labels: np.ndarray, backbone: str, count: int
) -> dict:
    """Fit and publish `count` servers' heads (and one largest) under `data_dir`; the figures."""
    from bot.server_models import publish_head, server_folder
    from model.head import MAX_BANK, fit_head

    rng = np.random.default_rng(2024)
    per_class_pool = int(np.bincount(labels).min())
    fit_s, publish_s, disk, images = [], [], [], []
    names = ("jedi", "sith")
    for index in range(count):
        per_class = min(per_class_pool, int(rng.choice(PER_CLASS, p=PER_CLASS_WEIGHTS)))
        chosen = np.concatenate(
            [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in (0, 1)]
        )
        features = {name: values[chosen] for name, values in pool.items()}
        start = time.perf_counter()
        head = fit_head(
            features, server_labels(rng, labels[chosen]), names, backbone=backbone, seed=index
        )
        fit_s.append(time.perf_counter() - start)
        folder = server_folder(data_dir, guild_id(index))
        start = time.perf_counter()
        publish_head(head, folder)
        publish_s.append(time.perf_counter() - start)
        disk.append(folder_bytes(folder))
        images.append(len(chosen))
    # The largest model a server can have: more labelled images than the reference keeps.
    repeats = MAX_BANK // len(labels) + 2
    noise = np.random.default_rng(1)
    big = {
        name: np.concatenate([v + noise.normal(0, 0.01, v.shape) for _ in range(repeats)])
        for name, v in pool.items()
    }
    big_labels = server_labels(noise, np.tile(labels, repeats))
    head = fit_head(big, big_labels, names, backbone=backbone, seed=0)
    folder = server_folder(data_dir, guild_id(count + 1))
    publish_head(head, folder)
    return {
        "fit_s": fit_s,
        "publish_s": publish_s,
        "disk_bytes": disk,
        "images": images,
        "largest_images": len(big_labels),
        "largest_bank": int(head.bank.shape[0]),
        "largest_bytes": folder_bytes(folder),
    }


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under `folder` (a server's versions, CURRENT and all)."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


# -- serving (in a fresh child process per condition) -----------------------------------------


def zipf_plan(servers: int, requests: int, exponent: float, seed: int) -> list[int]:
    """The server index of each request: rank k drawn with weight 1/k^exponent, the ranks
    given to servers in a random order (the busiest is not always server 0)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, servers + 1) ** exponent
    ranks = rng.choice(servers, size=requests, p=weights / weights.sum())
    return rng.permutation(servers)[ranks].tolist()


def request_images(kind: str) -> list[bytes]:
    """The files the requests send, in turn."""
    if kind == "drawings":
        return sample_pngs(32, seed=7)
    from benchmarks._uploads_data import generated

    return [upload.data for upload in generated(OUT / "uploads", 3, 0, UPLOAD_KINDS)]


def status_kb() -> dict[str, int]:
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


async def serve(args: argparse.Namespace) -> dict:
    """One condition, in this fresh process: the bot's worker and head cache, the Zipf load,
    then (with heads) the cold/warm pairs."""
    from bot.__main__ import make_worker
    from bot.server_models import MB as MIB
    from bot.server_models import HeadCache
    from bot.settings import Settings
    from model.runtime import Prediction

    settings = Settings(
        token="benchmark",
        model_path=args.model,
        data_dir=args.data_dir,
        **({"head_cache_mb": args.cache_mb} if args.cache_mb else {}),
    )
    worker = make_worker(settings)
    await asyncio.to_thread(worker.start)
    heads = HeadCache(settings.data_dir, settings.head_cache_mb * MIB)
    files = request_images(args.images)
    for size in range(1, args.concurrency + 1):  # LiteRT resizes its tensors per batch size
        await asyncio.gather(*(worker.classify_bytes([files[i]]) for i in range(size)))
    rss_ready = status_kb()["VmRSS"]

    async def ask(index: int, number: int) -> tuple[float, object, object]:
        start = time.perf_counter()
        head = await asyncio.to_thread(heads.get, guild_id(index))
        (outcome,) = await worker.classify_bytes([files[number % len(files)]], head=head)
        return time.perf_counter() - start, head, outcome

    # The last `--cold-servers` servers are asked nothing before the cold/warm pairs.
    plan = zipf_plan(args.servers - args.cold_servers, args.requests, args.zipf, args.seed)
    latencies: list[float] = []
    applied = wrong = 0
    queue = iter(enumerate(plan))

    async def client() -> None:
        nonlocal applied, wrong
        for number, index in queue:
            seconds, head, outcome = await ask(index, number)
            latencies.append(seconds)
            if not isinstance(outcome, Prediction):
                wrong += 1
            elif head is not None and outcome.threshold == head.threshold:
                applied += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - start
    figures = {
        "latency_s": latencies,
        "elapsed_s": elapsed,
        "rss_ready_kb": rss_ready,
        "distinct_servers": len(set(plan)),
        "busiest_share": max(np.bincount(plan)) / len(plan),
        "applied": applied,
        "not_predictions": wrong,
        "loads": heads.loads,
        "held": len(heads.held()),
        "held_bytes": heads.size,
        "cache_mb": settings.head_cache_mb,
        "batches": worker.stats().batches,
    }
    if args.cold:
        cold = list(range(args.servers - args.cold_servers, args.servers))
        busiest = int(np.bincount(plan).argmax())
        figures["cold_s"], figures["warm_s"] = [], []
        for number, index in enumerate(cold):
            figures["warm_s"].append((await ask(busiest, number))[0])
            seconds, head, _ = await ask(index, number)
            if head is None:
                raise RuntimeError(f"server {index} was served no head")
            figures["cold_s"].append(seconds)
    figures["rss_end_kb"] = status_kb()["VmRSS"]
    figures["hwm_kb"] = status_kb()["VmHWM"]
    await worker.aclose()
    return figures


def run_child(
    args: argparse.Namespace, model_dir: Path, data_dir: Path, cache_mb: int, cold: int
) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.servers",
        CHILD_FLAG,
        *("--model", str(model_dir), "--data-dir", str(data_dir)),
        *("--cache-mb", str(cache_mb), "--servers", str(args.servers)),
        *("--requests", str(args.requests), "--concurrency", str(args.concurrency)),
        *("--zipf", str(args.zipf), "--seed", str(args.seed), "--images", args.images),
        *("--cold-servers", str(args.cold_servers), "--cold", str(cold)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise SystemExit(f"the servers child failed ({done.returncode}):\n{tail}")
    return json.loads(lines[-1])


# -- the report (in the parent) ---------------------------------------------------------------


def run(args: argparse.Namespace) -> Report:
    report = Report("servers", "1,000 servers each with its own model vs one shared model")
    model_dir, origin = resolve_model(args.model)
    if args.quick:
        args.servers, args.requests, args.pool = min(args.servers, 30), 240, min(args.pool, 96)
        args.cold_servers, args.small_cache_mb = min(args.cold_servers, 5), 1
    report.header(
        f"model: {origin}\n{args.servers:,} servers; {args.requests:,} requests per condition "
        f"at concurrency {args.concurrency}, servers drawn by Zipf with exponent {args.zipf}; "
        f"images: {args.images}; HEAD_CACHE_MB default and {args.small_cache_mb}; "
        "MB = 10^6 bytes, peak = VmHWM of a fresh process per condition"
    )
    with tempfile.TemporaryDirectory(prefix="servers-bench-") as tmp:
        heads_dir, shared_dir = Path(tmp) / "heads", Path(tmp) / "shared"
        shared_dir.mkdir()
        report.section(f"building {args.servers:,} servers' heads on {args.pool} drawings")
        start = time.perf_counter()
        pool, labels, backbone = feature_pool(model_dir, args.pool)
        report.figure("features_s", "features of the pool", time.perf_counter() - start, "s")
        built = build_servers(heads_dir, pool, labels, backbone, args.servers)
        report.stats("fit_ms", "fitting one head", Stats.of(built["fit_s"]).scaled(1e3), "ms")
        report.stats(
            "publish_ms", "publishing one head", Stats.of(built["publish_s"]).scaled(1e3), "ms"
        )
        report.stats("images", "labelled images per server", Stats.of(built["images"]), "", 0)
        disk = Stats.of(built["disk_bytes"]).scaled(1 / 1e3)
        report.stats("disk_kb", "disk per server model", disk, "kB", 1)
        report.figure(
            "largest_kb",
            f"largest ({built['largest_images']} images, bank {built['largest_bank']})",
            built["largest_bytes"] / 1e3,
            "kB",
        )
        conditions = {
            "shared": (shared_dir, 0),
            "heads": (heads_dir, 0),
            "heads_small": (heads_dir, args.small_cache_mb),
        }
        results = {}
        for name, (data_dir, cache_mb) in conditions.items():
            report.section(
                {
                    "shared": "one shared model (no server has a head)",
                    "heads": "every server its own head, HEAD_CACHE_MB default",
                    "heads_small": f"every server its own head, HEAD_CACHE_MB {cache_mb}",
                }[name]
            )
            result = results[name] = run_child(
                args, model_dir, data_dir, cache_mb, int(name == "heads")
            )
            describe(report, name, result)
    shared, heads, small = results["shared"], results["heads"], results["heads_small"]
    report.check(
        "every reply a verdict",
        all(r["not_predictions"] == 0 for r in results.values()),
        ", ".join(f"{n}: {r['not_predictions']} not" for n, r in results.items()),
    )
    report.check(
        "each server's head applied to its requests",
        heads["applied"] == small["applied"] == args.requests and shared["applied"] == 0,
        f"heads {heads['applied']}, small cache {small['applied']}, shared {shared['applied']}",
    )
    median = {n: float(np.median(r["latency_s"])) for n, r in results.items()}
    p95 = {n: float(np.percentile(r["latency_s"], 95)) for n, r in results.items()}
    report.outcome(
        "disk per server model, largest",
        built["largest_bytes"] / MB,
        unit="MB",
        target=TARGET_DISK_MB,
        better="at_most",
    )
    report.outcome(
        "disk per server model, median",
        float(np.median(built["disk_bytes"])) / MB,
        unit="MB",
        target=TARGET_DISK_MB,
        better="at_most",
    )
    report.outcome("fitting a head, median", float(np.median(built["fit_s"])) * 1e3, unit="ms")
    report.outcome("cold server's first reply, median", np.median(heads["cold_s"]) * 1e3, unit="ms")
    report.outcome(
        "cold first reply / warm reply, median",
        np.median(heads["cold_s"]) / np.median(heads["warm_s"]),
    )
    for name, label in (
        ("shared", "shared model"),
        ("heads", "heads"),
        ("heads_small", "heads, small cache"),
    ):
        report.outcome(
            f"peak RSS, {label}",
            results[name]["hwm_kb"] / 1e3 * 1.024,
            unit="MB",
            target=TARGET_RSS_MB if name != "shared" else None,
            better="at_most",
        )
    report.outcome("p95 latency, heads / shared", p95["heads"] / p95["shared"])
    report.outcome(
        "median latency, heads (small cache) / shared",
        median["heads_small"] / median["shared"],
        target=TARGET_RATIO,
        better="at_most",
    )
    report.outcome(
        "median latency, heads / shared",
        median["heads"] / median["shared"],
        target=TARGET_RATIO,
        better="at_most",
    )
    return report


def describe(report: Report, name: str, result: dict) -> None:
    """Print one condition's figures."""
    latency = Stats.of(result["latency_s"]).scaled(1e3)
    report.stats(f"{name}_latency_ms", "decode-to-reply latency", latency, "ms", 1)
    report.figure(
        f"{name}_rate", "requests per second", len(result["latency_s"]) / result["elapsed_s"], "/s"
    )
    report.figure(f"{name}_servers", "distinct servers asked", result["distinct_servers"])
    report.figure(f"{name}_busiest", "busiest server's share", result["busiest_share"])
    report.figure(f"{name}_loads", "heads read from disk", result["loads"])
    report.figure(
        f"{name}_held",
        "heads held at the end",
        f"{result['held']} ({result['held_bytes'] / 1e6:.2f} MB of {result['cache_mb']} MiB)",
    )
    report.figure(
        f"{name}_rss_ready_mb", "RSS once serving", result["rss_ready_kb"] * 1.024 / 1e3, "MB"
    )
    report.figure(f"{name}_rss_end_mb", "RSS at the end", result["rss_end_kb"] * 1.024 / 1e3, "MB")
    report.figure(f"{name}_hwm_mb", "peak RSS", result["hwm_kb"] * 1.024 / 1e3, "MB")
    if "cold_s" in result:
        report.stats(
            f"{name}_cold_ms",
            "cold server's first reply",
            Stats.of(result["cold_s"]).scaled(1e3),
            "ms",
            1,
        )
        report.stats(
            f"{name}_warm_ms",
            "warm server's reply (alternating)",
            Stats.of(result["warm_s"]).scaled(1e3),
            "ms",
            1,
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = parser("servers", __doc__.splitlines()[0])
    p.add_argument("--servers", type=int, default=1000, help="servers with a head (1000)")
    p.add_argument("--requests", type=int, default=2000, help="requests per condition (2000)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    p.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent over servers (1.1)")
    p.add_argument("--pool", type=int, default=320, help="drawings the heads are fitted on (320)")
    p.add_argument("--small-cache-mb", type=int, default=2, help="the small HEAD_CACHE_MB (2)")
    p.add_argument("--cold-servers", type=int, default=30, help="cold/warm pairs (30)")
    p.add_argument("--images", choices=("drawings", "uploads"), default="drawings")
    p.add_argument("--seed", type=int, default=0)
    if argv[:1] == [CHILD_FLAG]:
        p.add_argument("--data-dir", type=Path, required=True)
        p.add_argument("--cache-mb", type=int, required=True, help="0: the bot's default")
        p.add_argument("--cold", type=int, default=0, help="1: measure the cold/warm pairs")
        args = p.parse_args(argv[1:])
        print(json.dumps(asyncio.run(serve(args))), flush=True)
        return 0
    return run_main(run, p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
