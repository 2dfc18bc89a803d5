"""Which input pixels one position of a layer sees: its receptive field.

Read from the layers' own geometry (kernel and pool sizes, strides, dilation,
"same" or "valid" padding) while walking from the input to the layer, so any chain
of layers explains itself. The same :class:`Window` tells :mod:`utils.explain.operations`
which input values a convolution or pool read at a position. Feature maps are
channels-last (height, width, channels), as in every model here.
"""
from dataclasses import dataclass

import keras
import numpy as np

from utils.explain.layers import named_layer


@dataclass(frozen=True)
class Window:
    """A sliding window along one axis: which input indices an output index reads."""
    size: int       # kernel or pool size
    stride: int
    dilation: int
    before: int     # padding added before the first input index ("same" padding)

    def taps(self, index):
        """The input indices under the window at output ``index``; those < 0 or >= the
        input's length are padding."""
        return index * self.stride - self.before + np.arange(self.size) * self.dilation

    @property
    def span(self):
        """How many input indices lie between the window's first and last tap, both included."""
        return (self.size - 1) * self.dilation + 1


def windows(layer):
    """The layer's ``(rows, columns)`` windows, or None for a layer that does not slide one."""
    if hasattr(layer, "kernel_size") and len(layer.kernel_size) == 2:
        sizes, dilations = layer.kernel_size, layer.dilation_rate
    elif hasattr(layer, "pool_size") and len(layer.pool_size) == 2:
        sizes, dilations = layer.pool_size, (1, 1)
    else:
        return None
    inputs, outputs = layer.input.shape[1:3], layer.output.shape[1:3]
    return tuple(Window(size, stride, dilation, _padding_before(layer.padding, size_in, size_out, size, stride, dilation))
                 for size, stride, dilation, size_in, size_out
                 in zip(sizes, layer.strides, dilations, inputs, outputs))


def _padding_before(padding, size_in, size_out, size, stride, dilation):
    """TensorFlow's "same" rule: pad to cover the input, the odd pixel after it."""
    if padding != "same":
        return 0
    span = (size - 1) * dilation + 1
    return max((size_out - 1) * stride + span - size_in, 0) // 2


def producer(model, tensor):
    """The layer whose output ``tensor`` is, or None for the model's input."""
    for layer in model.layers:
        if not isinstance(layer, keras.layers.InputLayer) and layer.output is tensor:
            return layer
    return None


def field_geometry(model, layer_name):
    """Where every position of layer ``layer_name`` looks in the input, as three numbers per axis.

    ``{"layer": str, "start": [rows, columns], "jump": [rows, columns], "field": [rows, columns],
    "input_shape": [H, W], "whole_input": bool}``: position ``(y, x)`` sees ``field`` input
    pixels from ``start + (y, x) x jump`` on (``start`` is negative where padding comes
    first; clip to the input). A page gets these once per layer and draws the box of any
    position under the mouse without asking again. A flattened layer (Flatten, Dense,
    global pooling) sees the whole input.
    """
    layer = named_layer(model, layer_name)
    height, width = model.input.shape[1:3]
    chain = _chain_to(model, layer)
    if any(len(step.output.shape) != 4 for step in chain):
        return {"layer": layer.name, "start": [0, 0], "jump": [height, width], "field": [height, width],
                "input_shape": [height, width], "whole_input": True}
    start, jump, field = np.zeros(2, dtype=int), np.ones(2, dtype=int), np.ones(2, dtype=int)
    for step in chain:
        for axis, window in enumerate(windows(step) or ()):
            start[axis] -= window.before * jump[axis]
            field[axis] += (window.span - 1) * jump[axis]
            jump[axis] *= window.stride
    return {"layer": layer.name, "start": start.tolist(), "jump": jump.tolist(), "field": field.tolist(),
            "input_shape": [height, width], "whole_input": False}


def receptive_field(model, layer_name, y=0, x=0):
    """The input pixels that position ``(y, x)`` of layer ``layer_name`` sees.

    ``{"layer": str, "y": int, "x": int, "box": [y0, x0, y1, x1], "field": [rows, columns],
    "jump": [rows, columns], "input_shape": [H, W], "whole_input": bool}``. ``box`` is
    half-open (``face[y0:y1, x0:x1]``) and clipped to the input; ``field`` is the unclipped
    size, padding included; ``jump`` is how far apart in input pixels two neighbouring
    positions of the layer look. A flattened layer (Flatten, Dense, global pooling) sees
    the whole input.
    """
    geometry = field_geometry(model, layer_name)
    name, (height, width) = geometry["layer"], geometry["input_shape"]
    if geometry["whole_input"]:
        if (y, x) != (0, 0):
            raise ValueError(f"layer '{name}' has no positions (its output is flat): y and x must be 0")
        return {"layer": name, "y": 0, "x": 0, "box": [0, 0, height, width], "field": [height, width],
                "jump": [height, width], "input_shape": [height, width], "whole_input": True}
    rows, columns = model.get_layer(name).output.shape[1:3]
    if not (0 <= y < rows and 0 <= x < columns):
        raise ValueError(f"position ({y}, {x}) is outside layer '{name}' (y 0..{rows - 1}, x 0..{columns - 1})")
    first = np.array(geometry["start"]) + np.array([y, x]) * np.array(geometry["jump"])
    y0, x0 = np.maximum(first, 0)
    y1, x1 = np.minimum(first + geometry["field"], (height, width))
    return {"layer": name, "y": int(y), "x": int(x), "box": [int(y0), int(x0), int(y1), int(x1)],
            "field": geometry["field"], "jump": geometry["jump"], "input_shape": [height, width], "whole_input": False}


def _chain_to(model, layer):
    """The layers from the input to ``layer``, in order; each must read one tensor and keep or
    slide over the positions of the one before."""
    chain = []
    while layer is not None:
        if isinstance(layer.input, (list, tuple)):
            raise ValueError(f"layer '{layer.name}' reads several tensors: receptive fields follow one chain of layers")
        keeps_positions = layer.input.shape[1:3] == layer.output.shape[1:3] or len(layer.output.shape) != 4
        if windows(layer) is None and not keeps_positions:
            raise ValueError(f"cannot follow positions through layer '{layer.name}' ({type(layer).__name__})")
        chain.append(layer)
        layer = producer(model, layer.input)
    return chain[::-1]
