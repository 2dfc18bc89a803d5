"""Write the Live and Analyse pages as a folder of static files: a classroom with no server.

    python scripts/make_site.py [--model models/emotion_model.h5] [--out site]     (make site)

Any static web server then serves the folder: ``python -m http.server -d site`` on the teacher's
laptop, or the school's web space. Every student's browser downloads the runtime and the models once
and does all the work itself; frames and photos never leave the device. Grad-CAM, the explorer and
the server's other pages are not in it: they need ``make run``.

The pages are the site's own templates rendered with relative links; the engine's files are the ones
the site serves under /engine/ (its constants from Python, BlazeFace from the installed wheel, the
model as exported by utils.serving.browser_export, exported first when missing or stale).
"""
import argparse
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils import defaults  # noqa: E402

# What the two pages load from static/ (the other pages' scripts need the server).
STATIC_FILES = ("shared", "pages/analyse.js", "pages/live.js", "pages/calibrate.js", "engine", "vendor")


def build_site(out, model=defaults.EMOTION_MODEL, browser_dir=defaults.BROWSER_DIR, config=None):
    """Write the site into ``out`` (replaced); returns the files written, relative to it. ``config``: more
    of the site's settings (app.DEFAULTS), e.g. shorter calibration durations for a test."""
    import utils.quiet  # noqa: F401 (quiets TensorFlow's start-up chatter)
    from app import create_app
    from utils.defaults import model_name
    from utils.serving.browser_export import blazeface_files, export_model, exported_paths, is_current
    from web.engine import constants
    from web.pages import SITE_PAGES
    model, browser_dir = defaults.project_path(model), defaults.project_path(browser_dir)
    if not is_current(model, browser_dir):
        print(f"exporting {os.path.relpath(model)} for the browser into {os.path.relpath(browser_dir)}")
        export_model(model, browser_dir)
    app = create_app({"DEFAULT_MODEL": model, "MODELS_DIR": os.path.dirname(model), "BROWSER_DIR": browser_dir,
                      "STATIC_SITE": True, "WARM_UP": False, **(config or {})})
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "engine", "models"))
    os.makedirs(os.path.join(out, "engine", "blazeface"))
    with app.test_client() as client:
        for endpoint, filename in SITE_PAGES.items():
            with app.test_request_context():
                from flask import url_for
                path = url_for(endpoint)
            page = client.get(path)
            if page.status_code != 200:
                raise SystemExit(f"make_site.py: the page {path} answered {page.status_code}")
            with open(os.path.join(out, filename), "wb") as handle:
                handle.write(page.data)
        with app.app_context():
            with open(os.path.join(out, "engine", "constants.json"), "w") as handle:
                json.dump(constants(), handle)
    for name in STATIC_FILES:
        source, target = os.path.join(ROOT, "static", name), os.path.join(out, "static", name)
        if os.path.isdir(source):
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("SHA256SUMS"))
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(source, target)
    for name, path in blazeface_files().items():
        shutil.copy(path, os.path.join(out, "engine", "blazeface", name))
    for path in exported_paths(model_name(model), browser_dir).values():
        shutil.copy(path, os.path.join(out, "engine", "models"))
    return sorted(os.path.relpath(os.path.join(folder, name), out)
                  for folder, _, names in os.walk(out) for name in names)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the Live and Analyse pages as static files for any web server.")
    parser.add_argument("--model", default=defaults.EMOTION_MODEL, help="the emotion model (default: %(default)s)")
    parser.add_argument("--out", default=defaults.SITE_DIR, help="the folder to write, replaced (default: %(default)s)")
    parser.add_argument("--browser-dir", default=defaults.BROWSER_DIR,
                        help="where the exported models are kept (default: %(default)s)")
    args = parser.parse_args(argv)
    model = defaults.project_path(args.model)
    if not (os.path.isfile(model) and os.path.isfile(os.path.splitext(model)[0] + ".json")):
        print(f"make_site.py: no model with its card at {args.model}", file=sys.stderr)
        return 2
    files = build_site(args.out, model, args.browser_dir)
    size = sum(os.path.getsize(os.path.join(args.out, name)) for name in files) / 1e6
    print(f"{len(files)} files ({size:.0f} MB) in {args.out}/: serve it with any static web server, "
          f"e.g. python -m http.server -d {args.out} 8000, then open http://localhost:8000/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
