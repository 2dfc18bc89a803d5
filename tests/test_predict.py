"""Predictions: the contract's fields, calibration, whole-image fallback, threads."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from utils.models import load_model
from utils.predict import Predictor, softmax


@pytest.fixture(scope="module")
def predictor(model_path):
    return Predictor.from_path(model_path)


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


def test_a_face_is_classified_from_its_upright_crop(predictor, astronaut_bgr):
    """The prediction is the model's answer on the aligned crop, not on the box."""
    face = predictor.predict_image(astronaut_bgr)[0]
    crop = predictor.crop(astronaut_bgr, face)
    expected = predictor.probabilities(predictor.preprocess(crop.image)[None])[0]
    assert list(face["probabilities"].values()) == pytest.approx(expected, abs=1e-4)
    # Again from the JSON (keypoints rounded to a tenth of a pixel): the same answer.
    again = predictor.predict_face(astronaut_bgr, face)["probabilities"]
    assert list(again.values()) == pytest.approx(list(face["probabilities"].values()), abs=2e-3)
    chosen = predictor.choose_face(astronaut_bgr, 0)
    assert chosen.count == 1 and chosen.prediction["probabilities"] == face["probabilities"]
    with pytest.raises(ValueError, match="there is no face 1: the image has 1 face"):
        predictor.choose_face(astronaut_bgr, 1)


def test_threshold_marks_uncertain_faces(predictor, astronaut_bgr):
    assert predictor.predict_image(astronaut_bgr, threshold=1.01)[0]["uncertain"] is True
    assert predictor.predict_image(astronaut_bgr, threshold=0.0)[0]["uncertain"] is False


def test_temperature_from_the_card_softens_probabilities(model_path, astronaut_bgr):
    model, card = load_model(model_path)
    plain = Predictor(model, card)
    card = dict(card, calibration={"temperature": 3.0})
    calibrated = Predictor(model, card)
    face = plain.preprocess(plain.face_crops(astronaut_bgr)[1][0].image)[None]
    logits = plain.logits(face)
    np.testing.assert_allclose(calibrated.probabilities(face), softmax(logits, 3.0), rtol=1e-5)
    assert calibrated.probabilities(face).max() < plain.probabilities(face).max()


def test_batch_of_faces_matches_single_faces(predictor):
    batch = np.random.default_rng(1).random((5, 48, 48, 1), dtype=np.float32)
    together = predictor.probabilities(batch)
    one_by_one = np.concatenate([predictor.probabilities(face[None]) for face in batch])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_safe_from_several_threads(predictor, astronaut_bgr):
    expected = predictor.predict_image(astronaut_bgr)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: predictor.predict_image(astronaut_bgr), range(16)))
    assert all(answer == expected for answer in answers)


def test_bfloat16_serving_agrees_with_float32(model_path):
    """The bfloat16 copy computes in bfloat16 from the same weights and gives nearly the same answers."""
    model, card = load_model(model_path)
    exact = Predictor(model, card, precision="float32")
    fast = Predictor(model, card, precision="bfloat16")
    convolutions = [layer for layer in fast._logits.layers if layer.name.startswith("conv")]
    assert convolutions and all(layer.compute_dtype == "bfloat16" for layer in convolutions)
    assert fast._logits.get_layer("logits").compute_dtype == "float32"
    assert fast.model is model and all(layer.compute_dtype == "float32" for layer in model.layers)
    faces = np.random.default_rng(2).random((32, 48, 48, 1), dtype=np.float32)
    wanted, got = exact.probabilities(faces), fast.probabilities(faces)
    assert not np.array_equal(wanted, got)                      # it really computed differently
    np.testing.assert_allclose(got, wanted, atol=0.02)
    assert np.mean(got.argmax(axis=1) == wanted.argmax(axis=1)) >= 0.9
