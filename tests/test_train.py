"""train.py end to end on a tiny fixture: model + card, history, resume, one-line errors."""
import csv
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT

CLASSES = ["angry", "happy", "sad"]


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory):
    """train/ and test/ with three classes a CNN can tell apart (bright/dark/striped)."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    patterns = {"angry": lambda: np.full((48, 48), 200),
                "happy": lambda: np.full((48, 48), 30),
                "sad": lambda: np.tile([0, 255], (48, 24))}
    for split, count in (("train", 12), ("test", 4)):
        for name in CLASSES:
            folder = root / split / name.capitalize()
            folder.mkdir(parents=True)
            for i in range(count):
                noisy = patterns[name]() + rng.normal(0, 10, (48, 48))
                cv2.imwrite(str(folder / f"{i}.png"), np.clip(noisy, 0, 255).astype(np.uint8))
    return root


def run_train(*args, cwd):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT, KERAS_HOME=str(cwd)))


@pytest.fixture(scope="module")
def trained(folder_dataset, tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    result = run_train("--data", str(folder_dataset), "--arch", "baseline", "--epochs", "1",
                       "--batch-size", "8", "--out", "models/tiny.h5", "--precision", "float32", cwd=work)
    assert result.returncode == 0, result.stderr
    return work, result


def test_one_epoch_yields_a_model_and_card_that_predict(trained):
    work, result = trained
    from utils.predict import Predictor
    predictor = Predictor.from_path(str(work / "models" / "tiny.h5"))
    card = predictor.card
    assert card["classes"] == CLASSES and card["task"] == "emotion"
    assert card["input"] == {"height": 48, "width": 48, "channels": 1}
    assert card["training"]["train_images"] == 33 and card["training"]["val_images"] == 3
    assert card["training"]["epochs"] == 1 and card["architecture"] == "baseline"
    assert set(card["metrics"]["test_per_class"]) == set(CLASSES)
    assert 0 <= card["metrics"]["test_accuracy"] <= 1
    assert card["versions"]["keras"] and card["created"].endswith("Z")
    results = predictor.predict_image(np.full((48, 48), 200, np.uint8))
    assert results[0]["label"] in CLASSES and results[0]["whole_image"]
    assert "saved models/tiny.h5" in result.stdout


def test_history_and_curves_are_written(trained):
    work, _ = trained
    with open(work / "runs" / "tiny" / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and {"accuracy", "val_accuracy", "loss", "val_loss"} <= set(rows[0])
    assert (work / "runs" / "tiny" / "curves.png").stat().st_size > 1000


def test_resume_continues_where_the_run_stopped(trained, folder_dataset):
    work, _ = trained
    result = run_train("--data", str(folder_dataset), "--arch", "baseline", "--epochs", "3",
                       "--batch-size", "8", "--out", "models/tiny.h5", "--precision", "float32",
                       "--resume", cwd=work)
    assert result.returncode == 0, result.stderr
    with open(work / "runs" / "tiny" / "history.csv") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == [0, 1, 2]          # epoch 0 was not trained again
    assert "Epoch 1/3" not in result.stdout and "Epoch 2/3" in result.stdout
    card = json.load(open(work / "models" / "tiny.json"))
    assert card["training"]["epochs"] == 3


def test_fine_tuning_starts_from_the_given_model(trained, folder_dataset):
    """With a zero learning rate the fine-tuned model must be the starting model, weight for weight."""
    work, _ = trained
    import keras
    result = run_train("--data", str(folder_dataset), "--arch", "baseline", "--epochs", "1", "--batch-size", "8",
                       "--precision", "float32", "--init-from", "models/tiny.h5", "--learning-rate", "0",
                       "--schedule", "cosine", "--erase", "1", "--out", "models/tuned.h5", cwd=work)
    assert result.returncode == 0, result.stderr
    source = keras.saving.load_model(str(work / "models" / "tiny.h5"), compile=False)
    tuned = keras.saving.load_model(str(work / "models" / "tuned.h5"), compile=False)
    for before, after in zip(source.get_weights(), tuned.get_weights()):
        np.testing.assert_array_equal(before, after)
    training = json.load(open(work / "models" / "tuned.json"))["training"]
    tiny = json.load(open(work / "models" / "tiny.json"))
    assert training["initialised_from"] == {"path": "models/tiny.h5", "command": tiny["training"]["command"],
                                            "test_accuracy": tiny["metrics"]["test_accuracy"]}
    assert training["schedule"] == "cosine" and training["random_erasing"] == 1.0


def test_cosine_schedule_decays_to_zero_and_plateau_stays_constant():
    from utils.training import learning_rate
    cosine = learning_rate("cosine", 1e-3, 100)
    assert float(cosine(0)) == pytest.approx(1e-3) and float(cosine(50)) == pytest.approx(5e-4)
    assert float(cosine(100)) == pytest.approx(0.0, abs=1e-9)
    assert learning_rate("plateau", 1e-3, 100) == 1e-3


def test_cosine_runs_its_length_and_plateau_stops_early(tmp_path):
    import keras
    from train import plateau_settings
    from utils.training import callbacks

    def kinds(schedule):
        return {type(callback) for callback in callbacks(str(tmp_path), *plateau_settings(schedule), False)}
    stoppers = {keras.callbacks.EarlyStopping, keras.callbacks.ReduceLROnPlateau}
    assert stoppers <= kinds("plateau")
    assert not stoppers & kinds("cosine") and keras.callbacks.BackupAndRestore in kinds("cosine")


@pytest.mark.parametrize("args, message", [
    (["--data", "no/such/folder"], "error: no data set at no/such/folder"),
    (["--arch", "nope"], "error: unknown architecture 'nope'"),
    (["--init-from", "no/such.h5"], "error: no model at no/such.h5"),
    (["--erase", "2"], "train.py: error: --erase must be between 0 and 1"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, folder_dataset, tmp_path):
    if "--data" not in args:
        args = args + ["--data", str(folder_dataset)]
    result = run_train(*args, "--epochs", "1", "--out", "m.h5", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in result.stderr
