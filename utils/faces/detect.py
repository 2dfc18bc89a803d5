"""Finding faces, the first step of every front end: the one door to both detectors.

BlazeFace (:mod:`utils.faces.blazeface`) by default, the Haar cascade (:mod:`utils.faces.haar`)
by name. Two levels of search: ``fast`` (video frames) looks once at the whole picture;
``thorough`` (photos) also looks at overlapping tiles, so the small faces of a class photo are
found. Faces come sure ones first (:func:`face_order`), the order every front end numbers them in.
"""
import sys

import numpy as np

from utils.faces import blazeface, haar
from utils.faces.face import Face, iou

DETECTORS = ("blazeface", "haar")
DEFAULT_DETECTOR = "blazeface"
DETAILS = ("thorough", "fast")   # how hard to search: photos (tiles for small faces), video frames
# No search at all: the picture is one face already cut out, as a data set's faces are (the Gallery's test
# faces, read as the accuracies in the model cards read them).
WHOLE = "whole"
# Faces at least this sure come first (largest first), then the doubtful ones (largest first): 99% of
# those real faces score 0.8 or more, so a large doubtful box never becomes "face 1" beside a real face.
SURE_SCORE = 0.75
# Following a face between whole-frame searches: a region this fraction of its size around
# its box, which the cascade searches shrunk to this many pixels across (the face about 40 px).
NEAR_MARGIN = 0.3
NEAR_HAAR_SIDE = 64
# A face found there continues the followed one only if it overlaps its box this much (a neighbour does not).
NEAR_MIN_IOU = 0.3
_warned = []


def default_detector():
    """BlazeFace when it is installed; otherwise Haar, with a warning printed once."""
    if blazeface.available():
        return DEFAULT_DETECTOR
    if not _warned:
        _warned.append(True)
        print(f"warning: BlazeFace is not installed, so faces are found with the older Haar cascade "
              f"(it misses tilted and small faces); to fix: {blazeface.BLAZEFACE_INSTALL}", file=sys.stderr)
    return "haar"


def check_detector(name):
    """``name`` (None: the default) if it can be used; ValueError with the choices otherwise."""
    if name in (None, ""):
        return default_detector()
    if name not in DETECTORS:
        raise ValueError(f"unknown detector '{name}' (choose from {', '.join(DETECTORS)})")
    if name == "blazeface":
        blazeface.require()
    return name


def check_detail(detail):
    if detail not in (*DETAILS, WHOLE):
        raise ValueError(f"unknown detail '{detail}' (choose from {', '.join((*DETAILS, WHOLE))})")
    return detail


FACE_ORDER = (f"faces the detector is sure of (score at least {SURE_SCORE}) first, "
              "then the others; largest first within each")


def find_faces(image, detail="thorough", detector=None):
    """Every face in ``image`` (gray, BGR or BGRA, any size) as :class:`Face`, in :func:`face_order`.

    ``detail``: "thorough" (photos: tiles for small faces), "fast" (video frames) or "whole" (none: the
    picture is the face). ``detector``: "blazeface" or "haar"; None takes :func:`default_detector`.
    """
    if check_detail(detail) == WHOLE:
        return []
    detector = check_detector(detector)
    found = blazeface.find_faces(image, detail) if detector == "blazeface" else haar.find_faces(image, detail)
    return face_order(found)


def face_order(found):
    """``found`` in the order every front end numbers faces (:data:`FACE_ORDER`): a doubtful box,
    however large, never becomes "face 1" beside a face the detector is sure of."""
    return sorted(found, key=order_key)


def order_key(face):
    """A :class:`Face`'s place in :func:`face_order`: sure before doubtful, then larger before smaller."""
    return face.score < SURE_SCORE, -face.area()


def find_near(image, box, detector=None):
    """The face in a small region around ``box`` (the one overlapping it most), or None.

    How a face is followed between whole-frame searches: the region is the box widened by
    ``NEAR_MARGIN`` of its size, searched as its own picture: by BlazeFace's short-range
    network alone (the face fills the region: 2 ms instead of 9), or by the cascade on a copy
    shrunk so the face is about 40 px across (a twentieth of the whole frame's cost).
    """
    x, y, w, h = box
    dx, dy = int(w * NEAR_MARGIN), int(h * NEAR_MARGIN)
    left, top = max(0, x - dx), max(0, y - dy)
    region = np.asarray(image)[top:y + h + dy, left:x + w + dx]
    if not region.size:
        return None
    detector = check_detector(detector)
    found = (haar.haar_faces(region, max_side=NEAR_HAAR_SIDE, min_fraction=0.3) if detector == "haar"
             else blazeface.find_faces(region, "near"))
    moved = [_shifted(face, left, top) for face in found]
    near = [face for face in moved if iou(face.box, box) >= NEAR_MIN_IOU]
    return max(near, key=lambda face: iou(face.box, box), default=None)


def _shifted(face, left, top):
    x, y, w, h = face.box
    return Face((x + left, y + top, w, h), face.score,
                {name: (px + left, py + top) for name, (px, py) in face.keypoints.items()})
