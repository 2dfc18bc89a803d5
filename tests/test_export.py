"""The browser engine's files are derived, never hand-made: the exported model computes what Keras
computes on real faces, an export knows when its model has changed, the constants are Python's, and the
vendored LiteRT.js runtime is the pinned one."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from utils import defaults
from utils.media import colour, encode
from utils.serving.browser_export import (GRAY_SHIFT, GRAY_WEIGHTS, engine_constants, export_model, export_models,
                                          is_current)

MODEL = defaults.project_path(defaults.EMOTION_MODEL)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("browser"))
    return folder, export_model(MODEL, folder)


def real_faces(astronaut_bgr):
    """Model inputs of real faces: the astronaut, upright and turned, and mirrored copies."""
    from utils.model.predict import Predictor
    predictor = Predictor.from_path(MODEL, precision="float32")
    turned = cv2.warpAffine(astronaut_bgr, cv2.getRotationMatrix2D((224, 118), 30, 1.0), (512, 512))
    inputs = [chosen.input for picture in (astronaut_bgr, turned, astronaut_bgr[:, ::-1])
              for chosen in predictor.choose_faces(picture)]
    return predictor, np.stack(inputs)


def test_the_exported_model_computes_what_keras_does_on_real_faces(exported, astronaut_bgr):
    """The batch-2 model (a face and its mirror: the last features and the logits) and the layer-maps
    model, run by LiteRT as the browser runs them, against Keras float32."""
    import keras
    from ai_edge_litert.interpreter import Interpreter
    folder, card = exported
    predictor, inputs = real_faces(astronaut_bgr)
    logits = Interpreter(os.path.join(folder, card["browser"]["logits"])).get_signature_runner()
    outputs = card["browser"]["outputs"]
    features_model = keras.Model(predictor.model.input, predictor.model.get_layer("logits").input)
    worst = {"features": 0.0, "logits": 0.0}
    for face in inputs:
        pair = np.stack([face, face[:, ::-1]])
        ours = logits(args_0=pair)
        for part, keras_part in (("logits", predictor._logits), ("features", features_model)):
            expected = np.asarray(keras_part.predict_on_batch(pair))
            worst[part] = max(worst[part], float(np.abs(ours[outputs[part]] - expected).max()))
    assert worst["logits"] < 1e-4 and worst["features"] < 1e-4, worst
    layers = Interpreter(os.path.join(folder, card["browser"]["layers_file"])).get_signature_runner()
    outputs = layers(args_0=inputs[:1])
    for layer in card["browser"]["layers"][::7]:
        expected = predictor.model.get_layer(layer["name"]).output
        keras_output = keras.Model(predictor.model.input, expected).predict_on_batch(inputs[:1])
        assert list(outputs[layer["output"]].shape[1:]) == layer["shape"]
        assert np.abs(outputs[layer["output"]] - keras_output).max() < 1e-3 * max(1.0, np.abs(keras_output).max())


def test_the_export_carries_the_last_layer_a_read_out_starts_from(exported):
    from utils.model.predict import Predictor
    _, card = exported
    weights, bias = Predictor.from_path(MODEL, precision="float32").last_layer()
    assert np.array_equal(card["browser"]["head"]["weights"], weights) and np.array_equal(card["browser"]["head"]["bias"], bias)
    assert np.shape(card["browser"]["head"]["weights"]) == (256, len(card["classes"]))
    assert card["weights_sha256"] == json.loads(open(MODEL.replace(".h5", ".json")).read())["weights_sha256"]


def test_an_export_knows_when_its_model_has_changed(exported, tmp_path):
    folder, _ = exported
    models = tmp_path / "models"
    models.mkdir()
    for suffix in (".h5", ".json"):
        shutil.copy(os.path.splitext(MODEL)[0] + suffix, models / f"emotion_model{suffix}")
    copy = str(models / "emotion_model.h5")
    for name in os.listdir(folder):
        shutil.copy(os.path.join(folder, name), tmp_path / name)
    assert is_current(copy, str(tmp_path))
    assert export_models(str(models), str(tmp_path), say=lambda _: None) == []   # current: left alone
    card = json.loads((models / "emotion_model.json").read_text())
    card["calibration"]["temperature"] = 2.0
    (models / "emotion_model.json").write_text(json.dumps(card))
    assert not is_current(copy, str(tmp_path))


def test_the_gray_weights_are_opencvs_for_every_colour():
    """Every one of the 16.7 million 8-bit colours, through the engine's integer formula and cv2."""
    codes = np.arange(1 << 24, dtype=np.uint32)
    bgr = np.stack([codes & 255, (codes >> 8) & 255, codes >> 16], axis=-1).astype(np.uint8).reshape(4096, 4096, 3)
    blue, green, red = (bgr[:, :, k].astype(np.int64) for k in range(3))
    ours = (red * GRAY_WEIGHTS[0] + green * GRAY_WEIGHTS[1] + blue * GRAY_WEIGHTS[2] + (1 << (GRAY_SHIFT - 1))) >> GRAY_SHIFT
    assert np.array_equal(ours, colour.to_gray(bgr))


def test_the_engine_constants_say_what_is_known_of_blazeface_faces_and_viridis():
    """Checked against what is known apart from the code that writes them: BlazeFace's anchor grids give
    MediaPipe's 896 anchors (short range, 128 px) and 2304 (full range, 192 px); the canonical face's
    keypoints sit as a face's do, inside its frame; the colour table is viridis (from #440154) as the site's
    own feature maps draw it, bucket by bucket."""
    constants = json.loads(json.dumps(engine_constants()))
    networks = constants["detection"]["networks"]
    anchors = {key: sum((network["side"] // stride) ** 2 * count for stride, count in network["grids"])
               for key, network in networks.items()}
    assert anchors == {"short": 896, "full": 2304}
    assert {key: network["side"] for key, network in networks.items()} == {"short": 128, "full": 192}
    faces = constants["faces"]
    (height, width), points = faces["frame"], faces["keypoints"]
    assert list(points) == constants["detection"]["keypoints"] and set(faces["fitted"]) <= set(points)
    assert all(0 < x < width and 0 < y < height for x, y in points.values())
    assert points["right_ear"][0] < points["right_eye"][0] < points["nose"][0] < points["left_eye"][0] < points["left_ear"][0]
    assert max(points["right_eye"][1], points["left_eye"][1]) < points["nose"][1] < points["mouth"][1]
    viridis = np.array(constants["viridis"])
    assert viridis.shape == (256, 3) and viridis[0].tolist() == [68, 1, 84]
    bucket_centres = (np.arange(256) + 0.5) / 256
    assert np.array_equal(viridis, encode.colour_map(bucket_centres, "viridis", 0.0, 1.0))


def test_every_constant_exported_is_read_by_the_engine():
    """A constant renamed on one side only (or exported for nothing) leaves its name unread in the engine's scripts."""
    scripts = "".join(open(path).read() for path in glob.glob(os.path.join(ROOT, "static", "engine", "*.js")))
    constants = engine_constants()
    names = [*constants, *(name for section in ("detection", "faces", "video") for name in constants[section])]
    unread = [name for name in names if not re.search(rf"\b{name}\b", scripts)]
    assert not unread


def test_the_webassembly_build_the_engine_loads_is_vendored():
    """static/engine/litert.js names the one build it hands to LiteRT.js (defined there only): that script and
    its .wasm are among the vendored, pinned files."""
    (build,) = re.findall(r'^const WASM_BUILD = "([^"]+)";$', open(os.path.join(ROOT, "static", "engine", "litert.js")).read(),
                          re.MULTILINE)
    with open(os.path.join(ROOT, "static", "vendor", "litertjs", "SHA256SUMS")) as handle:
        pinned = {line.split()[1] for line in handle if line.strip()}
    assert {build, os.path.splitext(build)[0] + ".wasm"} <= pinned


def test_the_vendored_runtime_is_the_pinned_one():
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "vendor_litertjs.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
