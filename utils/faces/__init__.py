"""Faces: finding them, cutting them out upright, and THE preprocessing that makes them the model's input.

Owns: ``detect`` (the one door to the detectors, the order faces are numbered in), ``blazeface``
and ``haar`` (the two detectors), ``face`` (a found face: box, score, keypoints), ``align`` (the
canonical face and the upright crop), ``preprocess`` (the model's input, the same in training and
serving), ``regions`` (eyes, brows, mouth... of an aligned face) and ``pictures`` (the figures of
these steps).
May import: ``utils.media`` and the top-level infrastructure.
"""
