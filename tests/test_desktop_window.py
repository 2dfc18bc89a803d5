"""The desktop window itself, on a real (virtual) display.

Runs under ``xvfb-run``, on the user's display, or, when ``DISPLAY`` is unset, on an
Xvfb the fixture starts itself; skipped when none of these is possible. Screenshots
of every tab go to each test's ``tmp_path``: tests write nothing into the project.
"""
import json
import os
import threading
import time

import cv2
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

def pump(window, done, timeout=60):
    """Run Tk's event loop until ``done()`` holds (the background work has landed)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; status: {window.status.get()}")
        window.root.update()
        time.sleep(0.01)


def figure_text(figure):
    """Every title and label a figure shows, whatever its layout."""
    return " ".join(text.get_text() for text in figure.findobj(Text))


def open_window(model_path, identity_model=None):
    from desktop.window import Window
    window = Window(model_path, identity_model=identity_model)
    window.errors = []
    window.show_error = lambda title, message: window.errors.append((title, message))
    window.root.geometry("1260x760+0+0")
    pump(window, lambda: window.session.model is not None and not window.worker.busy)
    return window


def screenshot(window, display, path):
    from PIL import ImageGrab
    window.root.update()
    root = window.root
    box = (root.winfo_rootx(), root.winfo_rooty(),
           root.winfo_rootx() + root.winfo_width(), root.winfo_rooty() + root.winfo_height())
    ImageGrab.grab(bbox=box, xdisplay=display).save(path)
    return path


@pytest.fixture(scope="module")
def window(display, model_path, astronaut_bgr, tmp_path_factory):
    window = open_window(model_path)
    path = str(tmp_path_factory.mktemp("pictures") / "astronaut.png")
    cv2.imwrite(path, astronaut_bgr)
    window.open_path(path)
    pump(window, lambda: window.session.face is not None and not window.worker.busy)
    yield window
    window.close()


def test_the_loaded_picture_shows_the_faces_label(window):
    face = window.session.face
    assert window.headline["text"] == f"{face['label']} {face['confidence']:.0%}"
    assert window.face_chooser.get().startswith("Face #1: " + face["label"])
    assert window.picture.find_all(), "the picture is drawn"
    assert window.status.get() == "astronaut.png: 1 face"
    assert window.errors == []


def test_the_threshold_slider_warns_about_low_confidence(window):
    confidence = window.session.face["confidence"]
    window.threshold.set(min(100, confidence * 100 + 1))
    window.set_threshold(window.threshold.get() / 100)
    assert "Low confidence" in window.warning["text"]
    window.threshold.set(35)
    window.set_threshold(0.35)


def test_the_layer_chooser_lists_the_models_convolutions(window):
    assert list(window.choosers["Feature maps"]["values"]) == ["conv1", "conv2", "conv3"]
    assert list(window.choosers["Pooling outputs"]["values"]) == ["pool1", "pool2", "pool3"]
    assert list(window.choosers["Layers"]["values"]) == window.session.layer_names()   # every layer, flat ones too
    for tab in ("Grad-CAM", "Regions"):
        assert list(window.choosers[tab]["values"]) == window.session.classes
        assert window.choosers[tab].get() == window.session.face["label"]  # the predicted class first


@pytest.mark.parametrize("tab", ["Probabilities", "Feature maps", "Pooling outputs", "Layers", "Grad-CAM", "Regions",
                                 "Model"])
def test_each_tab_draws_a_figure(window, display, tab, tmp_path):
    window.notebook.select(window.tab_frames[tab])  # a tab computes its figure when first shown
    pump(window, lambda: tab in window.figures and not window.worker.busy)
    window.root.update()
    widget = window._canvases[tab].get_tk_widget()
    assert widget.winfo_ismapped() and widget.winfo_width() > 100
    assert window.figures[tab].axes, figure_text(window.figures[tab])   # a drawing, not a sentence
    assert os.path.getsize(screenshot(window, display, str(tmp_path / "tab.png"))) > 1000


def test_choosing_a_layer_redraws_its_feature_maps(window):
    window.notebook.select(window.tab_frames["Feature maps"])
    window.choosers["Feature maps"].set("conv3")
    window.refresh_tab("Feature maps")
    pump(window, lambda: "conv3" in figure_text(window.figures["Feature maps"]) and not window.worker.busy)


def click_figure(window, tab, x, y):
    """A left click, as Tk delivers it, at data point ``(x, y)`` of the tab's figure."""
    canvas, figure = window._canvases[tab], window.figures[tab]
    canvas.draw()
    window.root.update()
    column, row = figure.axes[0].transData.transform((x, y))
    widget = canvas.get_tk_widget()
    spot = {"x": round(column), "y": round(figure.bbox.height - row)}   # Tk counts rows from the top
    widget.event_generate("<ButtonPress-1>", **spot)
    widget.event_generate("<ButtonRelease-1>", **spot)


@pytest.mark.parametrize("layer, channel, y, x", [("conv2", 9, 2, 4), ("dense", 17, 0, 0)])
def test_a_click_on_a_layer_figure_opens_the_operation_behind_it(window, layer, channel, y, x):
    window.notebook.select(window.tab_frames["Layers"])
    window.choosers["Layers"].set(layer)
    window.refresh_tab("Layers")
    pump(window, lambda: f"{layer} (" in figure_text(window.figures.get("Layers", Figure())) and not window.worker.busy)
    axis = window.figures["Layers"].axes[0]
    if layer == "conv2":   # the tile's number sits at its corner
        left, top = next(text.get_position() for text in axis.texts if text.get_text() == str(channel))
        window.operation_window = None
        click_figure(window, "Layers", left + 0.5 + x, top + 0.6 + y)
    else:                  # a bar per unit
        click_figure(window, "Layers", channel, axis.get_ylim()[1] / 2)
    pump(window, lambda: window.operation_window is not None and not window.worker.busy)
    text = window.operation_text.get("1.0", "end")
    view = window.session.operation(layer, channel, y, x)
    where = f"row {y}, column {x}, channel {channel}" if layer == "conv2" else f"unit {channel}"
    assert text.startswith(f"{layer} ({view['type']}) at {where}: {view['result']!r}\n")
    assert "the same number." in text and window.errors == []
    assert window.operation_window.title() == text.splitlines()[0]


def test_a_dropped_file_opens_like_the_dialogs(window, astronaut_bgr, tmp_path):
    """tkdnd's drop event (tkinterdnd2 is optional) carries a Tcl list of paths."""
    folder = tmp_path / "with space"
    folder.mkdir()
    mirrored = np.ascontiguousarray(astronaut_bgr[:, ::-1])
    cv2.imwrite(str(folder / "dropped.png"), mirrored)
    window._dropped(type("Drop", (), {"data": "{%s}" % (folder / "dropped.png")})())
    pump(window, lambda: np.array_equal(window.session.image, mirrored) and not window.worker.busy)
    assert window.session.face is not None and window.errors == []


def test_save_figure_writes_the_current_tab_as_png(window, tmp_path):
    window.notebook.select(window.tab_frames["Probabilities"])
    pump(window, lambda: "Probabilities" in window.figures and not window.worker.busy)
    path = window.save_figure(str(tmp_path / "bars.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_mistakes_are_dialogs_not_tracebacks(window, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    window.open_path(str(tmp_path / "notes.txt"))
    window.load_model(str(tmp_path / "missing.h5"))
    window.camera_index.set("7")
    window.start_camera()
    pump(window, lambda: len(window.errors) == 3 and not window.worker.busy)
    titles = [title for title, _ in window.errors]
    assert titles == ["Opening the image", "Loading the model", "Camera"]
    assert "not an image" in window.errors[0][1] and "missing.h5" in window.errors[1][1]
    assert "camera 7" in window.errors[2][1]
    assert window.camera is None and window.session.model.path.endswith("fixture_model.h5")
    window.errors.clear()


class FakeCapture:
    """A webcam giving one picture at 30 frames/s; it records its reads and its release."""

    def __init__(self, frame):
        self.frame, self.reads, self.released = frame, 0, False

    def isOpened(self):
        return True

    def read(self):
        self.reads += 1
        time.sleep(0.03)
        return True, self.frame

    def get(self, prop):
        return 30.0

    def release(self):
        self.released = True


@pytest.mark.parametrize("interruption", ["stop", "picture"])
def test_stop_or_a_picture_while_the_camera_opens_releases_it(display, model_path, astronaut_bgr, monkeypatch,
                                                            tmp_path, interruption):
    """The camera opens slowly; Stop (or opening a picture) meanwhile: it is released unread, no dialog."""
    import desktop.window
    from desktop.camera import Camera

    opening, finish, capture = threading.Event(), threading.Event(), FakeCapture(astronaut_bgr)

    def slow_opener(index):
        opening.set()
        assert finish.wait(30)
        return capture
    monkeypatch.setattr(desktop.window, "Camera", lambda index: Camera(index, opener=slow_opener))
    picture = str(tmp_path / "astronaut.png")
    cv2.imwrite(picture, astronaut_bgr)
    window = open_window(model_path)
    try:
        window.start_camera()
        pump(window, opening.is_set)
        if interruption == "stop":
            window.toggle_camera()
        else:
            window.open_path(picture)
        assert window.camera is None and window.camera_button["text"] == "Start camera"
        finish.set()
        pump(window, lambda: not window.worker.busy)
        time.sleep(0.1)
        assert capture.released and capture.reads == 0
        assert window.errors == [] and window.camera is None and "live" not in window.status.get()
    finally:
        window.close()


def test_closing_releases_the_camera_and_the_worker(display, model_path, astronaut_bgr, monkeypatch, tmp_path):
    import desktop.window
    from desktop.camera import Camera

    captures = []

    def opener(index):
        captures.append(FakeCapture(astronaut_bgr))
        return captures[-1]

    monkeypatch.setattr(desktop.window, "Camera", lambda index: Camera(index, opener=opener))
    window = open_window(model_path)
    window.start_camera()
    pump(window, lambda: window.session.face is not None and window.figures.get("Probabilities") is not None
         and window.figures["Probabilities"].axes)
    assert window.camera_button["text"] == "Stop camera"
    screenshot(window, display, str(tmp_path / "camera.png"))
    root = window.root
    window.close()
    assert captures and all(capture.released for capture in captures)
    assert window.worker._executor._shutdown
    with pytest.raises(Exception):
        root.winfo_exists()


def test_calibrate_to_me_in_the_window(display, model_path, astronaut_bgr, monkeypatch, tmp_path):
    """The buttons follow the camera and the read-out; the choice offers the model's classes besides neutral;
    the prompt is drawn under the picture, the table opens at the end, and the buttons go back and forth."""
    import desktop.window
    from desktop.camera import Camera
    monkeypatch.setattr(desktop.window, "Camera", lambda index: Camera(index, opener=lambda _: FakeCapture(astronaut_bgr)))
    window = open_window(model_path)
    try:
        controls = window.calibration
        assert controls.calibrate_button.instate(["disabled"]) and controls.shipped_button.instate(["disabled"])
        window.start_camera()
        assert controls.calibrate_button.instate(["!disabled"])
        controls.choose()
        assert sorted(controls.choices) == sorted(set(window.session.classes) - {"neutral"})
        assert [name for name, chosen in controls.choices.items() if chosen.get()] == ["happy", "sad", "surprise"]
        window.session.calibration_durations = {"countdown": 0.2, "hold": 1.5, "held_back": 0.3}
        controls.start(["sad"])
        assert not controls.dialog.winfo_exists() and window.status.get().startswith("Calibrating: neutral, sad")
        pump(window, lambda: window.session.readout is not None)
        pump(window, lambda: controls.result_text is not None)
        table = controls.result_text.get("1.0", "end")
        assert "as shipped:" in table and "your read-out:" in table and "fitted on" in table
        assert controls.shipped_button.instate(["!disabled"]) and window._ready_text.startswith("Calibrated")
        controls.save_dialog(str(tmp_path / "me.json"))
        assert json.loads((tmp_path / "me.json").read_text())["frames"].keys() == {"neutral", "sad"}
        controls.as_shipped()
        assert window.session.readout is None and controls.save_button.instate(["disabled"])
        controls.open_dialog(str(tmp_path / "me.json"))
        assert window.session.readout is not None
        (tmp_path / "bad.json").write_text("{}")
        controls.open_dialog(str(tmp_path / "bad.json"))
        assert window.errors[-1][0] == "Open read-out" and "not a read-out file" in window.errors[-1][1]
        window.stop_camera()
        assert controls.calibrate_button.instate(["disabled"])
    finally:
        window.close()
