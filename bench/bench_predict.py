"""How fast the predict path is: one face at a time, and faces batched.

The whole path a front end pays for a face it already found: THE preprocessing
(crop -> 48x48 gray in [0, 1]) plus the model, calibrated softmax included. Median
over repeats after a warm-up. Targets: at most 10 ms per face at batch size 1 and at
least 500 faces/s batched on a 2-core machine. The test-time mirror
average (card ``preprocessing.test_time_flip``) is included; the predictor computes in
bfloat16 where the CPU has it natively (``--precision float32`` to compare).

It also prints what bounds the batched figure: the model's floating-point operations
per face (every view of the test-time mirror average included) and this CPU's float32
rate on a large matrix product, the most a convolution net can get from it; their
ratio is the faces/s no float32 implementation of that model exceeds here (bfloat16
has a higher ceiling on CPUs that have it natively, so none is printed for it).

    python bench/bench_predict.py [--model models/emotion_model.h5 ...] [--repeats 200] [--precision auto]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BATCH = 256


def float32_gflops(size=2048, rounds=20):
    """This CPU's float32 rate (GFLOP/s) on a large matrix product: near its arithmetic peak."""
    import numpy as np
    matrix = np.random.default_rng(0).random((size, size), dtype=np.float32)
    matrix @ matrix
    start = time.perf_counter()
    for _ in range(rounds):
        matrix @ matrix
    return 2 * size ** 3 * rounds / (time.perf_counter() - start) / 1e9


def measure(path, repeats, precision):
    import numpy as np
    from skimage import data

    from utils.model.predict import Predictor
    predictor = Predictor.from_path(path, precision)
    photo = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    crop = predictor.face_crops(photo)[1][0].image

    def one_face():
        predictor.probabilities(predictor.preprocess(crop)[None])

    one_face()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        one_face()
        times.append((time.perf_counter() - start) * 1000)
    batch = np.stack([predictor.preprocess(crop)] * BATCH)
    predictor.probabilities(batch)
    start = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        predictor.probabilities(np.stack([predictor.preprocess(crop) for _ in range(BATCH)]))
    batched = rounds * BATCH / (time.perf_counter() - start)
    return statistics.median(times), batched, os.path.getsize(path) / 1e6, predictor


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="repeat to compare (default: the shipped models)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto")
    args = parser.parse_args(argv)
    paths = args.model or [p for p in ("models/emotion_model.h5", "models/baseline_cnn.h5") if os.path.exists(p)]
    from utils.model.architectures import multiply_adds
    gflops = float32_gflops()
    print(f"this CPU: {gflops:.0f} GFLOP/s float32 on a 2048x2048 matrix product")
    print(f"{'model':<22} {'ms/face (batch 1)':>18} {'faces/s (batch 256)':>20} {'MB':>6} {'flip':>5} "
          f"{'computes in':>12} {'MFLOP/face':>11} {'ceiling faces/s':>16}")
    for path in paths:
        ms, per_second, size, predictor = measure(path, args.repeats, args.precision)
        flip = "yes" if predictor.test_time_flip else "no"
        mflop = 2 * multiply_adds(predictor.model) * (2 if predictor.test_time_flip else 1) / 1e6
        ceiling = f"{gflops * 1e3 / mflop:.0f}" if predictor.precision == "float32" else "(bfloat16)"
        print(f"{os.path.basename(path):<22} {ms:>18.2f} {per_second:>20.0f} {size:>6.1f} {flip:>5} "
              f"{predictor.precision:>12} {mflop:>11.0f} {ceiling:>16}")


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
