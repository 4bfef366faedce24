"""Training on several devices: MirroredStrategy on one CPU split into two logical devices (in a
subprocess: logical devices must be made before TensorFlow starts, and this session's may
have); several machines (TF_CONFIG) refused in one line.

What is the same, and how closely:

- a small network with no randomness in it (`tiny_network`) gets the same weights from one
  device and from two, to 1e-5 (4e-9 here): a step over 2 x 8 images is the step over the 16
  images of one device's batch (the global batch split, the gradients averaged), and the
  batches are the same, in memory on one device and streamed on two;
- the notebook's network, whose augmentation and dropout draw their own random numbers on each
  replica, is compared on what it scores: validation accuracy within one image and loss within
  0.02 after an epoch, from the same seed, on one device and on two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.devices import DeviceError, workers_in_environment

ROOT = Path(__file__).resolve().parents[2]
TINY_TOLERANCE = 1e-5

# Run in a subprocess: the networks, how each is trained, and the comparison's four runs.
MIRRORED = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np

def tiny_network(seed):
    import keras
    from keras import layers
    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input((200, 200, 3))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.AveragePooling2D(10)(x)
    x = layers.Conv2D(4, 3, activation="relu", kernel_initializer=init)(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid", kernel_initializer=init)(x)
    return keras.Model(inputs, outputs)

def run(data_dir, placement, network=None, epochs=2, data_path="memory"):
    import keras
    from training.train import TrainConfig, fit_network, load_training_data

    config = TrainConfig(
        data_dir, epochs=epochs, batch_size=16, val_split=1 / 3, verbose=0,
        learning_rate=1e-3, data_path=data_path,
    )
    dataset = load_training_data(config, report=lambda _: None)
    train_set, val_set = dataset.split(config.val_split, config.seed)
    logs = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, epoch_logs=None):
            logs.append({k: float(v) for k, v in (epoch_logs or {}).items()})

    model, _ = fit_network(
        config, train_set, val_set, placement=placement, callbacks=[Record()], network=network
    )
    return {"weights": [w.tolist() for w in model.get_weights()] if network else None,
            "logs": logs, "replicas": placement.replicas, "kind": placement.kind}

from training.devices import place, split_cpu
split_cpu(2)
data_dir = sys.argv[1]
one, two = place(1), place(2)  # one strategy per process: a second one's collectives collide
out = {
    "tiny_1": run(data_dir, one, tiny_network),
    "tiny_2": run(data_dir, two, tiny_network, data_path="stream"),
    "notebook_1": run(data_dir, one, epochs=1),
    "notebook_2": run(data_dir, two, epochs=1),
}
print(json.dumps(out))
"""


def _run(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _largest_difference(a: list, b: list) -> float:
    pairs = zip(a, b, strict=True)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in pairs)


@pytest.mark.slow
def test_two_devices_train_like_one(tiny_dataset: Path) -> None:
    result = _run(MIRRORED, str(tiny_dataset))
    one, two = result["tiny_1"], result["tiny_2"]
    assert (one["replicas"], two["replicas"]) == (1, 2) and two["kind"] == "mirrored"
    # The same steps: 32 training images, batches of 16 (8 on each replica), two epochs.
    assert _largest_difference(one["weights"], two["weights"]) < TINY_TOLERANCE
    assert one["logs"][1]["loss"] < one["logs"][0]["loss"]  # it did train
    for a, b in zip(one["logs"], two["logs"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=TINY_TOLERANCE)
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=1e-6)

    notebook_one, notebook_two = result["notebook_1"]["logs"], result["notebook_2"]["logs"]
    validation_images = 16
    for a, b in zip(notebook_one, notebook_two, strict=True):
        assert abs(a["val_accuracy"] - b["val_accuracy"]) <= 1 / validation_images + 1e-6
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=0.02)


def test_tf_config_with_several_workers_is_refused_in_one_line(
    tiny_dataset: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """Keras 3 cannot fit under MultiWorkerMirroredStrategy (training.devices says why)."""
    from training.train import main

    cluster = {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"index": 0}}))
    code = main([str(tiny_dataset), "--out", str(tmp_path / "m"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "TF_CONFIG names 2 workers" in err and "20585" in err
    assert "Traceback" not in err and not (tmp_path / "m").exists()
    assert workers_in_environment({}) == 1
    assert workers_in_environment({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}})}) == 1
    with pytest.raises(DeviceError, match="cluster JSON"):
        workers_in_environment({"TF_CONFIG": "{not json"})


def test_devices_that_are_not_there_are_one_line(tiny_dataset: Path, tmp_path: Path, capsys):
    import tensorflow as tf

    from training.train import main

    tf.constant(0)  # TensorFlow has started: the CPU cannot be split any more, so it is one
    code = main([str(tiny_dataset), "--out", str(tmp_path / "m"), "--devices", "3", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "--devices 3" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()
