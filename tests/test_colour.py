"""utils.media.colour: every picture form the project meets, as gray and as RGB, converted in one place."""
import numpy as np
import pytest

from utils.media.colour import to_gray, to_rgb, to_uint8

BGR = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)   # a blue pixel and a red one, in OpenCV's order


def test_colour_pictures_come_out_in_rgb_order_with_or_without_alpha():
    assert to_rgb(BGR).tolist() == [[[0, 0, 255], [255, 0, 0]]]
    with_alpha = np.concatenate([BGR, np.full((1, 2, 1), 7, np.uint8)], axis=2)
    assert to_rgb(with_alpha).tolist() == [[[0, 0, 255], [255, 0, 0]]]
    assert to_rgb(np.array([[9, 200]], np.uint8)).tolist() == [[[9, 9, 9], [200, 200, 200]]]


def test_gray_weights_follow_opencv_and_a_single_channel_is_dropped():
    assert to_gray(BGR).tolist() == [[29, 76]]      # 0.114 * 255 and 0.299 * 255, rounded
    assert to_gray(np.array([[[5], [6]]], np.uint8)).tolist() == [[5, 6]]


def test_sixteen_bit_is_scaled_down_and_eight_bit_values_in_a_wider_type_stay():
    assert to_uint8(np.array([0, 257, 257 * 100, 65535], np.uint16)).tolist() == [0, 1, 100, 255]
    assert to_uint8(np.array([0, 17, 255], np.int32)).tolist() == [0, 17, 255]
    assert to_gray(np.array([[65535, 0]], np.uint16)).tolist() == [[255, 0]]


def test_a_preprocessed_face_in_0_1_is_drawn_at_full_brightness():
    assert to_rgb(np.array([[[0.0], [1.0]]], np.float32)).tolist() == [[[0, 0, 0], [255, 255, 255]]]
    assert to_uint8(np.array([-3.0, 128.4, 300.0])).tolist() == [0, 128, 255]


def test_a_picture_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="unsupported image shape"):
        to_gray(np.zeros((2, 2, 5), np.uint8))
