"""One face opened up, as JSON for the browser: every step's output, kernels, Grad-CAM, regions,
the operation behind one position and what one channel looks for.

The arrays come from :mod:`utils` (layers, Grad-CAM, regions, operations, receptive fields,
channels) and the pictures from :mod:`utils.media` and :mod:`utils.explain.figures`; this module only chooses what to send and
encodes it as PNG data URLs, so the page needs no second request per picture.
"""
import cv2
import numpy as np

from utils.defaults import FER2013_TEST, project_path, THRESHOLD
from utils.explain import figures, operation_text
from utils.explain.layers import layer_kind
from utils.explain.perturbation import region_sensitivity
from utils.explain.receptive import field_geometry, receptive_field
from utils.explain.steps import describe_alignment, describe_input, describe_layer
from utils.explain.targets import parse_class
from utils.faces.pictures import alignment_picture
from utils.media import encode
from utils.media.colour import to_rgb
from utils.model.architectures import LOGITS_LAYER
from utils.model.predict import face_at, face_number, NoSuchFace
from utils.train.datasets import DatasetError
from web import operation_view

PARTS = ("layers", "kernels", "gradcam", "regions")   # what an explanation holds unless ``parts`` says
ON_REQUEST = ("operation", "channel")                 # asked for by name: one position, one channel
MAX_CHANNELS = 64       # feature maps sent per layer; the page says when there are more
LIVE_CHANNELS = 16      # feature maps sent with a Live frame: a few small pictures, a few times a second
VALUES_SHOWN = 16       # a vector this short (logits, softmax) is also sent as numbers
DISPLAY_SIDE = 192      # the face crop is shown at this size under the Grad-CAM overlay
STRIP_WIDTH = 64        # a long vector is shown folded into rows of this many cells


class ExplainError(ValueError):
    """A face, class or layer that does not exist; the message lists what does."""


def explain(loaded, image, index=0, requested_class=None, layer=None, parts=PARTS, threshold=THRESHOLD,
            detail="thorough", detector=None, position=(0, 0, 0), test_folder=project_path(FER2013_TEST), box=None):
    """Everything the explorer shows for face ``index`` (or the face at ``box``: see
    :func:`utils.model.predict.face_at`), as a JSON-ready dict.

    Grad-CAM and the regions explain one target, the probability of the requested class
    (the label on screen by default) exactly as shown beside the face; ``target`` says which.
    ``layer`` is the Grad-CAM layer, and the layer of the "operation" and "channel" parts;
    ``position`` is ``(channel, y, x)`` in its output for "operation" (a channel for
    "channel"); ``test_folder`` holds the test faces that a channel's top faces come from.
    """
    classes = loaded.predictor.classes
    faces = loaded.predictor.choose_faces(image, threshold, detail, detector)
    index = face_at(faces, box) if box is not None else face_number(faces, index)
    chosen = faces[index]
    prediction, crop, face = chosen.prediction, chosen.crop, chosen.input
    target = loaded.target(parse_class(classes, prediction["label"] if requested_class in (None, "")
                                       else requested_class))
    if ("operation" in parts or "channel" in parts) and not layer:
        raise ExplainError(f"parts {', '.join(ON_REQUEST)} need a 'layer' (layers: "
                           f"{', '.join(layer.name for layer in loaded.layers.layers)})")
    result = {"model": loaded.name, "classes": classes, "face_index": index, "faces": chosen.count,
              "face": prediction, "precision": loaded.predictor.precision, "target": target.to_json(), "input": _input_step(face),
              "alignment": _alignment(image, prediction, crop)}
    if "layers" in parts:
        result["layers"] = [dict(_step(loaded.predictor.model.get_layer(out.name), out, classes),
                                 receptive=_geometry(loaded.predictor.model, out.name))
                            for out in loaded.layers.layer_outputs(face)]
    if "kernels" in parts:
        kernels = loaded.layers.first_kernels()
        result["kernels"] = {"shape": list(kernels.shape),
                             "images": [_url(encode.colour_map(kernels[:, :, 0, k], "gray"))
                                        for k in range(kernels.shape[-1])]}
    if "gradcam" in parts:
        result["gradcam"] = gradcam(loaded, chosen, target, layer)
    if "regions" in parts:
        result["regions"] = {"class": target.class_name,
                             "rows": region_sensitivity(loaded.predictor, face, target,
                                                        crop.keypoints_at(*face.shape[:2]))}
    if "operation" in parts:
        result["operation"] = operation(loaded, face, layer, *position)
        result["receptive_field"] = _receptive_field(loaded.predictor.model, layer, *position[1:])
    if "channel" in parts:
        result["channel"] = channel_view(loaded, layer, position[0], test_folder)
    return result


def gradcam(loaded, chosen, target, layer=None):
    """Grad-CAM of ``target`` for one chosen face (:class:`utils.model.predict.ChosenFace`): overlay and heatmap."""
    layer = gradcam_layer(loaded, layer)
    cam = loaded.gradcam.gradcam(chosen.input, target, layer)
    return {"class": target.class_name, "precision": loaded.gradcam.precision, "layer": layer,
            "layers": loaded.gradcam.layers(),
            "overlay": _url(figures.cam_overlay(_display(chosen.crop.image), cam)),
            "heatmap": _url(encode.colour_map(cam, "jet", 0.0, 1.0))}


def gradcam_layer(loaded, layer=None):
    """The layer Grad-CAM will read: ``layer``, or the last convolution when None; one without feature maps is refused."""
    try:
        return loaded.gradcam.check_layer(layer)
    except ValueError as error:
        raise ExplainError(str(error)) from None


def every_face_gradcam(loaded, image, threshold=THRESHOLD, detail="thorough", detector=None, layer=None, boxes=None,
                       classes=None):
    """Grad-CAM of every face's own label, from one face search (a class photo has thirty faces):
    ``{"model", "precision", "faces": [{"face_index", "face", "target", "gradcam"}]}``.

    With ``boxes`` (``(x, y, w, h)`` each: faces found elsewhere, by the browser), one answer per box
    instead, in their order: the face it names (:func:`utils.model.predict.face_at`) explained for the
    class of ``classes`` at the same place (a class index, or None: its own label), the box in ``box``; or
    ``{"box", "error"}`` when no face is there.
    """
    chosen = loaded.predictor.choose_faces(image, threshold, detail, detector)
    if boxes is None:
        return {"model": loaded.name, "precision": loaded.predictor.precision,
                "faces": [_face_gradcam(loaded, chosen, index, None, layer) for index in range(len(chosen))]}
    answers = []
    for face_box, requested in zip(boxes, classes or [None] * len(boxes)):
        try:
            index = face_at(chosen, face_box)
        except NoSuchFace as error:
            answers.append({"box": list(face_box), "error": str(error)})
            continue
        answers.append({"box": list(face_box), **_face_gradcam(loaded, chosen, index, requested, layer)})
    return {"model": loaded.name, "precision": loaded.predictor.precision, "faces": answers}


def _face_gradcam(loaded, chosen, index, class_index, layer):
    """Face ``index`` of ``chosen`` with Grad-CAM of class ``class_index`` (None: its own label)."""
    face = chosen[index]
    target = loaded.target(loaded.predictor.classes.index(face.prediction["label"]) if class_index is None
                           else class_index)
    return {"face_index": index, "face": face.prediction, "target": target.to_json(),
            "gradcam": gradcam(loaded, face, target, layer)}


def operation(loaded, face, layer, channel, y, x):
    """The operation view of ``layer`` at ``(y, x, channel)``, as :func:`described` sends it."""
    try:
        view = loaded.operations.operation(face, layer, channel, y, x)
    except ValueError as error:
        raise ExplainError(str(error)) from None
    return described(view, loaded.predictor.classes)


def described(view, classes):
    """An operation view with what the page shows of it: its sentences (:mod:`utils.explain.operation_text`) and
    ``display``, the blocks the page lays out as they are (:mod:`web.operation_view`)."""
    labels = operation_text.unit_labels(view, classes)
    return {**view, "summary": operation_text.summary(view, labels), "check": operation_text.check(view),
            "display": operation_view.display(view, labels, STRIP_WIDTH)}


def _receptive_field(model, layer, y, x):
    """The input pixels the position sees; None where a layer reads several tensors (no single chain)."""
    try:
        return receptive_field(model, layer, y, x)
    except ValueError:
        return None


def _geometry(model, layer):
    """Where each position of the layer looks in the input (start, jump, field), for the page to
    draw the box under the mouse; None where no single chain of layers leads to it."""
    try:
        return field_geometry(model, layer)
    except ValueError:
        return None


def channel_view(loaded, layer, channel, test_folder=project_path(FER2013_TEST)):
    """What a convolution's channel looks for: the input that excites it most, and the test faces that do.

    ``{"layer", "channel", "pattern": {"image": PNG URL, "range": [low, high], "response", "grey_response",
    "steps"}, "top_faces": {"faces": [{"image", "class", "activation", "path"}], "missing": sentence or None}}``;
    without the test faces ``missing`` says how to get them.
    """
    try:
        pattern = loaded.channels.pattern(layer, channel)
    except ValueError as error:
        raise ExplainError(str(error)) from None
    image = np.array(pattern["image"])
    answer = {"layer": layer, "channel": channel,
              "pattern": {"image": _face_url(image), "range": [float(image.min()), float(image.max())],
                          **{key: pattern[key] for key in ("response", "grey_response", "steps")}}}
    try:
        top = loaded.channels.top_faces(layer, channel, test_folder)["faces"]
        answer["top_faces"] = {"faces": [{"image": _face_url(np.array(face["image"])), "class": face["class"],
                                          "activation": face["activation"], "path": face["path"]} for face in top],
                               "missing": None}
    except DatasetError as error:
        answer["top_faces"] = {"faces": [], "missing": str(error)}
    return answer


def layer_maps(loaded, face, layer, channels=LIVE_CHANNELS):
    """The first ``channels`` feature maps of one layer for one face, for the Live page:
    ``{"name", "kind", "shape", "range", "maps": [PNG URL]}``."""
    spatial = loaded.layers.spatial_layers()
    if layer not in spatial:
        raise ExplainError(f"'layer' must be a layer with feature maps (one of {', '.join(spatial)})")
    array = loaded.operations.layer_output(face, layer)
    return {"name": layer, "kind": layer_kind(loaded.predictor.model.get_layer(layer)), "shape": list(array.shape),
            **_maps(array, channels)}


def parse_parts(text):
    """``"layers,gradcam"`` -> the parts to compute; empty means all but those asked for by name."""
    if not text:
        return PARTS
    parts = tuple(part.strip() for part in str(text).split(",") if part.strip())
    unknown = sorted(set(parts) - set(PARTS + ON_REQUEST))
    if unknown:
        raise ExplainError(f"unknown part {', '.join(map(repr, unknown))} (parts: {', '.join(PARTS + ON_REQUEST)})")
    return parts


def _url(image):
    return encode.png_data_url(encode.image_png(image))


def _display(crop):
    """The gray crop at a readable size for the overlay (a big photo's face can be 2000 px)."""
    return cv2.resize(crop, (DISPLAY_SIDE, DISPLAY_SIDE), interpolation=cv2.INTER_AREA
                      if crop.shape[0] > DISPLAY_SIDE else cv2.INTER_LINEAR)


def _alignment(image, prediction, crop):
    """The first step: the face as found in the photo (box, keypoints, eye line, the square
    cut out) and the same face turned upright, with the sentence saying why."""
    return {"angle": round(crop.angle, 1), "text": describe_alignment(prediction, crop.angle),
            "photo": _url(alignment_picture(image, prediction, crop)),
            "crop": _url(to_rgb(_display(crop.image)))}


def _face_url(face):
    """A model-sized face (or a channel's pattern), values in [0, 1], as a gray PNG."""
    return _url(np.uint8(np.clip(face[:, :, 0], 0, 1) * 255))


def _input_step(face):
    return {"name": "input", "kind": "input", "shape": list(face.shape), "text": describe_input(face.shape),
            "image": _face_url(face), "receptive": {"start": [0, 0], "jump": [1, 1], "field": [1, 1],
                                                    "input_shape": list(face.shape[:2]), "whole_input": False}}


def _step(layer, output, classes):
    """One layer's output: a picture per channel (one scale for the layer) or a strip for a vector.

    The logits are also sent as numbers, named by their classes.
    """
    array = output.array
    step = {"name": output.name, "kind": output.kind, "shape": list(array.shape),
            "text": describe_layer(layer, array.shape)}
    if array.ndim == 3:
        step.update(_maps(array, MAX_CHANNELS))
    else:
        values = array.ravel()
        low, high = float(values.min()), float(values.max())
        step["range"] = [round(low, 4), round(high, 4)]
        step["strip"] = _url(encode.colour_map(_wrap(values), "viridis", low, high))
        step["columns"] = min(STRIP_WIDTH, values.size)   # cells per row of the strip: unit = row x columns + column
        if values.size <= VALUES_SHOWN:
            step["values"] = [round(float(v), 4) for v in values]
        if output.name == LOGITS_LAYER:
            step["labels"] = classes
    return step


def _maps(array, channels):
    """``{"range", "maps", "channel_ranges"}``: the first ``channels`` maps of ``(H, W, C)``, on one
    colour scale for the layer, and each one's own range (for its text alternative)."""
    low, high = float(array.min()), float(array.max())
    shown = array[:, :, :channels]
    colours = encode.colour_map(shown, "viridis", low, high)   # all at once: a call per map costs twice as much
    return {"range": [round(low, 4), round(high, 4)],
            "maps": [_url(np.ascontiguousarray(colours[:, :, c])) for c in range(shown.shape[-1])],
            "channel_ranges": [[round(float(least), 4), round(float(most), 4)]
                               for least, most in zip(shown.min(axis=(0, 1)), shown.max(axis=(0, 1)))]}


def _wrap(values, width=STRIP_WIDTH):
    """A long vector folded into rows of ``width`` cells so it fits on screen (padded with its minimum)."""
    rows = int(np.ceil(values.size / width)) if values.size > width else 1
    width = min(width, values.size)
    padded = np.full(rows * width, values.min(), dtype=np.float32)
    padded[:values.size] = values
    return padded.reshape(rows, width)
