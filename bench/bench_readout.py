"""How long fitting a personal read-out takes, in Python and in the browser, for calibrations of 2, 4 and 7 expressions.

    EMODETECT_PRECISION=float32 python bench/bench_readout.py [--fps 25] [--repeats 5]

One person's frames as the Live page collects them: each expression's frames for the seconds a
calibration fits on (``utils.live.calibration``: the hold, less the second held back) at ``--fps``
frames a second. The faces are a Yale person's photos of each expression (``dataset/people/subject01``,
where ``make data PEOPLE=`` puts the Yale faces) moved and lit frame by frame as
``scripts/moving_face_frames.py`` moves them, their last features computed by the shipped model;
without the Yale faces, the astronaut's face in as many looks
(mirrored, darker, turned). Prints, for each calibration, the frames fitted on, the L-BFGS steps, and the
median milliseconds of ``--repeats`` fits in Python (``utils.model.readout.fit``) and in headless Chromium
(``static/engine/readout.js``, the same steps; the site served from a thread), and how far apart the
two answers are.
"""
import argparse
import os
import statistics
import sys

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from moving_face_frames import frame as moved_frame  # noqa: E402
from conftest import chromium_or_exit, open_page, served  # noqa: E402
from utils import defaults  # noqa: E402
from utils.live import calibration  # noqa: E402

EXPRESSIONS = {2: ["neutral", "happy"], 4: ["neutral", "happy", "sad", "surprise"],
               7: ["neutral", "angry", "disgust", "fear", "happy", "sad", "surprise"]}
YALE_NAMES = {"neutral": "normal", "happy": "happy", "sad": "sad", "surprise": "surprised"}


def looks(expressions):
    """One photo per expression: subject01 of the Yale faces where it has it, else the astronaut in a look of its own."""
    from skimage import data
    astronaut = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    yale = os.path.join(ROOT, defaults.IDENTITY_DATA, "subject01")
    photos = {}
    for index, name in enumerate(expressions):
        path = os.path.join(yale, f"{YALE_NAMES.get(name, '')}.png")
        if os.path.isfile(path):
            photos[name] = cv2.imread(path)
        else:
            turned = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((224, 118), 8 * index - 24, 1.0), (512, 512))
            photos[name] = np.ascontiguousarray((turned[:, ::-1] if index % 2 else turned) * (1 - 0.08 * index)).astype(np.uint8)
    return photos


def person_features(predictor, expressions, per_expression):
    """The features of ``per_expression`` moved and lit frames of each expression, and their labels."""
    rng = np.random.default_rng(0)
    features, labels = [], []
    for name, photo in looks(expressions).items():
        for index in range(per_expression):
            chosen = predictor.choose_faces(moved_frame(photo, index / per_expression, rng), detail="fast")[0]
            features.append(chosen.features)
            labels.append(predictor.classes.index(name))
    return np.stack(features).astype(np.float64), np.array(labels)


BROWSER_FIT = """async ([features, labels, weights, bias, settings, repeats]) => {
    const R = await import(new URL('engine/readout.js', new URL(document.body.dataset.static, location.href)).href);
    const times = [];
    let result = null;
    for (let i = 0; i < repeats; i++) {
        result = R.fit(features, labels, weights, bias, settings);
        times.push(result.milliseconds);
    }
    return {times, iterations: result.iterations, weights: result.weights, bias: result.bias};
}"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=25.0, help="frames analysed a second on the Live page")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    chromium_or_exit("bench_readout.py")
    from playwright.sync_api import sync_playwright

    from app import create_app
    from utils.cpu import describe
    from utils.model import readout
    from utils.model.predict import Predictor
    from utils.serving.browser_export import export_model, is_current
    model, browser_dir = defaults.project_path(defaults.EMOTION_MODEL), defaults.project_path(defaults.BROWSER_DIR)
    if not is_current(model, browser_dir):
        export_model(model, browser_dir)
    predictor = Predictor.from_path(model, precision="float32")
    weights, bias = predictor.last_layer()
    per_expression = int(round((calibration.HOLD - calibration.HELD_BACK) * args.fps))
    app = create_app({"DEFAULT_MODEL": model, "BROWSER_DIR": browser_dir, "WARM_UP": False})
    print(f"{per_expression} frames an expression ({calibration.HOLD - calibration.HELD_BACK:g} s at {args.fps:g} "
          f"frames/s); Python on {describe()}; the browser: headless Chromium, one thread")
    with served(app) as url, sync_playwright() as playwright:
        browser, page = open_page(playwright)
        page.goto(url + "/")
        for count, expressions in EXPRESSIONS.items():
            features, labels = person_features(predictor, expressions, per_expression)
            python = [readout.fit(features, labels, weights, bias) for _ in range(args.repeats)]
            ours = page.evaluate(BROWSER_FIT, [features.tolist(), labels.tolist(), weights.tolist(), bias.tolist(),
                                               readout.fit_settings(), args.repeats])
            apart = max(np.abs(np.array(ours["weights"]) - python[0].weights).max(),
                        np.abs(np.array(ours["bias"]) - python[0].bias).max())
            print(f"{count} expressions, {len(labels)} frames: Python {statistics.median(f.seconds for f in python) * 1000:.1f} ms "
                  f"({python[0].iterations} steps), browser {statistics.median(ours['times']):.1f} ms "
                  f"({ours['iterations']} steps); weights at most {apart:.1e} apart")
        browser.close()


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
