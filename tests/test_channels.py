"""What a channel looks for: the gradient-ascent pattern excites its channel (through the
batch normalisation after it), is reproducible and kept; the top test faces are the ones
a channel with known weights must pick, kept on disk under a name that goes stale with
the test folder. No FER2013: the test folder is built here.
"""
import os

import cv2
import keras
import numpy as np
import pytest
from keras import layers

from conftest import FER_CLASSES, convolutions_model
from utils.explain.channels import ChannelExplainer, TOP_FACES
from utils.faces.preprocess import preprocess
from utils.train import datasets


def pattern_model():
    """conv (linear) -> batch norm that flips channel 0 -> ReLU -> conv with its own ReLU."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1))
    x = layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.Conv2D(3, 3, activation="relu", name="conv2")(x)
    model = keras.Model(inputs, layers.GlobalAveragePooling2D(name="pool")(x))
    model.get_layer("bn").set_weights([np.array([-1.0, 1, 1, 1]), np.zeros(4), np.zeros(4), np.ones(4)])
    return model


@pytest.fixture(scope="module")
def explainer():
    return ChannelExplainer(pattern_model(), classes=["happy", "sad"])


def test_pattern_excites_the_channel_more_than_grey(explainer):
    pattern = explainer.pattern("conv2", 0)
    image = np.array(pattern["image"])
    assert image.shape == (16, 16, 1) and image.min() >= 0.0 and image.max() <= 1.0
    assert pattern["response"] > 1.5 * pattern["grey_response"] > 0
    assert image.std() > 0.01   # a pattern, not grey


def test_pattern_wakes_a_channel_that_is_silent_on_grey(explainer):
    pattern = explainer.pattern("conv2", 2)
    assert pattern["grey_response"] == 0.0 and pattern["response"] > 0.0


def test_pattern_follows_the_batch_normalisation_after_the_convolution(explainer):
    """Channel 0's batch norm has gamma -1: what excites it after the norm lowers the raw convolution."""
    pattern = explainer.pattern("conv1", 0)
    assert pattern["response"] > pattern["grey_response"]
    convolution = keras.Model(explainer.model.input, explainer.model.get_layer("conv1").output)
    image, grey = np.array(pattern["image"], dtype=np.float32), np.full((16, 16, 1), 0.5, np.float32)
    raw = convolution.predict_on_batch(np.stack([image, grey]))[..., 0].mean(axis=(1, 2))
    assert raw[0] < raw[1]


def test_pattern_is_reproducible_and_kept(explainer):
    first = explainer.pattern("conv2", 2, seed=3)
    assert explainer.pattern("conv2", 2, seed=3) is first
    again = ChannelExplainer(explainer.model, classes=["happy", "sad"]).pattern("conv2", 2, seed=3)
    assert np.array_equal(again["image"], first["image"])
    assert not np.array_equal(explainer.pattern("conv2", 2, seed=4)["image"], first["image"])


def test_pattern_refuses_what_is_not_a_convolution_channel(explainer):
    with pytest.raises(ValueError, match="'relu' is not a convolution .*conv1, conv2"):
        explainer.pattern("relu", 0)
    with pytest.raises(ValueError, match="channels 0..2, not 3"):
        explainer.pattern("conv2", 3)


@pytest.fixture(scope="module")
def every_convolution():
    return ChannelExplainer(convolutions_model(size=16), classes=FER_CLASSES)


def test_every_kind_of_convolution_has_patterns(every_convolution):
    assert every_convolution.convolutions() == ["conv", "grouped", "depthwise", "separable"]


@pytest.mark.parametrize("name, channel", [("grouped", 4), ("depthwise", 7), ("separable", 3)])
def test_the_pattern_of_a_grouped_depthwise_or_separable_channel_excites_that_channel(every_convolution, name, channel):
    """No batch normalisation follows these layers: the response is the mean of the channel's own output, rectified."""
    model = every_convolution.model
    pattern = every_convolution.pattern(name, channel)
    image, grey = np.array(pattern["image"], dtype=np.float32), np.full((16, 16, 1), 0.5, np.float32)
    output = keras.Model(model.input, model.get_layer(name).output).predict_on_batch(np.stack([image, grey]))
    response, grey_response = np.maximum(output[..., channel], 0).mean(axis=(1, 2))
    assert pattern["response"] == pytest.approx(response, rel=1e-4, abs=1e-6)
    assert pattern["grey_response"] == pytest.approx(grey_response, rel=1e-4, abs=1e-6)
    assert pattern["response"] > pattern["grey_response"]


# ---- the test faces that excite a channel most -----------------------------------------------------

def brightness_model():
    """Channel 0 is the mean brightness around each pixel, channel 1 its opposite."""
    inputs = keras.Input((8, 8, 1))
    conv = layers.Conv2D(2, 3, padding="same", use_bias=False, name="conv")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.concatenate([np.full((3, 3, 1, 1), 1 / 9), np.full((3, 3, 1, 1), -1 / 9)], axis=-1)])
    return model


def make_test_folder(root, levels):
    """Uniform grey faces, one brightness each, alternately 'happy' and 'sad'; ``{path: (level, class)}``."""
    faces = {}
    for index, level in enumerate(levels):
        label = ("happy", "sad")[index % 2]
        os.makedirs(root / label, exist_ok=True)
        name = f"{label}/face_{index:02d}.png"
        cv2.imwrite(str(root / name), np.full((8, 8), level, np.uint8))
        faces[name] = (level, label)
    return faces


@pytest.fixture
def test_folder(tmp_path):
    levels = np.random.default_rng(0).permutation(np.arange(12) * 20 + 10)
    return tmp_path / "test", make_test_folder(tmp_path / "test", levels)


def test_top_faces_are_the_brightest_for_a_brightness_channel(tmp_path, test_folder):
    folder, faces = test_folder
    explainer = ChannelExplainer(brightness_model(), ["happy", "sad"], cache_folder=str(tmp_path / "cache"))
    brightest = explainer.top_faces("conv", 0, str(folder))
    by_brightness = sorted(faces, key=lambda name: -faces[name][0])
    assert [face["path"] for face in brightest["faces"]] == by_brightness[:TOP_FACES]
    assert [face["class"] for face in brightest["faces"]] == [faces[name][1] for name in by_brightness[:TOP_FACES]]
    activations = [face["activation"] for face in brightest["faces"]]
    assert activations == sorted(activations, reverse=True)
    first = brightest["faces"][0]
    expected = preprocess(cv2.imread(str(folder / first["path"]), cv2.IMREAD_GRAYSCALE), 8, 8, 1)
    assert np.allclose(first["image"], expected)
    darkest = explainer.top_faces("conv", 1, str(folder))
    assert [face["path"] for face in darkest["faces"]] == by_brightness[::-1][:TOP_FACES]


def test_top_faces_are_computed_once_and_kept_on_disk(tmp_path, test_folder, monkeypatch):
    folder, _ = test_folder
    cache = tmp_path / "cache"
    model = brightness_model()
    first = ChannelExplainer(model, ["happy", "sad"], cache_folder=str(cache)).top_faces("conv", 0, str(folder))
    saved = [name for _, _, names in os.walk(cache) for name in names]
    assert len(saved) == 1 and saved[0] == "conv.json"   # one file per layer, no half-written leftovers

    def no_reading(*args, **kwargs):
        raise AssertionError("the test set was read again")
    monkeypatch.setattr(datasets, "load_test_split", no_reading)
    fresh = ChannelExplainer(model, ["happy", "sad"], cache_folder=str(cache))
    assert fresh.top_faces("conv", 0, str(folder)) == first
    cv2.imwrite(str(folder / "sad" / "new_face.png"), np.full((8, 8), 255, np.uint8))  # the kept ranking is stale
    with pytest.raises(AssertionError, match="read again"):
        ChannelExplainer(model, ["happy", "sad"], cache_folder=str(cache)).top_faces("conv", 0, str(folder))


def test_without_the_test_folder_says_how_to_get_it(tmp_path):
    explainer = ChannelExplainer(brightness_model(), ["happy", "sad"], cache_folder=str(tmp_path / "cache"))
    with pytest.raises(datasets.DatasetError, match="make data"):
        explainer.top_faces("conv", 0, str(tmp_path / "nowhere"))
