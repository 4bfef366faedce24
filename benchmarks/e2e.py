"""End to end through a local Discord-compatible server: `!jedisith` with a 200x200 PNG.

Two bots, each a subprocess with its own local `DiscordServer` (cooldown off), both running
for the whole benchmark:

* ours: `python -m bot` (MODEL_BACKEND=litert): download, decode thread, batching worker.
* notebook: `benchmarks._notebook_bot`: download, then PIL + `tf.image.resize` +
  `model.predict` in the event loop, as a direct port of the notebook would.

1. One at a time: `--commands` commands to each bot, the bots alternating every 10 commands;
   latency = from `post_message` (MESSAGE_CREATE sent) to the reply arriving at the server.
2. At once: `--commands` commands posted together (`asyncio.gather` of `post_message`), to
   each bot in turn; every command must be answered; the time to the last reply is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets

from benchmarks._common import Report, Stats, ms, parser, resolve_model, run_main, sample_pngs

TARGET_MEDIAN_MS = 40.0
CHUNK = 10
WARMUP = 10


async def measure(args: argparse.Namespace, report: Report, model_dir) -> None:
    from benchmarks._botproc import BotProcess, burst, command, is_verdict, until_answering
    from playground.discord import DiscordServer

    pngs = sample_pngs(64)
    n = args.commands
    bots = {"ours": ("bot", "litert")}
    if not args.no_notebook:
        bots["notebook"] = ("benchmarks._notebook_bot", "litert")
    async with contextlib.AsyncExitStack() as stack:
        servers, procs = {}, {}
        for name, (module, backend) in bots.items():
            server = await stack.enter_async_context(DiscordServer(token=secrets.token_urlsafe(16)))
            procs[name] = await stack.enter_async_context(
                BotProcess(server, model_dir, backend=backend, module=module, name=f"e2e-{name}")
            )
            servers[name] = server
            await until_answering(server, pngs[0])
            for i in range(WARMUP):
                await command(server, pngs[i % len(pngs)])

        report.section(f"one at a time: {n} commands per bot, alternating every {CHUNK}")
        latencies: dict[str, list[float]] = {name: [] for name in bots}
        wrong: dict[str, int] = {name: 0 for name in bots}
        for start in range(0, n, CHUNK):
            order = list(bots) if (start // CHUNK) % 2 == 0 else list(bots)[::-1]
            for name in order:
                for i in range(start, min(start + CHUNK, n)):
                    seconds, reply = await command(servers[name], pngs[i % len(pngs)])
                    latencies[name].append(seconds)
                    wrong[name] += not is_verdict(reply)
        for name in bots:
            report.check(
                f"{name}: every reply is a verdict", wrong[name] == 0, f"{wrong[name]} not verdicts"
            )
        stats = {
            name: report.stats(
                f"{name}_sequential_ms",
                f"{name}: post -> reply",
                Stats.of(ms(latencies[name])),
                "ms",
                1,
            )
            for name in bots
        }

        report.section(f"at once: {n} commands posted together, to each bot in turn")
        lasts = {}
        for name in bots:
            last, each, replies = await burst(
                servers[name], [pngs[i % len(pngs)] for i in range(n)]
            )
            answered = sum(1 for r in replies if r is not None and is_verdict(r))
            report.check(
                f"{name}: all {n} commands answered, none lost",
                answered == n,
                f"{answered} of {n} answered with a verdict",
            )
            got = [x for x in each if x is not None]
            report.stats(f"{name}_burst_ms", f"{name}: post -> reply", Stats.of(ms(got)), "ms", 0)
            lasts[name] = report.figure(
                f"{name}_burst_last_s", f"{name}: last reply after", last, "s"
            )
        for name, proc in procs.items():
            report.figure(
                f"{name}_peak_rss_mb",
                f"{name}: bot peak RSS",
                proc.status()["VmHWM"] / 1e3 * 1.024,
                "MB",
            )

    ours = stats["ours"]
    report.outcome(
        "ours: median post -> reply",
        ours.median,
        unit="ms",
        target=TARGET_MEDIAN_MS,
        better="lower",
    )
    report.outcome("ours: p95 post -> reply", ours.p95, unit="ms")
    report.outcome(f"ours: last of {n} at once answered after", lasts["ours"], unit="s")
    if "notebook" in bots:
        report.outcome(
            f"{n} at once, time to last reply: notebook / ours", lasts["notebook"] / lasts["ours"]
        )
        report.outcome(
            "one at a time, median: notebook / ours", stats["notebook"].median / ours.median
        )


def run(args: argparse.Namespace) -> Report:
    report = Report("e2e", "!jedisith through a local Discord server, bot as a subprocess")
    model_dir, origin = resolve_model(args.model)
    if args.quick:
        args.commands = min(args.commands, 50)
    report.header(f"model: {origin}")
    asyncio.run(measure(args, report, model_dir))
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("e2e", __doc__.splitlines()[0])
    p.add_argument("--commands", type=int, default=200, help="per bot and phase (default 200)")
    p.add_argument("--no-notebook", action="store_true", help="only our bot")
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
