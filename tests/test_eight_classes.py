"""Every front end follows the card's classes, whatever their number: FER+'s eight, contempt last.

The model is conftest.py's eight-class fixture, whose contempt logit is raised so that contempt is
what it answers on every face: a front end that dropped or misplaced the eighth class would show
another label, seven bars, or the wrong colour. Each front end is held to Python's predictor: the
site's pages and API, the browser engine as `make site` exports it (in Chromium), the desktop
session and window, real_time.py, visualize.py, evaluate.py, the figures and the colours.
"""
import csv
import html
import io
import json
import os
import re
import sys

import cv2
import numpy as np
import pytest
from matplotlib.colors import to_hex, to_rgb

from conftest import EIGHT_CLASSES, ROOT, served_folder
from test_browser_engine import deviations, live_page
from test_desktop_window import figure_text, open_window, pump
from test_evaluate import astronaut_photos, run as run_evaluate, write_class_folders
from test_real_time import clip, run_script  # noqa: F401 (clip: a fixture)
from test_visualize import run as run_visualize
from utils import defaults

sys.path.insert(0, os.path.join(ROOT, "scripts"))   # export_browser.py and make_site.py, as make runs them
import export_browser  # noqa: E402
from make_site import build_site  # noqa: E402

CONTEMPT = EIGHT_CLASSES.index("contempt")
PROBABILITY = 1e-3          # the browser engine: within this of Python's float32 path


def rgb_of(hex_colour):
    return tuple(round(255 * c) for c in to_rgb(hex_colour))


CONTEMPT_RGB = rgb_of(defaults.class_colour(CONTEMPT))


@pytest.fixture(scope="module")
def reference(eight_class_model_path):
    """Python's float32 path: what the browser engine is held to."""
    from utils.model.predict import Predictor
    return Predictor.from_path(eight_class_model_path, precision="float32")


@pytest.fixture(scope="module")
def served(eight_class_model_path):
    """The predictor in the precision the front ends serve on this CPU: what they are held to."""
    from utils.model.predict import Predictor
    return Predictor.from_path(eight_class_model_path)


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut_bgr):
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    cv2.imwrite(str(path), astronaut_bgr)
    return str(path)


def test_the_fixture_answers_contempt_with_eight_probabilities(reference, astronaut_bgr):
    face, = reference.predict_image(astronaut_bgr)
    assert list(face["probabilities"]) == EIGHT_CLASSES and face["label"] == "contempt"
    assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert all(p > 0.01 for p in face["probabilities"].values())   # every class has a bar to see


# ---- colours ---------------------------------------------------------------------------------

def test_the_eighth_class_has_its_own_colour_in_figures_video_and_site(make_app):
    from utils.live.drawing import label_colours
    from utils.media.charts import class_colours
    palette = [defaults.class_colour(index) for index in range(len(EIGHT_CLASSES))]
    assert len(set(palette)) == len(EIGHT_CLASSES)                      # eight distinct colours
    figure_rgb, video_bgr = class_colours(EIGHT_CLASSES), label_colours(EIGHT_CLASSES)
    for name, hexed in zip(EIGHT_CLASSES, palette):
        assert to_hex(figure_rgb[name]) == hexed and video_bgr[name] == rgb_of(hexed)[::-1]
    page = make_app(WARM_UP=False).test_client().get("/").get_data(as_text=True)
    served = json.loads(html.unescape(re.search(r'data-facts="([^"]*)"', page).group(1)))
    assert served["palette"][:len(EIGHT_CLASSES)] == palette


def test_the_video_overlay_draws_a_contempt_face_in_contempts_colour():
    from utils.live.drawing import draw_faces, label_colours
    frame = np.zeros((120, 160, 3), np.uint8)
    face = {"id": 1, "box": [40, 50, 60, 50], "label": "contempt", "confidence": 0.7, "uncertain": False}
    draw_faces(frame, [face], label_colours(EIGHT_CLASSES))
    assert tuple(frame[75, 40]) == CONTEMPT_RGB[::-1]                    # the box's left edge, BGR


def test_the_figures_colour_contempt_as_everywhere_else():
    from utils.media import charts
    probabilities = dict(zip(EIGHT_CLASSES, [0.04, 0.03, 0.05, 0.06, 0.05, 0.04, 0.03, 0.7]))
    bars = charts.probability_bars(probabilities).axes[0]
    assert [label.get_text() for label in bars.get_yticklabels()] == EIGHT_CLASSES
    colours = [to_hex(patch.get_facecolor()) for patch in bars.patches]
    assert len(colours) == 8 and colours[CONTEMPT] == defaults.class_colour(CONTEMPT)
    assert len(set(colours)) == 2                                        # the others grey
    counts = dict(zip(EIGHT_CLASSES, range(1, 9)))
    distribution = charts.emotion_distribution(counts).axes[0]
    assert [to_hex(patch.get_facecolor()) for patch in distribution.patches] == \
        [defaults.class_colour(index) for index in range(8)]
    timeline = charts.emotion_timeline([0.0, 1.0], [list(probabilities.values())] * 2, EIGHT_CLASSES).axes[0]
    assert {line.get_label(): to_hex(line.get_color()) for line in timeline.lines}["contempt"] == \
        defaults.class_colour(CONTEMPT)


# ---- the site, through its test client -------------------------------------------------------

@pytest.fixture(scope="module")
def browser_dir(eight_class_model_path, tmp_path_factory):
    """The fixture's folder exported for the browser by scripts/export_browser.py, as `make run` does."""
    folder = str(tmp_path_factory.mktemp("browser8"))
    assert export_browser.main(["--models", os.path.dirname(eight_class_model_path), "--out", folder]) == 0
    return folder


@pytest.fixture(scope="module")
def app_config(eight_class_model_path, browser_dir, tmp_path_factory, astronaut_bgr, astronaut_face_box):
    """The module's site (conftest.py) on the eight-class fixture; its Gallery has one face filed under contempt."""
    gallery = tmp_path_factory.mktemp("gallery8")
    x, y, w, h = astronaut_face_box
    (gallery / "contempt").mkdir()
    cv2.imwrite(str(gallery / "contempt" / "PublicTest_1.png"),
                cv2.resize(cv2.cvtColor(astronaut_bgr[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY), (48, 48)))
    return {"DEFAULT_MODEL": eight_class_model_path, "GALLERY_DIR": str(gallery), "BROWSER_DIR": browser_dir}


def post_photo(client, url, astronaut_bgr, **fields):
    data = cv2.imencode(".png", astronaut_bgr)[1].tobytes()
    return client.post(url, data={"file": (io.BytesIO(data), "photo.png"), **fields},
                       content_type="multipart/form-data")


def bars_of(page):
    """``[(class, colour)]`` of a rendered page's softmax or accuracy bars: the colour a bar carries (the winning
    one, its class's), or "" (the page's policy allows no inline style: common.js applies both)."""
    return re.findall(r'<span class="name">([^<]*)</span>\s*<span class="track"><span class="fill" data-share="[^"]*"'
                      r'(?: data-colour="([^"]*)")?', page)


@pytest.mark.parametrize("path", ["/", "/explore", "/live", "/gallery", "/identity", "/models"])
def test_every_page_answers_on_an_eight_class_model(client, path):
    response = client.get(path)
    assert response.status_code == 200 and 'data-model="ferplus_fixture"' in response.get_data(as_text=True)


def test_predict_answers_eight_probabilities_with_contempt(client, astronaut_bgr, served):
    answer = post_photo(client, "/api/predict", astronaut_bgr).get_json()
    face, = answer["faces"]
    expected, = served.predict_image(astronaut_bgr)
    assert list(face["probabilities"]) == EIGHT_CLASSES and face["label"] == "contempt"
    for name in EIGHT_CLASSES:
        assert face["probabilities"][name] == pytest.approx(expected["probabilities"][name], abs=1e-4)


def test_explain_explains_contempt_by_name_and_by_index(client, astronaut_bgr):
    answer = post_photo(client, "/api/explain", astronaut_bgr, **{"class": "contempt"}).get_json()
    assert answer["classes"] == EIGHT_CLASSES and answer["target"]["class"] == "contempt"
    assert answer["gradcam"]["class"] == answer["regions"]["class"] == "contempt"
    intact = answer["face"]["probabilities"]["contempt"]
    for row in answer["regions"]["rows"]:          # each row: contempt's probability with one region hidden
        assert row["probability"] + row["drop"] == pytest.approx(intact, abs=1e-3)
    steps = {step["name"]: step for step in answer["layers"]}
    assert len(steps["logits"]["values"]) == 8 and steps["logits"]["labels"] == EIGHT_CLASSES
    by_index = post_photo(client, "/api/explain", astronaut_bgr, parts="gradcam", **{"class": str(CONTEMPT)})
    assert by_index.get_json()["gradcam"] == post_photo(client, "/api/explain", astronaut_bgr, parts="gradcam",
                                                        **{"class": "contempt"}).get_json()["gradcam"]
    unit = post_photo(client, "/api/explain", astronaut_bgr, parts="operation", layer="probabilities",
                      channel=str(CONTEMPT)).get_json()["operation"]
    assert "contempt" in unit["summary"]


def test_the_models_page_lists_the_eight_classes(client):
    page = client.get("/models").get_data(as_text=True)
    assert "<dt>classes</dt><dd>" + ", ".join(EIGHT_CLASSES) + "</dd>" in page
    assert [name for name, _ in bars_of(page)] == EIGHT_CLASSES          # test accuracy per class
    models = client.get("/api/models").get_json()["models"]
    assert [model["card"]["classes"] for model in models] == [EIGHT_CLASSES]


def test_the_gallery_shows_eight_bars_contempts_in_its_colour(client):
    page = client.get("/gallery").get_data(as_text=True)
    assert 'id="true-label">contempt<' in page and 'id="predicted-label">contempt<' in page
    bars = bars_of(page)
    assert [name for name, _ in bars] == EIGHT_CLASSES
    assert [colour == defaults.class_colour(CONTEMPT) for _, colour in bars] == \
        [name == "contempt" for name in EIGHT_CLASSES]


def test_the_identity_page_reads_the_emotion_with_the_eight_class_model(client, astronaut_bgr):
    page = post_photo(client, "/identity", astronaut_bgr).get_data(as_text=True)
    assert 'id="predicted-emotion">contempt<' in page and 'id="comparison"' in page


# ---- the browser engine, exported and written as `make site` does, in Chromium --------------------

@pytest.fixture(scope="module")
def static_site(eight_class_model_path, browser_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("site8") / "site"
    files = build_site(str(folder), eight_class_model_path, browser_dir)
    assert "engine/models/ferplus_fixture.tflite" in files
    with open(folder / "engine" / "models" / "ferplus_fixture.json") as handle:
        assert json.load(handle)["classes"] == EIGHT_CLASSES
    with served_folder(folder) as url:
        yield url


def pixel(page, canvas, x, y):
    return page.evaluate("([id, x, y]) => Array.from(document.getElementById(id).getContext('2d')"
                         ".getImageData(x, y, 1, 1).data.slice(0, 3))", [canvas, x, y])


def test_the_browser_engine_gives_pythons_eight_probabilities_on_the_static_site(static_site, playwright, reference,
                                                                                astronaut_bgr, photo, tmp_path):
    browser, page = live_page(playwright, static_site, astronaut_bgr, tmp_path)
    try:
        page.goto(static_site + "/index.html")
        page.set_input_files("#file", photo)
        page.wait_for_function("() => document.getElementById('result').dataset.result")
        faces = json.loads(page.locator("#result").get_attribute("data-result"))
        found = deviations(faces, reference.predict_image(astronaut_bgr))
        assert list(faces[0]["probabilities"]) == EIGHT_CLASSES and faces[0]["label"] == "contempt"
        assert found["probability"] <= PROBABILITY, found
        card = page.locator(".face").first
        assert card.locator(".bar .name").all_text_contents() == EIGHT_CLASSES
        assert card.locator(".bar.top .name").text_content() == "contempt"
        assert card.locator(".bar.top .fill").evaluate("e => getComputedStyle(e).backgroundColor") == \
            "rgb({}, {}, {})".format(*CONTEMPT_RGB)
        x, y, w, h = faces[0]["box"]
        assert pixel(page, "photo", x, y + h // 2) == list(CONTEMPT_RGB)   # the box, in contempt's colour

        page.goto(static_site + "/live.html")
        page.click("#start")
        page.wait_for_function("() => Number(document.getElementById('live-result').dataset.frames) >= 3")
        assert page.locator("#live-result").get_attribute("data-label") == "contempt"
        assert page.locator("#live-bars .bar .name").all_text_contents() == EIGHT_CLASSES
        assert page.locator("#legend span").all_text_contents() == EIGHT_CLASSES
        legend = page.locator("#legend i").evaluate_all(
            "items => items.map((i) => getComputedStyle(i).backgroundColor)")
        assert legend == ["rgb({}, {}, {})".format(*rgb_of(defaults.class_colour(k))) for k in range(8)]
        page.click("#stop")
    finally:
        browser.close()


# ---- the desktop window ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def session(eight_class_model_path, astronaut_bgr):
    from desktop.session import Session
    from utils.serving.model_file import LoadedModel
    session = Session()
    session.use_model(LoadedModel.load(eight_class_model_path))
    session.show(astronaut_bgr, session.predict(astronaut_bgr))
    return session


def test_the_desktop_session_shows_eight_bars_and_explains_contempt(session):
    assert session.classes == EIGHT_CLASSES and session.verdict()[0].startswith("contempt ")
    axis = session.figure("Probabilities").axes[0]
    assert [label.get_text() for label in axis.get_yticklabels()] == EIGHT_CLASSES and len(axis.patches) == 8
    assert to_hex(axis.patches[CONTEMPT].get_facecolor()) == defaults.class_colour(CONTEMPT)
    assert [label.get_text() for label in session.figure("Model").axes[0].get_xticklabels()] == EIGHT_CLASSES
    assert "'contempt'" in figure_text(session.figure("Grad-CAM", "contempt"))
    assert "classes: " + ", ".join(EIGHT_CLASSES) in session.card_summary().splitlines()
    x, y, w, h = session.face["box"]
    assert tuple(session.annotated_image()[y + h // 2, x]) == CONTEMPT_RGB[::-1]   # the box, BGR


def test_the_desktop_window_shows_eight_bars(display, eight_class_model_path, photo):
    window = open_window(eight_class_model_path)
    try:
        window.open_path(photo)
        window.notebook.select(window.tab_frames["Probabilities"])
        pump(window, lambda: window.session.face is not None and "Probabilities" in window.figures
             and not window.worker.busy)
        assert window.headline["text"].startswith("contempt ")
        axis = window.figures["Probabilities"].axes[0]
        assert [label.get_text() for label in axis.get_yticklabels()] == EIGHT_CLASSES and len(axis.patches) == 8
        assert list(window.choosers["Grad-CAM"]["values"]) == EIGHT_CLASSES
        assert window.errors == []
    finally:
        window.close()


# ---- the command-line tools ------------------------------------------------------------------------

def test_real_time_writes_a_column_per_class_contempt_included(clip, eight_class_model_path, tmp_path):  # noqa: F811
    timeline = tmp_path / "timeline.csv"
    result = run_script("--source", clip, "--model", eight_class_model_path, "--no-display", "--csv", str(timeline))
    assert result.returncode == 0, result.stderr
    with open(timeline) as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames[-8:] == EIGHT_CLASSES and rows
    for row in rows:
        values = [float(row[name]) for name in EIGHT_CLASSES]
        assert row["label"] == "contempt" and float(row["confidence"]) == max(values)
        assert sum(values) == pytest.approx(1, abs=1e-3)
    table = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if line.split()[:1] and
             line.split()[0] in EIGHT_CLASSES}
    assert table == {name: str(len(rows) if name == "contempt" else 0) for name in EIGHT_CLASSES}   # faces per class
    assert (tmp_path / "timeline_distribution.png").stat().st_size > 1000


def test_visualize_writes_eight_softmax_entries(photo, eight_class_model_path, served, astronaut_bgr, tmp_path,
                                                capsys):
    status, out, err = run_visualize([photo, "--model", eight_class_model_path, "--out", str(tmp_path),
                                      "--methods", "gradcam"], capsys)
    assert status == 0, err
    assert "contempt" in out.splitlines()[0] and "explaining contempt" in out
    table = re.search(r"<table class='probabilities'>(.*?)</table>", (tmp_path / "index.html").read_text()).group(1)
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([\d.]+)%</td></tr>", table)
    expected, = served.predict_image(astronaut_bgr)
    assert [name for name, _ in rows] == EIGHT_CLASSES
    for name, percent in rows:
        assert float(percent) == pytest.approx(100 * expected["probabilities"][name], abs=0.1)


def test_evaluate_reports_eight_classes_and_reads_contempt_photos(eight_class_model_path, served, astronaut_bgr,
                                                                  tmp_path):
    """Eight class folders of faces; a photo benchmark whose folders are contempt (any case) and happy."""
    from utils.train.datasets import load_class_folders
    data = write_class_folders(tmp_path / "test", per_class=2, seed=1, classes=EIGHT_CLASSES)
    photos = tmp_path / "photos"
    for folder, picture in zip(("Contempt", "happy"), astronaut_photos(astronaut_bgr, 2)):
        (photos / folder).mkdir(parents=True)
        cv2.imwrite(str(photos / folder / "0.png"), picture)
    status, stdout, stderr = run_evaluate(["--model", eight_class_model_path, "--data", str(data), "--out",
                                           str(tmp_path / "reports"), "--json", "--faces-benchmark", str(photos),
                                           "--mistakes", "4"])
    assert status == 0, stderr
    result, = json.loads(stdout)["models"]
    assert list(result["per_class"]) == EIGHT_CLASSES
    assert [row["support"] for row in result["per_class"].values()] == [2] * 8
    split = load_class_folders(str(data), EIGHT_CLASSES)
    said = served.probabilities(split.images).argmax(axis=1)
    contempt = split.labels == CONTEMPT
    assert result["per_class"]["contempt"]["accuracy"] == pytest.approx(np.mean(said[contempt] == CONTEMPT))
    report = (tmp_path / "reports" / "ferplus_fixture" / "report.md").read_text()
    assert re.search(r"^\| contempt \| ", report, re.MULTILINE)
    benchmark = result["faces_benchmark"]
    answers = [served.predict_image(cv2.imread(str(photos / folder / "0.png")))[0]["label"]
               for folder in ("happy", "Contempt")]
    assert list(benchmark["per_class"]) == ["happy", "contempt"] and answers == ["contempt", "contempt"]
    assert [row["right"] for row in benchmark["per_class"].values()] == [0, 1]
