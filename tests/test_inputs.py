"""Every parameter of every endpoint, sent with a wrong type, in every way a request can carry it: 400, never 500.

The catalogue below names each endpoint's parameters and what each takes; the test
sends each one as a list, an object, null, true, a number where a string is
expected and a string where a number is, in a JSON body, a form, the query string and
beside a raw image body, and wants a one-line reason naming it: a JSON ``{"error": ...}`` from
the API, the alert of an HTML page from the pages.
"""
import base64
import html
import io
import re

import cv2
import numpy as np
import pytest

TEXT, NUMBER, CLASS = "text", "number", "class"  # what a parameter takes (CLASS: a name, or an index)
ENDPOINTS = {
    ("POST", "/api/predict"): {"model": TEXT, "threshold": NUMBER, "detail": TEXT},
    ("POST", "/api/explain"): {"model": TEXT, "threshold": NUMBER, "detail": TEXT, "face": NUMBER,
                               "class": CLASS, "layer": TEXT, "parts": TEXT},
    ("GET", "/gallery"): {"i": NUMBER},
    ("POST", "/models"): {"model": TEXT},
    ("GET", "/identity"): {"sample": NUMBER},
    ("POST", "/identity"): {"sample": NUMBER},
}
WRONG_JSON = {"list": ["x"], "object": {"x": 1}, "null": None, "true": True, "number": 5, "string": "five"}


def wrong_json_values(takes):
    """The wrong values for a parameter that ``takes`` TEXT, NUMBER or CLASS."""
    allowed = {TEXT: ("string",), NUMBER: ("number",), CLASS: ("string", "number")}[takes]
    return [kind for kind in WRONG_JSON if kind not in allowed]


CASES = [(method, url, name, kind) for (method, url), parameters in ENDPOINTS.items()
         for name, takes in parameters.items() for kind in wrong_json_values(takes)]


@pytest.fixture(scope="module")
def app_config(tmp_path_factory):
    """The module's ``app`` (conftest.py): a one-face test folder, no other models and no identity model."""
    gallery = tmp_path_factory.mktemp("gallery")
    (gallery / "happy").mkdir()
    cv2.imwrite(str(gallery / "happy" / "1.png"), np.full((48, 48), 128, np.uint8))
    empty = tmp_path_factory.mktemp("empty")
    return {"MODELS_DIR": str(empty), "GALLERY_DIR": str(gallery), "IDENTITY_MODEL": str(empty / "none.h5"),
            "WARM_UP": False}


@pytest.fixture(scope="module")
def jpeg():
    return cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()


def assert_refused(response, name):
    """A 400 whose one-line reason names the parameter: JSON from the API, the page's alert from a page."""
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True)[:300])
    if response.is_json:
        error = response.get_json()["error"]
    else:
        alert = re.search(r'<p class="warning" role="alert">(.*?)</p>', response.get_data(as_text=True), re.S)
        assert alert, response.get_data(as_text=True)[:300]
        error = html.unescape(alert.group(1))
    assert f"'{name}'" in error and "\n" not in error, error


@pytest.mark.parametrize("method, url, name, kind", CASES, ids=[f"{u}-{n}-{k}" for _, u, n, k in CASES])
def test_a_wrong_type_in_json_is_400(client, jpeg, method, url, name, kind):
    body = {"image": base64.b64encode(jpeg).decode(), name: WRONG_JSON[kind]}
    assert_refused(client.open(url, method=method, json=body), name)


FIELD_CASES = [(method, url, name, takes) for (method, url), parameters in ENDPOINTS.items()
               for name, takes in parameters.items()]


def wrong_fields(takes):
    """What a form or query string can send wrongly: a repeated field, and text where a number goes."""
    return [["a", "b"]] + (["five"] if takes == NUMBER else [])


@pytest.mark.parametrize("method, url, name, takes", FIELD_CASES, ids=[f"{u}-{n}" for _, u, n, _ in FIELD_CASES])
def test_a_wrong_form_field_or_query_parameter_is_400(client, jpeg, method, url, name, takes):
    for value in wrong_fields(takes):
        assert_refused(client.open(url, method=method, query_string={name: value}), name)
        if method == "POST":
            form = {"file": (io.BytesIO(jpeg), "photo.jpg"), name: value}
            assert_refused(client.open(url, method=method, data=form, content_type="multipart/form-data"), name)
            raw = client.open(url, method=method, query_string={name: value}, data=jpeg, content_type="image/jpeg")
            assert_refused(raw, name)


def test_right_types_from_json_are_served(client, jpeg):
    """The readers accept what the API documents: numbers as JSON numbers or text, a class by index."""
    image = base64.b64encode(jpeg).decode()
    answer = client.post("/api/explain", json={"image": image, "threshold": 0.5, "face": 0, "class": 3,
                                               "parts": "gradcam", "detail": "fast", "model": "fixture_model"})
    assert answer.status_code == 200 and answer.get_json()["gradcam"]["class"] == "happy"
    assert client.post("/api/predict", json={"image": image, "threshold": "0.5"}).status_code == 200
    assert client.post("/api/predict", json={"image": image, "model": ""}).status_code == 200  # blank: the default


@pytest.mark.parametrize("values, message", [
    ({"face": 1.5}, "'face' must be a number (0, 1, 2 ...), not a number"), ({"threshold": "NaN"}, "between 0 and 1"),
    ({"class": 2.5}, "'class' must be a string, not a number"), ({"detail": "quick"}, "one of thorough, fast"),
    ({"model": "a\nb"}, "unknown model"), ({"class": "a\nb"}, "unknown class"), ({"parts": "x\ny"}, "unknown part"),
])
def test_near_misses_are_400_with_the_reason(client, jpeg, values, message):
    response = client.post("/api/explain", json={"image": base64.b64encode(jpeg).decode(), **values})
    assert response.status_code in (400, 404) and message in response.get_json()["error"]
    assert "\n" not in response.get_json()["error"]


def test_a_new_choice_of_strings_is_one_line():
    """How another engineer adds ``detector``: the helper takes any tuple of names."""
    from web.inputs import BadInput, choice
    detectors = ("blazeface", "haar")
    assert choice({}, "detector", detectors) == "blazeface" and choice({"detector": "haar"}, "detector", detectors) == "haar"
    with pytest.raises(BadInput, match="'detector' must be one of blazeface, haar"):
        choice({"detector": "sobel"}, "detector", detectors)
    with pytest.raises(BadInput, match="'detector' must be a string, not a list"):
        choice({"detector": ["haar"]}, "detector", detectors)
