"""Shared values are defined once (utils/defaults.py) and every front end takes them from there."""
import html
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import FER_CLASSES, ROOT
from utils import defaults


def test_every_command_line_tool_defaults_to_the_shared_model_and_threshold():
    import app
    import evaluate
    import index
    import real_time
    import visualize
    shipped = defaults.project_path(defaults.EMOTION_MODEL)
    assert real_time.parse_args([]).model == visualize.parse_args(["photo.jpg"]).model == shipped
    assert index.parse_args([]).model == app.parse_args([]).model == shipped
    assert evaluate.parse_args([]).model == [defaults.EMOTION_MODEL]
    assert real_time.parse_args([]).threshold == defaults.THRESHOLD
    assert index.parse_args([]).identity_model == defaults.project_path(defaults.IDENTITY_MODEL)


@pytest.mark.parametrize("given, host, port", [
    ({}, defaults.HOST, defaults.PORT), ({"HOST": "0.0.0.0", "PORT": "8000"}, "0.0.0.0", 8000),
    ({"HOST": "", "PORT": "8080"}, defaults.HOST, 8080)])   # make run passes HOST="" when it was not given
def test_the_classroom_server_listens_where_make_run_says_else_where_app_py_does(given, host, port):
    environment = {name: value for name, value in os.environ.items() if name not in ("HOST", "PORT")} | given
    done = subprocess.run([sys.executable, "-c", "import runpy; print(runpy.run_path('gunicorn.conf.py')['bind'])"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == f"{host}:{port}", done.stderr


def test_the_site_takes_its_defaults_from_the_same_place(make_app):
    site = make_app(WARM_UP=False)
    assert site.config["THRESHOLD"] == defaults.THRESHOLD and site.config["MAX_PIXELS"] == defaults.MAX_PIXELS
    assert site.config["IDENTITY_MODEL"] == defaults.IDENTITY_MODEL
    assert site.config["GALLERY_DIR"] == defaults.project_path(defaults.gallery_folder())


def test_the_gallery_shows_fer_plus_faces_with_their_votes_when_they_are_there(tmp_path, monkeypatch):
    monkeypatch.setattr(defaults, "ROOT", str(tmp_path))
    assert defaults.gallery_folder() == defaults.FER2013_TEST
    (tmp_path / defaults.FERPLUS_TEST).mkdir(parents=True)
    assert defaults.gallery_folder() == defaults.FERPLUS_TEST


def test_one_palette_for_figures_video_desktop_and_site(make_app):
    """Happy is green everywhere: in the figures, the video overlay (BGR) and the page's JavaScript."""
    from utils.live.drawing import label_colours
    from utils.media.charts import class_colours
    assert defaults.class_colour(FER_CLASSES.index("happy")) == "#2ca02c"
    figure_rgb = class_colours(FER_CLASSES)
    video_bgr = label_colours(FER_CLASSES)
    for index, name in enumerate(FER_CLASSES):
        hexed = defaults.class_colour(index)
        rgb = tuple(int(hexed[i:i + 2], 16) for i in (1, 3, 5))
        assert tuple(round(255 * c) for c in figure_rgb[name]) == rgb
        assert video_bgr[name] == rgb[::-1]
    page = make_app(WARM_UP=False).test_client().get("/").get_data(as_text=True)
    served = json.loads(html.unescape(re.search(r'data-facts="([^"]*)"', page).group(1)))
    assert served["palette"] == list(defaults.CLASS_PALETTE)


def test_the_calibration_durations_are_pythons_unless_the_site_is_told_otherwise(make_app):
    """The Live page's "Calibrate to me" counts down, holds and holds back as utils.live.calibration says;
    a test configuration (or a teacher) may shorten them."""
    from utils.live import calibration

    def facts(**config):
        page = make_app(WARM_UP=False, **config).test_client().get("/live").get_data(as_text=True)
        return json.loads(html.unescape(re.search(r'data-facts="([^"]*)"', page).group(1)))["calibration"]
    assert facts() == {"countdown": calibration.COUNTDOWN, "hold": calibration.HOLD,
                       "held_back": calibration.HELD_BACK, "neutral": "neutral", "suggested": list(calibration.SUGGESTED)}
    quick = facts(CALIBRATION={"countdown": 0.5, "hold": 2, "held_back": 0.5})
    assert (quick["countdown"], quick["hold"], quick["held_back"]) == (0.5, 2.0, 0.5)
