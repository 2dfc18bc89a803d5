"""Augmentation: random shifts, turns, zooms, mirror images and erased patches of a training face."""
import cv2
import numpy as np


def random_affine(face, rng, rotation=15.0, zoom=0.1, shift=0.1, flip=True):
    """One random rotation/zoom/shift/flip of an ``(H, W, C)`` face, edges reflected."""
    height, width = face.shape[:2]
    angle = rng.uniform(-rotation, rotation)
    scale = rng.uniform(1 - zoom, 1 + zoom)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-shift, shift, size=2) * (width, height)
    warped = cv2.warpAffine(face, matrix, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT_101)
    warped = warped.reshape(face.shape)
    return warped[:, ::-1] if flip and rng.random() < 0.5 else warped


def random_erase(face, rng, area=(0.02, 0.2), aspect=(0.3, 3.3)):
    """Fill one random rectangle with noise (Zhong et al. 2017): the net cannot lean on any one region."""
    height, width = face.shape[:2]
    target = rng.uniform(*area) * height * width
    ratio = np.exp(rng.uniform(*np.log(aspect)))
    box_h = int(round(min(height, np.sqrt(target * ratio))))
    box_w = int(round(min(width, np.sqrt(target / ratio))))
    top, left = rng.integers(0, height - box_h + 1), rng.integers(0, width - box_w + 1)
    erased = face.copy()
    erased[top:top + box_h, left:left + box_w] = rng.random((box_h, box_w) + face.shape[2:])
    return erased
