"""FER+ (ten votes a face): both layouts read, bad rows refused by file and row, the votes kept and turned
into targets, the crowd metrics, FER2013's labels found by pixels, and make data FERPLUS= end to end."""
import csv
import os
import stat
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from utils.train import datasets, ferplus

EIGHT = list(ferplus.FERPLUS_CLASSES)
# Votes in FER+'s columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF.
VOTES = {
    "fer0000000.png": [4, 0, 0, 1, 3, 2, 0, 0, 0, 0],   # neutral 4, anger 3
    "fer0000001.png": [0, 9, 1, 0, 0, 0, 0, 0, 0, 0],   # happiness
    "fer0000002.png": [1, 0, 0, 0, 0, 0, 0, 2, 7, 0],   # unknown: left out
    "fer0000003.png": [0, 0, 0, 5, 0, 0, 0, 5, 0, 0],   # sadness and contempt tie: sadness, FER+'s earlier column
    "fer0000004.png": [2, 0, 0, 0, 0, 0, 0, 6, 1, 1],   # contempt
}
FER2013_OF = {"fer0000000.png": 0, "fer0000001.png": 3, "fer0000002.png": 6, "fer0000003.png": 4,
              "fer0000004.png": 6}   # angry, happy, neutral, sad, neutral


def face(seed):
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def write_folder(folder, votes=VOTES, box="(0, 0, 48, 48)"):
    folder.mkdir(parents=True)
    with open(folder / "label.csv", "w", newline="") as handle:
        for seed, (name, counts) in enumerate(votes.items()):
            cv2.imwrite(str(folder / name), face(seed))
            csv.writer(handle).writerow([name, box, *counts])
    return folder


@pytest.fixture
def ferplus_folders(tmp_path):
    root = tmp_path / "FERPlus" / "data"
    write_folder(root / "FER2013Train")
    write_folder(root / "FER2013Valid", {"fer0000010.png": [0, 0, 8, 0, 0, 0, 2, 0, 0, 0],
                                         "fer0000011.png": [1, 0, 0, 0, 0, 9, 0, 0, 0, 0]})
    return root


def write_csv_route(folder, new_rows=None):
    """fer2013.csv and fer2013new.csv row for row: three Training faces, one PublicTest, one FER+ dropped."""
    folder.mkdir(parents=True, exist_ok=True)
    old = [(0, "Training"), (3, "Training"), (6, "Training"), (5, "PublicTest"), (2, "Training")]
    with open(folder / "fer2013.csv", "w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["emotion", "pixels", "Usage"])
        for seed, (label, usage) in enumerate(old):
            rows.writerow([label, " ".join(map(str, face(seed).ravel())), usage])
    new_rows = new_rows or [
        ["Training", "fer0000000.png", 4, 0, 0, 1, 3, 2, 0, 0, 0, 0],
        ["Training", "fer0000001.png", 0, 9, 1, 0, 0, 0, 0, 0, 0, 0],
        ["Training", "fer0000002.png", 6, 0, 0, 4, 0, 0, 0, 0, 0, 0],
        ["PublicTest", "fer0000003.png", 0, 0, 9, 0, 0, 0, 1, 0, 0, 0],
        ["Training", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 10],
    ]
    with open(folder / "fer2013new.csv", "w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["Usage", "Image name", *ferplus.VOTE_COLUMNS])
        rows.writerows(new_rows)
    return folder


def test_the_ferplus_folders_are_read_with_every_vote_and_pixel(ferplus_folders):
    usages = ferplus.read_ferplus(str(ferplus_folders))
    assert set(usages) == {"Training", "PublicTest"}
    train = usages["Training"]
    assert train.names == list(VOTES)
    assert train.votes.tolist() == list(VOTES.values())
    assert np.array_equal(train.faces[3], face(3))
    assert (train.fer2013 == -1).all()    # FERPlus's folders do not carry FER2013's own labels


def test_the_papers_route_reads_pixels_from_fer2013_csv_and_keeps_its_labels(tmp_path):
    usages = ferplus.read_ferplus(str(write_csv_route(tmp_path / "csv")))
    train, test = usages["Training"], usages["PublicTest"]
    assert train.names == ["fer0000000.png", "fer0000001.png", "fer0000002.png"]   # the row FER+ dropped is gone
    assert train.fer2013.tolist() == [0, 3, 6] and test.fer2013.tolist() == [5]
    assert np.array_equal(train.faces[2], face(2)) and np.array_equal(test.faces[0], face(3))
    assert test.votes.tolist() == [[0, 0, 9, 0, 0, 0, 1, 0, 0, 0]]


@pytest.mark.parametrize("row, message", [
    (["fer0000000.png", "(0, 0, 48, 48)", 4, 0, 0, 1, 3, 2, 0, 0, 0], "9 vote counts, expected 10"),
    (["fer0000000.png", "(0, 0, 48, 48)", 4, 0, 0, 1, "x", 2, 0, 0, 0, 0], "vote counts must be whole numbers"),
    (["fer0000000.png", "(0, 0, 48, 48)", 4, 0, 0, 1, -3, 2, 0, 0, 0, 0], "0 or more with at least one vote"),
    (["fer0000000.png", "(0, 0, 48, 48)", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "at least one vote"),
    (["fer0000000.png", "0 0 48 48", 4, 0, 0, 1, 3, 2, 0, 0, 0, 0], "is not (left, top, right, bottom)"),
    (["fer0000000.png", "(0, 0, 60, 48)", 4, 0, 0, 1, 3, 2, 0, 0, 0, 0], "outside the 48x48 image"),
    (["missing.png", "(0, 0, 48, 48)", 4, 0, 0, 1, 3, 2, 0, 0, 0, 0], "image missing.png is missing"),
])
def test_a_bad_row_names_the_file_and_the_row(tmp_path, row, message):
    folder = write_folder(tmp_path / "FER2013Train")
    with open(folder / "label.csv", "a", newline="") as handle:
        csv.writer(handle).writerow(row)
    with pytest.raises(ferplus.FerPlusError, match="row 6") as error:
        ferplus.read_ferplus(str(tmp_path))
    assert message in str(error.value) and str(folder / "label.csv") in str(error.value)
    assert "\n" not in str(error.value)


def test_the_papers_route_refuses_a_mismatched_pair_of_files(tmp_path):
    folder = write_csv_route(tmp_path / "csv", [["PublicTest", "fer0000000.png", 4, 0, 0, 1, 3, 2, 0, 0, 0, 0]])
    with pytest.raises(ferplus.FerPlusError, match=r"fer2013new.csv row 2: usage PublicTest but .* says Training"):
        ferplus.read_ferplus(str(folder))
    os.remove(folder / "fer2013.csv")
    with pytest.raises(ferplus.FerPlusError, match="needs fer2013.csv beside it"):
        ferplus.read_ferplus(str(folder))


def test_the_papers_route_refuses_votes_for_a_row_of_fer2013_csv_that_is_no_face(tmp_path):
    folder = write_csv_route(tmp_path / "csv")
    lines = (folder / "fer2013.csv").read_text().splitlines()
    lines[2] = "3,1 2 3,Training"                                   # row 3: three pixels, no square face
    (folder / "fer2013.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ferplus.FerPlusError) as error:
        ferplus.read_ferplus(str(folder))
    assert str(error.value) == (f"{folder / 'fer2013.csv'} row 3: not a FER2013 row (emotion 0-6 and a square of "
                                "0-255 pixels), yet fer2013new.csv has votes for it")


def test_majorities_drop_unknown_faces_and_break_ties_in_ferplus_column_order(ferplus_folders):
    voted = ferplus.read_ferplus(str(ferplus_folders))["Training"]
    split = datasets.voted_split(voted, EIGHT)
    assert split.skipped == 1 and len(split) == 4
    assert [EIGHT[label] for label in split.labels] == ["neutral", "happy", "sad", "contempt"]
    # votes in the card's order: angry, disgust, fear, happy, sad, surprise, neutral, contempt
    assert split.votes[0].tolist() == [3, 2, 0, 0, 1, 0, 4, 0]
    assert split.votes[3].tolist() == [0, 0, 0, 0, 0, 0, 2, 6]
    assert np.allclose(split.images[1][..., 0], face(1) / 255.0, atol=1e-6)


def test_a_seven_class_model_is_judged_on_the_faces_whose_majority_it_knows(ferplus_folders):
    voted = ferplus.read_ferplus(str(ferplus_folders))["Training"]
    seven = EIGHT[:7]
    split = datasets.voted_split(voted, seven)
    assert len(split) == 3 and split.skipped == 2          # unknown, and the contempt face
    assert split.votes.shape == (3, 7)
    assert split.votes[2].tolist() == [0, 0, 0, 0, 5, 0, 0]   # sadness kept, its contempt votes dropped


def test_equalised_training_faces_are_histogram_equalised_and_test_faces_left_raw(ferplus_folders):
    dataset = datasets.load_dataset(str(ferplus_folders), val_fraction=0.01, seed=0, pixels="equalised")
    assert dataset.classes == EIGHT and len(dataset.test) == 2
    first = dataset.train.images[0][..., 0]
    assert np.allclose(first, cv2.equalizeHist(face(0)) / 255.0, atol=1e-6)
    assert np.allclose(dataset.test.images[0][..., 0], face(0) / 255.0, atol=1e-6)
    assert dataset.train.votes is not None and dataset.test.votes[0].tolist() == [0, 0, 2, 0, 0, 8, 0, 0]


def test_the_vote_distribution_is_the_target_and_gives_the_known_cross_entropy():
    import keras

    from utils.train.labels import label_targets
    split = datasets.Split(np.zeros((2, 48, 48, 1), np.float32), np.array([0, 1]),
                           votes=np.array([[5, 5, 0], [0, 10, 0]], np.float32))
    targets = label_targets(split, 3, "distribution")
    assert targets.tolist() == [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]
    assert label_targets(split, 3, "majority").tolist() == [[1, 0, 0], [0, 1, 0]]
    probabilities = np.array([[0.25, 0.75, 1e-9], [0.5, 0.5, 1e-9]], np.float32)
    loss = keras.losses.CategoricalCrossentropy()(targets, probabilities)
    # by hand: face 1: -(0.5 ln 0.25 + 0.5 ln 0.75) = 0.836988; face 2: -ln 0.5 = 0.693147; mean 0.765068
    assert float(loss) == pytest.approx(0.765068, abs=1e-5)


def test_crowd_metrics_by_hand():
    from utils.train.metrics import crowd_metrics
    votes = np.array([[8, 2, 0], [5, 5, 0], [0, 3, 7]], float)
    majority = np.array([0, 0, 2])
    probabilities = np.array([[0.6, 0.4, 0.0], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    figures = crowd_metrics(probabilities, votes, majority, ["a", "b", "c"], fer2013=np.array([0, 1, -1]))
    assert figures["faces"] == 3
    assert figures["majority_accuracy"] == pytest.approx(2 / 3)
    assert figures["crowd_choice_probability"] == pytest.approx((0.6 + 0.2 + 0.8) / 3)
    expected = -np.mean([0.8 * np.log(0.6) + 0.2 * np.log(0.4), 0.5 * np.log(0.2) + 0.5 * np.log(0.7),
                         0.3 * np.log(0.1) + 0.7 * np.log(0.8)])
    assert figures["vote_cross_entropy"] == pytest.approx(expected)
    # confidences 0.6, 0.7, 0.8 fall in three bins; the shares their labels got: 0.8, 0.5, 0.7
    assert figures["vote_ece"] == pytest.approx((0.2 + 0.2 + 0.1) / 3)
    assert figures["per_class"] == {"a": 0.5, "c": 1.0}
    assert figures["fer2013_agreement"] == 0.5 and figures["fer2013_faces"] == 2
    assert figures["fer2013_accuracy"] == 1.0       # the model says a, b where FER2013 says a, b


def test_fer2013_labels_are_found_by_pixels_in_an_equalised_copy():
    rng = np.random.default_rng(3)
    faces = np.stack([cv2.GaussianBlur(rng.integers(40, 160, (48, 48), dtype=np.uint8), (5, 5), 0)
                      for _ in range(6)])
    copies = np.stack([cv2.equalizeHist(f) for f in faces[[4, 0, 1, 2, 2]]])   # face 3 absent, face 2 twice
    found = ferplus.match_labels(faces, copies, [4, 0, 1, 5, 6])
    assert found.tolist() == [0, 1, -1, -1, 4, -1]   # 2: two copies, two labels -> unknown; 3 and 5: no copy


def run_get_data(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "get_data.py"), *args],
                          capture_output=True, text=True, timeout=120)


def test_make_data_writes_ferplus_from_the_papers_route_in_ferplus_layout(tmp_path):
    source = write_csv_route(tmp_path / "download")
    result = run_get_data("--ferplus", str(source / "fer2013new.csv"), "--into", str(tmp_path / "project"))
    assert result.returncode == 0, result.stderr
    target = tmp_path / "project" / "dataset" / "ferplus"
    assert sorted(os.listdir(target)) == ["FER2013Train", "FER2013Valid"]
    usages = ferplus.read_ferplus(str(target))
    assert usages["Training"].fer2013.tolist() == [0, 3, 6]
    assert np.array_equal(usages["PublicTest"].faces[0], face(3))
    assert "FER+: 4 faces" in result.stdout
    # readable as the folders make data makes beside it are (a site serving the Gallery may run as another user)
    assert stat.S_IMODE(os.stat(target).st_mode) == stat.S_IMODE(os.stat(target.parent).st_mode)


def test_make_data_with_a_bad_source_says_why_in_one_line_and_keeps_what_was_there(tmp_path, ferplus_folders):
    project = tmp_path / "project"
    assert run_get_data("--ferplus", str(ferplus_folders), "--into", str(project)).returncode == 0
    before = sorted(os.listdir(project / "dataset" / "ferplus" / "FER2013Train"))
    broken = write_folder(tmp_path / "broken" / "FER2013Train")
    (broken / "fer0000003.png").unlink()
    result = run_get_data("--ferplus", str(tmp_path / "broken"), "--into", str(project))
    assert result.returncode == 2 and result.stdout == ""
    error = result.stderr.strip().splitlines()[-1]   # after the reading progress bar
    assert error.startswith("error: ") and "label.csv row 4: image fer0000003.png is missing" in error
    assert sorted(os.listdir(project / "dataset" / "ferplus" / "FER2013Train")) == before
    assert [name for name in os.listdir(project / "dataset") if name.startswith(".ferplus")] == []


def test_fine_tuning_onto_eight_classes_keeps_every_layer_and_each_known_class(model_path):
    import keras

    from utils.model.architectures import LOGITS_LAYER, build_model
    from utils.model.store import load_model
    from utils.train.fit import copy_weights
    source, card = load_model(model_path)
    keras.utils.set_random_seed(1)
    model = build_model("baseline", (48, 48, 1), 8)
    fresh_kernel, fresh_bias = model.get_layer(LOGITS_LAYER).get_weights()
    start = copy_weights(model_path, model, EIGHT)
    for name in ("conv1", "conv3", "dense"):
        for copied, original in zip(model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            assert np.array_equal(copied, original)
    kernel, bias = model.get_layer(LOGITS_LAYER).get_weights()
    old_kernel, old_bias = source.get_layer(LOGITS_LAYER).get_weights()
    for k, name in enumerate(EIGHT[:7]):
        assert np.array_equal(kernel[:, k], old_kernel[:, list(card.classes).index(name)])
    assert np.array_equal(kernel[:, 7], fresh_kernel[:, 7]) and bias[7] == fresh_bias[7]
    assert start["new_head"] == {"classes_from_source": EIGHT[:7], "new_classes": ["contempt"]}


def test_train_learns_the_votes_and_its_card_says_so(tmp_path, ferplus_folders, model_path):
    import json
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), "--data", str(ferplus_folders), "--arch", "baseline",
         "--epochs", "1", "--batch-size", "2", "--val-split", "0.3", "--precision", "float32",
         "--init-from", model_path, "--out", "models/crowd.h5"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
    assert "learning the votes' distribution" in result.stdout
    card = json.load(open(tmp_path / "models" / "crowd.json"))
    assert card["classes"] == EIGHT
    assert card["labels"] == {"source": "votes", "scheme": "distribution", "votes_per_face": 10, "pixels": "raw"}
    assert card["training"]["initialised_from"]["new_head"]["new_classes"] == ["contempt"]
    assert card["crowd"]["faces"] == 2 and card["crowd"]["data"] == str(ferplus_folders)
    assert 0 <= card["crowd"]["majority_accuracy"] <= 1 and card["crowd"]["vote_cross_entropy"] > 0


def test_evaluate_judges_a_model_by_the_crowd_and_records_it_in_the_card(tmp_path, ferplus_folders, model_path):
    import json
    import shutil

    from utils.model.card import read_card
    from utils.model.predict import Predictor
    from utils.train.metrics import crowd_metrics
    for suffix in (".h5", ".json"):
        shutil.copy(model_path.replace(".h5", suffix), tmp_path / f"judged{suffix}")
    model = str(tmp_path / "judged.h5")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "evaluate.py"), "--model", model, "--data", str(ferplus_folders),
         "--faces-benchmark", "none", "--out", str(tmp_path / "reports"), "--json", "--record-crowd"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
    crowd = json.loads(result.stdout)["models"][0]["crowd"]
    # the seven-class fixture is judged on FER2013Valid's two faces (surprise 8 of 10, disgust 9 of 10)
    predictor = Predictor.from_path(model)
    split = datasets.load_test_split(str(ferplus_folders), predictor.classes)
    assert [predictor.classes[k] for k in split.labels] == ["surprise", "disgust"]
    expected = crowd_metrics(predictor.probabilities(split.images), split.votes, split.labels, predictor.classes)
    assert crowd["majority_accuracy"] == expected["majority_accuracy"] and crowd["faces"] == 2
    assert crowd["vote_cross_entropy"] == pytest.approx(expected["vote_cross_entropy"], abs=1e-4)
    card = read_card(model)
    assert card.crowd.faces == 2 and card.crowd.data == str(ferplus_folders)
    assert card.crowd.crowd_choice_probability == pytest.approx(expected["crowd_choice_probability"], abs=1e-4)
    assert "Judged by the crowd" in open(tmp_path / "reports" / "judged" / "report.md").read()
