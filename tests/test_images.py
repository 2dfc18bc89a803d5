"""Decoding uploads with bounded memory: the pixel limit from the header, 16-bit without floats, JPEG drafts."""
import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from utils.defaults import MAX_PIXELS
from utils.media.decode import decode_image, DECODE_SIDE, ImageError


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def png_header(width, height, bit_depth=16):
    """A PNG's signature, IHDR chunk and the start of its pixel data: all a reader may look at to refuse it."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    fields = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", fields) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_a_16_bit_png_becomes_the_right_8_bit_values():
    levels = np.arange(256)
    wide = np.concatenate([levels * 257, np.minimum(levels * 257 + 256, 65535)])  # 257 k + 256 is still k
    wide = wide.astype(np.uint16)[None, :].repeat(3, axis=0)
    image = decode_image(png_bytes(wide))
    expected = np.concatenate([levels, levels]).astype(np.uint8)
    assert image.dtype == np.uint8 and image.shape == (3, 512, 3)
    assert np.array_equal(image[0, :, 0], expected) and np.array_equal(image[..., 0], image[..., 2])


def test_a_16_bit_png_holding_only_8_bit_values_keeps_them():
    low = np.arange(256, dtype=np.uint16)[None, :]
    assert np.array_equal(decode_image(png_bytes(low))[0, :, 1], np.arange(256))


def test_a_big_16_bit_png_is_decoded_without_a_float_copy():
    """Python-side peak under 6 bytes a pixel: the uint8 gray and BGR take 4, a float64 copy alone 8."""
    wide = (np.arange(4000, dtype=np.uint16) * 16)[None, :].repeat(3000, axis=0)
    data = png_bytes(wide)
    tracemalloc.start()
    try:
        image = decode_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert image.dtype == np.uint8 and image.shape == (3000, 4000, 3)
    assert peak / wide.size < 6, f"{peak / wide.size:.1f} bytes per pixel"


def test_an_image_over_the_limit_is_refused_from_its_header_alone():
    side = int(MAX_PIXELS ** 0.5)
    with pytest.raises(ImageError) as refused:
        decode_image(png_header(side + 1, side))
    message = str(refused.value)
    assert "\n" not in message and "megapixels" in message and f"limit is {MAX_PIXELS / 1e6:.0f}" in message
    with pytest.raises(ImageError, match="damaged or truncated"):  # at the limit: read on, and found truncated
        decode_image(png_header(side, side))


def test_the_limit_suits_a_48x48_model_and_the_site_uses_it(make_app, tmp_path):
    assert MAX_PIXELS <= 25_000_000
    app = make_app(WARM_UP=False, DEFAULT_MODEL=str(tmp_path / "none.h5"))
    assert app.config["MAX_PIXELS"] == MAX_PIXELS


def test_a_big_jpeg_is_decoded_at_a_reduced_scale_and_a_small_one_is_not():
    rgb = np.zeros((3000, 5000, 3), np.uint8)
    rgb[:, :2500] = (200, 40, 10)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90)
    image = decode_image(buffer.getvalue())
    assert image.shape == (1500, 2500, 3) and max(image.shape) >= DECODE_SIDE
    assert np.allclose(image[750, 600], (10, 40, 200), atol=12)  # BGR, colours intact
    small = io.BytesIO()
    Image.fromarray(rgb[:300, :400]).save(small, "JPEG")
    assert decode_image(small.getvalue()).shape == (300, 400, 3)
