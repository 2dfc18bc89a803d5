"""The network's layers for one face: what kind of step each is, and what it outputs.

Layers are found by their type, never by hard-coded names, so any Keras model in
``models/`` explains itself. The sub-model that gives every layer's output is built
once per model and kept: building one costs far more than running it.
"""
from dataclasses import dataclass

import keras
import numpy as np

# Keras layer class -> the kind of step a student sees.
LAYER_KINDS = {
    "Conv2D": "conv", "DepthwiseConv2D": "conv", "SeparableConv2D": "conv",
    "MaxPooling2D": "pool", "AveragePooling2D": "pool",
    "GlobalAveragePooling2D": "pool", "GlobalMaxPooling2D": "pool",
    "BatchNormalization": "batchnorm", "Activation": "activation", "ReLU": "activation",
    "Dense": "dense", "Flatten": "flatten", "Dropout": "dropout", "Rescaling": "rescale",
}


@dataclass
class LayerOutput:
    name: str
    kind: str
    array: np.ndarray  # one face: (H, W, C) for spatial layers, (N,) for dense ones

    @property
    def shape(self):
        return tuple(self.array.shape)


def layer_kind(layer):
    kind = LAYER_KINDS.get(type(layer).__name__, "other")
    if kind == "activation" and getattr(layer.activation, "__name__", "") == "softmax":
        return "softmax"
    return kind


def model_layers(model):
    """The model's layers after its input, in network order."""
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def spatial_layers(model):
    """Names of the layers whose output is a stack of feature maps."""
    return [layer.name for layer in model_layers(model) if len(layer.output.shape) == 4]


def conv_layers(model):
    return [layer.name for layer in model_layers(model) if layer_kind(layer) == "conv"]


class LayerReader:
    """Every layer of one model, and each one's output for a face; safe to share between threads."""

    def __init__(self, model):
        self.model = model
        self.layers = model_layers(model)
        self._outputs_model = keras.Model(model.input, [layer.output for layer in self.layers])

    def spatial_layers(self):
        return spatial_layers(self.model)

    def conv_layers(self):
        return conv_layers(self.model)

    def check_layer(self, name):
        names = [layer.name for layer in self.layers]
        if name not in names:
            raise ValueError(f"unknown layer '{name}' (layers: {', '.join(names)})")
        return name

    def layer_outputs(self, face):
        """Every layer's output for one preprocessed face ``(H, W, C)``, in network order."""
        outputs = self._outputs_model(face[None].astype(np.float32), training=False)
        return [LayerOutput(layer.name, layer_kind(layer), keras.ops.convert_to_numpy(out)[0])
                for layer, out in zip(self.layers, outputs)]

    def first_kernels(self):
        """The first convolution's kernels ``(kh, kw, in, out)``: what each filter looks for."""
        for layer in self.layers:
            if layer_kind(layer) == "conv":
                return keras.ops.convert_to_numpy(layer.kernel)
        raise ValueError(f"model {self.model.name} has no convolution layer")
