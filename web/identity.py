"""The "Identity and emotion" page: who it is and how they feel, and where each model looks.

Rendered on the server like the Gallery: upload a photo (POST) or step through the
identity model's test photos (``?sample=N``), and see both predictions and the two
Grad-CAM maps with their difference. "Train identity model" starts train.py in the
background (:class:`utils.jobs.TrainingJob`) and the page polls ``/identity/train``
for its progress; the identity model is read again when its file changes.
"""
import os

from flask import Blueprint, current_app, jsonify, render_template, request

from utils import identity, plots
from utils.images import ImageError, read_image
from utils.jobs import ROOT, JobBusy, TrainingJob
from web import inputs
from web.pages import chosen_model
from web.registry import ModelNotFound, registry

bp = Blueprint("identity", __name__)
DEFAULTS = {
    "IDENTITY_MODEL": "models/identity_model.h5",   # what the page compares with, and what training writes
    "IDENTITY_DATA": "dataset/yalefaces",           # one folder per person, for "Train identity model"
    "IDENTITY_EPOCHS": identity.TRAIN_EPOCHS,
}


@bp.record_once
def init_app(state):
    """Config defaults (relative paths from the project root), the identity model and the training job."""
    app = state.app
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    path = os.path.join(ROOT, app.config["IDENTITY_MODEL"])
    app.extensions["identity_model"] = identity.ModelFile(path)
    app.extensions["identity_job"] = TrainingJob(cwd=ROOT)


def _model():
    return current_app.extensions["identity_model"]


def _job():
    return current_app.extensions["identity_job"]


def _samples():
    """The identity model's test photos, or none while there is no model."""
    return identity.test_samples(_model().get().predictor.card, ROOT) if _model().exists() else []


def _compare(image):
    """Both predictions and the comparison figure as a data URL, for the template."""
    result = identity.compare(registry().get(chosen_model()), _model().get(), image,
                              current_app.config["THRESHOLD"])
    return {"emotion": result.emotion, "identity": result.identity,
            "figure": plots.png_data_url(plots.figure_png(result.figure()))}


@bp.route("/identity", methods=["GET", "POST"])
def page():
    samples, context, values = _samples(), {}, inputs.params()
    sample = inputs.whole_number(values, "sample", 0)  # outside the try: a wrong type is a 400, as in the API
    try:
        if request.method == "POST":
            context["result"] = _compare(inputs.read_image(values))
        elif samples:
            index = sample % len(samples)
            path, person = samples[index]
            context.update(sample=index, true_person=person, result=_compare(read_image(path)))
    except (inputs.BadInput, ImageError, ModelNotFound, FileNotFoundError) as error:
        context["error"] = str(error).splitlines()[0]
    return render_template("identity.html", samples=len(samples), has_model=_model().exists(),
                           job=_job().status(), **context)


@bp.get("/identity/train")
def training_status():
    return jsonify(_job().status())


@bp.post("/identity/train")
def start_training():
    """Start training in the background and answer at once (202); the page polls the GET."""
    data = os.path.join(ROOT, current_app.config["IDENTITY_DATA"])
    try:
        _job().start(identity.training_args(data, current_app.config["IDENTITY_EPOCHS"]), _model().path)
    except JobBusy as error:
        return jsonify(error=str(error)), 409
    return jsonify(_job().status()), 202
