"""`python -m benchmarks` (`make bench`): run every benchmark, each in a fresh process, then
print a summary of every outcome against its target.

`learning` (the learning curve: about 20 minutes of training), `heads` (a server's head against
training the network, 8 minutes), `asking` (asking for labels against labelling at random, 11
minutes, most of it cropping the photographs), `training_memory` (memory and
speed of the in-memory and streamed training paths at 2,000 and 20,000 images) and `gpu` (for a
machine with a GPU) run only when named in `--only`: `python -m benchmarks --only learning`, or
`python -m benchmarks.learning`.

Each benchmark runs as `python -m benchmarks.NAME` so imports, thread pools and memory of one
do not leak into the next. Exit code 1 if a benchmark failed (a correctness check or a crash);
targets not met are reported, not errors: timings on a shared machine move.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import OUT, describe_machine, resolve_model

# Cheapest first; the ones that start bots or train last.
BENCHMARKS = (
    "costs",
    "gate",
    "dataset_scale",
    "latency",
    "throughput",
    "render",
    "why",
    "ood",
    "memory",
    "e2e",
    "soak",
    "uploads",
    "proxy",
    "servers",
    "hostile",
    "training",
    "training_beside",
    "training_memory",
    "learning",
    "heads",
    "neither",
    "asking",
    "gpu",
)
USES_MODEL = {
    "costs",
    "latency",
    "throughput",
    "render",
    "why",
    "ood",
    "memory",
    "e2e",
    "soak",
    "uploads",
    "proxy",
    "servers",
    "hostile",
    "training_beside",
    "gpu",
}
# Too long for every run (training_memory: 22,000 images to generate and decode); gpu: only
# where a GPU is.
ONLY_WHEN_NAMED = {"learning", "heads", "asking", "gpu", "training_memory"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions (a few minutes)")
    p.add_argument("--model", type=Path, default=None, help="model folder for all benchmarks")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, default=None, metavar="NAME")
    p.add_argument("--skip", nargs="+", choices=BENCHMARKS, default=(), metavar="NAME")
    p.add_argument(
        "--json-dir",
        type=Path,
        default=OUT / "results",
        help="where each benchmark's figures go as NAME.json (default benchmarks/out/results)",
    )
    args = p.parse_args(argv)
    default = [b for b in BENCHMARKS if b not in ONLY_WHEN_NAMED]
    chosen = [b for b in (args.only or default) if b not in args.skip]

    print(f"== python -m benchmarks{' --quick' if args.quick else ''}: {', '.join(chosen)}")
    print(describe_machine(), flush=True)
    model_args: list[str] = []
    if USES_MODEL & set(chosen):
        model_dir, origin = resolve_model(args.model)
        print(f"model: {origin} ({model_dir})", flush=True)
        model_args = ["--model", str(model_dir)]

    args.json_dir.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    summaries: list[tuple[str, list[dict], float]] = []
    started = time.perf_counter()
    for name in chosen:
        json_path = args.json_dir / f"{name}.json"
        json_path.unlink(missing_ok=True)
        command = [sys.executable, "-m", f"benchmarks.{name}", "--json", str(json_path)]
        command += model_args if name in USES_MODEL else []
        command += ["--quick"] if args.quick else []
        print(f"\n$ {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command)
        seconds = time.perf_counter() - start
        if code != 0 or not json_path.is_file():
            failed.append(name)
            summaries.append((name, [], seconds))
            continue
        summaries.append((name, json.loads(json_path.read_text())["outcomes"], seconds))

    print(f"\n== summary ({time.perf_counter() - started:.0f} s)")
    for name, outcomes, seconds in summaries:
        if name in failed:
            print(f"{name} ({seconds:.0f} s): FAILED (see its output above)")
            continue
        print(f"{name} ({seconds:.0f} s):")
        for outcome in outcomes:
            print(f"   {outcome['line']}")
    missed = [
        f"{name}: {o['name']}"
        for name, outcomes, _ in summaries
        for o in outcomes
        if o["met"] is False
    ]
    print(f"targets not met: {len(missed)}" + "".join(f"\n   {m}" for m in missed))
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
