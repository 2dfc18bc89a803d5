"""Layer sentences read the layer: its dropout rate, pool type and size, activation, padding and stride."""
import os

import keras
import pytest
from keras import layers

from utils.explain.steps import describe_layer
from utils.model.store import load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sentences(model):
    return {layer.name: describe_layer(layer, layer.output.shape[1:])
            for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)}


def shipped(name):
    path = os.path.join(ROOT, "models", f"{name}.h5")
    if not os.path.isfile(path):
        pytest.skip(f"models/{name}.h5 is missing (it is committed: check out the whole repository)")
    return load_model(path)[0]


def test_other_settings_are_described_as_they_are():
    inputs = keras.Input((13, 13, 1))
    x = layers.Conv2D(4, 3, strides=2, padding="valid", name="conv")(inputs)
    x = layers.Activation("tanh", name="tanh")(x)
    x = layers.AveragePooling2D(3, name="average")(x)
    x = layers.MaxPooling2D(2, strides=1, padding="same", name="overlapping")(x)
    x = layers.GlobalAveragePooling2D(name="global")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    text = sentences(keras.Model(inputs, layers.Dense(2, activation="sigmoid", name="dense")(x)))
    assert "moving 2 pixels at a time" in text["conv"] and "no padding" in text["conv"]
    assert "13 x 13 becomes 6 x 6" in text["conv"] and "ReLU" not in text["conv"]
    assert text["tanh"].startswith("The tanh activation") and "-1 to 1" in text["tanh"]
    assert "average" in text["average"] and "largest" not in text["average"]
    assert "from 6 x 6 to 2 x 2" in text["average"] and "halving" not in text["average"]
    assert "largest" in text["overlapping"] and "overlapping" in text["overlapping"]
    assert "its average" in text["global"]
    assert "random 30% of the units" in text["dropout"]
    assert "sigmoid" in text["dense"] and "ReLU" not in text["dense"]


def test_baseline_sentences():
    text = sentences(shipped("baseline_cnn"))
    assert "no padding" in text["conv1"] and "48 x 48 becomes 46 x 46" in text["conv1"]
    assert "A ReLU then" in text["conv1"] and "moving" not in text["conv1"]
    assert "largest value, halving" in text["pool1"]
    assert "random 50% of the units" in text["dropout"] and "A ReLU then" in text["dense"]
    assert "logits" in text["logits"] and "ReLU" not in text["logits"]


def test_vgg_sentences():
    text = sentences(shipped("emotion_model"))
    assert "padded with zeros" in text["block1_conv1"] and "48 x 48 becomes 48 x 48" in text["block1_conv1"]
    assert "ReLU" not in text["block1_conv1"]   # its ReLU is a layer of its own
    assert text["block1_relu1"].startswith("The ReLU activation replaces every negative value by zero")
    assert "halving" in text["block4_pool"] and "random 50%" in text["dropout"]
