"""The model card: every shipped card loads, a card survives writing and reading, a bad one is one line
naming its key."""
import glob
import json
import os
from dataclasses import replace

import numpy as np
import pytest

from conftest import ROOT, card_fields, make_card
from utils.model.card import Calibration, card_path, CardError, ModelCard, read_card, write_card

SHIPPED = sorted(glob.glob(os.path.join(ROOT, "models", "*.h5")))


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_every_shipped_card_loads_and_is_written_back_the_same(path, tmp_path):
    card = read_card(path)
    assert card.name == os.path.splitext(os.path.basename(path))[0]
    assert card.task in ("emotion", "identity") and len(card.classes) == len(card.metrics.test_per_class)
    write_card(str(tmp_path / "copy.json"), card)
    assert read_card(str(tmp_path / "copy.h5")) == card
    with open(card_path(path)) as handle:
        assert card.to_dict() == without_nulls(json.load(handle))   # all train.py wrote, nothing added


def without_nulls(value):
    """JSON without the keys whose value is null: how a card is written."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    return value


def test_a_card_round_trips_through_its_file(tmp_path):
    card = replace(make_card("m", ["a", "b", "c"]), calibration=Calibration(temperature=1.5,
                                                                            logit_offsets={"b": 0.25}))
    write_card(str(tmp_path / "m.json"), card)
    again = read_card(str(tmp_path / "m.h5"))
    assert again == card and again.classes == ("a", "b", "c") and again.training.command == "fixture"
    temperature, offsets = again.logit_calibration()
    assert temperature == 1.5 and offsets.tolist() == [0.0, 0.25, 0.0]


def test_a_card_of_an_earlier_version_naming_its_preprocessing_function_loads_and_is_written_without_it(tmp_path):
    old = card_fields("m")
    old["preprocessing"]["function"] = "utils.faces.preprocess.preprocess"
    (tmp_path / "m.json").write_text(json.dumps(old))
    card = read_card(str(tmp_path / "m.h5"))
    assert card == make_card("m")
    write_card(str(tmp_path / "again.json"), card)
    assert "function" not in json.loads((tmp_path / "again.json").read_text())["preprocessing"]
    (tmp_path / "m.json").write_text(json.dumps(dict(old, preprocessing={**old["preprocessing"], "margin": 1})))
    with pytest.raises(CardError, match="unknown key 'preprocessing.margin'"):   # any other unknown key still is
        read_card(str(tmp_path / "m.h5"))


def test_optional_keys_take_their_defaults():
    fields = card_fields("m")
    for optional in ("preprocessing", "training", "metrics", "versions", "created"):
        del fields[optional]
    card = ModelCard.from_dict(fields)
    assert card.preprocessing.test_time_flip is False and card.preprocessing.crop_context == 1.0
    assert card.training is None and card.metrics.test_accuracy is None and card.calibration is None
    assert card.logit_calibration() == (1.0, None)
    assert card.to_dict() == {key: fields[key] for key in ("name", "task", "classes", "input", "architecture",
                                                           "parameters")} | {
        "preprocessing": {"color": "gray", "scale": [0.0, 1.0], "crop_context": 1.0, "test_time_flip": False},
        "versions": {}, "metrics": {}}


def broken(change):
    """The fixture card's JSON with ``change`` applied to it."""
    fields = card_fields("m")
    change(fields)
    return fields


@pytest.mark.parametrize("change, message", [
    (lambda card: card.pop("classes"), "missing key 'classes'"),
    (lambda card: card["input"].pop("channels"), "missing key 'input.channels'"),
    (lambda card: card["training"].pop("command"), "missing key 'training.command'"),
    (lambda card: card.update(calibation={"temperature": 2.0}), "unknown key 'calibation'"),
    (lambda card: card["preprocessing"].update(face_margin=0.1), "unknown key 'preprocessing.face_margin'"),
    (lambda card: card.update(parameters="many"), "key 'parameters' should be a whole number, not text"),
    (lambda card: card.update(parameters=True), "key 'parameters' should be a whole number, not true or false"),
    (lambda card: card["input"].update(height=48.5), "key 'input.height' should be a whole number, not a number"),
    (lambda card: card.update(classes="angry"), "key 'classes' should be a list, not text"),
    (lambda card: card["classes"].append(7), "key 'classes[7]' should be text, not a number"),
    (lambda card: card["metrics"]["test_per_class"].update(angry=None),
     "key 'metrics.test_per_class.angry' should be a number, not null"),
    (lambda card: card.update(training=[]), "key 'training' should be an object, not a list"),
    (lambda card: card["training"].update(distribution={"strategy": "mirrored", "replicas": 4, "workers": 1}),
     "missing key 'training.distribution.global_batch'"),
    (lambda card: card["training"].update(distribution={"strategy": "mirrored", "replicas": "4", "workers": 1,
                                                         "global_batch": 256}),
     "key 'training.distribution.replicas' should be a whole number, not text"),
    (lambda card: card.update(task="age"), "key 'task' should be one of emotion, identity, not 'age'"),
    (lambda card: card["classes"].append("angry"), "key 'classes' should list each class once"),
    (lambda card: card.update(calibration={"temperature": 1.0, "logit_offsets": {"contempt": 1.0}}),
     "key 'calibration.logit_offsets' names classes the card does not have: contempt"),
])
def test_a_bad_card_is_one_line_naming_its_key(change, message, tmp_path):
    (tmp_path / "m.json").write_text(json.dumps(broken(change)))
    with pytest.raises(CardError) as raised:
        read_card(str(tmp_path / "m.h5"))
    assert str(raised.value).startswith(f"model card {tmp_path / 'm.json'}: {message}")
    assert "\n" not in str(raised.value)


def test_a_card_that_is_not_json_is_one_line(tmp_path):
    (tmp_path / "m.json").write_text('{"name": "m",')
    with pytest.raises(CardError, match=r"^model card .*m\.json is not valid JSON \(.*line 1.*\)$"):
        read_card(str(tmp_path / "m.h5"))
    (tmp_path / "m.json").write_text("[]")
    with pytest.raises(CardError, match="a model card should be a JSON object, not a list"):
        read_card(str(tmp_path / "m.h5"))


def test_facts_say_what_the_card_holds():
    card = replace(make_card("m", ["a", "b"], parameters=1234), calibration=Calibration(temperature=1.25))
    facts = dict(card.facts())
    assert facts == {"architecture": "baseline, 1,234 parameters", "input": "48 x 48 x 1", "classes": "a, b",
                     "test accuracy": "50.0%", "validation accuracy": "50.0%",
                     "trained on": "fixture: 0 images, 0 epochs", "command": "fixture",
                     "calibration": "temperature 1.25", "created": "2026-01-01T00:00:00Z"}
    offsets = replace(card, calibration=Calibration(temperature=1.0, logit_offsets={"a": 0.5}))
    assert dict(offsets.facts())["calibration"] == "temperature 1.00, per-class logit offsets"
    assert np.allclose(offsets.logit_calibration()[1], [0.5, 0.0])


def test_a_crowd_entry_without_its_optional_figures_still_reads_as_facts():
    crowd = {"data": "dataset/ferplus", "faces": 2, "majority_accuracy": 0.5, "crowd_choice_probability": 0.25,
             "vote_cross_entropy": 1.5}     # vote_ece, per_class and FER2013's figures are optional
    card = ModelCard.from_dict(dict(card_fields("m", ["a", "b"]), crowd=crowd))
    assert card.crowd.vote_ece is None
    assert dict(card.facts())["judged by the crowd"] == ("says what most people said on 50.0% of 2 faces "
                                                         "(dataset/ferplus); gives their choice 0.25 on average; "
                                                         "cross-entropy to their votes 1.500")
    judged = ModelCard.from_dict(dict(card_fields("m", ["a", "b"]), crowd=dict(crowd, vote_ece=0.0312)))
    assert dict(judged.facts())["judged by the crowd"].endswith(
        "cross-entropy to their votes 1.500; calibration error against their shares 0.031")
