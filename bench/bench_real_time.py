"""Frames per second of real_time.py's loop (read, detect, predict, draw) on a 640x480 one-face video.

    python bench/bench_real_time.py [--model models/emotion_model.h5] [--frames 300]
    python bench/bench_real_time.py --random vgg     # a random-weight model: speed does not depend on weights

The video is built in a temporary folder from scikit-image's astronaut, drifting
sideways on a 640x480 canvas. Each setting plays the whole video once after a short
warm-up and prints frames/s and the share of the loop's time in each phase.
"""
import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from utils import faces, video  # noqa: E402

SIZE = (640, 480)
# (description, every, detect_every): detection on every frame first, to show what tracking saves.
SETTINGS = [
    ("whole-frame detection every frame", 1, 1),
    (f"default: detection every {video.DETECT_EVERY} frames, tracking between", 1, video.DETECT_EVERY),
    ("--every 2 (analyse every other frame)", 2, video.DETECT_EVERY),
]
WARMUP_FRAMES = 10


def build_video(path, frames):
    """The astronaut (face about 90 px) drifting left and right on a grey 640x480 canvas."""
    from skimage import data
    photo = cv2.resize(np.ascontiguousarray(data.astronaut()[:, :, ::-1]), (SIZE[1], SIZE[1]))
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30, SIZE)
    for index in range(frames):
        frame = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
        left = 80 + int(60 * np.sin(index / 20))
        frame[:, left:left + SIZE[1]] = photo
        writer.write(frame)
    writer.release()


def load_predictor(args):
    from utils.predict import Predictor
    if not args.random:
        return Predictor.from_path(args.model)
    from utils.models import build_model
    model = build_model(args.random, (48, 48, 1), 7)
    card = {"classes": [f"class{i}" for i in range(7)], "input": {"height": 48, "width": 48, "channels": 1}}
    return Predictor(model, card)


def play(path, predictor, every, detect_every):
    """One pass over the video: frames per second, frames per CPU-second, and seconds per phase.

    Frames per CPU-second (this process's CPU time, every thread) is what the loop would
    reach alone on one core: on a machine busy with other work the wall clock undersells it.
    """
    analyser = video.VideoAnalyser(predictor, 0.35, every=every, detect_every=detect_every)
    colours = video.label_colours(predictor.classes)
    meter = video.FpsMeter()
    capture = cv2.VideoCapture(path)
    seconds = {"read": 0.0, "draw": 0.0}
    frames, start, cpu_start = 0, None, None
    while True:
        if frames == WARMUP_FRAMES:  # the first model calls build TensorFlow's graphs
            analyser.seconds.clear()
            seconds.update(read=0.0, draw=0.0)
            start, cpu_start = time.perf_counter(), time.process_time()
        tick = time.perf_counter()
        ok, frame = capture.read()
        seconds["read"] += time.perf_counter() - tick
        if not ok:
            break
        found, _ = analyser.analyse(frame)
        tick = time.perf_counter()
        video.draw_fps(video.draw_faces(frame, found, colours), meter.tick())
        seconds["draw"] += time.perf_counter() - tick
        frames += 1
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    capture.release()
    seconds.update(analyser.seconds)
    timed = frames - WARMUP_FRAMES
    return timed / total, timed / cpu, total, seconds


def detection_costs(path):
    """Milliseconds for one Haar search: whole frame at full size, on the 320 px copy, and near a face."""
    capture = cv2.VideoCapture(path)
    gray = faces.to_gray(capture.read()[1])
    capture.release()
    box = faces.detect_faces(gray)[0]
    searches = {"full 640x480": lambda: faces.detect_faces(gray, max_side=max(SIZE)),
                f"{faces.DETECT_MAX_SIDE} px copy": lambda: faces.detect_faces(gray),
                "region around the face": lambda: video.find_near(gray, box)}
    costs = {}
    for name, search in searches.items():
        search()
        start = time.perf_counter()
        for _ in range(20):
            search()
        costs[name] = (time.perf_counter() - start) / 20 * 1000
    return costs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "emotion_model.h5"))
    parser.add_argument("--random", metavar="ARCH", help="a random-weight model of this architecture instead")
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()

    predictor = load_predictor(args)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "one_face_640x480.mp4")
        build_video(path, args.frames)
        print(f"{args.frames} frames, 640x480, one face; model: {args.random or args.model}; "
              f"{os.cpu_count()} CPUs")
        print("one Haar search: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in detection_costs(path).items()))
        for description, every, detect_every in SETTINGS:
            fps, cpu_fps, total, seconds = play(path, predictor, every, detect_every)
            shares = ", ".join(f"{phase} {100 * seconds[phase] / total:.0f}%"
                               for phase in ("read", "detect", "predict", "draw"))
            print(f"{fps:6.1f} frames/s, {cpu_fps:6.1f} per CPU-second  {description}  ({shares})")


if __name__ == "__main__":
    main()
