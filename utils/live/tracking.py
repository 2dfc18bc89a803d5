"""Following faces through a video and labelling them: shared by every live front end.

Nothing here opens a window, so ``real_time.py``, the site's live page and the
desktop window's webcam can all use it.

Speed is the design constraint: cutting a face out and the model take about 10 ms a face
on a 2-core CPU, and a whole-frame search costs BlazeFace 9 ms and the Haar cascade 11-70 ms
(``bench/bench_real_time.py`` prints the figures). So the whole frame is searched only
every few analysed frames (new faces appear rarely), or as soon as a followed face is
lost; in between, each face already followed is looked for only in a small region around
where it was (:func:`utils.faces.detect.find_near`), which also keeps its keypoints current.
"""
import collections
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from utils.faces import detect
from utils.faces.face import Face, iou

# Whole-frame detection every this many analysed frames, per detector, tracking in between;
# sooner when a followed face is lost. At 30 frames/s a new face waits at most a third of a second.
# (A whole-frame search with its second looks costs as much as six followed frames; in the browser,
# searching every 10th frame instead of every 5th lifts the Live loop from 24 to 27 frames/s.)
DETECT_EVERY = {"blazeface": 10, "haar": 10}
# Labels are the mean probabilities of a face's last this many analysed frames.
SMOOTH_FRAMES = 5
# A face missed by the detector this many analysed frames in a row is forgotten.
MAX_MISSED = 5
# A face is labelled once seen this many times: the cascade's one-frame false alarms never show.
CONFIRM_HITS = 2
# Boxes overlapping at least this much (intersection over union) are the same face.
MATCH_IOU = 0.3


@dataclass
class Track:
    """One face followed across frames: its latest detection (:class:`utils.faces.face.Face`),
    its recent probabilities, an id once confirmed."""
    face: Face
    history: collections.deque
    id: int = None
    hits: int = 1
    missed: int = 0

    @property
    def box(self):
        return self.face.box

    def see(self, face):
        self.face, self.missed = face, 0
        self.hits += 1

    @property
    def confirmed(self):
        return self.hits >= CONFIRM_HITS


@dataclass
class FaceTracker:
    """Faces followed from frame to frame by position, so each keeps its id and its smoothing.

    A face gets its id once confirmed, so false alarms dropped unseen use up no numbers.
    """
    smooth: int = SMOOTH_FRAMES
    max_missed: int = MAX_MISSED
    tracks: list = field(default_factory=list)
    _next_id: int = 1

    def update(self, found):
        """Whole-frame detections: each face continues the track it overlaps most, or starts one."""
        unmatched = list(self.tracks)
        for face in found:
            best = max(unmatched, key=lambda track: iou(track.box, face.box), default=None)
            if best is not None and iou(best.box, face.box) >= MATCH_IOU:
                unmatched.remove(best)
                best.see(face)
            else:
                self.tracks.append(Track(face, collections.deque(maxlen=self.smooth)))
        self._settle(unmatched)

    def follow(self, image, detector):
        """Between detections: each face is looked for only near where it was."""
        lost = []
        for track in self.tracks:
            face = detect.find_near(image, track.box, detector)
            if face is None:
                lost.append(track)
            else:
                track.see(face)
        self._settle(lost)

    def _settle(self, missed):
        """A missed face keeps its last box (the detector blinks) until gone too long; a new one
        missed at once was a false alarm. Faces confirmed just now get their ids."""
        for track in missed:
            track.missed += 1
        self.tracks = [track for track in self.tracks
                       if track.missed <= self.max_missed and (track.confirmed or not track.missed)]
        for track in self.tracks:
            if track.confirmed and track.id is None:
                track.id, self._next_id = self._next_id, self._next_id + 1


class VideoAnalyser:
    """Frames in, smoothed per-face predictions out (:mod:`utils.model.predict`'s dicts plus a face ``id``),
    in :func:`utils.faces.detect.face_order`.

    Every ``every``-th frame is analysed; the frames between show the last results.
    :attr:`chosen` holds each face's :class:`utils.model.predict.ChosenFace` (its upright crop and the
    model's input), for explaining a live face as it was predicted, and :attr:`seen` whether each was
    found in this very frame (a face the detector just missed keeps its last box for a few frames).
    :attr:`seconds` adds up the
    time spent detecting and predicting, for the figures.
    """

    def __init__(self, predictor, threshold, every=1, detect_every=None, smooth=SMOOTH_FRAMES, detector=None):
        """``detector``: "blazeface" or "haar" (None: the default); ``detect_every`` None: the detector's own."""
        self.detector = detect.check_detector(detector)
        detect_every = DETECT_EVERY[self.detector] if detect_every is None else detect_every
        if every < 1 or detect_every < 1 or smooth < 1:
            raise ValueError("every, detect_every and smooth must each be at least 1")
        self.predictor, self.threshold = predictor, threshold
        self.every, self.detect_every = every, detect_every
        self.tracker = FaceTracker(smooth=smooth)
        self.faces, self.chosen, self.seen, self.frames, self.analysed = [], [], [], 0, 0
        self.seconds = collections.Counter()

    @property
    def classes(self):
        return self.predictor.classes

    def analyse(self, frame):
        """``(faces, analysed)``: this frame's faces, and whether they were computed for it."""
        self.frames += 1
        if (self.frames - 1) % self.every:
            return self.faces, False
        with self._timed("detect"):
            lost = any(track.missed for track in self.tracker.tracks)
            if lost or self.analysed % self.detect_every == 0:
                self.tracker.update(detect.find_faces(frame, "fast", self.detector))
            else:
                self.tracker.follow(frame, self.detector)
        with self._timed("predict"):
            self.faces = self._predict(frame)
        self.analysed += 1
        return self.faces, True

    @contextmanager
    def _timed(self, phase):
        start = time.perf_counter()
        yield
        self.seconds[phase] += time.perf_counter() - start

    def _predict(self, frame):
        tracks = sorted((track for track in self.tracker.tracks if track.confirmed),
                        key=lambda track: detect.order_key(track.face))
        self.seen = [track.missed == 0 for track in tracks]
        if not tracks:
            self.chosen = []
            return []
        self.chosen = self.predictor.choose_found(frame, [track.face for track in tracks], self.threshold)
        return [self._smooth(track, face.prediction) for track, face in zip(tracks, self.chosen)]

    def _smooth(self, track, result):
        """The face's mean probabilities over its last few analysed frames, so labels do not flicker."""
        # Imported here: the predictor's module loads TensorFlow, which real_time.py must not do before
        # its entry point has quieted it (nor for --help).
        from utils.model.predict import is_uncertain
        track.history.append([result["probabilities"][name] for name in self.classes])
        mean = np.mean(track.history, axis=0)
        best = int(np.argmax(mean))
        return dict(result, id=track.id, label=self.classes[best], confidence=round(float(mean[best]), 4),
                    probabilities={name: round(float(p), 4) for name, p in zip(self.classes, mean)},
                    uncertain=is_uncertain(mean[best], self.threshold))


class FpsMeter:
    """Frames per second over the recent past (an exponential moving average of frame times)."""

    def __init__(self, weight=0.1):
        self.weight, self.period, self._last = weight, None, None

    def tick(self):
        now = time.perf_counter()
        if self._last is not None:
            elapsed = now - self._last
            self.period = elapsed if self.period is None else (1 - self.weight) * self.period + self.weight * elapsed
        self._last = now
        return 1.0 / self.period if self.period else 0.0
