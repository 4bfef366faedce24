"""Hostile uploads: peak RSS of the bot while members send small files that decode to large
images through `!jedisith` and `!teach`, and of the trainer over a set that includes them.

The files (`benchmarks._hostile_files`): 16-bit grey and palette-with-transparency PNGs of
6,300x6,300, 48-bit RGB, grey-with-alpha and RGBA PNGs of 5,000x5,000; 100 KB to 1 MB each,
each near what one decode may allocate (`model.preprocess.DEFAULT_MAX_DECODED_BYTES`).

1. The bot: a fresh look-alike and `python -m bot` (cooldown off, DATA_DIR in a new folder),
   collection turned on by the server's owner; then `--members` members each post `--messages`
   messages of `--images` hostile files, all at once, `!jedisith` and `!teach jedi|sith` in
   turn. Every reply is awaited; the bot's peak RSS is VmHWM from /proc before it stops.
2. The trainer: `python -m training.retrain` as the bot runs it (`--epochs 1`), on a copy of
   the model, over `--train-samples` drawn images and `--train-hostile` hostile files per
   class; its peak RSS from `wait4`.

Targets (issue 19): the bot's peak RSS at most 350 MB with every message answered. Before the
bound, four `!teach` of ten such files took the bot to 4,068 MiB, `!jedisith` to 2,097 MiB,
and eight files the trainer to 3.5 GB (the issue's figures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks._common import OUT, REPO, Report, parser, resolve_model, run_main, sample_pngs
from playground.discord.layouts import message_text

TARGET_BOT_MB = 350.0
REPLY_TIMEOUT = 1800.0


def _files(args: argparse.Namespace) -> list[tuple[str, bytes]]:
    """The distinct hostile files, made once per size into benchmarks/out/hostile/."""
    from benchmarks._hostile_files import hostile_set

    folder = OUT / "hostile" / f"scale-{args.scale:g}"
    if folder.is_dir() and len(list(folder.glob("*.png"))) >= args.distinct:
        paths = sorted(folder.glob("*.png"))[: args.distinct]
        return [(path.name, path.read_bytes()) for path in paths]
    folder.mkdir(parents=True, exist_ok=True)
    files = hostile_set(args.distinct, args.scale)
    for name, data in files:
        (folder / name).write_bytes(data)
    return files


def _line_kind(line: str) -> str:
    from benchmarks._soak_load import BUSY

    if BUSY in line:
        return "busy"
    if "kept, your label" in line or "already" in line:
        return "kept"
    if "**Jedi**" in line or "**Sith**" in line or "Can't tell" in line:
        return "verdict"
    if "Not a Jedi or a Sith?" in line:
        return "refused as unlike"
    return "other"


async def bot_section(args: argparse.Namespace, report: Report, model_dir: Path, files) -> dict:
    from benchmarks._botproc import BotProcess
    from benchmarks._soak_load import mb, roomy_limits
    from benchmarks._uploads_burst import cpu_seconds
    from playground.discord import DiscordServer

    data_dir = Path(tempfile.mkdtemp(prefix="hostile-bot-", dir=OUT))
    # The bot's own decode is what is measured: no resized fetch through the look-alike's proxy.
    env = {"RESIZED_DOWNLOADS": "false", **args.env, "DATA_DIR": str(data_dir)}
    try:
        async with (
            DiscordServer(token=secrets.token_urlsafe(16), limits=roomy_limits()) as server,
            BotProcess(server, model_dir, env=env, name="hostile") as bot,
        ):
            on = await server.post_message("!dataset collect on")
            await server.wait_for_reply(on["id"], timeout=120)
            warm = bot.status()
            pid = bot.process.pid  # type: ignore[union-attr]
            cpu = cpu_seconds(pid)
            start = time.perf_counter()
            posts = []
            for message in range(args.messages):
                for member in range(args.members):
                    number = message * args.members + member
                    first = number * args.images
                    attachments = [
                        (f"m{number:03}-{i}-{files[(first + i) % len(files)][0]}", data)
                        for i, (_, data) in enumerate(
                            files[(first + i) % len(files)] for i in range(args.images)
                        )
                    ]
                    label = ("jedi", "sith")[member % 2]
                    text = "!jedisith" if message % 2 == 0 else f"!teach {label}"
                    posts.append(
                        server.post_message(
                            text, attachments=attachments, author={"username": f"member-{member}"}
                        )
                    )
            messages = await asyncio.gather(*posts)

            async def answer(message: dict[str, Any]) -> dict[str, Any] | None:
                try:
                    return await server.wait_for_reply(message["id"], timeout=args.timeout)
                except TimeoutError:
                    return None

            replies = await asyncio.gather(*(answer(m) for m in messages))
            seconds = time.perf_counter() - start
            cpu = cpu_seconds(pid) - cpu
            status = bot.status()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    commands: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for message, reply in zip(messages, replies, strict=True):
        command = message["content"].split()[0]
        commands[f"{command} {'answered' if reply else 'unanswered'}"] += 1
        for line in message_text(reply or {}).splitlines():
            kind = _line_kind(line)
            lines[f"{command}: {kind}"] += 1
            if kind == "other":
                others[line.split(": ", 1)[-1]] += 1
    result = {
        "messages": len(messages),
        "answered": sum(reply is not None for reply in replies),
        "seconds": seconds,
        "cpu_s": cpu,
        "warm_mb": mb(warm["VmRSS"]),
        "peak_mb": mb(status["VmHWM"]),
        "commands": dict(commands),
        "lines": dict(lines),
        "other_lines": dict(others),
    }
    report.figure("bot_warm_mb", "bot RSS before the burst", result["warm_mb"], "MB")
    report.figure("bot_peak_mb", "bot peak RSS (VmHWM)", result["peak_mb"], "MB")
    report.figure("bot_seconds", "posting to the last reply", seconds, "s")
    report.figure("bot_cpu_s", "bot CPU", cpu, "s")
    report.figure("bot_commands", "messages", dict(commands))
    report.figure("bot_lines", "reply lines (one per image)", dict(lines))
    report.figure("bot_other_lines", "the other lines", dict(others))
    report.check(
        "every message answered",
        result["answered"] == result["messages"],
        f"{result['answered']} of {result['messages']}",
    )
    report.outcome(
        f"bot peak RSS, {args.members} members x {args.messages} messages x {args.images} "
        "hostile images",
        result["peak_mb"],
        unit="MB",
        target=TARGET_BOT_MB,
        better="at_most",
    )
    return result


def train_section(args: argparse.Namespace, report: Report, model_dir: Path, files) -> dict:
    """One epoch of the bot's trainer over drawn images and hostile files; its peak RSS."""
    from training.protocol import TRAINER_MODULE

    scratch = Path(tempfile.mkdtemp(prefix="hostile-train-", dir=OUT))
    try:
        drawn = sample_pngs(2 * args.train_samples + 4, seed=19)
        for folder, count in (("data", args.train_samples), ("holdout", 2)):
            for number, label in enumerate(("jedi", "sith")):
                target = scratch / folder / label
                target.mkdir(parents=True)
                for i in range(count):
                    (target / f"drawn-{i}.png").write_bytes(drawn.pop())
                if folder == "data":
                    for i in range(args.train_hostile):
                        name, data = files[(number * args.train_hostile + i) % len(files)]
                        (target / name).write_bytes(data)
        model = scratch / "model"
        shutil.copytree(model_dir, model)
        work = scratch / "work"
        command = [
            sys.executable,
            "-m",
            TRAINER_MODULE,
            "--data",
            str(scratch / "data"),
            "--holdout",
            str(scratch / "holdout"),
            "--model",
            str(model),
            "--work",
            str(work),
            "--epochs",
            "1",
            "--min-images",
            "1",
        ]
        log = OUT / "logs" / "hostile-trainer.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        code = args.trainer_repo or REPO
        env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "2"}
        started = time.perf_counter()
        with open(log, "wb") as output:
            process = subprocess.Popen(
                command, cwd=code, env=env, stdout=output, stderr=subprocess.STDOUT
            )
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        try:
            outcome = json.loads((work / "result.json").read_text())
        except (OSError, ValueError):
            outcome = {}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    peak = usage.ru_maxrss * 1024 / 1e6
    result = {
        "peak_mb": peak,
        "seconds": seconds,
        "exit": process.returncode,
        "status": outcome.get("status"),
        "reason": outcome.get("reason"),
        "images": 2 * (args.train_samples + args.train_hostile),
        "trained_on": outcome.get("images"),
        "skipped": outcome.get("skipped"),
    }
    report.figure("trainer_peak_mb", "trainer peak RSS (wait4 ru_maxrss)", peak, "MB")
    report.figure("trainer_seconds", "trainer run", seconds, "s")
    report.figure("trainer_status", "trainer result", f"{result['status']}: {result['reason']}")
    report.figure("trainer_images", "images the trainer counted", result["trained_on"])
    report.figure("trainer_skipped", "files it skipped", result["skipped"])
    report.check(
        "the trainer ended with a result",
        result["status"] is not None,
        f"exit {process.returncode}, status {result['status']} (log: {log})",
    )
    report.outcome(
        f"trainer peak RSS, {2 * args.train_hostile} hostile files among {result['images']}",
        peak,
        unit="MB",
    )
    return result


def run(args: argparse.Namespace) -> Report:
    report = Report("hostile", "peak RSS of the bot and the trainer on hostile images")
    model_dir, origin = resolve_model(args.model)
    if args.quick:
        args.members, args.messages, args.images = 2, 2, 3
        args.distinct, args.scale = 6, 0.4
        args.train_samples, args.train_hostile = 4, 2
    files = _files(args)
    total = sum(len(files[i % len(files)][1]) for i in range(args.images))
    report.header(
        f"model: {origin}; bot settings: {args.env or 'defaults'}\n"
        f"{args.members} members x {args.messages} messages x {args.images} "
        f"images ({len(files)} distinct hostile files, ~{total / args.images / 1024:.0f} KB "
        f"each; sides x{args.scale:g}), all posted at once; MB = 10^6 bytes; peak = VmHWM"
    )
    if not args.no_bot:
        report.section("the bot: !jedisith and !teach")
        bot = asyncio.run(bot_section(args, report, model_dir, files))
        report.figures["bot"] = {"value": bot}
    if not args.no_train:
        report.section("the trainer: one epoch over a set with hostile files")
        report.figures["trainer"] = {"value": train_section(args, report, model_dir, files)}
    return report


def main(argv: list[str] | None = None) -> int:
    from benchmarks._soak_load import parse_setting

    p = parser("hostile", __doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=10, help="members posting (default 10)")
    p.add_argument("--messages", type=int, default=4, help="messages per member (default 4)")
    p.add_argument("--images", type=int, default=10, help="images per message (default 10)")
    p.add_argument("--distinct", type=int, default=20, help="distinct files (default 20)")
    p.add_argument("--scale", type=float, default=1.0, help="sides of the files x this")
    p.add_argument("--timeout", type=float, default=REPLY_TIMEOUT, help="seconds per reply")
    p.add_argument("--train-samples", type=int, default=16, help="drawn images per class")
    p.add_argument("--train-hostile", type=int, default=4, help="hostile files per class")
    p.add_argument("--no-train", action="store_true", help="only the bot")
    p.add_argument("--no-bot", action="store_true", help="only the trainer")
    p.add_argument(
        "--trainer-repo",
        type=Path,
        default=None,
        help="run the trainer of another checkout (e.g. `git archive` of an earlier commit)",
    )
    p.add_argument(
        "--env",
        type=parse_setting,
        default={},
        help="bot settings, NAME=VALUE[,NAME=VALUE...] (default: the bot's own)",
    )
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
