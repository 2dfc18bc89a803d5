"""Video analysis shared by every live front end: sources, tracking, smoothing, drawing, timelines.

Nothing here opens a window, so ``real_time.py``, the site's live page and the
desktop window's webcam can all use it.

Speed is the design constraint: cutting a face out and the model take about 10 ms a face
on a 2-core CPU, and a whole-frame search costs BlazeFace 9 ms and the Haar cascade 11-70 ms
(``bench/bench_real_time.py`` prints the figures). So the whole frame is searched only
every few analysed frames (new faces appear rarely), or as soon as a followed face is
lost; in between, each face already followed is looked for only in a small region around
where it was (:func:`utils.detection.find_near`), which also keeps its keypoints current.
"""
import collections
import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np

from utils import detection
from utils.predict import is_uncertain

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
# A live source that stops giving frames is reopened this many times, this many seconds apart.
RECONNECT_TRIES = 5
RECONNECT_WAIT = 1.0
# Frame rate assumed for a source that does not report one (many webcams).
FALLBACK_FPS = 30.0

UNCERTAIN_COLOUR = (160, 160, 160)


class SourceError(ValueError):
    """A camera, file or stream that cannot be opened: the user's input, so exit status 2."""


# Sources ---------------------------------------------------------------------------------

def parse_source(text):
    """``"0"`` -> camera index 0; anything else is a file path or stream URL, unchanged."""
    text = str(text).strip()
    return int(text) if text.isdigit() else text


def describe_source(source):
    return f"camera {source}" if isinstance(source, int) else str(source)


class VideoSource:
    """A camera, video file or stream, giving frames until the end, and reconnecting if live.

    A file ends at its last frame. A camera or stream that stops giving frames has
    dropped one or been unplugged: it is reopened up to ``retries`` times, ``wait``
    seconds apart, before :attr:`lost` is set and :meth:`read` gives up.

    :meth:`stop` may come from another thread (the desktop window's Stop button while
    its camera thread reads): it ends a reconnection at once, and a capture that a
    reconnection opens after it is released, never kept. The stop flag is checked
    under the lock that installs each new capture, so no capture outlives
    :meth:`release`. A capture that fails to open is released too.
    """

    def __init__(self, source, retries=RECONNECT_TRIES, wait=RECONNECT_WAIT, opener=cv2.VideoCapture):
        self.source = parse_source(source)
        self.name = describe_source(self.source)
        self.live = isinstance(self.source, int) or "://" in self.source
        self.retries, self.wait, self._opener = retries, wait, opener
        # frame_time: seconds of the last frame read, its place in a file or since a live source opened.
        self.frames_read, self.frame_time, self.lost = 0, 0.0, False
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        if not self.live and not os.path.isfile(self.source):
            raise SourceError(f"no video file at {self.source}")
        self._capture = self._open()
        if not self._capture.isOpened():
            self._capture.release()
            hint = " (is it connected and not used by another program? try --source 1)" if self.live else ""
            raise SourceError(f"cannot open {self.name}{hint}")
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or FALLBACK_FPS
        self._started = time.monotonic()

    def _open(self):
        # OpenCV logs its own multi-line warnings when a camera is missing; the caller says it once.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        return self._opener(self.source)

    def read(self):
        """The next BGR frame, or None at the end of a file, once a live source is lost, or after :meth:`stop`."""
        ok, frame = self._capture.read()
        if not ok and self.live and not self._stopped.is_set():
            ok, frame = self._reconnect()
        if not ok:
            return None
        self.frames_read += 1
        self.frame_time = (time.monotonic() - self._started if self.live
                           else (self.frames_read - 1) / self.fps)
        return frame

    def _reconnect(self):
        for attempt in range(1, self.retries + 1):
            print(f"{self.name}: no frames, reconnecting ({attempt}/{self.retries})", file=sys.stderr)
            if self._stopped.wait(self.wait) or not self._reopen():
                return False, None
            ok, frame = self._capture.read() if self._capture.isOpened() else (False, None)
            if ok:
                return ok, frame
        self.lost = True
        return False, None

    def _reopen(self):
        """Release the dead capture (a camera opens once at a time) and open it again, unless stopped
        meanwhile: a capture that opens after :meth:`stop` is released at once."""
        with self._lock:
            if self._stopped.is_set():
                return False
            self._capture.release()
        capture = self._open()
        with self._lock:
            if not self._stopped.is_set():
                self._capture = capture
                return True
        capture.release()
        return False

    def stop(self):
        """End reading, from any thread: a reconnection gives up at once and opens nothing more."""
        self._stopped.set()

    def release(self):
        """Stop and release the device (from the reading thread, or once it has finished); safe twice."""
        with self._lock:
            self._stopped.set()
            self._capture.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


# Tracking --------------------------------------------------------------------------------

@dataclass
class Track:
    """One face followed across frames: its latest detection (:class:`utils.detection.Face`),
    its recent probabilities, an id once confirmed."""
    face: detection.Face
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
            best = max(unmatched, key=lambda track: detection.iou(track.box, face.box), default=None)
            if best is not None and detection.iou(best.box, face.box) >= MATCH_IOU:
                unmatched.remove(best)
                best.see(face)
            else:
                self.tracks.append(Track(face, collections.deque(maxlen=self.smooth)))
        self._settle(unmatched)

    def follow(self, image, detector):
        """Between detections: each face is looked for only near where it was."""
        lost = []
        for track in self.tracks:
            face = detection.find_near(image, track.box, detector)
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


# Analysis --------------------------------------------------------------------------------

class VideoAnalyser:
    """Frames in, smoothed per-face predictions out (:mod:`utils.predict`'s dicts plus a face ``id``),
    in :func:`utils.detection.face_order`.

    Every ``every``-th frame is analysed; the frames between show the last results.
    :attr:`chosen` holds each face's :class:`utils.predict.ChosenFace` (its upright crop and the
    model's input), for explaining a live face as it was predicted. :attr:`seconds` adds up the
    time spent detecting and predicting, for the figures.
    """

    def __init__(self, predictor, threshold, every=1, detect_every=None, smooth=SMOOTH_FRAMES, detector=None):
        """``detector``: "blazeface" or "haar" (None: the default); ``detect_every`` None: the detector's own."""
        self.detector = detection.check_detector(detector)
        detect_every = DETECT_EVERY[self.detector] if detect_every is None else detect_every
        if every < 1 or detect_every < 1 or smooth < 1:
            raise ValueError("every, detect_every and smooth must each be at least 1")
        self.predictor, self.threshold = predictor, threshold
        self.every, self.detect_every = every, detect_every
        self.tracker = FaceTracker(smooth=smooth)
        self.faces, self.chosen, self.frames, self.analysed = [], [], 0, 0
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
                self.tracker.update(detection.find_faces(frame, "fast", self.detector))
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
                        key=lambda track: detection.order_key(track.face))
        if not tracks:
            self.chosen = []
            return []
        self.chosen = self.predictor.choose_found(frame, [track.face for track in tracks], self.threshold)
        return [self._smooth(track, face.prediction) for track, face in zip(tracks, self.chosen)]

    def _smooth(self, track, result):
        """The face's mean probabilities over its last few analysed frames, so labels do not flicker."""
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


# Drawing ---------------------------------------------------------------------------------

def label_colours(classes):
    """BGR (0-255) per class: the colours the summary plots give each class."""
    from utils.plots import class_colours
    return {name: tuple(int(255 * c) for c in reversed(rgb)) for name, rgb in class_colours(classes).items()}


def face_caption(face):
    """``#1 happy 83%``, or ``#1 uncertain (sad 31%)`` under the threshold."""
    guess = f"{face['label']} {face['confidence']:.0%}"
    return f"#{face['id']} " + (f"uncertain ({guess})" if face["uncertain"] else guess)


def draw_faces(frame, found, colours):
    """Box and caption every face onto ``frame`` (in place); ``colours`` from :func:`label_colours`."""
    for face in found:
        x, y, w, h = face["box"]
        colour = UNCERTAIN_COLOUR if face["uncertain"] else colours[face["label"]]
        cv2.rectangle(frame, (x, y), (x + w, y + h), colour, 2)
        _caption(frame, face_caption(face), (x, y), colour)
    return frame


def draw_fps(frame, fps):
    _caption(frame, f"{fps:.1f} FPS", (0, 0), (40, 40, 40), below=True)
    return frame


def _caption(frame, text, corner, colour, below=False):
    """White text on a filled ``colour`` band above (or, at the top edge, below) ``corner``."""
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    x, y = corner
    top = y if below or y < height + baseline + 4 else y - height - baseline - 4
    cv2.rectangle(frame, (x, top), (x + width + 6, top + height + baseline + 4), colour, cv2.FILLED)
    cv2.putText(frame, text, (x + 3, top + height + 2), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)


# Timeline and summary --------------------------------------------------------------------

def timeline_fields(classes):
    """CSV columns: one row per face per analysed frame, then a probability column per class."""
    return ["time", "frame", "face_id", "x", "y", "w", "h", "label", "confidence", "uncertain", *classes]


def timeline_rows(seconds, frame, found):
    """The rows :func:`timeline_fields` names for one analysed frame's faces."""
    return [{"time": round(seconds, 3), "frame": frame, "face_id": face["id"],
             **dict(zip("xywh", face["box"])), "label": face["label"], "confidence": face["confidence"],
             "uncertain": face["uncertain"], **face["probabilities"]} for face in found]


def summary_table(rows, classes):
    """Per emotion: rows labelled with it, their share, mean confidence, and how many were uncertain."""
    import pandas as pd
    frame = pd.DataFrame(rows, columns=timeline_fields(classes))
    grouped = frame.groupby("label")
    table = pd.DataFrame({
        "faces": grouped.size(),
        "share_%": grouped.size() / max(1, len(frame)) * 100,
        "mean_confidence": grouped["confidence"].mean(),
        "uncertain": grouped["uncertain"].sum(),
    }).reindex(classes).fillna(0)
    table.index.name = "emotion"
    return table.astype({"faces": int, "uncertain": int}).round(2)


def probabilities_over_time(rows, classes):
    """``(times, probabilities)``: each analysed frame's probabilities, averaged over its faces."""
    import pandas as pd
    frame = pd.DataFrame(rows, columns=timeline_fields(classes))
    mean = frame.groupby("time")[list(classes)].mean()
    return mean.index.to_numpy(dtype=float), mean.to_numpy(dtype=float)
