"""The operation behind one number of a layer, with every number taken from the model on this face.

A student clicks a position in a feature map (or a unit of a dense layer) and sees
what made it: the input window and the kernel of a convolution (a separable one's
depthwise sums, then its pointwise weights on them), the learned mean and variance of
a batch normalisation, the window a pool chose from, the largest contributions to a
dense unit, the exponentials of a softmax. Each view is a
JSON-ready dict of plain numbers (floats, ints, bools, strings and nested lists), so
the site, the desktop window and visualize.py show the same numbers. Its ``result``
is computed from the numbers it shows; ``output`` beside it is the layer's own
output at that position, so a page can show that the two agree.

Every layer's output comes from one sub-model built once per model and kept, run
through ``predict_on_batch``: compiled, it gives all 35 outputs of the VGG model in
about 11 ms on a 2-core CPU, where an eager call takes 40 (bench/bench_explain.py).
"""
import threading

import keras
import numpy as np

from utils.explain.layers import LayerReader, convolution_inputs, is_convolution, layer_kind, named_layer
from utils.explain.receptive import producer, windows

TOP_CONTRIBUTIONS = 10  # a dense unit's inputs listed one by one; the rest are summed
RAW_NETWORK_NOTE = ("These are the network's own numbers for this face. The probabilities shown as the "
                    "prediction can differ a little: they divide the logits by the model card's calibration "
                    "temperature (and add its per-class offsets, when it has them) and, when the card asks for it, average the face with its mirror image.")
DROPOUT_NOTE = ("Dropout only acts while the network trains, switching off a random share of the units so "
                "that none can be relied on alone. When predicting it passes every value through unchanged.")
STABLE_SOFTMAX = ("e is raised to each logit minus the largest logit: that keeps every power at most 1, so "
                  "nothing overflows, and it changes no probability, since the common factor cancels.")


class LayerOperations:
    """What each layer of one model computed at a position, for any face; safe to share between threads."""

    def __init__(self, model, reader=None):
        """``reader``: the model's :class:`utils.explain.layers.LayerReader`, whose outputs the views read
        (a new one when None)."""
        self.model = model
        self.reader = reader or LayerReader(model)
        self.layers = self.reader.layers
        self._index = {layer.name: index for index, layer in enumerate(self.layers)}
        self._sources = {layer.name: self._source(layer) for layer in self.layers}
        self._layer_models = {}
        self._lock = threading.Lock()

    def _source(self, layer):
        """Where a layer's input comes from: "face", a layer's index, or None (several inputs)."""
        if isinstance(layer.input, (list, tuple)):
            return None
        source = producer(self.model, layer.input)
        return "face" if source is None else self._index[source.name]

    def operation(self, face, layer_name, channel=0, y=0, x=0, top=TOP_CONTRIBUTIONS):
        """The operation view of ``layer_name`` at ``(y, x, channel)`` for one preprocessed face ``(H, W, C)``.

        ``channel`` is an output channel, or a unit of a flat layer (whose ``y`` and ``x``
        must be 0). Always ``{"layer": str, "type": str (the Keras class), "kind": str,
        "position": {"y": int, "x": int, "channel": int}, "input_shape": [int] or None,
        "output_shape": [int], "output": float}`` plus the keys of the kind's view, one of
        "conv", "separable", "batchnorm", "activation", "pool", "flatten", "dense", "softmax",
        "dropout" and "generic" (any other layer); see the ``_convolution`` ... ``_generic``
        functions for those. A ValueError names what is valid when the layer, channel or
        position is not.
        """
        layer = named_layer(self.model, layer_name)
        shape = tuple(layer.output.shape[1:])
        position = _check_position(layer.name, shape, channel, y, x)
        outputs = self.reader.raw_outputs(face)
        source = self._sources[layer.name]
        inputs = None if source is None else (np.asarray(face, dtype=np.float32) if source == "face" else outputs[source])
        output = outputs[self._index[layer.name]]
        kind, view = _view(layer, inputs, output, position, top)
        y, x, channel = position if len(position) == 3 else (0, 0, position[0])
        return {"layer": layer.name, "type": type(layer).__name__, "kind": kind,
                "position": {"y": int(y), "x": int(x), "channel": int(channel)},
                "input_shape": None if inputs is None else list(inputs.shape), "output_shape": list(shape),
                "output": float(output[position]), **view}

    def layer_output(self, face, layer_name):
        """One layer's output for one preprocessed face, ``(H, W, C)`` or ``(N,)``.

        For the Live page's maps, a few times a second: a sub-model that stops at the layer
        (built on first use and kept) costs 1 to 7 ms on the VGG model, where all 35 outputs take 10.
        """
        named_layer(self.model, layer_name)
        batch = np.asarray(face, dtype=np.float32)[None]
        with self._lock:  # built, and its compiled function traced, once; then threads share it
            if layer_name not in self._layer_models:
                to_layer = keras.Model(self.model.input, self.model.get_layer(layer_name).output)
                first = to_layer.predict_on_batch(batch)
                self._layer_models[layer_name] = to_layer
                return np.asarray(first)[0]
        return np.asarray(self._layer_models[layer_name].predict_on_batch(batch))[0]


def _check_position(name, shape, channel, y, x):
    """The index of ``(y, x, channel)`` in an output of ``shape``; a one-line ValueError if it is outside."""
    if len(shape) == 3:
        rows, columns, channels = shape
        if not 0 <= channel < channels:
            raise ValueError(f"layer '{name}' has channels 0..{channels - 1}, not {channel}")
        if not (0 <= y < rows and 0 <= x < columns):
            raise ValueError(f"position ({y}, {x}) is outside layer '{name}' (y 0..{rows - 1}, x 0..{columns - 1})")
        return int(y), int(x), int(channel)
    if len(shape) == 1:
        if not 0 <= channel < shape[0]:
            raise ValueError(f"layer '{name}' has units 0..{shape[0] - 1}, not {channel}")
        if (y, x) != (0, 0):
            raise ValueError(f"layer '{name}' is flat (units 0..{shape[0] - 1}): y and x must be 0")
        return (int(channel),)
    raise ValueError(f"layer '{name}' has an output of shape {shape}: only feature maps and flat layers have positions")


def _view(layer, inputs, output, position, top):
    """``(kind, view)`` for the layer's own kind; a generic record for kinds without a view."""
    if inputs is None:
        return "generic", _generic(inputs, output, position)
    if isinstance(layer, keras.layers.SeparableConv2D):
        return "separable", _separable_convolution(layer, inputs, position)
    if is_convolution(layer):
        return "conv", _convolution(layer, inputs, position)
    if isinstance(layer, keras.layers.BatchNormalization) and layer.axis in (-1, len(inputs.shape)):
        return "batchnorm", _batch_normalisation(layer, inputs, position)
    if isinstance(layer, keras.layers.Activation) and layer_kind(layer) == "softmax":
        return "softmax", _softmax(inputs, position)
    if isinstance(layer, (keras.layers.Activation, keras.layers.ReLU)):
        return "activation", _activation(layer, inputs, output, position)
    if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        return "pool", _pool(layer, inputs, position)
    if isinstance(layer, (keras.layers.GlobalMaxPooling2D, keras.layers.GlobalAveragePooling2D)):
        return "pool", _global_pool(layer, inputs, position)
    if isinstance(layer, keras.layers.Flatten):
        return "flatten", _flatten(inputs, position)
    if isinstance(layer, keras.layers.Dense) and len(inputs.shape) == 1:
        return "dense", _dense(layer, inputs, position, top)
    if isinstance(layer, keras.layers.Dropout):
        return "dropout", _dropout(layer, inputs, position)
    return "generic", _generic(inputs, output, position)


def _weights(variable):
    return keras.ops.convert_to_numpy(variable).astype(np.float64)


def _activate(function, value):
    """A layer's activation function applied to one number."""
    tensor = keras.ops.convert_to_tensor(np.array([[value]], dtype=np.float32))
    return float(keras.ops.convert_to_numpy(function(tensor))[0, 0])


def _activation_name(function):
    return getattr(function, "__name__", type(function).__name__).lower()


def _window(layer, inputs, y, x):
    """``(values, padding, rows, columns)``: every channel of ``inputs`` under the layer's window
    at output ``(y, x)`` ``(kh, kw, C)``, 0 where a tap is padding ``(kh, kw)``; ``rows`` and
    ``columns`` are the input indices of the taps."""
    row_window, column_window = windows(layer)
    rows, columns = row_window.taps(y), column_window.taps(x)
    height, width = inputs.shape[:2]
    padding = ~(((rows >= 0) & (rows < height))[:, None] & ((columns >= 0) & (columns < width))[None, :])
    values = inputs[np.clip(rows, 0, height - 1)][:, np.clip(columns, 0, width - 1)].astype(np.float64)
    values[padding] = 0.0
    return values, padding, rows, columns


def _convolution(layer, inputs, position):
    """``{"window": (kh, kw, C), "padding": (kh, kw) bools, "rows": [int], "columns": [int],
    "input_channels": [int], "kernel": (kh, kw, C), "products": (kh, kw, C), "sum": float,
    "bias": float, "pre_activation": float, "activation": str, "result": float, "strides": [int],
    "dilation": [int], "padding_mode": str}``. The ``C`` planes are the input channels the
    output channel reads, named in ``input_channels``: all of them for a plain convolution,
    its group's for a grouped one, one for a depthwise one. ``rows`` and ``columns`` are the
    input indices under the kernel (outside the input where ``padding`` is true, and the
    window is 0 there)."""
    y, x, channel = position
    first, count = convolution_inputs(layer, channel)
    sources = range(first, first + count)
    window, padding, rows, columns = _window(layer, inputs[..., first:first + count], y, x)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel = _weights(layer.kernel)[:, :, sources, channel % layer.depth_multiplier]
    else:
        kernel = _weights(layer.kernel)[..., channel]
    products = window * kernel
    return {"window": window.tolist(), "padding": padding.tolist(), "rows": rows.tolist(), "columns": columns.tolist(),
            "input_channels": list(sources), "kernel": kernel.tolist(), "products": products.tolist(),
            **_weighted_sum(layer, channel, float(products.sum())), **_sliding(layer)}


def _separable_convolution(layer, inputs, position):
    """The depthwise step, then the pointwise one: the keys of :func:`_convolution` for the
    depthwise step (each plane of ``window`` is the input channel named in ``input_channels``,
    repeated for each of its depthwise filters, and ``kernel`` holds those filters), plus
    ``"depthwise": [float]`` (each plane's sum of products: the depthwise step's output here),
    ``"pointwise": [float]`` (this output channel's weight on each) and ``"pointwise_products":
    [float]``; ``sum`` adds the pointwise products."""
    y, x, channel = position
    window, padding, rows, columns = _window(layer, inputs, y, x)
    multiplier = layer.depth_multiplier
    kernel = _weights(layer.depthwise_kernel).reshape(window.shape[:2] + (-1,))  # plane = input x multiplier + filter
    window = np.repeat(window, multiplier, axis=-1)
    products = window * kernel
    depthwise = products.sum(axis=(0, 1))
    pointwise = _weights(layer.pointwise_kernel)[0, 0, :, channel]
    pointwise_products = depthwise * pointwise
    return {"window": window.tolist(), "padding": padding.tolist(), "rows": rows.tolist(), "columns": columns.tolist(),
            "input_channels": [plane // multiplier for plane in range(kernel.shape[-1])], "kernel": kernel.tolist(),
            "products": products.tolist(), "depthwise": depthwise.tolist(), "pointwise": pointwise.tolist(),
            "pointwise_products": pointwise_products.tolist(),
            **_weighted_sum(layer, channel, float(pointwise_products.sum())), **_sliding(layer)}


def _weighted_sum(layer, unit, total):
    """``{"sum", "bias", "pre_activation", "activation", "result"}``: how a sum of products becomes
    the output of ``unit``: plus its bias, through the layer's activation."""
    bias = float(_weights(layer.bias)[unit]) if layer.use_bias else 0.0
    return {"sum": total, "bias": bias, "pre_activation": total + bias, "activation": _activation_name(layer.activation),
            "result": _activate(layer.activation, total + bias)}


def _sliding(layer):
    """How a convolution's window moves: the settings every convolution view shows."""
    return {"strides": list(layer.strides), "dilation": list(layer.dilation_rate), "padding_mode": layer.padding}


def _batch_normalisation(layer, inputs, position):
    """``{"input": float, "mean": float, "variance": float, "gamma": float, "beta": float,
    "epsilon": float, "formula": str, "result": float}``: the moving statistics learned in
    training (a prediction never uses the face's own)."""
    channel = position[-1]
    value = float(inputs[position])
    mean = float(_weights(layer.moving_mean)[channel])
    variance = float(_weights(layer.moving_variance)[channel])
    gamma = float(_weights(layer.gamma)[channel]) if layer.scale else 1.0
    beta = float(_weights(layer.beta)[channel]) if layer.center else 0.0
    result = (value - mean) / np.sqrt(variance + layer.epsilon) * gamma + beta
    formula = (f"({value:.4f} - {mean:.4f}) / sqrt({variance:.4f} + {layer.epsilon:g}) x {gamma:.4f} "
               f"+ {beta:.4f} = {result:.4f}")
    return {"input": value, "mean": mean, "variance": variance, "gamma": gamma, "beta": beta,
            "epsilon": float(layer.epsilon), "formula": formula, "result": float(result)}


def _activation(layer, inputs, output, position):
    """``{"function": str, "input": float, "result": float, "input_map": nested, "output_map": nested,
    "zeroed": {"layer": float, "channel": float}}``. The maps are the channel's ``(H, W)``
    (a flat layer's whole vector); ``zeroed`` is the share of values the function set to
    0 (non-zero in, zero out) in the whole layer and in this channel."""
    function, name = ((layer.activation, _activation_name(layer.activation))
                      if isinstance(layer, keras.layers.Activation) else (layer, "relu"))
    channel = position[-1]
    input_map, output_map = (inputs[..., channel], output[..., channel]) if inputs.ndim == 3 else (inputs, output)
    zeroed = (output == 0) & (inputs != 0)
    return {"function": name,
            "input": float(inputs[position]), "result": _activate(function, float(inputs[position])),
            "input_map": input_map.astype(float).tolist(), "output_map": output_map.astype(float).tolist(),
            "zeroed": {"layer": float(zeroed.mean()),
                       "channel": float((zeroed[..., channel] if inputs.ndim == 3 else zeroed).mean())}}


def _pool(layer, inputs, position):
    """``{"pool": "max" | "average", "global": False, "window": (ph, pw), "padding": (ph, pw) bools,
    "rows": [int], "columns": [int], "pool_size": [int], "strides": [int], "padding_mode": str,
    "result": float}``, with ``"winner": [i, j]`` (its place in the window) and
    ``"winner_position": [y, x]`` (in the input) for max, ``"count"`` (values averaged,
    padding left out as Keras does) for average."""
    y, x, channel = position
    window, padding, rows, columns = _window(layer, inputs, y, x)
    window = window[..., channel]
    view = {"global": False, "window": window.tolist(), "padding": padding.tolist(), "rows": rows.tolist(),
            "columns": columns.tolist(), "pool_size": list(layer.pool_size), "strides": list(layer.strides),
            "padding_mode": layer.padding}
    return {**view, **_pooled(isinstance(layer, keras.layers.MaxPooling2D), window, padding, rows, columns)}


def _global_pool(layer, inputs, position):
    """``{"pool": "max" | "average", "global": True, "window": (H, W), "result": float}`` plus
    the winner or count as in :func:`_pool`: the whole channel is the window."""
    window = inputs[..., position[-1]].astype(np.float64)
    padding = np.zeros(window.shape, dtype=bool)
    rows, columns = np.arange(window.shape[0]), np.arange(window.shape[1])
    pooled = _pooled(isinstance(layer, keras.layers.GlobalMaxPooling2D), window, padding, rows, columns)
    return {"global": True, "window": window.tolist(), **pooled}


def _pooled(is_max, window, padding, rows, columns):
    if is_max:
        i, j = np.unravel_index(np.argmax(np.where(padding, -np.inf, window)), window.shape)
        return {"pool": "max", "winner": [int(i), int(j)], "winner_position": [int(rows[i]), int(columns[j])],
                "result": float(window[i, j])}
    count = int((~padding).sum())
    return {"pool": "average", "count": count, "result": float(window[~padding].sum() / count)}


def flat_source(shape, index):
    """The ``(y, x, channel)`` of a feature-map stack of ``shape`` that flat ``index`` came from."""
    return tuple(int(i) for i in np.unravel_index(index, tuple(shape)))


def _flatten(inputs, position):
    """``{"index": int, "source": [y, x, channel], "formula": str, "result": float}``: Keras
    unrolls row by row, and within a pixel channel by channel."""
    index = position[0]
    source = flat_source(inputs.shape, index)
    rows, columns, channels = inputs.shape
    y, x, channel = source
    formula = f"index = (y x {columns} + x) x {channels} + channel = ({y} x {columns} + {x}) x {channels} + {channel} = {index}"
    return {"index": index, "source": list(source), "formula": formula, "result": float(inputs[source])}


def _dense(layer, inputs, position, top):
    """``{"top": [{"index": int, "value": float, "weight": float, "product": float}], "rest": float,
    "inputs": int, "bias": float, "sum": float, "pre_activation": float, "activation": str,
    "result": float}``: the ``top`` inputs by absolute contribution (weight x value), the sum
    of all the others in ``rest``; ``sum`` is every product's."""
    unit = position[0]
    values = inputs.astype(np.float64)
    weights = _weights(layer.kernel)[:, unit]
    products = values * weights
    order = np.argsort(-np.abs(products), kind="stable")[:top]
    total = float(products.sum())
    return {"top": [{"index": int(i), "value": float(values[i]), "weight": float(weights[i]),
                     "product": float(products[i])} for i in order],
            "rest": float(total - products[order].sum()), "inputs": int(values.size),
            **_weighted_sum(layer, unit, total)}


def _softmax(inputs, position):
    """``{"logits": [float], "max": float, "shifted": [float], "exponentials": [float], "total": float,
    "probabilities": [float], "result": float, "stable": str, "note": str}``; ``result`` is
    the probability of the chosen class (``position``'s channel)."""
    logits = inputs.astype(np.float64)
    shifted = logits - logits.max()
    exponentials = np.exp(shifted)
    total = float(exponentials.sum())
    probabilities = exponentials / total
    return {"logits": logits.tolist(), "max": float(logits.max()), "shifted": shifted.tolist(),
            "exponentials": exponentials.tolist(), "total": total, "probabilities": probabilities.tolist(),
            "result": float(probabilities[position[0]]), "stable": STABLE_SOFTMAX, "note": RAW_NETWORK_NOTE}


def _dropout(layer, inputs, position):
    """``{"rate": float, "input": float, "result": float, "note": str}``: at prediction the output is the input."""
    value = float(inputs[position])
    return {"rate": float(layer.rate), "input": value, "result": value, "note": DROPOUT_NOTE}


def _generic(inputs, output, position):
    """``{"input": float or None}``: the input at the same position when the layer keeps the shape."""
    same_shape = inputs is not None and inputs.shape == output.shape
    return {"input": float(inputs[position]) if same_shape else None}
