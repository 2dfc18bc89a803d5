"""make data: FER2013 from its CSV, an archive or a folder, and people's photos, put where the tools look."""
import os
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import get_data  # noqa: E402


def fer_csv(path, rows):
    """A small fer2013.csv: (emotion, usage) rows, each face a flat grey of its row number."""
    with open(path, "w") as handle:
        handle.write("emotion,pixels,Usage\n")
        for number, (emotion, usage) in enumerate(rows):
            handle.write(f"{emotion},{' '.join([str(number * 10)] * 48 * 48)},{usage}\n")
        handle.write("3,1 2 3,Training\n")   # a broken row: skipped


def test_the_csv_becomes_train_and_test_class_folders(tmp_path):
    fer_csv(tmp_path / "fer2013.csv", [(3, "Training"), (0, "Training"), (6, "PublicTest"), (4, "PrivateTest")])
    assert get_data.get_fer2013(str(tmp_path / "fer2013.csv"), str(tmp_path / "out")) == 3
    assert sorted(os.listdir(tmp_path / "out" / "train")) == ["angry", "happy"]
    assert os.listdir(tmp_path / "out" / "test") == ["neutral"]
    face = cv2.imread(str(tmp_path / "out" / "train" / "angry" / "Training_1.png"), cv2.IMREAD_GRAYSCALE)
    assert face.shape == (48, 48) and (face == 10).all()


def test_csv_rows_outside_fer2013_are_skipped_not_fatal(tmp_path):
    """A label past FER2013's seven classes or a pixel over 255 skips that row only."""
    fer_csv(tmp_path / "fer2013.csv", [(3, "Training"), (9, "Training"), (6, "PublicTest")])
    with open(tmp_path / "fer2013.csv", "a") as handle:
        handle.write(f"2,{' '.join(['300'] * 48 * 48)},Training\n")
    assert get_data.get_fer2013(str(tmp_path / "fer2013.csv"), str(tmp_path / "out")) == 2
    assert os.listdir(tmp_path / "out" / "train") == ["happy"]


def test_an_archive_of_image_folders_is_unpacked_and_copied(tmp_path):
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for split in ("train", "test"):
            handle.writestr(f"{split}/happy/a.png", cv2.imencode(".png", np.zeros((48, 48), np.uint8))[1].tobytes())
    assert get_data.get_fer2013(str(archive), str(tmp_path / "out")) == 2
    assert os.path.isfile(tmp_path / "out" / "test" / "happy" / "a.png")


def test_people_folders_are_copied_and_bad_sources_are_one_line_errors(tmp_path):
    (tmp_path / "class" / "ada").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "class" / "ada" / "1.jpg"), np.zeros((8, 8), np.uint8))
    assert get_data.get_people(str(tmp_path / "class"), str(tmp_path / "people")) == 1
    with pytest.raises(get_data.DataError, match="neither fer2013.csv nor train/"):
        get_data.get_fer2013(str(tmp_path / "class"), str(tmp_path / "out"))
    with pytest.raises(get_data.DataError, match="no folders of photos"):
        get_data.get_people(str(tmp_path / "people" / "ada"), str(tmp_path / "x"))


def test_without_a_source_it_says_where_to_get_fer2013_and_fails(tmp_path):
    """Run as make data runs it, from a copy of the project without a data set."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "get_data.py"), "--fer2013",
                             str(tmp_path / "nothing.csv")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip() == f"error: no such file or folder: {tmp_path / 'nothing.csv'}"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "get_data.py"), "--into", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "kaggle.com" in result.stderr and "make data FER2013=" in result.stderr
    fer_csv(tmp_path / "fer2013.csv", [(3, "Training"), (6, "PublicTest")])
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "get_data.py"), "--into", str(tmp_path),
                             "--fer2013", str(tmp_path / "fer2013.csv")], capture_output=True, text=True)
    assert result.returncode == 0 and os.path.isdir(tmp_path / "dataset" / "fer2013" / "test" / "neutral")


def test_a_folder_is_replaced_whole_and_a_failed_move_puts_the_old_one_back(tmp_path, monkeypatch):
    target, new = tmp_path / "ferplus", tmp_path / ".ferplus-new"
    target.mkdir(), new.mkdir()
    (target / "old.txt").write_text("old")
    (new / "new.txt").write_text("new")
    real_replace = os.replace

    def failing_second_move(source, destination):
        if os.path.basename(source) == new.name:
            raise OSError("disk full")
        real_replace(source, destination)

    monkeypatch.setattr(get_data.os, "replace", failing_second_move)
    with pytest.raises(OSError, match="disk full"):
        get_data.replace_folder(str(new), str(target))
    assert sorted(os.listdir(target)) == ["old.txt"] and sorted(os.listdir(tmp_path)) == [".ferplus-new", "ferplus"]
    monkeypatch.setattr(get_data.os, "replace", real_replace)
    get_data.replace_folder(str(new), str(target))
    assert sorted(os.listdir(target)) == ["new.txt"] and sorted(os.listdir(tmp_path)) == ["ferplus"]
