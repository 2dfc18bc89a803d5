"""A detected face cut out of its picture, upright and framed like FER2013's.

FER2013's faces were cut out by their own detector: roughly upright, the eyes at about
the same place in every 48x48 frame. A face in a photo is tilted, off-centre, any
size; :func:`aligned_crop` turns it upright by its eye line and scales it so its eyes
land where FER2013's sit on average (the canonical face, measured on the training set
by ``scripts/measure_canonical_face.py`` and stored in ``canonical_face.json``), so the
network sees faces framed the way it learned them. Finding faces is :mod:`utils.faces.detect`'s job.
"""
import functools
import json
import os
from dataclasses import dataclass

import cv2
import numpy as np

from utils.media.colour import to_gray

CANONICAL_FACE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "canonical_face.json")
EYES = ("right_eye", "left_eye")   # the person's right eye is on the picture's left
# The keypoints a face is fitted to the canonical face by: the eyes first (their line sets the
# turn), then the nose and mouth; the ears are often hidden by hair or a turned head.
FITTED = EYES + ("nose", "mouth")


@functools.cache
def canonical_face():
    """The canonical face: ``{"frame": [h, w], "keypoints": {name: [x, y]}, "haar_box_keypoints": ...}``."""
    with open(CANONICAL_FACE_FILE) as handle:
        return json.load(handle)


def canonical_keypoints(height, width):
    """The canonical keypoints ``name -> (x, y)`` in a frame of ``height`` x ``width`` pixels."""
    geometry = canonical_face()
    frame_height, frame_width = geometry["frame"]
    return {name: (x * width / frame_width, y * height / frame_height) for name, (x, y) in geometry["keypoints"].items()}


@dataclass
class FaceCrop:
    """One face cut out upright: the gray ``image``, its ``keypoints`` in the crop's pixels, the
    ``angle`` it was turned by (degrees; positive is clockwise as seen on screen), and the 2x3 ``transform`` from the
    picture's pixels to the crop's."""
    image: np.ndarray
    keypoints: dict
    angle: float
    transform: np.ndarray

    def keypoints_at(self, height, width):
        """The keypoints in the crop shrunk (or enlarged) to ``height`` x ``width``: the model's input."""
        crop_height, crop_width = self.image.shape[:2]
        return {name: (x * width / crop_width, y * height / crop_height) for name, (x, y) in self.keypoints.items()}

    def to_picture(self, points):
        """Crop pixels ``(N, 2)`` -> the picture's pixels (to draw the crop's outline on the photo)."""
        inverse = cv2.invertAffineTransform(self.transform)
        points = np.asarray(points, dtype=np.float64)
        return points @ inverse[:, :2].T + inverse[:, 2]

    def share_outside(self, box):
        """The share of the crop's pixels taken from outside ``box`` ``(x, y, w, h)`` of the picture:
        how much of a FER2013 face's crop shows the grey square around it instead of the face."""
        height, width = self.image.shape[:2]
        rows, columns = np.mgrid[0:height, 0:width]
        x, y = self.to_picture(np.stack([columns.ravel(), rows.ravel()], axis=1)).T  # where warpAffine samples
        left, top, box_width, box_height = np.asarray(box, dtype=np.float64) - (0.5, 0.5, 0, 0)  # pixel edges
        inside = (x >= left) & (x < left + box_width) & (y >= top) & (y < top + box_height)
        return float(1.0 - inside.mean())


def face_keypoints(face):
    """A detected face's keypoints; for a detector without any (Haar), where they sit on average
    in its boxes (measured with the canonical face), so every face is cut out the same way."""
    if face.keypoints:
        return dict(face.keypoints)
    x, y, w, h = face.box
    return {name: (x + fx * w, y + fy * h) for name, (fx, fy) in canonical_face()["haar_box_keypoints"].items()}


def aligned_crop(image, face, side=None, context=1.0, multiple=None):
    """``face`` (a :class:`utils.faces.face.Face`) cut out of ``image`` upright, as a :class:`FaceCrop`.

    The face is turned so its eye line lies as the canonical face's does, then scaled and
    shifted so its eyes, nose and mouth fall as close as they can (least squares) to the
    canonical face's: four points average out the error of each, where the two eyes alone
    left FER2013's test faces 2 points less accurate through this path. ``context`` above 1
    frames the face that much wider around the frame's centre (more hair and head: what
    tells people apart; the emotion model keeps FER2013's framing, 1).

    The crop is square and ``side`` pixels wide. By default it is ``multiple`` (the model's
    input side; the canonical frame's when None) times a power of two, the smallest at least
    as wide as the face is in the picture: :func:`utils.faces.preprocess.preprocess` then shrinks it by a whole
    factor, averaging whole pixels. (Cut at the face's own size, 49 or 55 px, then shrunk to
    48, the blur cost FER2013's test faces 2 points through this path.) Parts of the crop
    outside the picture repeat its edge.
    """
    gray = to_gray(image)
    keypoints = face_keypoints(face)
    frame = canonical_face()["frame"][1]
    unit = {name: 0.5 + (np.asarray(point) - 0.5) / context for name, point in canonical_keypoints(1.0, 1.0).items()}
    source = np.array([keypoints[name] for name in FITTED], dtype=np.float64)
    target = np.array([unit[name] for name in FITTED])
    transform = upright_fit(source, target)                      # picture -> a frame 1 pixel wide
    if side is None:
        multiple = multiple or frame
        side = multiple * 2 ** max(0, int(np.ceil(np.log2(1.0 / np.hypot(*transform[:, 0]) / multiple - 1e-9))))
    transform = transform * side
    crop = cv2.warpAffine(gray, transform, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    moved = {name: tuple(float(v) for v in transform[:, :2] @ point + transform[:, 2])
             for name, point in keypoints.items()}
    angle = float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0])))
    return FaceCrop(crop, moved, angle, transform)


def upright_fit(source, target):
    """The 2x3 similarity taking the points ``source`` (``(N, 2)``, the two eyes first) nearest to
    ``target``: the rotation that lays the eye line on the target's, then the scale and shift that
    minimise the squared distances of all the points."""
    (sx, sy), (tx, ty) = source[1] - source[0], target[1] - target[0]
    turn = np.arctan2(ty, tx) - np.arctan2(sy, sx)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    turned = (source - source.mean(axis=0)) @ rotation.T
    centred = target - target.mean(axis=0)
    scale = (turned * centred).sum() / max((turned * turned).sum(), 1e-12)
    shift = target.mean(axis=0) - scale * rotation @ source.mean(axis=0)
    return np.hstack([scale * rotation, shift[:, None]])


def whole_image_crop(image):
    """The whole picture standing in for a face (none was found): keypoints where the canonical face has them."""
    gray = to_gray(image)
    height, width = gray.shape
    return FaceCrop(gray, canonical_keypoints(height, width), 0.0, np.hstack([np.eye(2), np.zeros((2, 1))]))


def largest_face(image, detector=None, context=1.0, multiple=None):
    """``(crop, found)``: the largest face of a photo cut out upright (``context`` and ``multiple``
    as for :func:`aligned_crop`), or the whole gray photo when none is found.

    How a photo becomes a face when a data set holds whole heads on a background (Yale):
    training then sees the same kind of crop as inference.
    """
    crop = largest_crop(image, detector, context, multiple)
    return (crop.image, True) if crop is not None else (to_gray(image), False)


def largest_crop(image, detector=None, context=1.0, multiple=None):
    """The largest face of a photo as a :class:`FaceCrop` (see :func:`largest_face`), or None."""
    from utils.faces.detect import find_faces
    found = find_faces(image, detector=detector)
    return aligned_crop(image, found[0], context=context, multiple=multiple) if found else None
