"""EmoDetect-Pro's classroom web site: analyse a photo, explore the CNN, live webcam, JSON API.

Development (one process, 127.0.0.1 only):

    python app.py [--host 127.0.0.1] [--port 5000] [--model models/emotion_model.h5]

A classroom (several workers, each loading the model once at start-up):

    gunicorn 'app:create_app()'        # with gunicorn.conf.py: 2 workers x 4 threads, on 127.0.0.1:5000

Everything the pages need (CSS, JavaScript, the LiteRT.js runtime) is served from ``static/``,
and the in-browser engine's models from ``/engine/``; the site works offline.
"""
import argparse
import os
import sys

from flask import Flask

from utils import defaults
from utils.cli import run_cli

DEFAULTS = {
    "MODELS_DIR": defaults.MODELS_DIR,            # every NAME.h5 + NAME.json here can be chosen
    "DEFAULT_MODEL": defaults.EMOTION_MODEL,      # used when a request names no model
    "GALLERY_DIR": None,                          # the Gallery's test faces (None: defaults.gallery_folder())
    "MAX_CONTENT_LENGTH": 10 * 1000 * 1000,       # bigger uploads get 413
    "MAX_PIXELS": defaults.MAX_PIXELS,            # bigger images get 400, checked from the header
    "THRESHOLD": defaults.THRESHOLD,              # under this confidence a prediction is "uncertain"
    "WARM_UP": True,                              # load the default model when the app is created
    "BROWSER_DIR": defaults.BROWSER_DIR,          # the models exported for the in-browser engine
    "STATIC_SITE": False,                         # pages rendered as static files (make site): no server behind them
    "CALIBRATION": None,                          # Calibrate to me's durations {countdown, hold, held_back}; None: Python's
}


def create_app(config=None):
    """Build the site: defaults, then ``config`` on top; relative paths are from the project root."""
    from web import api, engine, gallery, identity, inputs, pages, registry, security

    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.update(config or {})
    app.config["GALLERY_DIR"] = app.config["GALLERY_DIR"] or defaults.gallery_folder()
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["MAX_CONTENT_LENGTH"]  # base64 sent as a form field
    for key in ("MODELS_DIR", "DEFAULT_MODEL", "GALLERY_DIR", "BROWSER_DIR"):
        app.config[key] = defaults.project_path(app.config[key])
    app.request_class = inputs.InMemoryRequest
    app.json.sort_keys = False  # probabilities stay in the card's class order
    app.extensions["gallery"] = gallery.Gallery(app.config["GALLERY_DIR"])
    registry.init_app(app)
    security.init_app(app, pages.static_asset)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(identity.bp)
    app.register_blueprint(engine.bp)
    return app


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Serve the EmoDetect-Pro classroom site (debug off).")
    parser.add_argument("--host", default=defaults.HOST,
                        help=f"address to listen on (default {defaults.HOST}: this computer only)")
    parser.add_argument("--port", type=int, default=defaults.PORT)
    parser.add_argument("--model", default=defaults.project_path(defaults.EMOTION_MODEL),
                        help="the default model, a .h5 with its .json card (default: %(default)s)")
    parser.add_argument("--models-dir", default=defaults.project_path(defaults.MODELS_DIR),
                        help="folder of models the Models page offers (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(args.model):
        print(f"app.py: no model at {args.model}; train one with `python train.py --data dataset/fer2013` "
              "or pass --model PATH", file=sys.stderr)
        return 2
    app = create_app({"DEFAULT_MODEL": os.path.abspath(args.model), "MODELS_DIR": os.path.abspath(args.models_dir)})
    print(f"EmoDetect-Pro on http://{args.host}:{args.port}/ (Ctrl+C to stop)")
    app.run(host=args.host, port=args.port, debug=False, threaded=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
