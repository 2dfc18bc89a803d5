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
from utils.model.card import InputSize

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
    from utils.model.predict import Predictor
    predictor = Predictor.from_path(str(work / "models" / "tiny.h5"))
    card = predictor.card
    assert card.classes == tuple(CLASSES) and card.task == "emotion"
    assert card.input == InputSize(height=48, width=48, channels=1)
    assert card.training.train_images == 33 and card.training.val_images == 3
    assert card.training.epochs == 1 and card.architecture == "baseline"
    assert card.training.augmentation and card.preprocessing.test_time_flip and card.training.schedule == "plateau"
    assert card.training.command.startswith("python train.py --data ") and "--epochs 1" in card.training.command
    assert set(card.metrics.test_per_class) == set(CLASSES)
    assert 0 <= card.metrics.test_accuracy <= 1
    assert card.versions.keras and card.created.endswith("Z")
    results = predictor.predict_image(np.full((48, 48), 200, np.uint8))
    assert results[0]["label"] in CLASSES and results[0]["whole_image"]
    assert "saved models/tiny.h5" in result.stdout


def test_the_run_status_says_the_model_was_saved(trained):
    work, _ = trained
    status = json.load(open(work / "runs" / "tiny" / "status.json"))
    card = json.load(open(work / "models" / "tiny.json"))
    assert status["state"] == "saved" and status["model"] == "models/tiny.h5"
    assert (status["epoch"], status["epochs"]) == (1, 1) and status["metrics"] == card["metrics"]


def test_the_run_status_is_written_after_every_epoch(tmp_path):
    """What utils.train.jobs reads while a run goes on: the epochs done, of how many, and the last epoch's scores."""
    import keras
    from utils.train.fit import RunStatus

    class Reader(keras.callbacks.Callback):   # runs after the status in the list: sees what it wrote
        seen = []

        def on_train_begin(self, logs=None):
            self.seen.append(json.load(open(tmp_path / "status.json")))

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append(json.load(open(tmp_path / "status.json")))

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    status, reader = RunStatus(str(tmp_path), epochs=3, done=1), Reader()
    model.fit(np.zeros((8, 4)), np.ones((8, 3)), epochs=3, initial_epoch=1, verbose=0, callbacks=[status, reader])
    assert [(seen["state"], seen["epoch"], seen["epochs"]) for seen in reader.seen] == [
        ("training", 1, 3), ("training", 2, 3), ("training", 3, 3)]
    assert set(reader.seen[-1]["metrics"]) == {"loss"} and reader.seen[-1]["model"] is None
    assert reader.seen[0]["updated"] <= reader.seen[-1]["updated"]


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
    status = json.load(open(work / "runs" / "tiny" / "status.json"))
    assert (status["state"], status["epoch"], status["epochs"]) == ("saved", 3, 3)


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


def test_weight_averaging_ships_the_better_of_average_and_best_epoch(trained, folder_dataset):
    work, _ = trained
    result = run_train("--data", str(folder_dataset), "--arch", "baseline", "--epochs", "2", "--batch-size", "8",
                       "--precision", "float32", "--init-from", "models/tiny.h5", "--schedule", "cyclic",
                       "--average-weights", "--out", "models/averaged.h5", cwd=work)
    assert result.returncode == 0, result.stderr
    card = json.load(open(work / "models" / "averaged.json"))
    note = card["training"]["weight_average"]
    assert note["epochs_averaged"] == 2 and card["training"]["schedule"] == "cyclic"
    average_wins = note["val_accuracy"] >= note["best_epoch_val_accuracy"]
    assert note["shipped"] == ("weight average" if average_wins else "best epoch")
    assert card["metrics"]["val_accuracy"] == max(note["val_accuracy"], note["best_epoch_val_accuracy"])
    import keras
    from utils.train.fit import read_average
    shipped = keras.saving.load_model(str(work / "models" / "averaged.h5"), compile=False)
    if average_wins:   # the seed CNN has no batch norm: the shipped weights are the mean itself
        expected = read_average(str(work / "runs" / "averaged" / "average.weights.npz"))[0]
    else:
        best = keras.models.clone_model(shipped)
        best.load_weights(str(work / "runs" / "averaged" / "best.weights.h5"))
        expected = best.get_weights()
    for got, want in zip(shipped.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_distillation_records_its_teacher_and_refuses_a_mismatched_one(trained, folder_dataset):
    work, _ = trained
    result = run_train("--data", str(folder_dataset), "--arch", "vgg_small", "--epochs", "1", "--batch-size", "8",
                       "--precision", "float32", "--teacher", "models/tiny.h5", "--teacher-weight", "0.3",
                       "--out", "models/student.h5", cwd=work)
    assert result.returncode == 0, result.stderr
    card = json.load(open(work / "models" / "student.json"))
    tiny = json.load(open(work / "models" / "tiny.json"))
    assert card["architecture"] == "vgg_small" and card["classes"] == CLASSES
    assert card["training"]["teacher"] == {"path": "models/tiny.h5", "architecture": "baseline",
                                           "test_accuracy": tiny["metrics"]["test_accuracy"],
                                           "weight": 0.3, "temperature": 4.0}
    (work / "models" / "typo.h5").write_bytes((work / "models" / "tiny.h5").read_bytes())
    (work / "models" / "typo.json").write_text(json.dumps(dict(tiny, clases=CLASSES)))
    typo = run_train("--data", str(folder_dataset), "--epochs", "1", "--teacher", "models/typo.h5",
                     "--out", "models/other.h5", cwd=work)
    assert typo.returncode == 2 and typo.stderr.strip().splitlines()[-1] == \
        "error: model card models/typo.json: unknown key 'clases'"
    bigger = run_train("--data", str(folder_dataset), "--arch", "baseline", "--img-size", "64", "--epochs", "1",
                       "--teacher", "models/tiny.h5", "--out", "models/other.h5", cwd=work)
    assert bigger.returncode == 2 and "Traceback" not in bigger.stderr
    assert bigger.stderr.strip().splitlines()[-1] == "error: teacher models/tiny.h5 takes (48, 48, 1) faces, not (64, 64, 1)"


def test_cosine_schedule_decays_to_zero_and_plateau_stays_constant():
    from utils.train.fit import learning_rate
    cosine = learning_rate("cosine", 1e-3, 100, 10)
    assert float(cosine(0)) == pytest.approx(1e-3) and float(cosine(50)) == pytest.approx(5e-4)
    assert float(cosine(100)) == pytest.approx(0.0, abs=1e-9)
    assert learning_rate("plateau", 1e-3, 100, 10) == 1e-3


def test_cyclic_schedule_falls_within_each_epoch_and_restarts():
    from utils.train.fit import learning_rate
    cyclic = learning_rate("cyclic", 1e-3, 100, 10)
    assert float(cyclic(0)) == pytest.approx(1e-3) and float(cyclic(5)) == pytest.approx(5e-4)
    assert float(cyclic(9)) < 3e-5                       # the end of an epoch: a low-rate point
    assert float(cyclic(10)) == pytest.approx(1e-3) and float(cyclic(95)) == pytest.approx(5e-4)


def test_weight_average_is_the_mean_of_epoch_ends_and_survives_a_resume(tmp_path):
    """Three epochs, interrupted after two: the saved mean equals the mean of the three epochs' weights."""
    import keras
    from utils.train.fit import AVERAGE_FILE, read_average, WeightAverage

    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(self.model.get_weights())

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = np.random.default_rng(0).normal(size=(2, 32, 4))[0], np.ones((32, 3))
    recorder = Recorder()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[WeightAverage(str(tmp_path), False), recorder])
    model.fit(x, y, epochs=3, initial_epoch=1, verbose=0,          # epoch 1 redone after the "interruption"
              callbacks=[WeightAverage(str(tmp_path), True), recorder])
    weights, count, next_epoch = read_average(str(tmp_path / AVERAGE_FILE))
    assert (count, next_epoch) == (3, 3)
    kept = [recorder.ends[0], recorder.ends[1], recorder.ends[3]]   # the redone epoch 1 is not counted twice
    for i, mean in enumerate(weights):
        np.testing.assert_allclose(mean, np.mean([ends[i] for ends in kept], axis=0), rtol=1e-6, atol=1e-7)


def test_a_run_without_an_average_says_so(tmp_path):
    from utils.train.fit import read_average
    with pytest.raises(FileNotFoundError, match="did not average its weights"):
        read_average(str(tmp_path / "average.weights.npz"))


def test_recompute_batch_norm_measures_the_exact_mean_and_variance():
    import keras
    from utils.train.fit import recompute_batch_norm
    inputs = keras.Input((5, 5, 2))
    norm = keras.layers.BatchNormalization(momentum=0.99)
    model = keras.Model(inputs, norm(inputs))
    images = np.random.default_rng(1).normal(3.0, 2.0, (300, 5, 5, 2)).astype("float32")
    recompute_batch_norm(model, images, batch_size=100)
    pixels = images.reshape(-1, 2)
    np.testing.assert_allclose(np.asarray(norm.moving_mean), pixels.mean(axis=0), rtol=1e-4)
    # each batch's own variance, averaged: within a hair of the whole set's for batches this size
    np.testing.assert_allclose(np.asarray(norm.moving_variance), pixels.var(axis=0), rtol=2e-3)
    assert norm.momentum == 0.99                          # training settings restored


def test_cosine_runs_its_length_and_plateau_stops_early(tmp_path):
    import keras
    from train import plateau_settings
    from utils.train.fit import callbacks

    def kinds(schedule):
        return {type(callback) for callback in callbacks(str(tmp_path), *plateau_settings(schedule), False)}
    stoppers = {keras.callbacks.EarlyStopping, keras.callbacks.ReduceLROnPlateau}
    assert stoppers <= kinds("plateau")
    assert not stoppers & kinds("cosine") and keras.callbacks.BackupAndRestore in kinds("cosine")
    assert not stoppers & kinds("cyclic")


@pytest.mark.parametrize("args, message", [
    (["--data", "no/such/folder"], "error: no data set at no/such/folder"),
    (["--arch", "nope"], "error: unknown architecture 'nope'"),
    (["--init-from", "no/such.h5"], "error: no model at no/such.h5"),
    (["--erase", "2"], "train.py: error: --erase and --served-share must be between 0 and 1"),
    (["--served-share", "-1"], "train.py: error: --erase and --served-share must be between 0 and 1"),
    (["--teacher", "no/such.h5"], "error: no model at no/such.h5"),
    (["--teacher-weight", "1.5"], "train.py: error: --teacher-weight must be between 0 and 1"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, folder_dataset, tmp_path):
    if "--data" not in args:
        args = args + ["--data", str(folder_dataset)]
    result = run_train(*args, "--epochs", "1", "--out", "m.h5", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in result.stderr
