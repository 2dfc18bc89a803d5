"""The personal read-out in Python: the fit finds the minimum of its objective, stays at the model's weights
when pulled hard, learns frames when pulled little, works with any number of classes; its file belongs to
one model; the predictor serves it; and the guided sequence of "Calibrate to me" collects, holds back,
fits and checks, frame by frame, on a clock the caller gives."""
import json
import re

import numpy as np
import pytest
from scipy.optimize import minimize

from conftest import FER_CLASSES, make_card
from utils.live.calibration import (CalibrationSequence, LiveCalibration, SUGGESTED, durations,
                                    expressions_to_show)
from utils.live.tracking import VideoAnalyser
from utils.model import readout


def frames(classes=7, width=32, per_class=5, shown=None, seed=0):
    """Made-up features: one cluster per class shown, and the last layer of a model that mixes them up."""
    rng = np.random.default_rng(seed)
    shown = list(range(classes)) if shown is None else shown
    centres = rng.uniform(0, 2, (classes, width))
    labels = np.repeat(shown, per_class)
    features = np.maximum(centres[labels] + rng.normal(0, 0.3, (len(labels), width)), 0)
    return features, labels, rng.normal(0, 0.1, (width, classes)), rng.normal(0, 0.3, classes)


def scipy_answer(features, labels, weights, bias, strength):
    """The objective written again, independently, and minimised by SciPy's L-BFGS-B to its tightest."""
    count, width = features.shape
    classes = len(bias)
    start = np.concatenate([weights.ravel(), bias])
    onehot = np.eye(classes)[labels]

    def value(theta):
        logits = features @ theta[:width * classes].reshape(width, classes) + theta[width * classes:]
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        p = np.exp(log_p)
        gradient_logits = (p - onehot) / count
        gradient = np.concatenate([(features.T @ gradient_logits).ravel(), gradient_logits.sum(axis=0)])
        return -np.sum(onehot * log_p) / count + strength / 2 * np.sum((theta - start) ** 2), \
            gradient + strength * (theta - start)
    answer = minimize(value, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-16, "maxiter": 5000})
    return answer.x[:width * classes].reshape(width, classes), answer.x[width * classes:]


@pytest.mark.parametrize("classes, shown", [(7, None), (8, [0, 3, 7]), (5, [1, 4])])
def test_the_fit_finds_the_minimum_scipy_finds(classes, shown):
    features, labels, weights, bias = frames(classes, shown=shown)
    found = readout.fit(features, labels, weights, bias)
    expected_weights, expected_bias = scipy_answer(features, labels, weights, bias, readout.STRENGTH)
    np.testing.assert_allclose(found.weights, expected_weights, atol=1e-5)
    np.testing.assert_allclose(found.bias, expected_bias, atol=1e-5)
    assert found.gradient <= readout.TOLERANCE and 0 < found.iterations < readout.MAX_ITERATIONS
    assert found.weights.shape == (features.shape[1], classes)


def test_pulled_hard_it_stays_the_model_pulled_little_it_learns_the_frames():
    features, labels, weights, bias = frames(7, shown=[2, 5, 6])
    model_says = np.argmax(features @ weights + bias, axis=1)
    assert np.mean(model_says == labels) < 0.7
    stiff = readout.fit(features, labels, weights, bias, strength=1e4)
    assert np.abs(stiff.weights - weights).max() < 1e-3 and np.abs(stiff.bias - bias).max() < 1e-3
    loose = readout.fit(features, labels, weights, bias, strength=1e-3)
    probabilities = readout.softmax_rows(features @ loose.weights + loose.bias)
    assert np.array_equal(probabilities.argmax(axis=1), labels)
    never_shown = [0, 1, 3, 4]
    assert probabilities[:, never_shown].sum(axis=1).max() < 0.05
    # A class never shown keeps near the model's weights: only what the frames show moves much.
    moved = np.abs(loose.weights - weights).mean(axis=0)
    assert moved[never_shown].max() < moved[[2, 5, 6]].min()


@pytest.mark.parametrize("features, labels, message", [
    (np.zeros((0, 32)), [], "no frames"),
    (np.zeros((3, 31)), [0, 1, 2], "do not fit a last layer of 32 features"),
    (np.zeros((2, 32)), [0, 7], "class indices 0 to 6"),
])
def test_the_fit_refuses_what_it_cannot_fit(features, labels, message):
    _, _, weights, bias = frames(7)
    with pytest.raises(ValueError, match=message):
        readout.fit(features, labels, weights, bias)


def made_readout(card=None):
    card = card or make_card("fixture_model", classes=FER_CLASSES)
    card = card if card.weights_sha256 else type(card).from_dict(dict(card.to_dict(), weights_sha256="ab" * 32))
    features, labels, weights, bias = frames(len(card.classes), shown=[3, 6])
    return card, readout.make_readout(card, readout.fit(features, labels, weights, bias), {"happy": 5, "neutral": 5})


def test_a_read_out_file_round_trips_and_belongs_to_one_model(tmp_path):
    card, mine = made_readout()
    path = tmp_path / "me.json"
    readout.save_readout(str(path), mine)
    written = json.loads(path.read_text())
    assert written["weights_sha256"] == card.weights_sha256 and written["classes"] == FER_CLASSES
    assert written["format"] == "emodetect-readout" and written["features"] == 32
    loaded = readout.load_readout(str(path), card)
    assert np.array_equal(loaded.weights, mine.weights) and np.array_equal(loaded.bias, mine.bias)
    assert loaded.frames == {"happy": 5, "neutral": 5}
    other = type(card).from_dict(dict(card.to_dict(), name="other_model", weights_sha256="cd" * 32))
    with pytest.raises(readout.ReadoutError) as refused:
        readout.load_readout(str(path), other)
    assert str(refused.value) == (f"this read-out belongs to model fixture_model (weights {'ab' * 6}), not to "
                                  f"other_model (weights {'cd' * 6}): calibrate again with this model")


@pytest.mark.parametrize("content, message", [
    ("not json at all", "is not a read-out file (not JSON)"),
    ('{"weights": []}', 'it has no "format"'),
    ('{"format": "emodetect-readout", "version": 9}', "version 9 is not one this program reads"),
    ('{"format": "emodetect-readout", "version": 1, "model": "m"}', "incomplete or damaged"),
])
def test_a_damaged_read_out_file_is_refused_in_one_line(tmp_path, content, message):
    card, _ = made_readout()
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(readout.ReadoutError, match=re.escape(message)) as refused:
        readout.load_readout(str(path), card)
    assert "\n" not in str(refused.value)


def test_a_missing_read_out_file_is_named(tmp_path):
    card, _ = made_readout()
    with pytest.raises(FileNotFoundError, match="no read-out file at .*nowhere.json"):
        readout.load_readout(str(tmp_path / "nowhere.json"), card)


def test_a_read_out_whose_weights_do_not_fit_its_classes_is_refused(tmp_path):
    card, mine = made_readout()
    broken = dict(mine.to_dict(), bias=[0.0, 1.0])
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(readout.ReadoutError, match="do not match its features and classes"):
        readout.load_readout(str(tmp_path / "broken.json"), card)


# The predictor with a read-out --------------------------------------------------------------------

def test_the_features_are_the_last_layers_input_mirror_averaged(predictor, astronaut_bgr):
    chosen = predictor.choose_faces(astronaut_bgr)[0]
    weights, bias = predictor.last_layer()
    features, logits = predictor.features_and_logits(chosen.input[None])
    np.testing.assert_allclose(features[0] @ weights + bias, logits[0], atol=2e-3)   # served in bfloat16 or float32
    np.testing.assert_allclose(chosen.features, features[0], atol=1e-6)


def test_with_the_test_time_flip_the_features_are_the_face_and_its_mirror_averaged(predictor, astronaut_bgr):
    from dataclasses import replace

    from utils.model.predict import Predictor
    card = predictor.card
    plain = Predictor(predictor.model, card, precision="float32")
    flipped = Predictor(predictor.model, replace(card, preprocessing=replace(card.preprocessing, test_time_flip=True)),
                        precision="float32")
    face = plain.choose_faces(astronaut_bgr)[0].input
    both = plain.features(np.stack([face, face[:, ::-1]]))
    np.testing.assert_allclose(flipped.features(face[None])[0], both.mean(axis=0), atol=1e-6)
    assert np.abs(both[0] - both[1]).max() > 1e-3    # a face and its mirror do differ


def test_a_predictor_with_a_read_out_serves_its_probabilities_and_the_model_stays(predictor, astronaut_bgr):
    card = predictor.card
    face = predictor.choose_faces(astronaut_bgr)[0]
    width = face.features.shape[0]
    rng = np.random.default_rng(1)
    mine = readout.Readout(card.name, card.weights_sha256, tuple(card.classes), rng.normal(0, 0.3, (width, 7)),
                           rng.normal(0, 1, 7))
    personal = predictor.with_readout(mine)
    expected = readout.softmax_rows(face.features.astype(np.float64) @ mine.weights + mine.bias)
    np.testing.assert_allclose(personal.probabilities(face.input[None])[0], expected, atol=1e-6)
    answer = personal.predict_image(astronaut_bgr)[0]
    assert answer["label"] == FER_CLASSES[int(np.argmax(expected))]
    assert answer["probabilities"] == pytest.approx(dict(zip(FER_CLASSES, np.round(expected, 4))), abs=1e-4)
    assert predictor.readout is None    # the shared predictor is untouched
    np.testing.assert_allclose(predictor.probabilities(face.input[None])[0],
                               predictor.calibrated(predictor.logits(face.input[None]))[0])
    other = readout.Readout("other", "0" * 64, tuple(card.classes), mine.weights, mine.bias)
    with pytest.raises(readout.ReadoutError, match="belongs to model other"):
        predictor.with_readout(other)


# The guided sequence ----------------------------------------------------------------------------

def test_expressions_neutral_first_then_the_chosen_in_the_cards_order():
    assert expressions_to_show(FER_CLASSES, ["surprise", "happy"]) == ["neutral", "happy", "surprise"]
    assert expressions_to_show(FER_CLASSES) == ["neutral", *SUGGESTED]
    eight = FER_CLASSES + ["contempt"]
    assert expressions_to_show(eight, ["contempt", "neutral"]) == ["neutral", "contempt"]
    with pytest.raises(ValueError, match="at least two expressions"):
        expressions_to_show(FER_CLASSES, [])
    with pytest.raises(ValueError, match=r"no expression bored in this model \(it has angry, "):
        expressions_to_show(FER_CLASSES, ["bored"])


def test_a_model_without_neutral_calibrates_on_the_chosen_alone():
    assert expressions_to_show(["angry", "happy", "sad"], ["sad", "happy"]) == ["happy", "sad"]
    with pytest.raises(ValueError, match="at least two"):
        expressions_to_show(["angry", "happy", "sad"], ["sad"])


def test_the_prompts_follow_the_clock():
    sequence = CalibrationSequence(FER_CLASSES, ["neutral", "happy"], countdown=2, hold=3, held_back=1)
    said = [(p.phase, p.expression, round(p.seconds_left, 2), p.step, round(p.progress, 2))
            for p in map(sequence.prompt, [100.0, 101.5, 102.0, 104.5, 105.0, 107.5, 110.0, 130.0])]
    assert said == [("ready", "neutral", 2.0, 1, 0.0), ("ready", "neutral", 0.5, 1, 0.15),
                    ("hold", "neutral", 3.0, 1, 0.2), ("hold", "neutral", 0.5, 1, 0.45),
                    ("ready", "happy", 2.0, 2, 0.5), ("hold", "happy", 2.5, 2, 0.75),
                    ("done", "", 0.0, 2, 1.0), ("done", "", 0.0, 2, 1.0)]
    assert sequence.prompt(101.2).text() == "1/2: show neutral in 1"
    assert sequence.prompt(103.0).text() == "1/2: hold neutral (2.0 s)"
    assert sequence.total_seconds == 10
    with pytest.raises(ValueError, match="held back < hold"):
        durations(hold=1, held_back=1)


class Twin:
    """What a calibration needs of a predictor: the card, the last layer and the card's calibration."""

    def __init__(self, weights, bias, classes=FER_CLASSES):
        self.card = make_card("fixture_model", classes=classes)
        self.card = type(self.card).from_dict(dict(self.card.to_dict(), weights_sha256="ef" * 32))
        self.weights, self.bias = weights, bias

    def last_layer(self):
        return self.weights, self.bias

    def calibrated(self, logits):
        return readout.softmax_rows(logits)


def test_the_sequence_fits_on_all_but_the_held_back_second_and_checks_on_it():
    """Frames 10 a second; the last second of each hold is the check: the model as shipped reads both
    expressions as angry, the read-out reads them as shown."""
    features, labels, weights, bias = frames(7, width=32, per_class=40, shown=[6, 3])   # neutral, happy
    weights[:, 0] += 0.5   # the model says angry for everything
    sequence = CalibrationSequence(FER_CLASSES, ["neutral", "happy"], countdown=1, hold=4, held_back=1)
    steps = []
    for tick in range(110):   # 11 s at 10 frames a second; a face missing now and then
        now = 50 + tick / 10
        prompt = sequence.prompt(now)
        index = (0 if prompt.expression == "neutral" else 40) + tick % 40
        steps.append(sequence.add(now, None if tick % 13 == 0 else features[index]).phase)
    assert steps.count("ready") == 20 and steps.count("hold") == 80 and steps[-1] == "done"
    result = sequence.finish(Twin(weights, bias))
    assert sum(result.fitted_frames.values()) + sum(result.held_back_frames.values()) == len(sequence.frames)
    assert all(9 <= count <= 10 for count in result.held_back_frames.values())
    assert all(27 <= count <= 30 for count in result.fitted_frames.values())
    held = result.held_back_frames
    assert result.before[:, 0].tolist() == [held["neutral"], held["happy"]]   # all angry as shipped
    assert result.after[0, 6] == held["neutral"] and result.after[1, 3] == held["happy"]
    assert result.accuracy(result.before) == 0 and result.accuracy(result.after) == 1
    assert result.readout.frames == result.fitted_frames
    lines = result.table_lines()
    assert lines[1] == "as shipped: 0% right" and "your read-out: 100% right" in lines
    assert lines[-1].startswith(f"fitted on {sum(result.fitted_frames.values())} frames in ")


def test_an_expression_without_a_face_fits_nothing():
    features, _, weights, bias = frames(7, width=32, shown=[6])
    sequence = CalibrationSequence(FER_CLASSES, ["neutral", "sad"], countdown=0, hold=2, held_back=0.5)
    for tick in range(40):
        now = tick / 10
        sequence.add(now, features[0] if sequence.prompt(now).expression == "neutral" else None)
    with pytest.raises(ValueError, match="no face was seen while you showed sad"):
        sequence.finish(Twin(weights, bias))


def test_a_live_calibration_reads_the_analysers_faces_then_serves_the_read_out(astronaut_bgr):
    """On the video analyser's own frames, with the shipped model: the astronaut, shown as neutral and then,
    mirrored and darker, as sad; afterwards the analyser reads with the read-out, and the held-back frames
    come out right. Frames where the tracker only kept the last box (the face was missed) do not count."""
    from utils.defaults import EMOTION_MODEL, project_path
    from utils.model.predict import Predictor
    predictor = Predictor.from_path(project_path(EMOTION_MODEL))
    analyser = VideoAnalyser(predictor, threshold=0.35)
    calibration = LiveCalibration(analyser, ["neutral", "sad"], countdown=0.2, hold=1.0, held_back=0.3)
    other = np.ascontiguousarray((astronaut_bgr[:, ::-1] * 0.6).astype(np.uint8))
    blank = np.zeros_like(astronaut_bgr)
    now = 0.0
    while calibration.running:
        picture = (blank if 0.59 < now < 0.76 else astronaut_bgr) if now < 1.2 else other   # 4 frames without her
        _, analysed = analyser.analyse(picture)
        calibration.after_frame(now, analysed)
        now += 0.05
    result = calibration.result
    assert result.expressions == ["neutral", "sad"] and result.accuracy(result.after) == 1.0
    assert analyser.predictor.readout is result.readout and predictor.readout is None
    found, _ = analyser.analyse(other)
    assert analyser.chosen[0].prediction["label"] == "sad" != predictor.predict_image(other)[0]["label"]
    counted = sum(result.fitted_frames.values()) + sum(result.held_back_frames.values())
    assert counted == len(calibration.sequence.frames) == 2 * 20 - 4   # 20 frames a hold, less the four
