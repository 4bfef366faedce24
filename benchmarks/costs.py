"""Where the time goes: the fixed costs around the network, stage by stage.

Each stage is timed on its own (medians of many calls, interleaved in rounds):

* getting from PNG bytes to the network's input: the notebook's PIL open + `tf.image.resize`
  + slicing + `expand_dims`, against `model.preprocess.load_image` and its parts;
* running the network on one image: `model.predict`, the Keras model called eagerly, our
  `tf.function`, LiteRT `classify` and `features` (batch 1), LiteRT per image in a batch of 32;
* the hand-offs: an executor round trip, and `ModelWorker` with a no-op backend (what the
  queue, the batching wait and the futures cost, without any network arithmetic);
* drawing: the notebook's figure of 64 subplots (build vs save) and our tile + save.

The last line compares the input preparation: notebook / ours.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import subprocess
import sys
import time

import numpy as np

from benchmarks._common import (
    Report,
    Stats,
    cycle,
    interleave,
    ms,
    parser,
    resolve_model,
    run_main,
    sample_pngs,
)


class NoOpBackend:
    """A backend that answers at once: isolates the worker's own costs."""

    name = "noop"

    def classify(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {"score": np.full(len(images), 0.25, dtype=np.float32)}

    def features(self, images: np.ndarray):
        return self.classify(images), []


def noop_classifier():
    from model.bundle import ModelInfo
    from model.runtime import Classifier

    return Classifier(NoOpBackend(), ModelInfo(("jedi", "sith"), (200, 200), 0))


def import_seconds(module: str) -> float:
    """Seconds to import `module` in a fresh interpreter (median of 3)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return float(np.median(times))


def table(report: Report, key: str, samples: dict[str, list[float]], labels: dict[str, str]):
    stats = {}
    for name, label in labels.items():
        stats[name] = report.stats(f"{key}_{name}_ms", label, Stats.of(ms(samples[name])), "ms", 3)
    return stats


async def worker_costs(report: Report, pngs: list[bytes], images: list[np.ndarray], quick: bool):
    from model.preprocess import load_image
    from model.worker import ModelWorker

    calls = 40 if quick else 150
    for wait_ms in (5.0, 0.0):
        worker = ModelWorker(noop_classifier, max_wait=wait_ms / 1000)
        worker.start()
        for image in images[:5]:
            await worker.classify([image])
        times = []
        for i in range(calls):
            start = time.perf_counter()
            await worker.classify([images[i % len(images)]])
            times.append(time.perf_counter() - start)
        report.stats(
            f"worker_alone_wait{wait_ms:g}_ms",
            f"worker, lone request, max_wait {wait_ms:g} ms",
            Stats.of(ms(times)),
            "ms",
            3,
        )
        await worker.aclose()

    loop = asyncio.get_running_loop()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        await loop.run_in_executor(None, int)
        times.append(time.perf_counter() - start)
    report.stats(
        "executor_roundtrip_ms", "executor round trip (no work)", Stats.of(ms(times)), "ms", 3
    )

    worker = ModelWorker(noop_classifier)
    worker.start()
    rounds = 2 if quick else 5
    bursts, decode_only = [], []
    for _ in range(rounds + 1):
        start = time.perf_counter()
        await asyncio.gather(*(worker.classify_bytes([png]) for png in pngs))
        bursts.append((time.perf_counter() - start) / len(pngs))
        start = time.perf_counter()
        for png in pngs:
            load_image(png)
        decode_only.append((time.perf_counter() - start) / len(pngs))
    await worker.aclose()
    report.stats(
        "worker_burst_per_image_ms",
        f"burst of {len(pngs)} via worker (no-op model), per image",
        Stats.of(ms(bursts[1:])),
        "ms",
        3,
    )
    report.stats(
        "decode_sequential_per_image_ms",
        "load_image alone, sequential, per image",
        Stats.of(ms(decode_only[1:])),
        "ms",
        3,
    )


def run(args: argparse.Namespace) -> Report:
    import PIL.Image
    import tensorflow as tf

    from benchmarks._notebook import load_keras_model, notebook_render
    from model.architecture import build_inference_model
    from model.preprocess import load_image, open_image, prepare
    from model.render import render_layer, tile
    from model.runtime import Classifier

    report = Report("costs", "where the time goes: fixed costs around the network")
    model_dir, origin = resolve_model(args.model)
    rounds = 6 if args.quick else 20
    report.header(f"model: {origin}; {rounds} rounds per table, interleaved")
    pngs = sample_pngs(64)
    next_png = cycle(pngs)
    images = [load_image(p) for p in pngs]
    next_image = cycle(images)
    keras_model = load_keras_model(model_dir)
    litert = Classifier.load(model_dir, "litert")
    tf_backend = Classifier.load(model_dir, "tensorflow")
    inference = build_inference_model(keras_model)

    report.section("imports (fresh interpreter)")
    for module in ("ai_edge_litert.interpreter", "tensorflow", "matplotlib.pyplot", "discord"):
        report.figure(f"import_{module}_s", f"import {module}", import_seconds(module), "s")

    report.section("PNG bytes -> network input, one 200x200 image")

    def notebook_prepare():
        image = PIL.Image.open(io.BytesIO(next_png()))
        image = tf.image.resize(image, [200, 200])
        return tf.expand_dims(image[:, :, :3], 0)

    def pil_decode():
        with PIL.Image.open(io.BytesIO(next_png())) as image:
            image.load()

    def tf_resize_only():
        return tf.image.resize(images[0], [200, 200])

    samples = interleave(
        {
            "notebook": notebook_prepare,
            "tf_resize": tf_resize_only,
            "pil_decode": pil_decode,
            "open_image": lambda: open_image(next_png()),
            "load_image": lambda: load_image(next_png()),
        },
        rounds,
        per_round={
            "notebook": 5,
            "tf_resize": 5,
            "pil_decode": 10,
            "open_image": 10,
            "load_image": 10,
        },
    )
    pre = table(
        report,
        "prepare",
        samples,
        {
            "notebook": "notebook: PIL open + tf.image.resize + slice + expand_dims",
            "tf_resize": "  of which tf.image.resize of a decoded array",
            "pil_decode": "PIL open + load (the decode itself)",
            "open_image": "ours: open_image (decode, EXIF, RGB checks)",
            "load_image": "ours: load_image (open_image + prepare)",
        },
    )
    pil_image = open_image(pngs[0])
    prep = interleave({"prepare": lambda: prepare(pil_image)}, rounds, per_round={"prepare": 20})
    table(report, "prepare_only", prep, {"prepare": "  of which prepare (200x200: asarray copy)"})

    report.section("running the network, one image")
    x_float = np.asarray(images[0], np.float32)[None]
    x_tensor = tf.constant(x_float)
    batch32 = np.stack([next_image() for _ in range(32)])
    samples = interleave(
        {
            "predict": lambda: keras_model.predict(x_tensor, verbose=0),
            "eager": lambda: keras_model(x_tensor, training=False),
            "tf_function": lambda: tf_backend.scores([next_image()]),
            "litert": lambda: litert.scores([next_image()]),
            "litert_features": lambda: litert.features(next_image()),
            "litert_batch32": lambda: litert.scores(batch32),
        },
        rounds,
        per_round={"predict": 2, "eager": 3, "tf_function": 5, "litert": 10, "litert_features": 5},
    )
    samples["litert_batch32"] = [s / 32 for s in samples["litert_batch32"]]
    net = table(
        report,
        "network",
        samples,
        {
            "predict": "Keras model.predict (notebook)",
            "eager": "Keras model(x, training=False), eager",
            "tf_function": "our TensorFlow backend (tf.function)",
            "litert": "LiteRT classify, batch 1",
            "litert_features": "LiteRT features (score + 5 maps), batch 1",
            "litert_batch32": "LiteRT classify, per image in a batch of 32",
        },
    )
    del inference

    report.section("hand-offs (no network arithmetic)")
    asyncio.run(worker_costs(report, pngs * 4, images, args.quick))

    report.section("drawing one layer (conv3: 64 maps of 46x46)")
    features = litert.features(images[0])
    maps = features.maps[2]
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    def notebook_build():
        figure = pyplot.figure(figsize=(16, 16))
        for index in range(64):
            ax = figure.add_subplot(8, 8, index + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            pyplot.imshow(maps[:, :, index])
        return figure

    def notebook_build_close():
        pyplot.close(notebook_build())

    def notebook_build_save():
        figure = notebook_build()
        figure.savefig(io.BytesIO(), format="png")
        pyplot.close(figure)

    samples = interleave(
        {
            "nb_build": notebook_build_close,
            "nb_total": notebook_build_save,
            "tile": lambda: tile(maps),
            "ours_total": lambda: render_layer(maps, "conv3"),
        },
        max(2, rounds // 4),
        per_round={"tile": 5, "ours_total": 2},
        warmup=1,
    )
    table(
        report,
        "draw",
        samples,
        {
            "nb_build": "notebook: figure + 64 subplots + imshow",
            "nb_total": "notebook: ... + savefig PNG (1600x1600)",
            "tile": "ours: tile (numpy mosaic)",
            "ours_total": "ours: render_layer (tile + title + PNG)",
        },
    )
    del notebook_render

    report.outcome(
        "network, batch 1: model.predict / LiteRT classify",
        net["predict"].median / net["litert"].median,
    )
    report.outcome(
        "input preparation: notebook / load_image (medians)",
        pre["notebook"].median / pre["load_image"].median,
    )
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("costs", __doc__.splitlines()[0])
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
