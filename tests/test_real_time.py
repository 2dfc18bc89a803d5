"""real_time.py and utils/live/: tracking, smoothing, reconnection, and a headless run on a built video."""
import csv
import os
import re
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import FER_CLASSES, ROOT
from utils.faces import detect
from utils.faces.face import Face, iou
from utils.live import drawing, sources
from utils.live.records import probabilities_over_time, summary_table, timeline_fields, timeline_rows
from utils.live.tracking import FaceTracker, VideoAnalyser
from utils.model.predict import ChosenFace

FRAMES, EVERY = 12, 2


# utils.live, without a model --------------------------------------------------------------

def test_tracker_keeps_ids_by_position_and_forgets_lost_faces():
    def faces(*boxes):
        return [Face(box, 0.9) for box in boxes]
    tracker = FaceTracker(max_missed=2)
    tracker.update(faces((100, 100, 50, 50), (500, 100, 50, 50)))
    tracker.update(faces((300, 100, 50, 50), (104, 102, 50, 50)))  # the first face moved; a second appeared
    # The first is confirmed; the false alarm at 500 is gone; the new face has no id until seen again.
    assert [(t.id, t.box) for t in tracker.tracks] == [(1, (104, 102, 50, 50)), (None, (300, 100, 50, 50))]
    for _ in range(3):
        tracker.update(faces((302, 100, 50, 50)))
    assert [(t.id, t.box) for t in tracker.tracks] == [(2, (302, 100, 50, 50))]


class FlickeringPredictor:
    """Raw labels that alternate happy / sad every frame, as a borderline face's do."""
    classes = ["happy", "sad"]

    def __init__(self):
        self.calls = 0

    def choose_found(self, image, found, threshold):
        self.calls += 1
        happy = 0.7 if self.calls % 2 else 0.45
        return [ChosenFace({**face.to_json(), "label": "happy" if happy > 0.5 else "sad",
                            "confidence": max(happy, 1 - happy), "probabilities": {"happy": happy, "sad": 1 - happy},
                            "uncertain": False, "whole_image": False}, crop=None, input=None, count=len(found))
                for face in found]


@pytest.mark.parametrize("detector", ["blazeface", "haar"])
def test_analyser_smooths_labels_and_confirms_faces(astronaut_bgr, astronaut_face_box, detector):
    analyser = VideoAnalyser(FlickeringPredictor(), threshold=0.35, detect_every=3, detector=detector)
    results = [analyser.analyse(astronaut_bgr) for _ in range(8)]
    assert results[0] == ([], True)  # a face is labelled once seen twice
    labelled = [found for found, analysed in results[1:]]
    assert all(len(found) == 1 and found[0]["id"] == 1 and found[0]["label"] == "happy" for found in labelled)
    assert iou(labelled[-1][0]["box"], astronaut_face_box) > 0.5  # followed between detections
    assert len(labelled[-1][0]["keypoints"]) == (6 if detector == "blazeface" else 0)
    assert set(analyser.seconds) == {"detect", "predict"}


@pytest.mark.parametrize("detector, searches", [
    # Either detector searches the whole frame every 10th analysed frame, sooner once the face is lost
    # (the 8th frame, after the blank 7th), following it near where it was in between.
    ("blazeface", ["whole", "near", "near", "near", "near", "near", "near", "whole"]),
    ("haar", ["whole", "near", "near", "near", "near", "near", "near", "whole"]),
])
def test_the_whole_frame_is_searched_as_often_as_the_detector_needs(astronaut_bgr, monkeypatch, detector, searches):
    calls, find_faces, find_near = [], detect.find_faces, detect.find_near
    monkeypatch.setattr(detect, "find_faces", lambda *args: calls.append("whole") or find_faces(*args))
    monkeypatch.setattr(detect, "find_near", lambda *args: calls.append("near") or find_near(*args))
    analyser = VideoAnalyser(FlickeringPredictor(), threshold=0.35, detector=detector)
    blank = np.zeros_like(astronaut_bgr)
    for frame in [astronaut_bgr] * 6 + [blank, blank]:
        analyser.analyse(frame)
    assert calls == searches
    assert analyser.tracker.tracks == [] or all(track.missed for track in analyser.tracker.tracks)


def test_a_followed_face_keeps_its_keypoints_current(astronaut_bgr):
    """Following with BlazeFace's short-range network, a face that moves brings its keypoints along."""
    from utils.faces.detect import find_faces, find_near
    face = find_faces(astronaut_bgr)[0]
    moved = np.roll(astronaut_bgr, 12, axis=1)
    followed = find_near(moved, face.box, "blazeface")
    assert followed is not None and len(followed.keypoints) == 6
    assert followed.keypoints["nose"][0] - face.keypoints["nose"][0] == pytest.approx(12, abs=3)


def test_every_reuses_the_last_results_between_analysed_frames(astronaut_bgr):
    analyser = VideoAnalyser(FlickeringPredictor(), threshold=0.35, every=3)
    flags = [analyser.analyse(astronaut_bgr)[1] for _ in range(7)]
    assert flags == [True, False, False, True, False, False, True]


class FlakyCapture:
    """A camera that fails ``failures`` reads, reopened or not, then gives frames."""
    failures = 0

    def __init__(self, source):
        pass

    def isOpened(self):
        return True

    def read(self):
        if FlakyCapture.failures:
            FlakyCapture.failures -= 1
            return False, None
        return True, np.zeros((4, 4, 3), np.uint8)

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def test_live_source_reconnects_then_gives_up(capsys):
    source = sources.VideoSource("0", retries=3, wait=0, opener=FlakyCapture)
    FlakyCapture.failures = 3  # the failed read and two reconnections
    assert source.read() is not None and not source.lost
    FlakyCapture.failures = 10
    assert source.read() is None and source.lost
    assert "reconnecting (3/3)" in capsys.readouterr().err


class DeadCapture:
    """A camera that opens but never gives a frame; records its reads and its release."""

    def __init__(self):
        self.reads, self.released = 0, False

    def isOpened(self):
        return True

    def read(self):
        self.reads += 1
        return False, None

    def get(self, prop):
        return 0.0

    def release(self):
        self.released = True


def reconnecting_source(opened, begun=None, gate=None):
    """A live source whose every capture is dead, so reading it reconnects until stopped.

    With ``gate``, every reopen (not the first open) waits for it, as a slow camera does,
    and counts in ``begun`` when it starts."""
    def opener(source):
        if opened and gate is not None:
            begun.append(source)
            assert gate.wait(10)
        opened.append(DeadCapture())
        return opened[-1]
    return sources.VideoSource("0", retries=100, wait=0.01, opener=opener)


def read_in_background(source):
    answers = []
    reader = threading.Thread(target=lambda: answers.append(source.read()), daemon=True)
    reader.start()
    return reader, answers


def wait_for(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_stop_during_reconnection_opens_nothing_more(capsys):
    opened = []
    source = reconnecting_source(opened)
    reader, answers = read_in_background(source)
    wait_for(lambda: len(opened) >= 3)
    source.release()  # the user stops while the source reconnects
    count = len(opened)
    reader.join(timeout=2)
    time.sleep(0.1)
    assert not reader.is_alive() and answers == [None] and not source.lost
    assert len(opened) <= count + 1 and all(capture.released for capture in opened)  # one open may have begun


def test_a_capture_that_opens_after_stop_is_released_unread(capsys):
    opened, begun, gate = [], [], threading.Event()
    source = reconnecting_source(opened, begun, gate)
    reader, answers = read_in_background(source)
    wait_for(lambda: begun)  # inside the slow reopen
    source.stop()
    gate.set()
    reader.join(timeout=2)
    assert not reader.is_alive() and answers == [None] and len(opened) == 2
    late = opened[1]
    assert late.released and late.reads == 0


def test_a_capture_that_did_not_open_is_released():
    captures = []

    def opener(source):
        captures.append(DeadCapture())
        captures[-1].isOpened = lambda: False
        return captures[-1]
    with pytest.raises(sources.SourceError, match="cannot open camera 2"):
        sources.VideoSource("2", opener=opener)
    assert len(captures) == 1 and captures[0].released


def test_drawing_and_captions():
    frame = np.zeros((120, 160, 3), np.uint8)
    face = {"id": 3, "box": [40, 40, 50, 50], "label": "sad", "confidence": 0.31, "uncertain": True}
    drawing.draw_faces(frame, [face], drawing.label_colours(FER_CLASSES))
    assert drawing.face_caption(face) == "#3 uncertain (sad 31%)"
    assert drawing.face_caption(dict(face, uncertain=False, confidence=0.83)) == "#3 sad 83%"
    assert tuple(frame[65, 40]) == drawing.UNCERTAIN_COLOUR  # the box's left edge
    assert frame[:40].any()  # the caption above it


def test_summary_table_counts_every_class():
    rows = timeline_rows(0.5, 10, [
        {"id": 1, "box": [0, 0, 5, 5], "label": "happy", "confidence": 0.8, "uncertain": False,
         "probabilities": dict.fromkeys(FER_CLASSES, 0.0) | {"happy": 0.8}},
        {"id": 2, "box": [9, 0, 5, 5], "label": "sad", "confidence": 0.3, "uncertain": True,
         "probabilities": dict.fromkeys(FER_CLASSES, 0.0) | {"sad": 0.3}}])
    table = summary_table(rows, FER_CLASSES)
    assert list(table.index) == FER_CLASSES
    assert table.loc["happy", "faces"] == 1 and table.loc["sad", "uncertain"] == 1
    assert table["share_%"].sum() == pytest.approx(100)
    times, probabilities = probabilities_over_time(rows, FER_CLASSES)
    assert list(times) == [0.5] and probabilities.shape == (1, len(FER_CLASSES))


@pytest.mark.skipif(not re.search(r"GUI:\s+NONE", cv2.getBuildInformation()),
                    reason="this OpenCV has windows; the test is for the headless build")
def test_a_window_without_gui_support_says_so_once_and_goes_on(capsys):
    import real_time
    window, frame = real_time.Window(), np.zeros((4, 4, 3), np.uint8)
    assert window.show(frame) and window.show(frame) and not window.available
    assert capsys.readouterr().err.count("--no-display") == 1
    window.close()



# The command line ------------------------------------------------------------------------

def run_script(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "real_time.py"), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut_bgr):
    """A short video of the astronaut drifting sideways, 320x240 with her face about 45 px."""
    path = str(tmp_path_factory.mktemp("clip") / "clip.mp4")
    photo = cv2.resize(astronaut_bgr, (240, 240))
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for index in range(FRAMES):
        frame = np.full((240, 320, 3), 90, np.uint8)
        frame[:, 30 + 2 * index:270 + 2 * index] = photo
        writer.write(frame)
    writer.release()
    return path


def test_headless_run_writes_timeline_video_and_summary(clip, model_path, tmp_path):
    out, timeline = str(tmp_path / "annotated.mp4"), str(tmp_path / "timeline.csv")
    result = run_script("--source", clip, "--model", model_path, "--no-display", "--every", str(EVERY),
                        "--threshold", "0.05", "--output", out, "--csv", timeline)
    assert result.returncode == 0, result.stderr

    with open(timeline) as handle:
        rows = list(csv.DictReader(handle))
    # Every other frame analysed; the first sighting only confirms the face.
    assert len(rows) == FRAMES // EVERY - 1
    assert list(rows[0]) == timeline_fields(FER_CLASSES)
    assert [int(row["frame"]) for row in rows] == list(range(EVERY, FRAMES, EVERY))
    assert {row["face_id"] for row in rows} == {"1"}
    # The random model is unsure of its faces: the default threshold would flag them, 0.05 none.
    from utils.defaults import THRESHOLD
    assert any(float(row["confidence"]) < THRESHOLD for row in rows)
    for row in rows:
        assert row["label"] in FER_CLASSES and row["uncertain"] == "False"
        assert float(row["confidence"]) == max(float(row[name]) for name in FER_CLASSES)
        x, y, w, h = (int(row[k]) for k in "xywh")
        assert 60 < x + w / 2 < 180 and 20 < y + h / 2 < 90 and 30 < w < 70  # the face, drifting right

    capture = cv2.VideoCapture(out)
    size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    count = 0
    while capture.read()[0]:
        count += 1
    assert (count, size) == (FRAMES, (320, 240))

    for name in ("distribution", "over_time"):
        assert os.path.getsize(str(tmp_path / f"timeline_{name}.png")) > 1000
    assert "emotion" in result.stdout and "share_%" in result.stdout


@pytest.mark.parametrize("source, message", [("7", "cannot open camera 7"), ("missing.mp4", "no video file")])
def test_a_source_that_cannot_be_opened_exits_2(source, message, model_path):
    result = run_script("--source", source, "--model", model_path, "--no-display")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr


def test_a_missing_model_exits_2(clip):
    result = run_script("--source", clip, "--model", "nowhere.h5", "--no-display")
    assert result.returncode == 2 and "no model at nowhere.h5" in result.stderr


# Calibrate to me, in the window's loop ------------------------------------------------------

@pytest.fixture(scope="module")
def two_looks(tmp_path_factory, astronaut_bgr):
    """30 s at 10 frames/s: the astronaut for the first 7 s (neutral's countdown and hold), then her darker
    mirror image for the next 7 (the second expression's), then the astronaut again."""
    path = str(tmp_path_factory.mktemp("looks") / "looks.mp4")
    photo = cv2.resize(astronaut_bgr, (240, 240))
    other = np.ascontiguousarray((photo[:, ::-1] * 0.55).astype(np.uint8))
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for index in range(300):
        frame = np.full((240, 320, 3), 90, np.uint8)
        frame[:, 40:280] = other if 70 <= index < 140 else photo
        writer.write(frame)
    writer.release()
    return path


def test_calibrate_then_read_with_the_saved_read_out(two_looks, tmp_path):
    """The guided sequence on a video's own clock (neutral then sad, 3 s countdown and 4 s hold each): its
    table, a read-out Python loads and that reads the held-back frames as shown; then --readout reads with it
    and says so on every frame."""
    from utils.model.predict import Predictor
    from utils.model.readout import load_readout
    model = os.path.join(ROOT, "models", "emotion_model.h5")
    saved, timeline = str(tmp_path / "me.json"), str(tmp_path / "timeline.csv")
    result = run_script("--source", two_looks, "--model", model, "--no-display", "--calibrate", "--expressions", "sad",
                        "--save-readout", saved, "--csv", timeline, "--output", str(tmp_path / "calibrated.mp4"))
    assert result.returncode == 0, result.stderr
    assert "as shipped: " in result.stdout and "your read-out: 100% right" in result.stdout
    assert f"read-out saved to {saved}" in result.stdout
    mine = load_readout(saved, Predictor.from_path(model).card)
    assert set(mine.frames) == {"neutral", "sad"} and all(25 <= count <= 30 for count in mine.frames.values())
    with open(timeline) as handle:
        rows = list(csv.DictReader(handle))
    later = [row["label"] for row in rows if float(row["time"]) >= 15]   # after the calibration: the astronaut
    assert later and all(label == "neutral" for label in later)

    again = run_script("--source", two_looks, "--model", model, "--no-display", "--readout", saved,
                       "--csv", str(tmp_path / "again.csv"))
    assert again.returncode == 0, again.stderr
    with open(tmp_path / "again.csv") as handle:
        rows = [(float(row["time"]), row["label"]) for row in csv.DictReader(handle)]
    assert {label for time, label in rows if 8 <= time < 14} == {"sad"}     # the darker mirror image, as taught
    assert {label for time, label in rows if time < 7 or time >= 15} == {"neutral"}


def test_a_read_out_of_another_model_and_a_short_video_are_refused_in_one_line(clip, model_path, tmp_path):
    from utils.model.readout import Readout, save_readout
    other = Readout("emotion_model", "0" * 64, tuple(FER_CLASSES), np.zeros((128, 7)), np.zeros(7))
    save_readout(str(tmp_path / "other.json"), other)
    result = run_script("--source", clip, "--model", model_path, "--no-display", "--readout", str(tmp_path / "other.json"))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "this read-out belongs to model emotion_model" in result.stderr
    result = run_script("--source", clip, "--model", model_path, "--no-display", "--calibrate")
    assert result.returncode == 2 and "ended before the calibration did (28 s are needed)" in result.stderr
    result = run_script("--source", clip, "--model", model_path, "--no-display", "--save-readout", "x.json")
    assert result.returncode == 2 and "go with --calibrate" in result.stderr
    result = run_script("--source", clip, "--model", model_path, "--no-display", "--calibrate",
                        "--save-readout", str(tmp_path))              # a folder: refused before the calibration
    assert result.returncode == 2 and "cannot write a file there" in result.stderr
    assert "ended before the calibration" not in result.stderr
