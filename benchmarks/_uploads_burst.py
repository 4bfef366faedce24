"""The burst of `benchmarks.uploads`: 12 MP phone photos through a fresh bot per decoding path
(today's frozen copy, the new one), the time to the last reply, memory and CPU."""

import asyncio
import contextlib
import os
import secrets
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import (
    Report,
    sample_pngs,
)

BURST_TIMEOUT = 300.0
SETTLE = 0.3
ADMIT_ALL = {"MAX_BYTES_IN_FLIGHT": str(1 << 30)}
PATHS = ("today", "new")
BOTS = {"today": "benchmarks._uploads_today", "new": "bot"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_burst(
    model_dir: Path, path: str, env: dict[str, str], photos: Sequence[Any], n: int, warm: bytes
) -> dict[str, Any]:
    """A fresh server and bot (`path`'s module, `env`): one small command, then `n` at once,
    each with the next phone photo; the time to the last reply, replies, memory, CPU."""
    from benchmarks._botproc import BotProcess, until_answering
    from benchmarks._soak_load import mb, reply_kind, roomy_limits
    from benchmarks._uploads_today import MARK
    from playground.discord import DiscordServer
    from playground.discord.layouts import message_text

    async with (
        DiscordServer(token=secrets.token_urlsafe(16), limits=roomy_limits()) as server,
        BotProcess(server, model_dir, module=BOTS[path], env=env, name=f"uploads-{path}") as bot,
    ):
        await until_answering(server, warm)
        patched = MARK in bot.log_path.read_text(errors="replace")
        warm_status = bot.status()
        pid = bot.process.pid  # type: ignore[union-attr]
        cpu = cpu_seconds(pid)
        server_cpu = time.process_time()  # this process: the look-alike serving the photos
        start = time.perf_counter()
        messages = await asyncio.gather(
            *(
                server.post_message(
                    "!jedisith",
                    attachments=[(f"IMG_{4000 + i}.jpg", photos[i % len(photos)].data)],
                )
                for i in range(n)
            )
        )

        async def answer(message: dict[str, Any]) -> tuple[float, dict[str, Any]] | None:
            with contextlib.suppress(TimeoutError):
                reply = await server.wait_for_reply(message["id"], timeout=BURST_TIMEOUT)
                return time.perf_counter() - start, reply
            return None

        replies = await asyncio.gather(*(answer(m) for m in messages))
        last = time.perf_counter() - start
        cpu = cpu_seconds(pid) - cpu
        server_cpu = time.process_time() - server_cpu
        await asyncio.sleep(SETTLE)
        after = bot.status()
    kinds = Counter(reply_kind(message_text(r[1])) if r else "missing" for r in replies)
    return {
        "path": path,
        "patched": patched,
        "last_s": last,
        "median_s": float(np.median([r[0] for r in replies if r])) if any(replies) else None,
        "kinds": dict(kinds),
        "warm_mb": mb(warm_status["VmRSS"]),
        "peak_mb": mb(after["VmHWM"]),
        "cpu_s": cpu,
        "cores": cpu / last,
        "server_cpu_s": server_cpu,
        "bytes": sum(len(photos[i % len(photos)].data) for i in range(n)),
    }


async def burst_section(
    args, report: Report, model_dir: Path, photos: Sequence[Any]
) -> dict[str, dict[str, list[dict]]]:
    from benchmarks._uploads_data import megabytes

    n = args.burst
    total = sum(len(photos[i % len(photos)].data) for i in range(n))
    settings = {"admit all": ADMIT_ALL} if args.quick else {"admit all": ADMIT_ALL, "defaults": {}}
    report.section(
        f"burst: {n} commands at once, each with a 12 MP phone photo ({len(photos)} files "
        f"cycled, {megabytes(total)} in all), a fresh bot per run, {args.burst_rounds} round(s), "
        f"paths interleaved; settings: "
        + "; ".join(f"{name} ({_env_text(env)})" for name, env in settings.items())
    )
    warm = sample_pngs(1)[0]
    runs: dict[str, dict[str, list[dict]]] = {s: {p: [] for p in PATHS} for s in settings}
    for round_ in range(args.burst_rounds):
        for setting, env in settings.items():
            order = PATHS if round_ % 2 == 0 else PATHS[::-1]
            for path in order:
                result = await one_burst(model_dir, path, env, photos, n, warm)
                runs[setting][path].append(result)
                print(
                    f"   round {round_ + 1} {setting:<9} {path:<5}  last reply "
                    f"{result['last_s']:6.2f} s  median {result['median_s'] or 0:6.2f} s  "
                    f"peak {result['peak_mb']:5.0f} MB (warm {result['warm_mb']:.0f})  "
                    f"bot CPU {result['cpu_s']:4.1f} s = {result['cores']:.2f} cores, "
                    f"look-alike {result['server_cpu_s']:4.1f} s  {result['kinds']}",
                    flush=True,
                )
    for setting, by_path in runs.items():
        for path, results in by_path.items():
            report.check(
                f"{setting}, {path}: the bot ran with {path}'s load_image",
                all(r["patched"] == (path == "today") for r in results),
                "the log says the frozen copy was patched in"
                if path == "today"
                else "no patch in the log",
            )
            missing = sum(r["kinds"].get("missing", 0) for r in results)
            report.check(
                f"{setting}, {path}: every command answered",
                missing == 0,
                f"{missing} of {n * len(results)} unanswered",
            )
            if setting == "admit all":
                judged = sum(
                    r["kinds"].get("verdict", 0) + r["kinds"].get("refused", 0) for r in results
                )
                report.check(
                    f"{setting}, {path}: every photo decoded and scored",
                    judged == n * len(results),
                    f"{judged} of {n * len(results)} got a verdict or 'Not a Jedi or a Sith?'",
                )
    report.figures["bursts"] = {"value": runs, "unit": ""}
    report.section("burst (the table for RESULTS.md; medians over the rounds, range in brackets)")
    print(
        "   | setting | path | last reply | median reply | peak RSS | bot CPU per photo | "
        "cores used by the bot | replies |",
        flush=True,
    )
    print("   | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for setting, by_path in runs.items():
        for path, results in by_path.items():
            lasts = [r["last_s"] for r in results]
            peaks = [r["peak_mb"] for r in results]
            kinds = sum((Counter(r["kinds"]) for r in results), Counter())
            print(
                f"   | {setting} | {path} | {np.median(lasts):.2f} s ({min(lasts):.2f}-"
                f"{max(lasts):.2f}) | {median_of(results, 'median_s'):.2f} s "
                f"| {np.median(peaks):.0f} MB ({min(peaks):.0f}-{max(peaks):.0f}) "
                f"| {1e3 * median_of(results, 'cpu_s') / n:.0f} ms "
                f"| {median_of(results, 'cores'):.2f} "
                f"| {', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))} |",
                flush=True,
            )
    return runs


def _env_text(env: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in env.items()) or "the bot's, MAX_BYTES_IN_FLIGHT 100 MiB"


def median_of(results: Sequence[dict], key: str) -> float:
    return float(np.median([r[key] for r in results]))
