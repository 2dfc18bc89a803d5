"""What each step of a CNN does, in two or three sentences a student can read.

The sentences are built from the layer's own configuration (filters, kernel size,
pool size, units), so any architecture in ``models/`` describes itself. Shared by
the site's "Explore the CNN" page and any other front end that walks the network.
"""
from utils.explain.layers import layer_kind


def _pair(value):
    return "x".join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)


def _distance(value):
    """Pixels moved per step: "2", or "2x1" when rows and columns differ."""
    return str(value[0]) if len(set(value)) == 1 else _pair(value)


def _shape(shape):
    return " x ".join(str(v) for v in shape)


def describe_input(shape):
    """The first step: the face as the network receives it."""
    return (f"The face, cut out of the photo, turned grey and shrunk to {_shape(shape)}: "
            "every pixel is a number between 0 (black) and 1 (white). "
            "This grid of numbers is all the network ever sees.")


def describe_alignment(prediction, angle):
    """Why the face is turned upright and framed before the network sees it."""
    if prediction.get("whole_image"):
        return ("No face was found, so the whole picture goes to the network as if it were a face. "
                "The answer is then a guess about a picture, not about a face.")
    turn = (f"turned {abs(angle):.0f}\u00b0 {'clockwise' if angle > 0 else 'anticlockwise'} so its eyes are level, and "
            if abs(angle) >= 1 else "already upright, so only ")
    marked = ("and marked its eyes, nose, mouth and ears" if prediction.get("keypoints") else
              "(the Haar cascade marks no eyes: they are placed where they sit on average in its boxes)")
    return (f"The detector found this face (score {prediction.get('score', 0):.0%}) {marked}. "
            f"The face is {turn}scaled and cut out so that its eyes land where they sit in the "
            "training faces. The network learned from faces framed this way; a tilted or off-centre face "
            "would look unfamiliar to it.")


# What each activation function does to a value, and how a sentence names it.
ACTIVATIONS = {
    "relu": "replaces every negative value by zero and keeps the positive ones",
    "sigmoid": "squashes every value into the range 0 to 1",
    "tanh": "squashes every value into the range -1 to 1",
    "softplus": "bends every value smoothly upwards: negatives towards zero, positives almost unchanged",
    "elu": "keeps the positive values and bends the negative ones smoothly towards -1",
    "linear": "passes every value through unchanged",
}
ACTIVATION_NAMES = {"relu": "ReLU", "elu": "ELU", "gelu": "GELU", "silu": "SiLU"}


def _activation(config, default="relu"):
    """``(name, what it does)`` for the activation a layer's config names."""
    function = config.get("activation", default)
    function = function if isinstance(function, str) else "custom"
    return (ACTIVATION_NAMES.get(function, function),
            ACTIVATIONS.get(function, f"applies the {function} function to every value"))


def _activation_after(config):
    """The sentence for a layer's own activation, empty when it has none (linear)."""
    name, does = _activation(config, "linear")
    return "" if name == "linear" else f" A {name} then {does}."


def _convolution(layer, config, shape):
    kernel, strides = config.get("kernel_size"), tuple(config.get("strides", (1, 1)))
    dilation = tuple(config.get("dilation_rate", (1, 1)))
    moves = "" if set(strides) == {1} else f", moving {_distance(strides)} pixels at a time"
    gaps = "" if set(dilation) == {1} else f" (dilation {_distance(dilation)}: gaps between the pixels it reads)"
    sizes = f"{_shape(layer.input.shape[1:3])} becomes {_shape(layer.output.shape[1:3])}"
    padding = (f"The border is padded with zeros so filters also sit on the edge pixels ({sizes})."
               if config.get("padding") == "same" else
               f"There is no padding: a filter only visits places where it fits inside the input ({sizes}).")
    return (f"{config.get('filters', '')} small filters of {_pair(kernel)} pixels slide over the input{moves}{gaps}; "
            f"at each position a filter multiplies the pixels under it by its weights and adds them up, giving "
            f"one feature map per filter ({shape}). {padding}{_activation_after(config)} "
            "Early filters react to edges and light/dark blobs; deeper ones to parts such as "
            "eyes, eyebrows and mouth corners.")


def _pool(layer, config, output_shape, shape):
    largest = "Max" in type(layer).__name__
    if len(output_shape) == 1:
        return (f"Each feature map is reduced to one number, its {'maximum' if largest else 'average'}, giving "
                f"{shape} values. Where a feature appeared no longer matters, only how strongly.")
    size, strides = tuple(config.get("pool_size")), tuple(config.get("strides") or config.get("pool_size"))
    keeps = "keeps only its largest value" if largest else "is replaced by the average of its values"
    if size == strides == (2, 2):
        shrinks = f"halving the width and height ({shape})"
    else:
        overlap = f", the windows overlapping as they move {_distance(strides)} pixels at a time" if any(
            stride < side for stride, side in zip(strides, size)) else ""
        shrinks = f"shrinking each map from {_shape(layer.input.shape[1:3])} to {_shape(output_shape[:2])}{overlap}"
    evidence = "the strongest evidence" if largest else "how strong each feature is on average over a patch"
    return (f"Each {_pair(size)} window {keeps}, {shrinks}. The network keeps {evidence}, needs fewer "
            "numbers, and becomes less sensitive to a feature moving a pixel or two.")


def describe_layer(layer, output_shape):
    """Two or three sentences on what ``layer`` does and what its output ``output_shape`` holds."""
    kind, config, shape = layer_kind(layer), layer.get_config(), _shape(output_shape)
    if kind == "conv":
        return _convolution(layer, config, shape)
    if kind == "pool":
        return _pool(layer, config, output_shape, shape)
    if kind == "batchnorm":
        return ("Each channel is rescaled to a steady mean and spread learned during training. "
                f"This keeps the numbers in a range where learning is stable; the shape stays {shape}.")
    if kind == "activation":
        name, does = _activation(config)
        bend = ("" if name == "linear" else " Without such a bend, stacking layers would add nothing: the whole "
                "network would be one linear formula.")
        return f"The {name} activation {does}.{bend}"
    if kind == "flatten":
        return (f"The feature maps are unrolled into one long list of {shape} numbers. "
                "From here on, the network no longer knows where in the face a value came from.")
    if kind == "dense":
        units = config.get("units", "")
        return (f"Each of the {units} units multiplies every input number by its own weight and adds "
                "them up, so it can combine evidence from the whole face."
                + (" These raw scores, one per emotion, are called logits." if layer.name == "logits" else
                   _activation_after(config)))
    if kind == "dropout":
        return (f"During training this step switches off a random {config.get('rate', 0):.0%} of the units so the "
                "network cannot rely on any single one. When predicting, it does nothing: the output equals the input.")
    if kind == "softmax":
        return ("Softmax turns the logits into probabilities: e is raised to the power of each logit and "
                "divided by the total, so all are positive and add up to 100%. "
                "The largest one is the predicted emotion.")
    if kind == "rescale":
        return f"The pixel values are shifted and scaled to the range the next layers were trained on ({shape})."
    return f"A {type(layer).__name__} layer; its output has shape {shape}."
