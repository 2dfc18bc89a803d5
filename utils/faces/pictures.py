"""Pictures of the face-finding steps: the keypoints and eye line on the photo, the aligned crop beside it."""
import numpy as np
from matplotlib.figure import Figure

from utils.media.colour import to_rgb

KEYPOINT_RGB = (0, 200, 255)
EYE_LINE_RGB = (255, 220, 0)
BOX_RGB = (255, 140, 0)


def alignment_picture(image, prediction, crop, side=256):
    """The face where it was found: the photo around it with the detector's box, its keypoints,
    the eye line and the square that is cut out and turned upright (``crop``, a
    :class:`utils.faces.align.FaceCrop`), as ``(side, side, 3)`` uint8 RGB."""
    import cv2
    photo = to_rgb(image)
    x, y, w, h = prediction["box"]
    height, width = crop.image.shape[:2]
    outline = crop.to_picture([(0, 0), (width, 0), (width, height), (0, height)])
    reach = np.vstack([outline, [(x, y), (x + w, y + h)]])
    (left, top), (right, bottom) = reach.min(axis=0), reach.max(axis=0)
    extent = max(right - left, bottom - top) * 1.15
    centre = ((left + right) / 2, (top + bottom) / 2)
    scale = side / extent
    shift = np.array([[scale, 0, side / 2 - scale * centre[0]], [0, scale, side / 2 - scale * centre[1]]])
    view = cv2.warpAffine(photo, shift, (side, side), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderValue=(255, 255, 255))

    def at(points):
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return np.round(points @ shift[:, :2].T + shift[:, 2]).astype(np.int32)

    cv2.rectangle(view, *[tuple(p) for p in at([(x, y), (x + w, y + h)])], BOX_RGB, 1)
    cv2.polylines(view, [at(outline)], True, (255, 255, 255), 2)
    points = prediction.get("keypoints") or {}
    if "right_eye" in points and "left_eye" in points:
        cv2.line(view, *[tuple(p) for p in at([points["right_eye"], points["left_eye"]])], EYE_LINE_RGB, 2)
    for point in at(list(points.values())) if points else []:
        cv2.circle(view, tuple(point), 3, KEYPOINT_RGB, -1)
    return view


def input_figure(image, prediction, crop, face):
    """How the photo becomes the network's input: the face where it was found (box, keypoints,
    eye line, the square cut out), that square turned upright, and the input itself."""
    figure = Figure(figsize=(8, 3.2))
    photo_axis, crop_axis, input_axis = figure.subplots(1, 3)
    photo_axis.imshow(alignment_picture(image, prediction, crop))
    photo_axis.set_title("no face found: whole image" if prediction.get("whole_image") else "detected face")
    crop_axis.imshow(to_rgb(crop.image))
    crop_axis.set_title(f"upright ({crop.angle:+.0f}\u00b0)")
    input_axis.imshow(to_rgb(face))
    input_axis.set_title("input " + "x".join(str(v) for v in np.shape(face)))
    for axis in (photo_axis, crop_axis, input_axis):
        axis.set_axis_off()
    figure.tight_layout()
    return figure
