"""The bot's reply latency while a training runs beside it: idle, nice 0, nice 10, one thread.

`python -m bot` (LiteRT, cooldown off) against a local Discord-compatible server, as in the e2e
benchmark; `!jedisith` with the playground's six Jedi and Sith samples in turn, one posted every
`--period` seconds whatever the replies do (a steady pace, not one after another). Latency:
from posting to the reply reaching the server. Conditions, all in the same run:

* idle: no training running (the trainers below exist but are stopped, SIGSTOP);
* nice 0: `python -m training DATA --out TMP --epochs 100000 --quiet` at normal priority;
* nice 10: the same under `nice -n 10`, the priority the bot's trainer gives itself
  (`training.retrain --nice 10`, every thread);
* nice 10, 1 thread (unless `--no-one-thread`): the same with `TF_NUM_INTRAOP_THREADS=1
  TF_NUM_INTEROP_THREADS=1`, what `training.retrain --threads 1` asks through
  `tf.config.threading`.

Each trainer is started alone and left to finish its first epoch (so TensorFlow has traced its
step and trains at its steady pace), then stopped. The commands go in blocks of `--block`; for
each block one trainer is resumed (SIGCONT) a second before the block and stopped after it, the
conditions taking turns round by round, order alternating, so a burst of load from elsewhere
hits all of them. Also measured per condition, from /proc: the CPU the trainer, the bot, this
process (the local server and its client) and everything else on the machine used while the
commands ran (cores), and how many of the trainer's threads were busy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._common import (
    OUT,
    REPO,
    Report,
    Stats,
    ms,
    parser,
    resolve_model,
    run_main,
    synthetic_dataset,
)

SAMPLES = REPO / "playground" / "samples"
SAMPLE_NAMES = ("jedi-1.jpg", "jedi-2.jpg", "jedi-3.jpg", "sith-1.jpg", "sith-2.jpg", "sith-3.jpg")
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
TICKS = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT = 300.0
SETTLE = 1.0  # seconds between resuming a trainer and the block's first command
EPOCHS = 100_000  # the trainers never finish on their own; they are killed at the end


@dataclass(frozen=True)
class Condition:
    name: str
    label: str
    nice: int | None = None  # None: no trainer
    env: dict[str, str] = field(default_factory=dict)

    @property
    def trains(self) -> bool:
        return self.nice is not None


IDLE = Condition("idle", "idle (trainers stopped)")
NICE0 = Condition("nice0", "training beside, nice 0", 0)
NICE10 = Condition("nice10", "training beside, nice 10", 10)
NICE10_1T = Condition("nice10_1thread", "training beside, nice 10, TF 1 thread", 10, ONE_THREAD)


def conditions(one_thread: bool = True) -> list[Condition]:
    return [IDLE, NICE0, NICE10, *([NICE10_1T] if one_thread else [])]


def schedule(names: list[str], rounds: int) -> list[list[str]]:
    """The order of the conditions in each round: alternating, as `interleave` does."""
    return [names if i % 2 == 0 else names[::-1] for i in range(rounds)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of every thread of `pid` so far (children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def thread_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of `pid` so far."""
    seconds = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/task/{task}/stat").read_text().rsplit(")", 1)[1].split()
            seconds[int(task)] = (int(fields[11]) + int(fields[12])) / TICKS
    return seconds


def busy_threads(before: dict[int, float], after: dict[int, float], wall: float) -> int:
    """Threads that used at least a tenth of a core between the two snapshots."""
    return sum(1 for tid, t in after.items() if (t - before.get(tid, 0.0)) / wall >= 0.1)


def machine_seconds() -> float:
    """CPU seconds every core has spent busy so far (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def nice_of(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19


class Trainer:
    """`python -m training DATA --out TMP --epochs EPOCHS --quiet` as one condition's load."""

    def __init__(self, condition: Condition, data: Path, where: Path) -> None:
        self.condition = condition
        self.data = data
        self.where = where / condition.name
        self.log_path = OUT / "logs" / f"training-beside-{condition.name}.log"
        self.process: subprocess.Popen | None = None
        self.first_epoch_s: float | None = None

    def command(self) -> list[str]:
        nice = ["nice", "-n", str(self.condition.nice)] if self.condition.nice else []
        return [
            *nice,
            sys.executable,
            "-m",
            "training",
            str(self.data),
            "--out",
            str(self.where / "model"),
            "--epochs",
            str(EPOCHS),
            "--quiet",
        ]

    def start(self) -> None:
        shutil.rmtree(self.where, ignore_errors=True)
        self.where.mkdir(parents=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "MPLCONFIGDIR": str(OUT / "mplconfig"),
            **self.condition.env,
        }
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    async def until_training(self, marker: str = "Epoch 2/", timeout: float = READY_TIMEOUT):
        """Wait until the log shows `marker`: by default, until the first epoch has ended."""
        assert self.process is not None
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the {self.condition.name} trainer exited ({self.process.returncode}):\n"
                    + self.tail()
                )
            if marker in self.log_path.read_text(errors="replace"):
                self.first_epoch_s = time.perf_counter() - start
                return
            await asyncio.sleep(0.25)
        raise RuntimeError(
            f"the {self.condition.name} trainer did not start training:\n{self.tail()}"
        )

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)
                process.kill()
            process.wait()
        shutil.rmtree(self.where, ignore_errors=True)


CPU_KEYS = ("wall", "trainer", "bot", "machine", "benchmark")


def snapshot(trainer_pid: int | None, bot_pid: int) -> tuple[float, ...]:
    """Wall time and the CPU seconds so far of the trainer, the bot, the whole machine and this
    process (the local Discord server and the client), in `CPU_KEYS` order."""
    return (
        time.perf_counter(),
        cpu_seconds(trainer_pid) if trainer_pid else 0.0,
        cpu_seconds(bot_pid),
        machine_seconds(),
        cpu_seconds(os.getpid()),
    )


async def paced(server, pngs: list[tuple[str, bytes]], count: int, period: float, first: int):
    """Post `count` commands `period` seconds apart; (latencies, replies)."""
    from benchmarks._botproc import command

    async def one(k: int):
        await asyncio.sleep(k * period)
        name, png = pngs[(first + k) % len(pngs)]
        return await command(server, png, name=name, timeout=120.0)

    outcomes = await asyncio.gather(*(one(k) for k in range(count)))
    return [o[0] for o in outcomes], [o[1] for o in outcomes]


async def measure(args: argparse.Namespace, report: Report, model_dir: Path) -> None:
    from benchmarks._botproc import BotProcess, command, is_verdict, until_answering
    from playground.discord import DiscordServer

    pngs = [(name, (SAMPLES / name).read_bytes()) for name in SAMPLE_NAMES]
    chosen = conditions(not args.no_one_thread)
    data = synthetic_dataset(args.images, seed=args.seed)
    trainers = {c.name: Trainer(c, data, OUT / "training-beside") for c in chosen if c.trains}
    rounds = -(-args.commands // args.block)
    latencies: dict[str, list[float]] = {c.name: [] for c in chosen}
    wrong = dict.fromkeys(latencies, 0)
    cpu = {c.name: dict.fromkeys(CPU_KEYS, 0.0) for c in chosen}
    busy = dict.fromkeys(latencies, 0)
    try:
        async with (
            DiscordServer(token=secrets.token_urlsafe(16)) as server,
            BotProcess(server, model_dir, name="training-beside") as bot,
        ):
            await until_answering(server, pngs[0][1])
            for i in range(10):
                await command(server, pngs[i % len(pngs)][1])
            assert bot.process is not None
            bot_pid = bot.process.pid

            report.section(
                "trainers: each started alone, stopped once its first "
                + ("epoch begins (--quick)" if args.quick else "epoch has ended")
            )
            for name, trainer in trainers.items():
                trainer.start()
                await trainer.until_training("Epoch 1/" if args.quick else "Epoch 2/")
                trainer.pause()
                assert trainer.process is not None
                report.figure(
                    f"{name}_start_s",
                    f"{name}: start to " + ("epoch 1" if args.quick else "end of epoch 1"),
                    trainer.first_epoch_s,
                    "s",
                )
                nice = nice_of(trainer.process.pid)
                report.check(
                    f"{name} trainer runs at nice {trainer.condition.nice}",
                    nice == trainer.condition.nice,
                    f"/proc says {nice}",
                )

            report.section(
                f"{rounds} rounds of a block of {args.block} commands per condition, "
                f"one every {args.period:g} s"
            )
            sent = 0
            for index, order in enumerate(schedule([c.name for c in chosen], rounds)):
                block_ms = {}
                for name in order:
                    count = min(args.block, args.commands - index * args.block)
                    trainer = trainers.get(name)
                    if trainer is not None:
                        trainer.resume()
                    await asyncio.sleep(SETTLE)
                    pid = trainer.process.pid if trainer is not None else None
                    threads_before = thread_seconds(pid) if pid else {}
                    before = snapshot(pid, bot_pid)
                    got, replies = await paced(server, pngs, count, args.period, sent)
                    after = snapshot(pid, bot_pid)
                    threads_after = thread_seconds(pid) if pid else {}
                    if trainer is not None:
                        trainer.pause()
                    wall = after[0] - before[0]
                    busy[name] = max(busy[name], busy_threads(threads_before, threads_after, wall))
                    sent += count
                    latencies[name] += got
                    block_ms[name] = 1e3 * Stats.of(got).median
                    wrong[name] += sum(1 for r in replies if not is_verdict(r))
                    for i, key in enumerate(CPU_KEYS):
                        cpu[name][key] += after[i] - before[i]
                print(
                    f"   round {index + 1}/{rounds}, block medians: "
                    + ", ".join(f"{n} {block_ms[n]:.1f} ms" for n in order),
                    flush=True,
                )
            report.figure("bot_peak_rss_mb", "bot peak RSS", bot.status()["VmHWM"] / 1e3 * 1.024)
    finally:
        for trainer in trainers.values():
            trainer.stop()
        shutil.rmtree(OUT / "training-beside", ignore_errors=True)

    report.section("post -> reply, per condition")
    for c in chosen:
        report.check(
            f"{c.name}: every reply is a verdict",
            wrong[c.name] == 0,
            f"{wrong[c.name]} of {len(latencies[c.name])} not verdicts",
        )
    stats = {}
    for c in chosen:
        stats[c.name] = report.stats(
            f"{c.name}_ms", c.label, Stats.of(ms(latencies[c.name])), "ms", 1
        )
        report.figure(f"{c.name}_max_ms", f"{c.label}: max", stats[c.name].maximum, "ms")
    report.section("CPU while the commands ran (cores: CPU seconds per second)")
    for c in chosen:
        used = cpu[c.name]
        wall = used["wall"]
        used["others"] = used["machine"] - used["trainer"] - used["bot"] - used["benchmark"]
        for who in ("trainer", "bot", "benchmark", "others"):
            report.figure(f"{c.name}_{who}_cores", f"{c.name}: {who}", max(0.0, used[who]) / wall)
        if c.trains:
            report.figure(
                f"{c.name}_trainer_busy_threads",
                f"{c.name}: trainer threads using >= 0.1 core (most in a block)",
                busy[c.name],
            )

    idle = stats["idle"]
    for c in chosen:
        report.outcome(
            f"{c.label}: median / p95 / max",
            stats[c.name].median,
            unit="ms",
            note=f"p95 {stats[c.name].p95:.1f} ms, max {stats[c.name].maximum:.1f} ms",
        )
    for c in chosen:
        if c.trains:
            report.outcome(
                f"median latency, {c.label} / idle",
                stats[c.name].median / idle.median,
                note=f"p95s: {stats[c.name].p95 / idle.p95:.2f}x, trainer "
                f"{cpu[c.name]['trainer'] / cpu[c.name]['wall']:.2f} cores, others "
                f"{max(0.0, cpu[c.name]['others']) / cpu[c.name]['wall']:.2f}",
            )


def run(args: argparse.Namespace) -> Report:
    report = Report("training_beside", "the bot's latency while a training runs beside it")
    model_dir, origin = resolve_model(args.model)
    if args.quick:
        args.commands, args.block = min(args.commands, 6), min(args.block, 3)
        args.period, args.images = min(args.period, 0.2), min(args.images, 40)
    if args.commands < 1 or args.block < 1 or args.period <= 0:
        raise SystemExit("--commands and --block must be at least 1, --period positive")
    report.header(
        f"model: {origin}, LiteRT; {args.commands} `!jedisith` per condition (playground "
        f"samples), one every {args.period:g} s, in blocks of {args.block}; trainers on "
        f"{args.images} synthetic images (seed {args.seed}), {os.cpu_count()} cores"
    )
    asyncio.run(measure(args, report, model_dir))
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("training_beside", __doc__.splitlines()[0])
    p.add_argument("--commands", type=int, default=60, help="per condition (default 60)")
    p.add_argument("--block", type=int, default=10, help="commands per block (default 10)")
    p.add_argument("--period", type=float, default=0.5, help="seconds between commands (0.5)")
    p.add_argument("--images", type=int, default=400, help="the trainers' synthetic set (400)")
    p.add_argument("--seed", type=int, default=123, help="seed of that set (123)")
    p.add_argument("--no-one-thread", action="store_true", help="leave out the 1-thread trainer")
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
