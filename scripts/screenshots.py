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
import threading

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# The class photo: the first CLASS_PEOPLE people in rows on a light background, each showing the next of these
# expressions in turn (another photo of theirs when they have none of it).
CLASS_PEOPLE = 8
CLASS_COLUMNS = 4
CLASS_EXPRESSIONS = ("happy", "surprised", "sad", "normal", "sleepy", "wink")
GALLERY_LOOK = 60   # gallery faces tried in turn for one the network reads wrongly without being unsure


def astronaut(folder):
    from skimage import data
    path = os.path.join(folder, "astronaut.jpg")
    cv2.imwrite(path, np.ascontiguousarray(data.astronaut()[:, :, ::-1]))
    return path


def class_photo(people, folder, side=240):
    """One photo of each of the first :data:`CLASS_PEOPLE` people in ``people`` (one folder per person;
    the expressions of :data:`CLASS_EXPRESSIONS` in turn, by file name), in rows of :data:`CLASS_COLUMNS`
    on a light background: a class photo of people who agreed to be in one. None when the folder is
    missing or holds no photos."""
    if not people or not os.path.isdir(people):
        return None
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
        if ranked:
            chosen.append(read_image(os.path.join(folder_path, ranked[0])))
    if not chosen:
        return None
    rows = -(-len(chosen) // CLASS_COLUMNS)
    gap = side // 8
    canvas = np.full((rows * (side + gap) + gap, CLASS_COLUMNS * (side + gap) + gap, 3), 235, np.uint8)
    for index, image in enumerate(chosen):
        scale = side / max(image.shape[:2])
        resized = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        top = gap + (index // CLASS_COLUMNS) * (side + gap) + (side - resized.shape[0]) // 2
        left = gap + (index % CLASS_COLUMNS) * (side + gap) + (side - resized.shape[1]) // 2
        canvas[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    path = os.path.join(folder, "class.jpg")
    cv2.imwrite(path, canvas)
    return path


def write_y4m(path, image_bgr, frames=10):
    """A short raw video of one still photo: Chromium's fake camera plays it in a loop."""
    image = cv2.resize(image_bgr, (640, 480))
    frame = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as handle:
        handle.write(b"YUV4MPEG2 W640 H480 F5:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            handle.write(b"FRAME\n" + frame)


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
    from werkzeug.serving import make_server

    from app import create_app
    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
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
    finally:
        server.shutdown()


def live_picture(playwright, site, camera, out):
    """The Live page labelling Chromium's fake camera, one layer's maps updating beside the label."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=BROWSER_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                             f"--use-file-for-fake-video-capture={camera}"])
    page = browser.new_page(viewport={"width": 1280, "height": 860})
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "screenshots"))
    parser.add_argument("--people", default=os.path.join(ROOT, "dataset", "people"),
                        help="one folder of photos per person, put together as the class photo (skipped when missing)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        photo = astronaut(folder)
        group = class_photo(args.people, folder)
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
    sys.exit(main())
