"""Training throughput: the notebook's input pipeline vs ours, same network, same seed.

* notebook: `keras.utils.image_dataset_from_directory` (validation_split 0.2, seed, 200x200,
  batch 32) twice, `.cache().prefetch(AUTOTUNE)`, decoding inside tf.data during epoch 1.
* ours: `training.data.load_dataset` (every file through `model.preprocess` once, in threads),
  `Dataset.split(0.2, seed)`, `training.data.to_tf_dataset` (uint8 cache, shuffle, batch, cast).

Both train `model.architecture.build_model(seed)` (augmentation layers in the model, as in
the notebook) with RMSprop 1e-4 and binary cross-entropy, from identical initial weights.
The epochs are interleaved (notebook epoch 1, ours epoch 1, ours epoch 2, notebook epoch 2,
...) so machine noise hits both; throughput is training images per second of each epoch
after the first, validation excluded. Validation accuracy is reported for each pipeline's
own split, and both models are also scored on the same independent synthetic test set.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks._common import Report, Stats, parser, run_main, synthetic_dataset

TARGET_RATIO = 1.0
ACCURACY_POINTS = 2.0
BATCH = 32
VAL_SPLIT = 0.2


def epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Per epoch: seconds of training (validation excluded), of which inside the training
        steps (the rest is waiting for input and Keras' own bookkeeping), and the logs."""

        def __init__(self) -> None:
            super().__init__()
            self.train_seconds: list[float] = []
            self.step_seconds: list[float] = []
            self.logs: list[dict[str, float]] = []
            self._start = self._val_start = self._step_start = 0.0
            self._val = self._steps = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start, self._val, self._steps = time.perf_counter(), 0.0, 0.0

        def on_train_batch_begin(self, batch, logs=None):
            self._step_start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self._steps += time.perf_counter() - self._step_start

        def on_test_begin(self, logs=None):
            self._val_start = time.perf_counter()

        def on_test_end(self, logs=None):
            self._val += time.perf_counter() - self._val_start

        def on_epoch_end(self, epoch, logs=None):
            self.train_seconds.append(time.perf_counter() - self._start - self._val)
            self.step_seconds.append(self._steps)
            self.logs.append({k: float(v) for k, v in (logs or {}).items()})

    return EpochTimer()


def notebook_pipeline(data_dir, seed: int):
    """Cells 7-9 of the notebook: image_dataset_from_directory, cache, prefetch."""
    import keras
    import tensorflow as tf

    common = dict(validation_split=VAL_SPLIT, seed=seed, image_size=(200, 200), batch_size=BATCH)
    train_ds = keras.utils.image_dataset_from_directory(
        data_dir, subset="training", verbose=False, **common
    )
    val_ds = keras.utils.image_dataset_from_directory(
        data_dir, subset="validation", verbose=False, **common
    )
    n_train = len(train_ds.file_paths)
    train_ds = train_ds.cache().prefetch(buffer_size=tf.data.AUTOTUNE)
    val_ds = val_ds.cache().prefetch(buffer_size=tf.data.AUTOTUNE)
    return train_ds, val_ds, n_train


def our_pipeline(data_dir, seed: int):
    from training.data import load_dataset, to_tf_dataset

    dataset = load_dataset(data_dir)
    train_set, val_set = dataset.split(VAL_SPLIT, seed)
    return (
        to_tf_dataset(train_set, BATCH, shuffle=True, seed=seed),
        to_tf_dataset(val_set, BATCH, shuffle=False, seed=seed),
        len(train_set.labels),
    )


def compiled_model(seed: int):
    import keras

    from model.architecture import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(seed=seed)
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-4),
        metrics=["accuracy"],
    )
    return model


def test_accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    scores = np.concatenate(
        [
            np.asarray(model(images[i : i + 64].astype(np.float32), training=False)).reshape(-1)
            for i in range(0, len(images), 64)
        ]
    )
    return float(np.mean((scores >= 0.5) == labels.astype(bool)))


def run(args: argparse.Namespace) -> Report:
    from training.data import load_dataset

    report = Report("training", "training throughput: notebook input pipeline vs ours")
    if args.quick:
        args.images, args.epochs = min(args.images, 160), min(args.epochs, 2)
    if args.epochs < 2:
        raise SystemExit("--epochs must be at least 2 (the first epoch is not counted)")
    report.header(
        f"{args.images} synthetic images (jpg/png, 200x200), validation split {VAL_SPLIT}, "
        f"batch {BATCH}, {args.epochs} epochs each, interleaved, seed {args.seed}; "
        "CPU training"
    )
    data_dir = synthetic_dataset(args.images, seed=args.seed)
    test_dir = synthetic_dataset(args.test_images, seed=args.seed + 1000)

    report.section("input pipelines")
    start = time.perf_counter()
    nb_train, nb_val, nb_n = notebook_pipeline(data_dir, args.seed)
    report.figure(
        "notebook_setup_s",
        "notebook: set up (decoding happens in epoch 1)",
        time.perf_counter() - start,
        "s",
    )
    start = time.perf_counter()
    our_train, our_val, our_n = our_pipeline(data_dir, args.seed)
    report.figure(
        "ours_setup_s", "ours: decode every file once + set up", time.perf_counter() - start, "s"
    )
    report.figure("train_images", "training images (notebook / ours)", f"{nb_n} / {our_n}")
    pixels = 200 * 200 * 3
    report.figure(
        "cache_mb",
        "tf.data cache of the training set: notebook float32 / ours uint8 (computed)",
        f"{nb_n * pixels * 4 / 1e6:.0f} / {our_n * pixels / 1e6:.0f}",
        "MB",
    )

    models = {"notebook": compiled_model(args.seed), "ours": compiled_model(args.seed)}
    same = all(
        np.array_equal(a, b)
        for a, b in zip(models["notebook"].get_weights(), models["ours"].get_weights(), strict=True)
    )
    report.check("same initial weights", same, "both models built with the same seed")
    data = {"notebook": (nb_train, nb_val, nb_n), "ours": (our_train, our_val, our_n)}
    timers = {name: epoch_timer() for name in models}

    report.section("epochs (interleaved)")
    for epoch in range(args.epochs):
        order = ["notebook", "ours"] if epoch % 2 == 0 else ["ours", "notebook"]
        for name in order:
            train_ds, val_ds, n = data[name]
            models[name].fit(
                train_ds,
                validation_data=val_ds,
                epochs=epoch + 1,
                initial_epoch=epoch,
                verbose=0,
                callbacks=[timers[name]],
                shuffle=False,  # both datasets shuffle themselves (tf.data)
            )
            seconds = timers[name].train_seconds[-1]
            logs = timers[name].logs[-1]
            print(
                f"   epoch {epoch + 1} {name:<8} {seconds:6.1f} s  {n / seconds:5.1f} img/s  "
                f"loss {logs.get('loss', float('nan')):.4f}  "
                f"val_accuracy {logs.get('val_accuracy', float('nan')):.4f}",
                flush=True,
            )

    report.section("images per second, epochs 2 and later (validation excluded)")
    rates = {}
    for name in models:
        n = data[name][2]
        rates[name] = report.stats(
            f"{name}_img_s",
            f"{name}",
            Stats.of([n / s for s in timers[name].train_seconds[1:]]),
            "img/s",
            1,
        )
        report.figure(
            f"{name}_epoch1_img_s",
            f"{name}, epoch 1" + (" (decodes the files)" if name == "notebook" else ""),
            n / timers[name].train_seconds[0],
            "img/s",
        )
        later = zip(timers[name].train_seconds[1:], timers[name].step_seconds[1:], strict=True)
        report.figure(
            f"{name}_outside_steps_pct",
            f"{name}, share of epochs 2+ outside training steps",
            100
            * sum(total - steps for total, steps in later)
            / sum(timers[name].train_seconds[1:]),
            "%",
        )

    report.section("accuracy")
    test = load_dataset(test_dir)
    accuracy = {}
    for name, model in models.items():
        last = timers[name].logs[-1].get("val_accuracy", float("nan"))
        best = max(log.get("val_accuracy", float("nan")) for log in timers[name].logs)
        report.figure(f"{name}_val_accuracy", f"{name}: val_accuracy, last epoch (own split)", last)
        report.figure(f"{name}_best_val_accuracy", f"{name}: val_accuracy, best epoch", best)
        accuracy[name] = test_accuracy(model, test.images, test.labels)
        report.figure(
            f"{name}_test_accuracy",
            f"{name}: accuracy on the same {len(test.labels)} test images",
            accuracy[name],
        )
    val_gap = round(
        100
        * abs(
            timers["notebook"].logs[-1]["val_accuracy"] - timers["ours"].logs[-1]["val_accuracy"]
        ),
        6,
    )
    test_gap = round(100 * abs(accuracy["notebook"] - accuracy["ours"]), 6)
    report.note(
        "the two validation splits hold different images (image_dataset_from_directory's "
        "shuffle vs Dataset.split), and a few epochs on a few hundred images are noisy: one "
        f"validation image is {100 / max(1, round(args.images * VAL_SPLIT)):.1f} points; the "
        "shared test set is the fairer comparison"
    )
    report.outcome(
        "test accuracy gap (same test set)",
        test_gap,
        unit="points",
        target=ACCURACY_POINTS,
        better="at_most",
    )
    report.outcome(
        "val_accuracy gap, last epoch (different splits)",
        val_gap,
        unit="points",
        target=ACCURACY_POINTS,
        better="at_most",
    )
    report.outcome(
        "training img/s: ours / notebook (medians)",
        rates["ours"].median / rates["notebook"].median,
        target=TARGET_RATIO,
    )
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("training", __doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=400, help="synthetic images (default 400)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per pipeline (default 4)")
    p.add_argument("--test-images", type=int, default=200, help="shared test set (default 200)")
    p.add_argument("--seed", type=int, default=123, help="split, init and data seed (123)")
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
