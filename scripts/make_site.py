"""Write the Live and Analyse pages as a folder of static files: a classroom with no server.

    python scripts/make_site.py [--model models/emotion_model.h5] [--out site] [--replace]     (make site)

Any static web server then serves the folder: ``python -m http.server -d site`` on the teacher's
laptop, or the school's web space. Every student's browser downloads the runtime and the models once
and does all the work itself; frames and photos never leave the device. Grad-CAM, the explorer and
the server's other pages are not in it: they need ``make run``.

The pages are the site's own templates rendered with relative links, their Content-Security-Policy in a
``<meta>`` tag (web/security.py); the engine's files are the ones the site serves under /engine/ (its
constants from Python, BlazeFace from the installed wheel, the model as exported by
utils.serving.browser_export, exported first when missing or stale).

The folder is replaced only when this script wrote it (it holds :data:`MARK`), or is empty: any other
folder is left alone unless ``--replace`` says to delete it.
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
# In every folder this script writes: a folder without it is someone else's (make clean reads it too).
MARK = ".written-by-make-site"


class FolderTaken(Exception):
    """The output folder holds something this script did not write."""


def check_out(out, replace=False):
    """Refuse (:class:`FolderTaken`) to write into ``out`` when something is there that this script did not
    write, unless ``replace``: a file, or a folder with files and without :data:`MARK`."""
    if replace or not os.path.lexists(out):
        return
    if os.path.isdir(out) and not os.path.islink(out) and (not os.listdir(out) or os.path.isfile(os.path.join(out, MARK))):
        return
    raise FolderTaken(f"{out} exists and was not written by make site, so it is left alone: choose another folder "
                      f"(make site SITE=DIR) or let it be deleted and replaced (make site SITE={out} REPLACE=1, "
                      "or --replace)")


def remove(out):
    """Delete ``out``, a folder (its files with it) or a file."""
    if os.path.isdir(out) and not os.path.islink(out):
        shutil.rmtree(out)
    elif os.path.lexists(out):
        os.remove(out)


def build_site(out, model=defaults.EMOTION_MODEL, browser_dir=defaults.BROWSER_DIR, replace=False, config=None):
    """Write the site into ``out``, replacing what was there only as :func:`check_out` allows; returns the
    files written, relative to it. ``config``: more of the site's settings (app.DEFAULTS), e.g. shorter
    calibration durations for a test."""
    check_out(out, replace)
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
    remove(out)
    os.makedirs(os.path.join(out, "engine", "models"))
    with open(os.path.join(out, MARK), "w") as handle:
        handle.write("Written by EmoDetect-Pro's make site (scripts/make_site.py), which replaces this folder.\n")
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
    parser.add_argument("--out", default=defaults.SITE_DIR,
                        help="the folder to write; replaced if make site wrote it, refused otherwise (default: %(default)s)")
    parser.add_argument("--replace", action="store_true",
                        help="delete and replace the folder even if make site did not write it")
    parser.add_argument("--browser-dir", default=defaults.BROWSER_DIR,
                        help="where the exported models are kept (default: %(default)s)")
    args = parser.parse_args(argv)
    model = defaults.project_path(args.model)
    if not (os.path.isfile(model) and os.path.isfile(os.path.splitext(model)[0] + ".json")):
        print(f"make_site.py: no model with its card at {args.model}", file=sys.stderr)
        return 2
    try:
        files = build_site(args.out, model, args.browser_dir, args.replace)
    except FolderTaken as error:
        print(f"make_site.py: {error}", file=sys.stderr)
        return 2
    size = sum(os.path.getsize(os.path.join(args.out, name)) for name in files) / 1e6
    print(f"{len(files)} files ({size:.0f} MB) in {args.out}/: serve it with any static web server, "
          f"e.g. python -m http.server -d {args.out} 8000, then open http://localhost:8000/")
    return 0


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
