"""Faces cut out upright on the canonical face, the whole-image stand-in, and train/serve preprocessing parity."""
import cv2
import numpy as np
import pytest

from utils.faces import align, preprocess
from utils.faces.face import Face
from utils.media import colour
from utils.media.decode import decode_image
from utils.train import datasets, photo_path


def dots_picture(points, size=(300, 400)):
    """A dark picture with a bright dot at each point: where a crop puts them can be seen in its pixels."""
    picture = np.full((*size, 3), 40, np.uint8)
    for x, y in points:
        cv2.circle(picture, (int(round(x)), int(round(y))), 3, (255, 255, 255), -1)
    return picture


def bright_spots(image, count):
    """The centres of the ``count`` largest bright blobs of a gray image, left to right."""
    _, labels, stats, centres = cv2.connectedComponentsWithStats((image > 128).astype(np.uint8))
    largest = np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:count] + 1
    return sorted(tuple(centres[i]) for i in largest)


def test_the_canonical_face_was_measured_on_fer2013():
    geometry = align.canonical_face()
    assert geometry["frame"] == [48, 48] and geometry["found"] > 0.9 * geometry["faces"]
    points = geometry["keypoints"]
    assert 12 < points["right_eye"][0] < 19 < 29 < points["left_eye"][0] < 36
    assert points["right_eye"][1] == pytest.approx(points["left_eye"][1], abs=1.5)
    assert points["right_eye"][1] < points["nose"][1] < points["mouth"][1]


def posed_keypoints(degrees, eye_distance, centre):
    """The canonical face's keypoints turned ``degrees`` (clockwise on screen), scaled so its eyes
    are ``eye_distance`` px apart and centred on ``centre``: a face as a photo might hold it."""
    canonical = align.canonical_keypoints(1.0, 1.0)
    gap = np.hypot(*np.subtract(canonical["left_eye"], canonical["right_eye"]))
    turn = np.radians(degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return {name: tuple(rotation @ ((np.asarray(point) - 0.5) * eye_distance / gap) + centre)
            for name, point in canonical.items()}


@pytest.mark.parametrize("degrees", [0, 30, -40])
def test_a_tilted_face_is_cut_out_with_its_eyes_on_the_canonical_ones(degrees):
    """Dots stand for the eyes of a face turned ``degrees``; the crop must hold them level,
    where the canonical face has its eyes, whatever the crop's size."""
    keypoints = posed_keypoints(degrees, 60, np.array([200.0, 150.0]))
    face = Face((140, 90, 120, 120), 0.9, keypoints)
    crop = align.aligned_crop(dots_picture([keypoints[name] for name in align.EYES]), face)
    side = crop.image.shape[0]
    assert crop.image.shape == (side, side)
    expected = align.canonical_keypoints(side, side)
    for (x, y), name in zip(bright_spots(crop.image, 2), align.EYES):
        assert (x, y) == pytest.approx(expected[name], abs=1.0)
    assert crop.angle == pytest.approx(-degrees, abs=0.5)
    # Eyes 60 px apart in the picture: the face is 171 px wide there; the crop is the smallest
    # 48 px frame times a power of two that holds it, so it shrinks to 48 by a whole factor.
    unit = align.canonical_keypoints(1, 1)
    native = 60 / np.hypot(*np.subtract(unit["left_eye"], unit["right_eye"]))
    assert side == 192 and side / 2 < native <= side
    assert align.aligned_crop(np.zeros((300, 400), np.uint8), face, multiple=64).image.shape == (256, 256)


def test_the_eye_line_sets_the_turn_and_four_points_the_scale():
    """A face whose mouth sits low (an open mouth) is still turned by its eyes alone, while its
    size comes from eyes, nose and mouth together."""
    keypoints = posed_keypoints(20, 50, np.array([150.0, 150.0]))
    mouth = np.asarray(keypoints["mouth"]) + 8 * np.array([-np.sin(np.radians(20)), np.cos(np.radians(20))])
    crop = align.aligned_crop(np.zeros((300, 300), np.uint8), Face((100, 100, 100, 100), 0.9, dict(keypoints, mouth=tuple(mouth))))
    (rx, ry), (lx, ly) = crop.keypoints["right_eye"], crop.keypoints["left_eye"]
    canonical = align.canonical_keypoints(1.0, 1.0)
    level = np.degrees(np.arctan2(canonical["left_eye"][1] - canonical["right_eye"][1],
                                  canonical["left_eye"][0] - canonical["right_eye"][0]))
    assert np.degrees(np.arctan2(ly - ry, lx - rx)) == pytest.approx(level, abs=0.01)
    assert crop.keypoints["mouth"][0] == pytest.approx(crop.image.shape[0] * canonical["mouth"][0], abs=0.5)


def test_the_crop_maps_back_to_the_picture():
    keypoints = posed_keypoints(-12, 45, np.array([145.0, 125.0]))
    crop = align.aligned_crop(np.zeros((300, 300), np.uint8), Face((100, 80, 90, 90), 0.9, keypoints))
    back = crop.to_picture([crop.keypoints["right_eye"], crop.keypoints["left_eye"]])
    np.testing.assert_allclose(back, [keypoints["right_eye"], keypoints["left_eye"]], atol=1e-6)
    small = crop.keypoints_at(48, 48)
    assert small["right_eye"] == pytest.approx(align.canonical_keypoints(48, 48)["right_eye"], abs=1e-6)


@pytest.mark.parametrize("side, transform, expected", [
    (48, [[1, 0, -24], [0, 1, -24]], 0.0),                                 # exactly the box
    (48, [[1, 0, -12], [0, 1, -24]], 0.25),                                # a quarter to its left
    (480, cv2.getRotationMatrix2D((479.5, 479.5), 45, 1.0) - [[0, 0, 240], [0, 0, 240]], 1 - 2 * (np.sqrt(2) - 1)),
])
def test_the_share_of_a_crop_outside_a_box(side, transform, expected):
    """Known geometry: a square turned 45 degrees about its centre keeps 2(sqrt 2 - 1) of itself
    inside the square it was (an octagon); the rest of its corners come from outside."""
    crop = align.FaceCrop(np.zeros((side, side), np.uint8), {}, 0.0, np.asarray(transform, dtype=np.float64))
    assert crop.share_outside((side / 2, side / 2, side, side)) == pytest.approx(expected, abs=0.002)


def test_a_face_without_keypoints_is_framed_from_its_box():
    """Haar gives only a box: the eyes are placed where they sit on average in its boxes."""
    box = (50, 40, 100, 100)
    expected_eyes = [(50 + fx * 100, 40 + fy * 100) for fx, fy in
                     (align.canonical_face()["haar_box_keypoints"][name] for name in align.EYES)]
    crop = align.aligned_crop(dots_picture(expected_eyes, (240, 240)), Face(box, 0.6))
    found = bright_spots(crop.image, 2)
    side = crop.image.shape[0]
    for (x, y), name in zip(found, align.EYES):
        assert (x, y) == pytest.approx(align.canonical_keypoints(side, side)[name], abs=1.5)


def test_the_whole_image_stands_in_with_the_canonical_keypoints():
    picture = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    crop = align.whole_image_crop(picture)
    np.testing.assert_array_equal(crop.image, colour.to_gray(picture))
    assert crop.keypoints["mouth"] == pytest.approx(align.canonical_keypoints(60, 80)["mouth"])
    assert crop.angle == 0.0


def test_a_cut_out_face_goes_back_on_a_grey_square():
    face = np.arange(48 * 48, dtype=np.uint32).reshape(48, 48).astype(np.uint8)
    square = photo_path.on_grey_square(face, 24)
    assert square.shape == (96, 96)
    np.testing.assert_array_equal(square[24:72, 24:72], face)
    assert (square[:24] == 128).all() and (square[:, 72:] == 128).all()


@pytest.mark.parametrize("image", [
    np.full((60, 80), 128, np.uint8),
    np.full((60, 80, 3), 128, np.uint8),
    np.full((60, 80, 4), 128, np.uint8),
    np.full((60, 80), 128 * 257, np.uint16),
])
def test_preprocess_any_image_to_the_model_input(image):
    out = preprocess.preprocess(image, 48, 48, 1)
    assert out.shape == (48, 48, 1) and out.dtype == np.float32
    assert out.min() == pytest.approx(128 / 255) and out.max() == pytest.approx(128 / 255)
    assert preprocess.preprocess(image, 48, 48, 3).shape == (48, 48, 3)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_training_and_serving_see_the_same_pixels(tmp_path, suffix):
    """A face file read by the training loader equals the same file's bytes decoded the way an
    upload is (Pillow, EXIF, BGR) and preprocessed for serving."""
    rng = np.random.default_rng(0)
    face = cv2.GaussianBlur(rng.integers(0, 256, (64, 64), dtype=np.uint8), (0, 0), 1.5)
    (tmp_path / "happy").mkdir()
    path = tmp_path / "happy" / f"a{suffix}"
    cv2.imwrite(str(path), face)
    trained_on = datasets.load_class_folders(str(tmp_path), ["happy"], (48, 48), 1).images[0]
    served = preprocess.preprocess(decode_image(path.read_bytes()), 48, 48, 1)
    np.testing.assert_allclose(trained_on, served, atol=1.5 / 255)
    assert np.abs(trained_on - served).mean() < 0.5 / 255
