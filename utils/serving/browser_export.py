"""The browser engine's files, derived from Python's own, never written by hand.

The in-browser engine (``static/engine/``) runs what the server runs: BlazeFace from the same
``.tflite`` files, and each emotion model exported from its ``.h5`` by Keras itself
(``format="litert"``) for LiteRT.js. What both sides must agree on (the detector's thresholds,
the canonical face, the tracker's settings, the class colours) is read here from the Python
modules that define it and handed to the browser as one JSON document
(:func:`engine_constants`), so no number is typed twice.

Two files per model: ``NAME.tflite``, the sub-model from the input to the last features (the input
of the final dense layer, what a personal read-out reads) and the logits, for a batch of two (a face
and its mirror: LiteRT.js wants a fixed batch), and ``NAME.layers.tflite``, every layer with
feature maps for one face (the Live page's layer maps). ``NAME.json`` is the card plus what the
browser needs to read them (which output is which, and the final dense layer's own weights, where
a personal read-out starts), and the sha256 of the ``.h5`` and card they came from, so a stale
export is noticed (:func:`is_current`).
"""
import functools
import hashlib
import json
import os

import numpy as np

from utils.defaults import MAX_PIXELS, model_name
from utils.faces import align, detect
from utils.faces.blazeface import (ACCEPT_SCORE, CONTAINED, FULL_RANGE, LOOK_SPREADS, MERGE_IOU, MIN_FACE_FRACTION,
                                   MIN_FACE_INPUT, MIN_FACE_PX, MIN_SCORE, RAW_SCORE_LIMIT, SHORT_RANGE, TILE_OVERLAP,
                                   blazeface_model_path)
from utils.faces.face import KEYPOINTS
from utils.files import atomic_write, file_sha256, file_stamp, write_json
from utils.live import tracking
from utils.media import decode
from utils.model.card import card_path, read_card
from utils.model.readout import fit_settings, last_layer

CLASSIFY_BATCH = 2   # a face and its mirror image, in one call
# OpenCV's fixed-point weights of R, G and B in its 8-bit BGR2GRAY (15 fractional bits): the gray
# every face passes through (utils.media.colour.to_gray). tests/test_export.py holds them to cv2.
GRAY_WEIGHTS = (9798, 19235, 3735)
GRAY_SHIFT = 15


def exported_paths(name, folder):
    """Where a model's browser files are: ``{"card", "logits", "layers"}`` -> path."""
    return {"card": os.path.join(folder, f"{name}.json"), "logits": os.path.join(folder, f"{name}.tflite"),
            "layers": os.path.join(folder, f"{name}.layers.tflite")}


_digests = {}


def source_digest(h5_path):
    """sha256 over a model's ``.h5`` and its card: what an export was made from (kept while neither
    file changes, so the site can check every request cheaply)."""
    sources = (h5_path, card_path(h5_path))
    stamp = tuple(file_stamp(path) for path in sources)
    if _digests.get(h5_path, (None,))[0] != stamp:
        combined = hashlib.sha256("".join(file_sha256(path) for path in sources).encode()).hexdigest()
        _digests[h5_path] = (stamp, combined)
    return _digests[h5_path][1]


def read_export(name, folder):
    """The exported card of model ``name`` in ``folder``, or None when there is none."""
    paths = exported_paths(name, folder)
    if not all(os.path.isfile(path) for path in paths.values()):
        return None
    with open(paths["card"]) as handle:
        return json.load(handle)


def is_current(h5_path, folder):
    """Whether ``folder`` holds an export of this very ``.h5`` and card."""
    card = read_export(model_name(h5_path), folder)
    return card is not None and card.get("browser", {}).get("source_sha256") == source_digest(h5_path)


def emotion_models(models_dir):
    """The ``.h5`` files of ``models_dir`` whose card says they read emotions (the pages classify with these)."""
    found = []
    for entry in sorted(os.listdir(models_dir)):
        path = os.path.join(models_dir, entry)
        if entry.endswith(".h5") and os.path.isfile(card_path(path)) and read_card(path).task == "emotion":
            found.append(path)
    return found


def export_model(h5_path, folder):
    """Export one model for the browser into ``folder``; returns the exported card."""
    import keras
    import tensorflow as tf

    from utils.explain.layers import layer_kind, spatial_layers
    from utils.model.architectures import LOGITS_LAYER
    from utils.model.store import load_model
    model, card = load_model(h5_path)
    name = model_name(h5_path)
    paths = exported_paths(name, folder)
    os.makedirs(folder, exist_ok=True)
    shape = card.input.shape
    head = model.get_layer(LOGITS_LAYER)
    logits = keras.Model(model.input, [head.input, head.output])   # signature outputs output_0, output_1
    layers = spatial_layers(model)
    maps = keras.Model(model.input, [model.get_layer(layer).output for layer in layers])
    for sub, path, batch in ((logits, paths["logits"], CLASSIFY_BATCH), (maps, paths["layers"], 1)):
        signature = [tf.TensorSpec((batch, *shape), tf.float32)]   # fixed: LiteRT.js runs fixed shapes
        atomic_write(path, lambda temp, sub=sub, signature=signature: sub.export(
            temp, format="litert", input_signature=signature, verbose=False))
    weights, bias = last_layer(model)
    exported = dict(card.to_dict(), browser={
        "source_sha256": source_digest(h5_path), "batch": CLASSIFY_BATCH,
        "logits": os.path.basename(paths["logits"]), "layers_file": os.path.basename(paths["layers"]),
        "outputs": {"features": "output_0", "logits": "output_1"},
        "head": {"weights": weights.tolist(), "bias": bias.tolist()},   # (features, classes), as Keras keeps it
        # Keras output k is the signature's "output_k" (the file's own tensor order is another one)
        "layers": [{"name": layer, "kind": layer_kind(model.get_layer(layer)), "output": f"output_{index}",
                    "shape": list(model.get_layer(layer).output.shape[1:])} for index, layer in enumerate(layers)]})
    write_json(paths["card"], exported, indent=1)
    return exported


def export_models(models_dir, folder, force=False, say=print):
    """Export every emotion model of ``models_dir`` whose export is missing or stale; the names exported."""
    done = []
    for h5_path in emotion_models(models_dir):
        if force or not is_current(h5_path, folder):
            say(f"exporting {os.path.relpath(h5_path)} for the browser into {os.path.relpath(folder)}")
            export_model(h5_path, folder)
            done.append(model_name(h5_path))
    return done


def blazeface_files():
    """``file name -> path`` of the two BlazeFace networks in the installed wheel (what the server runs)."""
    return {os.path.basename(network.file): blazeface_model_path(network.file)
            for network in (FULL_RANGE, SHORT_RANGE)}


@functools.cache
def viridis():
    """The Live page's colour scale for feature maps, as 256 RGB triples (what utils.media.encode.colour_map draws)."""
    import matplotlib
    return tuple(map(tuple, np.uint8(matplotlib.colormaps["viridis"](np.arange(256))[:, :3] * 255).tolist()))


def engine_constants(max_pixels=MAX_PIXELS):
    """Everything the browser engine must agree on with Python, read from where Python defines it;
    ``max_pixels``: the largest picture the site accepts (its ``MAX_PIXELS``)."""
    canonical = align.canonical_face()
    networks = {"full": FULL_RANGE, "short": SHORT_RANGE}
    return {
        "picture": decode.browser_rules(max_pixels),
        "detection": {
            "keypoints": list(KEYPOINTS), "min_score": MIN_SCORE,
            "accept_score": ACCEPT_SCORE, "sure_score": detect.SURE_SCORE,
            "look_spreads": list(LOOK_SPREADS), "merge_iou": MERGE_IOU,
            "raw_score_limit": RAW_SCORE_LIMIT, "min_face_input": MIN_FACE_INPUT,
            "min_face_px": MIN_FACE_PX, "min_face_fraction": MIN_FACE_FRACTION,
            "tile_overlap": TILE_OVERLAP, "contained": CONTAINED,
            "near_margin": detect.NEAR_MARGIN, "near_min_iou": detect.NEAR_MIN_IOU,
            "face_order": detect.FACE_ORDER,
            "networks": {key: {"name": network.name, "file": os.path.basename(network.file), "side": network.side,
                               "grids": [list(grid) for grid in network.grids]} for key, network in networks.items()},
        },
        "faces": {"frame": canonical["frame"], "keypoints": canonical["keypoints"], "fitted": list(align.FITTED),
                  "gray_weights": list(GRAY_WEIGHTS), "gray_shift": GRAY_SHIFT},
        "video": {"detect_every": tracking.DETECT_EVERY["blazeface"], "smooth_frames": tracking.SMOOTH_FRAMES,
                  "max_missed": tracking.MAX_MISSED, "confirm_hits": tracking.CONFIRM_HITS,
                  "match_iou": tracking.MATCH_IOU},
        "viridis": viridis(),
        "readout": fit_settings(),
    }
