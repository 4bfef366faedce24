"""The seed notebook's way, transcribed from its cells, for the baselines.

* Scoring (cells 88-90): `PIL.Image.open`, `tf.image.resize(image, [200, 200])`, drop alpha,
  `tf.expand_dims`, `model.predict` on the Keras model loaded from `model.keras`. The only
  change: `verbose=0`, so the progress bar is not printed (which favours the notebook).
* Feature maps (cell 91): one pyplot figure (16x16 inches) per layer and one subplot per map,
  8 to a row, ticks removed, `pyplot.imshow` of each map. The notebook showed the figures;
  here each is saved to PNG, which is what a bot would have to send.

TensorFlow and pyplot are imported by the functions that need them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

IMG_HEIGHT = IMG_WIDTH = 200
SIZES = (16, 32, 64, 64, 64)  # the notebook's `sizes`
ROW_SIZE = 8


def load_keras_model(model_dir: Path) -> Any:
    """The training network as the notebook had it in memory: loaded from `model.keras`."""
    import keras

    from model.bundle import model_dir as current

    return keras.saving.load_model(current(Path(model_dir)) / "model.keras")


def notebook_score(model: Any, png: bytes) -> float:
    """Cells 88-90: decode with PIL, resize with TensorFlow, `model.predict` one image."""
    import PIL.Image
    import tensorflow as tf

    our_image = PIL.Image.open(io.BytesIO(png))
    our_image = tf.image.resize(our_image, [IMG_HEIGHT, IMG_WIDTH])
    our_image_array = our_image[:, :, :3]  # discard alpha channel
    our_image_array = tf.expand_dims(our_image_array, 0)
    our_predictions = model.predict(our_image_array, verbose=0)
    return float(our_predictions[0][0])


def notebook_render(
    feature_maps: Sequence[np.ndarray],
    inspect: Callable[[int, Any], None] | None = None,
) -> list[bytes]:
    """Cell 91: one figure per layer, one subplot per map; each figure saved as PNG.

    `feature_maps` are the five (1, h, w, c) arrays (what `feature_model.predict` returned).
    `inspect(layer_index, figure)` is called before each figure is closed.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    files = []
    for map_index, feature_map in enumerate(feature_maps):
        current_index = 1
        num_rows = int(SIZES[map_index] / ROW_SIZE)
        figure = pyplot.figure(figsize=(16, 16))
        for _row in range(num_rows):
            for _column in range(ROW_SIZE):
                ax = figure.add_subplot(num_rows, ROW_SIZE, current_index)
                ax.set_xticks([])
                ax.set_yticks([])
                pyplot.imshow(feature_map[0, :, :, current_index - 1])
                current_index += 1
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        files.append(buffer.getvalue())
        if inspect is not None:
            inspect(map_index, figure)
        pyplot.close(figure)
    return files
