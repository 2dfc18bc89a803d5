"""FER2013's own facts: its seven classes in its label order, its usages, and one row of fer2013.csv.

Kept apart from the loaders so that FER+'s reader (:mod:`utils.train.ferplus`), which reads
``fer2013.csv``'s pixels too, and ``make data`` share them without importing the loaders.
"""
import math

import numpy as np

# FER2013's own label order (the `emotion` column of fer2013.csv).
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CSV_USAGES = {"train": "Training", "val": "PrivateTest", "test": "PublicTest"}


def fer2013_row(row):
    """``(label, face)`` of one fer2013.csv row (``face`` a square uint8 array), or None for a row
    that is not one: a label outside FER2013's classes, pixels that are not a square of 0-255."""
    try:
        label = int(row["emotion"])
        pixels = np.array(row["pixels"].split(), dtype=np.float32)
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
    side = math.isqrt(pixels.size)
    if not 0 <= label < len(FER2013_CLASSES) or side == 0 or side * side != pixels.size:
        return None
    if pixels.min() < 0 or pixels.max() > 255:
        return None
    return label, pixels.reshape(side, side).astype(np.uint8)
