"""Reading a user's image safely: bytes or a path -> an upright 8-bit BGR array.

Pillow does the decoding, and the pixel count is checked from the header before anything
is decoded, so a decompression bomb is refused cheaply.

This is also the contract the in-browser engine keeps (``static/engine/picture.js``, held to it
pixel for pixel in Chromium by tests/test_browser_engine.py), so a photo gives the same faces on
the student's device as on the server. Its rules are what a browser does natively, and its numbers
reach the browser from :func:`browser_rules`, never typed twice:

- upright by the EXIF orientation; colours as stored (no colour management);
- transparency composited on :data:`BACKGROUND` (white);
- 16-bit samples by their high byte, CMYK as ``(255 - c) * (255 - k) // 255`` (Chromium's arithmetic);
- over the pixel limit refused with one line (:func:`too_large`);
- a picture longer than twice :data:`DECODE_SIDE` shrunk by a power of two (:func:`shrunk_size`) with
  OpenCV's area averaging, which the engine reproduces bit for bit: a 48x48 model needs no more, and
  a class photo's search covers a quarter of the pixels or fewer.

Memory is the cost to bound: a few tens of kilobytes of PNG can hold tens of megapixels, and every
copy of them costs bytes per pixel. So the limit is set for a model that sees 48x48 faces, a big
picture is shrunk before its colours are reordered, and 16-bit images become 8-bit with integer
arithmetic, never through a float64 copy (``bench/bench_memory.py`` prints the figures).
"""
import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from utils.defaults import MAX_PIXELS
from utils.media.colour import wide_to_8_bit

# The file names read as images wherever a folder of pictures is read (data sets, galleries, benchmarks).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# A picture longer than twice this is shrunk by 2, 4, 8 ..., its long side staying longer than this.
DECODE_SIDE = 2048
# What shows through transparent pixels, as RGB.
BACKGROUND = (255, 255, 255)
# The one line for a picture over the pixel limit (the browser fills it in too).
TOO_LARGE = "the image has {megapixels} megapixels; the limit is {limit}"
# Pillow's modes for 16-bit (and 32-bit integer) gray images.
WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class ImageError(ValueError):
    """The input is not an image we can use; the message says why in one line."""


def decode_image(data, max_pixels=MAX_PIXELS):
    """Image file bytes -> ``(H, W, 3)`` uint8 BGR, by the rules of the module's docstring."""
    if not data:
        raise ImageError("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(too_large(width * height, max_pixels))
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("the file is not an image this program can read (JPEG, PNG, WebP, BMP ...)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"the image is damaged or truncated ({error})") from None
    pixels = _to_rgb_or_gray(image)
    image.close()
    pixels = shrunk(pixels)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, ::-1])


def megapixels(pixels):
    """A pixel count in megapixels as the refusal says it: one decimal, rounded up, so a picture just over
    the limit never reads as the limit (25,000,001 -> "25.1"; 25,000,000 -> "25")."""
    tenths = -(-pixels // 100_000)
    return f"{tenths // 10}" if tenths % 10 == 0 else f"{tenths // 10}.{tenths % 10}"


def too_large(pixels, max_pixels):
    """The refusal of a picture of ``pixels`` pixels over ``max_pixels``: :data:`TOO_LARGE` filled in."""
    return TOO_LARGE.format(megapixels=megapixels(pixels), limit=megapixels(max_pixels))


def shrink_factor(width, height, side=DECODE_SIDE):
    """1, or for a picture longer than ``2 * side`` the largest power of two that keeps its long side over ``side``."""
    factor = 1
    while max(width, height) > side * factor * 2:
        factor *= 2
    return factor


def shrunk_size(width, height, side=DECODE_SIDE):
    """``(width, height)`` after :func:`shrink_factor`: each side divided by it, rounded up."""
    factor = shrink_factor(width, height, side)
    return -(-width // factor), -(-height // factor)


def shrunk(pixels, side=DECODE_SIDE):
    """A decoded picture (gray, RGB or BGR) at :func:`shrunk_size`, by OpenCV's area averaging."""
    height, width = pixels.shape[:2]
    size = shrunk_size(width, height, side)
    if size == (width, height):
        return pixels
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def browser_rules(max_pixels=MAX_PIXELS):
    """The numbers the in-browser engine decodes by (static/engine/picture.js): the limit, its line, the
    background and the side big pictures are shrunk towards."""
    return {"max_pixels": max_pixels, "too_large": TOO_LARGE, "background": list(BACKGROUND),
            "decode_side": DECODE_SIDE}


def _to_rgb_or_gray(image):
    """Any Pillow mode -> 8-bit RGB, or 8-bit gray for a gray image (16-bit: read by its high byte; Pillow's
    32-bit mode "I", from TIFFs, by its values)."""
    if image.mode in WIDE_GRAY_MODES:
        return wide_to_8_bit(np.asarray(image), sixteen_bit=None if image.mode == "I" else True)
    if image.mode == "L":
        return np.asarray(image)
    if image.mode == "CMYK":
        inks = np.asarray(image).astype(np.uint16)
        white = 255 - inks
        return np.uint8(white[:, :, :3] * white[:, :, 3:] // 255)
    if image.mode != "RGB":
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (*BACKGROUND, 255))
            image = Image.alpha_composite(background, image)
        image = image.convert("RGB")
    return np.asarray(image)


def read_image(path, max_pixels=MAX_PIXELS):
    """An image file on disk -> BGR array, with the same checks as uploads."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"no image at {path}") from None
    except IsADirectoryError:
        raise ImageError(f"{path} is a folder, not an image") from None
    try:
        return decode_image(data, max_pixels)
    except ImageError as error:
        raise ImageError(f"{path}: {error}") from None
