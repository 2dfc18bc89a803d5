"""The personal read-out in Chromium: the browser fits as Python fits (the same features in, the same
weights and probabilities out, within 1e-4, for 7, 8 and 5 classes), the exported model's features are
Python's, and "Calibrate to me" runs on the Live page end to end on a fake camera (the served site and the
static one): the countdown, the fit, the before-and-after tables, Live reading with the read-out, back to
the model as shipped, kept in the browser, exported to a file Python loads, imported, another model's
refused; and no request carries the read-out anywhere.
"""
import json
import os
import sys

import cv2
import numpy as np
import pytest

from conftest import EIGHT_CLASSES, ROOT, open_page, served_folder
from test_browser_engine import browser_dir, engine_page, live_page, reference  # noqa: F401 (fixtures)
from utils import defaults
from utils.model import readout
from utils.serving.browser_export import engine_constants, export_model

sys.path.insert(0, os.path.join(ROOT, "scripts"))   # make_site.build_site, as `make site` runs it

pytestmark = pytest.mark.usefixtures("chromium")   # skipped without it, failed in CI (conftest.missing)

MODEL = defaults.project_path(defaults.EMOTION_MODEL)
PARITY = 1e-4
# Short enough that a calibration of two expressions takes about four seconds.
QUICK = {"countdown": 0.3, "hold": 1.6, "held_back": 0.5}


@pytest.fixture(scope="module")
def app_config(browser_dir):
    """test_browser_engine's site (the shipped model, exported into the tests' folder) with a quick calibration."""
    return {"DEFAULT_MODEL": MODEL, "BROWSER_DIR": browser_dir, "WARM_UP": False, "CALIBRATION": QUICK}


def module(page, name):
    return f"await import(new URL('engine/{name}', new URL(document.body.dataset.static, location.href)).href)"


def browser_fit(page, features, labels, weights, bias):
    return page.evaluate(f"""async ([features, labels, weights, bias, settings]) => {{
        const R = {module(page, 'readout.js')};
        const result = R.fit(features, labels, weights, bias, settings);
        const readout = new R.Readout({{model: 'm', weights_sha256: 'x', classes: bias.map((_, i) => 'c' + i),
                                        weights: result.weights, bias: result.bias, strength: settings.strength}});
        return {{weights: result.weights, bias: result.bias, iterations: result.iterations,
                 probabilities: features.map((row) => readout.probabilities(row))}};
    }}""", [np.asarray(features).tolist(), [int(v) for v in labels], np.asarray(weights).tolist(),
            np.asarray(bias).tolist(), readout.fit_settings()])


def person_frames(reference, astronaut_bgr, count=6):
    """The model's features of the astronaut's face moved and lit several ways, in float32 as served."""
    rng = np.random.default_rng(3)
    frames = []
    for _ in range(count):
        turn = cv2.getRotationMatrix2D((224, 118), rng.uniform(-12, 12), rng.uniform(0.9, 1.1))
        moved = cv2.warpAffine(astronaut_bgr, turn, (512, 512), borderMode=cv2.BORDER_REPLICATE)
        frames.append(np.clip(moved * rng.uniform(0.6, 1.3), 0, 255).astype(np.uint8))
    return np.stack([reference.choose_faces(frame)[0].features for frame in frames])


def test_the_exported_model_gives_pythons_features_beside_the_logits(engine_page, reference, astronaut_bgr):
    inputs = np.stack([chosen.input for picture in (astronaut_bgr, astronaut_bgr[:, ::-1])
                       for chosen in reference.choose_faces(picture)])
    ours = engine_page.evaluate("""async (inputs) => {
        const engine = await EMO.engine();
        const answers = [];
        for (const input of inputs) {
            const { features, logits } = await engine.predictor.featuresAndLogits(Float32Array.from(input.flat(2)));
            answers.push({ features: Array.from(features), logits: Array.from(logits) });
        }
        return answers;
    }""", inputs.tolist())
    features, logits = reference.features_and_logits(inputs)
    np.testing.assert_allclose([answer["features"] for answer in ours], features, atol=1e-3)
    np.testing.assert_allclose([answer["logits"] for answer in ours], logits, atol=1e-3)
    assert features.shape == (2, 256) and (features > 0).any()


@pytest.mark.parametrize("classes", [7, 8, 5])
def test_the_browser_fits_the_read_out_python_fits(engine_page, reference, astronaut_bgr, classes):
    """The shipped model's last layer (7 classes), and made-up last layers of 8 and 5 classes on the same
    features: a class never shown, few frames, and every step's arithmetic the same on both sides."""
    features = person_frames(reference, astronaut_bgr)
    weights, bias = reference.last_layer()
    if classes != 7:
        rng = np.random.default_rng(classes)
        weights, bias = rng.normal(0, 0.05, (features.shape[1], classes)), rng.normal(0, 0.2, classes)
    labels = np.arange(len(features)) % min(3, classes)     # three expressions shown, the others never
    python = readout.fit(features, labels, weights, bias)
    ours = browser_fit(engine_page, features, labels, weights, bias)
    np.testing.assert_allclose(ours["weights"], python.weights, atol=PARITY)
    np.testing.assert_allclose(ours["bias"], python.bias, atol=PARITY)
    np.testing.assert_allclose(ours["probabilities"], readout.softmax_rows(features @ python.weights + python.bias),
                               atol=PARITY)
    assert np.abs(python.weights - weights).max() > 100 * PARITY   # it moved: the comparison means something
    assert abs(ours["iterations"] - python.iterations) <= 2


def test_the_fit_settings_reach_the_browser_from_python(engine_page):
    assert engine_page.evaluate("async () => (await EMO.engine()).constants.readout") == \
        json.loads(json.dumps(engine_constants()["readout"]))


@pytest.mark.parametrize("phase, seconds_left", [("ready", 2.2), ("ready", 3.0), ("hold", 1.25), ("hold", 0.05),
                                                  ("done", 0.0)])
def test_the_prompt_reads_as_pythons(engine_page, phase, seconds_left):
    from utils.live.calibration import Prompt
    python = Prompt(phase, "happy" if phase != "done" else "", seconds_left, 2, 3, 0.4)
    ours = engine_page.evaluate(f"""async (prompt) => {{
        const C = {module(engine_page, 'calibration.js')};
        return C.promptText(prompt);
    }}""", {"phase": phase, "expression": python.expression, "secondsLeft": seconds_left, "step": 2, "steps": 3})
    assert ours == python.text()


@pytest.mark.parametrize("classes, chosen", [
    (["angry", "happy", "neutral", "sad"], ["sad", "happy"]),          # neutral first, then the card's order
    (["angry", "happy", "neutral", "sad"], ["neutral"]),               # too few
    (["angry", "happy", "sad"], ["happy", "sad"]),                     # a model without neutral
    (["angry", "happy", "sad"], ["happy"]),
    (["angry", "happy", "neutral"], ["contempt", "joy"]),              # names the model does not have
])
def test_the_expressions_shown_are_pythons(engine_page, classes, chosen):
    from utils.live.calibration import NEUTRAL, expressions_to_show
    try:
        python = expressions_to_show(classes, chosen)
    except ValueError as error:
        python = f"error: {error}"
    ours = engine_page.evaluate(f"""async ([classes, chosen, neutral]) => {{
        const C = {module(engine_page, 'calibration.js')};
        try {{ return C.expressionsToShow(classes, chosen, neutral); }} catch (err) {{ return `error: ${{err.message}}`; }}
    }}""", [classes, chosen, NEUTRAL])
    assert ours == python


def requests_of(page):
    """Every request the page makes from now on: ``(method, url, body)``."""
    seen = []
    page.on("request", lambda request: seen.append((request.method, request.url, request.post_data)))
    return seen


def calibrate(page, chosen):
    """Tick ``chosen`` (and only those) besides neutral, press Calibrate, wait until the read-out is in use."""
    for box in page.locator("#calibration-choices input").all():
        box.set_checked(box.get_attribute("value") in chosen)
    page.click("#calibrate")
    page.wait_for_function("() => document.getElementById('calibration').dataset.state === 'running'")
    page.wait_for_function("() => document.getElementById('calibration').dataset.state !== 'running'", timeout=60_000)
    assert page.locator("#calibration").get_attribute("data-state") == "calibrated", \
        page.locator("#readout-state").inner_text()


def table(page, selector):
    """A before-or-after table as ``{expression: {class: count}}``."""
    rows = page.locator(f"{selector} tr").all()
    header = rows[0].locator("th").all_inner_texts()[1:]
    return {row.locator("th").inner_text(): dict(zip(header, map(int, row.locator("td").all_inner_texts())))
            for row in rows[1:]}


def test_calibrate_to_me_on_the_live_page(site, playwright, reference, astronaut_bgr, model_path, tmp_path):
    """The astronaut (read as happy by the model as shipped) shown as neutral and as sad: afterwards Live
    reads her as one of those two, the before table has her held-back frames as happy, the after table
    as neutral or sad; back to the model as shipped and forth; kept across a reload; exported to a file
    Python loads and reads alike; a read-out Python made is imported; another model's is refused."""
    browser, page = live_page(playwright, site, astronaut_bgr, tmp_path)
    seen = requests_of(page)
    try:
        page.goto(site + "/live")
        page.wait_for_function("() => document.querySelectorAll('#calibration-choices input').length === 6")
        assert page.locator("#calibration-choices input:checked").evaluate_all("boxes => boxes.map(b => b.value)") == \
            ["happy", "sad", "surprise"]    # the suggested ones, neutral always and so not offered
        page.click("#calibrate")        # the camera is not on yet: it says so
        page.wait_for_function("() => document.getElementById('readout-state').textContent.startsWith('Start the camera first')")
        page.click("#start")
        page.wait_for_function("() => document.getElementById('live-result').dataset.label === 'happy'")
        calibrate(page, ["sad"])
        before, after = table(page, "#before-table"), table(page, "#after-table")
        assert list(before) == ["neutral", "sad"] and list(before["neutral"]) == reference.classes
        held = {name: sum(row.values()) for name, row in before.items()}
        assert all(count >= 1 for count in held.values()) and held == {k: sum(v.values()) for k, v in after.items()}
        assert all(row["happy"] == sum(row.values()) for row in before.values())
        assert all(row["neutral"] + row["sad"] == sum(row.values()) for row in after.values())
        page.wait_for_function("() => ['neutral', 'sad'].includes(document.getElementById('live-result').dataset.label)")
        assert "your own last layer" in page.locator("#readout-state").inner_text()
        fit_ms = float(page.locator("#calibration").get_attribute("data-fit-ms"))
        assert 0 < fit_ms < 5000

        page.click("#as-shipped")
        assert page.locator("#calibration").get_attribute("data-state") == "shipped"
        page.wait_for_function("() => document.getElementById('live-result').dataset.label === 'happy'")
        page.click("#as-shipped")       # "Use my read-out again"
        assert page.locator("#calibration").get_attribute("data-state") == "calibrated"

        with page.expect_download() as download:
            page.click("#export-readout")
        exported = tmp_path / "mine.json"
        download.value.save_as(exported)
        mine = readout.load_readout(str(exported), reference.card)
        assert mine.frames.keys() == {"neutral", "sad"} and sum(mine.frames.values()) > 4
        face = reference.choose_faces(astronaut_bgr)[0].features
        assert reference.classes[int(np.argmax(mine.probabilities(face[None])[0]))] in ("neutral", "sad")

        page.check("#keep-readout")
        page.reload()
        page.wait_for_function("() => document.getElementById('calibration').dataset.state === 'calibrated'")
        assert page.is_checked("#keep-readout")
        page.uncheck("#keep-readout")
        assert page.evaluate("() => Object.keys(localStorage).filter((key) => key.startsWith('readout:'))") == []

        weights, bias = reference.last_layer()
        made = readout.make_readout(reference.card, readout.fit(np.stack([face, face]), [3, 5], weights, bias),
                                    {"happy": 1, "surprise": 1})
        readout.save_readout(str(tmp_path / "python.json"), made)
        page.set_input_files("#import-readout", str(tmp_path / "python.json"))
        page.wait_for_function("() => document.getElementById('readout-state').textContent.includes('happy, surprise')")
        assert page.locator("#calibration").get_attribute("data-state") == "calibrated"
        other = dict(made.to_dict(), weights_sha256="0" * 64, model="baseline_cnn")
        (tmp_path / "other.json").write_text(json.dumps(other))
        page.set_input_files("#import-readout", str(tmp_path / "other.json"))
        page.wait_for_function("() => document.getElementById('readout-state').classList.contains('error')")
        message = page.locator("#readout-state").inner_text()
        assert "belongs to model baseline_cnn" in message and "\n" not in message
    finally:
        browser.close()
    assert {method for method, _, _ in seen} == {"GET"} and not any(body for _, _, body in seen)
    assert all(url.startswith((site + "/static/", site + "/engine/", site + "/live", "blob:", "data:"))
               for _, url, _ in seen), [url for _, url, _ in seen]


@pytest.fixture(scope="module")
def quick_static_site(browser_dir, tmp_path_factory):
    """``make site``'s folder with the quick calibration, served by Python's plain static file server."""
    from make_site import build_site
    folder = tmp_path_factory.mktemp("site") / "site"
    build_site(str(folder), MODEL, browser_dir, config={"CALIBRATION": QUICK})
    with served_folder(folder) as url:
        yield url


def test_calibrate_to_me_in_the_static_site(quick_static_site, playwright, astronaut_bgr, tmp_path):
    browser, page = live_page(playwright, quick_static_site, astronaut_bgr, tmp_path)
    seen = requests_of(page)
    try:
        page.goto(quick_static_site + "/live.html")
        page.wait_for_function("() => document.querySelectorAll('#calibration-choices input').length === 6")
        page.click("#start")
        page.wait_for_function("() => Number(document.getElementById('live-result').dataset.frames) >= 3")
        page.click("#calibrate")
        page.wait_for_function("() => document.getElementById('calibration').dataset.state === 'running'")
        page.click("#stop")          # the camera stops half-way: nothing is fitted
        assert page.locator("#calibration").get_attribute("data-state") == "shipped"
        assert page.locator("#readout-state").inner_text().startswith("The calibration stopped with the camera")
        page.click("#start")
        page.wait_for_function("() => Number(document.getElementById('live-result').dataset.frames) >= 3")
        calibrate(page, ["surprise"])
        assert list(table(page, "#after-table")) == ["neutral", "surprise"]
        page.check("#keep-readout")
        page.click("#stop")
    finally:
        browser.close()
    assert {method for method, _, _ in seen} == {"GET"} and not any(body for _, _, body in seen)
    assert all(url.startswith((quick_static_site + "/", "blob:", "data:")) for _, url, _ in seen)


def test_explore_shows_the_read_out_beside_the_models_last_layer(site, playwright, reference, tmp_path):
    """A read-out whose only change is sad's weight on feature 10 (+0.3) and sad's bias (+1): the page finds it in
    this browser's storage, draws the two layers and their difference (red where sad's weight rose), and its
    table names sad as the class that moved, through feature #10; another model's file is refused."""
    weights, bias = reference.last_layer()
    sad = reference.classes.index("sad")
    changed_weights, changed_bias = weights.copy(), bias.copy()
    changed_weights[10, sad] += 0.3
    changed_bias[sad] += 1.0
    mine = readout.make_readout(reference.card, readout.Fit(changed_weights, changed_bias, 0, 0.0, 0.0),
                                {"neutral": 12, "sad": 11})
    browser, page = open_page(playwright)
    seen = requests_of(page)
    try:
        page.goto(site + "/explore")
        page.wait_for_function("() => document.getElementById('readout-view-state').textContent.includes('Calibrate on the Live')")
        assert page.locator("#readout-view").get_attribute("data-readout") == "none"
        assert page.locator("#readout-weights").is_hidden()
        page.evaluate("([key, value]) => localStorage.setItem(key, value)",
                      [f"readout:{reference.card.weights_sha256}", json.dumps(mine.to_dict())])
        page.reload()
        page.wait_for_function("() => document.getElementById('readout-view').dataset.readout === 'kept'")
        rows = [row.locator("td").all_inner_texts() for row in page.locator("#weights-table tr").all()]
        assert [row[0] for row in rows] == reference.classes
        by_class = {row[0]: row for row in rows}
        from utils.explain.operation_text import DIGITS

        def shown(value):   # as the pages show a number (EMO.round): DIGITS significant digits
            return float(f"{value:.{DIGITS}g}")
        assert float(by_class["sad"][2]) == shown(bias[sad] + 1.0) and float(by_class["sad"][1]) == shown(bias[sad])
        assert float(by_class["sad"][3]) == shown(0.3) and by_class["sad"][4].startswith("#10")
        assert all(float(row[3]) == 0 for name, row in by_class.items() if name != "sad")
        assert "12 of neutral, 11 of sad" in page.locator("#readout-view-state").inner_text()
        red = page.evaluate(f"""() => Array.from(document.getElementById('weights-change').getContext('2d')
            .getImageData(10 * 2, {sad} * 14 + 7, 1, 1).data.slice(0, 3))""")
        white = page.evaluate(f"""() => Array.from(document.getElementById('weights-change').getContext('2d')
            .getImageData(11 * 2, {sad} * 14 + 7, 1, 1).data.slice(0, 3))""")
        assert red[0] == 255 and red[1] < 255 and white == [255, 255, 255]
        other = dict(mine.to_dict(), weights_sha256="0" * 64, model="baseline_cnn")
        (tmp_path / "other.json").write_text(json.dumps(other))
        page.set_input_files("#readout-file", str(tmp_path / "other.json"))
        page.wait_for_function("() => document.getElementById('readout-view-state').classList.contains('error')")
        assert "belongs to model baseline_cnn" in page.locator("#readout-view-state").inner_text()
    finally:
        browser.close()
    assert not [url for method, url, body in seen if method != "GET" or body]


def test_calibrate_to_me_on_an_eight_class_model(eight_class_model_path, playwright, astronaut_bgr, tmp_path):
    """The FER+ fixture (contempt last, and what it answers on every face) in the static site: the expressions
    offered are its seven besides neutral, contempt among them; the tables have its eight columns; after a
    calibration on neutral and happy, contempt no longer wins."""
    from make_site import build_site
    browser_dir = str(tmp_path / "browser")
    export_model(eight_class_model_path, browser_dir)
    build_site(str(tmp_path / "site"), eight_class_model_path, browser_dir, config={"CALIBRATION": QUICK})
    with served_folder(tmp_path / "site") as url:
        browser, page = live_page(playwright, url, astronaut_bgr, tmp_path)
        try:
            page.goto(url + "/live.html")
            page.wait_for_function("() => document.querySelectorAll('#calibration-choices input').length === 7")
            assert page.locator("#calibration-choices input").evaluate_all("boxes => boxes.map(b => b.value)") == \
                [name for name in EIGHT_CLASSES if name != "neutral"]
            page.click("#start")
            page.wait_for_function("() => document.getElementById('live-result').dataset.label === 'contempt'")
            calibrate(page, ["happy"])
            after = table(page, "#after-table")
            assert list(after) == ["neutral", "happy"] and list(after["neutral"]) == EIGHT_CLASSES
            assert all(row["contempt"] == 0 for row in after.values())
            assert all(row["contempt"] == sum(row.values()) for row in table(page, "#before-table").values())
            page.wait_for_function("() => ['neutral', 'happy'].includes(document.getElementById('live-result').dataset.label)")
            page.click("#stop")
        finally:
            browser.close()
