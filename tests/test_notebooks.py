"""The notebooks run top to bottom on a small data set, and are committed without outputs.

Each notebook runs in its own kernel with the working folder under ``tmp_path`` and its
parameters cell overridden (papermill's way): the project folder, a FER2013-shaped set of
class folders the test builds from the astronaut's face, and a few faces and one epoch,
so all of them run in a minute or two. A cell that raises fails the test with its traceback.
"""
import os
import re
import sys

import cv2
import numpy as np
import pytest

from conftest import FER_CLASSES, ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import notebooks  # noqa: E402

TRAIN_PER_CLASS = 20   # enough for the validation split to keep two faces of every class
TEST_PER_CLASS = 3
# Small versions of each notebook's data-hungry parameters (a name the notebook lacks is an error).
SMALL = {
    "01_fer2013": {"EXAMPLES": 3},
    "02_why_a_cnn": {"TRAIN_PER_CLASS": 6, "EPOCHS": 1, "BATCH_SIZE": 16},
    "03_overfitting": {"TRAIN_PER_CLASS": 6, "VAL_PER_CLASS": 1, "EPOCHS": 1, "BATCH_SIZE": 16},
    "04_softmax_and_cross_entropy": {},
    "05_inside_the_shipped_model": {},
    "06_where_it_fails": {"MISTAKES": 4},
}
PROGRESS_BAR = re.compile(r".*\d+%\|.*\| *\d+/\d+ \[.*\]")   # tqdm's, redrawn after a carriage return
NAMES = [os.path.splitext(os.path.basename(path))[0] for path in notebooks.notebook_paths()]
# The notebooks that load a model (a MODEL parameter), run again on the eight-class fixture; the others
# read only the data set, whose own classes they take (parts 1 to 3: FER2013, and the networks they train).
EIGHT_CLASS_RUNS = ["04_softmax_and_cross_entropy", "05_inside_the_shipped_model", "06_where_it_fails"]


@pytest.fixture(scope="module")
def small_fer2013(tmp_path_factory, astronaut_bgr, astronaut_face_box):
    """``train/`` and ``test/`` class folders of 48x48 JPEGs: the astronaut's face shifted, brightened
    and noised differently for every file, plus what part 1 looks for in FER2013 (one picture
    filed under two emotions, one blank picture)."""
    root = tmp_path_factory.mktemp("fer2013")
    x, y, w, h = astronaut_face_box
    gray = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    rng = np.random.default_rng(0)

    def face():
        dx, dy = rng.integers(-8, 9, size=2)
        crop = cv2.resize(gray[y + dy:y + dy + h, x + dx:x + dx + w], (48, 48), interpolation=cv2.INTER_AREA)
        noisy = crop * rng.uniform(0.7, 1.2) + rng.normal(0, 12, crop.shape)
        return np.uint8(np.clip(noisy, 0, 255))

    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for name in FER_CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                cv2.imwrite(str(folder / f"{split}_{name}_{index:03d}.jpg"), face())
    twice = face()
    cv2.imwrite(str(root / "train" / "sad" / "copy_a.jpg"), twice)
    cv2.imwrite(str(root / "train" / "angry" / "copy_b.jpg"), twice)
    cv2.imwrite(str(root / "train" / "fear" / "blank.jpg"), np.full((48, 48), 128, np.uint8))
    return str(root)


@pytest.fixture(scope="module")
def small_ferplus(small_fer2013, tmp_path_factory):
    """FER+'s layout over the small set's faces: ten votes each (some faces split, one most people call
    unknown) and FER2013's own label of each, as ``make data FERPLUS=...`` writes them."""
    import csv

    from utils.train.ferplus import CLASS_OF_COLUMN, VOTE_COLUMNS
    root = tmp_path_factory.mktemp("ferplus")
    rng = np.random.default_rng(1)
    column = {name: VOTE_COLUMNS.index(word) for word, name in CLASS_OF_COLUMN.items()}
    for split, folder in (("train", "FER2013Train"), ("test", "FER2013Valid")):
        (root / folder).mkdir()
        files = sorted((name, file) for name in FER_CLASSES for file in os.listdir(os.path.join(small_fer2013, split, name)))
        with open(root / folder / "label.csv", "w", newline="") as labels, \
                open(root / folder / "fer2013_label.csv", "w", newline="") as fer2013:
            for number, (name, file) in enumerate(files):
                votes = np.zeros(len(VOTE_COLUMNS), int)
                votes[column[name]] = 6 if number % 3 else 4                       # a third of the faces split
                votes[rng.choice([column["neutral"], column["sad"], VOTE_COLUMNS.index("unknown")])] += 10 - votes.sum()
                image = f"fer{number:07d}.png"
                cv2.imwrite(str(root / folder / image), cv2.imread(os.path.join(small_fer2013, split, name, file), 0))
                csv.writer(labels).writerow([image, "(0, 0, 48, 48)", *votes])
                csv.writer(fer2013).writerow([image, name])
    return str(root)


@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_runs_top_to_bottom_on_a_small_data_set(name, small_fer2013, small_ferplus, model_path,
                                                           eight_class_model_path, tmp_path):
    pytest.importorskip("nbclient", reason="the notebook tests need nbclient and ipykernel (make setup-dev)")
    pytest.importorskip("ipykernel", reason="the notebook tests need nbclient and ipykernel (make setup-dev)")
    crowd = {"FERPLUS": small_ferplus, "FER2013_MODEL": model_path, "FERPLUS_MODEL": eight_class_model_path}
    parameters = {"PROJECT": ROOT, "DATA": small_fer2013, **SMALL[name], **(crowd if name == "01_fer2013" else {})}
    executed = notebooks.execute(os.path.join(notebooks.NOTEBOOKS, name + ".ipynb"), str(tmp_path), parameters)
    outputs = [output for cell in executed.cells for output in cell.get("outputs", [])]
    # A cell that raises stops nbclient with its traceback; what a cell only warns about (a deprecation, a
    # library's note, a caught error printed) lands on stderr, where only progress bars belong.
    written = [line for output in outputs if output.get("name") == "stderr"
               for line in re.split(r"[\r\n]+", output["text"]) if line.strip() and not PROGRESS_BAR.fullmatch(line)]
    assert not written, "\n".join(written)
    assert any("image/png" in output.get("data", {}) for output in outputs), "the notebook drew no figure"
    if name == "01_fer2013":   # the crowd's section ran on the small FER+ set and compared both models
        shown = outputs_text(executed)
        assert "FER2013's one label is what most of the ten people said on" in shown
        assert "taught by FER+'s ten votes" in shown and "agrees with the crowd's majority" in shown


def outputs_text(executed):
    """Everything the executed notebook's cells showed as text (printed, or a table's text and HTML)."""
    return "\n".join(output.get("text", "") + output.get("data", {}).get("text/plain", "")
                     + output.get("data", {}).get("text/html", "")
                     for cell in executed.cells for output in cell.get("outputs", []))


@pytest.mark.parametrize("name", EIGHT_CLASS_RUNS)
def test_the_notebook_runs_on_an_eight_class_model(name, small_fer2013, eight_class_model_path, model_path, tmp_path):
    """FER+'s eight classes on FER2013's faces (no face is contempt); part 6 compares it with a
    seven-class model, whose answers are matched to its classes by name. The fixture answers contempt:
    a notebook that left the eighth class out would show no contempt, or fail."""
    pytest.importorskip("nbclient", reason="the notebook tests need nbclient and ipykernel (make setup-dev)")
    pytest.importorskip("ipykernel", reason="the notebook tests need nbclient and ipykernel (make setup-dev)")
    parameters = {"PROJECT": ROOT, "DATA": small_fer2013, "MODEL": eight_class_model_path, **SMALL[name],
                  **({"BASELINE": model_path} if name == "06_where_it_fails" else {})}
    executed = notebooks.execute(os.path.join(notebooks.NOTEBOOKS, name + ".ipynb"), str(tmp_path), parameters)
    assert not [output for cell in executed.cells for output in cell.get("outputs", [])
                if output.get("output_type") == "error"]
    assert "contempt" in outputs_text(executed)


def test_every_notebook_is_tested_and_overrides_only_parameters_it_has():
    assert sorted(NAMES) == sorted(SMALL) and len(NAMES) >= 2
    for name in NAMES:
        names = notebooks.parameter_names(notebooks.read(os.path.join(notebooks.NOTEBOOKS, name + ".ipynb")))
        assert {"PROJECT", "DATA"} | set(SMALL[name]) <= set(names), name
        assert ("MODEL" in names) == (name in EIGHT_CLASS_RUNS), name   # every notebook that loads a model


@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_is_committed_without_outputs(name):
    notebook = notebooks.read(os.path.join(notebooks.NOTEBOOKS, name + ".ipynb"))
    assert not notebooks.cells_with_outputs(notebook), (
        f"{name}.ipynb holds outputs: run python scripts/notebooks.py clear before committing")


def test_parameters_are_injected_after_the_parameters_cell_and_misspelt_ones_refused():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell('DATA = "dataset"\nEPOCHS = 10', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(DATA, EPOCHS)"),
    ])
    changed = notebooks.with_parameters(notebook, {"DATA": "/tmp/small", "EPOCHS": 1})
    assert [cell.source for cell in changed.cells[1:3]] == [
        'DATA = "dataset"\nEPOCHS = 10', "# Injected parameters\nDATA = '/tmp/small'\nEPOCHS = 1\n"]
    assert changed.cells[2].metadata["tags"] == ["injected-parameters"]
    assert len(notebook.cells) == 3                         # the original is left as it was
    with pytest.raises(ValueError, match="unknown parameter EPOCH "):
        notebooks.with_parameters(notebook, {"EPOCH": 1})
    with pytest.raises(ValueError, match="no code cell tagged 'parameters'"):
        notebooks.with_parameters(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), {"x": 2})


def test_clear_removes_outputs_and_execution_counts():
    nbformat = pytest.importorskip("nbformat")
    cell = nbformat.v4.new_code_cell("1 + 1", execution_count=3,
                                     outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2"},
                                                                     execution_count=3)])
    cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    notebook = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("text")])
    assert notebooks.cells_with_outputs(notebook) == [0]
    assert notebooks.clear(notebook)
    assert notebooks.cells_with_outputs(notebook) == [] and "execution" not in cell.metadata
    assert not notebooks.clear(notebook)                    # nothing left to clear
