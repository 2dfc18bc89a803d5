"""Where FER2013's faces have their eyes, nose, mouth and ears: the canonical face the crops are aligned to.

    python scripts/measure_canonical_face.py            # --data dataset/fer2013/train

Each 48x48 training face is centred on a grey square twice its size (the detector needs
some background around a face) and BlazeFace finds its keypoints; their mean position,
in pixels of the 48x48 frame, is the canonical face. Serving rotates and scales every
detected face so its eyes land there, so the network sees faces framed the way it was
trained. The Haar cascade gives no keypoints: for it, the same keypoints are stored as
fractions of its box on the same faces. How far the faces are from the canonical one
(the eye line's angle, the distance between the eyes) is stored too. Writes
utils/faces/canonical_face.json.
"""
import argparse
import glob
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils.defaults import FER2013  # noqa: E402
from utils.faces import detect  # noqa: E402
from utils.faces.align import CANONICAL_FACE_FILE  # noqa: E402
from utils.faces.face import KEYPOINTS  # noqa: E402
from utils.files import write_json  # noqa: E402
from utils.media.decode import IMAGE_SUFFIXES, read_image  # noqa: E402
from utils.train.photo_path import on_grey_square, PHOTO_PAD  # noqa: E402

FRAME = 48


def measure(path):
    """``(keypoints (6, 2) in the 48 px frame, or None; the same as fractions of the Haar box, or None)``."""
    canvas = on_grey_square(read_image(path), PHOTO_PAD)
    found = detect.find_faces(canvas, "fast", "blazeface")
    if not found:
        return None, None
    points = np.array([found[0].keypoints[name] for name in KEYPOINTS]) - PHOTO_PAD
    haar = detect.find_faces(canvas, "thorough", "haar")
    if not haar:
        return points, None
    x, y, w, h = haar[0].box
    return points, (points + PHOTO_PAD - (x, y)) / (w, h)


def summary(points):
    points = np.asarray(points)
    return ({name: [round(float(v), 3) for v in points[:, i].mean(axis=0)] for i, name in enumerate(KEYPOINTS)},
            {name: [round(float(v), 3) for v in points[:, i].std(axis=0)] for i, name in enumerate(KEYPOINTS)})


def spread_of(values):
    """How a measure varies over the faces: mean, standard deviation, 5th and 95th percentiles."""
    return {"mean": round(float(np.mean(values)), 2), "std": round(float(np.std(values)), 2),
            "p5": round(float(np.percentile(values, 5)), 2), "p95": round(float(np.percentile(values, 95)), 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(FER2013, "train"), help="FER2013 train/ (class folders of 48x48 faces)")
    parser.add_argument("--out", default=CANONICAL_FACE_FILE)
    args = parser.parse_args(argv)
    paths = sorted(path for path in glob.glob(os.path.join(args.data, "*", "*"))
                   if path.lower().endswith(IMAGE_SUFFIXES))
    if not paths:
        print(f"error: no faces under {args.data} (make data)", file=sys.stderr)
        return 2
    from tqdm import tqdm
    found, in_haar_box = [], []
    for path in tqdm(paths, unit=" faces"):
        points, fractions = measure(path)
        if points is not None:
            found.append(points)
        if fractions is not None:
            in_haar_box.append(fractions)
    mean, spread = summary(found)
    haar_mean, _ = summary(in_haar_box)
    eyes = np.asarray(found)[:, [KEYPOINTS.index("right_eye"), KEYPOINTS.index("left_eye")]]
    gaps = eyes[:, 1] - eyes[:, 0]
    geometry = {
        "frame": [FRAME, FRAME],
        "keypoints": mean,
        "std": spread,
        "haar_box_keypoints": haar_mean,
        "pose": {"eye_line_degrees": spread_of(np.degrees(np.arctan2(gaps[:, 1], gaps[:, 0]))),
                 "eye_distance": spread_of(np.hypot(gaps[:, 0], gaps[:, 1]))},
        "faces": len(paths), "found": len(found), "found_by_both": len(in_haar_box),
        "measured_on": f"{args.data}: each face centred on a {FRAME + 2 * PHOTO_PAD} px grey square, "
                       "BlazeFace (both networks); Haar fractions of its box on the same faces",
        "command": "python scripts/measure_canonical_face.py --data " + args.data,
    }

    write_json(args.out, geometry, indent=2)
    print(f"BlazeFace found {len(found)} of {len(paths)} faces; eyes at {mean['right_eye']} and {mean['left_eye']} "
          f"(std {spread['right_eye']}, {spread['left_eye']}) of the {FRAME} px frame; wrote {args.out}")
    return 0


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
