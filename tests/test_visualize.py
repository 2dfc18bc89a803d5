"""visualize.py: one photo -> PNGs for every layer and explanation, and an index.html
that shows them in network order; one-line errors for a user's mistakes."""
import os
import re
import sys

import cv2
import pytest

import visualize
from utils.cli import run_cli


def run(argv, capsys):
    """Run the CLI in this process: ``(exit status, stdout, stderr)``."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(visualize.main, argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut_bgr):
    path = str(tmp_path_factory.mktemp("photos") / "astronaut.png")
    cv2.imwrite(path, astronaut_bgr)
    return path


def test_writes_every_layer_and_explanation_in_network_order(photo, model_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "shap", None)  # SHAP missing: a note, and everything else still works
    status, out, err = run([photo, "--model", model_path, "--out", str(tmp_path),
                            "--methods", "gradcam,regions,shap", "--class", "Happy"], capsys)
    assert status == 0, err
    assert "explaining happy" in out
    assert "pip install -r requirements-xai.txt" in err
    page = (tmp_path / "index.html").read_text()
    pictures = re.findall(r"src='([^']+\.png)'", page)
    assert all((tmp_path / name).is_file() for name in pictures)
    expected = ["00_input", "01_conv1", "01_conv1_kernels", "02_pool1", "03_conv2", "04_pool2", "05_conv3",
                "06_pool3", "07_flatten", "08_dense", "09_dropout", "10_logits", "11_probabilities",
                "gradcam", "gradcam_classes", "regions"]
    assert [os.path.splitext(name)[0] for name in pictures] == expected
    assert "output 46x46x32" in page and "forehead/brows" in page and "SHAP (not installed)" in page


def test_operations_are_added_and_their_results_printed(photo, model_path, tmp_path, capsys):
    from utils.explain.operations import LayerOperations
    from utils.media.decode import read_image
    from utils.model.predict import Predictor
    status, out, err = run([photo, "--model", model_path, "--out", str(tmp_path), "--methods", "regions",
                            "--operation", "conv2:5:3:4", "--operation", "logits:3"], capsys)
    assert status == 0, err
    predictor = Predictor.from_path(model_path)
    face = predictor.choose_face(read_image(photo)).input
    operations = LayerOperations(predictor.model)
    conv, logits = operations.operation(face, "conv2", 5, 3, 4), operations.operation(face, "logits", 3)
    assert f"conv2 (Conv2D) at row 3, column 4, channel 5: {conv['result']!r}\n" in out
    assert f"logits (Dense) at unit 3: {logits['result']!r}\n" in out
    page = (tmp_path / "index.html").read_text()
    assert "<h2>Operation: conv2 at row 3, column 4, channel 5</h2>" in page and "<pre>" in page
    assert "input channel 0: its products add up to" in page and "Unit 3 (happy)" in page
    assert page.count("the same number.") == 2


@pytest.mark.parametrize("extra, message", [
    (["--operation", "conv2:x"], "is not LAYER:CHANNEL:Y:X"),
    (["--operation", "nope:0:0:0"], "unknown layer 'nope'"),
    (["--operation", "conv2:0:30:0"], "outside layer 'conv2'"),
    (["--layer", "nope"], "unknown layer 'nope'"),
    (["--layer", "dense"], "no feature maps"),
    (["--class", "bored"], "unknown class 'bored'"),
    (["--face", "3"], "there is no face 3: the image has 1 face"),
    (["--methods", "gradcam,magic"], "unknown method 'magic'"),
])
def test_bad_choices_end_in_one_line(photo, model_path, tmp_path, capsys, extra, message):
    status, _, err = run([photo, "--model", model_path, "--out", str(tmp_path)] + extra, capsys)
    assert status == 2
    assert err.strip().count("\n") == 0 and err.startswith("error: ") and message in err


def test_unreadable_or_missing_image(model_path, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    for path, message in ((str(broken), "not an image"), (str(tmp_path / "none.jpg"), "no image at")):
        status, _, err = run([path, "--model", model_path, "--out", str(tmp_path)], capsys)
        assert status == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
