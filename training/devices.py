"""Where a training run computes: one device, or several on one machine.

- One device (the default on a machine with at most one GPU): TensorFlow's default strategy.
- Several devices (`--devices N`, or every GPU when several are visible):
  `tf.distribute.MirroredStrategy`, one replica of the network per device, kept identical.
  On a machine with no GPU, `--devices N` splits the CPU into N logical devices (the same cores:
  a way to try the multi-device path, not a faster one); that must happen before TensorFlow
  starts, which `jedisith-train` does first.

The batch size is the global batch, as in the notebook: with `--batch-size 32` and R replicas,
each replica computes the gradients of 32 / R images of the batch and their mean is applied to
every replica, so a step is the step of one device on the same 32 images, whatever R (the
batch must split evenly).

Several machines are not supported: `TF_CONFIG` (TensorFlow's cluster variable) naming more
than one worker is refused with a `DeviceError`. `tf.distribute.MultiWorkerMirroredStrategy`
itself starts, but Keras 3's `fit` (3.15 here, and its main branch) reduces the first batch
across the workers to build the model, and that strategy cannot reduce a batch of images and
labels: the run fails in its first step (keras-team/keras#20585, tensorflow/tensorflow#72388).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

MULTI_WORKER_REFUSED = (
    "TF_CONFIG names {workers} workers: training across machines is not supported, because "
    "Keras 3's fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585); train on "
    "one machine's GPUs with --devices N, or unset TF_CONFIG"
)


class DeviceError(ValueError):
    """The devices asked for cannot be used; the message says why."""


def workers_in_environment(environ: dict[str, str] | None = None) -> int:
    """How many workers `TF_CONFIG` names (1 when it is unset)."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return 1
    try:
        cluster = json.loads(text).get("cluster", {})
        return max(1, sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")))
    except (ValueError, TypeError, AttributeError) as error:
        raise DeviceError(f"TF_CONFIG is not TensorFlow's cluster JSON: {error}") from None


def split_cpu(count: int) -> None:
    """Make `count` logical CPU devices of the first CPU; only before TensorFlow starts."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    )


@dataclass(frozen=True)
class Placement:
    """The strategy a run trains under and the devices it spans."""

    strategy: Any  # tf.distribute.Strategy
    kind: str  # "one device" or "mirrored"
    devices: tuple[str, ...]

    @property
    def replicas(self) -> int:
        """Replicas in all: the global batch is split this many ways."""
        return int(self.strategy.num_replicas_in_sync)

    def per_replica_batch(self, batch_size: int) -> int:
        if batch_size % self.replicas:
            raise DeviceError(
                f"--batch-size {batch_size} does not split evenly over {self.replicas} "
                f"devices; use a multiple of {self.replicas}"
            )
        return batch_size // self.replicas

    def describe(self, batch_size: int) -> str:
        where = ", ".join(self.devices)
        if self.kind == "one device":
            return f"one device ({where})"
        return (
            f"{self.replicas} devices, MirroredStrategy ({where}); global batch {batch_size}, "
            f"{batch_size // self.replicas} on each"
        )

    def as_dict(self, batch_size: int) -> dict:
        return {
            "strategy": type(self.strategy).__name__,
            "kind": self.kind,
            "devices": list(self.devices),
            "replicas": self.replicas,
            "global_batch": batch_size,
            "per_replica_batch": batch_size // self.replicas,
        }


def place(devices: int | None = None, workers: int = 1) -> Placement:
    """The strategy for `--devices` (None: every GPU when several are visible, else one
    device); `workers` (from `workers_in_environment`) above 1 is refused. Raises
    `DeviceError`."""
    if workers > 1:
        raise DeviceError(MULTI_WORKER_REFUSED.format(workers=workers))
    if devices is not None and devices < 1:
        raise DeviceError("--devices must be at least 1")
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if gpus:
        if devices is not None and devices > len(gpus):
            raise DeviceError(f"--devices {devices}: only {len(gpus)} GPUs are visible")
        chosen = gpus[: devices or len(gpus)]
    else:
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        if devices is not None and devices > len(cpus):
            raise DeviceError(
                f"--devices {devices}: no GPU is visible and the CPU is {len(cpus)} logical "
                "device(s) (jedisith-train splits it when asked, before TensorFlow starts)"
            )
        chosen = cpus[: devices or 1]
    if len(chosen) == 1:
        return Placement(tf.distribute.get_strategy(), "one device", tuple(chosen))
    return Placement(tf.distribute.MirroredStrategy(chosen), "mirrored", tuple(chosen))
