"""A real browser on the site: upload a photo, read the label and the bars, explore the CNN,
open the operation behind a position (by mouse and by keyboard), follow its receptive field,
watch a layer live, and let axe-core check each page's accessibility.

Python Playwright drives Debian's Chromium (``apt install chromium``), headless and
offline; Playwright's own browser downloads are never used. axe-core comes bundled in
the ``axe-playwright-python`` package (no network). The site runs in a thread on a free
loopback port. Screenshots go to each test's ``tmp_path``: tests write nothing into the project.
"""
import contextlib

import cv2
import pytest

from conftest import FER_CLASSES, open_page, served
from utils.faces.pictures import KEYPOINT_RGB

pytestmark = pytest.mark.usefixtures("chromium")   # skipped without it, failed in CI (conftest.missing)


@pytest.fixture(scope="module")
def app_config(model_path, tmp_path_factory):
    """The module's ``app`` (conftest.py) has its model exported for the in-browser engine into the tests'
    own folder. Its test-face folder is missing, so a channel's view says how to get FER2013 and nothing
    is cached."""
    from utils.serving.browser_export import export_model
    browser_dir = str(tmp_path_factory.mktemp("browser"))
    export_model(model_path, browser_dir)
    return {"BROWSER_DIR": browser_dir, "GALLERY_DIR": str(tmp_path_factory.mktemp("no_test_faces") / "test")}


@pytest.fixture(scope="module")
def page(playwright):
    browser, page = open_page(playwright)
    yield page
    browser.close()


# Every Content-Security-Policy violation a page reports, kept in window.violations (an init script runs
# before the page's own scripts).
RECORD_VIOLATIONS = """window.violations = [];
    document.addEventListener('securitypolicyviolation',
        (event) => window.violations.push(`${event.effectiveDirective} ${event.blockedURI}`), true);"""


@contextlib.contextmanager
def another_site():
    """A server on another origin that answers anything (CORS allowed): ``(its URL, the paths it was asked for)``."""
    asked = []

    def answer(environ, start_response):
        asked.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "image/gif"), ("Access-Control-Allow-Origin", "*")])
        return [b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"]
    with served(answer) as url:
        yield url, asked


def reaches(page, url):
    """Whether the page's own fetch and an <img> get an answer from ``url``: ``[fetch, image]``, each
    "answered" or "refused"."""
    return page.evaluate("""async (url) => [
        await fetch(url + '/fetched?photo=1').then(() => 'answered', () => 'refused'),
        await new Promise((done) => { const image = new Image(); image.onload = () => done('answered');
                                      image.onerror = () => done('refused'); image.src = url + '/pixel.gif'; })]""", url)


def canvas_pixel(page, selector, x, y):
    """The RGB of one pixel of a canvas on the page."""
    return tuple(page.evaluate(f"""() => {{
        const canvas = document.querySelector({selector!r});
        return Array.from(canvas.getContext('2d').getImageData({int(x)}, {int(y)}, 1, 1).data.slice(0, 3));
    }}"""))


def class_rgb(page, face, label):
    """The colour the page draws a face's box in: its class's colour (static/shared/common.js)."""
    colour = page.evaluate(f"EMO.colour({list(face['probabilities']).index(label)})")
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def assert_boxed(page, selector, face, label, reach=0):
    """The face's box is drawn on the canvas in ``label``'s colour along its edges (within ``reach``
    pixels of where the API puts them), and not across the face."""
    x, y, w, h = face["box"]
    colour = class_rgb(page, face, label)
    for px, py, dx, dy in ((x, y + h // 2, 1, 0), (x + w, y + h // 2, 1, 0), (x + w // 2, y + h, 0, 1)):
        near = [canvas_pixel(page, selector, px + step * dx, py + step * dy) for step in range(-reach, reach + 1)]
        assert any(pixel == pytest.approx(colour, abs=2) for pixel in near), (px, py, near, colour)
    assert canvas_pixel(page, selector, x + w // 2, y + h // 2) != pytest.approx(colour, abs=2)


def predicted(page, site, photo_bytes, **fields):
    """The API's faces for a photo, asked from the page itself (the same server and model)."""
    import base64
    encoded = base64.b64encode(photo_bytes).decode()
    query = "&".join(f"{key}={value}" for key, value in fields.items())
    return page.evaluate(f"""async () => (await (await fetch('{site}/api/predict?{query}', {{method: 'POST',
        headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{image: '{encoded}'}})}})).json()).faces""")


def write_y4m(path, image_bgr, frames=10, fps=5):
    """A short raw video of one still photo: Chromium's fake camera plays it in a loop."""
    image = cv2.resize(image_bgr, (640, 480))
    frame = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W640 H480 F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            handle.write(b"FRAME\n" + frame)


def test_upload_label_bars_then_explore_and_enlarge_a_feature_map(site, page, astronaut_bgr, tmp_path):
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_bgr)

    page.goto(site + "/")
    page.set_input_files("#file", str(photo))
    card = page.locator(".face").first
    card.locator(".label").wait_for()
    labels = card.locator(".bar .name").all_inner_texts()
    assert labels == FER_CLASSES and card.locator(".label").text_content() in labels   # the card's classes, in order
    assert card.locator(".bar.top .name").text_content() == card.locator(".label").text_content()
    page.click("#gradcam")   # found on this device; Grad-CAM is the server's, asked for
    page.wait_for_function("() => document.querySelector('.face .cam img').src.startsWith('data:image/png')")
    assert "1 face found" in page.locator("#status").inner_text()
    face = predicted(page, site, photo.read_bytes())[0]
    assert_boxed(page, "#photo", face, card.locator(".label").text_content())
    page.check("#keypoints")    # drawn in the colours Python's figures use (web/facts.py)
    assert canvas_pixel(page, "#photo", *face["keypoints"]["nose"]) == pytest.approx(KEYPOINT_RGB, abs=2)
    page.screenshot(path=tmp_path / "analyse.png", full_page=True)

    label = card.locator(".label").text_content()
    card.locator(".explore-link").click()
    page.wait_for_url(f"**/explore?box={','.join(map(str, face['box']))}")   # the face named by its box
    first_map = page.locator("#steps .step.kind-conv .map").first
    first_map.wait_for()
    # Grad-CAM and the regions say which number they explain: the label's probability as shown.
    assert f"the probability of '{label}' shown beside the face" in page.locator("#target-text").inner_text()
    assert page.locator("#overview .chip").count() == len(page.locator("#steps .step").all())
    assert page.locator("#steps .step").first.locator(".shape").inner_text() == "output 48 × 48 × 1"
    first_map.click()
    zoom = page.locator("#zoom")
    zoom.wait_for(state="visible")
    assert "channel 0" in page.locator("#zoom-caption").inner_text()
    page.screenshot(path=tmp_path / "explore.png", full_page=True)
    assert (tmp_path / "explore.png").stat().st_size > 10_000


def test_each_gradcam_reaches_the_card_of_its_face_by_box(site, playwright, astronaut_bgr, tmp_path):
    """The server's answers come back in the other order (as when it finds the faces in another order than
    the browser): each map still lands on its own face's card, and says which label and precision it explains."""
    import numpy as np
    photo = tmp_path / "two.png"
    cv2.imwrite(str(photo), np.hstack([astronaut_bgr, cv2.flip(astronaut_bgr, 1)]))
    browser, page = open_page(playwright)
    # (Playwright's route.fetch would drop the photo from the request: the answer is reversed in the page.)
    page.add_init_script("""(() => {
        const fetchFirst = window.fetch;
        window.explained = [];
        window.fetch = async (url, options) => {
            const response = await fetchFirst(url, options);
            if (!String(url).includes('/api/explain')) return response;
            const answer = await response.json();
            answer.faces.reverse();
            window.explained.push(answer);
            return new Response(JSON.stringify(answer), { status: response.status, headers: response.headers });
        };
    })()""")
    try:
        page.goto(site + "/")
        page.set_input_files("#file", str(photo))
        page.wait_for_function("() => document.getElementById('result').dataset.result")
        page.click("#gradcam")
        page.wait_for_function("() => [...document.querySelectorAll('#faces .face .cam img')].every("
                               "(img) => img.src.startsWith('data:image/png'))")
        answers = page.evaluate("window.explained")
        entries = {",".join(f"{v:g}" for v in entry["box"]): entry for entry in answers[0]["faces"]}
        cards = page.locator("#faces .face")
        assert cards.count() == len(entries) == 2
        assert len({entry["gradcam"]["overlay"] for entry in entries.values()}) == 2
        for card in cards.all():
            entry, label = entries[card.get_attribute("data-box")], card.locator(".label").text_content()
            assert card.locator(".cam img").get_attribute("src") == entry["gradcam"]["overlay"]
            assert entry["target"]["class"] == label
            assert card.locator(".cam figcaption").inner_text() == (
                f"Grad-CAM of '{label}' (computed on this site's server, in float32): where the network looked")
    finally:
        browser.close()


def test_live_page_labels_the_camera_feed_and_shows_a_chosen_layer(site, playwright, astronaut_bgr, tmp_path):
    """Chromium's fake camera plays the astronaut; the page must box and label her face, and show
    the chosen layer's maps beside the label."""
    video = tmp_path / "camera.y4m"
    write_y4m(video, astronaut_bgr)
    browser, page = open_page(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-video-capture={video}")
    try:
        page.goto(site + "/live")
        assert page.locator("#live-layer").input_value() == ""   # off until chosen
        assert page.locator("#live-layer option").all_inner_texts() == ["off", "conv1", "pool1", "conv2", "pool2",
                                                                         "conv3", "pool3"]
        page.click("#start")
        page.wait_for_function("() => document.getElementById('now').textContent.includes('%') || document.getElementById('status').textContent.length > 0")
        assert page.locator("#status").inner_text() == ""
        assert page.locator("#live-bars .bar .name").all_inner_texts() == FER_CLASSES
        frame = cv2.imencode(".jpg", cv2.resize(astronaut_bgr, (640, 480)))[1].tobytes()
        face = predicted(page, site, frame, detail="fast")[0]   # the camera's frame, near enough
        assert_boxed(page, "#overlay", face, page.locator("#now").inner_text().split(" ")[0], reach=4)
        assert page.locator("#live-layer-box").is_hidden()
        page.select_option("#live-layer", "conv2")
        page.wait_for_function("() => document.querySelectorAll('#live-maps img').length === 16")
        assert page.locator("#live-layer-title").inner_text().startswith("conv2 (conv): the first 16 of 64 channels")
        assert page.locator("#live-maps img").nth(3).get_attribute("alt").startswith("conv2, channel 3 (21 × 21), values ")
        assert serious_violations(page) == []   # the page while it runs, its layer shown
        page.screenshot(path=tmp_path / "live.png")
        page.select_option("#live-layer", "")
        assert page.locator("#live-layer-box").is_hidden()
        page.click("#stop")
    finally:
        browser.close()


def test_the_pages_work_under_their_policy_and_reach_no_other_site(site, playwright, astronaut_bgr, tmp_path):
    """Live (the camera on), Analyse (a photo, then Grad-CAM), Explore, Gallery and Models run with no
    violation of their Content-Security-Policy; then a fetch and an image from another origin, which answers
    anyone, are refused, and that server is never asked."""
    video, photo = tmp_path / "camera.y4m", tmp_path / "astronaut.jpg"
    write_y4m(video, astronaut_bgr)
    cv2.imwrite(str(photo), astronaut_bgr)
    browser, page = open_page(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-video-capture={video}")
    page.add_init_script(RECORD_VIOLATIONS)
    try:
        with another_site() as (elsewhere, asked):
            page.goto(site + "/live")
            page.click("#start")
            page.wait_for_function("() => Number(document.getElementById('live-result').dataset.frames) >= 3")
            assert page.locator("#live-result").get_attribute("data-engine") == "browser"
            page.click("#stop")
            assert page.evaluate("window.violations") == []
            page.goto(site + "/")
            page.set_input_files("#file", str(photo))
            page.click("#gradcam")
            page.wait_for_function("() => document.querySelector('.face .cam img').src.startsWith('data:image/png')")
            assert page.evaluate("window.violations") == []
            page.locator(".explore-link").first.click()
            page.wait_for_function("() => document.querySelector('#steps .map-box img') !== null")
            assert page.evaluate("window.violations") == []
            for path in ("/gallery", "/models"):
                page.goto(site + path)
                assert page.evaluate("window.violations") == [], path
            assert reaches(page, elsewhere) == ["refused", "refused"]
            assert sorted(page.evaluate("window.violations")) == [f"connect-src {elsewhere}/fetched?photo=1",
                                                                  f"img-src {elsewhere}/pixel.gif"]
            assert asked == []
    finally:
        browser.close()


def test_class_names_reach_the_live_page_as_text(site, playwright, astronaut_bgr, tmp_path):
    """A card whose class names hold HTML: the legend and the bars show them as written, and make no element."""
    video = tmp_path / "camera.y4m"
    write_y4m(video, astronaut_bgr)
    browser, page = open_page(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-video-capture={video}")
    marked = '<img src="x">angry'

    def marked_card(route):
        card = route.fetch().json()
        card["classes"][0] = marked
        route.fulfill(json=card)
    try:
        page.route("**/engine/models/fixture_model.json", marked_card)
        page.goto(site + "/live")
        page.click("#start")
        page.wait_for_function("() => document.querySelectorAll('#legend span').length === 7")
        assert page.locator("#legend span").first.inner_text() == marked
        assert page.locator("#live-bars .bar .name").first.inner_text() == marked
        assert page.locator("#legend img, #live-bars img").count() == 0
        page.click("#stop")
    finally:
        browser.close()


def hold_first(page, pattern):
    """Hold the first request matching ``pattern`` back (the list gets its route), let the others through."""
    held = []
    page.route(pattern, lambda route: route.continue_() if held else held.append(route))
    return held


def wait_until_held(page, held, seconds=30):
    for _ in range(seconds * 20):
        if held:
            return
        page.wait_for_timeout(50)
    pytest.fail("the request to hold back was never sent")


@pytest.mark.parametrize("held_back", ["**/api/predict", "**/api/explain"])
def test_a_late_answer_for_an_earlier_photo_does_not_replace_the_later_one(site, playwright, astronaut_bgr, tmp_path,
                                                                         held_back):
    """The first photo's search (or its Grad-CAMs) is held back until the second photo (two faces) is on
    screen; when it arrives at last, the page keeps the second photo's faces and their Grad-CAMs."""
    import numpy as np
    one, two = tmp_path / "one.jpg", tmp_path / "two.jpg"
    cv2.imwrite(str(one), astronaut_bgr)
    cv2.imwrite(str(two), np.hstack([astronaut_bgr, astronaut_bgr]))
    browser, page = open_page(playwright)
    held = hold_first(page, held_back)
    page.goto(site + "/")
    page.select_option("#engine", "server")   # both photos go to the server, their Grad-CAMs with them
    page.set_input_files("#file", str(one))
    wait_until_held(page, held)
    page.set_input_files("#file", str(two))
    page.wait_for_function("() => [...document.querySelectorAll('#faces .face .cam img')].length === 2 && "
                           "[...document.querySelectorAll('#faces .face .cam img')].every("
                           "(img) => img.src.startsWith('data:image/png'))")
    cams = page.locator("#faces .face .cam img").evaluate_all("(imgs) => imgs.map((img) => img.src)")
    with page.expect_response(held_back):
        held[0].continue_()
    page.wait_for_timeout(1500)     # time for the late answer to be drawn, were it drawn
    assert page.locator("#faces .face").count() == 2 and page.locator("#status").inner_text() == "2 faces found."
    assert page.locator("#faces .face .cam img").evaluate_all("(imgs) => imgs.map((img) => img.src)") == cams
    browser.close()


def test_live_page_says_when_there_is_no_camera(site, page):
    page.goto(site + "/live")
    page.click("#start")
    page.wait_for_function("() => document.getElementById('status').textContent.length > 0")
    assert "camera" in page.locator("#status").inner_text().lower()


def test_live_page_says_how_to_allow_a_refused_camera(site, playwright):
    """A camera is there, but the page may not use it (permission refused): one line on what to do,
    the Start button back, nothing frozen."""
    browser, page = open_page(playwright, "--use-fake-device-for-media-stream")
    try:
        page.context.clear_permissions()
        page.goto(site + "/live")
        page.evaluate("""() => { navigator.mediaDevices.getUserMedia = () =>
            Promise.reject(new DOMException('Permission denied', 'NotAllowedError')); }""")
        page.click("#start")
        page.wait_for_function("() => document.getElementById('status').textContent.length > 0")
        assert page.locator("#status").inner_text() == ("The camera was blocked. Allow it in the browser's address "
                                                        "bar (camera icon) and press Start again.")
        assert page.locator("#start").is_visible() and not page.locator("#stop").is_visible()
    finally:
        browser.close()


# ---- the operation behind a position ------------------------------------------------------------

def explore(site, page, photo):
    """The Explore page on ``photo``, its maps drawn; the tab forgets its last photo first, so nothing
    is drawn twice."""
    page.goto(site + "/explore")
    page.evaluate("sessionStorage.clear()")
    page.reload()
    page.set_input_files("#file", str(photo))
    page.wait_for_function("() => document.getElementById('status').textContent === '' && "
                           "document.querySelector('#steps .map-box') !== null")


def api_operation(site, page, photo, layer, channel, y, x):
    """What /api/explain answers for the position, asked the way the page asks (same face, same detector)."""
    fields = {"model": "fixture_model", "threshold": "0.35", "detector": "blazeface", "face": "0",
              "parts": "operation", "layer": layer, "channel": str(channel), "y": str(y), "x": str(x)}
    response = page.request.post(site + "/api/explain", multipart={
        "file": {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": photo.read_bytes()}, **fields})
    assert response.ok, response.text()
    return response.json()


def shows_the_apis_operation(site, page, photo, title, layer, channel, y, x):
    """The dialog's operation, once it has come: its title, and the API's view for the position as the
    server composed it (heading, summary, the rounded result and its exact value, the check)."""
    page.locator("#operation .op-result").wait_for()
    assert page.locator("#zoom-title").inner_text() == title
    expected = api_operation(site, page, photo, layer, channel, y, x)["operation"]
    result = next(block for block in expected["display"]["blocks"] if block["block"] == "result")
    shown = page.locator("#operation .op-result")
    assert float(shown.get_attribute("data-value")) == expected["result"] == result["value"]
    assert shown.inner_text() == result["text"]
    assert page.locator("#operation h3").inner_text() == expected["display"]["title"]
    assert page.locator("#operation .op-summary").inner_text() == expected["summary"]
    assert page.locator("#operation .op-check").inner_text() == expected["check"]
    return expected


def cell_centre(side, cells, index):
    """Where, in CSS pixels from a map's corner, the middle of cell ``index`` of ``cells`` lies."""
    return (index + 0.5) * side / cells


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut_bgr):
    path = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    cv2.imwrite(str(path), astronaut_bgr)
    return path


def test_clicking_a_map_position_opens_its_operation_with_the_apis_result(site, page, photo):
    explore(site, page, photo)
    conv1 = page.locator("#steps .step.kind-conv").first
    picture = conv1.locator(".map-box img").nth(1)                   # channel 1 of conv1, 46 x 46
    side = picture.bounding_box()["width"]
    picture.click(position={"x": side * 0.4, "y": side * 0.7})      # cells of 1.2 px: where the page says it is
    page.locator("#operation .op-result").wait_for()
    title = page.locator("#zoom-title").inner_text()
    row, column = (int(part.split()[-1]) for part in title.split(", ")[1:])
    assert title.startswith("conv1 (conv): channel 1, row ") and abs(row - 32) <= 1 and abs(column - 18) <= 1
    expected = api_operation(site, page, photo, "conv1", 1, row, column)["operation"]
    shown = page.locator("#operation .op-result")
    assert float(shown.get_attribute("data-value")) == expected["result"]
    assert float(shown.inner_text()) == pytest.approx(expected["result"], rel=5e-3, abs=1e-12)   # 3 digits shown
    assert page.locator("#operation .op-check").inner_text() == expected["check"]
    assert page.locator("#operation .op-channel").count() == 1      # conv1 reads one channel: one set of grids
    assert page.locator("#operation .op-grid td").count() == 27      # window, weights, products: 3 x 3 each
    # What this channel looks for: the test faces are missing here, so the page says how to get them.
    page.click("#channel-button")
    page.locator("#channel .op-channel-view").wait_for()
    assert "make data" in page.locator("#channel .warning").inner_text()
    assert page.locator("#channel .pattern img").get_attribute("alt").startswith("The input that excites conv1 channel 1")
    page.keyboard.press("Escape")


def test_only_the_latest_gradcam_class_is_drawn(site, playwright, photo):
    """Grad-CAM of 'sad' is asked for, then of 'angry'; the 'sad' answer, held back, arrives last and is dropped."""
    browser, page = open_page(playwright)
    explore(site, page, photo)
    held = hold_first(page, "**/api/explain")
    page.select_option("#cam-class", "sad")
    wait_until_held(page, held)
    page.select_option("#cam-class", "angry")
    page.wait_for_function("() => document.getElementById('target-text').textContent.includes(\"'angry'\")")
    with page.expect_response("**/api/explain"):
        held[0].continue_()
    page.wait_for_timeout(1500)     # time for the late answer to be drawn, were it drawn
    assert "'angry'" in page.locator("#target-text").inner_text()
    assert page.locator("#regions-class").inner_text() == "angry"
    browser.close()


def test_many_input_channels_are_shown_compactly(site, page, photo):
    explore(site, page, photo)
    picture = page.locator("#steps .step.kind-conv").nth(2).locator(".map-box img").nth(5)   # conv3: 8 x 8, 64 inputs
    side = picture.bounding_box()["width"]
    picture.click(position={"x": cell_centre(side, 8, 2), "y": cell_centre(side, 8, 6)})
    shows_the_apis_operation(site, page, photo, "conv3 (conv): channel 5, row 6, column 2", "conv3", 5, 6, 2)
    assert page.locator("#operation .op-channel").count() == 8
    assert page.locator("#operation .op-sums li").count() == 64
    page.get_by_role("button", name="Show all 64 input channels").click()
    assert page.locator("#operation .op-channel").count() == 64
    page.keyboard.press("Escape")


def test_depthwise_and_separable_views_name_their_planes_and_show_every_pointwise_weight(site, page):
    """The page lays out, as Python composed them, the views of the two convolutions that are not plain."""
    import numpy as np

    from conftest import convolutions_model
    from utils.explain import operation_text
    from utils.explain.operations import LayerOperations
    from web.analysis import described
    operations = LayerOperations(convolutions_model(size=16))
    face = np.random.default_rng(8).random((16, 16, 1)).astype(np.float32)
    page.goto(site + "/explore")
    page.evaluate("document.getElementById('zoom').showModal()")   # the dialog the views open in
    render = "view => OPERATION.render(document.getElementById('operation'), view)"
    for layer, channel, first_caption, what in (
            ("depthwise", 7, "input channel 3", "sum of all products"),
            ("separable", 3, "depthwise filter 0 (on input channel 0)", "sum of the pointwise products")):
        view = operations.operation(face, layer, channel, 1, 1)
        page.evaluate(render, described(view, []))
        assert float(page.locator("#operation .op-result").get_attribute("data-value")) == view["result"]
        assert page.locator("#operation .op-equation").inner_text() == (
            operation_text.equation(view, what) + operation_text.rounded(view["result"]))
        sums = operation_text.plane_sums(view)
        assert page.locator("#operation .op-channel figcaption").first.inner_text() == (
            f"{first_caption}: the products add up to {operation_text.rounded(sums[0])}")
    assert page.locator("#operation .op-channel").count() == 8                      # of 24 depthwise filters
    assert page.locator("#operation .op-sums li").nth(23).inner_text() == f"23: {operation_text.rounded(sums[23])}"
    assert page.locator("#operation .op-table tbody tr").count() == 24              # every pointwise weight
    page.get_by_role("button", name="Show all 24 depthwise filters").click()
    assert page.locator("#operation .op-channel").count() == 24
    page.keyboard.press("Escape")


def test_keyboard_only_tab_to_a_map_move_with_arrows_and_open(site, page, photo):
    explore(site, page, photo)
    page.locator("body").focus()
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('map-box')"):
            break
    else:
        raise AssertionError("Tab never reached a feature map")
    label = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert label.startswith("conv1, channel 0 (46 × 46), values ") and "Arrow keys move" in label
    for key in ("ArrowRight", "ArrowRight", "ArrowRight", "ArrowDown", "ArrowDown"):
        page.keyboard.press(key)
    cursor = page.locator("#steps .map-box:focus .cursor")
    assert cursor.is_visible()
    assert page.locator("#pointing").inner_text().startswith("conv1, channel 0, row 2, column 3: it sees rows 2 to 4")
    page.keyboard.press("Enter")
    shows_the_apis_operation(site, page, photo, "conv1 (conv): channel 0, row 2, column 3", "conv1", 0, 2, 3)
    page.keyboard.press("Escape")
    assert page.locator("#zoom").is_hidden()
    assert page.evaluate("document.activeElement.classList.contains('map-box')")   # back where the student was


def test_vector_strips_open_their_units(site, page, photo):
    explore(site, page, photo)
    strip = page.locator("#steps .step.kind-softmax .map-box img")
    side = strip.bounding_box()
    strip.click(position={"x": cell_centre(side["width"], 7, 3), "y": side["height"] / 2})
    shows_the_apis_operation(site, page, photo, "probabilities (softmax): unit 3 (happy)", "probabilities", 3, 0, 0)
    assert page.locator("#operation .op-table tbody tr.chosen td").first.inner_text() == "happy"
    page.keyboard.press("Escape")


def test_hovering_a_position_boxes_its_receptive_field_on_every_face_view(site, page, photo):
    explore(site, page, photo)
    picture = page.locator("#steps .step.kind-conv").nth(2).locator(".map-box img").first   # conv3, 8 x 8
    side = picture.bounding_box()["width"]
    picture.hover(position={"x": cell_centre(side, 8, 3), "y": cell_centre(side, 8, 2)})
    y0, x0, y1, x1 = api_operation(site, page, photo, "conv3", 0, 2, 3)["receptive_field"]["box"]
    assert [y0, x0, y1, x1] == [8, 12, 26, 30]   # 18 x 18 pixels, 4 apart: conv 3, pool 2, conv 3, pool 2, conv 3
    for face in ("#input-image", "#alignment-crop", "#cam-overlay", "#pointer-view img"):
        image = page.locator(face).bounding_box()
        mark = page.locator(face).locator("xpath=following-sibling::span[@class='field-box']")
        assert mark.is_visible(), face
        box = mark.bounding_box()
        scale_x, scale_y = image["width"] / 48, image["height"] / 48
        assert box["x"] - image["x"] == pytest.approx(x0 * scale_x, abs=1), face
        assert box["y"] - image["y"] == pytest.approx(y0 * scale_y, abs=1), face
        assert box["width"] == pytest.approx((x1 - x0) * scale_x, abs=1), face
        assert box["height"] == pytest.approx((y1 - y0) * scale_y, abs=1), face
    page.mouse.move(0, 0)
    assert page.locator("#input-image + .field-box").is_hidden()


# ---- accessibility ------------------------------------------------------------------------------

def serious_violations(page):
    """What axe-core (bundled, offline) finds serious or critical on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe
    violations = Axe().run(page).response["violations"]
    return [f"{rule['id']} ({rule['impact']}): {rule['help']} at {[node['target'] for node in rule['nodes']][:3]}"
            for rule in violations if rule["impact"] in ("serious", "critical")]


def test_axe_finds_nothing_serious_on_analyse_explore_and_live(site, page, photo):
    page.goto(site + "/")
    page.set_input_files("#file", str(photo))
    page.click("#gradcam")
    page.wait_for_function("() => document.querySelector('.face .cam img') && "
                           "document.querySelector('.face .cam img').src.startsWith('data:image/png')")
    assert serious_violations(page) == []
    explore(site, page, photo)
    assert serious_violations(page) == []
    page.locator("#steps .step.kind-pool .map-box").first.click()
    page.locator("#operation .op-result").wait_for()
    assert serious_violations(page) == []   # the operation dialog
    page.keyboard.press("Escape")
    page.goto(site + "/live")
    assert serious_violations(page) == []


def test_a_very_large_photo_gets_its_boxes_where_its_faces_are(site, page, astronaut_bgr, tmp_path):
    """A JPEG over 4096 px is read at half size, on the server as in the browser: its boxes come back in
    those pixels, and the page must scale them onto the full-size photo."""
    photo = tmp_path / "big.jpg"
    cv2.imwrite(str(photo), cv2.resize(astronaut_bgr, (4400, 4400)), [cv2.IMWRITE_JPEG_QUALITY, 80])
    page.goto(site + "/")
    page.set_input_files("#file", str(photo))
    card = page.locator(".face").first
    card.locator(".label").wait_for()
    answer = page.evaluate("""async () => {
        const form = new FormData();
        form.append('file', document.getElementById('file').files[0]);
        form.append('detector', EMO.detector());
        return (await fetch('/api/predict', {method: 'POST', body: form})).json(); }""")
    assert answer["image"]["width"] == 2200       # shrunk to half size
    face = answer["faces"][0]
    on_photo = dict(face, box=[round(v * 2) for v in face["box"]])
    assert_boxed(page, "#photo", on_photo, card.locator(".label").text_content(), reach=8)
