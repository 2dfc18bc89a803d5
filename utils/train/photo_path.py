"""The photo path simulated for training: a 48x48 face set on a grey square and found again as a photo's would be.

Served faces are found by a detector and cut out upright (:mod:`utils.faces.align`); training on
faces cut the same way keeps the model's input the same when it learns and when it is served.
"""
import numpy as np
from tqdm import tqdm

from utils.faces.align import largest_crop
from utils.faces.preprocess import preprocess
from utils.media.colour import to_gray


def on_grey_square(face, pad):
    """A cut-out face centred on a grey square ``pad`` pixels wider on each side: how a FER2013
    face is given back some surroundings, so a detector can find it as it would in a photo."""
    gray = to_gray(face)
    canvas = np.full((gray.shape[0] + 2 * pad, gray.shape[1] + 2 * pad), 128, np.uint8)
    canvas[pad:pad + gray.shape[0], pad:pad + gray.shape[1]] = gray
    return canvas


# A cut-out face is centred on a grey square this much wider on each side before the detector
# looks for it: how a FER2013 face is put back into a "photo" to go through the photo path.
PHOTO_PAD = 24


def served_faces(images, detector=None, context=1.0):
    """``(faces, on_square)``: preprocessed faces ``(N, H, W, C)`` as the photo path serves them.

    Each face goes back on a grey square (``PHOTO_PAD``), is found by the detector there, cut
    out upright (framed ``context`` times as wide as FER2013's, as the model's card says) and
    preprocessed again, as every front end does with a photo; a face the detector misses is
    kept as it was. ``on_square`` is the share of each crop cut from the grey square rather than
    the face (what turning it upright brings in that FER2013 did not keep); NaN where the
    detector missed the face.
    """
    height, width, channels = images.shape[1:]
    served, on_square = np.array(images, copy=True), np.full(len(images), np.nan)
    for index, face in enumerate(tqdm(images, desc="photo path", unit=" faces")):
        photo = on_grey_square(np.uint8(np.round(face[:, :, 0] * 255)), PHOTO_PAD)
        crop = largest_crop(photo, detector, context, multiple=width)
        if crop is not None:
            served[index] = preprocess(crop.image, height, width, channels)
            on_square[index] = crop.share_outside((PHOTO_PAD, PHOTO_PAD, face.shape[1], face.shape[0]))
    return served, on_square
