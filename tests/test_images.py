"""Decoding uploads with bounded memory: the pixel limit from the header, 16-bit without floats, big pictures
shrunk; and the rules the browser keeps too (tests/test_browser_engine.py holds Chromium to these)."""
import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from utils.defaults import MAX_PIXELS
from utils.media.decode import decode_image, DECODE_SIDE, ImageError, megapixels, shrunk_size, too_large


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


def test_a_16_bit_png_is_read_by_its_high_byte_as_browsers_read_it():
    levels = np.arange(256)
    wide = np.concatenate([levels * 256, levels * 256 + 255])  # 256 k + 255 is still k: its high byte
    wide = wide.astype(np.uint16)[None, :].repeat(3, axis=0)
    image = decode_image(png_bytes(wide))
    expected = np.concatenate([levels, levels]).astype(np.uint8)
    assert image.dtype == np.uint8 and image.shape == (3, 512, 3)
    assert np.array_equal(image[0, :, 0], expected) and np.array_equal(image[..., 0], image[..., 2])


def test_a_16_bit_png_holding_only_small_values_is_dark_as_in_a_browser():
    low = np.arange(256, dtype=np.uint16)[None, :]
    assert not decode_image(png_bytes(low)).any()


def test_a_16_bit_colour_png_is_read_by_its_high_bytes():
    import cv2
    wide = np.random.default_rng(2).integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    image = decode_image(cv2.imencode(".png", wide)[1].tobytes())
    assert np.array_equal(image, (wide >> 8).astype(np.uint8))


def test_transparency_is_on_white():
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0] = [(10, 20, 30, 0), (10, 20, 30, 255), (200, 100, 0, 128)]
    rgba[1] = [(0, 0, 0, 51), (255, 255, 255, 1), (60, 60, 60, 255)]
    image = decode_image(png_bytes(rgba))[:, :, ::-1].astype(int)   # as RGB
    colour, alpha = rgba[:, :, :3].astype(int), rgba[:, :, 3:].astype(int)
    assert np.array_equal(image, (colour * alpha + 255 * (255 - alpha) + 127) // 255)
    assert image[0, 0].tolist() == [255, 255, 255] and image[1, 0].tolist() == [204, 204, 204]


def test_a_cmyk_jpeg_is_read_with_the_browsers_arithmetic():
    inks = np.random.default_rng(3).integers(0, 256, (16, 24, 4), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(inks, "CMYK").save(buffer, "JPEG", quality=100)
    stored = np.asarray(Image.open(io.BytesIO(buffer.getvalue()))).astype(int)   # what the JPEG holds
    white = 255 - stored
    image = decode_image(buffer.getvalue())[:, :, ::-1].astype(int)
    assert np.array_equal(image, white[:, :, :3] * white[:, :, 3:] // 255)


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


def test_the_refusal_says_megapixels_rounded_up_to_a_tenth():
    assert [megapixels(n) for n in (25_000_000, 25_000_001, 25_100_000, 48_000_000, 999)] == ["25", "25.1", "25.1",
                                                                                           "48", "0.1"]
    assert too_large(25_000_001, 25_000_000) == "the image has 25.1 megapixels; the limit is 25"


@pytest.mark.parametrize("size, expected", [((4096, 4096), (4096, 4096)), ((4097, 100), (2049, 50)),
                                            ((5000, 3000), (2500, 1500)), ((8192, 10), (4096, 5)),
                                            ((8193, 3), (2049, 1)), ((4201, 1001), (2101, 501))])
def test_a_picture_longer_than_twice_the_side_is_shrunk_by_a_power_of_two(size, expected):
    assert shrunk_size(*size) == expected
    assert DECODE_SIDE < max(expected) <= 2 * DECODE_SIDE or expected == size


def test_a_big_jpeg_is_shrunk_by_area_averaging_and_a_small_one_is_not():
    import cv2
    rgb = np.zeros((3000, 5000, 3), np.uint8)
    rgb[:, :2500] = (200, 40, 10)
    rgb[::7, ::5] = 90
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90)
    image = decode_image(buffer.getvalue())
    full = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))[:, :, ::-1]
    assert image.shape == (1500, 2500, 3)
    assert np.array_equal(image, cv2.resize(full, (2500, 1500), interpolation=cv2.INTER_AREA))
    small = io.BytesIO()
    Image.fromarray(rgb[:300, :400]).save(small, "JPEG")
    assert decode_image(small.getvalue()).shape == (300, 400, 3)


def test_a_big_png_is_shrunk_too():
    gray = np.random.default_rng(5).integers(0, 256, (300, 4400), dtype=np.uint8)
    image = decode_image(png_bytes(gray))
    assert image.shape == (150, 2200, 3) and image[..., 0].tolist() == image[..., 2].tolist()
    assert np.array_equal(image[..., 1], (gray.reshape(150, 2, 2200, 2).astype(int).sum(axis=(1, 3)) + 2) // 4)
