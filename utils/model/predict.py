"""A loaded model plus its card -> one prediction dict per face.

A prediction dict, the same in the JSON API, the desktop window and the video CSV::

    {"box": [x, y, w, h],        # pixels of the upright image (EXIF orientation applied)
     "score": 0.97,              # the detector's confidence that this is a face (0 for the whole image)
     "keypoints": {"right_eye": [x, y], ...},   # BlazeFace's six; none from Haar or for the whole image
     "label": "happy", "confidence": 0.83,
     "probabilities": {"angry": 0.01, ...},     # card order; calibrated as the card's calibration says
     "uncertain": False,         # confidence under the threshold
     "whole_image": False}       # no face was found, so the whole image was classified

The model runs through ``predict_on_batch``, Keras' compiled predict step, which spares the
per-call overhead of an eager call or ``model.predict`` (several times the model's own time
for one face; ``bench/bench_predict.py`` prints the figures). On a CPU with native bfloat16 it computes in bfloat16: batches go
1.5x faster and FER2013 test accuracy is unchanged. ``EMODETECT_PRECISION`` (float32 or
bfloat16) chooses for every front end instead: the bfloat16 path then runs, emulated and
slower, on a CPU without it, so it can be tested anywhere. Calls are safe from several
threads: the predictor holds no per-call state.
"""
import copy
import os
from dataclasses import dataclass

import numpy as np

from utils.cpu import native_bfloat16
from utils.defaults import THRESHOLD
from utils.faces import align, detect
from utils.faces.face import Face, iou
from utils.faces.preprocess import preprocess_for_card
from utils.media import colour
from utils.model.architectures import LOGITS_LAYER
from utils.model.readout import check_model, last_layer
from utils.model.store import bfloat16_copy, load_model

PRECISIONS = ("float32", "bfloat16")
PRECISION_VARIABLE = "EMODETECT_PRECISION"   # float32, bfloat16 or auto: what "auto" serves


def serving_precision(requested="auto"):
    """"float32" or "bfloat16": ``requested``, or for "auto" the one ``EMODETECT_PRECISION`` names,
    else bfloat16 where the CPU computes it natively. ValueError naming the choices otherwise."""
    if requested == "auto":
        requested = os.environ.get(PRECISION_VARIABLE, "").strip().lower() or "auto"
        if requested not in PRECISIONS + ("auto",):
            raise ValueError(f"{PRECISION_VARIABLE} must be one of {', '.join(PRECISIONS)} or auto, not '{requested}'")
    if requested == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision '{requested}' (choose from {', '.join(PRECISIONS)} or auto)")
    return requested


def with_mirror(batch):
    """``batch`` followed by each face's left-right mirror image: one call of the network for both."""
    return np.concatenate([batch, batch[:, :, ::-1]])


def mirror_mean(logits):
    """The logits of :func:`with_mirror`'s batch averaged over each face and its mirror image
    (numpy arrays and tensors alike, so Grad-CAM's gradients flow through the same arithmetic)."""
    half = len(logits) // 2
    return (logits[:half] + logits[half:]) / 2


def scaled_logits(logits, temperature=1.0, offsets=None):
    """``logits / temperature + offsets``: what the softmax of a calibrated model is taken of (``offsets``: one
    per class, or None). Numpy arrays and tensors alike."""
    scaled = logits / temperature
    return scaled if offsets is None else scaled + offsets


def softmax(logits, temperature=1.0, offsets=None):
    """softmax(logits / temperature + offsets) over the last axis, in float64."""
    scaled = scaled_logits(np.asarray(logits, dtype=np.float64), temperature,
                           None if offsets is None else np.asarray(offsets, dtype=np.float64))
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def is_uncertain(confidence, threshold):
    """The one rule for a low-confidence label, so every front end warns on the same faces
    (static/shared/uncertain.js is held to it by tests/test_browser_engine.py)."""
    return bool(confidence < threshold)


class NoSuchFace(ValueError):
    """A face number or box the picture does not have; the message says what it has."""


# A box names the face it overlaps most, when they overlap at least this much (intersection over union):
# the browser's engine finds the server's faces within a few pixels.
BOX_MATCH_IOU = 0.5


def face_number(chosen, index):
    """``index`` when the faces ``chosen`` have that number; :class:`NoSuchFace` saying how many they are otherwise."""
    if not 0 <= index < len(chosen):
        raise NoSuchFace(f"there is no face {index}: the image has {len(chosen)} "
                         f"face{'s' if len(chosen) != 1 else ''} (numbered from 0)")
    return index


def face_at(chosen, box):
    """The number of the face of ``chosen`` that ``box`` (x, y, w, h) names: the one it overlaps most, by at
    least :data:`BOX_MATCH_IOU`; :class:`NoSuchFace` otherwise."""
    overlaps = [iou(box, face.prediction["box"]) for face in chosen]
    best = int(np.argmax(overlaps)) if overlaps else None
    if best is None or overlaps[best] < BOX_MATCH_IOU:
        count = f"{len(chosen)} face{'s' if len(chosen) != 1 else ''}"
        raise NoSuchFace(f"no face found at box {','.join(f'{v:g}' for v in box)}: none of the image's {count} "
                         f"overlaps it by {BOX_MATCH_IOU:g} or more (intersection over union)")
    return best


@dataclass
class ChosenFace:
    """One face of a picture, ready to explain: its prediction dict, its upright ``crop``
    (:class:`utils.faces.align.FaceCrop`), the model's ``input``, how many faces the picture has and
    the model's last ``features`` for it (mirror-averaged as served: what a personal read-out reads)."""
    prediction: dict
    crop: align.FaceCrop
    input: np.ndarray
    count: int
    features: np.ndarray = None


class Predictor:
    """Faces in, calibrated emotion probabilities out, in the card's class order.

    With a personal read-out (:meth:`with_readout`) the probabilities are the read-out's,
    ``softmax(W f + b)`` of the model's last features, without the card's temperature or offsets
    (see :mod:`utils.model.readout`).
    """

    def __init__(self, model, card, precision="auto"):
        """``precision``: "float32", "bfloat16", or "auto" (see :func:`serving_precision`).

        ``self.model`` stays the float32 model: explanations read its layers and gradients.
        """
        import keras
        self.model, self.card = model, card
        self.precision = serving_precision(precision)
        serving = bfloat16_copy(model) if self.precision == "bfloat16" else model
        self.classes = list(card.classes)
        self.temperature, self.logit_offsets = card.logit_calibration()
        self.test_time_flip = card.preprocessing.test_time_flip
        self.crop_context = card.preprocessing.crop_context
        self.input_side = card.input.width
        self._logits = keras.Model(serving.input, serving.get_layer(LOGITS_LAYER).output)
        head = serving.get_layer(LOGITS_LAYER)
        self._features_and_logits = keras.Model(serving.input, [head.input, head.output])
        self.readout = None   # a utils.model.readout.Readout replacing the last layer, or None

    @classmethod
    def from_path(cls, path, precision="auto"):
        return cls(*load_model(path), precision=precision)

    def logits(self, batch):
        """Logits for a preprocessed batch ``(N, H, W, C)``.

        With the card's ``test_time_flip``, each face's logits are averaged with its
        mirror image's (one call for both): about one point of FER2013 accuracy for
        about a millisecond.
        """
        batch = np.asarray(batch, dtype=np.float32)
        if len(batch) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        if not self.test_time_flip:
            return np.asarray(self._logits.predict_on_batch(batch))
        return mirror_mean(np.asarray(self._logits.predict_on_batch(with_mirror(batch))))

    def features_and_logits(self, batch):
        """``(features, logits)`` for a preprocessed batch: the input of the final dense layer (float32)
        and its output, each averaged with the mirror image's as :meth:`logits` averages."""
        batch = np.asarray(batch, dtype=np.float32)
        if len(batch) == 0:
            width = self._features_and_logits.outputs[0].shape[-1]
            return np.zeros((0, width), np.float32), np.zeros((0, len(self.classes)), np.float32)
        both = with_mirror(batch) if self.test_time_flip else batch
        features, logits = (np.asarray(part, dtype=np.float32)
                            for part in self._features_and_logits.predict_on_batch(both))
        return (mirror_mean(features), mirror_mean(logits)) if self.test_time_flip else (features, logits)

    def features(self, batch):
        """The model's last features for a preprocessed batch: what a personal read-out reads."""
        return self.features_and_logits(batch)[0]

    def last_layer(self):
        """``(weights, bias)`` of the model's own final dense layer (float64): where a read-out starts."""
        return last_layer(self.model)

    def with_readout(self, readout):
        """A predictor sharing this one's network whose probabilities are ``readout``'s (None: the
        model's own); :class:`utils.model.readout.ReadoutError` for a read-out of another model."""
        if readout is not None:
            check_model(readout, self.card)
        twin = copy.copy(self)
        twin.readout = readout
        return twin

    def probabilities(self, batch):
        """Calibrated class probabilities for a preprocessed batch (the read-out's, when there is one)."""
        if self.readout is not None:
            return self.readout.probabilities(self.features(batch))
        return self.calibrated(self.logits(batch))

    def served(self, features, logits):
        """The probabilities served for a batch's ``features`` and ``logits``: the read-out's when there is
        one, else the card's calibration of the logits."""
        return self.readout.probabilities(features) if self.readout is not None else self.calibrated(logits)

    def calibrated(self, logits):
        """The probabilities served for ``logits``: softmax(logits / T + offsets), the card's temperature
        and per-class logit offsets (none: 0). The one place they are applied."""
        return softmax(logits, self.temperature, self.logit_offsets)

    def preprocess(self, face):
        return preprocess_for_card(face, self.card)

    def face_crops(self, image, detail="thorough", detector=None):
        """``(found, crops, whole_image)``: every face (:class:`utils.faces.face.Face`) and its upright
        crop (:class:`utils.faces.align.FaceCrop`), or the whole image standing in when none is found.

        ``detail`` and ``detector`` say how to look (see :func:`utils.faces.detect.find_faces`).
        """
        found = detect.find_faces(image, detail, detector)
        gray = colour.to_gray(image)
        if not found:
            height, width = gray.shape
            return [Face((0, 0, width, height), 0.0)], [align.whole_image_crop(gray)], True
        return found, [self.crop(gray, face) for face in found], False

    def crop(self, image, face):
        """The upright crop of a :class:`utils.faces.face.Face` or of a prediction dict (the whole
        image when the prediction says no face was found)."""
        if isinstance(face, dict):
            if face.get("whole_image"):
                return align.whole_image_crop(image)
            face = Face.from_json(face)
        return align.aligned_crop(image, face, context=self.crop_context, multiple=self.input_side)

    def face_input(self, image, face):
        """A face of ``image`` as the model receives it: cut out upright, then :func:`utils.faces.preprocess.preprocess`."""
        return self.preprocess(self.crop(image, face).image)

    def choose_faces(self, image, threshold=THRESHOLD, detail="thorough", detector=None):
        """Every face of ``image`` as a :class:`ChosenFace`, in :func:`utils.faces.detect.face_order`, from one search.

        A picture without a face has one: the whole image. Each ``input`` is the very array
        its probabilities came from, so an explanation of it explains that prediction.
        """
        found, crops, whole = self.face_crops(image, detail, detector)
        return self._chosen(found, crops, whole, threshold)

    def choose_face(self, image, index=0, threshold=THRESHOLD, detail="thorough", detector=None):
        """Face number ``index`` of ``image`` (0: the first in :func:`utils.faces.detect.face_order`) as a :class:`ChosenFace`.

        :class:`NoSuchFace` for a number the picture lacks.
        """
        chosen = self.choose_faces(image, threshold, detail, detector)
        return chosen[face_number(chosen, index)]

    def _chosen(self, found, crops, whole, threshold):
        """The faces and their crops, preprocessed and predicted in one batch."""
        if not crops:
            return []
        inputs = np.stack([self.preprocess(crop.image) for crop in crops])
        features, logits = self.features_and_logits(inputs)
        return [ChosenFace(self.prediction_dict(face, probabilities, threshold, whole), crop, face_input, len(found),
                           face_features)
                for face, crop, face_input, probabilities, face_features
                in zip(found, crops, inputs, self.served(features, logits), features)]

    def predict_face(self, image, face, threshold=THRESHOLD):
        """One face of ``image`` (a :class:`utils.faces.face.Face` or a prediction dict) as a prediction dict."""
        whole = isinstance(face, dict) and bool(face.get("whole_image"))
        probabilities = self.probabilities(self.face_input(image, face)[None])[0]
        face = Face.from_json(face) if isinstance(face, dict) else face
        return self.prediction_dict(face, probabilities, threshold, whole)

    def choose_found(self, image, found, threshold=THRESHOLD):
        """The faces ``found`` (already detected, or followed from frame to frame by the video loop)
        as :class:`ChosenFace`, in their order: each with the upright crop and input it was predicted from."""
        gray = colour.to_gray(image)
        return self._chosen(found, [self.crop(gray, face) for face in found], False, threshold)

    def predict_image(self, image, threshold=THRESHOLD, found=None, detail="thorough", detector=None):
        """Every face in ``image`` (BGR or gray array) as a prediction dict, in
        :func:`utils.faces.detect.face_order` (``found``: faces already detected, see :meth:`choose_found`)."""
        chosen = (self.choose_faces(image, threshold, detail, detector) if found is None
                  else self.choose_found(image, found, threshold))
        return [face.prediction for face in chosen]

    def prediction_dict(self, face, probabilities, threshold, whole_image):
        """A face and its probabilities as a prediction dict (see the module's docstring)."""
        best = int(np.argmax(probabilities))
        confidence = float(probabilities[best])
        return {
            **face.to_json(),
            "label": self.classes[best],
            "confidence": round(confidence, 4),
            "probabilities": {name: round(float(p), 4) for name, p in zip(self.classes, probabilities)},
            "uncertain": is_uncertain(confidence, threshold),
            "whole_image": bool(whole_image),
        }
