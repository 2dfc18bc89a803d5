"""Shared fixtures: small saved models with their cards, the site built on one, and real faces.

Nothing here needs FER2013 or the network. The models are the seed architecture with
random weights, saved the way train.py saves, so every front end can load them: one with
FER2013's seven classes, one with FER+'s eight.
"""
import contextlib
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from utils import quiet  # noqa: E402

quiet.install()   # the tests' entry point, as run_cli is the tools': before any test imports TensorFlow

from utils.train.fer2013 import FER2013_CLASSES  # noqa: E402
from utils.train.ferplus import FERPLUS_CLASSES  # noqa: E402

FER_CLASSES = list(FER2013_CLASSES)      # the data sets' own readers name the classes; no test types them
EIGHT_CLASSES = list(FERPLUS_CLASSES)    # FER2013's seven, then contempt
# How much the eight-class fixture raises its last class's logit: contempt is what it answers, so a
# front end that drops the eighth class shows another label.
CONTEMPT_LEAD = 3.0


def card_fields(name, classes=FER_CLASSES, arch="baseline", size=48, channels=1, parameters=0):
    """A model card's JSON with the keys DESIGN.md's contract names."""
    return {
        "name": name, "task": "emotion", "classes": list(classes),
        "input": {"height": size, "width": size, "channels": channels},
        "preprocessing": {"color": "gray", "scale": [0, 1], "crop": "aligned"},
        "architecture": arch, "parameters": parameters,
        "training": {"data": "fixture", "train_images": 0, "val_images": 0, "val_fraction": 0.1,
                     "seed": 0, "epochs": 0, "batch_size": 8, "precision": "float32", "command": "fixture"},
        "metrics": {"val_accuracy": 0.5, "test_accuracy": 0.5, "test_per_class": {c: 0.5 for c in classes}},
        "versions": {}, "created": "2026-01-01T00:00:00Z",
    }


def make_card(*args, **kwargs):
    """That card as :class:`utils.model.card.ModelCard`."""
    from utils.model.card import ModelCard
    return ModelCard.from_dict(card_fields(*args, **kwargs))


def project_files():
    """``path -> modification time`` of every file in the project, git-ignored ones included."""
    found = {}
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in (".git", "__pycache__", ".pytest_cache")]
        for name in names:
            path = os.path.join(folder, name)
            found[path] = os.lstat(path).st_mtime_ns
    return found


@pytest.fixture(scope="session", autouse=True)
def nothing_written_into_the_project():
    """Tests write under pytest's ``tmp_path`` only: a file they add or change in the project fails the run."""
    before = project_files()
    yield
    after = project_files()
    changed = sorted(os.path.relpath(path, ROOT) for path, stamp in after.items() if before.get(path) != stamp)
    assert not changed, f"tests wrote into the project: {', '.join(changed[:10])}"


def save_fixture_model(folder, name, classes, raise_last=0.0):
    """A randomly initialised seed CNN for ``classes`` saved in ``folder`` as models/ would hold it
    (NAME.h5 + card); ``raise_last`` is added to the last class's logit bias. Its path."""
    import keras

    from utils.model.architectures import build_model, LOGITS_LAYER
    from utils.model.store import save_model
    keras.utils.set_random_seed(0)
    model = build_model("baseline", (48, 48, 1), len(classes))
    if raise_last:
        kernel, bias = model.get_layer(LOGITS_LAYER).get_weights()
        bias[-1] += raise_last
        model.get_layer(LOGITS_LAYER).set_weights([kernel, bias])
    card = make_card(name, classes, parameters=int(model.count_params()))
    path = str(folder / f"{name}.h5")
    save_model(model, path, card)
    return path


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    """A randomly initialised seed CNN with FER2013's seven classes, saved as models/ would hold it (.h5 + card)."""
    return save_fixture_model(tmp_path_factory.mktemp("models"), "fixture_model", FER_CLASSES)


@pytest.fixture(scope="session")
def eight_class_model_path(tmp_path_factory):
    """The same seed CNN for FER+'s eight classes (contempt last), alone in its folder, its contempt
    logit raised by :data:`CONTEMPT_LEAD` so that contempt wins on most faces."""
    return save_fixture_model(tmp_path_factory.mktemp("models8"), "ferplus_fixture", EIGHT_CLASSES, CONTEMPT_LEAD)


def convolutions_model(classes=FER_CLASSES, size=48):
    """Every kind of convolution the explorer opens, with random weights and biases: plain, grouped,
    depthwise (two filters per input channel) and separable (the same, then a pointwise step); then a
    ReLU layer capped at 6, as MobileNetV2 has."""
    import keras
    from keras import layers

    from utils.model.architectures import LOGITS_LAYER, PROBABILITIES_LAYER
    keras.utils.set_random_seed(7)
    bias = {"bias_initializer": "random_normal"}
    inputs = keras.Input((size, size, 1), name="face")
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv", **bias)(inputs)
    x = layers.Conv2D(6, 3, groups=2, padding="same", name="grouped", **bias)(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu", name="depthwise", **bias)(x)
    x = layers.SeparableConv2D(5, 3, strides=2, depth_multiplier=2, name="separable", **bias)(x)
    x = layers.ReLU(6.0, name="relu6")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    logits = layers.Dense(len(classes), name=LOGITS_LAYER)(x)
    return keras.Model(inputs, layers.Activation("softmax", name=PROBABILITIES_LAYER)(logits), name="convolutions")


@pytest.fixture(scope="module")
def precision():
    """The precision ``predictor`` computes in: what this CPU serves by default. test_predict.py overrides
    this fixture to run its tests in each precision."""
    return "auto"


@pytest.fixture(scope="module")
def predictor(model_path, precision):
    """The session's model as a Predictor, in ``precision``."""
    from utils.model.predict import Predictor
    return Predictor.from_path(model_path, precision=precision)


# ---- the site, as Flask's tutorial tests it: ``app`` and ``client`` ---------------------------------

@pytest.fixture(scope="session")
def make_app(model_path):
    """``make_app(**config)``: a new site, ``config`` on top of the test config: TESTING, the session's model
    as the default one (or ``DEFAULT_MODEL``) and that model's folder as the models folder."""
    from app import create_app

    def make(**config):
        default_model = config.get("DEFAULT_MODEL", model_path)
        return create_app({"TESTING": True, "DEFAULT_MODEL": default_model,
                           "MODELS_DIR": os.path.dirname(default_model), **config})
    return make


@pytest.fixture(scope="module")
def app_config():
    """What a module's ``app`` has on top of the test config: nothing, unless the module overrides this
    fixture (test_app.py adds its test faces, for one)."""
    return {}


@pytest.fixture(scope="module")
def app(make_app, app_config):
    """The module's site, made once: its default model is loaded when it is made, as a worker loads it."""
    return make_app(**app_config)


@pytest.fixture
def client(app):
    """A test client of the module's ``app``."""
    return app.test_client()


@pytest.fixture(scope="module")
def site(app):
    """The module's ``app`` on 127.0.0.1 and a free port, served from a thread for the module's tests: its URL."""
    with served(app) as url:
        yield url


@pytest.fixture(scope="session")
def astronaut_bgr():
    """scikit-image's public-domain astronaut photo (one clear face), as OpenCV BGR."""
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


@contextlib.contextmanager
def served(app):
    """``app`` on 127.0.0.1 and a free port, from a thread, for as long as the block lasts: its URL."""
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@contextlib.contextmanager
def served_folder(folder):
    """``folder`` served by Python's plain static file server (no EmoDetect-Pro code) for as long as the
    block lasts: its URL. What a classroom does with ``make site``'s folder."""
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                               "-d", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = re.search(r"port (\d+)", server.stdout.readline()).group(1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


def free_ports(count):
    """``count`` ports nothing listens on now (bound to port 0, then closed): for the workers of a job and
    the servers the tests and benchmarks start on this machine."""
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def scikit_image_picture(name):
    """One of the pictures scikit-image ships (no download) as OpenCV BGR."""
    from skimage import data
    return np.ascontiguousarray(np.asarray(getattr(data, name)())[:, :, 2::-1])


@pytest.fixture(scope="session")
def blurred_portrait(astronaut_bgr):
    """``(picture, face box)``: the astronaut's head on a blurred photo of a rocket, 640x480, where
    BlazeFace's first pass proposes a false face larger than the real one in the background."""
    import cv2
    background = cv2.resize(cv2.GaussianBlur(scikit_image_picture("rocket"), (0, 0), 8), (640, 480))
    picture = cv2.GaussianBlur(background, (0, 0), 6)
    picture[200:440, 400:610] = astronaut_bgr[20:260, 120:330]
    return picture, (400 + 176 - 120, 200 + 66 - 20, 96, 96)


ASTRONAUT_FACE_BOX = (176, 66, 96, 96)   # where the astronaut's face is in her photo, (x, y, w, h), checked by hand


@pytest.fixture(scope="session")
def astronaut_face_box():
    """:data:`ASTRONAUT_FACE_BOX`."""
    return ASTRONAUT_FACE_BOX


def class_photo(faces, face_width, size, columns=6, rows=5, seed=1, spread=True):
    """``(photo, face boxes)``: a generated class photo of ``size`` (width, height), ``columns`` x ``rows``
    heads on a flat background of a random colour, in a grid from 5% of its width and 10% of its height,
    a head every 15% of its width and 16% of its height. Each head is cut from one of ``faces``
    (``[(picture, (x, y, w, h))]``) with a margin of 0.35 of its face, and scaled so the face is
    ``face_width`` px wide: with ``spread``, every cell filled from the faces in a spread order (the
    same few faces make a crowd); without, each face once, in the order given (a class of people). The
    tests, the benchmarks and the screenshots use it."""
    import cv2
    rng = np.random.default_rng(seed)
    width, height = size
    photo = np.empty((height, width, 3), np.uint8)
    photo[:] = rng.integers(100, 200, 3)
    boxes = []
    for index in range(columns * rows if spread else min(len(faces), columns * rows)):
        picture, (x, y, w, h) = faces[(index * 11) % len(faces)] if spread else faces[index]
        margin, scale = int(w * 0.35), face_width / w
        head = picture[max(0, y - margin):y + h + margin, max(0, x - margin):x + w + margin]
        head = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        row, column = divmod(index, columns)
        top, left = int(height * (0.1 + row * 0.16)), int(width * (0.05 + column * 0.15))
        photo[top:top + head.shape[0], left:left + head.shape[1]] = head
        boxes.append((round(left + min(margin, x) * scale), round(top + min(margin, y) * scale),
                      face_width, round(h * scale)))
    return photo, boxes


# ---- a real browser and a real display -----------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def chromium_or_exit(script):
    """For a benchmark run by hand: without Debian's Chromium, one line naming it and status 2."""
    if not os.path.exists(CHROMIUM):
        print(f"{script}: {CHROMIUM} is missing (apt install chromium)", file=sys.stderr)
        raise SystemExit(2)


def in_ci():
    """Whether the tests run in continuous integration: the ``CI`` environment variable set (.ci/run sets it)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason):
    """A system package a test needs is missing. In CI that fails the test with ``reason``: the browser and
    window tests are the only guard of the JavaScript engine and the desktop window. Elsewhere (a
    developer's machine) the test is skipped with it."""
    if in_ci():
        pytest.fail(f"{reason}; CI runs every test", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium, which the browser tests drive (scripts/install_test_deps.sh installs it): its path."""
    if not os.path.exists(CHROMIUM):
        missing(f"{CHROMIUM} is missing (sudo apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def playwright(chromium):
    """Playwright, for driving Debian's Chromium: a test that asks for it needs Chromium (see :func:`chromium`)."""
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


SCREEN = "1400x900x24"


@pytest.fixture(scope="module")
def display():
    """The X display to use: ``$DISPLAY``, or a private Xvfb started for these tests."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        missing("no display: DISPLAY is unset and Xvfb is not installed (sudo apt-get install xvfb)")
    read_end, write_end = os.pipe()
    # -noreset: otherwise the server restarts, refusing connections, each time its last client leaves.
    server = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0", SCREEN, "-nolisten", "tcp",
                               "-noreset"], pass_fds=[write_end], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], 15)
    number = os.read(read_end, 32).decode().strip() if ready else ""
    try:
        # The pipe stays open while the server runs: a server that cannot write to it dies.
        if not number or not accepts_connections(f"/tmp/.X11-unix/X{number}"):
            server.kill()
            missing("no display: DISPLAY is unset and Xvfb did not start")
        os.environ["DISPLAY"] = f":{number}"
        yield os.environ["DISPLAY"]
        del os.environ["DISPLAY"]
        server.terminate()
        server.wait(timeout=10)
    finally:
        os.close(read_end)


def accepts_connections(path, timeout=15):
    """Whether the X server's socket takes connections yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(path)
                return True
            except OSError:
                time.sleep(0.05)
    return False
