"""The image at the size it needs: original downloads against the media proxy's resized WebP,
side by side on the upload set of the uploads benchmark (`benchmarks._uploads_data`: 12 MP
phone photos, EXIF-rotated ones, 3 MP photos, PNG screenshots, a GIF, a WebP meme, and the
real photographs installed here).

For each file, the resized answer is what the look-alike's CDN serves for the bot's request
(`bot.images.resized_request`: shorter side 400 px, aspect ratio kept, `format=webp`;
`playground.discord.cdn.resized`: Pillow, a JPEG's reduced decode then Lanczos, WebP quality
85), checked as the bot checks it. Files not larger than that are downloaded as they are on
both paths. Then:

* bytes downloaded, per kind and in all, original against resized;
* decode to score (`model.preprocess.load_image` then LiteRT `Classifier.scores`, batch 1),
  interleaved round by round in one process, original against resized;
* the score difference, untimed: mean |score(original) - score(resized)| per file.

Target: the mean absolute score difference over the files resized is at most 0.02. The time
to download is not measured (it depends on the link); bytes are.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from benchmarks._common import (
    OUT,
    CheckFailed,
    Report,
    Stats,
    interleave,
    ms,
    parser,
    resolve_model,
    run_main,
)

TARGET_SCORE = 0.02


@dataclass(frozen=True)
class Pair:
    """One upload as the bot downloads it: the original, and what the resized fetch gives
    (the original itself when the file is not resized)."""

    kind: str
    name: str
    original: bytes
    resized: bytes
    resized_size: tuple[int, int] | None  # None: not resized (small, or not an image)


def shown_size(data: bytes) -> tuple[int, int]:
    """The size Discord reports for an image: turned by its EXIF orientation."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        turned = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)
        return image.size[::-1] if turned else image.size


def pair_of(kind: str, name: str, data: bytes) -> Pair:
    """The file and its resized answer, as the bot asks for it and checks it."""
    from urllib.parse import parse_qsl, urlsplit

    from bot.images import _about, _image_size, resized_size
    from playground.discord.cdn import resized

    width, height = shown_size(data)
    size = resized_size(width, height)
    if size is None:
        return Pair(kind, name, data, data, None)
    url = f"https://media.discordapp.net/a.bin?format=webp&width={size[0]}&height={size[1]}"
    answer = resized(data, dict(parse_qsl(urlsplit(url).query)))
    if answer is None:
        raise CheckFailed(f"{name}: the look-alike's CDN refused to resize it")
    got = _image_size(answer[0])
    if got is None or not _about(got, size) or answer[1] != "image/webp":
        raise CheckFailed(f"{name}: resized to {got} ({answer[1]}), not {size} WebP")
    return Pair(kind, name, data, answer[0], size)


def time_pairs(classifier, pairs: Sequence[Pair], rounds: int) -> dict[str, list[float]]:
    """Seconds per decode to score of each path on these files, interleaved round by round."""
    from model.preprocess import load_image

    def scored(which: str) -> Callable[[], object]:
        state = {"i": 0}

        def call() -> object:
            data = getattr(pairs[state["i"] % len(pairs)], which)
            state["i"] += 1
            return classifier.scores(load_image(data)[None])

        return call

    return interleave({"original": scored("original"), "resized": scored("resized")}, rounds)


def score_difference(classifier, pairs: Sequence[Pair]) -> list[float]:
    """Per file: |score(original) - score(resized)|."""
    from model.preprocess import load_image

    original = classifier.scores(np.stack([load_image(p.original) for p in pairs]))
    resized = classifier.scores(np.stack([load_image(p.resized) for p in pairs]))
    return np.abs(original - resized).tolist()


def uploads_of(args: argparse.Namespace, report: Report) -> list[Any]:
    from benchmarks._uploads_data import KINDS, generated, real_photos

    uploads = generated(OUT / "uploads", args.files, args.seed, KINDS)
    if not args.no_real:
        from benchmarks._ood_data import ensure_wallpapers

        why = ensure_wallpapers()
        if why:
            report.note(f"no wallpaper photographs: {why}")
        uploads += real_photos(limit=2 if args.quick else None)
    return uploads


def run(args: argparse.Namespace) -> Report:
    from benchmarks._uploads_data import megabytes
    from model.runtime import Classifier

    report = Report("proxy", "the image at the size it needs: original vs resized downloads")
    model_dir, origin = resolve_model(args.model)
    if args.quick:
        args.rounds = min(args.rounds, 3)
        args.files = min(args.files, 1)
    report.header(
        f"model: {origin}\nresized: shorter side 400 px, WebP quality 85 (the look-alike's CDN)\n"
        "MB = 10^6 bytes; times are decode + LiteRT score of one image, in ms"
    )
    kinds: dict[str, list[Pair]] = {}
    for upload in uploads_of(args, report):
        kinds.setdefault(upload.kind, []).append(pair_of(upload.kind, upload.name, upload.data))
    everything = [pair for pairs in kinds.values() for pair in pairs]
    report.check(
        "every resized answer passes the bot's checks (WebP, the size asked)",
        True,
        f"{sum(p.resized_size is not None for p in everything)} of {len(everything)} resized",
    )
    classifier = Classifier.load(model_dir, "litert")
    report.section(
        f"per kind: bytes, decode to score (original / resized interleaved, {args.rounds} "
        "rounds), |score difference|"
    )
    print(
        "   | kind | files resized | original bytes | resized bytes | original decode to score "
        "median (p95) | resized median (p95) | original/resized | mean abs score diff (worst) |"
        "\n   | --- | --- | --- | --- | --- | --- | --- | --- |",
        flush=True,
    )
    differences: list[float] = []
    totals = {"original": 0, "resized": 0}
    unchanged = 0  # bytes of the files not resized (the same on both paths)
    for kind, pairs in kinds.items():
        seconds = time_pairs(classifier, pairs, max(args.rounds, len(pairs)))
        stats = {name: Stats.of(ms(values)) for name, values in seconds.items()}
        diff = score_difference(classifier, pairs)
        done = [p for p in pairs if p.resized_size is not None]
        differences += [d for d, p in zip(diff, pairs, strict=True) if p.resized_size is not None]
        nbytes = {w: sum(len(getattr(p, w)) for p in pairs) for w in totals}
        for which in totals:
            totals[which] += nbytes[which]
        unchanged += sum(len(p.original) for p in pairs if p.resized_size is None)
        o, r = stats["original"], stats["resized"]
        print(
            f"   | {kind} | {len(done)}/{len(pairs)} | {megabytes(nbytes['original'])} "
            f"| {megabytes(nbytes['resized'])} | {o.median:.1f} ({o.p95:.1f}) ms "
            f"| {r.median:.1f} ({r.p95:.1f}) ms | {o.median / r.median:.2f}x "
            f"| {np.mean(diff):.4f} ({max(diff):.4f}) |",
            flush=True,
        )
        report.figures[f"{kind} | bytes"] = {"value": nbytes, "unit": "bytes"}
        for name, s in stats.items():
            report.figures[f"{kind} | {name}_ms"] = {"unit": "ms", **asdict(s)}
        report.figures[f"{kind} | score_difference"] = {"value": diff, "unit": "score"}
    report.figure("original_bytes", "bytes downloaded, originals", totals["original"], "bytes")
    report.figure("resized_bytes", "bytes downloaded, resized", totals["resized"], "bytes")
    report.outcome(
        "bytes downloaded, original / resized, all files",
        totals["original"] / totals["resized"],
        note=f"{megabytes(totals['original'])} against {megabytes(totals['resized'])}",
    )
    report.outcome(
        "bytes downloaded, original / resized, the files resized",
        (totals["original"] - unchanged) / max(1, totals["resized"] - unchanged),
        note=f"{len(differences)} files",
    )
    report.outcome(
        "mean abs score difference, files resized (percentage points)",
        100 * float(np.mean(differences)) if differences else 0.0,
        unit="pp",
        target=100 * TARGET_SCORE,
        better="at_most",
        note=f"{len(differences)} files; worst {100 * max(differences, default=0.0):.2f} pp",
    )
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("proxy", __doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10, help="timed rounds per kind (default 10)")
    p.add_argument("--files", type=int, default=3, help="generated files per kind (default 3)")
    p.add_argument("--seed", type=int, default=0, help="what the generated files look like")
    p.add_argument("--no-real", action="store_true", help="only the generated files")
    return run_main(run, p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
