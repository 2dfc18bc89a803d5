"""evaluate.py --personal on people built in the test: every photo read through the photo path by the model
as shipped (as predict_image reads it) and by a read-out fitted on that person's other photos only; the
report's figures follow from those labels; the frames curve; both layouts; one-line mistakes; and the
frames made from still photos by scripts/moving_face_frames.py."""
import json
import os
import sys

import cv2
import numpy as np
import pytest

from conftest import FER_CLASSES, ROOT
from test_evaluate import astronaut_photos, run
from utils import defaults
from utils.media.decode import read_image
from utils.model.predict import Predictor
from utils.train import personal

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import moving_face_frames  # noqa: E402

PER_EXPRESSION = 3
MODEL = defaults.project_path(defaults.EMOTION_MODEL)   # real features: the looks below differ to it as faces do


def looks(astronaut_bgr):
    """Two "expressions" the shipped model's features tell apart: the astronaut, and her darker mirror image."""
    photos = astronaut_photos(astronaut_bgr, 2 * PER_EXPRESSION)
    plain = [photo for index, photo in enumerate(photos) if index % 2 == 0]
    dark = [np.ascontiguousarray((photo[:, ::-1] * 0.55).astype(np.uint8)) for photo in plain]
    return {"neutral": plain, "sad": dark}


@pytest.fixture(scope="module")
def people(astronaut_bgr, tmp_path_factory):
    """Two people, each a folder per expression of three photos; a third person with one photo only."""
    root = tmp_path_factory.mktemp("people")
    for person in ("anna", "ben"):
        for expression, photos in looks(astronaut_bgr).items():
            folder = root / person / expression
            folder.mkdir(parents=True)
            for index, photo in enumerate(photos):
                cv2.imwrite(str(folder / f"{index}.png"), photo)
    (root / "cleo" / "happy").mkdir(parents=True)
    cv2.imwrite(str(root / "cleo" / "happy" / "0.png"), astronaut_bgr)
    (root / "anna" / "notes.txt").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def measured(people, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    status, stdout, stderr = run(["--model", MODEL, "--personal", str(people), "--out", str(out), "--json"])
    assert status == 0, stderr
    return json.loads(stdout), out, stderr


def test_each_photo_is_read_as_shipped_and_by_a_read_out_of_its_persons_other_photos(measured, people):
    answer, _, _ = measured
    result = answer["models"][0]["personal"]
    assert (result["people_count"], result["photos_count"], result["left_out"]) == (3, 13, 1)
    predictor = Predictor.from_path(MODEL)
    photos = {row["path"]: row for row in result["photos"]}
    assert len(photos) == 13 and photos["cleo/happy/0.png"]["after"] is None
    for path, row in photos.items():
        assert row["true"] == path.split("/")[1] and row["person"] == path.split("/")[0] and row["found"]
        assert row["before"] == predictor.predict_image(read_image(str(people / path)))[0]["label"]
        if row["person"] != "cleo":
            assert row["after"] == row["true"]   # the two looks are told apart from the person's other photos
    kept = [row for row in photos.values() if row["after"] is not None]
    assert result["before"]["accuracy"] == pytest.approx(np.mean([row["before"] == row["true"] for row in kept]))
    assert result["after"]["accuracy"] == 1.0 and result["after"]["macro_recall"] == 1.0
    assert set(result["after"]["per_class"]) == {"neutral", "sad"}
    assert result["after"]["per_class"]["sad"] == {"photos": 6, "right": 6, "recall": 1.0}
    assert [(row["person"], row["photos"], row["expressions"]) for row in result["people"]] == \
        [("anna", 6, ["sad", "neutral"]), ("ben", 6, ["sad", "neutral"]), ("cleo", 1, ["happy"])]
    assert result["people"][2]["after"] is None and result["people"][0]["after"] == 1.0


def test_the_shipped_model_choosing_among_the_expressions_shown(measured, people):
    """The fairer baseline the read-out is compared with: the model as shipped, allowed only the expressions
    each person showed."""
    result = measured[0]["models"][0]["personal"]
    predictor = Predictor.from_path(MODEL)
    right = 0
    for row in result["photos"]:
        if row["after"] is None:
            continue
        probabilities = predictor.predict_image(read_image(str(people / row["path"])))[0]["probabilities"]
        right += max(("neutral", "sad"), key=probabilities.get) == row["true"]
    assert result["before_among_shown"]["accuracy"] == pytest.approx(right / 12)


def test_the_frames_curve_fits_on_at_most_so_many_photos_an_expression(measured):
    curve = measured[0]["models"][0]["personal"]["frames"]
    assert list(curve) == ["1", "2", "4", "8"] and all(row["photos"] == 12 for row in curve.values())
    assert curve["2"]["accuracy"] == curve["4"]["accuracy"] == 1.0   # two others of each: all of them


def test_leave_one_out_with_one_photo_an_expression_uses_exactly_that_many(monkeypatch):
    rng = np.random.default_rng(0)
    features = rng.uniform(0, 1, (12, 8))
    labels, people = np.array([0, 1, 2] * 4), np.array(["a"] * 12)
    weights, bias = np.zeros((8, 3)), np.zeros(3)
    seen = []
    original = personal.readout.fit

    def recording(rows, row_labels, *args, **kwargs):
        seen.append(sorted(np.bincount(row_labels, minlength=3).tolist()))
        return original(rows, row_labels, *args, **kwargs)
    monkeypatch.setattr(personal.readout, "fit", recording)
    personal.leave_one_out(features, labels, people, (weights, bias), per_expression=1)
    personal.leave_one_out(features, labels, people, (weights, bias), per_expression=2)
    assert seen[:12] == [[1, 1, 1]] * 12 and seen[12:] == [[2, 2, 2]] * 12


def test_the_report_says_what_was_measured(measured):
    _, out, stderr = measured
    report = (out / "emotion_model" / "personal.md").read_text()
    assert "13 photos of 3 people" in report and "leave one photo out" in report
    assert "| sad | 6 |" in report and "1 photos had no other photo of their person" in report
    assert json.loads((out / "emotion_model" / "personal.json").read_text())["personal"]["photos_count"] == 13
    assert "emotion_model: personal read-out, 13 photos of 3 people" in stderr


def test_the_yale_layout_photos_named_by_expression(astronaut_bgr, tmp_path):
    for person in ("subject01", "subject02"):
        (tmp_path / person).mkdir()
        for name in ("happy", "normal", "sad", "wink"):
            cv2.imwrite(str(tmp_path / person / f"{name}.png"), astronaut_bgr)
    paths, labels, people = personal.find_people(str(tmp_path), FER_CLASSES)
    assert [os.path.basename(path) for path in paths] == ["happy.png", "normal.png", "sad.png"] * 2
    assert [FER_CLASSES[label] for label in labels] == ["happy", "neutral", "sad"] * 2
    assert list(people) == ["subject01"] * 3 + ["subject02"] * 3


@pytest.mark.parametrize("argv, expected", [
    (["--personal", "{tmp}/nowhere"], "no folder of people's photos at"),
    (["--personal", "{tmp}/empty"], "holds no photos of the model's classes"),
    (["--personal", "{tmp}/empty", "--calibrate"], "--personal measures the read-out alone"),
])
def test_personal_mistakes_end_in_one_line(argv, expected, model_path, tmp_path):
    (tmp_path / "empty" / "someone").mkdir(parents=True)
    status, _, stderr = run(["--model", model_path, "--out", str(tmp_path / "r"),
                             *[arg.replace("{tmp}", str(tmp_path)) for arg in argv]])
    assert status == 2 and "Traceback" not in stderr
    assert expected in stderr and stderr.strip().splitlines()[-1].count("error") == 1


def test_frames_of_a_moving_face_are_made_from_still_photos(astronaut_bgr, tmp_path):
    people = tmp_path / "people"
    (people / "subject01").mkdir(parents=True)
    photo = cv2.resize(astronaut_bgr, (160, 160))
    cv2.imwrite(str(people / "subject01" / "happy.png"), photo)
    cv2.imwrite(str(people / "subject01" / "glasses.png"), photo)
    (people / "subject01" / "README").write_text("not a picture")
    assert moving_face_frames.main(["--people", str(people), "--out", str(tmp_path / "frames"), "--frames", "4",
                                    "--expressions", "happy,README"]) == 0
    written = sorted((tmp_path / "frames" / "subject01" / "happy").iterdir())
    assert len(written) == 4 and not (tmp_path / "frames" / "subject01" / "glasses").exists()
    frames = [cv2.imread(str(path)) for path in written]
    assert all(frame.shape == photo.shape for frame in frames)
    differences = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, frames[1:])]
    assert min(differences) > 2    # each frame moved or lit otherwise than the one before
    assert moving_face_frames.main(["--people", str(tmp_path / "nobody"), "--out", str(tmp_path / "x")]) == 2
