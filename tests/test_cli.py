"""Every command-line tool, run as a user runs it: a mistake is one line on stderr and status 2.

TensorFlow's start-up chatter (absl, cpu_feature_guard, oneDNN) must not come first,
so the tools run without ``TF_CPP_MIN_LOG_LEVEL`` in their environment.
"""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import FER_CLASSES, ROOT, card_fields

BAD_CARD = "key 'parameters' should be a whole number, not text"


def run_tool(script, *args, cwd):
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("script, args, expected", [
    ("train.py", ["--data", "missing"], "no data set at missing"),
    ("train.py", ["--task", "identity", "--data", "missing"], "no data set at missing"),
    ("evaluate.py", ["--model", "missing.h5"], "missing.h5"),
    ("evaluate.py", ["--model", "{model}", "--data", "missing"], "missing"),
    ("visualize.py", ["missing.png", "--model", "{model}"], "no image at missing.png"),
    ("visualize.py", ["{image}", "--model", "missing.h5"], "no model at missing.h5"),
    ("real_time.py", ["--source", "missing.mp4", "--model", "{model}"], "no video file at missing.mp4"),
    ("real_time.py", ["--source", "missing.mp4", "--model", "missing.h5"], "no model at missing.h5"),
    ("index.py", ["--model", "missing.h5"], "no model at missing.h5"),
    ("evaluate.py", ["--model", "{bad}"], BAD_CARD),
    ("visualize.py", ["{image}", "--model", "{bad}"], BAD_CARD),
    ("index.py", ["--model", "{bad}"], BAD_CARD),
], ids=lambda value: "-".join(value) if isinstance(value, list) else None)
def test_a_user_mistake_is_one_line_on_stderr_and_status_2(script, args, expected, model_path, tmp_path):
    image = str(tmp_path / "photo.png")
    cv2.imwrite(image, np.zeros((8, 8, 3), np.uint8))
    bad = tmp_path / "bad.h5"   # the fixture model, its card's parameter count written as words
    shutil.copy(model_path, bad)
    (tmp_path / "bad.json").write_text(json.dumps(card_fields("bad", parameters="many")))
    args = [arg.format(model=model_path, image=image, bad=bad) for arg in args]
    result = run_tool(script, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], result.stderr


def faces_in_class_folders(root, classes, per_class=4):
    """``root``/train and ``root``/test, each with ``per_class`` plain 48x48 faces in a folder per class."""
    for split in ("train", "test"):
        for label, name in enumerate(classes):
            os.makedirs(root / split / name)
            for index in range(per_class):
                cv2.imwrite(str(root / split / name / f"{index}.png"), np.full((48, 48), 20 * label + index, np.uint8))
    return root


@pytest.mark.parametrize("script, args, expected", [
    ("evaluate.py", ["--model", "{model}", "--data", "{data}/test", "--record-crowd"],
     "has no votes to judge the model by: --record-crowd needs FER+"),
    ("train.py", ["--data", "{data}", "--pixels", "equalised", "--epochs", "1"],
     "--pixels equalised is for FER+'s raw faces (a data set with votes)"),
], ids=["evaluate-record-crowd", "train-pixels"])
def test_an_option_for_votes_on_data_without_votes_is_one_line_and_nothing_is_written(script, args, expected,
                                                                                      model_path, tmp_path):
    """Said once the data is read (its progress bar is all that comes before), not after a model has been
    read through or trained."""
    data = faces_in_class_folders(tmp_path / "faces", FER_CLASSES)
    result = run_tool(script, *[arg.format(model=model_path, data=data) for arg in args], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip() and "images/s]" not in line]
    assert len(errors) == 1 and errors[0].startswith("error:") and expected in errors[0], result.stderr
    assert not (tmp_path / "reports").exists() and not (tmp_path / "models").exists()
