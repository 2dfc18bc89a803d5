"""Face detection, cropping and THE one preprocessing function.

Training and every front end pass faces through :func:`preprocess`, so a face is
scaled and resized the same way when the model learns and when it is served.
Detection runs on a downscaled copy of the image: OpenCV's Haar cascade at full
resolution costs 50-110 ms on a 640x480 frame, far too slow for video.
"""
import threading

import cv2
import numpy as np

# Longest side of the copy the cascade looks at; boxes are mapped back to full size.
DETECT_MAX_SIDE = 320
# Size ratio between the cascade's scan scales. 1.2 costs half the time of 1.1 but
# misses faces under about 30 px in the detection copy (two faces in one photo, say).
DETECT_SCALE_STEP = 1.1
# The coarse search of detail="fast": a smaller copy and scales 1.2 apart cost 13 ms
# instead of 38 ms on a busy 640x480 frame, but find 75-100 px faces only 85% of the
# time (bench/bench_detect.py). Live webcam frames, where one face fills the frame, use it.
FAST_SEARCH = {"max_side": 240, "scale_step": 1.2}
# How hard find_faces looks: "thorough" (photos) or "fast" (video frames).
DETAILS = ("thorough", "fast")
# Smallest face reported, as a fraction of the detection copy's shorter side.
MIN_FACE_FRACTION = 0.08

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


def to_gray(image):
    """Any OpenCV image (gray, BGR, BGRA, 8 or 16 bit) -> 2-D uint8 gray."""
    image = np.asarray(image)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"unsupported image shape {image.shape}")


def detect_faces(image, max_side=DETECT_MAX_SIDE, min_fraction=MIN_FACE_FRACTION, scale_step=DETECT_SCALE_STEP):
    """Every face in ``image`` as ``(x, y, w, h)`` in full-size pixels, largest first."""
    gray = to_gray(image)
    height, width = gray.shape
    scale = min(1.0, max_side / max(height, width))
    small = gray if scale == 1.0 else cv2.resize(
        gray, (max(1, round(width * scale)), max(1, round(height * scale))),
        interpolation=cv2.INTER_AREA)
    min_side = max(20, int(min(small.shape) * min_fraction))
    found = _cascade().detectMultiScale(
        small, scaleFactor=scale_step, minNeighbors=5, minSize=(min_side, min_side))
    boxes = [
        (int(round(x / scale)), int(round(y / scale)), int(round(w / scale)), int(round(h / scale)))
        for (x, y, w, h) in (found if len(found) else [])
    ]
    return sorted(boxes, key=lambda box: box[2] * box[3], reverse=True)


def find_faces(image, detail="thorough"):
    """:func:`detect_faces` by name: "fast" searches coarsely first and thoroughly only when that finds nothing.

    So a frame with a face costs the coarse search, and a face the coarse search misses
    is still found; only a frame without any face pays for both searches.
    """
    if detail not in DETAILS:
        raise ValueError(f"unknown detail '{detail}' (choose from {', '.join(DETAILS)})")
    if detail == "fast":
        boxes = detect_faces(image, **FAST_SEARCH)
        if boxes:
            return boxes
    return detect_faces(image)


def crop_face(image, box, margin):
    """The face in ``box`` widened by ``margin`` (a fraction of its size) on each side."""
    x, y, w, h = box
    dx, dy = int(round(w * margin)), int(round(h * margin))
    top, bottom = max(0, y - dy), min(image.shape[0], y + h + dy)
    left, right = max(0, x - dx), min(image.shape[1], x + w + dx)
    return image[top:bottom, left:right]


def largest_face(image, margin):
    """``(crop, found)``: the largest face with ``margin``, or the whole gray image when none is found.

    How a photo becomes a face when a data set holds whole heads on a background (Yale):
    training then sees the same kind of crop as inference.
    """
    gray = to_gray(image)
    boxes = detect_faces(gray)
    return (crop_face(gray, boxes[0], margin), True) if boxes else (gray, False)


def preprocess(face, height, width, channels=1):
    """THE preprocessing: any face image -> float32 ``(height, width, channels)`` in [0, 1].

    Gray throughout (FER2013 is gray); a three-channel model gets the gray copied
    into each channel. Shrinking uses area averaging, enlarging bilinear.
    """
    gray = to_gray(face)
    if gray.shape != (height, width):
        shrinking = gray.shape[0] > height or gray.shape[1] > width
        gray = cv2.resize(gray, (width, height),
                          interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    scaled = gray.astype(np.float32) / 255.0
    return np.repeat(scaled[:, :, None], channels, axis=2)


def preprocess_for_card(face, card):
    """:func:`preprocess` with the input size and channels the model card names."""
    spec = card["input"]
    return preprocess(face, spec["height"], spec["width"], spec["channels"])
