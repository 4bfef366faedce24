"""Realistic uploads: phone photos, screenshots, a GIF, a WebP meme, real photographs; today's
decoding against the new one, per kind and through the bot in a burst.

Every other benchmark uses 200x200 PNGs, which nobody posts. This one generates what Discord
servers see (`benchmarks._uploads_data`: 12 MP phone JPEGs at quality 88-92 with 4:2:0 chroma,
EXIF-rotated ones, 3 MP JPEGs, 1080p and 1440p PNG screenshots, an animated GIF, a WebP meme)
and adds the real photographs installed here (Debian's wallpapers, matplotlib's Grace Hopper).

1. Decode to score, per kind, interleaved round by round in one process:
   * today: the frozen copy of `load_image` at a619972 (`benchmarks._uploads_today`), then
     LiteRT `Classifier.scores` on the one image;
   * new: `model.preprocess.load_image` as it is when this runs, then the same `scores`;
   * floor: for a JPEG, Pillow opening the same file with `draft("RGB", (w // 8, h // 8))` and
     loading it, nothing else (what decoding at 1/8 scale costs at least); for the other
     formats, which have no reduced decode, Pillow decoding the file at full size, nothing else.
   Then, untimed, what the change does to the network's input on every file: the mean
   absolute difference of the two 200x200 arrays (0-255 scale) and of the two scores.
2. A burst through the local Discord-compatible server: `--burst` commands at once, each with
   a 12 MP phone photo, to a fresh bot per path: `python -m bot` (new) and
   `python -m benchmarks._uploads_today` (the same bot with today's `load_image` patched in),
   interleaved for `--burst-rounds` rounds; time to the last reply, the replies by kind, the
   bot's peak RSS (VmHWM) and the CPU it used. Twice per round: with a download budget that
   admits every command (`MAX_BYTES_IN_FLIGHT` 1 GiB: every photo is decoded, the comparison
   of the two paths), and with the bot's defaults (100 MiB: some are told to retry).

The issue's targets (ratios in one run): 12 MP decode to score within 1.25x of floor + 4 ms and
at least 4x faster than today; PNG screenshots at least 1.5x faster than today; the burst at
least 4x sooner to the last reply, peak RSS at most 400 MB; on photographs the arrays move at
most 1/255 on average and the scores at most 0.02.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from benchmarks._common import (
    OUT,
    REPO,
    Report,
    Stats,
    interleave,
    ms,
    parser,
    resolve_model,
    run_main,
    sample_pngs,
)
from benchmarks._uploads_burst import PATHS, burst_section, median_of

TARGET_FLOOR = 1.25  # new <= 1.25 x (floor + FLOOR_ALLOWANCE_MS)
FLOOR_ALLOWANCE_MS = 4.0
TARGET_TODAY = 4.0  # today / new on 12 MP JPEGs
TARGET_PNG = 1.5  # today / new on PNG screenshots
TARGET_BURST = 4.0  # today / new, time to the last reply
TARGET_RSS_MB = 400.0
TARGET_PIXEL = 1.0  # mean |difference| of the 200x200 arrays, on the 0-255 scale (1/255)
TARGET_SCORE = 0.02


# -- the paths --------------------------------------------------------------------------------


def today_load(data: bytes) -> np.ndarray:
    from benchmarks._uploads_today import load_image

    return load_image(data)


def new_load(data: bytes) -> np.ndarray:
    import model.preprocess

    return model.preprocess.load_image(data)  # looked up at every call: as it is now


def floor_decode(data: bytes):
    """Pillow decoding the JPEG at 1/8 scale and nothing else: the floor."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (image.width // 8, image.height // 8))
    image.load()
    return image


def full_decode(data: bytes):
    """Pillow decoding the file at full size (the first frame) and nothing else: the floor
    where no reduced decode exists (PNG, GIF, WebP)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def new_path_state() -> str:
    """Which `model/preprocess.py` the new path is: its last commit, and whether the working
    tree changes it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    last = git("log", "-1", "--format=%h %s", "--", "model/preprocess.py")[:90]
    dirty = git("status", "--porcelain", "--", "model/preprocess.py")
    blob = git("hash-object", "model/preprocess.py")[:10]
    where = "with uncommitted changes" if dirty else "as committed"
    return f"model/preprocess.py {where} (blob {blob}); its last commit: {last or 'unknown'}"


# -- part 1: decode to score ------------------------------------------------------------------


def kind_table_row(kind: str, uploads: Sequence[Any]) -> str:
    from benchmarks._uploads_data import megabytes

    sizes = sorted({f"{u.width}x{u.height}" for u in uploads})
    size = sizes[0] if len(sizes) == 1 else f"{len(sizes)} sizes"
    mp = [u.megapixels for u in uploads]
    nbytes = [len(u.data) for u in uploads]
    mp_text = f"{mp[0]:.1f}" if max(mp) - min(mp) < 0.05 else f"{min(mp):.1f}-{max(mp):.1f}"
    bytes_text = (
        megabytes(nbytes[0])
        if len(nbytes) == 1
        else f"{megabytes(min(nbytes))}-{megabytes(max(nbytes))}"
    )
    return f"{kind} ({len(uploads)} files, {size}, {mp_text} MP, {bytes_text})"


def time_kind(classifier, uploads: Sequence[Any], rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each contender on this kind's files, interleaved round by round."""

    def scored(load: Callable[[bytes], np.ndarray]) -> Callable[[], object]:
        state = {"i": 0}

        def call() -> object:
            data = uploads[state["i"] % len(uploads)].data
            state["i"] += 1
            return classifier.scores(load(data)[None])

        return call

    contenders: dict[str, Callable[[], object]] = {
        "today": scored(today_load),
        "new": scored(new_load),
    }
    decode = floor_decode if all(u.format == "JPEG" for u in uploads) else full_decode
    state = {"i": 0}

    def floor() -> object:
        data = uploads[state["i"] % len(uploads)].data
        state["i"] += 1
        return decode(data)

    contenders["floor"] = floor
    return interleave(contenders, rounds, warmup=1)


def fidelity(classifier, uploads: Sequence[Any]) -> dict[str, Any]:
    """Per file: mean |today - new| of the 200x200 arrays (0-255) and of the scores."""
    today = np.stack([today_load(u.data) for u in uploads])
    new = np.stack([new_load(u.data) for u in uploads])
    if today.shape != new.shape:
        raise AssertionError(f"shapes differ: {today.shape} vs {new.shape}")
    pixel = np.abs(today.astype(np.int16) - new.astype(np.int16)).mean(axis=(1, 2, 3))
    score = np.abs(classifier.scores(today) - classifier.scores(new))
    return {
        "pixel": pixel.tolist(),
        "score": score.tolist(),
        "identical": int(sum(np.array_equal(a, b) for a, b in zip(today, new, strict=True))),
        "shape_ok": new.shape[1:] == (200, 200, 3) and new.dtype == np.uint8,
    }


def check_floor(report: Report, uploads: Sequence[Any]) -> None:
    """The floor really decodes at 1/8 scale (draft engaged) on every JPEG."""
    wrong = []
    for upload in uploads:
        if upload.format != "JPEG":
            continue
        image = floor_decode(upload.data)
        w, h = -(-upload.width // 8), -(-upload.height // 8)
        if image.size != (w, h):
            wrong.append(f"{upload.name}: {image.size} for {upload.width}x{upload.height}")
    report.check(
        "the floor decodes every JPEG at 1/8 scale",
        not wrong,
        "; ".join(wrong) if wrong else "draft gave ceil(w/8) x ceil(h/8) on every file",
    )


def decode_section(args, report: Report, classifier, kinds: dict[str, list[Any]]) -> dict:
    report.section(
        f"decode to score, per kind: today / new / floor interleaved, {args.rounds} rounds "
        "(each call the next file of the kind; LiteRT scores batch 1 on both paths)"
    )
    results: dict[str, dict[str, Any]] = {}
    for kind, uploads in kinds.items():
        rounds = max(args.rounds, len(uploads)) if kind.startswith("real") else args.rounds
        seconds = time_kind(classifier, uploads, rounds)
        stats = {name: Stats.of(ms(values)) for name, values in seconds.items()}
        same = fidelity(classifier, uploads)
        results[kind] = {"stats": stats, "fidelity": same, "label": kind_table_row(kind, uploads)}
        line = f"   {kind_table_row(kind, uploads)}\n      "
        line += "   ".join(
            f"{name} {s.median:.1f} ms (p95 {s.p95:.1f})" for name, s in stats.items()
        )
        line += f"   today/new {stats['today'].median / stats['new'].median:.2f}x"
        if "floor" in stats:
            line += (
                f"   new/(floor+{FLOOR_ALLOWANCE_MS:g}) "
                f"{stats['new'].median / (stats['floor'].median + FLOOR_ALLOWANCE_MS):.2f}"
                f"   today/floor {stats['today'].median / stats['floor'].median:.2f}x"
            )
        line += (
            f"\n      |today-new|: pixels {np.mean(same['pixel']):.3f}/255 "
            f"(worst file {max(same['pixel']):.3f}), scores {np.mean(same['score']):.4f} "
            f"(worst {max(same['score']):.4f}); identical arrays {same['identical']}/"
            f"{len(uploads)}"
        )
        print(line, flush=True)
        for name, s in stats.items():
            report.figures[f"{kind} | {name}_ms"] = {"unit": "ms", **asdict(s)}
        report.figures[f"{kind} | fidelity"] = {"value": same, "unit": "0-255 / score"}
        report.check(
            f"{kind}: the new path gives a 200x200x3 uint8 array",
            same["shape_ok"],
            "shape and dtype",
        )
    return results


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """The decode-to-score table, as RESULTS.md shows it."""
    print(
        "   | kind | today median (p95) | new median (p95) | floor (JPEG: 1/8 draft; others: "
        "full decode) | today/new | "
        "new/(floor+4 ms) | today/floor | mean abs pixel diff | mean abs score diff |",
        flush=True,
    )
    print("   | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for result in results.values():
        s = result["stats"]
        f = result["fidelity"]
        floor = f"{s['floor'].median:.1f} ms" if "floor" in s else "-"
        against = (
            f"{s['new'].median / (s['floor'].median + FLOOR_ALLOWANCE_MS):.2f}"
            if "floor" in s
            else "-"
        )
        bound = f"{s['today'].median / s['floor'].median:.2f}x" if "floor" in s else "-"
        print(
            f"   | {result['label']} | {s['today'].median:.1f} ({s['today'].p95:.1f}) ms "
            f"| {s['new'].median:.1f} ({s['new'].p95:.1f}) ms | {floor} "
            f"| {s['today'].median / s['new'].median:.2f}x | {against} | {bound} "
            f"| {np.mean(f['pixel']):.3f} | {np.mean(f['score']):.4f} |",
            flush=True,
        )


# -- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> Report:
    from benchmarks._uploads_data import (
        KINDS,
        PHONE_PHOTO_KINDS,
        PHOTOGRAPH_KINDS,
        describe,
        generated,
        real_photos,
    )
    from model.runtime import Classifier

    report = Report("uploads", "realistic uploads: today's decoding vs the new one")
    model_dir, origin = resolve_model(args.model)
    if args.quick:
        args.rounds = min(args.rounds, 3)
        args.files = min(args.files, 1)
        args.burst = min(args.burst, 8)
        args.burst_rounds = min(args.burst_rounds, 1)
    state = new_path_state()
    report.header(
        f"model: {origin}\nnew path: {state}\n"
        f"today's path: benchmarks._uploads_today (load_image frozen at a619972)\n"
        "MB = 10^6 bytes; times are decode + LiteRT score of one image, in ms"
    )
    report.figures["new_path"] = {"value": state, "unit": ""}

    started = time.perf_counter()
    uploads = generated(OUT / "uploads", args.files, args.seed, KINDS)
    # The phone photos are the burst's attachments: 2x as many of the plain ones.
    extra = generated(OUT / "uploads", 2 * args.files, args.seed, PHONE_PHOTO_KINDS[:1])
    uploads = [*extra, *(u for u in uploads if u.kind != PHONE_PHOTO_KINDS[0])]
    notes = []
    if not args.no_real:
        from benchmarks._ood_data import ensure_wallpapers

        why = ensure_wallpapers()
        if why:
            notes.append(f"no wallpaper photographs: {why}")
        uploads += real_photos(limit=2 if args.quick else None)
    kinds: dict[str, list[Any]] = {}
    for upload in uploads:
        kinds.setdefault(upload.kind, []).append(upload)
    report.figure(
        "files_ready_s", "files drawn or read from the cache", time.perf_counter() - started, "s"
    )
    report.section("the files")
    for kind, items in kinds.items():
        first = describe(items[0])
        extras = ", ".join(
            f"{k} {v}" for k, v in first.items() if k in ("subsampling", "orientation", "frames")
        )
        what = f"{first['format']} {first['mode']}, {extras}"
        print(f"   {kind_table_row(kind, items)}; {what}", flush=True)
        report.figures[f"{kind} | files"] = {
            "value": [
                {"name": u.name, "size": [u.width, u.height], "bytes": len(u.data)} for u in items
            ],
            "unit": "",
        }
    for note in notes:
        report.note(note)

    classifier = Classifier.load(model_dir, "litert")
    floor_files = [u for u in uploads if u.format == "JPEG"]
    check_floor(report, floor_files)
    # A reference row: the 200x200 PNGs every other benchmark uses.
    from benchmarks._uploads_data import Upload

    small = [
        Upload("200x200 PNG (the other benchmarks')", f"{i}.png", png, "PNG", 200, 200)
        for i, png in enumerate(sample_pngs(8))
    ]
    results = decode_section(args, report, classifier, {small[0].kind: small, **kinds})
    report.section("decode to score (the table for RESULTS.md)")
    print_table(results)

    runs = None
    if not args.no_burst:
        photos = [u for u in uploads if u.kind in PHONE_PHOTO_KINDS]
        runs = asyncio.run(burst_section(args, report, model_dir, photos))

    # -- the outcomes, the targets
    for kind in PHONE_PHOTO_KINDS:
        s = results[kind]["stats"]
        report.outcome(
            f"{kind}: new / (floor + {FLOOR_ALLOWANCE_MS:g} ms), medians",
            s["new"].median / (s["floor"].median + FLOOR_ALLOWANCE_MS),
            target=TARGET_FLOOR,
            better="at_most",
            note=f"new {s['new'].median:.1f} ms, floor {s['floor'].median:.1f} ms",
        )
    for kind in PHONE_PHOTO_KINDS:
        s = results[kind]["stats"]
        report.outcome(
            f"{kind}: today / new, medians",
            s["today"].median / s["new"].median,
            target=TARGET_TODAY,
            note=f"today {s['today'].median:.1f} ms, new {s['new'].median:.1f} ms",
        )
    s = results[PHONE_PHOTO_KINDS[0]]["stats"]
    report.outcome(
        f"{PHONE_PHOTO_KINDS[0]}: today / floor, medians (the most any 1/8 decode can gain)",
        s["today"].median / s["floor"].median,
        note="a path within the floor target is at most this much faster than today",
    )
    for kind in ("1080p PNG screenshot", "1440p PNG screenshot"):
        s = results[kind]["stats"]
        report.outcome(
            f"{kind}: today / new, medians",
            s["today"].median / s["new"].median,
            target=TARGET_PNG,
            note=f"today {s['today'].median:.1f} ms, new {s['new'].median:.1f} ms",
        )
    photographs = [k for k in results if k in PHOTOGRAPH_KINDS]
    pixel = {k: float(np.mean(results[k]["fidelity"]["pixel"])) for k in photographs}
    score = {k: float(np.mean(results[k]["fidelity"]["score"])) for k in photographs}
    worst_pixel = max(pixel, key=pixel.get)
    worst_score = max(score, key=score.get)
    report.outcome(
        "photographs: mean abs pixel difference, worst kind",
        pixel[worst_pixel],
        unit="/255",
        target=TARGET_PIXEL,
        better="at_most",
        note=worst_pixel,
    )
    report.outcome(
        "photographs: mean abs score difference, worst kind (percentage points)",
        100 * score[worst_score],
        unit="pp",
        target=100 * TARGET_SCORE,
        better="at_most",
        note=worst_score,
    )
    if runs is not None:
        admit = runs["admit all"]
        today_last = median_of(admit["today"], "last_s")
        new_last = median_of(admit["new"], "last_s")
        paired = [
            t["last_s"] / n["last_s"] for t, n in zip(admit["today"], admit["new"], strict=True)
        ]
        report.figure(
            "burst_round_ratios",
            "burst, admit all: today / new in each round",
            ", ".join(f"{r:.2f}x" for r in paired),
        )
        report.outcome(
            f"burst of {args.burst} phone photos, time to the last reply: today / new",
            today_last / new_last,
            target=TARGET_BURST,
            note=f"today {today_last:.2f} s, new {new_last:.2f} s (medians, every photo decoded; "
            f"round by round {', '.join(f'{r:.2f}x' for r in paired)})",
        )
        for setting, by_path in runs.items():
            peak = max(r["peak_mb"] for r in by_path["new"])
            report.outcome(
                f"burst, {setting}: new bot's peak RSS (worst run)",
                peak,
                unit="MB",
                target=TARGET_RSS_MB,
                better="at_most",
                note=f"today's bot {max(r['peak_mb'] for r in by_path['today']):.0f} MB; "
                + ", ".join(
                    f"{p}: {dict(sum((Counter(r['kinds']) for r in by_path[p]), Counter()))}"
                    for p in PATHS
                ),
            )
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("uploads", __doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20, help="timed rounds per kind (default 20)")
    p.add_argument(
        "--files", type=int, default=2, help="generated files per kind (default 2; 12 MP: 4)"
    )
    p.add_argument("--seed", type=int, default=0, help="what the generated files look like")
    p.add_argument("--burst", type=int, default=50, help="commands at once (default 50)")
    p.add_argument("--burst-rounds", type=int, default=3, help="rounds of bursts (default 3)")
    p.add_argument("--no-burst", action="store_true", help="only the decode measurements")
    p.add_argument(
        "--no-real", action="store_true", help="leave out the real photographs installed here"
    )
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
