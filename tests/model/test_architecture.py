"""The network is the notebook's, layer for layer."""

from __future__ import annotations

import numpy as np
import pytest

from model.architecture import (
    CONV_FILTERS,
    CONV_LAYERS,
    PARAMETER_COUNT,
    build_inference_model,
    build_model,
)

# (layer class, output shape without the batch axis, parameters), from the notebook's summary.
NOTEBOOK_SUMMARY = [
    ("RandomFlip", (200, 200, 3), 0),
    ("RandomRotation", (200, 200, 3), 0),
    ("RandomContrast", (200, 200, 3), 0),
    ("RandomZoom", (200, 200, 3), 0),
    ("Rescaling", (200, 200, 3), 0),
    ("Conv2D", (198, 198, 16), 448),
    ("Dropout", (198, 198, 16), 0),
    ("MaxPooling2D", (99, 99, 16), 0),
    ("Conv2D", (97, 97, 32), 4640),
    ("MaxPooling2D", (48, 48, 32), 0),
    ("Conv2D", (46, 46, 64), 18496),
    ("MaxPooling2D", (23, 23, 64), 0),
    ("Conv2D", (21, 21, 64), 36928),
    ("MaxPooling2D", (10, 10, 64), 0),
    ("Conv2D", (8, 8, 64), 36928),
    ("MaxPooling2D", (4, 4, 64), 0),
    ("Flatten", (1024,), 0),
    ("Dropout", (1024,), 0),
    ("Dense", (512,), 524800),
    ("Dropout", (512,), 0),
    ("Dense", (1,), 513),
]


@pytest.fixture(scope="module")
def network():
    return build_model(seed=0)


def test_layers_match_the_notebook_summary(network) -> None:
    layers = [layer for layer in network.layers if type(layer).__name__ != "InputLayer"]
    got = [
        (type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params())
        for layer in layers
    ]
    assert got == NOTEBOOK_SUMMARY


def test_parameter_count_and_all_trainable(network) -> None:
    assert network.count_params() == PARAMETER_COUNT == 622_753
    trainable = sum(int(np.prod(w.shape)) for w in network.trainable_weights)
    assert trainable == PARAMETER_COUNT


def test_convolutions_are_named_and_3x3(network) -> None:
    for name, filters in zip(CONV_LAYERS, CONV_FILTERS, strict=True):
        layer = network.get_layer(name)
        assert layer.filters == filters
        assert tuple(layer.kernel_size) == (3, 3)
        assert layer.activation.__name__ == "relu"
    assert network.get_layer("score").activation.__name__ == "sigmoid"


def test_augmentation_settings_are_the_notebook_s(network) -> None:
    assert network.get_layer("random_flip").mode == "horizontal_and_vertical"
    assert network.get_layer("random_rotation").factor == (-0.2, 0.2)
    assert network.get_layer("random_zoom").height_factor == (-0.3, -0.2)
    assert network.get_layer("rescaling").scale == pytest.approx(1 / 255)
    rates = [layer.rate for layer in network.layers if type(layer).__name__ == "Dropout"]
    assert rates == [0.2, 0.2, 0.2]


def test_inference_model_shares_weights_and_outputs_maps(network) -> None:
    inference = build_inference_model(network)
    assert inference.count_params() == PARAMETER_COUNT
    shapes = {name: tuple(output.shape[1:]) for name, output in inference.output.items()}
    assert shapes == {
        "score": (1,),
        "logit": (1,),
        "embedding": (512,),
        "conv1": (198, 198, 16),
        "pool1": (99, 99, 16),
        "conv2": (97, 97, 32),
        "pool2": (48, 48, 32),
        "conv3": (46, 46, 64),
        "pool3": (23, 23, 64),
        "conv4": (21, 21, 64),
        "pool4": (10, 10, 64),
        "conv5": (8, 8, 64),
        "pool5": (4, 4, 64),
    }
    images = np.random.default_rng(0).integers(0, 256, (2, 200, 200, 3)).astype(np.float32)
    expected = np.asarray(network(images, training=False))
    got = inference(images, training=False)
    np.testing.assert_allclose(np.asarray(got["score"]), expected, atol=1e-6)
    assert not any("random" in layer.name for layer in inference.layers)


def test_the_logit_is_the_score_before_its_sigmoid(network) -> None:
    inference = build_inference_model(network)
    images = np.random.default_rng(1).integers(0, 256, (3, 200, 200, 3)).astype(np.float32)
    got = inference(images, training=False)
    logit = np.asarray(got["logit"], dtype=np.float64)
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), np.asarray(got["score"]), atol=1e-6)
    # Shared, not copied: changing the score layer's weights changes the logit.
    kernel, bias = network.get_layer("score").get_weights()
    network.get_layer("score").set_weights([kernel, bias + 1.0])
    try:
        moved = np.asarray(inference(images, training=False)["logit"], dtype=np.float64)
        np.testing.assert_allclose(moved, logit + 1.0, atol=1e-4)
    finally:
        network.get_layer("score").set_weights([kernel, bias])


def test_inference_model_refuses_other_networks() -> None:
    import keras

    inputs = keras.Input((200, 200, 3))
    other = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="rescaling"):
        build_inference_model(other)
