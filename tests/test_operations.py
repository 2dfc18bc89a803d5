"""Operation views: the numbers each view shows reproduce the layer's own output at the
position (read from a Keras sub-model built here) and an independent NumPy computation
from the layer's weights.

A tiny model with random weights covers every kind and setting (same and valid padding,
bias or none, stride 2 with TensorFlow's after-only padding, dilation, average pooling
over padding); the shipped models are checked layer by layer.
"""
import json
import os

import keras
import numpy as np
import pytest
from keras import layers

from conftest import convolutions_model
from utils.explain import operation_text
from utils.explain.operations import flat_source, LayerOperations
from utils.model.architectures import PROBABILITIES_LAYER
from utils.model.store import load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = ("emotion_model", "baseline_cnn")
TOLERANCE = 1e-4


def tiny_model():
    """16x16x2 -> every kind of layer, with batch-norm statistics that are not the identity."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 16, 2), name="face")
    x = layers.Conv2D(3, 3, padding="same", use_bias=False, name="conv_same")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv_stride",
                      bias_initializer="random_normal")(x)
    x = layers.Conv2D(4, 3, dilation_rate=2, padding="valid", name="conv_dilated",
                      bias_initializer="random_normal")(x)
    x = layers.AveragePooling2D(2, strides=1, padding="same", name="average_pool")(x)
    x = layers.MaxPooling2D(2, name="max_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(6, activation="tanh", name="dense", bias_initializer="random_normal")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    x = layers.Dense(5, name="logits")(x)
    outputs = layers.Activation("softmax", name=PROBABILITIES_LAYER)(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(2)
    bn = model.get_layer("bn")
    bn.set_weights([rng.uniform(0.5, 2, 3), rng.normal(0, 1, 3), rng.normal(0, 1, 3), rng.uniform(0.5, 2, 3)])
    return model


def global_pool_model():
    """Global pools and a layer without a view of its own (Rescaling)."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((5, 5, 2), name="face")
    x = layers.Rescaling(2.0, offset=-1.0, name="rescale")(inputs)
    x = layers.Conv2D(3, 3, name="conv")(x)
    return keras.Model(inputs, [layers.GlobalAveragePooling2D(name="global_average")(x),
                                layers.GlobalMaxPooling2D(name="global_max")(x)])


@pytest.fixture(scope="module")
def tiny():
    model = tiny_model()
    return model, LayerOperations(model), np.random.default_rng(4).random((16, 16, 2)).astype(np.float32)


def layer_io(model, face, name):
    """The layer's input and output for ``face``, from a Keras sub-model of its own."""
    layer = model.get_layer(name)
    inputs, outputs = keras.Model(model.input, [layer.input, layer.output]).predict_on_batch(face[None])
    return np.asarray(inputs)[0].astype(np.float64), np.asarray(outputs)[0].astype(np.float64)


def numpy_convolution(inputs, layer):
    """A direct NumPy convolution of the whole map, TensorFlow's padding rule written out anew."""
    kernel, *bias = [w.astype(np.float64) for w in layer.get_weights()]
    (kh, kw), (sy, sx), (dy, dx) = layer.kernel_size, layer.strides, layer.dilation_rate
    height, width = inputs.shape[:2]
    if layer.padding == "same":
        rows, columns = -(-height // sy), -(-width // sx)
        pad_y = max((rows - 1) * sy + (kh - 1) * dy + 1 - height, 0)
        pad_x = max((columns - 1) * sx + (kw - 1) * dx + 1 - width, 0)
        padded = np.pad(inputs, ((pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2), (0, 0)))
    else:
        padded = inputs
        rows = (height - (kh - 1) * dy - 1) // sy + 1
        columns = (width - (kw - 1) * dx - 1) // sx + 1
    out = np.zeros((rows, columns, kernel.shape[-1]))
    for y in range(rows):
        for x in range(columns):
            patch = padded[y * sy:y * sy + (kh - 1) * dy + 1:dy, x * sx:x * sx + (kw - 1) * dx + 1:dx]
            out[y, x] = np.tensordot(patch, kernel, axes=3)
    return out + (bias[0] if bias else 0.0)


# ---- convolution ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, y, x, channel, padded_taps", [
    ("conv_same", 0, 0, 1, 5),        # a corner: the row above and the column left are padding
    ("conv_same", 15, 7, 2, 3),       # the bottom edge
    ("conv_stride", 0, 0, 0, 0),      # stride 2 on 16: TensorFlow pads after only, never before
    ("conv_stride", 7, 7, 3, 5),
    ("conv_dilated", 3, 2, 1, 0),     # valid padding, dilation 2
])
def test_convolution_reproduces_the_layer(tiny, name, y, x, channel, padded_taps):
    model, operations, face = tiny
    layer = model.get_layer(name)
    inputs, outputs = layer_io(model, face, name)
    reference = numpy_convolution(inputs, layer)
    view = operations.operation(face, name, channel, y, x)
    assert view["kind"] == "conv" and view["position"] == {"y": y, "x": x, "channel": channel}
    padding, window = np.array(view["padding"]), np.array(view["window"])
    assert padding.sum() == padded_taps and np.all(window[padding] == 0)
    kernel = layer.get_weights()[0][..., channel]
    assert np.allclose(view["kernel"], kernel)
    assert np.allclose(view["products"], window * kernel)
    assert view["sum"] == pytest.approx(np.sum(window * kernel), abs=TOLERANCE)
    bias = layer.get_weights()[1][channel] if layer.use_bias else 0.0
    assert view["bias"] == pytest.approx(bias, abs=1e-7)
    assert view["pre_activation"] == pytest.approx(reference[y, x, channel], abs=TOLERANCE)
    expected = max(reference[y, x, channel], 0.0) if view["activation"] == "relu" else reference[y, x, channel]
    assert view["result"] == pytest.approx(expected, abs=TOLERANCE)
    assert view["result"] == pytest.approx(outputs[y, x, channel], abs=TOLERANCE)
    assert view["output"] == pytest.approx(outputs[y, x, channel], abs=TOLERANCE)


def test_convolution_window_sits_where_the_stride_puts_it(tiny):
    model, operations, face = tiny
    view = operations.operation(face, "conv_dilated", 0, 1, 3)
    assert view["rows"] == [1, 3, 5] and view["columns"] == [3, 5, 7]
    inputs, _ = layer_io(model, face, "conv_dilated")
    assert np.allclose(view["window"], inputs[1:6:2, 3:8:2])
    assert view["strides"] == [1, 1] and view["dilation"] == [2, 2] and view["padding_mode"] == "valid"


# ---- batch normalisation, activation --------------------------------------------------------

def test_batch_normalisation_uses_the_learned_statistics(tiny):
    model, operations, face = tiny
    inputs, outputs = layer_io(model, face, "bn")
    gamma, beta, mean, variance = model.get_layer("bn").get_weights()
    view = operations.operation(face, "bn", 2, 5, 9)
    epsilon = model.get_layer("bn").epsilon
    expected = (inputs[5, 9, 2] - mean[2]) / np.sqrt(variance[2] + epsilon) * gamma[2] + beta[2]
    assert (view["mean"], view["variance"], view["gamma"], view["beta"]) == pytest.approx(
        (mean[2], variance[2], gamma[2], beta[2]))
    assert view["input"] == pytest.approx(inputs[5, 9, 2], abs=1e-6)
    assert view["result"] == pytest.approx(expected, abs=TOLERANCE)
    assert view["result"] == pytest.approx(outputs[5, 9, 2], abs=TOLERANCE)
    assert f"{mean[2]:.4f}" in view["formula"] and view["formula"].endswith(f"{expected:.4f}")


def test_activation_shows_the_channel_before_and_after(tiny):
    model, operations, face = tiny
    inputs, outputs = layer_io(model, face, "relu")
    channel = int(np.argmin(np.abs((inputs < 0).mean(axis=(0, 1)) - 0.5)))   # the one most mixed in sign
    negative = next(zip(*np.nonzero(inputs[..., channel] < 0)))
    view = operations.operation(face, "relu", channel, *negative)
    assert view["function"] == "relu" and view["input"] < 0 and view["result"] == 0.0 == view["output"]
    assert np.allclose(view["input_map"], inputs[..., channel], atol=1e-6)
    assert np.allclose(view["output_map"], np.maximum(inputs[..., channel], 0), atol=1e-6)
    assert view["zeroed"]["layer"] == pytest.approx((inputs < 0).mean())
    assert view["zeroed"]["channel"] == pytest.approx((inputs[..., channel] < 0).mean())
    assert 0 < view["zeroed"]["channel"] < 1 and view["zeroed"]["channel"] != view["zeroed"]["layer"]


# ---- grouped, depthwise and separable convolutions ------------------------------------------------

@pytest.fixture(scope="module")
def convolutions():
    model = convolutions_model(size=16)
    return model, LayerOperations(model), np.random.default_rng(8).random((16, 16, 1)).astype(np.float32)


def window_under(view, inputs, channels):
    """The input values of ``channels`` at the view's rows and columns, 0 on its padding."""
    rows, columns = np.array(view["rows"]), np.array(view["columns"])
    height, width = inputs.shape[:2]
    values = inputs[np.clip(rows, 0, height - 1)][:, np.clip(columns, 0, width - 1)][..., channels]
    return values * ~np.array(view["padding"])[..., None]


def reproduces_the_output(view, outputs):
    y, x, channel = view["position"]["y"], view["position"]["x"], view["position"]["channel"]
    assert view["result"] == pytest.approx(outputs[y, x, channel], rel=TOLERANCE, abs=TOLERANCE)
    assert "the same number" in operation_text.check(view)


@pytest.mark.parametrize("channel, y, x, group", [(4, 0, 0, [2, 3]), (1, 5, 3, [0, 1])])
def test_a_grouped_convolution_reads_its_groups_input_channels(convolutions, channel, y, x, group):
    model, operations, face = convolutions
    inputs, outputs = layer_io(model, face, "grouped")
    view = operations.operation(face, "grouped", channel, y, x)
    assert view["kind"] == "conv" and view["input_channels"] == group
    assert np.allclose(view["window"], window_under(view, inputs, group))
    assert np.allclose(view["kernel"], model.get_layer("grouped").get_weights()[0][..., channel])
    reproduces_the_output(view, outputs)


@pytest.mark.parametrize("channel, y, x", [(7, 0, 7), (2, 4, 4)])
def test_a_depthwise_convolution_reads_one_input_channel(convolutions, channel, y, x):
    model, operations, face = convolutions
    inputs, outputs = layer_io(model, face, "depthwise")
    view = operations.operation(face, "depthwise", channel, y, x)
    source, multiplier = divmod(channel, 2)     # two filters per input channel
    assert view["kind"] == "conv" and view["input_channels"] == [source]
    kernel = model.get_layer("depthwise").get_weights()[0][:, :, source, multiplier]
    assert np.allclose(np.array(view["kernel"])[..., 0], kernel)
    assert np.allclose(view["window"], window_under(view, inputs, [source]))
    reproduces_the_output(view, outputs)
    assert f"input channel {source}" in operation_text.summary(view)


@pytest.mark.parametrize("channel, y, x", [(3, 0, 0), (4, 2, 1)])
def test_a_separable_convolution_shows_its_depthwise_and_pointwise_steps(convolutions, channel, y, x):
    model, operations, face = convolutions
    inputs, outputs = layer_io(model, face, "separable")
    layer = model.get_layer("separable")
    depthwise_kernel, pointwise_kernel, _ = layer.get_weights()
    view = operations.operation(face, "separable", channel, y, x)
    assert view["kind"] == "separable" and view["input_channels"] == [plane // 2 for plane in range(24)]
    depthwise_step = keras.ops.convert_to_numpy(keras.ops.depthwise_conv(
        inputs[None].astype(np.float32), depthwise_kernel, strides=2, padding="valid"))[0]
    assert np.allclose(view["depthwise"], depthwise_step[y, x], atol=TOLERANCE)
    assert np.allclose(view["pointwise"], pointwise_kernel[0, 0, :, channel])
    assert view["sum"] == pytest.approx(np.dot(depthwise_step[y, x], pointwise_kernel[0, 0, :, channel]), abs=TOLERANCE)
    reproduces_the_output(view, outputs)
    text = "\n".join(operation_text.lines(view))
    assert "pointwise" in text and "depthwise" in text


# ---- pooling ---------------------------------------------------------------------------------

def test_max_pool_names_the_winner(tiny):
    model, operations, face = tiny
    inputs, outputs = layer_io(model, face, "max_pool")
    view = operations.operation(face, "max_pool", 3, 1, 0)
    window = inputs[2:4, 0:2, 3]
    assert view["pool"] == "max" and np.allclose(view["window"], window)
    i, j = view["winner"]
    assert window[i, j] == window.max() and view["winner_position"] == [2 + i, j]
    assert view["result"] == pytest.approx(outputs[1, 0, 3], abs=TOLERANCE) == view["output"]
    assert view["pool_size"] == [2, 2] and view["strides"] == [2, 2]


def test_average_pool_leaves_padding_out_of_the_mean(tiny):
    model, operations, face = tiny
    inputs, outputs = layer_io(model, face, "average_pool")
    inside = operations.operation(face, "average_pool", 0, 1, 2)
    assert inside["count"] == 4 and inside["result"] == pytest.approx(inputs[1:3, 2:4, 0].mean(), abs=TOLERANCE)
    corner = operations.operation(face, "average_pool", 2, 3, 3)   # stride 1, "same": the window hangs over the edge
    assert corner["pool"] == "average" and corner["count"] == 1 and np.array(corner["padding"]).sum() == 3
    assert corner["result"] == pytest.approx(inputs[3, 3, 2], abs=TOLERANCE)
    assert corner["result"] == pytest.approx(outputs[3, 3, 2], abs=TOLERANCE)


@pytest.mark.parametrize("name, pool, reduce", [("global_average", "average", np.mean), ("global_max", "max", np.max)])
def test_global_pools_read_the_whole_channel(name, pool, reduce):
    model = global_pool_model()
    face = np.random.default_rng(5).random((5, 5, 2)).astype(np.float32)
    inputs, outputs = layer_io(model, face, name)
    view = LayerOperations(model).operation(face, name, 1)
    assert view["kind"] == "pool" and view["pool"] == pool and view["global"]
    assert np.allclose(view["window"], inputs[..., 1], atol=1e-6)
    assert view["result"] == pytest.approx(reduce(inputs[..., 1]), abs=TOLERANCE)
    assert view["result"] == pytest.approx(outputs[1], abs=TOLERANCE)


def test_a_layer_without_a_view_gets_a_generic_record():
    model = global_pool_model()
    face = np.random.default_rng(6).random((5, 5, 2)).astype(np.float32)
    view = LayerOperations(model).operation(face, "rescale", 0, 4, 1)
    assert view["kind"] == "generic" and view["type"] == "Rescaling"
    assert view["input"] == pytest.approx(face[4, 1, 0]) and view["output"] == pytest.approx(2 * face[4, 1, 0] - 1)


# ---- flatten, dense, dropout, softmax -----------------------------------------------------------

def test_flatten_says_where_each_number_came_from(tiny):
    model, operations, face = tiny
    inputs, outputs = layer_io(model, face, "flatten")
    view = operations.operation(face, "flatten", 11)
    y, x, channel = view["source"]
    assert (y, x, channel) == (1, 0, 3)  # (1 x 2 + 0) x 4 + 3 = 11: row by row, channel by channel
    assert view["result"] == pytest.approx(inputs[y, x, channel], abs=1e-6) == pytest.approx(outputs[11], abs=1e-6)
    assert flat_source(inputs.shape, 11) == (1, 0, 3) and inputs[1, 0, 3] == inputs.ravel()[11]
    for index in range(outputs.size):
        assert outputs[index] == pytest.approx(inputs[flat_source(inputs.shape, index)], abs=1e-6)


def test_dense_top_contributions_and_the_rest_add_up(tiny):
    model, operations, face = tiny
    inputs, outputs = layer_io(model, face, "dense")
    kernel, bias = model.get_layer("dense").get_weights()
    view = operations.operation(face, "dense", 4, top=5)
    products = [entry["product"] for entry in view["top"]]
    assert len(products) == 5 and np.all(np.diff(np.abs(products)) <= 0)
    assert min(np.abs(products)) >= np.sort(np.abs(inputs * kernel[:, 4]))[-5]
    for entry in view["top"]:
        assert entry["value"] == pytest.approx(inputs[entry["index"]], abs=1e-6)
        assert entry["weight"] == pytest.approx(kernel[entry["index"], 4])
    pre_activation = inputs @ kernel[:, 4] + bias[4]
    assert sum(products) + view["rest"] + view["bias"] == pytest.approx(pre_activation, abs=TOLERANCE)
    assert view["pre_activation"] == pytest.approx(pre_activation, abs=TOLERANCE)
    assert view["activation"] == "tanh" and view["result"] == pytest.approx(np.tanh(pre_activation), abs=TOLERANCE)
    assert view["result"] == pytest.approx(outputs[4], abs=TOLERANCE)


def test_dropout_passes_the_value_through_at_prediction(tiny):
    model, operations, face = tiny
    inputs, outputs = layer_io(model, face, "dropout")
    view = operations.operation(face, "dropout", 2)
    assert view["rate"] == pytest.approx(0.3)
    assert view["input"] == view["result"] == view["output"] == pytest.approx(inputs[2], abs=1e-6)
    assert "predicting" in view["note"] and np.allclose(inputs, outputs)


def test_softmax_is_computed_stably_and_says_what_it_explains(tiny):
    model, operations, face = tiny
    logits, _ = layer_io(model, face, PROBABILITIES_LAYER)
    view = operations.operation(face, PROBABILITIES_LAYER, 3)
    assert view["shifted"] == pytest.approx(list(logits - logits.max()), abs=1e-6)
    assert max(view["exponentials"]) == pytest.approx(1.0)
    assert sum(view["probabilities"]) == pytest.approx(1.0)
    assert view["probabilities"] == pytest.approx(list(model.predict_on_batch(face[None])[0]), abs=TOLERANCE)
    assert view["result"] == pytest.approx(view["probabilities"][3]) and "temperature" in view["note"]


# ---- bad requests, JSON --------------------------------------------------------------------------

@pytest.mark.parametrize("name, channel, y, x, message", [
    ("no_such_layer", 0, 0, 0, "unknown layer 'no_such_layer' .*conv_same, bn"),
    ("conv_same", 3, 0, 0, "channels 0..2, not 3"),
    ("conv_stride", 0, 8, 0, r"outside layer 'conv_stride' \(y 0..7, x 0..7\)"),
    ("dense", 6, 0, 0, "units 0..5, not 6"),
    ("dense", 0, 1, 0, "y and x must be 0"),
])
def test_bad_requests_say_what_is_valid(tiny, name, channel, y, x, message):
    _, operations, face = tiny
    with pytest.raises(ValueError, match=message):
        operations.operation(face, name, channel, y, x)


def plain(value):
    """Only Python's own JSON types, all the way down (a numpy float64 would pass json.dumps)."""
    if isinstance(value, dict):
        return all(type(key) is str and plain(item) for key, item in value.items())
    if isinstance(value, list):
        return all(plain(item) for item in value)
    return type(value) in (int, float, str, bool, type(None))


def test_every_view_is_plain_json(tiny):
    model, operations, face = tiny
    for layer in operations.layers:
        view = operations.operation(face, layer.name, 0)
        assert plain(view) and json.loads(json.dumps(view)) == view, layer.name


# ---- the shipped models -----------------------------------------------------------------------------

@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request):
    path = os.path.join(ROOT, "models", f"{request.param}.h5")
    if not os.path.isfile(path):
        pytest.skip(f"models/{request.param}.h5 is missing (it is committed: check out the whole repository)")
    model, _ = load_model(path)
    return model, LayerOperations(model)


def test_shipped_models_every_layer_reproduces_its_output(shipped):
    model, operations = shipped
    face = np.random.default_rng(7).random(model.input.shape[1:]).astype(np.float32)
    every = keras.Model(model.input, [layer.output for layer in operations.layers]).predict_on_batch(face[None])
    kinds = set()
    for layer, expected in zip(operations.layers, every):
        shape = expected.shape[1:]
        y, x = (shape[0] - 1, 0) if len(shape) == 3 else (0, 0)
        channel = shape[-1] // 2
        view = operations.operation(face, layer.name, channel, y, x)
        actual = expected[0][(y, x, channel) if len(shape) == 3 else (channel,)]
        assert view["result"] == pytest.approx(actual, abs=TOLERANCE, rel=TOLERANCE), layer.name
        assert view["output"] == pytest.approx(actual, abs=TOLERANCE, rel=TOLERANCE), layer.name
        kinds.add(view["kind"])
    assert "generic" not in kinds and {"conv", "pool", "flatten", "dense", "dropout", "softmax"} <= kinds


def test_a_layers_output_comes_from_one_run_of_its_sub_model(tiny, monkeypatch):
    """The Live page's maps: the layer's own output, and the first call (which builds the sub-model) runs it once."""
    model, _, face = tiny
    expected = layer_io(model, face, "conv_same")[1]
    operations = LayerOperations(model)
    runs = []
    run = keras.Model.predict_on_batch
    monkeypatch.setattr(keras.Model, "predict_on_batch", lambda self, batch: runs.append(1) or run(self, batch))
    first = operations.layer_output(face, "conv_same")
    assert len(runs) == 1
    np.testing.assert_allclose(first, expected, atol=1e-5)
    np.testing.assert_allclose(operations.layer_output(face, "conv_same"), first, atol=1e-6)
    assert len(runs) == 2
