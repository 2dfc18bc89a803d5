"""Face detection on a real photo, crops, and train/serve preprocessing parity."""
import cv2
import numpy as np
import pytest

from utils import data, faces


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def test_detects_the_astronaut_face(astronaut_bgr, astronaut_face_box):
    boxes = faces.detect_faces(astronaut_bgr)
    assert len(boxes) == 1
    assert iou(boxes[0], astronaut_face_box) > 0.7


def test_fast_search_finds_a_large_face_coarsely(astronaut_bgr, astronaut_face_box, monkeypatch):
    searches = []
    detect = faces.detect_faces
    monkeypatch.setattr(faces, "detect_faces", lambda image, **options: searches.append(options) or detect(image, **options))
    boxes = faces.find_faces(astronaut_bgr, "fast")
    assert len(boxes) == 1 and iou(boxes[0], astronaut_face_box) > 0.7
    assert searches == [faces.FAST_SEARCH]                 # found coarsely: no second search


def test_fast_search_falls_back_to_the_thorough_one(astronaut_bgr, astronaut_face_box):
    """Squeezed to 640x480 the astronaut escapes the coarse search; the thorough one still finds her."""
    squeezed = cv2.resize(astronaut_bgr, (640, 480))
    assert faces.detect_faces(squeezed, **faces.FAST_SEARCH) == []
    boxes = faces.find_faces(squeezed, "fast")
    assert boxes == faces.find_faces(squeezed, "thorough") and len(boxes) == 1
    with pytest.raises(ValueError, match="unknown detail 'quick'"):
        faces.find_faces(squeezed, "quick")


def test_boxes_are_in_full_size_pixels_and_largest_first(astronaut_bgr):
    small = cv2.resize(astronaut_bgr, (360, 360))
    canvas = np.full((600, 900, 3), 255, np.uint8)
    canvas[40:552, 10:522] = astronaut_bgr
    canvas[200:560, 530:890] = small
    boxes = faces.detect_faces(canvas)
    assert len(boxes) == 2
    assert boxes[0][2] > boxes[1][2]
    assert boxes[0][0] < 522 <= boxes[1][0]


def test_no_face_in_a_blank_image():
    assert faces.detect_faces(np.full((240, 320, 3), 128, np.uint8)) == []


def test_crop_adds_margin_and_stays_inside():
    image = np.zeros((100, 100), np.uint8)
    assert faces.crop_face(image, (20, 20, 50, 50), 0.1).shape == (60, 60)
    assert faces.crop_face(image, (0, 0, 50, 50), 0.2).shape == (60, 60)


@pytest.mark.parametrize("image", [
    np.full((60, 80), 128, np.uint8),
    np.full((60, 80, 3), 128, np.uint8),
    np.full((60, 80, 4), 128, np.uint8),
    np.full((60, 80), 128 * 257, np.uint16),
])
def test_preprocess_any_image_to_the_model_input(image):
    out = faces.preprocess(image, 48, 48, 1)
    assert out.shape == (48, 48, 1) and out.dtype == np.float32
    assert out.min() == pytest.approx(128 / 255) and out.max() == pytest.approx(128 / 255)
    assert faces.preprocess(image, 48, 48, 3).shape == (48, 48, 3)


def test_training_and_serving_see_the_same_pixels(tmp_path):
    """A face file read by the training loader equals the same face preprocessed at inference."""
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "a.png"), face)
    trained_on = data.load_class_folders(str(tmp_path), ["happy"], (48, 48), 1).images[0]
    served = faces.preprocess(cv2.cvtColor(face, cv2.COLOR_GRAY2BGR), 48, 48, 1)
    np.testing.assert_array_equal(trained_on, served)
