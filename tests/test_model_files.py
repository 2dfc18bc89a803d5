"""A model and its card are replaced while others read them: never new weights with the old card.

save_model renames the model into place, then the card naming the model file's
SHA-256; load_model takes a pair only when the card names the file it loaded.
"""
import shutil
import threading
from dataclasses import replace

import keras
import pytest

from conftest import make_card
from utils.model.architectures import build_model
from utils.model.card import Calibration, card_path, read_card, write_card
from utils.model.store import load_model, save_model
from utils.serving.model_file import ModelFile


def saved(path, classes):
    """A small random seed CNN with ``classes`` saved at ``path``, as train.py saves it."""
    model = build_model("baseline", (48, 48, 1), len(classes))
    save_model(model, str(path), make_card(path.stem, classes))
    return str(path)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """``(a, b)``: the paths of a 3-class and a 5-class model."""
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("two")
    return saved(folder / "a.h5", ["x", "y", "z"]), saved(folder / "b.h5", list("pqrst"))


def outputs(model):
    return model.output_shape[-1]


def test_the_card_names_the_weights_it_was_written_for(two_models, tmp_path):
    a, _ = two_models
    model, card = load_model(a)
    assert len(card.weights_sha256) == 64 and outputs(model) == len(card.classes) == 3
    for suffix in (".h5", ".json"):  # copied together elsewhere, they still belong together
        shutil.copy(a[:-3] + suffix, tmp_path / ("copy" + suffix))
    assert load_model(str(tmp_path / "copy.h5"))[1].classes == ("x", "y", "z")


def test_new_weights_beside_the_old_card_are_never_paired(two_models, tmp_path):
    """The moment between save_model's two renames: the new model is in place, its card not yet."""
    a, b = two_models
    path = str(tmp_path / "m.h5")
    for suffix in (".h5", ".json"):
        shutil.copy(a[:-3] + suffix, tmp_path / ("m" + suffix))
    shutil.copy(b, path)  # the model renamed into place; the card still a's
    with pytest.raises(ValueError) as mismatch:
        load_model(path, tries=2)
    assert "do not match" in str(mismatch.value) and "\n" not in str(mismatch.value)
    shutil.copy(card_path(b), card_path(path))  # the card follows
    model, card = load_model(path)
    assert outputs(model) == len(card.classes) == 5


def test_a_reader_waits_for_the_card_to_follow(two_models, tmp_path):
    """A load that finds the card behind is read again until the card arrives."""
    a, b = two_models
    path = str(tmp_path / "m.h5")
    for suffix in (".h5", ".json"):
        shutil.copy(a[:-3] + suffix, tmp_path / ("m" + suffix))
    shutil.copy(b, path)
    timer = threading.Timer(0.2, lambda: shutil.copy(card_path(b), card_path(path)))
    timer.start()
    model, card = load_model(path)
    timer.join()
    assert outputs(model) == len(card.classes) == 5


def test_readers_during_repeated_saves_always_get_a_matching_pair(tmp_path):
    path = tmp_path / "busy.h5"
    keras.utils.set_random_seed(1)
    models = [(build_model("baseline", (48, 48, 1), n), make_card("busy", [f"c{i}" for i in range(n)]))
              for n in (3, 5)]
    save_model(models[0][0], str(path), models[0][1])
    done, mismatches, loads = threading.Event(), [], []

    def read():
        while not done.is_set():
            model, card = load_model(str(path))
            loads.append(1)
            if outputs(model) != len(card.classes):
                mismatches.append((outputs(model), len(card.classes)))
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for turn in range(8):
            model, card = models[turn % 2]
            save_model(model, str(path), card)
    finally:
        done.set()
        reader.join(timeout=60)
    assert loads and mismatches == []


def test_a_card_from_before_the_stamp_is_read_as_it_is(two_models, tmp_path):
    a, _ = two_models
    shutil.copy(a, tmp_path / "old.h5")
    write_card(str(tmp_path / "old.json"), make_card("old", ["x", "y", "z"]))  # no weights_sha256
    assert load_model(str(tmp_path / "old.h5"))[1].name == "old"


def test_model_file_reloads_when_only_the_card_changes(two_models, tmp_path):
    a, _ = two_models
    for suffix in (".h5", ".json"):
        shutil.copy(a[:-3] + suffix, tmp_path / ("identity" + suffix))
    path = str(tmp_path / "identity.h5")
    file = ModelFile(path)
    first = file.get()
    assert file.get() is first
    card = replace(read_card(path), calibration=Calibration(temperature=2.0))  # what evaluate.py --calibrate writes
    write_card(card_path(path), card)
    again = file.get()
    assert again is not first and again.card.calibration.temperature == 2.0
