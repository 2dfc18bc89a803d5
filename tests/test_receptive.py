"""Receptive fields, checked by brute force: the gradient of one output unit with respect to
the input is non-zero only inside the box, and (for a linear model, where nothing cancels a
path) its non-zero pixels reach every edge of the box.
"""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from utils.explain.receptive import field_geometry, receptive_field
from utils.model.store import load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def linear_model():
    """Every geometry: same and valid padding, stride 2 (padded after only), dilation, an
    overlapping average pool, and layers that keep positions."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((20, 20, 1))
    x = layers.Conv2D(2, 3, padding="same", name="same")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Conv2D(2, 3, strides=2, padding="same", name="stride")(x)
    x = layers.AveragePooling2D(3, strides=1, padding="same", name="pool")(x)
    x = layers.Conv2D(2, 3, dilation_rate=2, name="dilated")(x)
    x = layers.Conv2D(2, 2, strides=2, name="valid")(x)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, layers.Dense(3, name="dense")(x))


def gradient_reach(model, layer_name, y, x, channel=0, face=None):
    """The input pixels ``(H, W)`` where the unit's gradient is not zero (on random pixels by default)."""
    to_layer = keras.Model(model.input, model.get_layer(layer_name).output)
    face = np.random.default_rng(1).random(tuple(model.input.shape[1:])) if face is None else face
    face = tf.constant(face[None], dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(face)
        unit = to_layer(face, training=False)[0, y, x, channel]
    return np.abs(tape.gradient(unit, face).numpy()[0]).sum(axis=-1) > 0


@pytest.fixture(scope="module")
def model():
    return linear_model()


@pytest.mark.parametrize("name, y, x", [
    ("same", 0, 0), ("same", 19, 10), ("bn", 7, 7), ("stride", 0, 0), ("stride", 9, 9), ("stride", 4, 6),
    ("pool", 0, 9), ("pool", 5, 5), ("dilated", 0, 0), ("dilated", 5, 2), ("valid", 0, 0), ("valid", 2, 1),
])
def test_box_is_exactly_where_the_gradient_reaches(model, name, y, x):
    field = receptive_field(model, name, y, x)
    rows, columns = np.nonzero(gradient_reach(model, name, y, x))
    assert field["box"] == [rows.min(), columns.min(), rows.max() + 1, columns.max() + 1]
    assert not field["whole_input"]


def test_field_size_and_jump_follow_the_strides(model):
    field = receptive_field(model, "valid", 1, 1)
    # 3 (same) + 2 x 1 (stride 2 conv) + 2 x 2 (pool 3) + 4 x 2 (kernel 3 dilated by 2) + 1 x 4 (2x2 conv)
    assert field["field"] == [19, 19] and field["jump"] == [4, 4]


def test_geometry_gives_every_positions_box(model):
    """What a page computes per mouse move from the numbers it got once per layer."""
    for name in ("same", "bn", "stride", "pool", "dilated", "valid"):
        geometry = field_geometry(model, name)
        rows, columns = model.get_layer(name).output.shape[1:3]
        start, jump, field = (np.array(geometry[key]) for key in ("start", "jump", "field"))
        for y in range(rows):
            for x in range(columns):
                first = start + np.array([y, x]) * jump
                box = [*np.maximum(first, 0), *np.minimum(first + field, geometry["input_shape"])]
                assert box == receptive_field(model, name, y, x)["box"], (name, y, x)
    assert field_geometry(model, "dense")["whole_input"] and field_geometry(model, "stride")["start"] == [-1, -1]


def test_flat_layers_see_the_whole_input(model):
    for name in ("flatten", "dense"):
        assert receptive_field(model, name) == {
            "layer": name, "y": 0, "x": 0, "box": [0, 0, 20, 20], "field": [20, 20], "jump": [20, 20],
            "input_shape": [20, 20], "whole_input": True}


def test_bad_positions_and_layers_say_what_is_valid(model):
    with pytest.raises(ValueError, match=r"outside layer 'stride' \(y 0..9, x 0..9\)"):
        receptive_field(model, "stride", 10, 0)
    with pytest.raises(ValueError, match="no positions .*y and x must be 0"):
        receptive_field(model, "dense", 1, 0)
    with pytest.raises(ValueError, match="unknown layer 'nope' .*same, bn"):
        receptive_field(model, "nope")


def test_shipped_baseline_boxes_hold_its_gradients(astronaut_bgr, astronaut_face_box):
    """ReLU and max pooling cut paths, so the gradient covers part of the box, never more."""
    from utils.faces.preprocess import preprocess
    left, top, width, height = astronaut_face_box
    face = preprocess(astronaut_bgr[top:top + height, left:left + width], 48, 48)
    path = os.path.join(ROOT, "models", "baseline_cnn.h5")
    if not os.path.isfile(path):
        pytest.skip("models/baseline_cnn.h5 is missing (it is committed: check out the whole repository)")
    model, _ = load_model(path)
    for name in ("conv1", "pool2", "conv3"):
        output = keras.Model(model.input, model.get_layer(name).output).predict_on_batch(face[None])[0]
        y, x = np.unravel_index(np.argmax((output > 0).sum(axis=-1)), output.shape[:2])  # most units alive
        y0, x0, y1, x1 = receptive_field(model, name, y, x)["box"]
        for channel in np.flatnonzero(output[y, x] > 0)[:6]:
            reached = gradient_reach(model, name, y, x, channel, face)
            assert reached.any()
            reached[y0:y1, x0:x1] = False
            assert not reached.any(), f"{name} ({y}, {x}) channel {channel} reaches outside {[y0, x0, y1, x1]}"
