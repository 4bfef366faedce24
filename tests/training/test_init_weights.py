"""`--init`: a training starts from a model folder's weights (a server's network from the shared
one's), and a folder without them is a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.bundle import DEFAULT_MODEL_DIR, KERAS_FILE
from training.data import DatasetError
from training.retrain import _parser
from training.train import load_weights_of


def test_training_starts_from_the_shipped_networks_weights() -> None:
    import keras

    started = load_weights_of(DEFAULT_MODEL_DIR, seed=5)
    shipped = keras.saving.load_model(DEFAULT_MODEL_DIR / KERAS_FILE, compile=False)
    assert len(started.weights) == len(shipped.weights)
    for mine, theirs in zip(started.weights, shipped.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


def test_a_folder_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot start from the weights in"):
        load_weights_of(tmp_path, seed=0)


def test_the_trainer_takes_init() -> None:
    args = _parser().parse_args(["--data", "d", "--model", "m", "--work", "w", "--init", "i"])
    assert args.init == Path("i")
