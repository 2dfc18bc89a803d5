"""The network's layers for one face: what kind of step each is, and what it outputs.

Layers are found by their type, never by hard-coded names, so any Keras model in
``models/`` explains itself. The sub-model that gives every layer's output is built
once per model and kept: building one costs far more than running it, and Keras'
compiled ``predict_on_batch`` runs it in about 11 ms where an eager call takes 40.
"""
import threading
from dataclasses import dataclass

import keras
import numpy as np

# Every 2-D convolution (plain or grouped, depthwise, separable): one definition for the kind a student
# sees, the operation views and the channel patterns, so the explorer only offers what they can show.
CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)

# Keras layer class -> the kind of step a student sees (convolutions are "conv", see is_convolution).
LAYER_KINDS = {
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


def is_convolution(layer):
    """Whether ``layer`` slides a kernel over its input: its operation view is a window times a
    kernel, and each of its channels has a pattern (:mod:`utils.explain.channels`)."""
    return isinstance(layer, CONVOLUTIONS)


def convolution_inputs(layer, channel):
    """``(first, count)``: output ``channel`` of a convolution reads ``count`` input channels from
    ``first`` on: one for a depthwise convolution, its group's for a grouped one, all of them
    otherwise. ``channel`` may be a tensor (``count`` never is: it is the layer's)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return channel // layer.depth_multiplier, 1
    if isinstance(layer, keras.layers.Conv2D):
        count = layer.input.shape[-1] // layer.groups
        return channel // (layer.filters // layer.groups) * count, count
    return 0, layer.input.shape[-1]


def layer_kind(layer):
    if is_convolution(layer):
        return "conv"
    kind = LAYER_KINDS.get(type(layer).__name__, "other")
    if isinstance(layer, keras.layers.Activation) and getattr(layer.activation, "__name__", "") == "softmax":
        return "softmax"
    return kind


def model_layers(model):
    """The model's layers after its input, in network order."""
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def named_layer(model, name):
    """The layer called ``name``; a one-line ValueError listing the layers when there is none."""
    names = [layer.name for layer in model_layers(model)]
    if name not in names:
        raise ValueError(f"unknown layer '{name}' (layers: {', '.join(names)})")
    return model.get_layer(name)


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
        self._compiled = False
        self._lock = threading.Lock()

    def spatial_layers(self):
        return spatial_layers(self.model)

    def conv_layers(self):
        return conv_layers(self.model)

    def raw_outputs(self, face):
        """Every layer's output array for one preprocessed face ``(H, W, C)``, in network order."""
        batch = np.asarray(face, dtype=np.float32)[None]
        if not self._compiled:
            with self._lock:  # the first call builds the compiled function; then threads share it
                outputs = self._outputs_model.predict_on_batch(batch)
                self._compiled = True
        else:
            outputs = self._outputs_model.predict_on_batch(batch)
        return [np.asarray(output)[0] for output in outputs]

    def layer_outputs(self, face):
        """Every layer's output for one preprocessed face, named and with its kind, in network order."""
        return [LayerOutput(layer.name, layer_kind(layer), array)
                for layer, array in zip(self.layers, self.raw_outputs(face))]

    def first_kernels(self):
        """The first convolution's kernels ``(kh, kw, in, out)``: what each filter looks for."""
        for layer in self.layers:
            if layer_kind(layer) == "conv":
                return keras.ops.convert_to_numpy(layer.kernel)
        raise ValueError(f"model {self.model.name} has no convolution layer")
