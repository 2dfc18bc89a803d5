"""A real browser on the site: upload a photo, read the label and the bars, explore the CNN.

Python Playwright drives Debian's Chromium (``apt install chromium``), headless and
offline; Playwright's own browser downloads are never used. The site runs in a thread
on a free loopback port. Screenshots go to each test's ``tmp_path``: tests write nothing into the project.
"""
import os
import threading

import cv2
import pytest

from app import create_app

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing (install Debian's chromium package)")


@pytest.fixture(scope="module")
def site(model_path):
    """The site on 127.0.0.1 and a free port, served from a thread for the module's tests."""
    from werkzeug.serving import make_server
    app = create_app({"DEFAULT_MODEL": model_path, "MODELS_DIR": os.path.dirname(model_path)})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        yield playwright


def open_page(playwright, *extra_args):
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", *extra_args])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    return browser, page


@pytest.fixture(scope="module")
def page(playwright):
    browser, page = open_page(playwright)
    yield page
    browser.close()


def write_y4m(path, image_bgr, frames=10):
    """A short raw video of one still photo: Chromium's fake camera plays it in a loop."""
    image = cv2.resize(image_bgr, (640, 480))
    frame = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as handle:
        handle.write(b"YUV4MPEG2 W640 H480 F5:1 Ip A1:1 C420jpeg\n")
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
    assert len(labels) == 7 and card.locator(".label").text_content() in labels
    assert card.locator(".bar.top .name").text_content() == card.locator(".label").text_content()
    page.wait_for_function("document.querySelector('.face .cam img').src.startsWith('data:image/png')")
    assert "1 face found" in page.locator("#status").inner_text()
    page.screenshot(path=tmp_path / "analyse.png", full_page=True)

    card.locator(".explore-link").click()
    page.wait_for_url("**/explore?face=0")
    first_map = page.locator("#steps .step.kind-conv .map").first
    first_map.wait_for()
    assert page.locator("#overview .chip").count() == len(page.locator("#steps .step").all())
    assert page.locator("#steps .step").first.locator(".shape").inner_text() == "output 48 × 48 × 1"
    first_map.click()
    zoom = page.locator("#zoom")
    zoom.wait_for(state="visible")
    assert "channel 0" in page.locator("#zoom-caption").inner_text()
    page.screenshot(path=tmp_path / "explore.png", full_page=True)
    assert (tmp_path / "explore.png").stat().st_size > 10_000


def test_live_page_labels_the_camera_feed(site, playwright, astronaut_bgr, tmp_path):
    """Chromium's fake camera plays the astronaut; the page must box and label her face."""
    video = tmp_path / "camera.y4m"
    write_y4m(video, astronaut_bgr)
    browser, page = open_page(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-video-capture={video}")
    try:
        page.goto(site + "/live")
        page.click("#start")
        page.wait_for_function("document.getElementById('now').textContent.includes('%') || document.getElementById('status').textContent.length > 0")
        assert page.locator("#status").inner_text() == ""
        assert page.locator("#live-bars .bar").count() == 7
        page.screenshot(path=tmp_path / "live.png")
        page.click("#stop")
    finally:
        browser.close()


def test_live_page_says_when_there_is_no_camera(site, page):
    page.goto(site + "/live")
    page.click("#start")
    page.wait_for_function("document.getElementById('status').textContent.length > 0")
    assert "camera" in page.locator("#status").inner_text().lower()
