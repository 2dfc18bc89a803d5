"""The in-browser engine in headless Chromium (WebAssembly, one thread): a video frame's cost, the Live
page's frame rate, what the server hears meanwhile, and a class photo's thorough search beside Python's.

    python bench/bench_browser.py [--seconds 60] [--photo-repeats 3]

Starts the site in a thread (the shipped emotion model, exported for the browser first if stale) and
Debian's Chromium with a fake 640x480 camera at 30 frames/s showing one face (the astronaut on grey,
as bench_web.py sends it). Prints:

- milliseconds per frame in the engine's video analyser, on the camera before Live starts (detection:
  a whole-frame "fast" search every 10th frame, the face followed near its box between;
  classification: the upright crop, THE preprocessing and the model on the face and its mirror; all,
  reading the camera's pixels included), over 100 frames;
- the Live page's own loop: frames analysed per second over ``--seconds`` of Live, and every request
  the server received meanwhile (none but static files, if any: frames stay in the browser);
- a 3000x2000 class photo (30 faces of 100 px): the Analyse page's thorough search and labels in the
  browser against Python's float32 path (``Predictor.predict_image``), median of the repeats.
"""
import argparse
import base64
import collections
import os
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
from bench.bench_web import one_face_jpeg  # noqa: E402
from conftest import ASTRONAUT_FACE_BOX, chromium_or_exit, class_photo, open_page, served  # noqa: E402 (the tests' own)
from test_browser import write_y4m  # noqa: E402 (the browser tests' fake camera)
from utils import defaults  # noqa: E402


def counting_requests(app):
    """``app`` made to note every request it receives: the list ``[(method, path)]`` it fills."""
    heard = []
    inner = app.wsgi_app

    def counting(environ, start_response):
        heard.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return inner(environ, start_response)
    app.wsgi_app = counting
    return heard


FRAME_COSTS = """async ([frames]) => {
    const engine = await EMO.engine();
    const video = document.createElement('video');
    video.srcObject = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}});
    video.muted = true;
    await video.play();
    const analyser = engine.analyser();
    for (let i = 0; i < 10; i++) await engine.analyseFrame(analyser, video, 0.35);   // warm up
    analyser.milliseconds = {detect: 0, predict: 0};
    const start = performance.now();
    for (let i = 0; i < frames; i++) await engine.analyseFrame(analyser, video, 0.35);
    return {detect: analyser.milliseconds.detect / frames, predict: analyser.milliseconds.predict / frames,
            all: (performance.now() - start) / frames, stop: video.srcObject.getTracks().forEach((t) => t.stop())};
}"""

PHOTO = """async ([data, repeats]) => {
    const engine = await EMO.engine();
    const blob = new Blob([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))]);
    const times = [];
    let answer;
    for (let i = 0; i < repeats; i++) {
        const start = performance.now();
        answer = await engine.analysePhoto(await engine.decode(blob), 0.35);
        times.push(performance.now() - start);
    }
    return {times, faces: answer.faces.length};
}"""


def main(argv=None):
    parser = argparse.ArgumentParser(description="The in-browser engine's speed in headless Chromium.")
    parser.add_argument("--seconds", type=float, default=60, help="how long Live runs (default %(default)s)")
    parser.add_argument("--photo-repeats", type=int, default=3)
    args = parser.parse_args(argv)
    chromium_or_exit("bench_browser.py")
    from playwright.sync_api import sync_playwright

    from app import create_app
    from utils.model.predict import Predictor
    from utils.serving.browser_export import export_models
    export_models(defaults.project_path(defaults.MODELS_DIR), defaults.project_path(defaults.BROWSER_DIR))
    app = create_app({"WARM_UP": False})
    heard = counting_requests(app)
    frame = cv2.imdecode(np.frombuffer(one_face_jpeg(), np.uint8), cv2.IMREAD_COLOR)
    from skimage import data
    astronaut = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    photo, _ = class_photo([(astronaut, ASTRONAUT_FACE_BOX)], 100, (3000, 2000))
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright, served(app) as url:
        camera = os.path.join(folder, "camera.y4m")
        write_y4m(camera, frame, frames=30, fps=30)
        browser, page = open_page(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                                  f"--use-file-for-fake-video-capture={camera}")
        page.set_default_timeout(120_000)
        page.goto(url + "/live")
        page.evaluate("localStorage.setItem('engine', 'browser')")
        costs = page.evaluate(FRAME_COSTS, [100])
        page.click("#start")
        page.wait_for_function("() => Number(document.getElementById('live-result').dataset.frames) >= 10")
        heard.clear()
        first = int(page.locator("#live-result").get_attribute("data-frames"))
        start = time.perf_counter()
        page.wait_for_timeout(args.seconds * 1000)
        frames = int(page.locator("#live-result").get_attribute("data-frames")) - first
        elapsed = time.perf_counter() - start
        during = collections.Counter(heard)
        page.click("#stop")
        encoded = base64.b64encode(cv2.imencode(".png", photo)[1].tobytes()).decode()
        in_browser = page.evaluate(PHOTO, [encoded, args.photo_repeats])
        browser.close()
    predictor = Predictor.from_path(defaults.project_path(defaults.EMOTION_MODEL), precision="float32")
    python_times = []
    for _ in range(args.photo_repeats):
        start = time.perf_counter()
        found = predictor.predict_image(photo)
        python_times.append((time.perf_counter() - start) * 1000)

    print("In headless Chromium, WebAssembly on one thread (LiteRT.js), a 640x480 camera with one face:")
    print(f"  ms per frame: detection {costs['detect']:.1f}, classification {costs['predict']:.1f}, "
          f"all {costs['all']:.1f} (over 100 frames)")
    print(f"  Live loop: {frames / elapsed:.1f} frames/s over {elapsed:.0f} s (the camera gives 30)")
    print(f"  requests to the server during Live: {sum(during.values())}"
          + "".join(f"\n    {count} x {method} {path}" for (method, path), count in during.items()))
    print("A 3000x2000 class photo, 30 faces of 100 px, thorough search and labels:")
    print(f"  browser {statistics.median(in_browser['times']) / 1000:.2f} s ({in_browser['faces']} faces), "
          f"Python float32 {statistics.median(python_times) / 1000:.2f} s ({len(found)} faces)")
    return 0


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
