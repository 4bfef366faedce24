"""Soak: thousands of `!jedisith` in waves across every channel, the bot's memory along the way.

One local `DiscordServer` (three guilds, five channels) and one `python -m bot` (litert,
cooldown off) for the whole soak. `--commands` commands go out in waves of `--wave-min` to
`--wave-max` posted at once, the largest first (so the warm-up reaches the heap's high-water
mark) and cut so that a wave ends at the warm-up mark; each command goes to a random channel of
a random guild from one of a dozen people, most with one attachment, a fifth with two to four:
the playground's sample drawings (JPEG), synthetic scenes (PNG) and, for `--photo-share` of the
attachments, larger photo-like JPEGs (up to 6 MP; the model refuses them, and "Not a Jedi or a
Sith?" is an answer too). Each wave waits for every reply of the one before. The bot's RSS
(VmRSS) is read after every wave.

Every bot message the server sees is counted by the command it replies to
(`message_reference.message_id`): every command must be answered exactly once, none missing,
none doubled, and the bot must say nothing else. Reported: commands/s, post -> reply latency
p50/p95 per wave and overall, RSS after the warm-up (`--warmup`, the 300th command) and after
the last, the growth between them (target: under 10 MB), its trend, and the peak (VmHWM).

Then `--burst` commands at once (`--burst-images` 200x200 PNGs each) to a fresh bot per
setting of `--burst-settings` (default `BATCH_SIZE=8` and `BATCH_SIZE=32`; each is
`NAME=VALUE[,NAME=VALUE...]` of the bot's environment), the settings interleaved for
`--burst-rounds` rounds: each one's peak RSS (the first setting's against the 300 MB budget).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import Report, Stats, parser, resolve_model, run_main, sample_pngs
from benchmarks._soak_load import (
    PHOTO_SHARE,
    ReplyLog,
    mb,
    noise_png,
    parse_setting,
    plan_waves,
    reply_kind,
    roomy_limits,
    soak_images,
    tally,
)

TARGET_GROWTH_MB = 10.0
TARGET_PEAK_MB = 300.0  # the memory benchmark's budget for the serving bot
WAVE_TIMEOUT = 180.0  # seconds for every command of a wave to be answered
SETTLE = 0.3  # seconds after a wave's last reply, for a doubled one to show, before reading RSS
PEOPLE = 12
MULTI_SHARE = 0.2  # commands with 2-4 attachments


# -- the soak ---------------------------------------------------------------------------------


async def _drain(queue: asyncio.Queue, log: ReplyLog, done: asyncio.Event) -> None:
    while True:
        event = await queue.get()
        log.feed(event, time.perf_counter())
        if not log.waiting:
            done.set()


async def soak(args: argparse.Namespace, report: Report, model_dir: Path) -> None:
    from benchmarks._botproc import BotProcess, proc_status
    from playground.discord import DiscordServer

    rng = np.random.default_rng(args.seed)
    images = soak_images(args.photo_share)
    # The largest wave first: the warm-up reaches the heap's high-water mark, so what grows
    # after it is what thousands of commands add, not a bigger burst than before.
    sizes = plan_waves(
        args.commands, args.wave_min, args.wave_max, [args.warmup], rng, first=args.wave_max
    )
    report.figure(
        "images",
        "images to attach",
        f"{len(images.small)} drawings ({sum(len(d) for _, d in images.small) // len(images.small)}"
        f" B average), photos of {', '.join(f'{len(d) // 1000} kB' for _, d in images.photos)}",
    )
    async with DiscordServer(token=secrets.token_urlsafe(16), limits=roomy_limits()) as server:
        channels = [c for g in server.state.guilds.values() for c in g.channel_ids]
        people = [None, *({"username": f"visitor{i:02d}"} for i in range(1, PEOPLE))]
        log = ReplyLog(str(server.application_id))
        feed = server.subscribe()
        done = asyncio.Event()
        drain = asyncio.create_task(_drain(feed, log, done))
        try:
            async with BotProcess(server, model_dir, env=args.env, name="soak") as bot:
                pid = bot.process.pid
                connected = proc_status(pid)
                report.figure(
                    "rss_connected_mb", "RSS when connected", mb(connected["VmRSS"]), "MB"
                )
                report.figure("start_s", "start to gateway IDENTIFY", bot.ready_seconds, "s")
                await _run_waves(
                    args, report, server, log, done, sizes, channels, people, images, rng, pid
                )
        finally:
            drain.cancel()
            server.unsubscribe(feed)


async def _run_waves(
    args, report, server, log, done, sizes, channels, people, images, rng, pid
) -> None:
    from benchmarks._botproc import proc_status

    report.section(
        f"{args.commands} commands in {len(sizes)} waves of {min(sizes)}-{max(sizes)}, "
        f"{len(channels)} channels in {len(server.state.guilds)} guilds, {PEOPLE} people"
    )
    print(
        "   wave  commands  images   seconds  cmd/s   p50 ms   p95 ms   RSS MB   peak MB",
        flush=True,
    )
    posted: dict[str, float] = {}
    all_ids: list[str] = []
    waves: list[dict[str, Any]] = []
    rss_at: dict[int, float] = {}
    sent = 0
    total_images = 0
    busy_seconds = 0.0
    for index, size in enumerate(sizes, start=1):
        plan = []
        for _ in range(size):
            count = int(rng.integers(2, 5)) if rng.random() < MULTI_SHARE else 1
            attachments = [images.pick(rng) for _ in range(count)]
            plan.append(
                (
                    channels[int(rng.integers(len(channels)))],
                    people[int(rng.integers(len(people)))],
                    attachments,
                )
            )
        wave_images = sum(len(a) for _, _, a in plan)

        async def post(channel_id, author, attachments):
            start = time.perf_counter()
            message = await server.post_message(
                "!jedisith", attachments=attachments, channel_id=channel_id, author=author
            )
            posted[str(message["id"])] = start
            return str(message["id"])

        started = time.perf_counter()
        ids = await asyncio.gather(*(post(*item) for item in plan))
        log.waiting.update(i for i in ids if i not in log.arrived)
        done.clear()  # no await since the update: the drain sets it once all are answered
        if log.waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), WAVE_TIMEOUT)
        answered = [i for i in ids if i in log.arrived]
        seconds = max(log.arrived[i] for i in answered) - started if answered else WAVE_TIMEOUT
        await asyncio.sleep(SETTLE)
        status = proc_status(pid)
        latencies = [(log.arrived[i] - posted[i]) * 1e3 for i in answered]
        lat = Stats.of(latencies) if latencies else None
        sent += size
        total_images += wave_images
        busy_seconds += seconds
        all_ids += ids
        rss_at[sent] = status["VmRSS"]
        wave = {
            "commands": size,
            "images": wave_images,
            "answered": len(answered),
            "seconds": seconds,
            "commands_per_s": size / seconds,
            "p50_ms": lat.median if lat else None,
            "p95_ms": lat.p95 if lat else None,
            "after_command": sent,
            "rss_mb": mb(status["VmRSS"]),
            "hwm_mb": mb(status["VmHWM"]),
        }
        waves.append(wave)
        print(
            f"   {index:>4}  {size:>8}  {wave_images:>6}  {seconds:>8.2f}  {size / seconds:>5.0f}"
            f"  {wave['p50_ms'] or 0:>7.0f}  {wave['p95_ms'] or 0:>7.0f}"
            f"  {wave['rss_mb']:>7.1f}  {wave['hwm_mb']:>8.1f}"
            + ("" if len(answered) == size else f"   {size - len(answered)} UNANSWERED"),
            flush=True,
        )
        if len(answered) < size:
            break  # the check below reports it; more waves would only pile up
    await asyncio.sleep(1.0)  # a late doubled reply still counts
    final = proc_status(pid)
    report.figures["waves"] = {"value": waves, "unit": ""}

    result = tally(all_ids, log)
    kinds = Counter(reply_kind(log.contents[i]) for i in all_ids if i in log.contents)
    report.check(
        "every command answered exactly once",
        result.ok and sent == args.commands,
        f"{sent} commands: {len(result.missing)} unanswered, {len(result.doubled)} answered "
        f"more than once, {result.stray} other bot messages",
    )
    report.figure(
        "replies",
        "replies by kind",
        ", ".join(f"{kinds[k]} {k}" for k in ("verdict", "refused", "busy", "other")),
    )
    latencies = [(log.arrived[i] - posted[i]) * 1e3 for i in all_ids]
    overall = report.stats(
        "latency_ms", "post -> reply, every command", Stats.of(latencies), "ms", 0
    )
    rate = report.figure(
        "commands_per_s", "commands/s (time answering waves)", sent / busy_seconds, "cmd/s"
    )
    report.figure("images_per_s", "images/s", total_images / busy_seconds, "img/s")
    per_wave_p95 = [w["p95_ms"] for w in waves]
    report.figure("worst_wave_p95_ms", "worst p95 of a wave", max(per_wave_p95), "ms")
    warm = report.figure(
        "rss_warm_mb", f"RSS after command {args.warmup} (warm-up)", mb(rss_at[args.warmup]), "MB"
    )
    end = report.figure(
        "rss_end_mb", f"RSS after command {args.commands}", mb(rss_at[args.commands]), "MB"
    )
    low = min(w["rss_mb"] for w in waves if w["after_command"] >= args.warmup)
    high = max(w["rss_mb"] for w in waves if w["after_command"] >= args.warmup)
    report.figure(
        "rss_range_after_warmup_mb", "RSS range after the warm-up", f"{low:.1f}-{high:.1f}", "MB"
    )
    after = [w for w in waves if w["after_command"] >= args.warmup]
    if len(after) >= 3:
        slope = np.polyfit([w["after_command"] for w in after], [w["rss_mb"] for w in after], 1)[0]
        report.figure(
            "rss_trend_mb_per_1000",
            "RSS trend after the warm-up (least squares)",
            slope * 1000,
            "MB per 1000 commands",
        )
    peak = report.figure("hwm_mb", "peak RSS (VmHWM)", mb(final["VmHWM"]), "MB")
    report.outcome("commands/s", rate, unit="cmd/s")
    report.outcome(
        "post -> reply p50 / p95", overall.median, unit="ms", note=f"p95 {overall.p95:.0f} ms"
    )
    report.outcome(
        f"peak RSS over {args.commands} commands",
        peak,
        unit="MB",
        target=TARGET_PEAK_MB,
        better="at_most",
    )
    report.outcome(
        f"RSS growth, command {args.warmup} -> {args.commands}",
        end - warm,
        unit="MB",
        # A quick run is too short: discord.py's cache of 1,000 messages is still filling.
        target=None if args.quick else TARGET_GROWTH_MB,
        better="lower",
        note=f"{warm:.1f} -> {end:.1f} MB" + ("; quick: no target" if args.quick else ""),
    )


# -- the burst --------------------------------------------------------------------------------


async def burst_peak(
    model_dir: Path, pngs: Sequence[bytes], env: dict[str, str], n: int, per_command: int = 1
) -> dict:
    """A fresh bot with `env`: one command, then `n` at once (`per_command` PNGs each); its
    memory, the time to the last reply and the replies by kind."""
    from benchmarks._botproc import BotProcess, until_answering
    from playground.discord import DiscordServer
    from playground.discord.layouts import message_text

    async with (
        DiscordServer(token=secrets.token_urlsafe(16), limits=roomy_limits()) as server,
        BotProcess(server, model_dir, env=env, name="soak-burst") as bot,
    ):
        connected = bot.status()
        await until_answering(server, pngs[0])
        warm = bot.status()
        start = time.perf_counter()
        messages = await asyncio.gather(
            *(
                server.post_message(
                    "!jedisith",
                    attachments=[
                        (f"burst{i}-{j}.png", pngs[(i * per_command + j) % len(pngs)])
                        for j in range(per_command)
                    ],
                )
                for i in range(n)
            )
        )

        async def answer(message: dict[str, Any]) -> dict[str, Any] | None:
            with contextlib.suppress(TimeoutError):
                return await server.wait_for_reply(message["id"], timeout=WAVE_TIMEOUT)
            return None

        replies = await asyncio.gather(*(answer(m) for m in messages))
        last = time.perf_counter() - start
        await asyncio.sleep(SETTLE)
        after = bot.status()
        kinds = Counter(reply_kind(message_text(r)) if r else "missing" for r in replies)
        return {
            "connected_mb": mb(connected["VmRSS"]),
            "warm_mb": mb(warm["VmRSS"]),
            "peak_mb": mb(after["VmHWM"]),
            "after_mb": mb(after["VmRSS"]),
            "last_s": last,
            "kinds": dict(kinds),
        }


def label(env: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in env.items()) or "defaults"


async def bursts(args: argparse.Namespace, report: Report, model_dir: Path) -> None:
    settings = args.burst_settings
    report.section(
        f"{args.burst} commands at once ({args.burst_images} 200x200 PNG each), a fresh bot "
        f"per setting, {args.burst_rounds} round(s) interleaved"
    )
    pngs = sample_pngs(16)
    if args.burst_file_mb > 0:  # the warm-up command keeps a small one
        pngs = [pngs[0], *(noise_png(args.burst_file_mb, seed) for seed in range(10))]
        report.note(f"attachments: noise PNGs of {len(pngs[1]) / 1e6:.1f} MB")
    runs: dict[str, list[dict]] = {label(env): [] for env in settings}
    for round_ in range(args.burst_rounds):
        order = settings if round_ % 2 == 0 else settings[::-1]
        for env in order:
            result = await burst_peak(model_dir, pngs, env, args.burst, args.burst_images)
            runs[label(env)].append(result)
            print(
                f"   round {round_ + 1} {label(env):<28} connected {result['connected_mb']:.0f} MB"
                f"  warm {result['warm_mb']:.0f} MB  peak {result['peak_mb']:.0f} MB"
                f"  after {result['after_mb']:.0f} MB  last reply {result['last_s']:.2f} s"
                f"  {result['kinds']}",
                flush=True,
            )
    peaks = {}
    for name, results in runs.items():
        missing = sum(r["kinds"].get("missing", 0) for r in results)
        report.check(
            f"{name}: every burst command answered",
            missing == 0,
            f"{missing} of {args.burst * len(results)} unanswered",
        )
        busy = sum(r["kinds"].get("busy", 0) for r in results)
        if busy:
            report.figure(f"burst_busy[{name}]", f"{name}: told to retry (busy)", busy)
        values = [r["peak_mb"] for r in results]
        peaks[name] = float(np.median(values))
        report.figure(
            f"burst_peak_mb[{name}]",
            f"{name}: peak, median (range)",
            f"{peaks[name]:.1f} ({min(values):.1f}-{max(values):.1f})",
            "MB",
        )
        report.figure(
            f"burst_last_s[{name}]",
            f"{name}: last reply, median",
            float(np.median([r["last_s"] for r in results])),
            "s",
        )
    report.figures["bursts"] = {"value": runs, "unit": ""}
    for index, (name, peak) in enumerate(peaks.items()):
        report.outcome(
            f"peak RSS, {args.burst} at once"
            + (f" x {args.burst_images} images" if args.burst_images > 1 else "")
            + f", {name}",
            peak,
            unit="MB",
            target=TARGET_PEAK_MB if index == 0 else None,  # the others are for comparison
            better="at_most",
        )


def run(args: argparse.Namespace) -> Report:
    report = Report("soak", "thousands of commands in waves; the bot's memory along the way")
    model_dir, origin = resolve_model(args.model)
    if args.quick:
        args.commands = min(args.commands, 600)
        args.warmup = min(args.warmup, 200)
        args.wave_min, args.wave_max = min(args.wave_min, 50), min(args.wave_max, 150)
        args.burst_rounds = min(args.burst_rounds, 1)
    if args.commands and not 0 < args.warmup < args.commands:
        raise SystemExit("--warmup must be between 0 and --commands")
    if args.wave_min > args.wave_max:
        raise SystemExit("--wave-min must not exceed --wave-max")
    environment = f", bot environment {label(args.env)}" if args.env else ""
    soak_line = (
        f"{args.commands} !jedisith in waves of {args.wave_min}-{args.wave_max} (seed "
        f"{args.seed}), warm-up {args.warmup}{environment}"
        if args.commands
        else "no soak"
    )
    bursts_line = (
        f"then {args.burst} at once with {', '.join(label(e) for e in args.burst_settings)}"
        if args.burst and args.burst_settings
        else "no bursts"
    )
    report.header(
        f"model: {origin}\n{soak_line}; {bursts_line}\n"
        "MB = 10^6 bytes; RSS = VmRSS after each wave; peak = VmHWM"
    )
    if args.commands:
        asyncio.run(soak(args, report, model_dir))
    if args.burst and args.burst_settings:
        asyncio.run(bursts(args, report, model_dir))
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("soak", __doc__.splitlines()[0])
    p.add_argument(
        "--commands", type=int, default=3000, help="commands in all (default 3000; 0: no soak)"
    )
    p.add_argument("--warmup", type=int, default=300, help="RSS growth counts from this command")
    p.add_argument("--wave-min", type=int, default=100, help="smallest wave (default 100)")
    p.add_argument("--wave-max", type=int, default=300, help="largest wave (default 300)")
    p.add_argument("--seed", type=int, default=0, help="channels, people, images, wave sizes")
    p.add_argument(
        "--photo-share",
        type=float,
        default=PHOTO_SHARE,
        help=f"share of attachments that are large photo-like JPEGs (default {PHOTO_SHARE})",
    )
    p.add_argument(
        "--env",
        type=parse_setting,
        default={},
        metavar="NAME=VALUE[,...]",
        help="extra environment for the soak's bot (e.g. BATCH_SIZE=32)",
    )
    p.add_argument("--burst", type=int, default=200, help="commands at once (0: no bursts)")
    p.add_argument("--burst-rounds", type=int, default=3, help="rounds of bursts (default 3)")
    p.add_argument(
        "--burst-images", type=int, default=1, help="attachments per burst command (default 1)"
    )
    p.add_argument(
        "--burst-file-mb",
        type=float,
        default=0.0,
        help="attach noise PNGs of about this many MB instead of 200x200 ones (e.g. 10)",
    )
    p.add_argument(
        "--burst-settings",
        type=parse_setting,
        nargs="*",
        default=[{"BATCH_SIZE": "8"}, {"BATCH_SIZE": "32"}],
        metavar="NAME=VALUE[,...]",
        help="the bot's environment for each burst bot (default: BATCH_SIZE=8 BATCH_SIZE=32)",
    )
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
