"""The files the in-browser engine reads: its constants, the BlazeFace networks and the exported models.

Nothing here computes on a student's picture: the pages fetch these once and then find and
label faces on the student's own device (``static/engine/``). ``make site`` writes the same
files into a folder, so a plain static web server can serve them instead (``scripts/make_site.py``).
"""
import os

from flask import Blueprint, current_app, jsonify, send_file

from utils.faces.blazeface import DetectorUnavailable
from utils.serving.browser_export import blazeface_files, engine_constants, exported_paths, is_current
from web.analysis import LIVE_CHANNELS
from web.registry import ModelNotFound, registry

bp = Blueprint("engine", __name__, url_prefix="/engine")
FILE_KINDS = {".json": "card", ".layers.tflite": "layers", ".tflite": "logits"}


def constants():
    """The engine's constants: Python's own (utils.serving.browser_export), the site's pixel limit and the
    Live page's channel count."""
    return dict(engine_constants(current_app.config["MAX_PIXELS"]), live_channels=LIVE_CHANNELS)


@bp.get("/constants.json")
def constants_file():
    return jsonify(constants())


@bp.get("/blazeface/<name>")
def blazeface(name):
    """One of the two BlazeFace networks, from the wheel the server runs them from."""
    try:
        files = blazeface_files()
    except DetectorUnavailable as error:
        return jsonify(error=str(error)), 404
    if name not in files:
        return jsonify(error=f"no BlazeFace file {name!r} (there are {', '.join(files)})"), 404
    return send_file(files[name], mimetype="application/octet-stream", max_age=3600)


def split_name(filename):
    """``emotion_model.layers.tflite`` -> ``("emotion_model", "layers")``; None for another name."""
    for suffix, kind in FILE_KINDS.items():
        if filename.endswith(suffix):
            return filename[:-len(suffix)], kind
    return None


@bp.get("/models/<filename>")
def model_file(filename):
    """An exported model's file, served only while it was exported from the model's present ``.h5``
    and card: a stale export would label faces with another network than the server's."""
    parts = split_name(filename)
    if parts is None:
        return jsonify(error=f"no engine file {filename!r}"), 404
    name, kind = parts
    try:
        _, h5_path = registry().locate(name)
    except ModelNotFound as error:
        return jsonify(error=str(error)), 404
    folder = current_app.config["BROWSER_DIR"]
    if not is_current(h5_path, folder):
        return jsonify(error=f"the browser's copy of {name} is missing or older than {os.path.basename(h5_path)}: "
                             "run `make run` (or python scripts/export_browser.py)"), 404
    return send_file(exported_paths(name, folder)[kind], max_age=0)
