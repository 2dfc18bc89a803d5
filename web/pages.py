"""The pages a class uses: Analyse, Explore the CNN, Live, Gallery and Models.

Analyse, Explore and Live are drawn in the browser from the JSON API; Gallery and
Models are rendered here. The chosen model lives in a cookie, so every page and
every API call a page makes use the same one.
"""
from flask import Blueprint, abort, current_app, redirect, render_template, send_file, url_for
from markupsafe import Markup

from utils.defaults import class_colour
from utils.faces.blazeface import BLAZEFACE_INSTALL
from utils.faces.detect import default_detector, WHOLE
from utils.media.decode import ImageError, read_image
from web import analysis, inputs, security
from web.facts import page_facts
from web.registry import MODEL_COOKIE, ModelNotFound, chosen_model, registry

bp = Blueprint("pages", __name__)


@bp.errorhandler(inputs.BadInput)
def bad_input(error):
    """A page asked for with a wrong parameter (``?i=x``): a page that says so."""
    return render_template("messages/error.html", message=str(error)), 400


@bp.errorhandler(ModelNotFound)
def model_not_found(error):
    """A missing model: a page that says how to get one."""
    return render_template("messages/no_model.html", message=str(error)), 404


# The pages a static copy of the site has (make site), and their file names there.
SITE_PAGES = {"pages.analyse": "index.html", "pages.live": "live.html"}


@bp.app_context_processor
def page_context():
    site = current_app.config["STATIC_SITE"]
    asset = static_asset if not site else (lambda filename: f"./static/{filename}")
    imports = Markup(security.import_map(asset))   # our own URLs: the exact text the policy's hash is of
    return {"current_model": chosen_model(),
            "facts": page_facts(current_app.config["THRESHOLD"], current_app.config["CALIBRATION"]),
            "class_colour": class_colour,   # a rendered page's bars: the class at an index of the card, its colour
            "detector": default_detector(), "blazeface_install": BLAZEFACE_INSTALL,
            "static_site": site, "asset": asset, "import_map": imports,
            "meta_policy": security.policy(imports, in_meta=True) if site else None,
            "page_url": url_for if not site else (lambda endpoint: SITE_PAGES[endpoint]),
            "nav_pages": [(endpoint, label) for endpoint, label in NAV_PAGES if not site or endpoint in SITE_PAGES],
            "engine_url": url_for("engine.constants_file").rsplit("/", 1)[0] + "/" if not site else "./engine/"}


NAV_PAGES = [("pages.analyse", "Analyse"), ("pages.explore", "Explore the CNN"), ("pages.live", "Live"),
             ("pages.gallery", "Gallery"), ("identity.page", "Identity and emotion"), ("pages.models", "Models")]


def static_asset(filename):
    return url_for("static", filename=filename)


@bp.get("/")
def analyse():
    return render_template("pages/analyse.html")


@bp.get("/explore")
def explore():
    return render_template("pages/explore.html")


@bp.get("/live")
def live():
    """The webcam page; its layer chooser lists the chosen model's layers with feature maps."""
    try:
        layers = registry().get(chosen_model()).layers.spatial_layers()
    except ModelNotFound:
        layers = []
    return render_template("pages/live.html", layers=layers)


@bp.get("/gallery")
def gallery():
    """One test face with its true label (with FER+, ten people's votes), the prediction, the softmax bars and
    Grad-CAM; or, with ``show``, the list of faces where people split or where the model and the crowd disagree."""
    faces = current_app.extensions["gallery"]
    params = inputs.params()
    if not len(faces):
        return render_template("messages/gallery_empty.html", folder=faces.folder, problem=faces.problem)
    show = None if inputs.absent(params, "show") else inputs.choice(params, "show", faces.lists)
    if show:
        if not faces.has_votes:
            raise inputs.BadInput("these test faces have one label each, no votes: put FER+ in place "
                                  "(make data FERPLUS=...) to list where people split")
        listed, found = faces.listed(show, registry().get(chosen_model()) if show == "disagree" else None)
        return render_template("pages/gallery_list.html", show=show, listed=listed, found=found, total=len(faces))
    index = inputs.whole_number(params, "i", 0) % len(faces)
    face = faces.item(index)
    context = dict(index=index, total=len(faces), item=face, has_votes=faces.has_votes)
    try:
        image = read_image(face.path)
    except (ImageError, OSError) as error:   # a file removed or damaged since the folder was read
        return render_template("pages/gallery.html", error=str(error), **context)
    result = analysis.explain(registry().get(chosen_model()), image, parts=("gradcam",),
                              threshold=current_app.config["THRESHOLD"], detail=WHOLE)   # the face as the data set cut it
    return render_template("pages/gallery.html", result=result, **context)


@bp.get("/gallery/image/<int:index>")
def gallery_image(index):
    faces = current_app.extensions["gallery"]
    if not len(faces):
        abort(404)
    return send_file(faces.item(index).path)


@bp.get("/gallery/votes/<int:index>")
def gallery_votes(index):
    """What the people who labelled a Gallery face said, for Explore: ``{"label", "votes", "shares", "fer2013"}``
    (``votes`` null for faces with one label each)."""
    faces = current_app.extensions["gallery"]
    if not len(faces):
        abort(404)
    item = faces.item(index)
    total = sum(item.votes.values()) if item.votes else None
    return {"label": item.label, "votes": item.votes, "fer2013": item.fer2013,
            "shares": {name: count / total for name, count in item.votes.items()} if item.votes else None}


@bp.get("/models")
def models():
    models = registry()
    return render_template("pages/models.html", cards=models.cards(), default=models.default_name)


@bp.post("/models")
def choose_model():
    name = registry().resolve(inputs.model(inputs.params()))
    response = redirect(url_for("pages.models"))
    response.set_cookie(MODEL_COOKIE, name, samesite="Lax", max_age=30 * 24 * 3600)
    return response
