"""GPU: the TensorFlow backend's batch throughput on the GPU against LiteRT on the CPU, and
training images per second against the notebook's 144 ms per batch of 32.

Not part of `make bench` (`python -m benchmarks` runs it only when named: `--only gpu`); run it
wherever a GPU is. Without one it says so and exits 0: no NVIDIA driver
(`/proc/driver/nvidia`, `/dev/nvidia0`), or a driver that TensorFlow does not see (a CPU-only
wheel: `pip install 'tensorflow[and-cuda]'`).

1. Inference: `Classifier.predict` (what the bot's worker calls) on batches of `--batches`
   (default 1, 8, 32, 128) of preprocessed 200x200 images, the TensorFlow backend (`tf.function`,
   on the GPU, memory growth on) and the LiteRT backend (the CPU, every core up to 4), the two
   interleaved round by round; images per second of each, and the largest score difference
   between the two on the same images.
2. Training: `training.data` (every file through `model.preprocess`, the uint8 cache) and the
   notebook's network and optimiser (`benchmarks.training.compiled_model`), batch 32, on the
   GPU: images per second and milliseconds per batch of epoch 1 and of the later epochs,
   against the notebook's log (an RTX 2060 SUPER: "35/35 - 10s 144ms/step" in epoch 1, which
   also decoded the files; no later epoch's time survives in it).
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._common import (
    Report,
    Stats,
    interleave,
    parser,
    resolve_model,
    run_main,
    sample_pngs,
    synthetic_dataset,
)

NOTEBOOK_MS_PER_BATCH = 144.0  # the notebook's epoch 1 on its GPU, batch 32
BATCH = 32
BATCHES = (1, 8, 32, 128)
SCORE_TOLERANCE = 1e-4  # what the backends promise each other (README)


def no_gpu_reason(on_cpu: bool = False) -> str | None:
    """None when TensorFlow sees a GPU (or `on_cpu`); else why not, in one line. Imports
    TensorFlow only when a driver is there."""
    from model.runtime import _has_gpu_driver, tensorflow_installed

    if on_cpu:
        return None
    if not _has_gpu_driver():
        return "no GPU here (no NVIDIA driver: /proc/driver/nvidia, /dev/nvidia0)"
    if not tensorflow_installed():
        return "a GPU driver is present but TensorFlow is not installed (pip install '.[train]')"
    from model.runtime import gpu_available

    if not gpu_available():
        return (
            "a GPU driver is present but TensorFlow sees no GPU (a CPU-only wheel? "
            "pip install 'tensorflow[and-cuda]'), or CUDA_VISIBLE_DEVICES is empty"
        )
    return None


def describe_gpus() -> list[str]:
    import tensorflow as tf

    names = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        names.append(
            f"{device.name}: {details.get('device_name', 'GPU')}"
            + (f" (compute capability {capability[0]}.{capability[1]})" if capability else "")
        )
    return names


def inference(args: argparse.Namespace, report: Report, model_dir) -> None:
    from model.preprocess import load_image
    from model.runtime import Classifier

    largest = max(args.batches)
    pngs = sample_pngs(max(largest, 32))
    images = np.stack([load_image(png) for png in pngs[:largest]])
    backends = {
        "tensorflow": Classifier.load(model_dir, "tensorflow"),
        "litert": Classifier.load(model_dir, "litert"),
    }
    device = getattr(backends["tensorflow"].backend, "device", "?")
    report.figure("tensorflow_device", "the TensorFlow backend runs on", device)
    if device != "GPU" and not args.on_cpu:
        report.check("the TensorFlow backend is on the GPU", False, f"it is on {device}")
    tf_scores = backends["tensorflow"].scores(images)
    lite_scores = backends["litert"].scores(images)
    difference = float(np.max(np.abs(tf_scores - lite_scores)))
    report.figure("max_score_difference", "largest |score| difference, TF vs LiteRT", difference)

    report.section(
        f"Classifier.predict, batches of {', '.join(map(str, args.batches))}: TensorFlow "
        f"({device}) vs LiteRT (CPU), interleaved, {args.rounds} rounds"
    )
    rates: dict[int, dict[str, Stats]] = {}
    for batch in args.batches:
        chunk = images[:batch]
        seconds = interleave(
            {name: (lambda c=c, x=chunk: c.predict(x)) for name, c in backends.items()},
            args.rounds,
            warmup=3,
        )
        rates[batch] = {
            name: report.stats(
                f"{name}_batch{batch}_img_s",
                f"batch {batch:>3}: {name}",
                Stats.of(values).inverse(batch),
                "img/s",
                0,
            )
            for name, values in seconds.items()
        }
    for batch, by_name in rates.items():
        report.outcome(
            f"batch {batch}: TensorFlow on the {device} / LiteRT on the CPU, img/s",
            by_name["tensorflow"].median / by_name["litert"].median,
            note=f"{by_name['tensorflow'].median:.0f} vs {by_name['litert'].median:.0f} img/s",
        )
    report.outcome(
        "largest score difference, TensorFlow vs LiteRT (millionths)",
        difference * 1e6,
        unit="x1e-6",
        target=SCORE_TOLERANCE * 1e6,
        better="at_most",
        note="TF32 convolutions on recent GPUs can move the scores a little",
    )


def training(args: argparse.Namespace, report: Report) -> None:
    from benchmarks.training import compiled_model, epoch_timer, our_pipeline

    report.section(
        f"training: {args.train_images} synthetic images, batch {BATCH}, {args.epochs} epochs "
        "(our pipeline, the notebook's network and optimiser)"
    )
    data_dir = synthetic_dataset(args.train_images, seed=args.seed)
    train_ds, val_ds, n = our_pipeline(data_dir, args.seed)
    model = compiled_model(args.seed)
    timer = epoch_timer()
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=args.epochs,
        verbose=0,
        callbacks=[timer],
        shuffle=False,  # the dataset shuffles itself (tf.data)
    )
    steps = -(-n // BATCH)
    for epoch, seconds in enumerate(timer.train_seconds, start=1):
        print(
            f"   epoch {epoch}: {seconds:6.2f} s  {n / seconds:7.1f} img/s  "
            f"{1e3 * seconds / steps:6.1f} ms per batch of {BATCH}",
            flush=True,
        )
    first = timer.train_seconds[0]
    later = Stats.of([n / s for s in timer.train_seconds[1:]])
    report.figure("train_images", "training images", n)
    report.figure("epoch1_img_s", "epoch 1 (traces the graph)", n / first, "img/s")
    report.stats("later_img_s", "epochs 2+", later, "img/s", 1)
    ms_per_batch = 1e3 * BATCH / later.median
    report.figure("later_ms_per_batch", f"epochs 2+, per batch of {BATCH}", ms_per_batch, "ms")
    first_ms = 1e3 * first / steps
    report.outcome(
        f"training, epoch 1, ms per batch of {BATCH}: the notebook's "
        f"{NOTEBOOK_MS_PER_BATCH:g} ms / ours",
        NOTEBOOK_MS_PER_BATCH / first_ms,
        note=f"ours {first_ms:.1f} ms; both epochs 1 include tracing (the notebook's also "
        "decoded the files, ours decoded them before); the notebook's GPU: an RTX 2060 SUPER",
    )
    report.outcome(
        f"training, epochs 2+, ms per batch of {BATCH}: the notebook's epoch 1 / ours",
        NOTEBOOK_MS_PER_BATCH / ms_per_batch,
        note=f"ours {ms_per_batch:.1f} ms; the notebook's log keeps no later epoch's time",
    )
    report.outcome(
        "training images per second, epochs 2+",
        later.median,
        unit="img/s",
        note=f"the notebook's epoch 1: {BATCH / NOTEBOOK_MS_PER_BATCH * 1e3:.0f} img/s",
    )


def run(args: argparse.Namespace) -> Report:
    report = Report("gpu", "TensorFlow on the GPU vs LiteRT on the CPU; training on the GPU")
    if args.quick:
        args.rounds = min(args.rounds, 3)
        args.batches = [b for b in args.batches if b <= 32] or [1]
        args.train_images, args.epochs = min(args.train_images, 160), min(args.epochs, 2)
    if args.epochs < 2:
        raise SystemExit("--epochs must be at least 2 (the first epoch is not counted)")
    reason = no_gpu_reason(args.on_cpu)
    if reason is not None:
        report.header()
        report.note(f"{reason}: nothing to measure")
        report.figures["gpu"] = {"value": None, "unit": "", "reason": reason}
        return report
    model_dir, origin = resolve_model(args.model)
    from model.runtime import enable_memory_growth

    enable_memory_growth()
    gpus = describe_gpus()
    report.header(
        f"model: {origin}\nGPUs: {'; '.join(gpus) or 'none (--on-cpu: TensorFlow on the CPU)'}"
    )
    report.figures["gpu"] = {"value": gpus, "unit": ""}
    inference(args, report, model_dir)
    training(args, report)
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("gpu", __doc__.splitlines()[0])
    p.add_argument(
        "--batches", type=int, nargs="+", default=list(BATCHES), help="batch sizes (1 8 32 128)"
    )
    p.add_argument("--rounds", type=int, default=20, help="timed rounds per batch size (20)")
    p.add_argument("--train-images", type=int, default=800, help="synthetic images (800)")
    p.add_argument("--epochs", type=int, default=4, help="training epochs (default 4)")
    p.add_argument("--seed", type=int, default=123, help="data, split and initial weights")
    p.add_argument(
        "--on-cpu",
        action="store_true",
        help="measure without a GPU too (TensorFlow on the CPU): to try this script anywhere",
    )
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
