"""`jedisith-train DATA_DIR --out MODEL_DIR --refit`: fit a model folder's detector and
calibration again, keeping its weights, on the split its training run recorded."""

from __future__ import annotations

import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from model.bundle import (
    DETECTOR_FILE,
    KERAS_FILE,
    METADATA_FILE,
    TFLITE_FILE,
    ModelError,
    model_dir,
    publish,
    staging_folder,
)
from training.train import TrainConfig, _say, _tf_version, load_training_data
from training.uncertainty import fit_for_network, summary, write_uncertainty_files


def refit(config: TrainConfig) -> Path:
    """Fit the detector and the calibration of the model in `config.out`, keeping its weights."""
    import shutil

    import keras

    from training.data import DatasetError

    folder = Path(config.out)
    try:
        current = model_dir(folder)  # the version to refit (or the flat folder itself)
        metadata = json.loads((current / METADATA_FILE).read_text(encoding="utf-8"))
        recorded = metadata["training"]
        seed, val_split = int(recorded["seed"]), float(recorded["val_split"])
    except (OSError, ValueError, KeyError, TypeError, ModelError) as error:
        raise DatasetError(
            f"--refit needs a model folder made by jedisith-train at {folder}: {error}"
        ) from None
    print(f"Refitting {folder} on the split of its training run (seed {seed}, {val_split:.0%})")
    dataset = load_training_data(config)
    if dataset.counts() != metadata.get("dataset", {}).get("counts", dataset.counts()):
        raise DatasetError(
            f"{config.data_dir} holds {dataset.counts()}, not the images the model was trained "
            f"on ({metadata['dataset']['counts']}): its validation split would not be held out"
        )
    train_set, val_set = dataset.split(val_split, seed)
    model = keras.saving.load_model(current / KERAS_FILE, compile=False)
    refit_config = TrainConfig(
        config.data_dir, folder, seed=seed, val_split=val_split, ood_keep=config.ood_keep
    )
    with staging_folder(folder) as staging:
        for path in current.iterdir():
            if path.is_file() and path.name not in (TFLITE_FILE, DETECTOR_FILE, METADATA_FILE):
                shutil.copy2(path, staging / path.name)
        uncertainty = fit_for_network(
            model, train_set, val_set, keep=refit_config.ood_keep, seed=seed, report=_say
        )
        metadata.update(write_uncertainty_files(staging, model, val_set, uncertainty))
        metadata["refit"] = {
            "command": config.command or "jedisith-train " + shlex.join(sys.argv[1:]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {"keras": keras.__version__, "tensorflow": _tf_version()},
        }
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        published = publish(staging, folder)
    print(summary(uncertainty))
    print(f"Published the model to {published}")
    return published
