"""evaluate.py end to end on the fixture model and tiny generated splits.

The figures it reports must equal those computed directly with scikit-learn on the
same predictions; calibration must write the card and reach every front end; the second
benchmark (whole photos, read through the photo path) must agree with the predictor.
"""
import contextlib
import io
import json
import os
import shutil
from dataclasses import replace

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy.special import log_softmax, softmax
from sklearn import metrics as skm

import evaluate
from conftest import FER_CLASSES, make_card
from utils.cli import run_cli
from utils.model.architectures import LOGITS_LAYER, PROBABILITIES_LAYER
from utils.model.card import card_path, read_card, write_card
from utils.model.predict import Predictor
from utils.model.store import save_model
from utils.train import datasets, metrics

BRIGHTNESS_SCALE = 50


def write_class_folders(root, per_class, seed, classes=FER_CLASSES):
    """``root/<class>/*.png``: 48x48 faces of noise, each class a different brightness and blur."""
    rng = np.random.default_rng(seed)
    for index, name in enumerate(classes):
        os.makedirs(root / name, exist_ok=True)
        for number in range(per_class):
            noise = rng.normal(40 + 25 * index, 60, (48, 48))
            face = cv2.GaussianBlur(np.clip(noise, 0, 255).astype(np.uint8), (0, 0), 1 + index % 3)
            cv2.imwrite(str(root / name / f"{number}.png"), face)
    return root


def copy_model(model_path, folder, name, training):
    """The fixture model under another name, its card pointing at ``training`` data."""
    target = os.path.join(folder, f"{name}.h5")
    shutil.copy(model_path, target)
    card = read_card(model_path)
    write_card(card_path(target), replace(card, name=name, training=replace(card.training, **training)))
    return target


def brightness_model(path, training):
    """A model whose logits are linear in a face's mean brightness, so its answers are mixed.

    Logit k is ``-SCALE * (brightness - centre_k)^2`` up to a per-face constant: each
    class wins near its centre, and the centres overlap the generated classes imperfectly.
    """
    import keras
    from keras import layers
    inputs = keras.Input((48, 48, 1), name="face")
    brightness = layers.GlobalAveragePooling2D(name="brightness")(inputs)
    logits = layers.Dense(len(FER_CLASSES), name=LOGITS_LAYER)(brightness)
    model = keras.Model(inputs, layers.Activation("softmax", name=PROBABILITIES_LAYER)(logits))
    centres = np.linspace(0.25, 0.65, len(FER_CLASSES))
    model.get_layer(LOGITS_LAYER).set_weights([BRIGHTNESS_SCALE * 2 * centres[None], -BRIGHTNESS_SCALE * centres ** 2])
    card = make_card("brightness_model", arch="brightness", parameters=int(model.count_params()))
    save_model(model, path, replace(card, training=replace(card.training, **training)))
    return path


@pytest.fixture(autouse=True)
def no_default_photo_benchmark(monkeypatch, tmp_path_factory):
    """The project's own dataset/people is not read by these tests: the default points nowhere
    unless a test says otherwise."""
    monkeypatch.setattr(evaluate, "FACES_BENCHMARK", str(tmp_path_factory.getbasetemp() / "no_benchmark_here"))


def run(argv):
    """evaluate.py in this process: ``(exit status, stdout, stderr)``."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as end:
        run_cli(evaluate.main, argv)
    return end.value.code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def test_split(tmp_path_factory):
    return write_class_folders(tmp_path_factory.mktemp("split") / "test", per_class=4, seed=1)


@pytest.fixture(scope="module")
def evaluated(model_path, test_split, tmp_path_factory):
    """One --calibrate --json run over two models: ``(summary, out folder, {name: model path})``.

    Both cards point at a generated training set whose validation half calibration rebuilds.
    """
    root = tmp_path_factory.mktemp("evaluated")
    write_class_folders(root / "data" / "train", per_class=6, seed=2)
    training = {"data": str(root / "data"), "val_fraction": 0.5, "seed": 3}
    paths = {"brightness_model": brightness_model(str(root / "brightness_model.h5"), training),
             "fixture_copy": copy_model(model_path, str(root), "fixture_copy", training)}
    status, stdout, _ = run(["--model", paths["brightness_model"], "--model", paths["fixture_copy"],
                             "--data", str(test_split), "--out", str(root / "reports"), "--json",
                             "--calibrate", "--mistakes", "6"])
    assert status == 0
    return json.loads(stdout), root / "reports", paths


def test_figures_equal_sklearn_on_the_same_predictions(evaluated, test_split):
    summary, out, paths = evaluated
    predictor = Predictor.from_path(paths["brightness_model"])
    split = datasets.load_class_folders(str(test_split), FER_CLASSES)
    probabilities = predictor.probabilities(split.images)
    predicted = probabilities.argmax(axis=1)
    assert len(set(predicted)) >= 4  # a model with mixed answers, so the comparison means something
    result = summary["models"][0]
    assert result["images"] == len(split) == 28
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(split.labels, predicted)) == pytest.approx(19 / 28)
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            split.labels, predicted, labels=range(7), average=average, zero_division=0)
        assert (result[f"{average}_precision"], result[f"{average}_recall"], result[f"{average}_f1"]) == \
            pytest.approx((precision, recall, f1))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        split.labels, predicted, labels=range(7), zero_division=0)
    table = pd.read_csv(out / "brightness_model" / "per_class.csv", index_col="class")
    assert list(table.index) == FER_CLASSES
    np.testing.assert_allclose(table["precision"], precision, atol=1e-4)
    np.testing.assert_allclose(table["recall"], recall, atol=1e-4)
    np.testing.assert_allclose(table["f1"], f1, atol=1e-4)
    np.testing.assert_array_equal(table["support"], support)
    per_class_accuracy = [np.mean(predicted[split.labels == i] == i) for i in range(7)]
    assert [result["per_class"][c]["accuracy"] for c in FER_CLASSES] == pytest.approx(per_class_accuracy)
    assert result["ece"] == pytest.approx(metrics.expected_calibration_error(probabilities, split.labels))
    assert result["parameters"] == predictor.model.count_params() == 7 * 2
    assert result["ms_per_face"] > 0


def test_every_report_file_is_written(evaluated):
    _, out, _ = evaluated
    folder = out / "brightness_model"
    for name in ("report.md", "per_class.csv", "per_class.md", "metrics.json", "confusion_counts.png",
                 "confusion_normalised.png", "mistakes.png", "reliability.png"):
        content = (folder / name).read_bytes()
        assert content.startswith(b"\x89PNG") if name.endswith(".png") else content, name
    lines = (folder / "per_class.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(FER_CLASSES)  # the header, then one row per class
    assert [row.split("|")[1].strip() for row in rows[1:]] == FER_CLASSES
    report = (folder / "report.md").read_text()
    for picture in ("confusion_counts.png", "confusion_normalised.png", "reliability.png", "mistakes.png"):
        assert f"]({picture})" in report
    assert "| happy |" in report and "T = " in report


def test_several_models_are_compared(evaluated):
    summary, out, _ = evaluated
    assert summary["comparison"] == str(out / "comparison.md")
    frame = pd.read_csv(out / "comparison.csv", index_col="model")
    assert list(frame.index) == ["brightness_model", "fixture_copy"]
    assert {"accuracy", "macro F1", "ECE", "ms/face", "parameters", "MB", *FER_CLASSES} <= set(frame.columns)
    assert "photo path" not in frame.columns  # measured only with --photo-path
    for result in summary["models"]:
        assert frame.loc[result["name"], "accuracy"] == pytest.approx(result["accuracy"], abs=1e-4)
        assert frame.loc[result["name"], "parameters"] == result["parameters"]
    assert (out / "per_class_accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_calibration_fits_on_validation_and_reaches_the_predictor(evaluated, test_split):
    summary, _, paths = evaluated
    calibration = read_card(paths["brightness_model"]).calibration
    assert calibration.fitted_on == "validation"
    # The validation split training held out, rebuilt from the card's data, fraction and seed.
    predictor = Predictor.from_path(paths["brightness_model"])
    validation = datasets.load_dataset(read_card(paths["brightness_model"]).training.data, 0.5, 3).val
    assert len(validation) == calibration.val_images == 21
    # The temperature minimises the validation faces' cross-entropy (computed here with scipy): 2% either way is worse.
    val_logits, temperature = predictor.logits(validation.images), calibration.temperature

    def cross_entropy(t):
        return -log_softmax(val_logits / t, axis=1)[np.arange(len(validation)), validation.labels].mean()
    assert cross_entropy(temperature) < min(cross_entropy(temperature * 0.98), cross_entropy(temperature * 1.02))
    assert calibration.temperature != pytest.approx(1.0, abs=0.05)
    # Every front end now shows calibrated probabilities.
    test = datasets.load_class_folders(str(test_split), FER_CLASSES)
    logits = predictor.logits(test.images)
    assert predictor.temperature == calibration.temperature == pytest.approx(summary["models"][0]["temperature"],
                                                                             abs=1e-4)
    calibrated = softmax(np.asarray(logits, np.float64) / calibration.temperature, axis=1)
    np.testing.assert_allclose(predictor.probabilities(test.images), calibrated, rtol=1e-6)
    assert calibration.ece_before == pytest.approx(
        metrics.expected_calibration_error(softmax(np.asarray(logits, np.float64), axis=1), test.labels), abs=1e-4)
    assert calibration.ece_after == pytest.approx(metrics.expected_calibration_error(calibrated, test.labels), abs=1e-4)


def test_validation_reports_on_the_split_training_held_out(evaluated, tmp_path):
    _, _, paths = evaluated
    card = read_card(paths["brightness_model"])
    validation = datasets.load_dataset(card.training.data, 0.5, 3).val
    predicted = Predictor.from_path(paths["brightness_model"]).probabilities(validation.images).argmax(axis=1)
    status, stdout, _ = run(["--model", paths["brightness_model"], "--validation", "--out", str(tmp_path), "--json"])
    assert status == 0
    result = json.loads(stdout)["models"][0]
    assert result["images"] == len(validation) == 21
    assert result["accuracy"] == pytest.approx(np.mean(predicted == validation.labels))
    assert result["data"] == f"{card.training.data} (validation split)"


def test_validation_cannot_be_calibrated_on(evaluated, tmp_path):
    _, _, paths = evaluated
    status, _, stderr = run(["--model", paths["brightness_model"], "--validation", "--calibrate",
                             "--out", str(tmp_path)])
    assert status == 2 and "--calibrate fits on the validation split" in stderr


def test_fer2013_csv_labels_follow_the_card_by_name(tmp_path):
    rng = np.random.default_rng(5)
    rows = [(label, " ".join(map(str, rng.integers(0, 256, 48 * 48))), usage)
            for usage in ("PublicTest", "PrivateTest") for label in (3, 6, 0, 3)]
    pd.DataFrame(rows, columns=["emotion", "pixels", "Usage"]).to_csv(tmp_path / "fer2013.csv", index=False)
    card = make_card("csv", ["Neutral", "angry", "happy"], size=40, channels=3)
    split = evaluate.load_split(str(tmp_path / "fer2013.csv"), card, "PrivateTest", {})
    assert split.labels.tolist() == [2, 0, 1, 2]  # happy, neutral, angry, happy in the card's order
    assert split.images.shape == (4, 40, 40, 3)
    with pytest.raises(datasets.DatasetError, match="neutral"):
        evaluate.load_split(str(tmp_path / "fer2013.csv"), make_card("csv", ["angry", "happy"]), "PrivateTest", {})


@pytest.mark.parametrize("problem, expected", [
    ("missing model", "no model at"),
    ("empty split", "holds no readable images"),
    ("foreign class", "'bored'"),
    ("not a split", "neither a folder of class folders nor a readable fer2013.csv"),
    ("calibrate on test", "never on the split being reported"),
])
def test_user_mistakes_end_in_one_line(problem, expected, model_path, test_split, tmp_path):
    model, split = model_path, test_split
    extra = []
    if problem == "missing model":
        model = str(tmp_path / "nothing.h5")
    elif problem == "empty split":
        split = tmp_path / "empty"
        (split / "happy").mkdir(parents=True)
    elif problem == "foreign class":
        split = write_class_folders(tmp_path / "split", 1, 0, classes=["happy", "bored"])
    elif problem == "not a split":
        split = tmp_path / "fer2013.csv"
        split.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    else:
        extra = ["--calibrate", "--val-data", str(test_split)]
    status, _, stderr = run(["--model", model, "--data", str(split), "--out", str(tmp_path / "r"), *extra])
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert status == 2
    assert len(lines) == 1 and expected in lines[0], stderr
    assert "Traceback" not in stderr


def test_help_names_every_option():
    with contextlib.redirect_stdout(io.StringIO()) as stdout, pytest.raises(SystemExit) as end:
        evaluate.parse_args(["--help"])
    assert end.value.code == 0
    for option in ("--model", "--data", "--usage", "--out", "--json", "--calibrate", "--val-data",
                   "--faces-benchmark", "--logit-offsets", "--offset-strength", "--personal"):
        assert option in stdout.getvalue()


def test_the_photo_path_reports_both_accuracies(model_path, astronaut_bgr, astronaut_face_box, tmp_path):
    """Three 48x48 astronaut faces (one mirrored, one turned 20 degrees) and a blank square: the detector finds the
    faces on their grey squares, the blank one is classified whole, and both accuracies are reported."""
    from utils.media import colour
    x, y, w, h = astronaut_face_box
    turned = cv2.warpAffine(astronaut_bgr, cv2.getRotationMatrix2D((x + w / 2, y + h / 2), 20, 1.0),
                            astronaut_bgr.shape[1::-1])
    (tmp_path / "test" / "happy").mkdir(parents=True)
    face = astronaut_bgr[y - 5:y + h + 5, x - 5:x + w + 5]
    for index, crop in enumerate((face, face[:, ::-1], turned[y - 5:y + h + 5, x - 5:x + w + 5])):
        cv2.imwrite(str(tmp_path / "test" / "happy" / f"{index}.png"), cv2.resize(colour.to_gray(crop), (48, 48)))
    cv2.imwrite(str(tmp_path / "test" / "happy" / "blank.png"), np.full((48, 48), 128, np.uint8))
    status, stdout, _ = run(["--model", model_path, "--data", str(tmp_path / "test"), "--out", str(tmp_path / "r"),
                             "--json", "--photo-path"])
    assert status == 0
    result = json.loads(stdout)["models"][0]
    photo = result["photo_path"]
    assert (photo["found"], photo["faces"], photo["detector"]) == (3, 4, "blazeface")
    assert photo["accuracy"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    on_face, into_square = photo["on_face"], photo["into_square"]
    assert on_face["faces"] + into_square["faces"] == 3 and into_square["faces"] >= 1   # framed tight: grey comes in
    assert into_square["direct_accuracy"] in (0.0, 1 / 3, 0.5, 2 / 3, 1.0)
    report = (tmp_path / "r" / "fixture_model" / "report.md").read_text()
    assert "## Through the photo path" in report and "3 of 4 found" in report
    assert f"accuracy **{photo['accuracy']:.3f}**, against {result['accuracy']:.3f}" in report
    assert f"reach further into the grey square:\n{into_square['accuracy']:.3f} through the photo path" in report


def test_the_photo_path_splits_crops_on_the_face_from_those_reaching_into_the_square(model_path, astronaut_bgr,
                                                                                   astronaut_face_box, tmp_path):
    """The astronaut framed loosely (25 px around the face: its upright crop lies inside the picture) and
    tightly (5 px: the crop takes in the grey square), under two labels so the direct answers differ."""
    from utils.faces.preprocess import preprocess
    from utils.media import colour
    from utils.model.predict import Predictor
    x, y, w, h = astronaut_face_box
    pictures = {}
    for label, margin in (("happy", 25), ("sad", 5)):
        (tmp_path / "test" / label).mkdir(parents=True)
        crop = cv2.resize(colour.to_gray(astronaut_bgr[y - margin:y + h + margin, x - margin:x + w + margin]), (48, 48))
        cv2.imwrite(str(tmp_path / "test" / label / "0.png"), crop)
        pictures[label] = crop
    status, stdout, _ = run(["--model", model_path, "--data", str(tmp_path / "test"), "--out", str(tmp_path / "r"),
                             "--json", "--photo-path"])
    assert status == 0
    photo = json.loads(stdout)["models"][0]["photo_path"]
    assert photo["found"] == 2 and photo["on_face"]["faces"] == 1 and photo["into_square"]["faces"] == 1
    predictor = Predictor.from_path(model_path)
    for part, label in (("on_face", "happy"), ("into_square", "sad")):
        direct = predictor.probabilities(preprocess(pictures[label], 48, 48)[None])[0].argmax()
        assert photo[part]["direct_accuracy"] == float(predictor.classes[direct] == label)
        assert photo[part]["accuracy"] in (0.0, 1.0)
    report = (tmp_path / "r" / "fixture_model" / "report.md").read_text()
    assert "found, 1 crops come at least 90% from the face itself:\n" in report


def test_the_comparison_has_a_photo_path_column_when_measured(model_path, astronaut_bgr, astronaut_face_box, tmp_path):
    x, y, w, h = astronaut_face_box
    (tmp_path / "test" / "happy").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "test" / "happy" / "0.png"),
                cv2.resize(cv2.cvtColor(astronaut_bgr[y - 5:y + h + 5, x - 5:x + w + 5], cv2.COLOR_BGR2GRAY), (48, 48)))
    second = copy_model(model_path, str(tmp_path), "second_model", {})
    status, stdout, _ = run(["--model", model_path, "--model", second, "--data", str(tmp_path / "test"),
                             "--out", str(tmp_path / "r"), "--json", "--photo-path"])
    assert status == 0
    summary = json.loads(stdout)
    frame = pd.read_csv(tmp_path / "r" / "comparison.csv", index_col="model")
    assert list(frame.index) == ["fixture_model", "second_model"]
    assert list(frame.columns[:2]) == ["accuracy", "photo path"]
    for result in summary["models"]:
        assert frame.loc[result["name"], "photo path"] == pytest.approx(result["photo_path"]["accuracy"], abs=1e-4)


# ---- the second benchmark: whole photos of other people, through the photo path ----------------

YALE_FILES = {"happy": "happy", "normal": "neutral", "sad": "sad", "surprised": "surprise"}


def astronaut_photos(astronaut_bgr, count):
    """``count`` different whole photos of the astronaut: shifted, mirrored, darker or turned."""
    small = cv2.resize(astronaut_bgr, (256, 256), interpolation=cv2.INTER_AREA)
    photos = []
    for index in range(count):
        photo = np.roll(small, 6 * index, axis=1)
        photo = photo[:, ::-1] if index % 2 else photo
        photo = np.clip(photo.astype(np.float32) * (1 - 0.07 * (index % 4)), 0, 255).astype(np.uint8)
        turn = cv2.getRotationMatrix2D((128, 128), 4 * (index % 3) - 4, 1.0)
        photos.append(cv2.warpAffine(np.ascontiguousarray(photo), turn, (256, 256), borderMode=cv2.BORDER_REFLECT))
    return photos


@pytest.fixture(scope="module")
def yale_layout(astronaut_bgr, tmp_path_factory):
    """Two "people", each with the four expressions Yale names and two photos that are not expressions."""
    root = tmp_path_factory.mktemp("yalefaces")
    photos = iter(astronaut_photos(astronaut_bgr, 8))
    for person in ("subject01", "subject02"):
        (root / person).mkdir()
        for name in YALE_FILES:
            cv2.imwrite(str(root / person / f"{name}.png"), cv2.cvtColor(next(photos), cv2.COLOR_BGR2GRAY))
        for other in ("glasses.png", "leftlight.png"):
            cv2.imwrite(str(root / person / other), np.full((64, 64), 128, np.uint8))
    return root


def test_the_photo_benchmark_reads_the_yale_layout_through_the_photo_path(model_path, yale_layout, test_split,
                                                                          tmp_path):
    """Eight photos named by expression (glasses and lighting left out), each classified as predict_image
    classifies its first face; the figures, the report section and the confusion figure follow."""
    from utils.media.decode import read_image
    status, stdout, _ = run(["--model", model_path, "--data", str(test_split), "--faces-benchmark", str(yale_layout),
                             "--out", str(tmp_path / "r"), "--json"])
    assert status == 0
    benchmark = json.loads(stdout)["models"][0]["faces_benchmark"]
    assert (benchmark["layout"], benchmark["photos"], benchmark["found"]) == ("people", 8, 8)
    assert benchmark["name"] == yale_layout.name
    predictor = Predictor.from_path(model_path)
    truth, served = [], []
    for person in ("subject01", "subject02"):
        for name, cls in YALE_FILES.items():
            truth.append(cls)
            served.append(predictor.predict_image(read_image(str(yale_layout / person / f"{name}.png")))[0]["label"])
    truth, served = np.array(truth), np.array(served)
    assert set(benchmark["per_class"]) == {"happy", "neutral", "sad", "surprise"}
    for cls, row in benchmark["per_class"].items():
        assert (row["photos"], row["right"]) == (2, int(np.sum(served[truth == cls] == cls)))
        assert row["recall"] == pytest.approx(row["right"] / 2)
    assert benchmark["accuracy"] == pytest.approx(np.mean(served == truth))
    recalls = [row["recall"] for row in benchmark["per_class"].values()]
    assert benchmark["macro_recall"] == pytest.approx(np.mean(recalls))
    confusion = benchmark["confusion"]
    assert confusion["columns"] == FER_CLASSES and confusion["rows"] == ["happy", "sad", "surprise", "neutral"]
    for row, cls in zip(confusion["counts"], confusion["rows"]):
        assert row == [int(np.sum(served[truth == cls] == name)) for name in FER_CLASSES]
    report = (tmp_path / "r" / "fixture_model" / "report.md").read_text()
    assert f"## Other people's faces: {yale_layout.name}" in report and "(8 of 8 found" in report
    assert (tmp_path / "r" / "fixture_model" / "faces_confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_the_photo_benchmark_reads_class_folders_by_name(model_path, astronaut_bgr, test_split, tmp_path):
    photos = astronaut_photos(astronaut_bgr, 3)
    for folder, photo in zip(("Happy", "surprised", "bored"), photos):
        (tmp_path / "photos" / folder).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "photos" / folder / "0.jpg"), photo)
    status, stdout, _ = run(["--model", model_path, "--data", str(test_split), "--faces-benchmark",
                             str(tmp_path / "photos"), "--out", str(tmp_path / "r"), "--json"])
    assert status == 0
    benchmark = json.loads(stdout)["models"][0]["faces_benchmark"]
    assert benchmark["layout"] == "classes" and benchmark["photos"] == 2        # bored is not a class of the card
    assert list(benchmark["per_class"]) == ["happy", "surprise"]


def test_the_default_photo_benchmark_is_read_when_there_and_none_skips_it(model_path, yale_layout, test_split,
                                                                         tmp_path, monkeypatch):
    """The default, dataset/people (where make data PEOPLE=... puts photos), is read when its photos are named
    by expression, passed over when they are a class's own photos named otherwise; 'none' skips it."""
    monkeypatch.setattr(evaluate, "FACES_BENCHMARK", str(yale_layout))
    status, stdout, _ = run(["--model", model_path, "--data", str(test_split), "--out", str(tmp_path / "r"), "--json"])
    assert status == 0 and json.loads(stdout)["models"][0]["faces_benchmark"]["photos"] == 8
    (tmp_path / "class" / "ada").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "class" / "ada" / "first_day.jpg"), np.full((64, 64, 3), 120, np.uint8))
    monkeypatch.setattr(evaluate, "FACES_BENCHMARK", str(tmp_path / "class"))
    status, stdout, stderr = run(["--model", model_path, "--data", str(test_split), "--out", str(tmp_path / "r"),
                                  "--json"])
    assert status == 0 and json.loads(stdout)["models"][0]["faces_benchmark"] is None, stderr
    status, stdout, _ = run(["--model", model_path, "--data", str(test_split), "--faces-benchmark", "none",
                             "--out", str(tmp_path / "r"), "--json"])
    assert status == 0 and json.loads(stdout)["models"][0]["faces_benchmark"] is None


def test_the_comparison_shows_balanced_accuracy_and_the_photo_benchmark(model_path, yale_layout, test_split, tmp_path):
    second = copy_model(model_path, str(tmp_path), "second_model", {})
    status, stdout, _ = run(["--model", model_path, "--model", second, "--data", str(test_split),
                             "--faces-benchmark", str(yale_layout), "--out", str(tmp_path / "r"), "--json"])
    assert status == 0
    frame = pd.read_csv(tmp_path / "r" / "comparison.csv", index_col="model")
    name = yale_layout.name
    for result in json.loads(stdout)["models"]:
        row = frame.loc[result["name"]]
        assert row["macro recall"] == pytest.approx(result["macro_recall"], abs=1e-4)
        assert row[f"{name} macro recall"] == pytest.approx(result["faces_benchmark"]["macro_recall"], abs=1e-4)
        assert row[f"{name} sad"] == pytest.approx(result["faces_benchmark"]["per_class"]["sad"]["recall"], abs=1e-4)
    assert f"Columns starting `{name}` are the second benchmark" in (tmp_path / "r" / "comparison.md").read_text()


@pytest.mark.parametrize("problem, argv, expected", [
    ("no such folder", ["--faces-benchmark", "{tmp}/nowhere"], "no photo benchmark at"),
    ("no expressions", ["--faces-benchmark", "{tmp}/people"], "holds no photos of the model's classes"),
])
def test_photo_benchmark_mistakes_end_in_one_line(problem, argv, expected, model_path, test_split, tmp_path):
    (tmp_path / "people" / "subject01").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "people" / "subject01" / "wink.png"), np.full((32, 32), 90, np.uint8))
    status, _, stderr = run(["--model", model_path, "--data", str(test_split), "--out", str(tmp_path / "r"),
                             *[arg.replace("{tmp}", str(tmp_path)) for arg in argv]])
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert status == 2 and "Traceback" not in stderr
    assert len(lines) == 1 and expected in lines[0], stderr


def test_logit_offsets_need_calibrate(model_path, test_split, tmp_path):
    status, _, stderr = run(["--model", model_path, "--data", str(test_split), "--logit-offsets"])
    assert status == 2 and "add --calibrate" in stderr and "Traceback" not in stderr


def test_logit_offsets_are_fitted_on_validation_stored_by_class_and_served(model_path, test_split, tmp_path,
                                                                          monkeypatch):
    """--calibrate --logit-offsets: offsets fitted for balanced accuracy on the validation split (times
    --offset-strength), in the card by class name beside T; the predictor serves softmax(logits / T + offsets).
    Compared in float32 throughout (evaluate.py too)."""
    monkeypatch.setenv("EMODETECT_PRECISION", "float32")
    write_class_folders(tmp_path / "data" / "train", per_class=6, seed=2)
    training = {"data": str(tmp_path / "data"), "val_fraction": 0.5, "seed": 3}
    path = brightness_model(str(tmp_path / "biased.h5"), training)
    status, stdout, _ = run(["--model", path, "--data", str(test_split), "--out", str(tmp_path / "r"), "--json",
                             "--calibrate", "--logit-offsets", "--offset-strength", "0.5"])
    assert status == 0
    calibration = read_card(path).calibration
    validation = datasets.load_dataset(str(tmp_path / "data"), 0.5, 3).val
    plain = Predictor.from_path(path, precision="float32")
    val_logits = np.asarray(plain.logits(validation.images), np.float64)
    assert list(calibration.logit_offsets) == FER_CLASSES
    # Fitted for balanced accuracy: at the full offsets (the stored ones over --offset-strength) the balanced
    # cross-entropy's gradient is zero, i.e. every class's probability, averaged within each true class and
    # then over the classes, is 1/7; and the offsets sum to zero.
    offsets = np.array(list(calibration.logit_offsets.values()))
    assert offsets.sum() == pytest.approx(0.0, abs=4e-4) and np.abs(offsets).max() > 0.01   # stored to 4 decimals
    fitted = softmax(val_logits / calibration.temperature + offsets / 0.5, axis=1)
    balanced = np.mean([fitted[validation.labels == label].mean(axis=0) for label in range(len(FER_CLASSES))], axis=0)
    np.testing.assert_allclose(balanced, 1 / len(FER_CLASSES), atol=2e-3)
    assert calibration.offset_strength == 0.5
    assert calibration.val_macro_recall_before is not None and calibration.val_macro_recall_after is not None
    test = datasets.load_class_folders(str(test_split), FER_CLASSES)
    served = Predictor.from_path(path, precision="float32")
    np.testing.assert_allclose(served.probabilities(test.images), softmax(
        np.asarray(served.logits(test.images), np.float64) / calibration.temperature + offsets, axis=1), atol=1e-5)
    assert json.loads(stdout)["models"][0]["logit_offsets"] == calibration.logit_offsets
    # Calibrating again without --logit-offsets leaves none.
    assert run(["--model", path, "--data", str(test_split), "--out", str(tmp_path / "r"), "--calibrate"])[0] == 0
    assert read_card(path).calibration.logit_offsets is None
