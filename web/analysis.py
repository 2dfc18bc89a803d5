"""One face opened up, as JSON for the browser: every step's output, kernels, Grad-CAM, regions.

The arrays come from :mod:`utils` (layers, Grad-CAM, regions) and the pictures from :mod:`utils.plots`;
this module only chooses what to send and encodes it as PNG data URLs, so the page
needs no second request per picture.
"""
import cv2
import numpy as np

from utils import plots
from utils.models import LOGITS_LAYER
from utils.perturbation import region_sensitivity
from utils.steps import describe_alignment, describe_input, describe_layer
from utils.targets import parse_class

PARTS = ("layers", "kernels", "gradcam", "regions")
MAX_CHANNELS = 64       # feature maps sent per layer; the page says when there are more
VALUES_SHOWN = 16       # a vector this short (logits, softmax) is also sent as numbers
DISPLAY_SIDE = 192      # the face crop is shown at this size under the Grad-CAM overlay


class ExplainError(ValueError):
    """A face, class or layer that does not exist; the message lists what does."""


def explain(loaded, image, index=0, requested_class=None, layer=None, parts=PARTS, threshold=0.35,
            detail="thorough", detector=None):
    """Everything the explorer shows for face ``index``, as a JSON-ready dict.

    Grad-CAM and the regions explain one target, the probability of the requested class
    (the label on screen by default) exactly as shown beside the face; ``target`` says which.
    """
    classes = loaded.predictor.classes
    chosen = loaded.predictor.choose_face(image, index, threshold, detail, detector)
    prediction, crop, face = chosen.prediction, chosen.crop, chosen.input
    target = loaded.target(parse_class(classes, prediction["label"] if requested_class in (None, "")
                                       else requested_class))
    layer = layer or loaded.gradcam.default_layer()
    if layer not in loaded.gradcam.layers():
        raise ExplainError(f"Grad-CAM needs a layer with feature maps; choose one of "
                           f"{', '.join(loaded.gradcam.layers())}")
    result = {"model": loaded.name, "classes": classes, "face_index": index, "faces": chosen.count,
              "face": prediction, "target": target.to_json(), "input": _input_step(face),
              "alignment": _alignment(image, prediction, crop)}
    if "layers" in parts:
        result["layers"] = [_step(loaded.predictor.model.get_layer(out.name), out, classes)
                            for out in loaded.layers.layer_outputs(face)]
    if "kernels" in parts:
        kernels = loaded.layers.first_kernels()
        result["kernels"] = {"shape": list(kernels.shape),
                             "images": [_url(plots.colour_map(kernels[:, :, 0, k], "gray"))
                                        for k in range(kernels.shape[-1])]}
    if "gradcam" in parts:
        cam = loaded.gradcam.gradcam(face, target, layer)
        result["gradcam"] = {"class": target.class_name, "layer": layer, "layers": loaded.gradcam.layers(),
                             "overlay": _url(plots.cam_overlay(_display(crop.image), cam)),
                             "heatmap": _url(plots.colour_map(cam, "jet", 0.0, 1.0))}
    if "regions" in parts:
        result["regions"] = {"class": target.class_name,
                             "rows": region_sensitivity(loaded.predictor, face, target,
                                                        crop.keypoints_at(*face.shape[:2]))}
    return result


def parse_parts(text):
    """``"layers,gradcam"`` -> the parts to compute; empty means all."""
    if not text:
        return PARTS
    parts = tuple(part.strip() for part in str(text).split(",") if part.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ExplainError(f"unknown part {', '.join(map(repr, unknown))} (parts: {', '.join(PARTS)})")
    return parts


def _url(image):
    return plots.png_data_url(plots.image_png(image))


def _display(crop):
    """The gray crop at a readable size for the overlay (a big photo's face can be 2000 px)."""
    return cv2.resize(crop, (DISPLAY_SIDE, DISPLAY_SIDE), interpolation=cv2.INTER_AREA
                      if crop.shape[0] > DISPLAY_SIDE else cv2.INTER_LINEAR)


def _alignment(image, prediction, crop):
    """The first step: the face as found in the photo (box, keypoints, eye line, the square
    cut out) and the same face turned upright, with the sentence saying why."""
    return {"angle": round(crop.angle, 1), "text": describe_alignment(prediction, crop.angle),
            "photo": _url(plots.alignment_picture(image, prediction, crop)),
            "crop": _url(plots.to_rgb(_display(crop.image)))}


def _input_step(face):
    return {"name": "input", "kind": "input", "shape": list(face.shape), "text": describe_input(face.shape),
            "image": _url(np.uint8(np.clip(face[:, :, 0], 0, 1) * 255))}


def _step(layer, output, classes):
    """One layer's output: a picture per channel (one scale for the layer) or a strip for a vector.

    The logits are also sent as numbers, named by their classes.
    """
    array = output.array
    step = {"name": output.name, "kind": output.kind, "shape": list(array.shape),
            "text": describe_layer(layer, array.shape)}
    low, high = float(array.min()), float(array.max())
    step["range"] = [round(low, 4), round(high, 4)]
    if array.ndim == 3:
        shown = min(MAX_CHANNELS, array.shape[-1])
        step["maps"] = [_url(plots.colour_map(array[:, :, c], "viridis", low, high)) for c in range(shown)]
    else:
        values = array.ravel()
        step["strip"] = _url(plots.colour_map(_wrap(values), "viridis", low, high))
        if values.size <= VALUES_SHOWN:
            step["values"] = [round(float(v), 4) for v in values]
        if output.name == LOGITS_LAYER:
            step["labels"] = classes
    return step


def _wrap(values, width=64):
    """A long vector folded into rows of ``width`` cells so it fits on screen (padded with its minimum)."""
    rows = int(np.ceil(values.size / width)) if values.size > width else 1
    width = min(width, values.size)
    padded = np.full(rows * width, values.min(), dtype=np.float32)
    padded[:values.size] = values
    return padded.reshape(rows, width)
