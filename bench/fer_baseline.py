"""Frames per second of the `fer` package (FER(), its defaults) on a video: the baseline bench_real_time.py compares with.

    python bench/fer_baseline.py VIDEO WARMUP_FRAMES

Run by bench/bench_real_time.py with an interpreter that can import `fer`; imports
nothing of this project, so its figures are the package's alone. Prints one line:
``frames_per_second frames_per_cpu_second frames``.
"""
import sys
import time

import cv2


def main():
    from fer.fer import FER
    path, warmup = sys.argv[1], int(sys.argv[2])
    detector = FER()   # Haar cascade at full resolution and its own 64x64 TensorFlow Lite model
    capture = cv2.VideoCapture(path)
    frames, start, cpu_start = 0, None, None
    while True:
        if frames == warmup:
            start, cpu_start = time.perf_counter(), time.process_time()
        ok, frame = capture.read()
        if not ok:
            break
        detector.detect_emotions(frame)
        frames += 1
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    timed = frames - warmup
    print(f"{timed / total:.2f} {timed / cpu:.2f} {timed}")


if __name__ == "__main__":
    main()
