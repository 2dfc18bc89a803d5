"""Frames per second of real_time.py's loop (read, detect, predict, draw) on a 640x480 one-face video,
beside the `fer` package's on the same video.

    python bench/bench_real_time.py [--model models/emotion_model.h5] [--frames 300]
    python bench/bench_real_time.py --random vgg     # a random-weight model: speed does not depend on weights
    python bench/bench_real_time.py --fer-path /tmp/ferpkg   # after pip install --no-deps --target /tmp/ferpkg fer

The video is built in a temporary folder from scikit-image's astronaut, drifting
sideways on a 640x480 canvas. Each setting plays the whole video once after a short
warm-up and prints frames/s, the share of the loop's time in each phase, and the faces
labelled per frame. The default setting then plays the same face on a blurred photo
(scikit-image's rocket), a background where a detector without a second look follows a
false face beside the real one. The `fer`
package (FER(), its defaults: the Haar cascade at full size and its own TensorFlow Lite
model) plays the same video in a child process (bench/fer_baseline.py), when it can be
imported there; its dependencies are this project's, so `--no-deps` is enough.
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

from utils.faces.detect import find_faces, find_near  # noqa: E402
from utils.live import drawing  # noqa: E402
from utils.live.tracking import DETECT_EVERY, FpsMeter, VideoAnalyser  # noqa: E402

SIZE = (640, 480)
# (description, detector, every, detect_every): BlazeFace as real_time.py runs it, then on every frame;
# Haar every frame, then as real_time.py runs it (tracking between whole-frame searches).
SETTINGS = [
    (f"default: BlazeFace, whole frame every {DETECT_EVERY['blazeface']} frames, followed between", "blazeface", 1, None),
    ("--detect-every 1: BlazeFace on the whole of every frame", "blazeface", 1, 1),
    ("--every 2 (analyse every other frame)", "blazeface", 2, None),
    ("--detector haar, whole-frame search every frame", "haar", 1, 1),
    (f"--detector haar: search every {DETECT_EVERY['haar']} frames, tracking between", "haar", 1, None),
]
WARMUP_FRAMES = 10


def build_video(path, frames, blurred_background=False):
    """The astronaut (face about 90 px) drifting left and right on a grey 640x480 canvas; or her head
    alone swaying on a blurred photo of a rocket (where BlazeFace's first pass alone also proposes a
    box larger than her face in the background)."""
    from skimage import data
    astronaut = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    photo = cv2.resize(astronaut, (SIZE[1], SIZE[1]))
    background = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
    if blurred_background:
        photo = astronaut[20:260, 120:330]
        rocket = cv2.resize(cv2.GaussianBlur(np.ascontiguousarray(data.rocket()[:, :, ::-1]), (0, 0), 8), SIZE)
        background = cv2.GaussianBlur(rocket, (0, 0), 6)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30, SIZE)
    top = 200 if blurred_background else 0
    for index in range(frames):
        frame = background.copy()
        left = 405 + int(15 * np.sin(index / 20)) if blurred_background else 80 + int(60 * np.sin(index / 20))
        frame[top:top + photo.shape[0], left:left + photo.shape[1]] = photo
        writer.write(frame)
    writer.release()


def load_predictor(args):
    from utils.model.predict import Predictor
    if not args.random:
        return Predictor.from_path(args.model)
    from utils.model.architectures import build_model
    from utils.model.card import InputSize, ModelCard
    model = build_model(args.random, (48, 48, 1), 7)
    card = ModelCard(name=args.random, task="emotion", classes=tuple(f"class{i}" for i in range(7)),
                     input=InputSize(height=48, width=48, channels=1), architecture=args.random,
                     parameters=model.count_params())
    return Predictor(model, card)


def play(path, predictor, detector, every, detect_every):
    """One pass over the video: frames per second, frames per CPU-second, seconds per phase, and
    faces labelled per frame.

    Frames per CPU-second (this process's CPU time, every thread) is what the loop would
    reach alone on one core: on a machine busy with other work the wall clock undersells it.
    """
    analyser = VideoAnalyser(predictor, 0.35, every=every, detect_every=detect_every, detector=detector)
    colours = drawing.label_colours(predictor.classes)
    meter = FpsMeter()
    capture = cv2.VideoCapture(path)
    seconds = {"read": 0.0, "draw": 0.0}
    frames, start, cpu_start, labelled = 0, None, None, 0
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
        labelled += len(found) if frames >= WARMUP_FRAMES else 0
        tick = time.perf_counter()
        drawing.draw_fps(drawing.draw_faces(frame, found, colours), meter.tick())
        seconds["draw"] += time.perf_counter() - tick
        frames += 1
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    capture.release()
    seconds.update(analyser.seconds)
    timed = frames - WARMUP_FRAMES
    return timed / total, timed / cpu, total, seconds, labelled / timed


def detection_costs(path):
    """Milliseconds for one search of the video's first frame: each detector on the whole frame, and near the face."""
    capture = cv2.VideoCapture(path)
    frame = capture.read()[1]
    capture.release()
    box = find_faces(frame, "fast")[0].box
    searches = {"BlazeFace, whole frame": lambda: find_faces(frame, "fast", "blazeface"),
                "Haar, whole frame": lambda: find_faces(frame, "fast", "haar"),
                "Haar, near the face": lambda: find_near(frame, box, "haar")}
    costs = {}
    for name, search in searches.items():
        search()
        start = time.perf_counter()
        for _ in range(20):
            search()
        costs[name] = (time.perf_counter() - start) / 20 * 1000
    return costs


def fer_package(path, fer_path):
    """``(frames/s, frames per CPU-second)`` of the `fer` package on the video, or the reason it could not run."""
    import subprocess
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [fer_path, os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "fer_baseline.py"), path, str(WARMUP_FRAMES)],
                            capture_output=True, text=True, env=env)
    if result.returncode:
        return None, (result.stderr.strip().splitlines() or ["it failed"])[-1]
    fps, cpu_fps, _ = result.stdout.split()
    return (float(fps), float(cpu_fps)), None


def report(figures, description):
    fps, cpu_fps, total, seconds, faces = figures
    shares = ", ".join(f"{phase} {100 * seconds[phase] / total:.0f}%" for phase in ("read", "detect", "predict", "draw"))
    print(f"{fps:6.1f} frames/s, {cpu_fps:6.1f} per CPU-second, {faces:.2f} faces a frame  {description}  ({shares})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "emotion_model.h5"))
    parser.add_argument("--random", metavar="ARCH", help="a random-weight model of this architecture instead")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--fer-path", help="a folder holding the `fer` package (pip install --no-deps --target DIR fer)")
    args = parser.parse_args(argv)

    predictor = load_predictor(args)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "one_face_640x480.mp4")
        build_video(path, args.frames)
        print(f"{args.frames} frames, 640x480, one face; model: {args.random or args.model}; "
              f"{os.cpu_count()} CPUs")
        print("one search: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in detection_costs(path).items()))
        for description, detector, every, detect_every in SETTINGS:
            report(play(path, predictor, detector, every, detect_every), description)
        blurred = os.path.join(folder, "one_face_on_a_blurred_photo.mp4")
        build_video(blurred, args.frames, blurred_background=True)
        report(play(blurred, predictor, "blazeface", 1, None), "default, the face on a blurred photo")
        figures, reason = fer_package(path, args.fer_path)
        if figures:
            print(f"{figures[0]:6.1f} frames/s, {figures[1]:6.1f} per CPU-second  the fer package, FER() defaults")
        else:
            print(f"the fer package did not run ({reason}); pass --fer-path DIR after "
                  "pip install --no-deps --target DIR fer")


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
