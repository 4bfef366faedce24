"""The network from the seed notebook, in Keras 3 idioms.

`build_model()` is the training network (augmentation layers included, 622,753 parameters);
`build_inference_model()` shares its weights and starts at Rescaling, because Keras' Random*
layers are identity at inference and do not convert to LiteRT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

IMAGE_SIZE = (200, 200)
CHANNELS = 3
CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
CONV_FILTERS = (16, 32, 64, 64, 64)
PARAMETER_COUNT = 622_753


def build_model(seed: int | None = None) -> keras.Model:
    """Build the notebook's network: augmentation, five 3x3 convolutions, dense 512, sigmoid."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(*IMAGE_SIZE, CHANNELS), name="image")
    x = layers.RandomFlip("horizontal_and_vertical", seed=seed, name="random_flip")(inputs)
    x = layers.RandomRotation(0.2, seed=seed, name="random_rotation")(x)
    x = layers.RandomContrast(0.2, seed=seed, name="random_contrast")(x)
    x = layers.RandomZoom(height_factor=(-0.3, -0.2), seed=seed, name="random_zoom")(x)
    x = layers.Rescaling(1.0 / 255, name="rescaling")(x)
    x = layers.Conv2D(16, 3, activation="relu", name="conv1")(x)
    x = layers.Dropout(0.2, seed=seed, name="dropout1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(32, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv3")(x)
    x = layers.MaxPooling2D(2, name="pool3")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv4")(x)
    x = layers.MaxPooling2D(2, name="pool4")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(2, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.2, seed=seed, name="dropout2")(x)
    x = layers.Dense(512, activation="relu", name="dense")(x)
    x = layers.Dropout(0.2, seed=seed, name="dropout3")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="score")(x)
    return keras.Model(inputs, outputs, name="jedisith")


def build_inference_model(model: keras.Model) -> keras.Model:
    """Return a model sharing `model`'s weights that outputs the score and the five feature maps.

    It skips the augmentation layers, so it converts to LiteRT, and one forward pass gives
    both what `!jedisith` and what `!features` need.
    """
    import keras

    inputs = keras.Input(shape=(*IMAGE_SIZE, CHANNELS), name="image")
    x = inputs
    feature_maps = []
    started = False
    for layer in model.layers:
        if layer.name == "rescaling":
            started = True
        if not started or isinstance(layer, keras.layers.Dropout):
            continue
        x = layer(x)
        if layer.name in CONV_LAYERS:
            feature_maps.append(x)
    if not started:
        raise ValueError("model has no 'rescaling' layer: not a jedisith network")
    return keras.Model(inputs, [x, *feature_maps], name="jedisith_inference")
