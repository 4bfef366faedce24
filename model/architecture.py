"""The network from the seed notebook, in Keras 3 idioms.

`build_model()` is the training network (augmentation layers included, 622,753 parameters);
`build_inference_model()` shares its weights and starts at Rescaling, because Keras' Random*
layers are identity at inference and do not convert to LiteRT. It also gives the logit (the score
before its sigmoid), which calibration divides by a temperature, and the five feature maps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

IMAGE_SIZE = (200, 200)
CHANNELS = 3
CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
CONV_FILTERS = (16, 32, 64, 64, 64)
POOL_LAYERS = ("pool1", "pool2", "pool3", "pool4", "pool5")
EMBEDDING_LAYER = "dense"  # its 512 outputs (after ReLU) are the features a server's head uses
EMBEDDING_SIZE = 512
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
    """Return a model sharing `model`'s weights whose outputs are a dict: `score`, `logit`,
    `embedding` (the `dense` layer's 512 outputs), the five feature maps `conv1`..`conv5` and
    their max-pooled maps `pool1`..`pool5`.

    It skips the augmentation and dropout layers, so it converts to LiteRT, and one forward
    pass gives what `!jedisith`, the detector and `!features` need.
    """
    import keras

    inputs = keras.Input(shape=(*IMAGE_SIZE, CHANNELS), name="image")
    x = inputs
    outputs = {}
    started = False
    for layer in model.layers:
        if layer.name == "rescaling":
            started = True
        if not started or isinstance(layer, keras.layers.Dropout):
            continue
        if layer.name == "score":
            outputs["logit"] = _logit_layer(layer)(x)
        x = layer(x)
        if layer.name in CONV_LAYERS or layer.name in POOL_LAYERS:
            outputs[layer.name] = x
        elif layer.name == EMBEDDING_LAYER:
            outputs["embedding"] = x
    if not started:
        raise ValueError("model has no 'rescaling' layer: not a jedisith network")
    if "logit" not in outputs or "embedding" not in outputs:
        raise ValueError("model has no 'score' or 'dense' layer: not a jedisith network")
    outputs["score"] = x
    return keras.Model(inputs, outputs, name="jedisith_inference")


def _logit_layer(score_layer: keras.layers.Dense) -> keras.layers.Layer:
    """A layer computing `score_layer` without its sigmoid, on the same weights."""
    import keras

    class Logit(keras.layers.Layer):
        def call(self, x):
            return keras.ops.matmul(x, score_layer.kernel) + score_layer.bias

    return Logit(name="logit")
