"""Peak memory of the bot process: MODEL_BACKEND=litert vs tensorflow (and the notebook's way).

For each, a fresh local `DiscordServer` and `python -m bot` as a subprocess pointed at it
(cooldown off). It serves `--commands` `!jedisith` commands (half one at a time, half at
once), then `--features` `!features` commands; peak RSS is VmHWM from /proc/PID/status,
read before the bot is stopped. The notebook-style bot (`benchmarks._notebook_bot`: Keras
`predict` in the event loop) serves the same `!jedisith` commands for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets

from benchmarks._common import Report, parser, resolve_model, run_main, sample_pngs

TARGET_MB = 300.0


async def serve(model_dir, pngs, args, *, backend: str, module: str, features: int) -> dict:
    """Start a bot, send the commands, return its memory (kB) at each stage."""
    from benchmarks._botproc import BotProcess, burst, command, is_verdict, until_answering
    from playground.discord import DiscordServer

    async with DiscordServer(token=secrets.token_urlsafe(16)) as server:
        name = f"memory-{module.replace('.', '-')}-{backend}"
        async with BotProcess(server, model_dir, backend=backend, module=module, name=name) as bot:
            ready = bot.status()
            await until_answering(server, pngs[0])
            half = args.commands // 2
            replies = []
            for i in range(half):
                replies.append((await command(server, pngs[i % len(pngs)]))[1])
            _, _, more = await burst(
                server, [pngs[i % len(pngs)] for i in range(args.commands - half)]
            )
            replies.extend(more)
            answered = sum(1 for r in replies if r is not None and is_verdict(r))
            after_classify = bot.status()
            for i in range(features):
                await command(server, pngs[i % len(pngs)], text="!features", timeout=120)
            final = bot.status()
            return {
                "ready_s": bot.ready_seconds,
                "answered": answered,
                "rss_ready_kb": ready["VmRSS"],
                "hwm_classify_kb": after_classify["VmHWM"],
                "hwm_kb": final["VmHWM"],
                "rss_end_kb": final["VmRSS"],
            }


def mb(kb: int) -> float:
    return kb * 1024 / 1e6


async def measure(args: argparse.Namespace, report: Report, model_dir) -> None:
    pngs = sample_pngs(16)
    contenders = [("litert", "bot", args.features), ("tensorflow", "bot", args.features)]
    if not args.no_notebook:
        contenders.append(("notebook", "benchmarks._notebook_bot", 0))
    results = {}
    for backend, module, features in contenders:
        label = {"notebook": "notebook-style bot (Keras predict)"}.get(
            backend, f"python -m bot, MODEL_BACKEND={backend}"
        )
        report.section(label)
        result = await serve(
            model_dir, pngs, args, backend=backend, module=module, features=features
        )
        results[backend] = result
        report.figure(f"{backend}_ready_s", "start to gateway IDENTIFY", result["ready_s"], "s")
        report.figure(
            f"{backend}_rss_ready_mb", "RSS when connected", mb(result["rss_ready_kb"]), "MB"
        )
        report.figure(
            f"{backend}_hwm_classify_mb",
            f"peak RSS after {args.commands} !jedisith",
            mb(result["hwm_classify_kb"]),
            "MB",
        )
        if features:
            report.figure(
                f"{backend}_hwm_mb",
                f"peak RSS after {features} !features too",
                mb(result["hwm_kb"]),
                "MB",
            )
        report.check(
            f"{label}: every command answered",
            result["answered"] == args.commands,
            f"{result['answered']} of {args.commands} !jedisith got a verdict",
        )
    lite = results["litert"]["hwm_classify_kb"]
    tf = results["tensorflow"]["hwm_classify_kb"]
    if "notebook" in results:
        report.outcome(
            "peak RSS serving !jedisith: notebook-style bot / litert",
            results["notebook"]["hwm_classify_kb"] / lite,
        )
    if args.features:
        report.outcome(
            f"litert bot peak RSS, with {args.features} !features too",
            mb(results["litert"]["hwm_kb"]),
            unit="MB",
            target=TARGET_MB,
            better="at_most",
        )
        report.outcome(
            "peak RSS with !features: tensorflow / litert",
            results["tensorflow"]["hwm_kb"] / results["litert"]["hwm_kb"],
        )
    report.outcome(
        f"litert bot peak RSS, {args.commands} !jedisith",
        mb(lite),
        unit="MB",
        target=TARGET_MB,
        better="at_most",
    )
    report.outcome("peak RSS serving !jedisith: tensorflow / litert", tf / lite)


def run(args: argparse.Namespace) -> Report:
    report = Report("memory", "peak RSS of the bot process: litert vs tensorflow backend")
    model_dir, origin = resolve_model(args.model)
    if args.quick:
        args.commands = min(args.commands, 20)
        args.features = min(args.features, 2)
    report.header(
        f"model: {origin}\n{args.commands} !jedisith per bot (half one at a time, half at once), "
        f"then {args.features} !features; MB = 10^6 bytes; peak = VmHWM"
    )
    asyncio.run(measure(args, report, model_dir))
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("memory", __doc__.splitlines()[0])
    p.add_argument("--commands", type=int, default=50, help="!jedisith per bot (default 50)")
    p.add_argument("--features", type=int, default=5, help="!features per bot (default 5)")
    p.add_argument("--no-notebook", action="store_true", help="skip the notebook-style bot")
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
