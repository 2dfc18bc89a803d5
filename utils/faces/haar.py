"""OpenCV's Haar cascade (Viola and Jones, 2001), the older detector, chosen by name (``detector="haar"``).

Comparing it with BlazeFace is a lesson in itself: it misses tilted and small faces and gives no keypoints.
"""
import threading

import cv2

from utils.faces.face import Face
from utils.media.colour import to_gray

# Haar: the cascade looks at a copy whose longest side is this (50-110 ms at full size).
HAAR_MAX_SIDE = 320
HAAR_SCALE_STEP = 1.1
HAAR_FAST = {"max_side": 240, "scale_step": 1.2}
HAAR_MIN_NEIGHBOURS = 5
HAAR_MIN_FACE_FRACTION = 0.08
_thread_state = threading.local()


def _cascade():
    """One cascade per thread: a CascadeClassifier must not be shared between threads."""
    cascade = getattr(_thread_state, "cascade", None)
    if cascade is None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise RuntimeError(f"OpenCV could not load its face cascade from {path}")
        _thread_state.cascade = cascade
    return cascade


def haar_faces(image, max_side=HAAR_MAX_SIDE, min_fraction=HAAR_MIN_FACE_FRACTION, scale_step=HAAR_SCALE_STEP):
    """The cascade on a copy whose longest side is ``max_side``; boxes in full-size pixels.

    The cascade has no probability: a face's score is its share of votes, n / (n + 5) for the
    n overlapping windows that found it (0.5 at the fewest it accepts).
    """
    gray = to_gray(image)
    height, width = gray.shape
    scale = min(1.0, max_side / max(height, width))
    small = gray if scale == 1.0 else cv2.resize(
        gray, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    min_side = max(20, int(min(small.shape) * min_fraction))
    found, votes = _cascade().detectMultiScale2(small, scaleFactor=scale_step, minNeighbors=HAAR_MIN_NEIGHBOURS,
                                                minSize=(min_side, min_side))
    return [Face(tuple(int(round(v / scale)) for v in box), n / (n + HAAR_MIN_NEIGHBOURS))
            for box, n in zip(found if len(found) else [], votes if len(found) else [])]


def find_faces(image, detail):
    """"fast" searches coarsely first and thoroughly only when that finds nothing."""
    if detail == "fast":
        found = haar_faces(image, **HAAR_FAST)
        if found:
            return found
    return haar_faces(image)
