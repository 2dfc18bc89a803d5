"""What each step of a CNN does, in two or three sentences a student can read.

The sentences are built from the layer's own configuration (filters, kernel size,
pool size, units), so any architecture in ``models/`` describes itself. Shared by
the site's "Explore the CNN" page and any other front end that walks the network.
"""
from utils.explain import layer_kind


def _pair(value):
    return "x".join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)


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
    return (f"The detector found this face (score {prediction.get('score', 0):.0%}) and marked its eyes, nose, "
            f"mouth and ears. The face is {turn}scaled and cut out so that its eyes land where they sit in the "
            "training faces. The network learned from faces framed this way; a tilted or off-centre face "
            "would look unfamiliar to it.")


def describe_layer(layer, output_shape):
    """Two or three sentences on what ``layer`` does and what its output ``output_shape`` holds."""
    kind, config, shape = layer_kind(layer), layer.get_config(), _shape(output_shape)
    if kind == "conv":
        activation = config.get("activation", "linear")
        relu = (" A ReLU then keeps the positive responses and sets the rest to zero."
                if activation == "relu" else "")
        return (f"{config.get('filters', '')} small filters of {_pair(config.get('kernel_size'))} pixels slide "
                f"over the input; at each position a filter multiplies the pixels under it by its weights "
                f"and adds them up, giving one feature map per filter ({shape}).{relu} "
                "Early filters react to edges and light/dark blobs; deeper ones to parts such as "
                "eyes, eyebrows and mouth corners.")
    if kind == "pool":
        if len(output_shape) == 1:
            return (f"Each feature map is reduced to one number, its average or maximum, giving {shape} values. "
                    "Where a feature appeared no longer matters, only how strongly.")
        return (f"Each {_pair(config.get('pool_size'))} window keeps only its largest value, halving the "
                f"width and height ({shape}). The network keeps the strongest evidence, needs fewer numbers, "
                "and becomes less sensitive to a feature moving a pixel or two.")
    if kind == "batchnorm":
        return ("Each channel is rescaled to a steady mean and spread learned during training. "
                f"This keeps the numbers in a range where learning is stable; the shape stays {shape}.")
    if kind == "activation":
        return ("The ReLU activation replaces every negative value by zero and keeps the positive ones. "
                "Without such a bend, stacking layers would add nothing: the whole network would be "
                "one linear formula.")
    if kind == "flatten":
        return (f"The feature maps are unrolled into one long list of {shape} numbers. "
                "From here on, the network no longer knows where in the face a value came from.")
    if kind == "dense":
        units = config.get("units", "")
        return (f"Each of the {units} units multiplies every input number by its own weight and adds "
                "them up, so it can combine evidence from the whole face. "
                + ("These raw scores, one per emotion, are called logits." if layer.name == "logits" else
                   "A ReLU keeps the positive sums." if config.get("activation") == "relu" else ""))
    if kind == "dropout":
        return ("During training this step switches off a random half of the units so the network cannot "
                "rely on any single one. When predicting, it does nothing: the output equals the input.")
    if kind == "softmax":
        return ("Softmax turns the logits into probabilities: e is raised to the power of each logit and "
                "divided by the total, so all are positive and add up to 100%. "
                "The largest one is the predicted emotion.")
    if kind == "rescale":
        return f"The pixel values are shifted and scaled to the range the next layers were trained on ({shape})."
    return f"A {type(layer).__name__} layer; its output has shape {shape}."
