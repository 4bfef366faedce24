"""What every benchmark shares: the machine's description, timing, statistics, the report
(figures, checks, ratios, an optional JSON copy), the model folder and the test images.

Timing on a shared 2-core machine is noisy, so contenders are measured *interleaved* in one
process (round-robin, alternating the order each round): a burst of load from elsewhere slows
both sides alike, and the ratio stays meaningful even when the absolute times move.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"  # git-ignored: cached images, datasets, the untrained model
DEFAULT_MODEL = REPO / "model" / "default"
PACKAGES = (
    "tensorflow",
    "keras",
    "ai-edge-litert",
    "numpy",
    "pillow",
    "matplotlib",
    "discord.py",
    "aiohttp",
)


class CheckFailed(AssertionError):
    """A correctness check of a benchmark failed: its timings would compare different work."""


# -- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, load, Python and library versions (no heavy imports)."""
    info: dict[str, Any] = {
        "cores_online": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": _cpu_model(),
        "memory_gib": _mem_total_gib(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    for package in PACKAGES:
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def describe_machine(info: dict[str, Any] | None = None) -> str:
    info = info or machine()
    versions = ", ".join(f"{p} {info[p]}" for p in PACKAGES if info.get(p))
    load = " ".join(str(x) for x in info["load_average"])
    return (
        f"{info['cores_usable']} usable cores ({info['cores_online']} online), {info['cpu']}, "
        f"{info['memory_gib']} GiB RAM, load average {load}\n"
        f"Python {info['python']} on {info['platform']}; {versions}"
    )


# -- statistics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Summary of repeated measurements (seconds, or any unit the caller uses)."""

    n: int
    median: float
    p5: float
    p95: float
    q1: float
    q3: float
    minimum: float
    maximum: float
    mean: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        if len(samples) == 0:
            raise ValueError("no samples")
        a = np.asarray(samples, dtype=np.float64)
        p5, q1, median, q3, p95 = np.percentile(a, [5, 25, 50, 75, 95])
        return cls(
            len(a),
            float(median),
            float(p5),
            float(p95),
            float(q1),
            float(q3),
            float(a.min()),
            float(a.max()),
            float(a.mean()),
        )

    def scaled(self, factor: float) -> Stats:
        """The same statistics multiplied by `factor` (e.g. 1e3 for seconds -> ms)."""
        values = {k: v * factor if k != "n" else v for k, v in asdict(self).items()}
        return Stats(**values)

    def inverse(self, numerator: float = 1.0) -> Stats:
        """`numerator / x` of every sample statistic (a rate from durations): order flips."""
        return Stats(
            self.n,
            numerator / self.median,
            numerator / self.p95,
            numerator / self.p5,
            numerator / self.q3,
            numerator / self.q1,
            numerator / self.maximum,
            numerator / self.minimum,
            numerator / self.mean,
        )

    def describe(self, unit: str, digits: int = 2) -> str:
        f = f"{{:.{digits}f}}"
        return (
            f"median {f.format(self.median)} {unit}  "
            f"p5-p95 {f.format(self.p5)}-{f.format(self.p95)}  "
            f"IQR {f.format(self.q1)}-{f.format(self.q3)}  (n={self.n})"
        )


# -- timing -----------------------------------------------------------------------------------


def time_call(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleave(
    contenders: dict[str, Callable[[], object]],
    rounds: int,
    *,
    per_round: dict[str, int] | None = None,
    warmup: int = 2,
    progress: Callable[[int], None] | None = None,
) -> dict[str, list[float]]:
    """Time each contender `per_round[name]` times per round, round after round.

    The order of the contenders alternates between rounds so none always runs right after
    another. Each contender is called `warmup` times first (not timed). Returns seconds.
    """
    per_round = per_round or {}
    names = list(contenders)
    for name in names:
        for _ in range(warmup):
            contenders[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            fn = contenders[name]
            for _ in range(per_round.get(name, 1)):
                samples[name].append(time_call(fn))
        if progress is not None:
            progress(index)
    return samples


def collect() -> None:
    """A full garbage collection, outside the timed regions."""
    gc.collect()


# -- the report -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One figure checked against its target: a ratio (`x`) or an absolute limit."""

    name: str
    value: float
    unit: str
    target: float | None
    better: str  # "higher" (>= target), "lower" (< target) or "at_most" (<= target)
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.better == "higher":
            return self.value >= self.target
        if self.better == "at_most":
            return self.value <= self.target
        return self.value < self.target

    def line(self) -> str:
        if self.unit == "x":  # two decimals near 1x, where they matter
            value = f"{self.value:.2f}x" if self.value < 10 else f"{self.value:.1f}x"
        else:
            value = f"{self.value:.2f} {self.unit}"
        if self.target is None:
            verdict = ""
        else:
            sign = {"higher": ">=", "at_most": "<="}.get(self.better, "<")
            target = (
                f"{self.target:g}{self.unit}"
                if self.unit == "x"
                else f"{self.target:g} {self.unit}"
            )
            verdict = f"  (target {sign} {target}: {'met' if self.met else 'NOT MET'})"
        note = f"  [{self.note}]" if self.note else ""
        return f"{self.name}: {value}{verdict}{note}"


@dataclass
class Report:
    """Collects and prints a benchmark's figures; the outcomes (ratios) are printed last."""

    name: str
    title: str
    info: dict[str, Any] = field(default_factory=machine)
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def header(self, settings: str = "") -> None:
        print(f"== {self.name}: {self.title}", flush=True)
        print(describe_machine(self.info), flush=True)
        if settings:
            print(settings, flush=True)

    def section(self, title: str) -> None:
        print(f"-- {title}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"   note: {text}", flush=True)

    def stats(self, key: str, label: str, stats: Stats, unit: str, digits: int = 2) -> Stats:
        self.figures[key] = {"unit": unit, **asdict(stats)}
        print(f"   {label:<44} {stats.describe(unit, digits)}", flush=True)
        return stats

    def figure(self, key: str, label: str, value: Any, unit: str = "") -> Any:
        self.figures[key] = {"value": value, "unit": unit}
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"   {label:<44} {shown} {unit}".rstrip(), flush=True)
        return value

    def check(self, name: str, ok: bool, detail: str) -> None:
        """Record a correctness check; a failure stops the benchmark, loudly."""
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})
        print(f"   CHECK {name}: {'ok' if ok else 'FAILED'} ({detail})", flush=True)
        if not ok:
            raise CheckFailed(f"{self.name}: {name} failed: {detail}")

    def outcome(
        self,
        name: str,
        value: float,
        *,
        unit: str = "x",
        target: float | None = None,
        better: str = "higher",
        note: str = "",
    ) -> Outcome:
        outcome = Outcome(name, float(value), unit, target, better, note)
        self.outcomes.append(outcome)
        return outcome

    def finish(self, json_path: Path | None = None) -> int:
        """Print the outcomes (the headline ratio is the last one added) and save the JSON."""
        self.info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        elapsed = time.perf_counter() - self.started
        print(
            f"-- results ({elapsed:.0f} s; load average at the end "
            f"{' '.join(str(x) for x in self.info['load_average_end'])})",
            flush=True,
        )
        for outcome in self.outcomes:
            print(f"   {outcome.line()}", flush=True)
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(self.as_dict(elapsed), indent=2) + "\n")
        return 0

    def as_dict(self, elapsed: float | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "machine": self.info,
            "seconds": elapsed,
            "figures": self.figures,
            "checks": self.checks,
            "notes": self.notes,
            "outcomes": [{**asdict(o), "met": o.met, "line": o.line()} for o in self.outcomes],
        }


# -- command line -----------------------------------------------------------------------------


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: --model, --quick, --json."""
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=description)
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model folder (default: model/default if present, else an untrained model "
        "built once into benchmarks/out/; the speed does not depend on the weights)",
    )
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return p


def run_main(report_fn: Callable[[argparse.Namespace], Report], args: argparse.Namespace) -> int:
    """Run a benchmark; a failed check prints a banner and exits 1."""
    try:
        report = report_fn(args)
    except CheckFailed as error:
        print(f"\n!!! BENCHMARK CHECK FAILED: {error}\n", file=sys.stderr, flush=True)
        return 1
    return report.finish(args.json)


# -- the model and the images -----------------------------------------------------------------


def resolve_model(path: Path | None) -> tuple[Path, str]:
    """The model folder to use and a description of where it came from."""
    from model.bundle import model_dir

    if path is not None:
        if not (model_dir(Path(path)) / "model.json").is_file():
            raise SystemExit(f"--model {path}: no model.json there")
        return Path(path), f"--model {path}"
    if (DEFAULT_MODEL / "model.json").is_file():
        return DEFAULT_MODEL, "the shipped model (model/default)"
    untrained = OUT / "untrained-model"
    if not (model_dir(untrained) / "model.json").is_file():
        print(
            "   model/default does not exist yet: building an untrained model (random weights, "
            f"same network) into {untrained.relative_to(REPO)} ...",
            flush=True,
        )
        build_untrained_model(untrained)
    return untrained, "an untrained model (model/default missing; same network, random weights)"


def build_untrained_model(out: Path, seed: int = 0) -> Path:
    """A complete model folder with the seed network's random initial weights (no training)."""
    import keras

    from model.architecture import IMAGE_SIZE, build_model
    from model.bundle import KERAS_FILE, METADATA_FILE, TFLITE_FILE, publish, staging_folder
    from training.export import export_tflite

    keras.utils.set_random_seed(seed)
    model = build_model(seed=seed)
    with staging_folder(out) as staging:
        model.save(staging / KERAS_FILE)
        (staging / TFLITE_FILE).write_bytes(export_tflite(model))
        metadata_ = {
            "name": "jedisith",
            "class_names": ["jedi", "sith"],
            "image_size": list(IMAGE_SIZE),
            "parameters": int(model.count_params()),
            "notes": "untrained (random weights), built by benchmarks._common for timing only",
        }
        (staging / METADATA_FILE).write_text(json.dumps(metadata_, indent=2) + "\n")
        return publish(staging, out)


def sample_pngs(count: int, seed: int = 7) -> list[bytes]:
    """`count` synthetic 200x200 RGB scenes (half Jedi, half Sith) as PNG bytes, cached on disk."""
    folder = OUT / "images" / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for index in range(count):
        path = folder / f"{index:05d}.png"
        if not path.is_file():
            path.write_bytes(draw_png(index, seed))
        images.append(path.read_bytes())
    return images


def draw_png(index: int, seed: int = 7) -> bytes:
    """Image `index` of the benchmark set: a synthetic scene, PNG-encoded."""
    from training.synthetic import LABELS, draw_scene

    label = LABELS[index % 2]
    image = draw_scene(label, np.random.default_rng([seed, index % 2, index]))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def synthetic_dataset(count: int, seed: int = 5) -> Path:
    """A training folder of `count` synthetic images (half each class), generated once."""
    from training.synthetic import generate_dataset

    folder = OUT / "datasets" / f"synthetic-{count}-seed{seed}"
    done = folder / ".complete"
    if not done.is_file():
        jedi = count // 2
        generate_dataset(
            folder, jedi=jedi, sith=count - jedi, seed=seed, workers=os.cpu_count() or 1
        )
        done.write_text("ok\n")
    return folder


def cycle(items: Sequence[Any]) -> Callable[[], Any]:
    """A function returning the items in turn, forever (so repeated calls see different data)."""
    state = {"i": 0}

    def next_item() -> Any:
        item = items[state["i"] % len(items)]
        state["i"] += 1
        return item

    return next_item


def ms(seconds: Iterable[float]) -> list[float]:
    return [s * 1e3 for s in seconds]
