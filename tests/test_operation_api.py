"""The operation views through the JSON API: ``/api/explain`` with ``parts=operation`` and
``parts=channel``, and ``/api/predict`` with ``layer``, on the seed CNN (the session's
fixture) and on a small VGG-style model with batch normalisation built here.

Each number the API gives is checked against a forward pass written with NumPy alone
from the saved model's weights, on the face the API says it used (its input picture).
"""
import base64
import io
import os

import cv2
import keras
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from conftest import FER_CLASSES, convolutions_model, make_card
from utils.explain.operation_text import rounded
from utils.model.architectures import build_vgg
from utils.model.store import save_model
from web.analysis import STRIP_WIDTH

TOLERANCE = 1e-4


# ---- an independent forward pass -----------------------------------------------------------

def numpy_layer(layer, x):
    """One layer of the models here, from its weights and settings, in float64."""
    kind, weights = type(layer).__name__, [w.astype(np.float64) for w in layer.get_weights()]
    if kind == "Conv2D":
        assert tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1)
        rows, columns = layer.kernel_size
        if layer.padding == "same":   # stride 1: (k - 1) // 2 before, the rest after
            x = np.pad(x, (((rows - 1) // 2, rows // 2), ((columns - 1) // 2, columns // 2), (0, 0)))
        patches = sliding_window_view(x, (rows, columns), axis=(0, 1))   # (H, W, C, kh, kw)
        out = np.einsum("yxcij,ijco->yxo", patches, weights[0]) + (weights[1] if layer.use_bias else 0.0)
        return activate(layer.activation.__name__, out)
    if kind == "MaxPooling2D":
        assert tuple(layer.pool_size) == tuple(layer.strides) == (2, 2) and layer.padding == "valid"
        rows, columns = x.shape[0] // 2, x.shape[1] // 2
        return x[:2 * rows, :2 * columns].reshape(rows, 2, columns, 2, -1).max(axis=(1, 3))
    if kind == "BatchNormalization":
        gamma, beta, mean, variance = weights
        return (x - mean) / np.sqrt(variance + layer.epsilon) * gamma + beta
    if kind == "Activation":
        return activate(layer.activation.__name__, x)
    if kind == "Flatten":
        return x.reshape(-1)   # channels last, row by row
    if kind == "Dense":
        return activate(layer.activation.__name__, x @ weights[0] + (weights[1] if layer.use_bias else 0.0))
    if kind == "Dropout":
        return x
    raise AssertionError(f"no NumPy version of {kind}")


def activate(name, x):
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "softmax":
        powers = np.exp(x - x.max())
        return powers / powers.sum()
    assert name == "linear", name
    return x


def numpy_forward(model, face):
    """``{layer name: (input, output)}`` for every layer of a chain-shaped model."""
    values, x = {}, np.asarray(face, dtype=np.float64)
    for layer in model.layers[1:]:
        values[layer.name] = (x, numpy_layer(layer, x))
        x = values[layer.name][1]
    return values


# ---- fixtures ---------------------------------------------------------------------------------

def small_vgg():
    """The VGG architecture at widths 4 and 8, its batch normalisations given real statistics."""
    keras.utils.set_random_seed(3)
    model = build_vgg((48, 48, 1), len(FER_CLASSES), widths=(4, 8), name="vgg_fixture")
    rng = np.random.default_rng(5)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, size), rng.normal(0, 0.5, size),
                               rng.normal(0, 0.5, size), rng.uniform(0.2, 2, size)])
    return model


@pytest.fixture(scope="module")
def vgg_path(tmp_path_factory):
    model = small_vgg()
    card = make_card("vgg_fixture", arch="vgg", parameters=int(model.count_params()))
    path = str(tmp_path_factory.mktemp("vgg") / "vgg_fixture.h5")
    save_model(model, path, card)
    return path


def make_test_faces(folder, count=12):
    """A FER2013-style test folder of ``count`` random 48x48 faces under two classes."""
    rng = np.random.default_rng(9)
    for index in range(count):
        label = ("happy", "sad")[index % 2]
        (folder / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / label / f"PublicTest_{index}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return folder


@pytest.fixture(scope="module", params=["baseline", "vgg"])
def app_config(request, model_path, vgg_path, tmp_path_factory):
    """The module's ``app`` (conftest.py) is on the seed CNN or the small VGG, with a test folder of its own."""
    path = model_path if request.param == "baseline" else vgg_path
    return {"DEFAULT_MODEL": path, "GALLERY_DIR": str(make_test_faces(tmp_path_factory.mktemp("test_faces")))}


@pytest.fixture(scope="module")
def loaded(app, tmp_path_factory):
    """The model the module's ``app`` serves, its channel rankings cached in the tests' own folder."""
    loaded = app.extensions["models"].get()
    loaded.channels.cache_folder = str(tmp_path_factory.mktemp("cache"))
    return loaded


@pytest.fixture(scope="module")
def astronaut_png(astronaut_bgr):
    """Lossless, so the API decodes the very pixels the reference face is cut from."""
    return cv2.imencode(".png", astronaut_bgr)[1].tobytes()


@pytest.fixture(scope="module")
def reference(loaded, astronaut_bgr):
    """The face the API explains and every layer's input and output for it, by NumPy."""
    face = loaded.predictor.choose_face(astronaut_bgr).input
    model = keras.saving.load_model(loaded.path, compile=False)   # the weights as saved
    return face, numpy_forward(model, face), model


def explain(client, data, **fields):
    return client.post("/api/explain", data={"file": (io.BytesIO(data), "photo.png"), **fields},
                       content_type="multipart/form-data")


def png(url):
    assert url.startswith("data:image/png;base64,")
    return cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",")[1]), np.uint8), cv2.IMREAD_UNCHANGED)


def positions(output_shape):
    """A corner (padding under a "same" kernel) and an inner position of a map; two units of a vector."""
    if len(output_shape) == 3:
        rows, columns, channels = output_shape
        return [(channels - 1, 0, 0), (channels // 2, rows // 2, columns - 2)]
    return [(0, 0, 0), (output_shape[0] - 1, 0, 0)]


# ---- every layer's number is NumPy's --------------------------------------------------------------

def test_every_layers_operation_reproduces_numpy(client, loaded, reference, astronaut_png):
    face, values, model = reference
    kinds = set()
    for layer in model.layers[1:]:
        inputs, outputs = values[layer.name]
        for channel, y, x in positions(outputs.shape):
            answer = explain(client, astronaut_png, parts="operation", layer=layer.name,
                             channel=str(channel), y=str(y), x=str(x))
            assert answer.status_code == 200, answer.get_json()
            answer = answer.get_json()
            assert np.array_equal(png(answer["input"]["image"]), np.uint8(np.clip(face[:, :, 0], 0, 1) * 255))
            view = answer["operation"]
            expected = outputs[(y, x, channel) if outputs.ndim == 3 else (channel,)]
            assert view["result"] == pytest.approx(expected, abs=TOLERANCE), (layer.name, channel, y, x)
            assert view["output"] == pytest.approx(expected, abs=TOLERANCE), (layer.name, channel, y, x)
            assert view["position"] == {"y": y, "x": x, "channel": channel} and view["layer"] == layer.name
            assert "the same number" in view["check"] and view["summary"]
            CHECKS[view["kind"]](view, layer, inputs, (channel, y, x))
            check_display(view)
            kinds.add(view["kind"])
    assert {"conv", "pool", "flatten", "dense", "dropout", "softmax"} <= kinds
    if loaded.name == "vgg_fixture":
        assert {"batchnorm", "activation"} <= kinds


def check_conv(view, layer, inputs, position):
    """The window is the NumPy input under the kernel, zero (and marked) on the padding."""
    channel, y, x = position
    kernel = layer.get_weights()[0]
    rows, columns = np.array(view["rows"]), np.array(view["columns"])
    inside = ((rows >= 0) & (rows < inputs.shape[0]))[:, None] & ((columns >= 0) & (columns < inputs.shape[1]))[None]
    assert np.array_equal(np.array(view["padding"]), ~inside)
    window = np.zeros(kernel.shape[:3])
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            if inside[i, j]:
                window[i, j] = inputs[row, column]
    assert np.allclose(view["window"], window, atol=1e-5)
    assert np.allclose(view["kernel"], kernel[..., channel]) and np.allclose(view["products"], window * kernel[..., channel], atol=1e-5)
    bias = layer.get_weights()[1][channel] if layer.use_bias else 0.0
    assert view["sum"] + view["bias"] == pytest.approx(np.sum(window * kernel[..., channel]) + bias, abs=TOLERANCE)
    if layer.padding == "same" and (y, x) == (0, 0):
        assert np.array(view["padding"]).any()


def check_batchnorm(view, layer, inputs, position):
    gamma, beta, mean, variance = layer.get_weights()
    channel = position[0]
    assert (view["gamma"], view["beta"], view["mean"], view["variance"]) == pytest.approx(
        (gamma[channel], beta[channel], mean[channel], variance[channel]))
    assert view["input"] == pytest.approx(inputs[position[1], position[2], channel] if inputs.ndim == 3
                                          else inputs[channel], abs=TOLERANCE)


def check_activation(view, layer, inputs, position):
    channel = position[0]
    plane = inputs[..., channel] if inputs.ndim == 3 else inputs
    assert np.allclose(view["input_map"], plane, atol=TOLERANCE)
    assert view["zeroed"]["layer"] == pytest.approx(((inputs < 0) & (inputs != 0)).mean(), abs=1e-6)


def check_pool(view, layer, inputs, position):
    channel, y, x = position
    window = inputs[2 * y:2 * y + 2, 2 * x:2 * x + 2, channel]
    assert np.allclose(view["window"], window, atol=TOLERANCE)
    i, j = view["winner"]
    assert window[i, j] == pytest.approx(window.max(), abs=TOLERANCE)


def check_flatten(view, layer, inputs, position):
    y, x, channel = view["source"]
    assert np.ravel_multi_index((y, x, channel), inputs.shape) == position[0]


def check_dense(view, layer, inputs, position):
    unit = position[0]
    products = inputs * layer.get_weights()[0][:, unit]
    top = np.argsort(-np.abs(products))[:len(view["top"])]
    assert [entry["index"] for entry in view["top"]] == top.tolist()
    assert view["sum"] == pytest.approx(products.sum(), abs=TOLERANCE)
    assert sum(entry["product"] for entry in view["top"]) + view["rest"] == pytest.approx(products.sum(), abs=TOLERANCE)


def check_softmax(view, layer, inputs, position):
    assert view["logits"] == pytest.approx(list(inputs), abs=TOLERANCE)
    assert view["probabilities"] == pytest.approx(list(activate("softmax", inputs)), abs=TOLERANCE)
    assert "temperature" in view["note"] and view["total"] == pytest.approx(np.exp(inputs - inputs.max()).sum())


def check_dropout(view, layer, inputs, position):
    assert view["input"] == view["result"] and "predicting" in view["note"]


def check_display(view):
    """The blocks the page lays out as they come hold the view's own numbers, rounded as the text views round them."""
    blocks = view["display"]["blocks"]
    result = blocks[-1]
    assert result["block"] == "result" and result["value"] == view.get("result", view["output"])
    assert result["text"] == rounded(result["value"])
    if view["kind"] == "conv":
        planes = next(block for block in blocks if block["block"] == "planes")["planes"]
        sums = np.sum(view["products"], axis=(0, 1))
        assert [plane["caption"].rsplit(" ", 1)[1] for plane in planes] == [rounded(total) for total in sums]
        assert [[cell["text"] for cell in row] for row in planes[0]["grids"][1]["rows"]] == [
            [rounded(weight) for weight in row] for row in np.array(view["kernel"])[..., 0]]
        assert result["before"].startswith(f"sum of all products {rounded(view['sum'])}")
    if view["kind"] == "activation":
        maps = blocks[0]
        values = [view["input_map"], view["output_map"]]
        assert [np.concatenate(shown["rows"]).tolist() for shown in maps["maps"]] == [np.ravel(v).tolist() for v in values]
        assert (maps["low"], maps["high"]) == (np.min(values), np.max(values))
        spot = view["position"]
        flat = len(view["output_shape"]) == 1
        assert tuple(maps["chosen"]) == (divmod(spot["channel"], STRIP_WIDTH) if flat else (spot["y"], spot["x"]))
        assert all(len(row) <= STRIP_WIDTH for row in maps["maps"][0]["rows"])


CHECKS = {"conv": check_conv, "batchnorm": check_batchnorm, "activation": check_activation, "pool": check_pool,
          "flatten": check_flatten, "dense": check_dense, "softmax": check_softmax, "dropout": check_dropout}


def test_softmax_and_logits_name_their_classes(client, astronaut_png):
    view = explain(client, astronaut_png, parts="operation", layer="probabilities", channel="3").get_json()["operation"]
    assert "for happy" in view["summary"]
    rows = view["display"]["blocks"][0]["rows"]
    assert [row["cells"][0] for row in rows if row.get("class") == "chosen"] == ["happy"]
    assert rows[-1] == {"cells": ["total", rounded(view["total"]), "1"], "span": 3}
    logits = explain(client, astronaut_png, parts="operation", layer="logits", channel="3").get_json()["operation"]
    assert "(happy)" in logits["summary"]
    assert logits["display"]["blocks"][-1]["before"].startswith(f"unit 3 (happy): sum {rounded(logits['sum'])}")


def test_the_operation_explains_the_face_predict_found(client, astronaut_png):
    faces = client.post("/api/predict", data=astronaut_png, content_type="image/png").get_json()["faces"]
    answer = explain(client, astronaut_png, parts="operation", layer="flatten").get_json()
    assert answer["face"] == faces[0] and set(answer) >= {"operation", "receptive_field", "input", "alignment"}
    assert "layers" not in answer and "gradcam" not in answer


# ---- receptive fields: per position, and per layer for the page's own boxes -------------------------

def test_receptive_field_of_the_position_and_each_layers_geometry(client, loaded, astronaut_png):
    from utils.explain.receptive import receptive_field
    model = loaded.predictor.model
    conv = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    answer = explain(client, astronaut_png, parts="operation", layer=conv, channel="1", y="2", x="3").get_json()
    assert answer["receptive_field"] == receptive_field(model, conv, 2, 3)
    assert not answer["receptive_field"]["whole_input"]
    flat = explain(client, astronaut_png, parts="operation", layer="flatten", channel="5").get_json()
    assert flat["receptive_field"]["whole_input"] and flat["receptive_field"]["box"] == [0, 0, 48, 48]

    steps = {step["name"]: step for step in explain(client, astronaut_png, parts="layers").get_json()["layers"]}
    for name, step in steps.items():
        geometry = step["receptive"]
        if len(step["shape"]) != 3:
            assert geometry["whole_input"], name
            continue
        rows, columns = step["shape"][:2]
        for y, x in ((0, 0), (rows - 1, columns - 1), (rows // 2, columns // 3)):
            first = np.array(geometry["start"]) + np.array([y, x]) * np.array(geometry["jump"])
            box = [*np.maximum(first, 0), *np.minimum(first + geometry["field"], geometry["input_shape"])]
            assert box == receptive_field(model, name, y, x)["box"], (name, y, x)
    if "flatten" in steps:
        assert steps["flatten"]["columns"] == 64


# ---- what a channel looks for ------------------------------------------------------------------------

def test_channel_pattern_and_its_nine_top_test_faces(app, client, loaded, reference, astronaut_png):
    face, _, model = reference
    conv = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][0]
    answer = explain(client, astronaut_png, parts="channel", layer=conv, channel="2")
    assert answer.status_code == 200, answer.get_json()
    channel = answer.get_json()["channel"]
    pattern = png(channel["pattern"]["image"])
    low, high = channel["pattern"]["range"]
    assert pattern.shape == (48, 48) and 0 <= low < high <= 1
    assert abs(pattern.min() / 255 - low) < 1 / 255 and abs(pattern.max() / 255 - high) < 1 / 255
    assert channel["pattern"]["response"] > channel["pattern"]["grey_response"]

    top = channel["top_faces"]
    assert top["missing"] is None and len(top["faces"]) == 9
    # The ranking, recomputed with NumPy: each test face's mean of the channel, largest first.
    folder = app.config["GALLERY_DIR"]
    means = {}
    for label in sorted(os.listdir(folder)):
        for name in sorted(os.listdir(os.path.join(folder, label))):
            gray = cv2.imread(os.path.join(folder, label, name), cv2.IMREAD_GRAYSCALE)
            output = numpy_forward(model, (gray / 255.0)[:, :, None])[conv][1]
            means[f"{label}/{name}"] = output[..., 2].mean()
    expected = sorted(means, key=means.get, reverse=True)[:9]
    assert [entry["path"] for entry in top["faces"]] == expected
    for entry in top["faces"]:
        assert entry["activation"] == pytest.approx(means[entry["path"]], abs=TOLERANCE)
        assert entry["class"] == entry["path"].split("/")[0] and png(entry["image"]).shape == (48, 48)


def test_without_the_test_faces_the_channel_says_how_to_get_them(app, client, loaded, astronaut_png, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setitem(app.config, "GALLERY_DIR", str(tmp_path / "missing"))
    conv = loaded.channels.convolutions()[0]
    channel = explain(client, astronaut_png, parts="channel", layer=conv, channel="0").get_json()["channel"]
    assert channel["top_faces"]["faces"] == []
    assert "make data" in channel["top_faces"]["missing"] and "dataset/fer2013" in channel["top_faces"]["missing"]
    assert channel["pattern"]["image"].startswith("data:image/png")


@pytest.fixture(scope="module")
def convolutions_client(make_app, tmp_path_factory):
    """A site on a model with a plain, a grouped, a depthwise and a separable convolution, without test faces."""
    model = convolutions_model()
    card = make_card("convolutions", arch="convolutions", parameters=int(model.count_params()))
    folder = tmp_path_factory.mktemp("convolutions")
    save_model(model, str(folder / "convolutions.h5"), card)
    return make_app(DEFAULT_MODEL=str(folder / "convolutions.h5"), GALLERY_DIR=str(folder / "no_test_faces"),
                    WARM_UP=False).test_client()


def test_every_step_the_explorer_calls_a_convolution_has_an_operation_and_a_pattern(convolutions_client, astronaut_png):
    """The explorer offers "What does channel N look for?" under every step of kind "conv": each must answer."""
    client = convolutions_client
    steps = explain(client, astronaut_png, parts="layers").get_json()["layers"]
    convolutions = [step for step in steps if step["kind"] == "conv"]
    assert [step["name"] for step in convolutions] == ["conv", "grouped", "depthwise", "separable"]
    for step in convolutions:
        last = str(step["shape"][-1] - 1)
        operation = explain(client, astronaut_png, parts="operation", layer=step["name"], channel=last, y="1", x="2")
        assert operation.status_code == 200, operation.get_json()
        view = operation.get_json()["operation"]
        assert view["kind"] in ("conv", "separable") and "the same number" in view["check"], step["name"]
        channel = explain(client, astronaut_png, parts="channel", layer=step["name"], channel=last)
        assert channel.status_code == 200, channel.get_json()
        assert channel.get_json()["channel"]["pattern"]["image"].startswith("data:image/png")


# ---- the Live page's layer maps ---------------------------------------------------------------------

def test_predict_with_a_layer_sends_its_maps_for_the_first_face(client, reference, astronaut_png):
    from web.analysis import LIVE_CHANNELS
    face, values, model = reference
    name = [layer.name for layer in model.layers if len(layer.output.shape) == 4][1]
    plain = client.post("/api/predict", data=astronaut_png, content_type="image/png").get_json()
    answer = client.post(f"/api/predict?layer={name}", data=astronaut_png,
                         content_type="image/png").get_json()
    assert answer["faces"] == plain["faces"] and "layer" not in plain
    layer = answer["layer"]
    output = values[name][1]
    assert layer["name"] == name and layer["shape"] == list(output.shape)
    assert len(layer["maps"]) == min(LIVE_CHANNELS, output.shape[-1])
    assert png(layer["maps"][0]).shape == output.shape[:2] + (3,)
    assert layer["range"] == pytest.approx([output.min(), output.max()], abs=TOLERANCE)   # the same face's layer


# ---- bad parameters ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, message", [
    ({"parts": "operation"}, "need a 'layer'"),
    ({"parts": "operation", "layer": "nope"}, "unknown layer 'nope'"),
    ({"parts": "operation", "layer": "flatten", "channel": "x"}, "'channel' must be a number (0, 1, 2 ...)"),
    ({"parts": "operation", "layer": "flatten", "y": "1.5"}, "'y' must be a number (0, 1, 2 ...)"),
    ({"parts": "operation", "layer": "flatten", "channel": "-1"}, "units 0.."),
    ({"parts": "operation", "layer": "flatten", "y": "1"}, "y and x must be 0"),
    ({"parts": "operation", "layer": "probabilities", "channel": str(len(FER_CLASSES))},
     f"units 0..{len(FER_CLASSES) - 1}, not {len(FER_CLASSES)}"),
    ({"parts": "operation", "layer": "pool1", "y": "400"}, "outside layer 'pool1'"),
    ({"parts": "channel", "layer": "flatten"}, "is not a convolution"),
    ({"parts": "channel,magic", "layer": "flatten"}, "unknown part 'magic'"),
])
def test_bad_operation_parameters_are_one_line_400s(client_for_baseline, astronaut_png, fields, message):
    response = explain(client_for_baseline, astronaut_png, **fields)
    assert response.status_code == 400 and response.is_json, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert message in error and "\n" not in error


@pytest.mark.parametrize("body, message", [
    ({"layer": ["conv1"], "parts": "operation"}, "'layer' must be a string"),
    ({"layer": "conv1", "parts": "operation", "x": 1.5}, "'x' must be a number (0, 1, 2 ...)"),
    ({"layer": "conv1", "parts": "operation", "channel": True}, "'channel' must be a number (0, 1, 2 ...)"),
    ({"layer": "conv1", "parts": "operation", "y": [1]}, "'y' must be a number (0, 1, 2 ...)"),
])
def test_wrongly_typed_json_parameters_are_400s(client_for_baseline, astronaut_png, body, message):
    image = base64.b64encode(astronaut_png).decode()
    response = client_for_baseline.post("/api/explain", json={"image": image, **body})
    assert response.status_code == 400 and message in response.get_json()["error"]


@pytest.mark.parametrize("query, message", [("layer=dense", "layer with feature maps"), ("layer=nope", "feature maps")])
def test_predict_refuses_a_layer_without_maps(client_for_baseline, astronaut_png, query, message):
    response = client_for_baseline.post(f"/api/predict?{query}", data=astronaut_png, content_type="image/png")
    assert response.status_code == 400 and message in response.get_json()["error"]
    listed = client_for_baseline.post("/api/predict", json={"image": base64.b64encode(astronaut_png).decode(),
                                                            "layer": 3})
    assert listed.status_code == 400 and "'layer' must be a string" in listed.get_json()["error"]


@pytest.fixture(scope="module")
def client_for_baseline(make_app):
    return make_app(WARM_UP=False).test_client()
