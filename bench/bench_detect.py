"""What each face search (utils.faces.find_faces) costs and which face sizes it finds.

    python bench/bench_detect.py [--yale dataset/yalefaces]

Rows: "thorough", "fast" (the coarse search, then the thorough one when it finds
nothing) and the coarse search alone. Cost: CPU milliseconds per search, one thread,
on the web benchmark's busy 640x480 frame (the astronaut), and on the same frame upside
down, where no face is found (so "fast" pays for both searches). Recall: each Yale photo
(one face each; ``make data``) is shrunk so its face is 50-140 px wide and pasted at a
random place on a grey 640x480 frame; a face counts as found when a box overlaps it by IoU > 0.4. Without the Yale
faces only the cost is printed.
"""
import argparse
import glob
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.bench_web import one_face_jpeg  # noqa: E402
from utils import faces  # noqa: E402
from utils.video import iou  # noqa: E402

FRAME = (480, 640)
FACE_WIDTHS = (50, 60, 75, 100, 140)


def yale_frames(folder, seed=0):
    """``(frame, face_width, true_box)`` for every Yale photo at every face width."""
    rng = np.random.default_rng(seed)
    cases = []
    for path in sorted(glob.glob(os.path.join(folder, "*", "*.png"))):
        photo = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        # The reference face: the cascade at full resolution and fine steps finds it in every photo.
        found = faces.detect_faces(photo, max_side=max(photo.shape), min_fraction=60 / min(photo.shape),
                                   scale_step=1.05)
        if not found:
            continue
        x, y, w, h = found[0]
        for width in FACE_WIDTHS:
            scale = width / w
            small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            frame = np.full(FRAME, 128, np.uint8)
            top, left = rng.integers(0, FRAME[0] - small.shape[0]), rng.integers(0, FRAME[1] - small.shape[1])
            frame[top:top + small.shape[0], left:left + small.shape[1]] = small
            cases.append((frame, width, (left + x * scale, top + y * scale, w * scale, h * scale)))
    return cases


def cpu_ms(search, frame, repeats=30):
    search(frame)
    start = time.process_time()
    for _ in range(repeats):
        search(frame)
    return (time.process_time() - start) / repeats * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yale", default="dataset/yalefaces", help="the Yale faces folder (one folder per person)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    busy = cv2.imdecode(np.frombuffer(one_face_jpeg(), np.uint8), cv2.IMREAD_GRAYSCALE)
    cases = yale_frames(args.yale) if os.path.isdir(args.yale) else []
    if not cases:
        print(f"no Yale faces at {args.yale} (make data): printing the cost only")
    searches = {name: (lambda image, name=name: faces.find_faces(image, name)) for name in faces.DETAILS}
    searches["coarse only"] = lambda image: faces.detect_faces(image, **faces.FAST_SEARCH)
    header = f"{'search':<12} {'CPU ms':>7} {'no face':>8}"
    print(header + "".join(f" {f'{width} px':>7}" for width in FACE_WIDTHS) if cases else header)
    for name, search in searches.items():
        line = f"{name:<12} {cpu_ms(search, busy):>7.1f} {cpu_ms(search, busy[::-1].copy()):>8.1f}"
        for width in FACE_WIDTHS if cases else ():
            hits = [any(iou(box, found) > 0.4 for found in search(frame))
                    for frame, size, box in cases if size == width]
            line += f" {np.mean(hits):>7.2f}"
        print(line)
    if cases:
        print(f"recall over {len(cases) // len(FACE_WIDTHS)} Yale photos per face width (fraction found)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
