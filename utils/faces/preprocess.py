"""THE preprocessing: a cut-out face as the model's input.

Training and every front end pass faces through :func:`preprocess`, so a face is
scaled and resized the same way when the model learns and when it is served.
"""
import cv2
import numpy as np

from utils.media.colour import to_gray


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
    return preprocess(face, *card.input.size, card.input.channels)
