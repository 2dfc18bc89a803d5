"""The pictures of the README and of docs/lesson.md: the site's pages and the desktop window.

    python scripts/screenshots.py [--out docs/screenshots] [--people dataset/people]

Serves the site on a free loopback port with the shipped model and drives Debian's
Chromium through Playwright (as the browser tests do). Most pages show scikit-image's
astronaut photo; the Live page shows her through Chromium's fake camera; the class photo is
put together from one photo of each person in ``--people`` (one folder per person, such as
the Yale faces) and skipped without it; the Gallery's wrongly read face needs FER2013's test
faces in dataset/fer2013/test. The desktop window is drawn under the display in $DISPLAY
(run it with ``xvfb-run -a`` on a machine without a screen).
"""
import argparse
import os
import sys
import tempfile

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
from conftest import class_photo, open_page, served  # noqa: E402 (the browser tests' own, and their class photo)
from test_browser import write_y4m  # noqa: E402 (the browser tests' fake camera)

# The class photo: the first CLASS_PEOPLE people's heads in rows of CLASS_COLUMNS, each showing the next of these
# expressions in turn (another photo of theirs when they have none of it), faces CLASS_FACE_WIDTH px wide on a
# CLASS_WIDTH px wide photo.
CLASS_PEOPLE = 12
CLASS_COLUMNS = 6
CLASS_FACE_WIDTH = 110
CLASS_WIDTH = 1340
CLASS_EXPRESSIONS = ("happy", "surprised", "sad", "normal", "sleepy", "wink")
GALLERY_LOOK = 60   # gallery faces tried in turn for one the network reads wrongly without being unsure


def astronaut(folder):
    from skimage import data
    path = os.path.join(folder, "astronaut.jpg")
    cv2.imwrite(path, np.ascontiguousarray(data.astronaut()[:, :, ::-1]))
    return path


def people_photo(people, folder):
    """One photo of each of the first :data:`CLASS_PEOPLE` people in ``people`` (one folder per person;
    the expressions of :data:`CLASS_EXPRESSIONS` in turn, by file name), put together as the tests'
    class photo (``conftest.class_photo``): a class photo of people who agreed to be in one. Its path,
    or None when the folder is missing or holds no photo with a face."""
    if not people or not os.path.isdir(people):
        return None
    from utils.faces import detect
    from utils.media.decode import IMAGE_SUFFIXES, read_image
    chosen = []
    for index, person in enumerate(sorted(os.listdir(people))[:CLASS_PEOPLE]):
        folder_path = os.path.join(people, person)
        if not os.path.isdir(folder_path):
            continue
        photos = sorted(name for name in os.listdir(folder_path) if name.lower().endswith(IMAGE_SUFFIXES))
        wanted = CLASS_EXPRESSIONS[index % len(CLASS_EXPRESSIONS)]
        ranked = sorted(photos, key=lambda name: (not name.lower().startswith(wanted),
                                                  not name.lower().startswith(CLASS_EXPRESSIONS)))
        image = read_image(os.path.join(folder_path, ranked[0])) if ranked else None
        found = detect.find_faces(image) if image is not None else []
        if found:
            chosen.append((image, found[0].box))
    if not chosen:
        return None
    rows = -(-len(chosen) // CLASS_COLUMNS)
    photo, boxes = class_photo(chosen, CLASS_FACE_WIDTH, (CLASS_WIDTH, CLASS_WIDTH), CLASS_COLUMNS, rows,
                               spread=False)
    bottom = max(y + h for _, y, _, h in boxes) + CLASS_FACE_WIDTH   # below the last row's chins and shoulders
    path = os.path.join(folder, "class.jpg")
    cv2.imwrite(path, photo[:bottom])
    return path


def analysed(page, photo):
    """Upload ``photo`` on the Analyse page (labelled in the browser), ask for Grad-CAM (the photo then goes
    to the server) and wait for every face's."""
    page.set_input_files("#file", photo)
    page.locator(".face .label").first.wait_for()
    if page.locator("#gradcam").is_visible():
        page.click("#gradcam")
    page.wait_for_function("() => [...document.querySelectorAll('.face .cam img')].every(img => img.src.startsWith('data:image/png'))")


def wrongly_read_gallery_face(page, site):
    """Step through the Gallery until a face the network reads differently from its label without being
    unsure of it (no low-confidence warning); False if there is none."""
    page.goto(site + "/gallery")
    if page.locator("#true-label").count() == 0:
        return False
    for index in range(GALLERY_LOOK):
        page.goto(f"{site}/gallery?i={index}")
        if page.locator(".verdict .bad").count() and not page.locator(".gallery-face .warning").count():
            return True
    return False


def site_pictures(photo, out, group=None, camera=None):
    """The pages on ``photo`` (and ``group``, a class photo, when given); the Live page on ``camera``
    (a .y4m video) when given."""
    from playwright.sync_api import sync_playwright

    from app import create_app
    with served(create_app()) as site, sync_playwright() as playwright:
        browser, page = open_page(playwright)
        page.set_viewport_size({"width": 1280, "height": 860})
        page.set_default_timeout(60_000)
        page.goto(site + "/")
        page.check("#keypoints")
        analysed(page, photo)
        page.screenshot(path=os.path.join(out, "analyse.png"))
        page.locator(".explore-link").first.click()
        page.locator("#steps .step.kind-conv .map-box img").first.wait_for()
        page.locator("#alignment").screenshot(path=os.path.join(out, "alignment.png"))
        page.set_viewport_size({"width": 1280, "height": 1200})
        page.evaluate("document.getElementById('overview').previousElementSibling.scrollIntoView()")
        page.evaluate("window.scrollBy(0, -16)")
        page.screenshot(path=os.path.join(out, "explore.png"))
        page.set_viewport_size({"width": 1280, "height": 860})
        conv = page.locator("#steps .step.kind-conv").nth(1).locator(".map-box img").nth(2)
        conv.scroll_into_view_if_needed()
        box = conv.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.4)
        page.locator(".op-result").first.wait_for()
        page.screenshot(path=os.path.join(out, "operation.png"))
        if group:
            page.goto(site + "/")
            page.uncheck("#keypoints")
            analysed(page, group)
            page.screenshot(path=os.path.join(out, "class_photo.png"))
        if wrongly_read_gallery_face(page, site):
            page.screenshot(path=os.path.join(out, "gallery.png"))
        else:
            print("no FER2013 test faces in dataset/fer2013/test (or none read wrongly): gallery.png skipped",
                  file=sys.stderr)
        page.goto(site + "/models")
        page.locator(".model.chosen").screenshot(path=os.path.join(out, "models.png"))
        browser.close()
        if camera:
            live_picture(playwright, site, camera, out)


def live_picture(playwright, site, camera, out):
    """The Live page labelling Chromium's fake camera, one layer's maps updating beside the label."""
    browser, page = open_page(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-video-capture={camera}")
    page.set_viewport_size({"width": 1280, "height": 860})
    page.set_default_timeout(60_000)
    page.goto(site + "/live")
    page.click("#start")
    page.wait_for_function("() => document.getElementById('now').textContent.includes('%')")
    layers = [value for value in page.eval_on_selector_all("#live-layer option", "options => options.map(o => o.value)")
              if value]
    page.select_option("#live-layer", next((name for name in layers if "pool" in name), layers[0]))
    page.wait_for_function("() => document.querySelectorAll('#live-maps img').length > 0")
    page.screenshot(path=os.path.join(out, "live.png"))
    page.click("#stop")
    browser.close()


def desktop_picture(photo, out):
    from PIL import ImageGrab

    from desktop.window import Window
    window = Window(os.path.join(ROOT, "models", "emotion_model.h5"))
    window.root.geometry("1260x760+0+0")

    def wait(condition):
        while not condition():
            window.root.update()
            window.worker.poll()
    wait(lambda: window.session.model is not None and not window.worker.busy)
    window.open_path(photo)
    wait(lambda: window.session.face is not None and not window.worker.busy)
    window.notebook.select(window.tab_frames["Grad-CAM"])
    wait(lambda: "Grad-CAM" in window.figures and not window.worker.busy)
    for _ in range(20):
        window.root.update()
    x, y = window.root.winfo_rootx(), window.root.winfo_rooty()
    ImageGrab.grab(bbox=(x, y, x + window.root.winfo_width(), y + window.root.winfo_height()),
                   xdisplay=os.environ["DISPLAY"]).save(os.path.join(out, "desktop.png"))
    window.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "screenshots"))
    parser.add_argument("--people", default=os.path.join(ROOT, "dataset", "people"),
                        help="one folder of photos per person, put together as the class photo (skipped when missing)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        photo = astronaut(folder)
        group = people_photo(args.people, folder)
        if group is None:
            print(f"no photos of people in {args.people}: class_photo.png skipped", file=sys.stderr)
        camera = os.path.join(folder, "camera.y4m")
        write_y4m(camera, cv2.imread(photo))
        site_pictures(photo, args.out, group, camera)
        if os.environ.get("DISPLAY"):
            desktop_picture(photo, args.out)
        else:
            print("no display: the desktop window's picture is skipped (run under xvfb-run -a)", file=sys.stderr)
    print(f"wrote the pictures in {args.out}")
    return 0


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
