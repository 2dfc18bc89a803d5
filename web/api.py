"""The JSON API: ``/api/predict``, ``/api/explain``, ``/api/models`` and ``/healthz``.

Every answer is JSON, errors included (``{"error": "..."}`` with a 4xx status), so a
script or the site's own JavaScript never has to parse an HTML error page.
"""
from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from utils.explain.targets import parse_class, UnknownClass
from utils.faces.detect import FACE_ORDER
from utils.model.predict import NoSuchFace
from web import analysis
from web.inputs import (BadInput, absent, box, boxes, detail, detector, model, name_or_index, names, params, read_image,
                        text, threshold, whole_number)
from web.registry import ModelNotFound, registry

bp = Blueprint("api", __name__)
# What only one face's explanation reads: face=all refuses them rather than leave them unread.
ONE_FACE_PARAMETERS = ("class", "channel", "y", "x", "box")
# What only face=all reads: one face's explanation refuses them.
EVERY_FACE_PARAMETERS = ("boxes", "classes")


@bp.post("/api/predict")
def predict():
    """Every face in the image: box, label, confidence, probabilities, uncertain, whole_image;
    ``order`` says in what order they come (sure faces first, each group largest first).

    ``detail=fast`` searches for faces more coarsely, for live webcam frames; ``detector=haar``
    uses the 2001 cascade instead of BlazeFace (which also gives each face's keypoints).
    ``layer=NAME`` adds that layer's first feature maps for the first face (``layer``:
    name, kind, shape, range, maps as PNG data URLs), for the Live page. Every parameter's
    type is checked before the image is decoded, the costly step.
    """
    values = params()
    loaded = registry().get(model(values))
    options = {"threshold": threshold(values), "detail": detail(values), "detector": detector(values)}
    layer = text(values, "layer")
    image = read_image(values)
    chosen = loaded.predictor.choose_faces(image, **options)
    answer = {"model": loaded.name, "image": {"width": image.shape[1], "height": image.shape[0]},
              "faces": [face.prediction for face in chosen], "order": FACE_ORDER}
    if layer is not None:
        answer["layer"] = analysis.layer_maps(loaded, chosen[0].input, layer)
    return jsonify(answer)


@bp.post("/api/explain")
def explain():
    """One face opened up: layer outputs, first kernels, Grad-CAM and region table as PNG data URLs.

    Parameters: ``face`` (index, default 0) or ``box`` (``x,y,w,h``: the face that box overlaps most, by at
    least half, found as the server finds faces), ``class`` (name or index, default the
    predicted one), ``layer`` (Grad-CAM layer, default the last convolution) and
    ``parts`` (comma list of layers, kernels, gradcam, regions, the default, and of
    operation and channel); ``detail`` and ``detector`` as for predict, so face numbers match.
    ``parts=operation`` with ``layer``, ``channel``, ``y`` and ``x`` (a position in that
    layer's output; 0 by default) adds ``operation`` (the numbers that made it) and
    ``receptive_field`` (the input pixels it sees); ``parts=channel`` with ``layer`` and
    ``channel`` adds ``channel`` (its preferred input and top test faces). ``face=all``
    answers every face's Grad-CAM from one face search (the Analyse page): for its own label, or
    with ``boxes`` (and ``classes``, one per box) for the faces at those boxes and those classes.
    ``precision`` says what the face's probabilities were computed in, ``gradcam.precision`` the map.
    """
    values = params()
    loaded = registry().get(model(values))
    if values.get("face") == "all":
        return jsonify(every_face(loaded, values))
    refused = [name for name in EVERY_FACE_PARAMETERS if not absent(values, name)]
    if refused:
        raise BadInput(f"{' and '.join(refused)} name the faces of face=all; for one face, send 'box'")
    face_box = box(values, "box")
    if face_box is not None and not absent(values, "face"):
        raise BadInput("name the face by its number ('face') or by its box ('box'), not both")
    options = {"index": whole_number(values, "face", 0), "box": face_box,
               "requested_class": name_or_index(values, "class"),
               "layer": text(values, "layer"), "parts": analysis.parse_parts(text(values, "parts")),
               "threshold": threshold(values), "detail": detail(values), "detector": detector(values),
               "position": tuple(whole_number(values, name, 0) for name in ("channel", "y", "x")),
               "test_folder": current_app.config["GALLERY_DIR"]}
    return jsonify(analysis.explain(loaded, read_image(values), **options))


def every_face(loaded, values):
    """``face=all``: Grad-CAM of every face (or of the faces at ``boxes``); the parameters are checked before the face search."""
    parts = text(values, "parts", "gradcam")
    refused = [name for name in ONE_FACE_PARAMETERS if not absent(values, name)]
    if analysis.parse_parts(parts) != ("gradcam",):
        refused.append(f"parts={parts}")
    if refused:
        raise BadInput(f"face=all answers every face's Grad-CAM (parts=gradcam); "
                       f"for {', '.join(refused)}, choose one face with face=N")
    faces_at = boxes(values, "boxes")
    if faces_at is None and not absent(values, "classes"):
        raise BadInput("'classes' needs 'boxes': one class for each face's box")
    classes = names(values, "classes", len(faces_at)) if faces_at else None
    options = {"threshold": threshold(values), "detail": detail(values), "detector": detector(values),
               "layer": analysis.gradcam_layer(loaded, text(values, "layer")), "boxes": faces_at,
               "classes": classes and [None if name is None else parse_class(loaded.predictor.classes, name)
                                       for name in classes]}
    return analysis.every_face_gradcam(loaded, read_image(values), **options)


@bp.get("/api/models")
def models():
    """Every model in the models folder with its card (or the ``error`` that keeps it from being read);
    ``default`` marks the one used when none is named."""
    models = registry()
    return jsonify(default=models.default_name,
                   models=[{"name": name, "error": card} if isinstance(card, str) else
                           {"name": name, "card": card.to_dict()} for name, card in models.cards().items()])


@bp.get("/healthz")
def healthz():
    """200 once the default model is there (a load balancer or the bench waits for this)."""
    models = registry()
    try:
        name = models.resolve()
    except ModelNotFound as error:
        return jsonify(status="no model", error=str(error)), 503
    return jsonify(status="ok", default_model=name)


def _error(status, message):
    return jsonify(error=message), status


@bp.errorhandler(BadInput)
@bp.errorhandler(NoSuchFace)
@bp.errorhandler(UnknownClass)
@bp.errorhandler(analysis.ExplainError)
def bad_input(error):
    return _error(400, str(error))


@bp.errorhandler(ModelNotFound)
def model_not_found(error):
    return _error(404, str(error))


@bp.errorhandler(HTTPException)
def http_error(error):
    """413 too large (and any other HTTP error inside an API view) as JSON."""
    if error.code == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"] / 1e6
        return _error(413, f"the upload is larger than the {limit:g} MB limit")
    return _error(error.code, error.description)


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def routing_error(error):
    """A path or method no view has belongs to no blueprint: JSON under /api/, Flask's page elsewhere."""
    if request.path.startswith("/api/"):
        return _error(error.code, error.description)
    return error
