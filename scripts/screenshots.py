"""The README's pictures: the site's pages and the desktop window on scikit-image's astronaut photo.

    python scripts/screenshots.py [--out docs/screenshots]

Serves the site on a free loopback port with the shipped model and drives Debian's
Chromium through Playwright (as the browser tests do); the desktop window is drawn under
the display in $DISPLAY (run it with ``xvfb-run -a`` on a machine without a screen).
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


def astronaut(folder):
    from skimage import data
    path = os.path.join(folder, "astronaut.jpg")
    cv2.imwrite(path, np.ascontiguousarray(data.astronaut()[:, :, ::-1]))
    return path


def site_pictures(photo, out):
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from app import create_app
    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(60_000)
            page.goto(site + "/")
            page.check("#keypoints")
            page.set_input_files("#file", photo)
            page.locator(".face .label").first.wait_for()
            page.wait_for_function("document.querySelector('.face .cam img').src.startsWith('data:image/png')")
            page.screenshot(path=os.path.join(out, "analyse.png"))
            page.locator(".explore-link").first.click()
            page.locator("#steps .step.kind-conv .map-box img").first.wait_for()
            page.locator("#alignment").screenshot(path=os.path.join(out, "alignment.png"))
            conv = page.locator("#steps .step.kind-conv").nth(1).locator(".map-box img").nth(2)
            conv.scroll_into_view_if_needed()
            box = conv.bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.4)
            page.locator(".op-result").first.wait_for()
            page.screenshot(path=os.path.join(out, "operation.png"))
            browser.close()
    finally:
        server.shutdown()


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
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        photo = astronaut(folder)
        site_pictures(photo, args.out)
        if os.environ.get("DISPLAY"):
            desktop_picture(photo, args.out)
        else:
            print("no display: the desktop window's picture is skipped (run under xvfb-run -a)", file=sys.stderr)
    print(f"wrote the pictures in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
