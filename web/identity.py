"""The "Identity and emotion" page: who it is and how they feel, and where each model looks.

Rendered on the server like the Gallery: upload a photo (POST) or step through the
identity model's test photos (``?sample=N``), and see both predictions and the two
Grad-CAM maps with their difference. "Train identity model" starts train.py in the
background (:class:`utils.train.jobs.TrainingJob`, whose state every worker shares) and the
page polls ``/identity/train`` for its progress; the identity model is read again
when its file or card changes.

Training from the site is off unless the teacher starts the server with a secret in
``EMODETECT_TRAINING_TOKEN``: anyone on a classroom network can reach the site, and a
run takes the server's cores for a minute. The page then asks for the secret, sent
in the ``X-Training-Token`` header (or a ``token`` field).
"""
import hmac
import os

from flask import Blueprint, current_app, jsonify, render_template, request

from utils.cli import one_line
from utils.defaults import IDENTITY_DATA, IDENTITY_MODEL, project_path
from utils.media import encode
from utils.media.decode import ImageError, read_image
from utils.serving import identity
from utils.train.jobs import JobBusy, TrainingJob
from web import inputs
from web.registry import ModelNotFound, chosen_model, registry

bp = Blueprint("identity", __name__)
TOKEN_VARIABLE = "EMODETECT_TRAINING_TOKEN"   # read at start-up into config TRAINING_TOKEN
TOKEN_HEADER = "X-Training-Token"
DEFAULTS = {
    "IDENTITY_MODEL": IDENTITY_MODEL,   # what the page compares with, and what training writes
    "IDENTITY_DATA": IDENTITY_DATA,     # one folder per person, for "Train identity model"
    "IDENTITY_EPOCHS": identity.TRAIN_EPOCHS,
    "TRAINING_DIR": ".",                            # train.py runs here: checkpoints and job state in its runs/
}


@bp.errorhandler(inputs.BadInput)
def bad_input(error):
    """A training request with a wrong parameter (the page shows its own errors): JSON, as the page polls it."""
    return jsonify(error=str(error)), 400


@bp.record_once
def init_app(state):
    """Config defaults (relative paths from the project root), the training token from the environment,
    the identity model and the training job."""
    app = state.app
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    app.config.setdefault("TRAINING_TOKEN", os.environ.get(TOKEN_VARIABLE) or None)
    path = project_path(app.config["IDENTITY_MODEL"])
    app.extensions["identity_model"] = identity.model_file(path)
    app.extensions["identity_job"] = TrainingJob(cwd=project_path(app.config["TRAINING_DIR"]))


def _model():
    return current_app.extensions["identity_model"]


def _job():
    return current_app.extensions["identity_job"]


def _samples():
    """The identity model's test photos, or none while there is no model."""
    folder = project_path(current_app.config["TRAINING_DIR"])   # where train.py ran: the card's paths are from there
    return identity.held_out_photos(_model().get().predictor.card, folder) if _model().exists() else []


def _compare(image):
    """Both predictions and the comparison figure as a data URL, for the template."""
    result = identity.compare(registry().get(chosen_model()), _model().get(), image,
                              current_app.config["THRESHOLD"])
    return {"emotion": result.emotion, "identity": result.identity,
            "figure": encode.png_data_url(encode.figure_png(result.figure()))}


@bp.route("/identity", methods=["GET", "POST"])
def page():
    samples, context, status = _samples(), {}, 200
    try:
        values = inputs.params()
        sample = inputs.whole_number(values, "sample", 0)
        if request.method == "POST":
            context["result"] = _compare(inputs.read_image(values))
        elif samples:
            index = sample % len(samples)
            path, person = samples[index]
            context.update(sample=index, true_person=person, result=_compare(read_image(path)))
    except (inputs.BadInput, ImageError, ModelNotFound, FileNotFoundError) as error:
        context["error"] = one_line(error)
        status = 400 if isinstance(error, (inputs.BadInput, ImageError)) else 200
    return render_template("pages/identity.html", samples=len(samples), has_model=_model().exists(),
                           job=_job().status(), training_on=bool(current_app.config["TRAINING_TOKEN"]),
                           token_variable=TOKEN_VARIABLE, **context), status


@bp.get("/identity/train")
def training_status():
    return jsonify(_job().status())


@bp.post("/identity/train")
def start_training():
    """Start training in the background and answer at once (202); the page polls the GET.

    403 while training from the site is off or the token is wrong, 409 while a run is
    under way (in any worker), 503 when train.py could not be started: the request was
    fine, the server cannot serve it now, so the reason is logged for whoever runs it.
    """
    refusal = _training_refusal()
    if refusal:
        return jsonify(error=refusal), 403
    data = project_path(current_app.config["IDENTITY_DATA"])
    try:
        status = _job().start(identity.training_args(data, current_app.config["IDENTITY_EPOCHS"]), _model().path)
    except JobBusy as error:
        return jsonify(error=str(error)), 409
    if status["state"] != "running":
        current_app.logger.error("identity training: %s", status["message"])
        return jsonify(error=status["message"]), 503
    return jsonify(status), 202


def _training_refusal():
    """Why this request may not start training (one line), or None when it may."""
    expected = current_app.config["TRAINING_TOKEN"]
    if not expected:
        return (f"training from the site is off: start the server with {TOKEN_VARIABLE}=<a secret> "
                "and give that secret on the page")
    given = request.headers.get(TOKEN_HEADER) or inputs.text(inputs.params(), "token", "")
    if not hmac.compare_digest(given.encode(), str(expected).encode()):
        return f"wrong or missing training token: give the secret the server was started with ({TOKEN_VARIABLE})"
    return None
