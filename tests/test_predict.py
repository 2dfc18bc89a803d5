"""Predictions: the contract's fields, calibration, whole-image fallback, threads, in both precisions.

Every test that takes ``predictor`` runs once in float32 and once in bfloat16 (emulated, slower,
on a CPU without it), whatever this CPU serves by default. Two answers of one precision agree within
:data:`SAME_PRECISION`; a bfloat16 answer lies from float32's within the tolerance measured for its model
file on 3,589 real faces and pinned, with a margin, in bfloat16_tolerances.json
(``python scripts/measure_bfloat16.py --write`` measures a new or retrained model).
"""
import glob
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import cv2
import keras
import numpy as np
import pytest

from conftest import ROOT
from utils.defaults import EMOTION_MODEL, model_name, MODELS_DIR, project_path
from utils.faces import align, detect
from utils.files import file_sha256
from utils.model.architectures import LOGITS_LAYER
from utils.model.card import Calibration, CardError
from utils.model.predict import PRECISIONS, Predictor, serving_precision
from utils.model.store import load_model
from utils.train import photo_path

# Two answers of one precision differ only in the order float32 sums run in (another batch size or
# kernel): measured under 1e-6 in a probability.
SAME_PRECISION = 1e-5
BFLOAT16_TOLERANCES = os.path.join(ROOT, "tests", "bfloat16_tolerances.json")
SHIPPED_MODELS = sorted(glob.glob(os.path.join(project_path(MODELS_DIR), "*.h5")))


def bfloat16_tolerance(model_path):
    """How far the bfloat16 path of the model at ``model_path`` may lie from its float32 path in a probability:
    as measured on real faces and pinned; KeyError for a model file that was not measured as it is now."""
    with open(BFLOAT16_TOLERANCES) as handle:
        entry = json.load(handle).get(model_name(model_path))
    if entry is None or entry["sha256"] != file_sha256(model_path):
        raise KeyError(f"{model_name(model_path)} has no bfloat16 tolerance measured for its current file: "
                       "python scripts/measure_bfloat16.py --write")
    return entry["tolerance"]


def tolerance(predictor, model_path):
    """How far ``predictor``'s probabilities may lie from exact float32 arithmetic's."""
    return SAME_PRECISION if predictor.precision == "float32" else bfloat16_tolerance(model_path)


def by_hand(logits, temperature=1.0, offsets=0.0):
    """softmax(logits / T + offsets) written out in numpy, in float64."""
    scaled = np.asarray(logits, np.float64) / temperature + offsets
    exponentials = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module", params=PRECISIONS)
def precision(request):
    """Each precision in turn, for ``predictor`` (conftest.py) and ``shipped``."""
    return request.param


@pytest.fixture(scope="module")
def shipped(precision):
    """The shipped emotion model (its card mirrors faces and has a temperature), in ``precision``."""
    return Predictor.from_path(project_path(EMOTION_MODEL), precision=precision)


def test_prediction_follows_the_contract(predictor, astronaut_bgr, astronaut_face_box):
    results = predictor.predict_image(astronaut_bgr)
    assert len(results) == 1
    face = results[0]
    assert set(face) == {"box", "score", "keypoints", "label", "confidence", "probabilities", "uncertain",
                         "whole_image"}
    assert 0.5 < face["score"] <= 1 and len(face["keypoints"]) == 6
    assert list(face["probabilities"]) == predictor.classes
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert face["confidence"] == face["probabilities"][face["label"]]
    assert face["whole_image"] is False
    assert abs(face["box"][0] - astronaut_face_box[0]) < 20


def test_no_face_classifies_the_whole_image_and_says_so(predictor):
    picture = np.random.default_rng(0).integers(80, 100, (100, 120, 3), dtype=np.uint8)
    results = predictor.predict_image(picture)
    assert len(results) == 1 and results[0]["whole_image"] is True
    assert results[0]["box"] == [0, 0, 120, 100] and results[0]["score"] == 0.0 and results[0]["keypoints"] == {}
    whole = predictor.probabilities(predictor.preprocess(picture)[None])[0]
    assert list(results[0]["probabilities"].values()) == pytest.approx(whole, abs=1e-4)


def test_a_face_is_classified_from_its_upright_crop(shipped, astronaut_bgr):
    """The astronaut turned 30 degrees: the crop the prediction came from is upright, with the face's
    keypoints where the canonical face has them (found again in the crop by the detector), and its
    probabilities are the model's on that crop and its mirror, averaged as logits and calibrated,
    computed here with Keras directly in float32."""
    turned = cv2.warpAffine(astronaut_bgr, cv2.getRotationMatrix2D((224, 114), 30, 1.0), astronaut_bgr.shape[1::-1],
                            borderMode=cv2.BORDER_REPLICATE)
    chosen = shipped.choose_face(turned, 0)
    crop = chosen.crop.image
    side = crop.shape[0]
    again = detect.find_faces(photo_path.on_grey_square(crop, side))
    assert len(again) == 1
    seen = {name: ((x - side) * 48 / side, (y - side) * 48 / side) for name, (x, y) in again[0].keypoints.items()}
    canonical = align.canonical_keypoints(48, 48)
    for name in align.FITTED:   # within 2 of the 48 pixels; a crop left turned would put each eye 4 px off
        assert np.hypot(*np.subtract(seen[name], canonical[name])) < 2.0, name
    (rx, ry), (lx, ly) = seen["right_eye"], canonical["right_eye"]
    eye_line = np.degrees(np.arctan2(seen["left_eye"][1] - ry, seen["left_eye"][0] - rx))
    assert abs(eye_line - np.degrees(np.arctan2(canonical["left_eye"][1] - ly, canonical["left_eye"][0] - lx))) < 4

    face = cv2.resize(crop, (48, 48), interpolation=cv2.INTER_AREA).astype(np.float32)[None, :, :, None] / 255
    logits_of = keras.Model(shipped.model.input, shipped.model.get_layer(LOGITS_LAYER).output)
    logits = np.asarray(logits_of.predict_on_batch(np.concatenate([face, face[:, :, ::-1]])), np.float64).mean(axis=0)
    expected = by_hand(logits, shipped.card.calibration.temperature)
    served = np.array(list(chosen.prediction["probabilities"].values()))
    np.testing.assert_allclose(served, expected, atol=tolerance(shipped, project_path(EMOTION_MODEL)) + 5e-5)  # + JSON's rounding
    assert chosen.prediction["label"] == shipped.classes[int(np.argmax(expected))]
    assert chosen.count == 1 and chosen.prediction["whole_image"] is False
    with pytest.raises(ValueError, match="there is no face 1: the image has 1 face"):
        shipped.choose_face(turned, 1)


def test_a_prediction_given_back_as_json_gives_the_same_answer(predictor, astronaut_bgr):
    """The JSON's keypoints are rounded to a tenth of a pixel: the crop barely moves, in either precision."""
    face = predictor.predict_image(astronaut_bgr)[0]
    again = predictor.predict_face(astronaut_bgr, face)["probabilities"]
    assert list(again.values()) == pytest.approx(list(face["probabilities"].values()), abs=2e-3)


def test_threshold_marks_uncertain_faces(predictor, astronaut_bgr):
    assert predictor.predict_image(astronaut_bgr, threshold=1.01)[0]["uncertain"] is True
    assert predictor.predict_image(astronaut_bgr, threshold=0.0)[0]["uncertain"] is False


def test_temperature_from_the_card_softens_probabilities(model_path, astronaut_bgr):
    model, card = load_model(model_path)
    plain = Predictor(model, card)
    card = replace(card, calibration=Calibration(temperature=3.0))
    calibrated = Predictor(model, card)
    face = plain.preprocess(plain.face_crops(astronaut_bgr)[1][0].image)[None]
    logits = plain.logits(face)
    np.testing.assert_allclose(calibrated.probabilities(face), by_hand(logits, 3.0), rtol=1e-5)
    assert calibrated.probabilities(face).max() < plain.probabilities(face).max()


def test_logit_offsets_from_the_card_are_added_after_the_temperature(model_path, astronaut_bgr):
    """probabilities = softmax(logits / T + offsets), the offsets named by class in the card (one left out: 0)."""
    model, card = load_model(model_path)
    plain = Predictor(model, card, precision="float32")
    named = {"angry": 0.5, "sad": 1.25, "neutral": -2.0}
    offset = Predictor(model, replace(card, calibration=Calibration(temperature=2.0, logit_offsets=named)),
                       precision="float32")
    face = plain.preprocess(plain.face_crops(astronaut_bgr)[1][0].image)[None]
    logits = plain.logits(face)
    offsets = np.array([named.get(name, 0.0) for name in card.classes])
    expected = by_hand(logits, 2.0, offsets)
    np.testing.assert_allclose(offset.probabilities(face), expected, rtol=1e-5)
    np.testing.assert_allclose(offset.calibrated(logits), expected, rtol=1e-9)
    assert offset.predict_image(astronaut_bgr)[0]["probabilities"]["sad"] == pytest.approx(expected[0][4], abs=1e-4)


def test_offsets_for_a_class_the_card_lacks_are_refused(model_path):
    _, card = load_model(model_path)
    with pytest.raises(CardError, match="'calibration.logit_offsets' names classes the card does not have: contempt"):
        replace(card, calibration=Calibration(temperature=1.0, logit_offsets={"contempt": 1.0}))


def test_batch_of_faces_matches_single_faces(predictor):
    batch = np.random.default_rng(1).random((5, 48, 48, 1), dtype=np.float32)
    together = predictor.probabilities(batch)
    one_by_one = np.concatenate([predictor.probabilities(face[None]) for face in batch])
    np.testing.assert_allclose(together, one_by_one, rtol=0, atol=SAME_PRECISION)


def test_safe_from_several_threads(predictor, astronaut_bgr):
    expected = predictor.predict_image(astronaut_bgr)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: predictor.predict_image(astronaut_bgr), range(16)))
    assert all(answer == expected for answer in answers)


def test_every_shipped_model_has_a_bfloat16_tolerance_measured_on_its_current_file():
    assert SHIPPED_MODELS
    for path in SHIPPED_MODELS:
        assert bfloat16_tolerance(path) > 0, path


def astronaut_faces(predictor, astronaut_bgr):
    """The model's inputs for the astronaut's face, as it is, mirrored, turned, darker, lighter and blurred."""
    pictures = [astronaut_bgr, astronaut_bgr[:, ::-1], cv2.convertScaleAbs(astronaut_bgr, alpha=0.6),
                cv2.convertScaleAbs(astronaut_bgr, alpha=1.3, beta=10), cv2.GaussianBlur(astronaut_bgr, (0, 0), 2)]
    pictures += [cv2.warpAffine(astronaut_bgr, cv2.getRotationMatrix2D((224, 114), degrees, 1.0), (512, 512),
                                borderMode=cv2.BORDER_REPLICATE) for degrees in (-25, 15, 35)]
    return np.stack([predictor.choose_face(picture).input for picture in pictures])


@pytest.mark.parametrize("path", SHIPPED_MODELS, ids=model_name)
def test_bfloat16_serving_agrees_with_float32_on_real_faces(path, astronaut_bgr):
    """The bfloat16 copy computes in bfloat16 from the same weights and lies within the model's pinned tolerance;
    it gives the same label wherever float32's first two classes are further apart than that tolerance twice."""
    model, card = load_model(path)
    exact = Predictor(model, card, precision="float32")
    fast = Predictor(model, card, precision="bfloat16")
    convolutions = [layer for layer in fast._logits.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions and all(layer.compute_dtype == "bfloat16" for layer in convolutions)
    assert fast._logits.get_layer(LOGITS_LAYER).compute_dtype == "float32"
    assert fast.model is model and all(layer.compute_dtype == "float32" for layer in model.layers)
    faces = astronaut_faces(exact, astronaut_bgr)
    wanted, got = exact.probabilities(faces), fast.probabilities(faces)
    assert not np.array_equal(wanted, got)                      # it really computed differently
    allowed = bfloat16_tolerance(path)
    np.testing.assert_allclose(got, wanted, rtol=0, atol=allowed)
    first, second = np.sort(wanted, axis=1)[:, :-3:-1].T
    clear = first - second > 2 * allowed
    assert clear.sum() >= len(faces) // 2
    assert np.array_equal(got.argmax(axis=1)[clear], wanted.argmax(axis=1)[clear])


@pytest.mark.parametrize("variable, native, served", [
    ("", True, "bfloat16"), ("", False, "float32"), ("float32", True, "float32"),
    ("bfloat16", False, "bfloat16"), (" BFloat16 ", False, "bfloat16"), ("auto", True, "bfloat16")])
def test_the_environment_chooses_what_auto_serves(monkeypatch, variable, native, served):
    monkeypatch.setenv("EMODETECT_PRECISION", variable)
    monkeypatch.setattr("utils.model.predict.native_bfloat16", lambda: native)
    assert serving_precision("auto") == served
    assert serving_precision("float32") == "float32"   # an explicit choice wins over the environment


def test_a_wrong_precision_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("EMODETECT_PRECISION", "float16")
    with pytest.raises(ValueError, match="EMODETECT_PRECISION must be one of float32, bfloat16 or auto, not 'float16'"):
        serving_precision("auto")
    monkeypatch.delenv("EMODETECT_PRECISION")
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        serving_precision("half")
