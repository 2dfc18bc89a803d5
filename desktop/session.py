"""What the desktop window shows, without the window.

A session holds the loaded model (its Predictor, layer reader and Grad-CAM), the current
picture, its faces, the selected face and the low-confidence threshold, and builds
each tab's figure with :mod:`utils.media` and :mod:`utils.explain.figures`, and the operation behind a clicked position
with :mod:`utils.explain.operations` (the numbers the site shows). Nothing here touches Tk, so
tests run it without a display. The window calls the slow methods (``utils.serving.model_file.LoadedModel.load`` with
``use_model``, ``predict``, ``predict_frame``, ``figure``) on its one worker thread,
in order, and everything else on the Tk thread.
"""
import threading
import time

import cv2
from matplotlib.figure import Figure

from utils.defaults import ROOT, THRESHOLD
from utils.explain import figures, operation_text
from utils.explain.layers import layer_kind
from utils.explain.perturbation import region_sensitivity
from utils.live import drawing, tracking
from utils.live.calibration import LiveCalibration, READOUT_NOTE
from utils.media import charts, grids
from utils.model.predict import is_uncertain
from utils.model.readout import check_model, load_readout, save_readout
from utils.serving import identity

SELECTED_BGR = (255, 255, 255)
TABS = ("Probabilities", "Feature maps", "Pooling outputs", "Layers", "Grad-CAM", "Regions", "Model", "Identity")
# The tabs that show one layer's output, and the kind of layer each chooser lists (None: every layer).
# A click on a position of their figure opens the operation behind it.
LAYER_TABS = {"Feature maps": "conv", "Pooling outputs": "pool", "Layers": None}
# The tabs that explain one class, chosen by the user (the predicted one to start with).
CLASS_TABS = ("Grad-CAM", "Regions")
NO_FACE = "Open a picture with a face (or start the camera) to see this tab."


def message_figure(text):
    """A figure holding only a sentence, for a tab with nothing to draw yet."""
    figure = Figure(figsize=(6, 3))
    figure.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11)
    return figure


class Session:
    def __init__(self, threshold=THRESHOLD, detector=None):
        self.model = None
        self.detector = detector  # "blazeface", "haar", or None for the default
        self.image = None
        self.predictions = []
        self.selected = 0
        self.threshold = threshold
        self._generation = 0  # counts pictures and models shown, so a cached result never outlives its picture
        self._layer_outputs = {}  # (generation, face index) -> [LayerOutput]
        self._cache_lock = threading.Lock()
        self._live = None  # the webcam's VideoAnalyser while the camera runs
        self.calibration = None  # the webcam's LiveCalibration while "Calibrate to me" runs or until it is read
        self.readout = None  # the person's read-out (utils.model.readout.Readout) replacing the last layer, or None
        self.clock = time.monotonic  # the calibration's clock
        self.calibration_durations = {}  # countdown, hold, held_back (none given: utils.live.calibration's)
        self.identity = None  # utils.serving.model_file.ModelFile for the Identity tab (read again when training replaces it)
        self.true_person = None  # set while the picture is one of the identity model's test photos

    # ---- model ---------------------------------------------------------------
    def use_model(self, loaded):
        """Switch to a loaded model; the current predictions are stale until :meth:`predict` runs again.
        A read-out belongs to the model it was made with, so it is dropped."""
        self.model = loaded
        self.readout, self.calibration = None, None
        self._forget_layers()

    @property
    def predictor(self):
        """The loaded model's predictor, reading with the person's read-out when there is one."""
        return self.model.predictor.with_readout(self.readout)

    @property
    def classes(self):
        return list(self.model.predictor.classes) if self.model else []

    def card_summary(self):
        """The model card in a few lines: what was trained, on what, and how well (the Models page's facts)."""
        return "\n".join([self.model.name] + [f"{label}: {text}" for label, text in self.model.card.facts()])

    def model_figure(self):
        """The card's per-class test accuracy, the figure a teacher shows before trusting a label."""
        per_class = self.model.card.metrics.test_per_class
        if not per_class:
            return message_figure("This model's card has no test accuracy per class.")
        return charts.per_class_accuracy_bars(
            {self.model.name: [per_class.get(name, 0.0) for name in self.classes]}, self.classes)

    # ---- picture and faces -----------------------------------------------------
    def predict(self, image):
        """Every face in a still BGR image as a prediction dict (see :mod:`utils.model.predict`), in
        :func:`utils.faces.detect.face_order`.

        Each also keeps its ``input``, the array the model saw, and its upright ``crop``, so the
        explanations (and their numbers) are of the face as the site explains it, not of one cut
        again from rounded keypoints.
        """
        chosen = self.predictor.choose_faces(image, self.threshold, detector=self.detector)
        return [dict(face.prediction, id=index + 1, input=face.input, crop=face.crop)
                for index, face in enumerate(chosen)]

    def start_live(self):
        """Webcam frames from now on go through the tracker and label smoothing ``real_time.py`` uses."""
        self._live = tracking.VideoAnalyser(self.predictor, self.threshold, detector=self.detector)

    def stop_live(self):
        self._live = None
        if self.calibration is not None and self.calibration.running:
            self.calibration = None   # stopped half-way: nothing is fitted

    # ---- calibrate to me --------------------------------------------------------------
    def start_calibration(self, expressions):
        """"Calibrate to me" on the webcam's next frames (:class:`utils.live.calibration.LiveCalibration`)."""
        if self._live is None:
            raise ValueError("start the camera first: calibration reads your face from it")
        self.calibration = LiveCalibration(self._live, expressions, **self.calibration_durations)

    def calibration_finished(self):
        """The finished :class:`utils.live.calibration.Calibration` once, then None: its read-out is now in use.
        ValueError in one line when it ended without one (an expression without a face)."""
        calibration = self.calibration
        if calibration is None or calibration.running:
            return None
        self.calibration = None
        if calibration.error:
            raise ValueError(calibration.error)
        self.use_readout(calibration.result.readout)
        return calibration.result

    def use_readout(self, readout):
        """Read faces with ``readout`` (None: the model as shipped), from the next picture or frame on."""
        if readout is not None:
            check_model(readout, self.model.card)   # another model's read-out is refused before anything changes
        self.readout = readout
        if self._live is not None:
            self._live.predictor = self.predictor

    def open_readout(self, path):
        """Use the read-out saved in ``path``; one-line errors for a file of another model or none, or
        while no model is loaded (a read-out belongs to one)."""
        if self.model is None:
            raise ValueError("no model is loaded yet: a read-out is checked against the model it was made with")
        self.use_readout(load_readout(path, self.model.card))

    def save_readout(self, path):
        if self.readout is None:
            raise ValueError("there is no read-out yet: calibrate first")
        save_readout(path, self.readout)

    def banner(self):
        """The line drawn under the picture: the calibration's prompt, or that the read-out reads the faces."""
        if self.calibration is not None and self.calibration.prompt is not None:   # running, or done just now
            return self.calibration.prompt.text(), self.calibration.prompt.progress
        return (READOUT_NOTE, None) if self.readout is not None else None

    def predict_frame(self, frame):
        """A webcam frame's faces, tracked (a stable ``id``) and smoothed over the last frames, each
        with this frame's ``input`` and upright ``crop`` as :meth:`predict` keeps them.

        A frame still queued when the camera stopped gets no faces.
        """
        live = self._live
        if live is None:
            return []
        found, analysed = live.analyse(frame)
        calibration = self.calibration
        if calibration is not None and calibration.running:
            calibration.after_frame(self.clock(), analysed)
        return [dict(face, input=chosen.input, crop=chosen.crop) for face, chosen in zip(found, live.chosen)]

    def show(self, image, predictions):
        """Make ``image`` and its predictions current, keeping the selected face when it is still there."""
        previous = self.face["id"] if self.face else None
        self.image, self.predictions = image, predictions
        ids = [face["id"] for face in predictions]
        self.selected = ids.index(previous) if previous in ids else 0
        self._forget_layers()

    def set_threshold(self, threshold):
        """Re-mark uncertain faces under a new threshold; no need to run the model again."""
        self.threshold = threshold
        if self._live is not None:
            self._live.threshold = threshold
        for face in self.predictions:
            face["uncertain"] = is_uncertain(face["confidence"], threshold)

    def select(self, index):
        if not 0 <= index < len(self.predictions):
            raise IndexError(f"no face {index + 1} (the picture has {len(self.predictions)})")
        self.selected = index

    def face_at(self, x, y):
        """The index of the smallest face whose box holds the pixel ``(x, y)``, or None."""
        hits = [(w * h, index) for index, face in enumerate(self.predictions)
                for bx, by, w, h in [face["box"]] if bx <= x < bx + w and by <= y < by + h]
        return min(hits)[1] if hits else None

    @property
    def face(self):
        """The selected face's prediction, or None before a picture is analysed."""
        return self.predictions[self.selected] if self.predictions else None

    def face_choices(self):
        return [f"Face #{face['id']}: {face['label']} {face['confidence']:.0%}" for face in self.predictions]

    def verdict(self):
        """``(headline, warning)`` for the selected face; the warning is empty when it is confident."""
        face = self.face
        if face is None:
            return ("No picture yet" if self.image is None else "No face found"), ""
        headline = f"{face['label']} {face['confidence']:.0%}"
        if face["whole_image"]:
            headline += " (no face found: whole picture)"
        warning = ""
        if face["uncertain"]:
            warning = (f"Low confidence: under {self.threshold:.0%}. The model is unsure; "
                       f"look at the probabilities before trusting the label.")
        return headline, warning

    def annotated_image(self):
        """The current picture with every face boxed and labelled (the selected one boxed twice), BGR."""
        picture = drawing.draw_faces(self.image.copy(), self.predictions, drawing.label_colours(self.classes))
        if self.face is not None:
            x, y, w, h = self.face["box"]
            cv2.rectangle(picture, (x - 4, y - 4), (x + w + 4, y + h + 4), SELECTED_BGR, 2)
        banner = self.banner()
        if banner is not None:
            drawing.draw_banner(picture, *banner)
        return picture

    def face_input(self, index=None):
        """The selected (or ``index``) face as the model sees it: cropped, gray, resized, in [0, 1]."""
        face = self.predictions[self.selected if index is None else index]
        return face["input"] if "input" in face else self.model.predictor.face_input(self.image, face)

    def face_crop(self, index=None):
        """The selected (or ``index``) face's upright crop (:class:`utils.faces.align.FaceCrop`), keypoints included."""
        face = self.predictions[self.selected if index is None else index]
        return face["crop"] if "crop" in face else self.model.predictor.crop(self.image, face)

    # ---- explanations ------------------------------------------------------------
    def layer_names(self, kind=None):
        """Spatial layers of one kind (``conv`` or ``pool``), or every layer, in network order: a chooser's entries."""
        return [layer.name for layer in self.model.layers.layers
                if kind is None or (layer_kind(layer) == kind and len(layer.output.shape) == 4)]

    def layer_for(self, tab, option):
        """The layer a layer tab shows: the chosen one, or its first when the choice is not one of them."""
        names = self.layer_names(LAYER_TABS[tab])
        return option if option in names else (names[0] if names else None)

    def layer_outputs(self):
        """Every layer's output for the selected face, computed once per face and kept."""
        key = (self._generation, self.selected)
        with self._cache_lock:
            if key not in self._layer_outputs:
                self._layer_outputs[key] = self.model.layers.layer_outputs(self.face_input())
            return self._layer_outputs[key]

    def _forget_layers(self):
        with self._cache_lock:
            self._generation += 1
            self._layer_outputs.clear()

    def figure(self, tab, option=None):
        """The figure for one of :data:`TABS`, for the selected face; ``option`` is the tab's chooser value."""
        if tab == "Model":
            return self.model_figure()
        if self.face is None:
            return message_figure(NO_FACE)
        if tab == "Probabilities":
            return self.probabilities_figure()
        if tab in LAYER_TABS:
            name = self.layer_for(tab, option)
            if name is None:
                return message_figure(f"This model has no {LAYER_TABS[tab]} layer with feature maps.")
            return self.layer_figure(name)
        if tab == "Grad-CAM":
            return self.gradcam_figure(option)
        if tab == "Regions":
            return self.regions_figure(option)
        if tab == "Identity":
            return self.identity_figure()
        raise ValueError(f"unknown tab '{tab}'")

    def probabilities_figure(self):
        return charts.probability_bars(self.face["probabilities"], highlight=self.face["label"])

    def layer_figure(self, name):
        """All channels of one layer's output for the selected face."""
        output = self.layer_output(name)
        return grids.feature_map_grid(output) if output.array.ndim == 3 else charts.vector_bars(output)

    def layer_output(self, name):
        for output in self.layer_outputs():
            if output.name == name:
                return output
        raise ValueError(f"unknown layer '{name}'")

    def position_in_figure(self, name, x, y):
        """The ``(channel, y, x)`` of layer ``name`` under the point ``(x, y)`` (data coordinates) of its
        :meth:`layer_figure`: a pixel of one tile of feature maps, or a unit's bar; None elsewhere."""
        array = self.layer_output(name).array
        if array.ndim == 3:
            return grids.tile_at(array.shape, round(y), round(x))   # pixel i of an image spans i - 0.5 .. i + 0.5
        unit = round(x)
        return (unit, 0, 0) if 0 <= unit < array.size else None

    def operation(self, name, channel, y=0, x=0):
        """The operation view of layer ``name`` at ``(y, x, channel)`` for the selected face: the numbers
        ``/api/explain`` gives for ``parts=operation`` (see :mod:`utils.explain.operations`)."""
        return self.model.operations.operation(self.face_input(), name, channel, y, x)

    def operation_lines(self, name, channel, y=0, x=0):
        """The operation view as lines of text for the window (see :func:`utils.explain.operation_text.lines`)."""
        view = self.operation(name, channel, y, x)
        return operation_text.lines(view, operation_text.unit_labels(view, self.classes))

    def gradcam_figure(self, class_name=None):
        """Grad-CAM overlay and heatmap for a class (the predicted one by default)."""
        class_name = class_name or self.face["label"]
        gradcam = self.model.gradcam
        layer = gradcam.default_layer()
        face = self.face_input()
        cam = gradcam.gradcam(face, self.model.target(self.classes.index(class_name)), layer)
        return figures.gradcam_figure(face, cam, title=f"Grad-CAM for '{class_name}' at layer {layer}")

    def identity_figure(self):
        """Who it is and how they feel, and where each model looks: both Grad-CAMs and their difference."""
        if self.identity is None or not self.identity.exists():
            return message_figure("There is no identity model yet: press 'Train identity model'.")
        face = self.face
        result = identity.compare(self.model, self.identity.get(), self.image, self.threshold,
                                  face=None if face["whole_image"] else face)
        figure = result.figure()
        if self.true_person is not None:
            mark = "right" if result.identity["label"] == self.true_person else "wrong"
            figure.suptitle(f"true person: {self.true_person} ({mark})")
        return figure

    def identity_samples(self):
        """The identity model's test photos ``[(path, true person)]`` (none without a model)."""
        if self.identity is None or not self.identity.exists():
            return []
        return identity.held_out_photos(self.identity.get().predictor.card, ROOT)

    def regions_figure(self, class_name=None):
        """How much hiding each facial region (eyes, mouth ...) lowers a class's probability."""
        class_name = class_name or self.face["label"]
        face = self.face_input()
        keypoints = self.face_crop().keypoints_at(*face.shape[:2])
        regions = region_sensitivity(self.model.predictor, face, self.model.target(self.classes.index(class_name)),
                                     keypoints)
        return figures.region_figure(face, regions, class_name)
