"""The architectures by name: every network the project trains, and what each costs.

Every architecture ends in a Dense layer named ``logits`` followed by
``Activation("softmax", name="probabilities")``: the same function as a softmax
Dense, while Grad-CAM and temperature scaling can read the logits.
"""
import math

import keras
from keras import layers

LOGITS_LAYER = "logits"
PROBABILITIES_LAYER = "probabilities"


def _head(x, num_classes):
    """Logits in float32 (stable under mixed precision), then the softmax."""
    logits = layers.Dense(num_classes, name=LOGITS_LAYER, dtype="float32")(x)
    return layers.Activation("softmax", name=PROBABILITIES_LAYER, dtype="float32")(logits)


def build_baseline(input_shape, num_classes, weights=None, dropout=0.5):
    """The seed CNN, exactly: three conv+pool stages, Dense(128), Dropout(0.5), softmax.

    ``dropout`` changes the dropout rate (0 switches it off: the notebooks overfit on purpose
    with it); the weights are the same either way.
    """
    inputs = keras.Input(input_shape, name="face")
    x = inputs
    for stage, filters in enumerate((32, 64, 128), start=1):
        x = layers.Conv2D(filters, (3, 3), activation="relu", name=f"conv{stage}")(x)
        x = layers.MaxPooling2D((2, 2), name=f"pool{stage}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _head(x, num_classes), name="baseline")


def build_vgg(input_shape, num_classes, weights=None, widths=(32, 64, 128, 256), name="vgg", dropout=0.5):
    """VGG-style: four blocks of two 3x3 convolutions with batch normalisation.

    Widths 32-64-128-256 keep it near 2M parameters, trainable on a CPU; the last
    block's ReLU output (6x6 at 48x48 input) is the map Grad-CAM reads. The dense
    layer is as wide as the last block.
    """
    inputs = keras.Input(input_shape, name="face")
    x = inputs
    for block, filters in enumerate(widths, start=1):
        for conv in (1, 2):
            x = layers.Conv2D(filters, (3, 3), padding="same", use_bias=False,
                              name=f"block{block}_conv{conv}")(x)
            x = layers.BatchNormalization(name=f"block{block}_bn{conv}")(x)
            x = layers.Activation("relu", name=f"block{block}_relu{conv}")(x)
        x = layers.MaxPooling2D((2, 2), name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(widths[-1], use_bias=False, name="dense")(x)
    x = layers.BatchNormalization(name="dense_bn")(x)
    x = layers.Activation("relu", name="dense_relu")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _head(x, num_classes), name=name)


def build_vgg_small(input_shape, num_classes, weights=None, dropout=0.5):
    """The VGG net at 5/8 of its widths (20-40-80-160): 40% of its cost per face.

    A student for ``train.py --teacher``. Its speed follows less than its cost: on a
    2-core AVX2 CPU it served 1.7x vgg's faces/s, not 2.5x (bench/bench_predict.py).
    """
    return build_vgg(input_shape, num_classes, weights, widths=(20, 40, 80, 160), name="vgg_small", dropout=dropout)


def build_identity(input_shape, num_classes, weights=None, dropout=0.5):
    """The identity CNN, trained from scratch: four conv+max-pool blocks, Dense(128), Dropout(0.5).

    Small on purpose (about 360,000 parameters at 64x64): a folder of a few hundred faces
    such as Yale trains it in a minute on a CPU. Its last convolution is where Grad-CAM
    shows which parts of the face tell people apart.
    """
    inputs = keras.Input(input_shape, name="face")
    x = inputs
    for block, filters in enumerate((16, 32, 64, 128), start=1):
        x = layers.Conv2D(filters, (3, 3), padding="same", activation="relu", name=f"conv{block}")(x)
        x = layers.MaxPooling2D((2, 2), name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _head(x, num_classes), name="identity")


def _transfer(application, input_shape, num_classes, weights, dropout=0.3):
    """An ImageNet backbone (three channels) under a small classification head."""
    if input_shape[-1] != 3:
        raise ValueError("transfer-learning architectures need --channels 3")
    inputs = keras.Input(input_shape, name="face")
    # Keras' applications expect [-1, 1] or caffe scaling; faces arrive in [0, 1].
    x = layers.Rescaling(2.0, offset=-1.0, name="rescale")(inputs)
    backbone = application(include_top=False, weights=weights, input_tensor=x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(backbone.output)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _head(x, num_classes), name=backbone.name)


def build_mobilenetv2(input_shape, num_classes, weights=None, dropout=0.3):
    return _transfer(keras.applications.MobileNetV2, input_shape, num_classes, weights, dropout)


def build_resnet50(input_shape, num_classes, weights=None, dropout=0.3):
    return _transfer(keras.applications.ResNet50, input_shape, num_classes, weights, dropout)


ARCHITECTURES = {
    "baseline": build_baseline,
    "vgg": build_vgg,
    "vgg_small": build_vgg_small,
    "mobilenetv2": build_mobilenetv2,
    "resnet50": build_resnet50,
    "identity": build_identity,
}


def multiply_adds(model):
    """Multiply-adds for one image through the convolution and dense layers (the rest is small).

    Why: it bounds serving speed. A CPU doing G GFLOP/s serves at most G / (2 x this)
    faces/s per view; ``bench/bench_predict.py`` prints both.
    """
    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):
            total += multiply_adds(layer)
        elif isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)):
            positions = math.prod(layer.output.shape[1:-1])  # output pixels (1 for a flat Dense)
            total += math.prod(layer.kernel.shape) * positions
    return total


def build_model(arch, input_shape, num_classes, weights=None, **options):
    """The architecture called ``arch``; ``options`` go to its builder (``dropout=``: the rate before the last
    layer, each architecture's own by default)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture '{arch}' (choose from {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[arch](tuple(input_shape), num_classes, weights, **options)
