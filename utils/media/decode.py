"""Reading a user's image safely: bytes or a path -> an upright 8-bit BGR array.

Pillow does the decoding so that EXIF orientation, 16-bit, RGBA, CMYK and palette
images all come out right, and the pixel count is checked from the header before
anything is decoded, so a decompression bomb is refused cheaply.

Memory is the cost to bound: a few tens of kilobytes of PNG can hold tens of
megapixels, and every copy of them costs bytes per pixel. So the limit is set for a
model that sees 48x48 faces, a big JPEG is decoded at a reduced scale, and 16-bit
images become 8-bit with integer arithmetic, never through a float64 copy
(``bench/bench_memory.py`` prints the figures).
"""
import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from utils.defaults import MAX_PIXELS
from utils.media.colour import to_uint8

# The file names read as images wherever a folder of pictures is read (data sets, galleries, benchmarks).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# A JPEG longer than twice this is decoded at 1/2, 1/4 or 1/8 scale, its long side still at least this:
# plenty for faces a 48x48 model reads, at a quarter of the memory or less.
DECODE_SIDE = 2048
# Pillow's modes for 16-bit (and 32-bit integer) gray images.
WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class ImageError(ValueError):
    """The input is not an image we can use; the message says why in one line."""


def decode_image(data, max_pixels=MAX_PIXELS):
    """Image file bytes -> ``(H, W, 3)`` uint8 BGR, EXIF orientation applied."""
    if not data:
        raise ImageError("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(f"the image has {width * height / 1e6:.0f} megapixels; "
                                 f"the limit is {max_pixels / 1e6:.0f}")
            image.draft(image.mode, _draft_size(width, height))  # JPEG only; other formats ignore it
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("the file is not an image this program can read (JPEG, PNG, WebP, BMP ...)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"the image is damaged or truncated ({error})") from None
    return _to_bgr(image)


def _draft_size(width, height):
    """The size to ask a JPEG decoder for: the image shrunk so its long side is :data:`DECODE_SIDE`."""
    shrink = min(1.0, DECODE_SIDE / max(width, height))
    return math.ceil(width * shrink), math.ceil(height * shrink)


def _to_bgr(image):
    """Any Pillow mode -> 8-bit BGR; 16-bit gray is scaled down, not clipped."""
    if image.mode in WIDE_GRAY_MODES:
        gray = to_uint8(np.asarray(image))
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode != "RGB":
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


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
