"""The desktop window's logic, without a display: session, worker, camera, command line."""
import json
import shutil
import threading
import time

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from conftest import FER_CLASSES
from desktop.camera import Camera
from desktop.session import TABS, Session
from desktop.worker import Worker
from utils.live.sources import SourceError
from utils.model.card import CardError
from utils.serving.model_file import find_models, LoadedModel


def figure_text(figure):
    """Every title and label a figure shows, whatever its layout."""
    return " ".join(text.get_text() for text in figure.findobj(Text))


@pytest.fixture(scope="module")
def loaded(model_path):
    return LoadedModel.load(model_path)


@pytest.fixture
def session(loaded, astronaut_bgr):
    session = Session()
    session.use_model(loaded)
    session.show(astronaut_bgr, session.predict(astronaut_bgr))
    return session


def test_model_chooser_lists_only_emotion_models_with_a_card(tmp_path, model_path):
    shutil.copy(model_path, tmp_path / "a.h5")
    shutil.copy(model_path.replace(".h5", ".json"), tmp_path / "a.json")
    shutil.copy(model_path, tmp_path / "no_card.keras")
    shutil.copy(model_path, tmp_path / "who.h5")
    card = json.load(open(model_path.replace(".h5", ".json")))
    json.dump(dict(card, task="identity"), open(tmp_path / "who.json", "w"))
    (tmp_path / "notes.txt").write_text("not a model")
    assert find_models(str(tmp_path)) == {"a": str(tmp_path / "a.h5")}
    assert find_models(str(tmp_path), task="identity") == {"who": str(tmp_path / "who.h5")}


def test_a_model_whose_card_is_bad_is_offered_and_loading_it_names_the_key(tmp_path, model_path):
    shutil.copy(model_path, tmp_path / "typo.h5")
    card = json.load(open(model_path.replace(".h5", ".json")))
    json.dump(dict(card, tsak="emotion"), open(tmp_path / "typo.json", "w"))
    assert find_models(str(tmp_path)) == {"typo": str(tmp_path / "typo.h5")}
    with pytest.raises(CardError, match="unknown key 'tsak'"):
        LoadedModel.load(str(tmp_path / "typo.h5"))


def test_the_astronaut_gets_one_labelled_face(session, astronaut_face_box):
    assert len(session.predictions) == 1
    face = session.face
    assert face["label"] in session.classes and face["id"] == 1 and not face["whole_image"]
    headline, _ = session.verdict()
    assert headline == f"{face['label']} {face['confidence']:.0%}"
    assert session.face_choices() == [f"Face #1: {headline}"]
    x, y, w, h = astronaut_face_box
    assert session.face_at(x + w // 2, y + h // 2) == 0
    assert session.face_at(5, 5) is None


def test_threshold_marks_uncertain_faces_without_running_the_model(session):
    confidence = session.face["confidence"]
    session.set_threshold(min(1.0, confidence + 0.01))
    assert session.face["uncertain"] and "Low confidence" in session.verdict()[1]
    session.set_threshold(max(0.0, confidence - 0.01))
    assert not session.face["uncertain"] and session.verdict()[1] == ""


def test_annotated_image_boxes_the_face_and_keeps_the_original(session, astronaut_bgr):
    picture = session.annotated_image()
    assert picture.shape == astronaut_bgr.shape
    assert not np.array_equal(picture, astronaut_bgr)
    assert np.array_equal(session.image, astronaut_bgr)


def test_layer_choosers_list_the_models_own_layers(session):
    assert session.layer_names("conv") == ["conv1", "conv2", "conv3"]
    assert session.layer_names("pool") == ["pool1", "pool2", "pool3"]
    assert session.layer_names() == ["conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "flatten", "dense",
                                     "dropout", "logits", "probabilities"]   # the Layers tab: every layer


@pytest.mark.parametrize("layer", ["flatten", "dense", "dropout", "logits", "probabilities"])
def test_the_layers_tab_draws_layers_without_maps_too(session, layer):
    figure = session.figure("Layers", layer)
    assert figure.axes and f"{layer} (" in figure_text(figure)


def test_a_click_on_a_figure_finds_the_position_under_it(session):
    """Each tile's number is drawn at its corner: the pixels right of and below it are that channel's."""
    figure = session.figure("Layers", "conv2")
    corners = {int(text.get_text()): text.get_position() for text in figure.axes[0].texts}
    assert len(corners) == 64
    for channel, y, x in ((0, 0, 0), (9, 3, 20), (63, 20, 5)):
        left, top = corners[channel][0] + 0.5, corners[channel][1] + 0.6
        assert session.position_in_figure("conv2", left + x, top + y) == (channel, y, x)
        assert session.position_in_figure("conv2", left + x + 0.4, top + y - 0.4) == (channel, y, x)
    assert session.position_in_figure("conv2", corners[1][0] - 1, corners[1][1] + 3) is None   # between tiles
    assert session.position_in_figure("logits", 3.3, 0.1) == (3, 0, 0)                       # a bar
    assert session.position_in_figure("logits", 7.6, 0.1) is None


@pytest.mark.parametrize("layer, channel, y, x", [("conv1", 4, 0, 45), ("pool2", 7, 3, 2), ("conv3", 60, 7, 7),
                                                   ("flatten", 1000, 0, 0), ("dense", 5, 0, 0),
                                                   ("probabilities", 3, 0, 0)])
def test_the_operation_numbers_equal_the_apis_for_the_same_face(session, client, astronaut_bgr,
                                                                layer, channel, y, x):
    import io

    import cv2
    photo = cv2.imencode(".png", astronaut_bgr)[1].tobytes()   # lossless: the API reads the very pixels
    answer = client.post("/api/explain", data={"file": (io.BytesIO(photo), "astronaut.png"), "parts": "operation",
                                               "layer": layer, "channel": str(channel), "y": str(y), "x": str(x)},
                         content_type="multipart/form-data").get_json()["operation"]
    view = session.operation(layer, channel, y, x)
    assert {key: answer[key] for key in view} == view
    lines = session.operation_lines(layer, channel, y, x)
    assert lines[0].endswith(f": {view['result']!r}") and lines[-1].endswith("the same number.")
    assert " ".join(lines[1:4]).startswith(answer["summary"][:60])


@pytest.mark.parametrize("tab", [tab for tab in TABS if tab != "Identity"])
def test_every_tab_draws_a_figure(session, tab):
    figure = session.figure(tab)
    assert isinstance(figure, Figure) and figure.axes, figure_text(figure)   # a drawing, not a sentence


def test_the_identity_tab_says_how_to_get_an_identity_model(session):
    assert "no identity model yet" in figure_text(session.figure("Identity"))


def test_feature_maps_show_every_channel_of_the_chosen_layer(session):
    assert "conv2 (conv) output 21x21x64" in figure_text(session.figure("Feature maps", "conv2"))


def test_gradcam_explains_the_chosen_class(session):
    assert "'sad'" in figure_text(session.figure("Grad-CAM", "sad"))


def test_regions_explain_the_chosen_class(session):
    assert "happy" in figure_text(session.figure("Regions", "happy"))


def test_without_a_picture_the_tabs_say_what_to_do(loaded):
    session = Session()
    session.use_model(loaded)
    assert session.verdict() == ("No picture yet", "")
    assert "Open a picture" in figure_text(session.figure("Grad-CAM"))
    assert isinstance(session.figure("Model"), Figure)


def test_card_summary_shows_the_cards_facts(session):
    lines = session.card_summary().splitlines()
    assert lines[0] == "fixture_model" and lines[2] == "input: 48 x 48 x 1"
    assert lines[1].startswith("architecture: baseline, ") and lines[1].endswith(" parameters")
    assert "classes: " + ", ".join(FER_CLASSES) in lines
    assert {"test accuracy: 50.0%", "trained on: fixture: 0 images, 0 epochs", "command: fixture"} <= set(lines)


def test_live_frames_are_tracked_and_keep_the_selected_face(session, astronaut_bgr):
    session.start_live()
    for _ in range(10):  # the tracker reports a face once it has seen it in a few frames
        session.show(astronaut_bgr, session.predict_frame(astronaut_bgr))
    assert [face["id"] for face in session.predictions] == [1]
    session.stop_live()
    assert session.predict_frame(astronaut_bgr) == []  # a frame queued after the camera stopped


def test_a_live_face_is_explained_from_the_crop_it_was_predicted_from(session, astronaut_bgr, monkeypatch):
    """Not cut again from the rounded keypoints of its dict: its own crop and input are kept."""
    session.start_live()
    for _ in range(10):
        session.show(astronaut_bgr, session.predict_frame(astronaut_bgr))
    followed = session._live.tracker.tracks[0].face      # as the detector gave it, keypoints unrounded
    session.stop_live()
    face = session.face
    expected = session.model.predictor.crop(astronaut_bgr, followed)
    np.testing.assert_array_equal(session.face_crop().image, expected.image)
    assert session.face_crop().keypoints == expected.keypoints
    np.testing.assert_array_equal(session.face_input(), session.model.predictor.preprocess(expected.image))
    assert face["keypoints"]["right_eye"] != list(followed.keypoints["right_eye"])   # the dict's are rounded

    def cut_again(*_):
        raise AssertionError("the face was cut out again")
    monkeypatch.setattr(session.model.predictor, "crop", cut_again)
    assert session.face_crop() is face["crop"] and session.face_input() is face["input"]


def test_the_video_numbers_a_sure_face_before_a_larger_doubtful_one(session):
    from utils.faces.face import Face
    from utils.live.tracking import VideoAnalyser
    analyser = VideoAnalyser(session.model.predictor, 0.35, detect_every=1, smooth=1)
    sure, doubtful = Face((300, 40, 60, 60), 0.9), Face((0, 0, 200, 200), 0.7)
    analyser.tracker.update([doubtful, sure])
    for track in analyser.tracker.tracks:
        track.hits = 10
    faces = analyser._predict(np.full((300, 400, 3), 120, np.uint8))
    assert [face["box"] for face in faces] == [[300, 40, 60, 60], [0, 0, 200, 200]]
    assert [chosen.prediction["box"] for chosen in analyser.chosen] == [[300, 40, 60, 60], [0, 0, 200, 200]]


def test_worker_hands_results_and_errors_back_on_poll():
    worker = Worker()
    results, errors = [], []
    caller = threading.get_ident()
    worker.submit(lambda: threading.get_ident(), results.append, errors.append)
    worker.submit(lambda: 1 / 0, results.append, errors.append)
    deadline = time.monotonic() + 5
    while worker.busy and time.monotonic() < deadline:
        worker.poll()
        time.sleep(0.01)
    worker.close()
    assert len(results) == 1 and results[0] != caller
    assert len(errors) == 1 and isinstance(errors[0], ZeroDivisionError)


class FakeCapture:
    """A camera that gives the same frame forever (or, not ``alive``, none), and records reads and release."""

    def __init__(self, index, frame=np.zeros((4, 4, 3), np.uint8), opened=True, alive=True):
        self.frame, self.opened, self.alive, self.released, self.reads = frame, opened, alive, False, 0
        FakeCapture.last = self

    def isOpened(self):
        return self.opened

    def read(self):
        self.reads += 1
        time.sleep(0.005)
        return (True, self.frame) if self.alive else (False, None)

    def get(self, prop):
        return 30.0

    def release(self):
        self.released = True


def test_camera_gives_frames_and_releases_the_device_on_stop():
    camera = Camera(0, opener=FakeCapture)
    camera.start()
    deadline = time.monotonic() + 5
    frame = None
    while frame is None and time.monotonic() < deadline:
        frame = camera.latest()
        time.sleep(0.01)
    assert frame is not None and camera.running
    camera.stop()
    assert FakeCapture.last.released and not camera.running
    camera.stop()  # twice is harmless


def test_a_camera_that_cannot_be_opened_raises_a_one_line_error_and_is_released():
    camera = Camera(3, opener=lambda index: FakeCapture(index, opened=False))
    with pytest.raises(SourceError, match="camera 3"):
        camera.start()
    assert FakeCapture.last.released


def test_stop_while_the_camera_opens_slowly_releases_it_and_reads_nothing():
    """The Stop button (or opening a picture) while the webcam is still opening."""
    opening, finish = threading.Event(), threading.Event()

    def slow_opener(index):
        opening.set()
        assert finish.wait(10)
        return FakeCapture(index)
    camera = Camera(0, opener=slow_opener)
    answers = []
    starter = threading.Thread(target=lambda: answers.append(camera.start()))
    starter.start()
    assert opening.wait(10)
    begun = time.monotonic()
    camera.stop()
    assert time.monotonic() - begun < 1  # Stop does not wait for the open
    finish.set()
    starter.join(timeout=10)
    time.sleep(0.05)
    capture = FakeCapture.last
    assert answers == [False] and capture.released and capture.reads == 0 and not camera.running
    assert camera.latest() is None


def test_a_camera_stopped_before_it_starts_is_never_opened():
    opened = []
    camera = Camera(0, opener=lambda index: opened.append(index) or FakeCapture(index))
    camera.stop()
    assert camera.start() is False and opened == []


def test_stop_during_reconnection_reopens_nothing():
    """A camera unplugged mid-stream reconnects (a second apart); Stop ends it at once, and nothing opens after."""
    captures = []

    def opener(index):
        captures.append(FakeCapture(index, alive=not captures))  # the first gives frames, reopens none
        return captures[-1]
    camera = Camera(0, opener=opener)
    camera.start()
    captures[0].alive = False  # unplugged
    deadline = time.monotonic() + 10
    while len(captures) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    begun = time.monotonic()
    camera.stop()
    count = len(captures)
    assert time.monotonic() - begun < 1 and not camera.running
    time.sleep(0.5)
    assert len(captures) == count and all(capture.released for capture in captures) and not camera.lost


def test_the_command_line_refuses_a_missing_model(tmp_path, capsys):
    import index
    from utils.cli import run_cli
    with pytest.raises(SystemExit) as exit_info:
        run_cli(index.main, ["--model", str(tmp_path / "nothing.h5")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nothing.h5" in err and len(err.splitlines()) == 1


def test_calibrate_to_me_on_the_webcams_frames(loaded, astronaut_bgr, tmp_path):
    """The window's sequence on the session's clock, with the shipped model: the astronaut as neutral, her
    darker mirror image as sad; the prompt under the picture, then the read-out reads faces and says so;
    saved, dropped, opened again; refused for another model; dropped with the model it belongs to."""
    from utils.defaults import EMOTION_MODEL, project_path
    from utils.model.readout import ReadoutError, save_readout
    shipped = LoadedModel.load(project_path(EMOTION_MODEL))
    session = Session()
    session.use_model(shipped)
    with pytest.raises(ValueError, match="start the camera first"):
        session.start_calibration(["neutral", "sad"])
    clock = [0.0]
    session.clock = lambda: clock[0]
    session.calibration_durations = {"countdown": 0.2, "hold": 1.0, "held_back": 0.3}
    other = np.ascontiguousarray((astronaut_bgr[:, ::-1] * 0.6).astype(np.uint8))
    session.start_live()
    session.start_calibration(["neutral", "sad"])
    banners, result = [], None
    for _ in range(60):
        picture = astronaut_bgr if clock[0] < 1.2 else other
        session.show(picture, session.predict_frame(picture))
        banners.append(session.banner()[0])
        result = session.calibration_finished()
        if result is not None:
            break
        clock[0] += 0.05
    assert result is not None and result.accuracy(result.after) == 1.0
    assert banners[0] == "1/2: show neutral in 1" and "2/2: hold sad (0.5 s)" in banners
    assert session.banner() == ("read by your calibrated last layer", None) and session.readout is result.readout
    assert session.predict(other)[0]["label"] == "sad"
    assert not np.array_equal(session.annotated_image()[-8:], other[-8:])   # the banner is drawn under the picture
    session.stop_live()

    path = str(tmp_path / "me.json")
    session.save_readout(path)
    session.use_readout(None)
    assert session.banner() is None and session.predict(other)[0]["label"] == \
        shipped.predictor.predict_image(other)[0]["label"] != "sad"
    session.open_readout(path)
    assert session.predict(other)[0]["label"] == "sad"
    stranger = type(result.readout)(**{**result.readout.__dict__, "weights_sha256": "1" * 64, "model": "other"})
    save_readout(str(tmp_path / "other.json"), stranger)
    with pytest.raises(ReadoutError, match="belongs to model other"):
        session.open_readout(str(tmp_path / "other.json"))
    assert session.readout is not None     # the one in use stays
    session.use_model(loaded)
    assert session.readout is None
    with pytest.raises(ValueError, match="calibrate first"):
        session.save_readout(path)


def test_a_calibration_without_a_face_says_why_once_and_reads_as_before(session, astronaut_bgr):
    clock = [0.0]
    session.clock = lambda: clock[0]
    session.calibration_durations = {"countdown": 0.0, "hold": 0.5, "held_back": 0.1}
    session.start_live()
    session.start_calibration(["neutral", "sad"])
    blank = np.zeros_like(astronaut_bgr)
    for _ in range(30):
        session.predict_frame(astronaut_bgr if clock[0] < 0.5 else blank)
        clock[0] += 0.05
    with pytest.raises(ValueError, match="no face was seen while you showed sad"):
        session.calibration_finished()
    assert session.calibration_finished() is None and session.readout is None and session.banner() is None
    session.stop_live()


def test_a_read_out_opened_before_any_model_is_one_line(tmp_path):
    """The window's "Open read-out..." while the model still loads (or failed to): a one-line error, no
    traceback, and nothing changes."""
    session = Session()
    with pytest.raises(ValueError, match="no model is loaded yet"):
        session.open_readout(str(tmp_path / "me.json"))
    assert session.readout is None
