"""Identity beside emotion: train.py --task identity, both Grad-CAMs, the site's page and the desktop tab.

The fixture is a folder per synthetic "person" (bright, dark, vertical or horizontal
stripes) that a small CNN tells apart in a few epochs; no faces are found in them, so
every photo is kept whole, as the card counts.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import ROOT
from test_desktop_window import figure_text, open_window, pump

PEOPLE = ["alice", "bob", "carol", "dave"]
PHOTOS = 10  # per person: 2 held out for testing, 1 for validation, 7 to learn from


@pytest.fixture(scope="module")
def people_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("people")
    rng = np.random.default_rng(0)
    stripes = np.tile(np.repeat([0.0, 255.0], 8), (64, 4))  # 8-pixel bands survive shrinking to 32x32
    patterns = {"alice": np.full((64, 64), 210.0), "bob": np.full((64, 64), 40.0),
                "carol": stripes, "dave": stripes.T.copy()}
    for name, pattern in patterns.items():
        (root / name).mkdir()
        for i in range(PHOTOS):
            photo = np.clip(pattern + rng.normal(0, 12, pattern.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{i}.png"), photo)
    return root


def run_train(*args, cwd):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT, KERAS_HOME=str(cwd)))


@pytest.fixture(scope="module")
def trained(people_folder, tmp_path_factory):
    """``(model path, seconds)``: the identity CNN trained on the fixture."""
    work = tmp_path_factory.mktemp("work")
    started = time.monotonic()
    result = run_train("--task", "identity", "--data", str(people_folder), "--img-size", "32", "--epochs", "15",
                       "--batch-size", "8", "--no-augment", "--precision", "float32",
                       "--out", "models/identity_model.h5", cwd=work)
    assert result.returncode == 0, result.stderr
    return str(work / "models" / "identity_model.h5"), time.monotonic() - started


def test_training_tells_the_people_apart_and_the_card_lists_them(trained):
    path, seconds = trained
    with open(path[:-3] + ".json") as handle:
        card = json.load(handle)
    assert card["task"] == "identity" and card["classes"] == PEOPLE and card["architecture"] == "identity"
    assert card["metrics"]["test_accuracy"] >= 0.75, card["metrics"]
    split = card["training"]["test_split"]
    assert split["held_out_per_class"] == 2 and len(split["files"]) == 2 * len(PEOPLE)
    assert card["training"]["faces_cropped"]["no_face_found"] == len(PEOPLE) * PHOTOS
    assert seconds < 120


def class_of_faces(root, people=8, photos=5):
    """What a class collects: ``photos`` small drawn faces of each of ``people`` (head, eyes and mouth differ)."""
    rng = np.random.default_rng(1)
    for person in range(people):
        folder = root / f"student{person}"
        folder.mkdir(parents=True)
        for photo in range(photos):
            face = np.full((64, 64), 40 + 20 * person, np.uint8)
            cv2.ellipse(face, (32, 34), (18 + person % 4, 24 - person % 3), 0, 0, 360, 200, -1)
            for eye_x in (24, 40):
                cv2.circle(face, (eye_x + int(rng.integers(-1, 2)), 28 - person % 2 * 3), 2 + person % 3, 30, -1)
            cv2.line(face, (24, 46), (40, 46 + person - 4), 60, 2)
            cv2.imwrite(str(folder / f"{photo}.png"), np.clip(face + rng.normal(0, 6, face.shape), 0, 255).astype(np.uint8))
    return root


def test_a_class_set_of_5_photos_each_trains_and_reports(tmp_path):
    """8 people x 5 photos: 2 each held out for testing leave none for validation; epochs are chosen on
    the training photos, and the card says so."""
    data = class_of_faces(tmp_path / "class")
    result = run_train("--task", "identity", "--data", str(data), "--epochs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "models" / "identity_model.json") as handle:
        card = json.load(handle)
    training, metrics = card["training"], card["metrics"]
    assert (training["train_images"], training["val_images"], training["test_images"]) == (24, 0, 16)
    assert training["chosen_on"].startswith("training accuracy")
    assert 0 <= metrics["train_accuracy"] <= 1 and 0 <= metrics["test_accuracy"] <= 1 and "val_accuracy" not in metrics
    assert len(metrics["test_per_class"]) == 8 and "note: too few images per class" in result.stdout


def test_one_photo_per_person_stops_at_once_with_what_is_needed(tmp_path):
    data = class_of_faces(tmp_path / "class", people=3, photos=1)
    result = run_train("--task", "identity", "--data", str(data), "--epochs", "1", cwd=tmp_path)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: student0, student1, student2 have fewer than 2 photos")
    assert "each person needs at least 2" in lines[0] and not (tmp_path / "runs").exists()


def test_missing_data_is_a_one_line_error(tmp_path):
    result = run_train("--task", "identity", "--data", str(tmp_path / "nobody"), cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no data set" in errors[0] and "Traceback" not in result.stderr


def test_lfw_offline_says_how_to_provide_a_folder(monkeypatch):
    import urllib.error

    import sklearn.datasets

    from utils.train import datasets

    def offline(**kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(sklearn.datasets, "fetch_lfw_people", offline)
    with pytest.raises(datasets.DatasetError) as error:
        datasets.load_dataset("lfw")
    message = str(error.value)
    assert "\n" not in message and "cannot download LFW" in message and "--data FOLDER" in message


def test_both_gradcams_for_one_face(trained, model_path, astronaut_bgr):
    from utils.serving import identity
    emotion = identity.model_file(model_path).get()            # 48x48 input
    who = identity.model_file(trained[0]).get()                # 32x32 input
    result = identity.compare(emotion, who, astronaut_bgr)
    assert result.identity["label"] in PEOPLE and result.emotion["label"] in emotion.predictor.classes
    maps = result.maps
    assert maps["emotion"].shape == maps["identity"].shape == maps["difference"].shape == (48, 48)
    assert maps["identity"].min() >= 0 and maps["identity"].max() <= 1
    assert np.allclose(maps["difference"], maps["emotion"] - maps["identity"])
    assert len(result.figure().axes) == 4  # emotion, identity, difference and its colour bar


@pytest.fixture
def identity_client(make_app, trained, people_folder, tmp_path):
    """A client of a new site (conftest.py's ``make_app``) with the trained identity model, training from
    the site on and its runs in the test's folder."""
    models = tmp_path / "models"
    models.mkdir()
    return make_app(MODELS_DIR=str(models), WARM_UP=False, IDENTITY_MODEL=trained[0],
                    IDENTITY_DATA=str(people_folder), IDENTITY_EPOCHS=2, TRAINING_TOKEN="teacher",
                    TRAINING_DIR=str(tmp_path)).test_client()


def test_the_page_steps_through_the_test_photos(identity_client):
    page = identity_client.get("/identity?sample=1").get_data(as_text=True)
    assert "Identity and emotion" in page and 'id="comparison"' in page
    assert 'id="true-person"' in page and "test photo 2 of 8" in page and "Next image" in page


def test_an_uploaded_face_gets_a_person_and_an_emotion(identity_client, astronaut_bgr):
    import io
    png = cv2.imencode(".png", astronaut_bgr)[1].tobytes()
    page = identity_client.post("/identity", data={"file": (io.BytesIO(png), "a.png")}).get_data(as_text=True)
    assert 'id="predicted-person"' in page and 'id="predicted-emotion"' in page and "true-person" not in page


def test_training_from_the_site_runs_in_the_background(identity_client, trained, tmp_path):
    """The POST answers at once; the status endpoint follows the job until the new model is saved."""
    identity_client.application.extensions["identity_model"].path = str(tmp_path / "models" / "retrained.h5")
    started = time.monotonic()
    response = identity_client.post("/identity/train", headers={"X-Training-Token": "teacher"})
    assert response.status_code == 202 and time.monotonic() - started < 5
    again = identity_client.post("/identity/train", headers={"X-Training-Token": "teacher"})
    assert again.status_code == 409  # one at a time
    deadline = time.monotonic() + 240
    while (status := identity_client.get("/identity/train").get_json())["state"] == "running":
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["state"] == "finished" and status["progress"] == 1.0, status
    assert 'id="comparison"' in identity_client.get("/identity").get_data(as_text=True)
    assert (tmp_path / "runs" / "retrained" / "history.csv").exists()  # checkpoints under TRAINING_DIR


@pytest.fixture(scope="module")
def identity_models(trained, model_path, tmp_path_factory):
    """``(emotion model, identity model)``: the fixture model and the trained identity model, as models/ holds them."""
    folder = tmp_path_factory.mktemp("both")
    for source, name in ((model_path, "fixture_model"), (trained[0], "identity_model")):
        for suffix in (".h5", ".json"):
            shutil.copy(source[:-3] + suffix, folder / (name + suffix))
    return str(folder / "fixture_model.h5"), str(folder / "identity_model.h5")


def test_the_desktop_tab_shows_both_maps_and_the_test_photos(display, identity_models, astronaut_bgr, tmp_path):
    picture = str(tmp_path / "astronaut.png")
    cv2.imwrite(picture, astronaut_bgr)
    window = open_window(*identity_models)
    try:
        assert list(window.model_paths) == ["fixture_model.h5"]  # the identity model is not an emotion model
        window.open_path(picture)
        pump(window, lambda: window.session.face is not None and not window.worker.busy)
        window.notebook.select(window.tab_frames["Identity"])
        pump(window, lambda: "Identity" in window.figures and not window.worker.busy)
        text = figure_text(window.figures["Identity"])
        assert "identity:" in text and "emotion:" in text and "emotion minus identity" in text
        window.next_identity_sample()
        pump(window, lambda: window.session.true_person is not None and "true person" in
             figure_text(window.figures["Identity"]) and not window.worker.busy)
        assert window.session.true_person in PEOPLE and window.errors == []
    finally:
        window.close()
