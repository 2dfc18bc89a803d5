"""Colour conversion, once for the whole project: any OpenCV image as 8-bit gray or as RGB.

Pictures arrive gray or BGR, with an alpha channel or without, 8 or 16 bit, or as floats in
[0, 1] (a preprocessed face); the detectors, the model and the figures each want one form.
"""
import cv2
import numpy as np


def to_uint8(image):
    """``image``'s values as uint8: wider integers as :func:`wide_to_8_bit`, floats in [0, 1] (a
    preprocessed face) scaled up, other floats clipped."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    if image.dtype.kind in "iu":
        return wide_to_8_bit(image)
    if image.size and image.max() <= 1.0:
        image = image * 255.0
    return np.clip(image, 0, 255).astype(np.uint8)


def wide_to_8_bit(array, sixteen_bit=None):
    """Wider integer values -> uint8: 16-bit samples by their high byte (``v >> 8``: 65535 -> 255, 256 k -> k),
    as browsers read a 16-bit PNG; 8-bit values in a wider type stay. ``sixteen_bit`` says which the values
    are (a 16-bit file's are, whatever they hold); None decides by the values (any over 255).

    Integers only, written straight into the uint8 result: a float64 copy of a
    25-megapixel image alone is 200 MB.
    """
    if sixteen_bit is None:
        sixteen_bit = bool(array.size) and array.max() > 255
    top = 65535 if sixteen_bit else 255
    if array.dtype != np.uint16 or not sixteen_bit:  # Pillow's mode "I" is 32-bit and may hold anything
        array = np.clip(array, 0, top)
    gray = np.empty(array.shape, np.uint8)
    np.right_shift(array, 8 if sixteen_bit else 0, out=gray, casting="unsafe")
    return gray


def _channels(image):
    image = to_uint8(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2 and not (image.ndim == 3 and image.shape[2] in (3, 4)):
        raise ValueError(f"unsupported image shape {image.shape}")
    return image


def to_gray(image):
    """Any OpenCV image (gray, BGR, BGRA; 8 or 16 bit, or floats) -> 2-D uint8 gray."""
    image = _channels(image)
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)


def to_rgb(image):
    """Any OpenCV image -> ``(H, W, 3)`` uint8 RGB: the order BlazeFace was trained on and figures draw in."""
    image = _channels(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGB)
