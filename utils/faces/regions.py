"""Facial regions (forehead and brows, eyes, nose, mouth, cheeks) placed on the face's own keypoints.

Each region is a box centred near a keypoint, its offset and size measured in eye
distances (the distance between the two eyes), so it follows the face: the mouth box
sits on this face's mouth, wherever its mouth is. On FER2013's mean face (the canonical
face) the layout reproduces the regions drawn by hand on it.
"""
import numpy as np

from utils.faces.align import canonical_keypoints

# region -> boxes of (keypoint it follows, dx, dy, width, height), all in eye distances;
# "eyes" is the point between the eyes. dx grows to the picture's right, dy downwards.
REGION_LAYOUT = {
    "forehead/brows": [("eyes", 0.0, -0.55, 2.05, 0.77)],
    "eyes": [("eyes", 0.0, 0.06, 2.28, 0.46)],
    "nose": [("nose", 0.0, -0.03, 0.74, 0.49)],
    "mouth": [("mouth", 0.0, 0.02, 1.31, 0.57)],
    "cheeks": [("right_eye", -0.31, 0.58, 0.77, 0.57), ("left_eye", 0.31, 0.58, 0.77, 0.57)],
}


def region_boxes(shape, keypoints=None, layout=REGION_LAYOUT):
    """Each region's rectangles ``[x, y, w, h]`` in pixels of a face of ``shape`` ``(H, W, ...)``.

    ``keypoints`` (``name -> (x, y)`` in the face's pixels) place them; without them the
    canonical face's are used (a face the detector gave none for).
    """
    height, width = shape[:2]
    points = dict(keypoints or canonical_keypoints(height, width))
    points["eyes"] = tuple((np.asarray(points["right_eye"]) + np.asarray(points["left_eye"])) / 2)
    unit = float(np.hypot(*np.subtract(points["left_eye"], points["right_eye"]))) or width / 3
    boxes = {}
    for name, parts in layout.items():
        boxes[name] = [_clipped(points[anchor][0] + dx * unit, points[anchor][1] + dy * unit,
                                w * unit, h * unit, width, height) for anchor, dx, dy, w, h in parts]
    return boxes


def _clipped(centre_x, centre_y, box_width, box_height, width, height):
    """A box around a centre in whole pixels, kept inside the face (at least one pixel)."""
    left = int(np.clip(round(centre_x - box_width / 2), 0, width - 1))
    top = int(np.clip(round(centre_y - box_height / 2), 0, height - 1))
    right = int(np.clip(round(centre_x + box_width / 2), left + 1, width))
    bottom = int(np.clip(round(centre_y + box_height / 2), top + 1, height))
    return [left, top, right - left, bottom - top]
