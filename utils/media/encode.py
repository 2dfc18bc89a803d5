"""Pictures as bytes: arrays through a colour map, and arrays and figures as PNG and data URLs.

The site sends every picture inline as a PNG data URL, so a page needs no second request
per feature map; the desktop window and the command-line tools save figures as PNG files.
Drawing itself is the job of :mod:`utils.media.charts`, :mod:`utils.media.grids` and the figures of each concern.
"""
import io

import numpy as np


def figure_png(figure, dpi=100):
    """A figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def colour_map(values, cmap="viridis", low=None, high=None):
    """An array ``(H, W)`` (or a stack ``(H, W, N)``) -> ``(H, W, 3)`` (``(H, W, N, 3)``) uint8 RGB through
    a matplotlib colormap.

    ``low``/``high`` fix the scale (one scale for a whole layer lets channels be compared);
    by default the array's own range is used.
    """
    import matplotlib
    values = np.asarray(values, dtype=np.float32)
    low = float(values.min()) if low is None else float(low)
    high = float(values.max()) if high is None else float(high)
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return np.uint8(matplotlib.colormaps[cmap](np.clip(scaled, 0.0, 1.0))[..., :3] * 255)


def image_png(image):
    """A gray or RGB uint8 array -> PNG bytes (OpenCV's encoder: fast for many small maps)."""
    import cv2
    image = np.asarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return encoded.tobytes()


def png_data_url(png):
    """PNG bytes -> a ``data:`` URL, so a page can show an image without a second request."""
    import base64
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
